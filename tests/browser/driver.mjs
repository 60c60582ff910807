// A real browser for the Rust tests (tests/api/browser.rs): Debian's Chromium driven by
// playwright-core (never a downloaded browser). Commands arrive one JSON object a line on stdin
// ({"id": 1, "cmd": "click", "selector": "#ack"}) and each gets one JSON answer a line on stdout
// ({"id": 1, "ok": true, "value": ...} or {"id": 1, "ok": false, "error": "..."}). The page's
// console errors, uncaught exceptions, requests and dialogs are recorded for the tests to check.
import { createInterface } from "node:readline";
import { pathToFileURL } from "node:url";

const root = process.env.LOGMON_PLAYWRIGHT;
if (!root) throw new Error("LOGMON_PLAYWRIGHT is not set (scripts/test.sh installs playwright-core)");
const { chromium } = await import(pathToFileURL(root + "/index.mjs").href);

const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  headless: true,
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});

let context = null;
let page = null;
let events = null;

async function open(c) {
  if (context) await context.close();
  context = await browser.newContext({
    viewport: { width: c.width || 1280, height: c.height || 900 },
    colorScheme: c.colorScheme || "light",
    timezoneId: c.timezone || "UTC",
    locale: c.locale || "en-US",
    acceptDownloads: true,
  });
  page = await context.newPage();
  page.setDefaultTimeout(c.timeoutMs || 15000);
  events = { console: [], errors: [], requests: [], dialogs: [] };
  page.on("console", m => { if (m.type() === "error") events.console.push(m.text()); });
  page.on("pageerror", e => events.errors.push(String(e && e.stack || e)));
  page.on("request", r => events.requests.push(r.method() + " " + r.url()));
  page.on("dialog", d => { events.dialogs.push(d.type() + ": " + d.message()); d.dismiss().catch(() => {}); });
  if (c.url) await page.goto(c.url);
  return null;
}

// Polls an expression from outside the page (page.waitForFunction would evaluate a string inside
// it, which the pages' Content-Security-Policy rightly refuses).
async function waitFn(c) {
  const deadline = Date.now() + (c.timeoutMs || 15000);
  let last;
  for (;;) {
    last = await page.evaluate(c.expr);
    if (last) return last;
    if (Date.now() > deadline) throw new Error("timed out waiting for " + c.expr + " (last value: " + JSON.stringify(last) + ")");
    await new Promise(r => setTimeout(r, 100));
  }
}

const commands = {
  open,
  goto: c => page.goto(c.url).then(r => r && r.status()),
  wait: c => page.waitForSelector(c.selector, { state: c.state || "visible" }).then(() => null),
  waitFn: waitFn,
  click: c => page.click(c.selector).then(() => null),
  fill: c => page.fill(c.selector, c.value).then(() => null),
  press: c => page.keyboard.press(c.key).then(() => null),
  type: c => page.keyboard.type(c.text).then(() => null),
  // what a reader sees: innerText (textContent for SVG, which has no innerText)
  text: c => page.locator(c.selector).first().evaluate(e => e.innerText ?? e.textContent),
  texts: c => page.locator(c.selector).evaluateAll(es => es.map(e => e.innerText ?? e.textContent)),
  count: c => page.locator(c.selector).count(),
  attr: c => page.locator(c.selector).first().getAttribute(c.name),
  eval: c => page.evaluate(c.expr),
  // a full page, or the first screen (scrolled to the top) as a reader lands on it
  screenshot: async c => {
    if (c.fullPage === false) await page.evaluate(() => window.scrollTo(0, 0));
    await page.screenshot({ path: c.path, fullPage: c.fullPage !== false });
    return c.path;
  },
  viewport: c => page.setViewportSize({ width: c.width, height: c.height }).then(() => null),
  colorScheme: c => page.emulateMedia({ colorScheme: c.scheme }).then(() => null),
  url: () => page.url(),
  back: () => page.goBack().then(() => null),
  download: async c => {
    const [d] = await Promise.all([page.waitForEvent("download"), page.click(c.selector)]);
    await d.saveAs(c.path);
    return c.path;
  },
  events: () => events,
};

const rl = createInterface({ input: process.stdin });
for await (const line of rl) {
  if (!line.trim()) continue;
  const c = JSON.parse(line);
  let answer;
  try {
    const f = commands[c.cmd];
    if (!f) throw new Error("unknown command " + c.cmd);
    answer = { id: c.id, ok: true, value: (await f(c)) ?? null };
  } catch (e) {
    answer = { id: c.id, ok: false, error: String(e && e.message || e) };
  }
  process.stdout.write(JSON.stringify(answer) + "\n");
}
await browser.close();
