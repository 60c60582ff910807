// The log explorer: GET /logs's filters as a form whose state is the page's query string (the
// same parameters GET /logs takes), results newest first with "load more" through the cursor, a
// live mode that follows new lines (capped rate, resting while the tab is hidden), the patterns
// of the same window, and the search as an NDJSON download.
"use strict";
import { el, $, api, request, getJson, nextLink, count, pct, header, setState, ApiError, localText } from "./logmon.js";
import { LineList, LiveFollower, MAX_LINES, loadPage } from "./lines.js";

const PAGE = 100;
const KEYS = ["service", "level", "since", "until", "q", "status_code", "min_latency_ms", "pattern"];
const form = $("#query");
let next = null;
let follower = null;
let generation = 0;

/** The search of the URL: GET /logs's own parameters, nothing else. */
function current() {
  const q = new URLSearchParams(location.search);
  const p = new URLSearchParams();
  for (const [k, v] of q) if ((KEYS.includes(k) || k.startsWith("attr.")) && v !== "") p.append(k, v);
  return p;
}

function fillForm(p) {
  $("#f-service").value = p.getAll("service").join(", ");
  $("#f-level").value = (p.get("level") || "").toUpperCase();
  $("#f-since").value = p.get("since") || "";
  $("#f-until").value = p.get("until") || "";
  $("#f-q").value = p.get("q") || "";
  $("#f-status").value = p.get("status_code") || "";
  $("#f-latency").value = p.get("min_latency_ms") || "";
  $("#f-pattern").value = p.get("pattern") || "";
  $("#f-attrs").value = [...p].filter(([k]) => k.startsWith("attr.")).map(([k, v]) => k.slice(5) + "=" + v).join("\n");
  for (const i of form.querySelectorAll("[aria-invalid]")) i.removeAttribute("aria-invalid");
}

/** The form as GET /logs parameters (empty fields left out). */
function fromForm() {
  const p = new URLSearchParams();
  for (const s of $("#f-service").value.split(",")) if (s.trim()) p.append("service", s.trim());
  const simple = [["level", "#f-level"], ["since", "#f-since"], ["until", "#f-until"], ["q", "#f-q"], ["status_code", "#f-status"],
                  ["min_latency_ms", "#f-latency"], ["pattern", "#f-pattern"]];
  for (const [k, sel] of simple) {
    const v = k === "q" ? $(sel).value : $(sel).value.trim();
    if (v) p.set(k, v);
  }
  for (const line of $("#f-attrs").value.split("\n")) {
    const at = line.indexOf("=");
    if (line.trim() && at > 0) p.append("attr." + line.slice(0, at).trim(), line.slice(at + 1).trim());
  }
  return p;
}

function logsUrl(p, extra = {}) {
  const u = api("logs");
  for (const [k, v] of p) u.searchParams.append(k, v);
  for (const [k, v] of Object.entries(extra)) if (v) u.searchParams.set(k, v);
  return u;
}

const list = new LineList($("#lines"), line => {
  const p = current();
  p.set("pattern", line.pattern_id);
  return "explore?" + p;
});

function showError(e) {
  const field = e.body && e.body.details && e.body.details[0] && e.body.details[0].field;
  const input = field && form.querySelector(field.startsWith("attr.") ? "#f-attrs" : '[name="' + CSS.escape(field) + '"]');
  if (input) input.setAttribute("aria-invalid", "true");
  $("#lines-note").textContent = e.message;
  $("#lines-note").setAttribute("role", "alert");
}

