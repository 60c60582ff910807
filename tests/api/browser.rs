//! A real browser for the page tests: Debian's Chromium (`/usr/bin/chromium`) driven by
//! playwright-core from npm (installed by scripts/lib/tools.sh; it never downloads a browser),
//! through tests/browser/driver.mjs, which takes one JSON command a line. The tests stay in Rust
//! and read like the others; Playwright brings what WebDriver lacks for them: emulated colour
//! schemes and time zones, exact viewports, downloads, and waiting on the page's own conditions.
use std::path::PathBuf;
use std::process::Stdio;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

use crate::helpers::repo;

/// How a page is opened: viewport, colour scheme and the viewer's time zone.
#[derive(Debug, Clone)]
pub struct View {
    pub width: u32,
    pub height: u32,
    pub color_scheme: &'static str,
    /// A zone that is not UTC (+05:30, no daylight saving), so "the viewer's zone" shows.
    pub timezone: &'static str,
}

impl Default for View {
    fn default() -> View {
        View { width: 1280, height: 900, color_scheme: "light", timezone: "Asia/Kolkata" }
    }
}

impl View {
    pub fn phone() -> View {
        View { width: 390, height: 844, ..View::default() }
    }
}

/// What the page did besides drawing: console errors (a refused script or style shows here),
/// uncaught exceptions, every request, and dialogs (alert() from injected code would).
#[derive(Debug)]
pub struct Events {
    pub console: Vec<String>,
    pub errors: Vec<String>,
    pub requests: Vec<String>,
    pub dialogs: Vec<String>,
}

pub struct Browser {
    child: Child,
    stdin: ChildStdin,
    out: Lines<BufReader<ChildStdout>>,
    next: u64,
}

impl Browser {
    /// A fresh browser with a page at `url`.
    pub async fn open(url: &str, view: View) -> Browser {
        let playwright = std::env::var("LOGMON_PLAYWRIGHT").expect(
            "LOGMON_PLAYWRIGHT is not set: run the tests with scripts/test.sh, which installs playwright-core and chromium",
        );
        assert!(
            std::path::Path::new("/usr/bin/chromium").exists(),
            "/usr/bin/chromium is missing (scripts/test.sh installs it)"
        );
        let mut child = Command::new("node")
            .arg(repo().join("tests/browser/driver.mjs"))
            .env("LOGMON_PLAYWRIGHT", playwright)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("node must be installed (scripts/test.sh installs it)");
        let stdin = child.stdin.take().unwrap();
        let out = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut b = Browser { child, stdin, out, next: 0 };
        b.call(json!({"cmd": "open", "url": url, "width": view.width, "height": view.height,
                      "colorScheme": view.color_scheme, "timezone": view.timezone, "locale": "en-US"}))
            .await;
        b
    }

    /// Sends one command; a failure (a selector that never appeared...) fails the test with
    /// Playwright's own message.
    pub async fn call(&mut self, mut cmd: Value) -> Value {
        self.next += 1;
        cmd["id"] = json!(self.next);
        let what = cmd.to_string();
        self.stdin.write_all(format!("{what}\n").as_bytes()).await.unwrap();
        self.stdin.flush().await.unwrap();
        let line =
            self.out.next_line().await.unwrap().unwrap_or_else(|| panic!("the browser driver exited during {what}"));
        let answer: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(answer["id"], cmd["id"]);
        if answer["ok"] != json!(true) {
            panic!("browser: {what} failed: {}", answer["error"].as_str().unwrap_or_default());
        }
        answer["value"].clone()
    }

