// The overview: error rate and p95 per service over a chosen window (15 min .. 24 h), each
// service's last logs, the last 24 hours of incidents (resolved ones kept and marked), the top
// patterns, the active silences, and the rules: the incidents each opened in the last 7 days
// beside what a replay of the current rules over the same days opens (POST /rules/backtest).
// Refreshes every 10 s while the tab is visible.
"use strict";
import { el, $, request, getJson, pageUrl, timeEl, ago, duration, count, pct, ms, poll, header, setState, colorsFor, swatch, localText, utcText } from "./logmon.js";
import { lineChart, onResize } from "./charts.js";

const REFRESH_MS = 10000;
const WINDOWS = {
  "15m": { minutes: 15, step: 1, label: "15 min" },
  "1h": { minutes: 60, step: 1, label: "1 h" },
  "6h": { minutes: 360, step: 5, label: "6 h" },
  "24h": { minutes: 1440, step: 15, label: "24 h" },
};
const MIN = 60000;

const asked = new URLSearchParams(location.search).get("window");
const chosen = WINDOWS[asked] ? asked : null; // null: chosen from the data (see refresh)
let last = null; // the last answers, to redraw on resize

function series(points, field, scale) {
  const m = new Map();
  for (const p of points) {
    if (!m.has(p.service)) m.set(p.service, []);
    const v = p[field];
    m.get(p.service).push({ t: Date.parse(p.ts), v: v === null || v === undefined ? null : v * scale });
  }
  return m;
}

function drawCharts() {
  if (!last) return;
  const { points, incidents, colors, w, stepMin, now } = last;
  const t0 = now - w.minutes * MIN, t1 = now;
  const spans = incidents.map(i => ({
    from: Date.parse(i.breach_start || i.created_at),
    to: i.resolved_at ? Date.parse(i.resolved_at) : now,
    label: "#" + i.id + " " + i.incident_type + " on " + i.service + " (" + i.status + ")",
    href: pageUrl("incidents/" + i.id),
  }));
  const marks = incidents.map(i => ({ t: Date.parse(i.created_at), label: "#" + i.id + " opened", color: colors.get(i.service) }));
  for (const [id, field, scale, kind, name] of [
    ["error-rate-chart", "error_rate", 100, "percent", "error rate"],
    ["latency-chart", "p95_ms", 1, "ms", "p95 latency"],
  ]) {
    const m = series(points, field, scale);
    const svg = document.getElementById(id);
    lineChart(svg, {
      series: [...m.entries()].sort().map(([name, pts]) => ({ name, color: colors.get(name), points: pts })),
      t0, t1, stepMs: stepMin * MIN, kind, spans, marks,
      empty: "no logs in the last " + w.label,
      label: name + " per service over the last " + w.label,
    });
    const legend = document.getElementById(id.replace("chart", "legend"));
    legend.replaceChildren(...[...m.keys()].sort().map(s => el("span", {}, swatch(colors.get(s)), s)));
  }
}

/** When each service last sent logs, to the minute: the newest step with logs in `points`. */
function lastSeen(seen, points, stepMin) {
  for (const p of points) {
    if (!p.total) continue;
    const t = Date.parse(p.ts);
    const cur = seen.get(p.service);
    if (!cur || t > cur.t || (t === cur.t && stepMin === 1)) seen.set(p.service, { t, end: t + stepMin * MIN });
  }
  return seen;
}

// A service silent for over 15 minutes keeps its last minute: found once, from the rollup.
const silentSince = new Map();

/** The last minute with logs of every service seen today, from /timeseries only. */
async function lastSeenAll(names, fine) {
  const seen = lastSeen(new Map(), fine, 1);
  for (const n of seen.keys()) silentSince.delete(n);
  for (const [n, v] of silentSince) if (names.includes(n)) seen.set(n, v);
  const missing = names.filter(n => !seen.has(n));
  if (missing.length === 0) return seen;
  // which quarter hour of the day, then which minute of it
  const coarse = lastSeen(new Map(), await getJson("timeseries?window_minutes=1440&step_minutes=15"), 15);
  const oldest = Math.min(...missing.map(n => (coarse.get(n) || { t: Date.now() - 1440 * MIN }).t));
  const minutes = Math.min(1440, Math.ceil((Date.now() - oldest) / MIN) + 1);
  const fineOld = lastSeen(new Map(), await getJson("timeseries?step_minutes=1&window_minutes=" + minutes), 1);
  for (const n of missing) {
    const v = fineOld.get(n) || coarse.get(n);
    if (v) { seen.set(n, v); silentSince.set(n, v); }
  }
  return seen;
}