async function run() {
  const gen = ++generation;
  const p = current();
  fillForm(p);
  const wasLive = !!follower;
  stopLive();
  $("#lines-note").textContent = "";
  $("#lines-note").removeAttribute("role");
  $("#curl").textContent = "curl -s -H 'accept: application/x-ndjson' '" + logsUrl(p).href.replace(/'/g, "'\\''") + "'";
  $("#live").disabled = p.has("until");
  $("#live").title = p.has("until") ? "live mode follows new lines: clear until first" : "";
  loadPatterns(p).catch(e => ($("#patterns-sub").textContent = "cannot load: " + e.message));
  const t0 = performance.now();
  try {
    const { data, resp } = await request(logsUrl(p, { limit: String(PAGE) }));
    if (gen !== generation) return;
    list.clear();
    list.append(data);
    next = nextLink(resp);
    $("#more").hidden = !next;
    $("#res-sub").textContent = "newest first · " + (data.length === 0 ? "no lines match" : data.length + (next ? "+" : "") + " lines") +
      " · " + Math.round(performance.now() - t0) + " ms";
    if (resp.headers.get("logmon-search")) $("#lines-note").textContent = "the search budget ran out before this page was full: Load more continues";
    setState("searched " + localText(new Date()));
    if (wasLive && !p.has("until")) startLive();
  } catch (e) {
    if (gen !== generation) return;
    list.clear();
    next = null;
    $("#more").hidden = true;
    $("#res-sub").textContent = "";
    if (e instanceof ApiError) showError(e);
    else throw e;
  }
  document.body.dataset.loaded = "true";
  if (!performance.getEntriesByName("logmon:content-drawn").length) performance.mark("logmon:content-drawn");
}

async function loadMore() {
  if (!next) return;
  const gen = generation;
  const page = await loadPage(list, next, () => gen === generation);
  if (!page) return;
  next = page.next;
  $("#more").hidden = !next;
  $("#res-sub").textContent = "newest first · " + list.size + (next ? "+" : "") + " lines";
  if (page.full) {
    $("#lines-note").textContent = "this page keeps at most " + MAX_LINES + " lines: narrow the search, or download it as NDJSON";
  }
}

/** Minutes from `since` (relative or a time) to now, for GET /patterns' window. */
function windowMinutes(since) {
  const s = since || "15m";
  const m = s.match(/^(\d+)([smhd])$/);
  let min;
  if (m) min = Number(m[1]) * { s: 1 / 60, m: 1, h: 60, d: 1440 }[m[2]];
  else min = (Date.now() - Date.parse(s)) / 60000;
  return Math.min(10080, Math.max(1, Math.ceil(min || 15)));
}

async function loadPatterns(p) {
  const services = p.getAll("service");
  const minutes = windowMinutes(p.get("since"));
  const u = api("patterns");
  u.searchParams.set("window_minutes", String(minutes));
  u.searchParams.set("limit", services.length === 1 ? "20" : "100");
  if (services.length === 1) u.searchParams.set("service", services[0]);
  if (p.get("level")) u.searchParams.set("level", p.get("level"));
  const gen = generation;
  let pats = await getJson(u);
  if (gen !== generation) return;
  if (services.length > 1) pats = pats.filter(x => services.includes(x.service));
  pats = pats.sort((a, b) => b.count - a.count).slice(0, 20);
  const others = ["q", "status_code", "min_latency_ms", "until"].filter(k => p.has(k)).concat([...p.keys()].filter(k => k.startsWith("attr.")));
  $("#patterns-sub").textContent = "last " + minutes + " min" + (p.get("level") ? ", " + p.get("level") + " and above" : "") +
    (services.length ? ", " + services.join(", ") : ", every service") +
    (others.length ? " (GET /patterns counts by service, level and window: " + others.join(", ") + " not applied)" : "");
  const body = $("#patterns tbody");
  body.replaceChildren();
  if (pats.length === 0) body.appendChild(el("tr", {}, el("td", { colspan: 4, class: "empty" }, "no patterns in this window")));
  const active = p.get("pattern");
  for (const x of pats) {
    const q = current();
    if (active === x.pattern_id) q.delete("pattern");
    else q.set("pattern", x.pattern_id);
    body.appendChild(el("tr", { "data-pattern": x.pattern_id, class: active === x.pattern_id ? "active" : "" },
      el("td", {},
        el("a", { href: "explore?" + q, class: "tpl", "aria-current": active === x.pattern_id ? "true" : null }, x.template || x.pattern_id),
        x.new ? [" ", el("span", { class: "badge new", title: "first seen in this window" }, "new")] : null,
        services.length === 1 ? null : el("div", { class: "sub" }, x.service)),
      el("td", { class: "num" }, count(x.count)),
      el("td", { class: "num opt" }, pct(x.share)),
      el("td", { class: "num" }, count(x.previous))));
  }
}

function startLive() {
  const p = current();
  if (p.has("until")) return;
  follower = new LiveFollower({
    afterUrl: cursor => logsUrl(p, { order: "asc", limit: "200", cursor }),
    newestUrl: () => logsUrl(p, { limit: "200" }),
    onLines: lines => list.prepend(lines),
    onSkip: () => list.marker("lines arrived faster than this page shows them (over 100 a second): some were skipped"),
    onState: t => ($("#live-state").textContent = t),
  });
  follower.start(list.newest);
  $("#live").setAttribute("aria-pressed", "true");
  $("#more").hidden = true; // new lines push old ones out: paging down would leave holes
}

function stopLive() {
  if (!follower) return;
  follower.stop();
  follower = null;
  $("#live").setAttribute("aria-pressed", "false");
}

/** The current search as an NDJSON file (the server caps it at --max-export-rows). */
async function download() {
  const state = $("#download-state");
  const p = current();
  state.textContent = "exporting…";
  try {
    const resp = await fetch(logsUrl(p), { headers: { accept: "application/x-ndjson" }, cache: "no-store" });
    if (!resp.ok) {
      const body = await resp.json().catch(() => ({}));
      throw new Error(body.error || resp.status + " " + resp.statusText);
    }
    const chunks = [];
    let lines = 0;
    const reader = resp.body.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      for (const b of value) if (b === 10) lines++;
    }
    const blob = new Blob(chunks, { type: "application/x-ndjson" });
    const tail = await blob.slice(Math.max(0, blob.size - 4096)).text();
    const truncated = /"truncated":\s*true/.test(tail.trim().split("\n").pop() || "");
    const a = el("a", { href: URL.createObjectURL(blob), download: "logmon-" + new Date().toISOString().replace(/[:.]/g, "-") + ".ndjson" });
    document.body.appendChild(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(a.href), 10000);
    state.textContent = "downloaded " + count(truncated ? lines - 1 : lines) + " lines" +
      (truncated ? " (capped by --max-export-rows: its last line says where to continue)" : "");
  } catch (e) {
    state.textContent = "download failed: " + e.message;
  }
}