    pub async fn goto(&mut self, url: &str) {
        self.call(json!({"cmd": "goto", "url": url})).await;
    }
    /// Waits until an element matching `selector` is visible.
    pub async fn wait(&mut self, selector: &str) {
        self.call(json!({"cmd": "wait", "selector": selector})).await;
    }
    pub async fn wait_attached(&mut self, selector: &str) {
        self.call(json!({"cmd": "wait", "selector": selector, "state": "attached"})).await;
    }
    /// Waits until the JavaScript expression is truthy; returns its value.
    pub async fn wait_until(&mut self, expr: &str) -> Value {
        self.call(json!({"cmd": "waitFn", "expr": expr})).await
    }
    /// Waits for a page's data (its script sets body[data-loaded]).
    pub async fn loaded(&mut self) {
        self.wait_attached("body[data-loaded=true]").await;
    }
    pub async fn click(&mut self, selector: &str) {
        self.call(json!({"cmd": "click", "selector": selector})).await;
    }
    pub async fn fill(&mut self, selector: &str, value: &str) {
        self.call(json!({"cmd": "fill", "selector": selector, "value": value})).await;
    }
    pub async fn press(&mut self, key: &str) {
        self.call(json!({"cmd": "press", "key": key})).await;
    }
    pub async fn text(&mut self, selector: &str) -> String {
        self.call(json!({"cmd": "text", "selector": selector})).await.as_str().unwrap().to_string()
    }
    pub async fn texts(&mut self, selector: &str) -> Vec<String> {
        let v = self.call(json!({"cmd": "texts", "selector": selector})).await;
        v.as_array().unwrap().iter().map(|s| s.as_str().unwrap().to_string()).collect()
    }
    pub async fn count(&mut self, selector: &str) -> usize {
        self.call(json!({"cmd": "count", "selector": selector})).await.as_u64().unwrap() as usize
    }
    pub async fn attr(&mut self, selector: &str, name: &str) -> Option<String> {
        self.call(json!({"cmd": "attr", "selector": selector, "name": name})).await.as_str().map(str::to_string)
    }
    pub async fn eval(&mut self, expr: &str) -> Value {
        self.call(json!({"cmd": "eval", "expr": expr})).await
    }
    pub async fn url(&mut self) -> String {
        self.call(json!({"cmd": "url"})).await.as_str().unwrap().to_string()
    }
    pub async fn back(&mut self) {
        self.call(json!({"cmd": "back"})).await;
    }
    pub async fn color_scheme(&mut self, scheme: &str) {
        self.call(json!({"cmd": "colorScheme", "scheme": scheme})).await;
    }
    /// Clicks what starts a download and returns the saved file.
    pub async fn download(&mut self, selector: &str) -> PathBuf {
        let dir = repo().join("target/test-tmp");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("download-{:016x}", rand::random::<u64>()));
        self.call(json!({"cmd": "download", "selector": selector, "path": path})).await;
        path
    }
    /// A full-page screenshot in target/screenshots/NAME.png (checked to be a real picture).
    pub async fn screenshot(&mut self, name: &str) -> PathBuf {
        self.shot(name, true).await
    }
    /// What fits the window (the first screen a reader sees), in target/screenshots/NAME.png.
    pub async fn screenshot_view(&mut self, name: &str) -> PathBuf {
        self.shot(name, false).await
    }
    async fn shot(&mut self, name: &str, full_page: bool) -> PathBuf {
        let dir = repo().join("target/screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{name}.png"));
        let _ = std::fs::remove_file(&path);
        self.call(json!({"cmd": "screenshot", "path": path, "fullPage": full_page})).await;
        let png = std::fs::read(&path).expect("the screenshot was written");
        assert!(png.starts_with(b"\x89PNG") && png.len() > 5_000, "a real picture: {}", path.display());
        path
    }
    pub async fn events(&mut self) -> Events {
        let v = self.call(json!({"cmd": "events"})).await;
        let list = |k: &str| v[k].as_array().unwrap().iter().map(|s| s.as_str().unwrap().to_string()).collect();
        Events {
            console: list("console"),
            errors: list("errors"),
            requests: list("requests"),
            dialogs: list("dialogs"),
        }
    }

    /// The page ran clean: no uncaught exception, nothing refused by the Content-Security-Policy
    /// or otherwise logged as an error (answers the page expects, such as a 401 asking for the
    /// token, excepted), no dialog, and every request went to logmon itself (no CDN: works
    /// offline).
    pub async fn assert_clean(&mut self, origin: &str) {
        let e = self.events().await;
        assert!(e.errors.is_empty(), "uncaught errors: {:?}", e.errors);
        let refused: Vec<&String> = e.console.iter().filter(|m| !m.starts_with("Failed to load resource")).collect();
        assert!(refused.is_empty(), "console errors: {refused:?}");
        assert!(e.dialogs.is_empty(), "dialogs: {:?}", e.dialogs);
        let outside: Vec<&String> = e
            .requests
            .iter()
            .filter(|r| {
                let url = r.split_once(' ').unwrap().1;
                !url.starts_with(origin) && !url.starts_with("blob:")
            })
            .collect();
        assert!(outside.is_empty(), "requests outside logmon: {outside:?}");
    }

    pub async fn close(mut self) {
        drop(self.stdin);
        let _ = tokio::time::timeout(std::time::Duration::from_secs(10), self.child.wait()).await;
    }
}
