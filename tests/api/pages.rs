//! What every page owes its readers, in a real browser: it fits a 390 px phone without sideways
//! scrolling (the newest data and the incidents' status in view), its text keeps its contrast in
//! light and dark mode, log text is always text (a message carrying <script>, onerror= or
//! javascript: runs nothing), and its files come from the binary itself.
use serde_json::Value;

use crate::browser::{Browser, View};
use crate::helpers::*;
use crate::incident_page::{HOSTILE, checkout_incident};

/// Every page of a logmon holding the checkout incident: (name, path).
async fn pages(db: &TestDb) -> Vec<(&'static str, String)> {
    let id = checkout_incident(db).await;
    vec![
        ("overview", "/".to_string()),
        ("incident-page", format!("/incidents/{id}")),
        ("explorer", "/explore?service=checkout".to_string()),
    ]
}

#[tokio::test]
async fn every_page_fits_a_390_px_phone() {
    let db = fresh_db().await;
    let pages = pages(&db).await;
    let app = spawn_collector(&db.url, &[]).await;
    let mut b = Browser::open(&app.url("/health"), View::phone()).await;
    for (name, path) in &pages {
        b.goto(&app.url(path)).await;
        b.loaded().await;
        let widths = b.eval("[document.documentElement.scrollWidth, document.body.scrollWidth, innerWidth]").await;
        assert_eq!(widths[0], widths[2], "{name}: no sideways scrolling at 390 px: {widths}");
        assert_eq!(widths[1], widths[2], "{name}: {widths}");
        // nothing sticks out of the screen
        let wide = b
            .eval(
                "[...document.querySelectorAll('main *')].filter(e => { const r = e.getBoundingClientRect();
                   return r.width > 0 && r.right > innerWidth + 0.5 && !e.closest('.skip'); }).slice(0, 5).map(e => e.outerHTML.slice(0, 120))",
            )
            .await;
        assert_eq!(wide, serde_json::json!([]), "{name}: elements past the right edge");
        b.screenshot(&format!("{name}-phone")).await;
        b.screenshot_view(&format!("{name}-phone-top")).await;
    }
    // the overview: each chart's newest point is on screen, at the right-hand edge; the status column too
    b.goto(&app.url("/")).await;
    b.loaded().await;
    let newest = b
        .eval(
            "[...document.querySelectorAll('#error-rate-chart path.series, #latency-chart path.series')].map(p => {
               const svg = p.ownerSVGElement, r = svg.getBoundingClientRect(), vb = svg.viewBox.baseVal;
               const xs = [...p.getAttribute('d').matchAll(/[ML]([0-9.]+),/g)].map(m => Number(m[1]));
               return (r.left + Math.max(...xs) * r.width / vb.width) / innerWidth; })",
        )
        .await;
    let newest: Vec<f64> = newest.as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
    assert!(
        !newest.is_empty() && newest.iter().all(|x| *x > 0.8 && *x <= 1.0),
        "newest points on screen, at the right: {newest:?}"
    );
    let status = b
        .eval("[...document.querySelectorAll('#incidents tbody td:first-child')].map(td => td.getBoundingClientRect().right <= innerWidth && td.innerText.length > 0)")
        .await;
    assert!(!status.as_array().unwrap().is_empty() && status.as_array().unwrap().iter().all(|v| v == true), "{status}");
    b.close().await;
}