function navigate(search) {
  const target = "explore" + (search ? "?" + search : "");
  if (location.pathname + location.search !== new URL(target, location.href).pathname + new URL(target, location.href).search) {
    history.pushState(null, "", target);
  }
  run();
}

function wire() {
  form.addEventListener("submit", ev => { ev.preventDefault(); navigate(fromForm().toString()); });
  $("#more").addEventListener("click", () => loadMore().catch(e => ($("#lines-note").textContent = e.message)));
  $("#live").addEventListener("click", () => (follower ? stopLive() : startLive()));
  $("#download").addEventListener("click", download);
  window.addEventListener("popstate", run);
  document.addEventListener("click", ev => {
    const a = ev.target.closest && ev.target.closest("a");
    if (!a || ev.defaultPrevented || ev.button !== 0 || ev.metaKey || ev.ctrlKey || ev.shiftKey || ev.altKey) return;
    const u = new URL(a.href, location.href);
    if (u.origin !== location.origin || u.pathname !== location.pathname) return;
    ev.preventDefault();
    navigate(u.search.slice(1));
  });
  // "/" jumps to the message search, as on many log tools
  document.addEventListener("keydown", ev => {
    if (ev.key !== "/" || ev.ctrlKey || ev.metaKey || ev.altKey) return;
    if (ev.target.closest && ev.target.closest("input, textarea, select")) return;
    ev.preventDefault();
    $("#f-q").focus();
  });
}

async function services() {
  const stats = await getJson("stats?window_minutes=1440");
  $("#services").replaceChildren(...stats.map(s => el("option", { value: s.service })));
}

header();
wire();
services().catch(() => {});
run().catch(e => setState("cannot search: " + e.message, true));