function drawServices(names, stats5, seen, colors, now) {
  const body = $("#services tbody");
  const byName = new Map(stats5.map(s => [s.service, s]));
  body.replaceChildren();
  if (names.length === 0) {
    body.appendChild(el("tr", {}, el("td", { colspan: 8, class: "empty" }, "no logs in the last 24 hours")));
    return;
  }
  for (const name of names) {
    const s = byName.get(name) || { total: 0, errors: 0, error_rate: null, p50_ms: null, p95_ms: null, p99_ms: null };
    const ls = seen.get(name);
    let seenCell;
    // logs came in [t, end): a minute's resolution; "now" until it has been 30 s without
    if (!ls) seenCell = el("td", { class: "stale" }, "over 24 h ago");
    else if (now - ls.end <= 30000) seenCell = el("td", { title: "logs in the minute starting " + utcText(new Date(ls.t)) }, "now");
    else {
      const end = new Date(ls.end);
      seenCell = el("td", { class: "stale", title: "no logs since " + utcText(end) },
        "silent ", el("time", { datetime: end.toISOString(), title: utcText(end) }, ago(end.toISOString(), now)));
    }
    body.appendChild(el("tr", { "data-service": name },
      el("td", {}, swatch(colors.get(name)), el("a", { href: pageUrl("explore", [["service", name], ["since", "15m"]]) }, name)),
      seenCell,
      el("td", { class: "num" }, count(s.total)),
      el("td", { class: "num" }, count(s.errors)),
      el("td", { class: "num" }, s.total ? pct(s.error_rate) : "–"),
      el("td", { class: "num opt" }, ms(s.p50_ms)),
      el("td", { class: "num" }, ms(s.p95_ms)),
      el("td", { class: "num opt" }, ms(s.p99_ms))));
  }
}

function drawIncidents(incidents, now) {
  const body = $("#incidents tbody");
  body.replaceChildren();
  const open = incidents.filter(i => i.status !== "resolved");
  const resolved = incidents.filter(i => i.status === "resolved");
  $("#incident-count").textContent = "last 24 h · " + open.length + " unresolved · " + resolved.length + " resolved";
  if (incidents.length === 0) {
    body.appendChild(el("tr", {}, el("td", { colspan: 8, class: "empty" }, "no incidents in the last 24 hours")));
    return;
  }
  for (const i of [...open, ...resolved]) {
    const href = pageUrl("incidents/" + i.id);
    const status = el("td", {}, el("span", { class: "badge st-" + i.status }, i.status));
    if (i.silenced_by && i.silenced_by.length) {
      status.append(" ", el("span", { class: "badge silenced", title: "notifications held by silence " + i.silenced_by.join(", ") }, "silenced"));
    }
    const lasted = i.resolved_at
      ? duration(Date.parse(i.resolved_at) - Date.parse(i.created_at))
      : "ongoing, " + duration(now - Date.parse(i.created_at));
    body.appendChild(el("tr", { "data-incident-id": i.id, class: i.status === "resolved" ? "resolved" : "" },
      status,
      el("td", {}, el("a", { href, "aria-label": "incident " + i.id }, "#" + i.id)),
      el("td", {}, el("a", { href: pageUrl("explore", [["service", i.service]]) }, i.service)),
      el("td", { class: "opt" }, i.incident_type),
      el("td", {}, el("span", { class: "badge sev-" + i.severity }, i.severity)),
      el("td", { class: "opt" }, timeEl(i.created_at)),
      el("td", { class: "opt" }, lasted),
      el("td", {}, el("a", { href }, i.summary))));
  }
}

function drawPatterns(patterns, w) {
  const body = $("#patterns tbody");
  body.replaceChildren();
  $("#patterns-sub").textContent = "top 3 per service over the last " + w.label + "; new ones first";
  if (patterns.length === 0) {
    body.appendChild(el("tr", {}, el("td", { colspan: 5, class: "empty" }, "no patterns in the window")));
    return;
  }
  const sorted = patterns.slice().sort((a, b) => (b.new - a.new) || (b.count - a.count));
  for (const p of sorted) {
    const href = pageUrl("explore", [["service", p.service], ["pattern", p.pattern_id], ["since", w.minutes + "m"]]);
    body.appendChild(el("tr", { "data-pattern": p.pattern_id },
      el("td", {}, p.service),
      el("td", {}, el("a", { href, class: "tpl" }, p.template || p.pattern_id), p.new ? [" ", el("span", { class: "badge new", title: "first seen in this window" }, "new")] : null),
      el("td", { class: "num" }, count(p.count)),
      el("td", { class: "num opt" }, pct(p.share)),
      el("td", { class: "num opt" }, count(p.previous))));
  }
}

function drawSilences(silences) {
  const body = $("#silences tbody");
  body.replaceChildren();
  if (silences.length === 0) {
    body.appendChild(el("tr", {}, el("td", { colspan: 4, class: "empty" }, "no active silence")));
    return;
  }
  const op = m => (m.isRegex ? (m.isEqual ? "=~" : "!~") : (m.isEqual ? "=" : "!="));
  for (const s of silences) {
    body.appendChild(el("tr", { "data-silence-id": s.id },
      el("td", { class: "mono" }, s.matchers.map(m => m.name + op(m) + JSON.stringify(m.value)).join(", ")),
      el("td", {}, s.window && s.window.endsAt ? timeEl(s.window.endsAt) : "–"),
      el("td", {}, s.createdBy),
      el("td", {}, s.comment)));
  }
}

