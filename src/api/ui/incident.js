// An incident's page: what is failing, since when, how badly and what changed (status, rule,
// the service's error rate and p95 around it, the timeline, its top patterns against the hour
// before, its lines), and acting on it (acknowledge, resolve, silence) with the admin token when
// the server asks for one. Filters (a pattern, a status code) live in the URL.
"use strict";
import { el, $, api, request, nextLink, pageUrl, timeEl, ago, duration, count, pct, ms, poll, header, setState, ApiError } from "./logmon.js";
import { lineChart, onResize } from "./charts.js";
import { LineList, LiveFollower, MAX_LINES, loadPage } from "./lines.js";

const MIN = 60000;
const PAGE = 50;
const REFRESH_MS = 20000;
const id = location.pathname.split("/").filter(Boolean).pop();
const TOKEN_KEY = "logmon-admin-token";
const NAME_KEY = "logmon-name";

let incident = null;
let next = null;
let follower = null;
let generation = 0; // a newer filter makes older answers stale

/** The line filters of the URL: the page's state, so links can be shared and Back works. */
function filters() {
  const q = new URLSearchParams(location.search);
  return { pattern: q.get("pattern"), status_code: q.get("status_code") };
}

function filterHref(f) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(f)) if (v) q.set(k, v);
  const s = q.toString();
  return location.pathname + (s ? "?" + s : "");
}

const list = new LineList($("#lines"), line => filterHref({ pattern: line.pattern_id }));

function linesUrl(extra = {}) {
  const u = api("incidents/" + encodeURIComponent(id) + "/logs");
  const f = filters();
  for (const [k, v] of Object.entries(Object.assign({}, f, extra))) if (v) u.searchParams.set(k, v);
  if (!u.searchParams.has("limit")) u.searchParams.set("limit", String(PAGE));
  return u;
}

// ---- the incident ----

function observedText(i, v) {
  const kind = i.details && i.details.kind;
  if (kind === "latency_p95") return ms(v);
  if (kind === "error_rate") return "z = " + Number(v).toFixed(1);
  if (kind === "no_data") return count(v);
  return count(v);
}

function fact(dl, name, ...value) {
  dl.append(el("dt", {}, name), el("dd", {}, ...value));
}

function drawIncident(i) {
  document.title = "#" + i.id + " " + i.incident_type + " on " + i.service + " · logmon";
  $("#title").replaceChildren("#" + i.id + " " + i.incident_type + " on ", i.service);
  const badges = $("#badges");
  badges.replaceChildren(
    el("span", { class: "badge st-" + i.status, id: "status" }, i.status),
    el("span", { class: "badge sev-" + i.severity }, i.severity));
  if (i.silenced_by && i.silenced_by.length) {
    badges.append(el("span", { class: "badge silenced", title: "notifications held by silence " + i.silenced_by.join(", ") }, "silenced"));
  }
  const dl = $("#facts");
  dl.replaceChildren();
  const now = Date.now();
  fact(dl, "summary", i.summary);
  fact(dl, "service", el("a", { href: pageUrl("explore", [["service", i.service]]) }, i.service));
  fact(dl, "opened", timeEl(i.created_at), " (" + ago(i.created_at, now) + ")");
  fact(dl, "breach began", timeEl(i.breach_start));
  if (i.resolved_at) {
    fact(dl, "resolved", timeEl(i.resolved_at), i.resolved_by ? " by " + i.resolved_by : "",
      " · lasted " + duration(Date.parse(i.resolved_at) - Date.parse(i.created_at)));
  } else {
    fact(dl, "ongoing", duration(now - Date.parse(i.created_at)) + " · last seen ", timeEl(i.last_seen_at));
  }
  if (i.acknowledged_at) fact(dl, "acknowledged", timeEl(i.acknowledged_at), i.acknowledged_by ? " by " + i.acknowledged_by : "");
  const rule = (i.details && i.details.rule) || i.incident_type;
  fact(dl, "rule", rule, i.details && i.details.kind ? " (" + i.details.kind + ")" : "", i.rule_id ? " · rule id " + i.rule_id : "");
  fact(dl, "observed", observedText(i, i.observed) + " against a threshold of " + observedText(i, i.threshold) + " · peak " + observedText(i, i.peak));
  if (i.silenced_by && i.silenced_by.length) fact(dl, "silenced by", i.silenced_by.join(", "));

  $("#actions").hidden = false;
  $("#ack").disabled = i.status !== "open";
  $("#resolve").disabled = i.status === "resolved";
  $("#live").hidden = i.status === "resolved";
  if (i.status === "resolved" && follower) stopLive();
  $("#silence-what").textContent = "service=" + JSON.stringify(i.service) + ", incident_type=" + JSON.stringify(i.incident_type);
  const explore = [["service", i.service], ["since", i.breach_start]];
  if (i.resolved_at) explore.push(["until", new Date(Date.parse(i.resolved_at) + 1000).toISOString()]);
  if (i.details && ["error_count", "error_rate"].includes(i.details.kind)) explore.push(["level", "ERROR"]);
  const f = filters();
  if (f.pattern) explore.push(["pattern", f.pattern]);
  if (f.status_code) explore.push(["status_code", f.status_code]);
  $("#in-explorer").setAttribute("href", pageUrl("explore", explore));
}