/// Every visible piece of text whose contrast with what is behind it is below WCAG AA (4.5:1;
/// 3:1 for large text), with the colours found.
const LOW_CONTRAST: &str = r#"(() => {
  const parse = c => { const m = c && c.match(/rgba?\(([^)]+)\)/); if (!m) return null;
    const p = m[1].split(/[\s,\/]+/).filter(Boolean).map(Number); return { r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1 }; };
  const over = (t, b) => ({ r: t.r * t.a + b.r * (1 - t.a), g: t.g * t.a + b.g * (1 - t.a), b: t.b * t.a + b.b * (1 - t.a), a: 1 });
  const lum = c => { const f = v => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
    return 0.2126 * f(c.r) + 0.7152 * f(c.g) + 0.0722 * f(c.b); };
  const behind = e => { const layers = [];
    for (let x = e; x; x = x.parentElement) { const c = parse(getComputedStyle(x).backgroundColor);
      if (c && c.a > 0) { layers.push(c); if (c.a === 1) break; } }
    let bg = { r: 255, g: 255, b: 255, a: 1 };
    for (let i = layers.length - 1; i >= 0; i--) bg = over(layers[i], bg);
    return bg; };
  const out = []; const seen = new Set();
  const w = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (w.nextNode()) {
    const t = w.currentNode, e = t.parentElement;
    if (!t.textContent.trim() || seen.has(e) || e.closest('option, title, [hidden]')) continue;
    seen.add(e);
    const r = e.getBoundingClientRect(), cs = getComputedStyle(e);
    if (r.width === 0 || r.height === 0 || r.right < 0 || cs.visibility === 'hidden') continue;
    const bg = behind(e instanceof SVGElement ? e.ownerSVGElement : e);
    const fg0 = parse(e instanceof SVGElement ? cs.fill : cs.color); if (!fg0) continue;
    const fg = over(fg0, bg);
    const [hi, lo] = [lum(fg), lum(bg)].sort((a, b) => b - a);
    const ratio = (hi + 0.05) / (lo + 0.05);
    const size = parseFloat(cs.fontSize), bold = Number(cs.fontWeight) >= 700;
    const need = size >= 24 || (size >= 18.66 && bold) ? 3 : 4.5;
    if (ratio < need) out.push(`${ratio.toFixed(2)} < ${need}: "${t.textContent.trim().slice(0, 40)}" ${cs.color}/${cs.fill} on rgb(${bg.r|0},${bg.g|0},${bg.b|0}) in <${e.tagName.toLowerCase()} class="${e.getAttribute('class')||''}">`);
  }
  return out;
})()"#;

#[tokio::test]
async fn text_keeps_its_contrast_in_light_and_dark_mode() {
    let db = fresh_db().await;
    let pages = pages(&db).await;
    let app = spawn_collector(&db.url, &[]).await;
    let mut b = Browser::open(&app.url("/health"), View::default()).await;
    for scheme in ["light", "dark"] {
        b.color_scheme(scheme).await;
        for (name, path) in &pages {
            b.goto(&app.url(path)).await;
            b.loaded().await;
            // open a line and the token form too: their text counts as well
            if b.count("#lines li.line summary").await > 0 {
                b.click("#lines li.line summary").await;
            }
            let body = b.eval("getComputedStyle(document.body).backgroundColor").await;
            let dark = body.as_str().unwrap() != "rgb(244, 245, 247)";
            assert_eq!(dark, scheme == "dark", "{name} follows the {scheme} scheme: {body}");
            let low = b.eval(LOW_CONTRAST).await;
            assert_eq!(low, serde_json::json!([]), "{name} in {scheme} mode: text below AA contrast");
            if scheme == "dark" {
                b.screenshot(&format!("{name}-dark")).await;
            }
        }
    }
    b.assert_clean(&app.base).await;
    b.close().await;
}

/// What injected code would have left behind: a global, a dialog, new elements, live links.
const INJECTED: &str = "({ pwned: window.pwned === undefined ? null : window.pwned,
   elements: document.querySelectorAll('body img, body iframe, body object, body embed, body script').length,
   inline_scripts: document.querySelectorAll('script:not([src])').length,
   script_links: document.querySelectorAll('a[href^=\"javascript:\" i], [href^=\"data:\" i]').length,
   handlers: [...document.querySelectorAll('*')].filter(e => [...e.attributes].some(a => a.name.startsWith('on'))).length })";