// A replay of a week costs about a second of database time: asked once a page load, then at most
// every 10 minutes (the rules and their counts from `incidents` are re-read at every refresh).
const REPLAY_MS = 10 * MIN;
let replay = null, replayAt = 0;

async function refreshReplay() {
  if (Date.now() - replayAt < REPLAY_MS) return;
  replayAt = Date.now();
  try {
    const r = await getJson("rules/backtest", {
      method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ since: "7d" }),
    });
    replay = { byRule: new Map(r.by_rule.map(b => [b.rule_id, b.incidents])), truncated: r.truncated };
  } catch (e) {
    // the rest of the overview does not depend on it: say why in the column, ask again later
    replay = { error: e.message };
  }
}

function drawRules(rules) {
  const body = $("#rules tbody");
  body.replaceChildren();
  if (rules.length === 0) {
    body.appendChild(el("tr", {}, el("td", { colspan: 7, class: "empty" }, "no detection rules")));
    return;
  }
  for (const r of rules) {
    const replayed = !replay ? "…"
      : replay.error ? el("span", { title: "the replay failed: " + replay.error }, "–")
      : count(replay.byRule.get(r.id) || 0) + (replay.truncated ? "+" : "");
    body.appendChild(el("tr", { "data-rule-id": r.id },
      el("td", { title: r.description || "" }, r.name, r.enabled ? null : " (off)"),
      el("td", {}, r.service === null ? "every service" : r.service),
      el("td", { class: "opt mono" }, r.kind),
      el("td", { class: "num opt" }, String(r.threshold)),
      el("td", {}, el("span", { class: "badge sev-" + r.severity }, r.severity)),
      el("td", { class: "num" }, count(r.opened_7d)),
      el("td", { class: "num" }, replayed)));
  }
}

function markWindow(key, w, stepMin, auto) {
  for (const a of document.querySelectorAll("#windows a")) {
    if (a.dataset.window === key) a.setAttribute("aria-current", "true");
    else a.removeAttribute("aria-current");
  }
  $("#rate-sub").textContent = "per service, last " + w.label;
  $("#lat-sub").textContent = "per service, last " + w.label;
  $("#window-note").textContent = (auto ? "chosen for the data (logs began less than 15 min ago); " : "") +
    "points every " + stepMin + " min";
}

async function refresh() {
  const now = Date.now();
  const since24 = new Date(now - 24 * 60 * MIN).toISOString();
  let key = chosen || "1h";
  try {
    const [series1, fine, stats5, stats24, incidents, silences, rules] = await Promise.all([
      request("timeseries?window_minutes=" + WINDOWS[key].minutes + "&step_minutes=" + WINDOWS[key].step),
      getJson("timeseries?window_minutes=15&step_minutes=1"),
      getJson("stats?window_minutes=5"),
      getJson("stats?window_minutes=1440"),
      getJson("incidents?limit=200&since=" + encodeURIComponent(since24)),
      getJson("silences?state=active&limit=100"),
      getJson("rules"),
      refreshReplay(),
    ]);
    let points = series1.data;
    let stepMin = Number(series1.resp.headers.get("logmon-step-minutes")) || WINDOWS[key].step;
    // A young system (logs began under 15 minutes ago) is drawn over 15 minutes, not squeezed
    // into the right-hand edge of an hour; a window chosen in the URL is kept as chosen.
    const young = !chosen && points.length > 0 && now - Math.min(...points.map(p => Date.parse(p.ts))) < 15 * MIN;
    if (young) { key = "15m"; points = fine; stepMin = 1; }
    const wk = WINDOWS[key];
    const patterns = await getJson("patterns?limit=3&window_minutes=" + wk.minutes);
    const names = [...new Set([...stats24.map(s => s.service), ...points.map(p => p.service), ...stats5.map(s => s.service)])].sort();
    const seen = await lastSeenAll(names, fine);
    const colors = colorsFor(names);
    const shown = incidents.filter(i => !i.resolved_at || Date.parse(i.resolved_at) >= now - 24 * 60 * MIN);
    last = { points, incidents: shown, colors, w: wk, stepMin, now };
    markWindow(key, wk, stepMin, young);
    drawCharts();
    drawServices(names, stats5, seen, colors, now);
    drawIncidents(shown, now);
    drawPatterns(patterns, wk);
    drawSilences(silences);
    drawRules(rules);
    setState("updated " + localText(new Date()) + " · every " + REFRESH_MS / 1000 + " s");
    if (document.body.dataset.loaded !== "true") {
      document.body.dataset.loaded = "true";
      performance.mark("logmon:content-drawn");
    }
  } catch (e) {
    setState("cannot load: " + e.message + " (retrying)", true);
  }
}

header();
onResize(document.getElementById("error-rate-chart"), drawCharts);
poll(refresh, REFRESH_MS);