/** Draws the patterns anew, keeping the keyboard's place on the link that had the focus. */
function drawPatterns(i) {
  const a = document.activeElement;
  const row = a && a.closest && a.closest("#patterns tr[data-pattern]");
  const code = a && a.dataset && a.dataset.status;
  fillPatterns(i);
  const again = row ? $('#patterns tr[data-pattern="' + row.dataset.pattern + '"] a') : code ? $('#codes a[data-status="' + code + '"]') : null;
  if (again) again.focus();
}

function fillPatterns(i) {
  const ctx = i.context || {};
  const body = $("#patterns tbody");
  body.replaceChildren();
  const f = filters();
  const pats = ctx.patterns || [];
  $("#patterns-sub").textContent = ctx.window
    ? "top patterns of its window against the hour before"
    : "";
  if (pats.length === 0) {
    body.appendChild(el("tr", {}, el("td", { colspan: 5, class: "empty" }, "no patterns: no lines in the incident's window")));
  }
  for (const p of pats) {
    const active = f.pattern === p.pattern_id;
    body.appendChild(el("tr", { "data-pattern": p.pattern_id, class: active ? "active" : "" },
      el("td", {},
        el("a", { href: filterHref({ pattern: active ? null : p.pattern_id }), class: "tpl filter", "aria-current": active ? "true" : null,
                  title: active ? "show all lines again" : "show only the lines of this pattern" }, p.template || p.pattern_id),
        p.new ? [" ", el("span", { class: "badge new", title: "not seen in the hour before" }, "new")] : null),
      el("td", { class: "num" }, count(p.count)),
      el("td", { class: "num opt" }, pct(p.share)),
      el("td", { class: "num" }, p.baseline === null || p.baseline === undefined ? "none" : count(p.baseline)),
      el("td", { class: "num opt" }, p.growth === null || p.growth === undefined ? (p.new ? "new" : "–") : "×" + p.growth)));
  }
  const codes = $("#codes");
  codes.replaceChildren();
  if ((ctx.status_codes || []).length) {
    codes.append(el("span", { class: "sub" }, "status codes of its newest " + count(ctx.lines_considered) + " lines:"));
    for (const c of ctx.status_codes) {
      const active = f.status_code === String(c.status_code);
      codes.append(el("a", { href: filterHref({ status_code: active ? null : String(c.status_code) }), class: "badge filter", "data-status": c.status_code,
                             "aria-current": active ? "true" : null }, c.status_code + " ×" + count(c.count)));
    }
  }
}

function eventText(e) {
  const d = e.details || {};
  if (d.summary) return d.summary;
  const parts = [];
  for (const [k, v] of Object.entries(d)) parts.push(k + ": " + (typeof v === "object" ? JSON.stringify(v) : v));
  const s = parts.join(" · ");
  return s.length > 300 ? s.slice(0, 300) + " …" : s;
}

function drawTimeline(i) {
  const ol = $("#timeline");
  const events = i.events || [];
  const shown = events.slice(-200);
  ol.replaceChildren(...shown.map(e => el("li", { class: "event", "data-event": e.event },
    el("div", { class: "row" }, el("span", { class: "ts" }, timeEl(e.at)), el("strong", {}, e.event), el("span", { class: "sub" }, "by " + e.actor)),
    el("div", { class: "sub" }, eventText(e)))));
  if (events.length > shown.length) ol.prepend(el("li", { class: "marker" }, (events.length - shown.length) + " earlier events not shown"));
}

async function loadIncident() {
  const i = await request("incidents/" + encodeURIComponent(id)).then(r => r.data);
  incident = i;
  drawIncident(i);
  drawPatterns(i);
  drawTimeline(i);
  return i;
}

// ---- the service around the incident ----