#[tokio::test]
async fn log_text_is_shown_as_text_and_runs_nothing() {
    let db = fresh_db().await;
    let id = checkout_incident(&db).await;
    let app = spawn_collector(&db.url, &[]).await;
    let template: String = db.client().await.query_one("SELECT log_template($1)", &[&HOSTILE]).await.unwrap().get(0);
    let clean =
        serde_json::json!({"pwned": null, "elements": 0, "inline_scripts": 0, "script_links": 0, "handlers": 0});

    // the incident page: its pattern, its line, the line's attributes
    let mut b = Browser::open(&app.url(&format!("/incidents/{id}")), View::default()).await;
    b.loaded().await;
    assert!(b.texts("#patterns a.tpl").await.contains(&template), "the template is shown, as text");
    let line = "#lines li.line:has(.msg:text-is('".to_string() + &HOSTILE.replace('\'', "\\'") + "'))";
    b.click(&format!("{line} summary")).await;
    b.wait(&format!("{line} pre.attrs")).await;
    let attrs: Value = serde_json::from_str(&b.text(&format!("{line} pre.attrs")).await).unwrap();
    assert_eq!(attrs["link"], "javascript:window.pwned=4", "attributes are shown as text too");
    let pattern_link = b.attr(&format!("{line} a.tpl"), "href").await.unwrap();
    assert!(pattern_link.starts_with("/incidents/"), "{pattern_link}");
    assert_eq!(b.eval(INJECTED).await, clean);
    b.click(&format!("#patterns a.tpl:text-is({template:?})")).await;
    b.wait_until("[...document.querySelectorAll('#lines li.line .msg')].length === 1").await;
    assert_eq!(b.text("#lines li.line .msg").await, HOSTILE);
    assert_eq!(b.eval(INJECTED).await, clean);
    b.assert_clean(&app.base).await;

    // the explorer: the line, its pattern row, and a search for it put back into the form
    b.goto(&app.url("/explore?service=checkout&q=pwned&since=1h")).await;
    b.loaded().await;
    assert_eq!(b.text("#lines li.line .msg").await, HOSTILE);
    b.click("#lines li.line summary").await;
    b.wait("#lines li.line pre.attrs").await;
    assert!(b.texts("#patterns a.tpl").await.contains(&template));
    assert_eq!(b.eval("document.getElementById('f-q').value").await, "pwned");
    assert_eq!(b.eval(INJECTED).await, clean);
    b.screenshot("hostile-line-explorer").await;
    b.assert_clean(&app.base).await;
    b.close().await;
}

#[tokio::test]
async fn the_pages_files_are_served_from_the_binary_and_revalidated() {
    let db = fresh_db().await;
    let app = spawn_collector(&db.url, &[]).await;
    // every file a page refers to exists, with its type
    let mut referenced = vec![];
    for (path, prefix) in [("/", ""), ("/explore", ""), ("/incidents/1", "../")] {
        let html = http().get(app.url(path)).header("accept", "text/html").send().await.unwrap().text().await.unwrap();
        for part in html.split(&format!("=\"{prefix}ui/")).skip(1) {
            referenced.push(part.split('"').next().unwrap().to_string());
        }
    }
    assert!(referenced.len() >= 12, "{referenced:?}");
    for file in &referenced {
        let r = http().get(app.url(&format!("/ui/{file}"))).send().await.unwrap();
        assert_eq!(r.status(), 200, "{file}");
        let ct = r.headers()["content-type"].to_str().unwrap().to_string();
        let want = if file.ends_with(".js") {
            "text/javascript"
        } else if file.ends_with(".css") {
            "text/css"
        } else {
            "image/svg+xml"
        };
        assert!(ct.starts_with(want), "{file}: {ct}");
        // unchanged: 304 without a body
        let etag = r.headers()["etag"].to_str().unwrap().to_string();
        let again = http().get(app.url(&format!("/ui/{file}"))).header("if-none-match", &etag).send().await.unwrap();
        assert_eq!(again.status(), 304, "{file}");
    }
    let r = http().get(app.url("/ui/nope.js")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    let body: Value = r.json().await.unwrap();
    assert!(body["error"].as_str().unwrap().contains("logmon.js"), "names the files there are: {body}");
}
