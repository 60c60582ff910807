// scripts/bench.sh ui: opens a page in Debian's Chromium (through playwright-core) LOADS times,
// each in a fresh browser context (cold cache, no cookies), and reports when its content was
// drawn: the page's own `performance.mark("logmon:content-drawn")`, set once the incident's
// header, its patterns and its first lines are in the DOM, in ms after navigation start
// (the Navigation Timing origin). Prints one JSON object.
//   node ui_bench.mjs URL LOADS
import { pathToFileURL } from "node:url";

const [url, loadsArg] = process.argv.slice(2);
const loads = Number(loadsArg || 20);
const root = process.env.LOGMON_PLAYWRIGHT;
if (!root) throw new Error("LOGMON_PLAYWRIGHT is not set (scripts/lib/tools.sh ensure_playwright)");
const { chromium } = await import(pathToFileURL(root + "/index.mjs").href);

const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  headless: true,
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});

async function once() {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  await page.goto(url);
  const deadline = Date.now() + 30000;
  let t = null;
  while (t === null) {
    t = await page.evaluate(() => {
      const m = performance.getEntriesByName("logmon:content-drawn")[0];
      if (!m) return document.body.dataset.loaded === "error" ? -1 : null;
      const nav = performance.getEntriesByType("navigation")[0];
      const api = performance.getEntriesByType("resource").filter(r => /\/incidents\/\d+(\/logs)?(\?|$)/.test(r.name))
        .map(r => ({ url: r.name.replace(location.origin, ""), ms: Math.round(r.responseEnd - r.startTime) }));
      return { drawn: m.startTime, html: nav.responseEnd, dom: nav.domContentLoadedEventEnd, lines: document.querySelectorAll("#lines li.line").length,
               patterns: document.querySelectorAll("#patterns tbody tr[data-pattern]").length, api };
    });
    if (t === -1) throw new Error("the page could not load its data: " + (await page.textContent("#state")));
    if (t === null) {
      if (Date.now() > deadline) throw new Error("no content drawn within 30 s");
      await new Promise(r => setTimeout(r, 20));
    }
  }
  await context.close();
  return t;
}

await once(); // the first load warms the server's connections and plans, as any earlier visit would
const samples = [];
for (let i = 0; i < loads; i++) samples.push(await once());
await browser.close();
const drawn = samples.map(s => s.drawn).sort((a, b) => a - b);
const q = p => drawn[Math.min(drawn.length - 1, Math.round((drawn.length - 1) * p))];
const median = k => { const v = samples.map(s => s[k]).sort((a, b) => a - b); return v[Math.floor(v.length / 2)]; };
console.log(JSON.stringify({
  loads, p50_ms: q(0.5), p99_ms: q(0.99), min_ms: drawn[0], max_ms: drawn[drawn.length - 1],
  html_p50_ms: median("html"), dom_p50_ms: median("dom"),
  lines: samples[0].lines, patterns: samples[0].patterns, api: samples[samples.length - 1].api,
}));