async function drawChart() {
  const i = incident;
  if (!i) return;
  const now = Date.now();
  const start = Date.parse(i.breach_start), end = i.resolved_at ? Date.parse(i.resolved_at) : now;
  const pad = Math.max(15 * MIN, (end - start) / 4);
  const t0 = start - pad, t1 = Math.min(now, end + pad);
  const windowMin = Math.ceil((now - t0) / MIN) + 1;
  const sub = $("#chart-sub");
  if (windowMin > 10080) {
    sub.textContent = "not drawn: GET /timeseries reaches back 7 days";
    for (const c of ["#error-rate-chart", "#latency-chart"]) $(c).replaceChildren();
    return;
  }
  const step = Math.max(1, Math.ceil((t1 - t0) / MIN / 200));
  const { data, resp } = await request("timeseries?window_minutes=" + windowMin + "&step_minutes=" + step);
  const stepMin = Number(resp.headers.get("logmon-step-minutes")) || step;
  const pts = data.filter(p => p.service === i.service);
  sub.textContent = i.service + ", from " + duration(pad) + " before the breach; per " + stepMin + " min";
  const span = [{ from: start, to: end, label: "#" + i.id + (i.resolved_at ? " (resolved)" : " (ongoing)") }];
  const marks = [{ t: Date.parse(i.created_at), label: "opened", color: "var(--high)" }];
  if (i.acknowledged_at) marks.push({ t: Date.parse(i.acknowledged_at), label: "acknowledged", color: "var(--med)" });
  if (i.resolved_at) marks.push({ t: Date.parse(i.resolved_at), label: "resolved", color: "var(--ok)" });
  const kind = i.details && i.details.kind;
  for (const [sel, field, scale, k, name] of [["#error-rate-chart", "error_rate", 100, "percent", "error rate"], ["#latency-chart", "p95_ms", 1, "ms", "p95 latency"]]) {
    lineChart($(sel), {
      series: [{ name: i.service, color: "#2e6ee6", points: pts.map(p => ({ t: Date.parse(p.ts), v: p[field] === null ? null : p[field] * scale })) }],
      t0, t1, stepMs: stepMin * MIN, kind: k, spans: span, marks,
      threshold: k === "ms" && kind === "latency_p95" ? i.threshold : null,
      empty: "no logs of " + i.service + " around the incident",
      label: name + " of " + i.service + " around incident " + i.id,
    });
  }
}

// ---- lines ----

async function loadLines() {
  const gen = ++generation;
  const { data, resp } = await request(linesUrl());
  if (gen !== generation) return;
  list.clear();
  list.append(data);
  next = nextLink(resp);
  $("#more").hidden = !next;
  $("#lines-note").textContent = data.length === 0 ? "no lines match" : "";
  if (resp.headers.get("logmon-search")) $("#lines-note").textContent = "the search budget ran out before this page was full: Load more continues";
  labelLines();
  if (follower) { stopLive(); startLive(); }
}

/** Says which lines the list shows. */
function labelLines() {
  const f = filters();
  const what = [];
  if (f.pattern) {
    const p = incident && (incident.context.patterns || []).find(x => x.pattern_id === f.pattern);
    what.push("pattern " + (p ? p.template : f.pattern));
  }
  if (f.status_code) what.push("status " + f.status_code);
  $("#lines-sub").textContent = "newest first" + (what.length ? " · only " + what.join(", ") : " · every line the incident's rule counts");
  $("#show-all").hidden = what.length === 0;
  $("#show-all").setAttribute("href", filterHref({}));
}

async function loadMore() {
  if (!next) return;
  const gen = generation;
  const page = await loadPage(list, next, () => gen === generation);
  if (!page) return;
  next = page.next;
  $("#more").hidden = !next;
  if (page.full) {
    $("#lines-note").textContent = "this page keeps at most " + MAX_LINES + " lines: narrow by a pattern, or open the explorer to download them all";
  }
}

function startLive() {
  follower = new LiveFollower({
    afterUrl: cursor => linesUrl({ order: "asc", limit: "200", cursor }),
    newestUrl: () => linesUrl({ limit: "200" }),
    onLines: lines => list.prepend(lines),
    onSkip: () => list.marker("lines arrived faster than this page shows them (over 100 a second): some were skipped"),
    onState: t => ($("#live-state").textContent = t),
  });
  follower.start(list.newest);
  $("#live").setAttribute("aria-pressed", "true");
}

function stopLive() {
  if (follower) follower.stop();
  follower = null;
  $("#live").setAttribute("aria-pressed", "false");
}

// ---- acting: acknowledge, resolve, silence ----

let pending = null; // the action waiting for a token

function authHeaders() {
  const token = sessionStorage.getItem(TOKEN_KEY);
  return token ? { authorization: "Bearer " + token } : {};
}

function who() {
  const v = $("#who").value.trim();
  if (v) localStorage.setItem(NAME_KEY, v);
  return v || null;
}

function say(text) {
  $("#action-msg").textContent = text;
}

async function send(action) {
  const by = who();
  $("#conflict").hidden = true;
  try {
    if (action === "silence") {
      const minutes = Number($("#silence-for").value);
      const body = {
        matchers: [
          { name: "service", value: incident.service, isRegex: false, isEqual: true },
          { name: "incident_type", value: incident.incident_type, isRegex: false, isEqual: true },
        ],
        endsAt: new Date(Date.now() + minutes * MIN).toISOString(),
        createdBy: by || "incident page",
        comment: "from incident #" + incident.id + ": its condition still held",
      };
      const s = await request("silences", { method: "POST", headers: Object.assign({ "content-type": "application/json" }, authHeaders()), body: JSON.stringify(body) });
      say("Silence " + s.data.id + " holds the notifications of " + incident.service + " " + incident.incident_type + " for " + duration(minutes * MIN) + ".");
    } else {
      await request("incidents/" + encodeURIComponent(id) + "/" + action, {
        method: "POST",
        headers: Object.assign({ "content-type": "application/json" }, authHeaders()),
        body: JSON.stringify(by ? { by } : {}),
      });
      say(action === "ack" ? "Acknowledged: it stays open but is not notified again." : "Resolved.");
    }
    $("#auth").hidden = true;
    pending = null;
    await loadIncident();
  } catch (e) {
    if (!(e instanceof ApiError)) throw e;
    if (e.status === 401) {
      const had = sessionStorage.getItem(TOKEN_KEY);
      sessionStorage.removeItem(TOKEN_KEY);
      pending = action;
      $("#auth-why").textContent = had
        ? "The admin token was refused (" + e.message + "). Enter it again:"
        : "This logmon asks for its admin token (--admin-token) to change incidents and silences.";
      $("#auth").hidden = false;
      $("#token").value = "";
      $("#token").focus();
      say("");
    } else if (e.status === 409) {
      const holds = action === "resolve" && /still holds/.test(e.message);
      $("#conflict-title").textContent = action === "resolve" ? "Not resolved." : "Not acknowledged.";
      $("#conflict-msg").textContent = e.message;
      $("#silence-offer").hidden = !holds;
      $("#conflict").hidden = false;
      say("");
      await loadIncident();
    } else {
      say("Failed: " + e.message);
    }
  }
}

function wire() {
  $("#who").value = localStorage.getItem(NAME_KEY) || "";
  $("#ack").addEventListener("click", () => send("ack"));
  $("#resolve").addEventListener("click", () => send("resolve"));
  $("#silence-form").addEventListener("submit", ev => { ev.preventDefault(); send("silence"); });
  $("#auth").addEventListener("submit", ev => {
    ev.preventDefault();
    const t = $("#token").value.trim();
    if (!t) return;
    sessionStorage.setItem(TOKEN_KEY, t);
    if (pending) send(pending);
  });
  $("#auth-cancel").addEventListener("click", () => { $("#auth").hidden = true; pending = null; });
  $("#auth").addEventListener("keydown", ev => { if (ev.key === "Escape") { $("#auth").hidden = true; pending = null; } });
  $("#more").addEventListener("click", () => loadMore().catch(e => say(e.message)));
  $("#live").addEventListener("click", () => (follower ? stopLive() : startLive()));
  // filter links (patterns, status codes, "show all") change the URL and the lines, not the page
  document.addEventListener("click", ev => {
    const a = ev.target.closest && ev.target.closest("a");
    if (!a || ev.defaultPrevented || ev.button !== 0 || ev.metaKey || ev.ctrlKey || ev.shiftKey || ev.altKey) return;
    const u = new URL(a.href, location.href);
    if (u.origin !== location.origin || u.pathname !== location.pathname) return;
    ev.preventDefault();
    history.pushState(null, "", u.pathname + u.search);
    applyFilters();
  });
  window.addEventListener("popstate", applyFilters);
}

async function applyFilters() {
  try {
    await loadLines();
    if (incident) { drawPatterns(incident); drawIncident(incident); }
  } catch (e) {
    setState("cannot load lines: " + e.message, true);
  }
}

async function main() {
  header();
  wire();
  try {
    await Promise.all([loadIncident(), loadLines()]);
    labelLines();
    document.body.dataset.loaded = "true";
    performance.mark("logmon:content-drawn");
    setState("updated " + new Date().toLocaleTimeString(undefined, { hourCycle: "h23" }));
  } catch (e) {
    if (e instanceof ApiError && e.status === 404) {
      $("#title").textContent = "Incident " + id + " does not exist";
      setState(e.message, true);
    } else {
      setState("cannot load: " + e.message + " (reload to retry)", true);
    }
    document.body.dataset.loaded = "error";
    return;
  }
  drawChart().catch(e => ($("#chart-sub").textContent = "cannot draw: " + e.message));
  onResize($("#error-rate-chart"), () => drawChart().catch(() => {}));
  // an unresolved incident keeps changing: its figures, timeline and patterns follow
  let first = true;
  poll(async () => {
    if (first) { first = false; return; }
    if (!incident || incident.status === "resolved") return;
    await loadIncident();
    await drawChart();
    setState("updated " + new Date().toLocaleTimeString(undefined, { hourCycle: "h23" }));
  }, REFRESH_MS);
}

main();
