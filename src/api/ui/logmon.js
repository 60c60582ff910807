// Shared by logmon's pages: building elements (text only: nothing from the API is ever parsed as
// HTML), talking to the JSON API, times in the viewer's zone with UTC on hover, numbers, and a
// refresh loop that rests while the tab is hidden.
"use strict";

/** The server's root, from where this file is served (/ui/logmon.js): pages work behind a prefix. */
export const ROOT = new URL("../", import.meta.url);

/** A URL of the API, relative to the server's root ("incidents/4", "logs?service=a"). */
export function api(path) {
  return new URL(path.replace(/^\//, ""), ROOT);
}

/** A link to one of the pages, relative to the server's root. */
export function pageUrl(path, params) {
  const u = api(path);
  if (params) for (const [k, v] of params) if (v !== null && v !== undefined && v !== "") u.searchParams.append(k, v);
  return u.pathname + u.search;
}

/** Only http(s) and same-document links: anything else ("javascript:", "data:") becomes inert. */
export function safeHref(href) {
  try {
    const u = new URL(href, location.href);
    return u.protocol === "http:" || u.protocol === "https:" || u.protocol === "blob:" ? href : "#";
  } catch {
    return "#";
  }
}

const SVG_NS = "http://www.w3.org/2000/svg";

/**
 * An element with attributes and children. Children are nodes or strings; strings become text
 * nodes, so a log line's "<script>" stays text. Event-handler attributes are refused outright
 * and links pass through safeHref.
 */
export function el(tag, attrs, ...children) {
  const svg = tag.startsWith("svg:");
  const e = svg ? document.createElementNS(SVG_NS, tag.slice(4)) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (/^on/i.test(k)) throw new Error("event handlers are attached with addEventListener, not attributes");
    if (k === "href") e.setAttribute(k, safeHref(String(v)));
    else if (k === "dataset") Object.assign(e.dataset, v);
    else e.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    e.appendChild(typeof c === "string" || typeof c === "number" ? document.createTextNode(String(c)) : c);
  }
  return e;
}

export const $ = (sel, root = document) => root.querySelector(sel);

/** An error answered by the API: its status and the JSON error body's message. */
export class ApiError extends Error {
  constructor(status, message, body) {
    super(message);
    this.status = status;
    this.body = body;
  }
}

/** fetch() a JSON answer; a non-2xx becomes an ApiError carrying the API's own message. */
export async function request(path, opts = {}) {
  const headers = Object.assign({ accept: "application/json" }, opts.headers || {});
  let resp;
  try {
    resp = await fetch(typeof path === "string" ? api(path) : path, Object.assign({ cache: "no-store" }, opts, { headers }));
  } catch (e) {
    if (e.name === "AbortError") throw e;
    throw new ApiError(0, "cannot reach logmon (" + e.message + ")");
  }
  let body = null;
  const text = await resp.text();
  if (text) {
    try { body = JSON.parse(text); } catch { body = text; }
  }
  if (!resp.ok) {
    const msg = body && typeof body === "object" && body.error ? body.error : resp.status + " " + resp.statusText;
    throw new ApiError(resp.status, msg, body);
  }
  return { data: body, resp };
}

export async function getJson(path, opts) {
  return (await request(path, opts)).data;
}

/** The URL of a `Link: <...>; rel="next"` header, resolved against the server's root. */
export function nextLink(resp) {
  const link = resp.headers.get("link");
  const m = link && link.match(/<([^>]*)>\s*;\s*rel="?next"?/);
  return m ? api(m[1]) : null;
}

// ---- time: the viewer's zone on screen, UTC on hover (the API and psql speak UTC) ----

export const ZONE = Intl.DateTimeFormat().resolvedOptions().timeZone || "local time";
const fmtClock = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23" });
const fmtHm = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit", hourCycle: "h23" });
const fmtDay = new Intl.DateTimeFormat(undefined, { month: "short", day: "numeric" });

function sameLocalDay(a, b) {
  return a.getFullYear() === b.getFullYear() && a.getMonth() === b.getMonth() && a.getDate() === b.getDate();
}

/** "+05:30" for the viewer's zone at `d`. */
export function utcOffset(d = new Date()) {
  const m = -d.getTimezoneOffset();
  const s = m < 0 ? "-" : "+";
  const a = Math.abs(m);
  return s + String(Math.floor(a / 60)).padStart(2, "0") + ":" + String(a % 60).padStart(2, "0");
}

export function utcText(d) {
  return d.toISOString().replace("T", " ").replace("Z", " UTC");
}

/** A local clock time (24 h), with the day when it is not today. */
export function localText(d, { seconds = true } = {}) {
  const clock = (seconds ? fmtClock : fmtHm).format(d);
  return sameLocalDay(d, new Date()) ? clock : fmtDay.format(d) + " " + clock;
}

export function hm(d) {
  return fmtHm.format(d);
}

export function dayText(d) {
  return fmtDay.format(d);
}

/** A <time> showing `iso` in the viewer's zone, with the exact UTC time on hover. */
export function timeEl(iso, opts) {
  if (!iso) return el("span", { class: "sub" }, "–");
  const d = new Date(iso);
  return el("time", { datetime: iso, title: utcText(d) }, localText(d, opts));
}

/** The header's note on which zone the page shows. */
export function zoneNote() {
  return "times in " + ZONE + " (UTC" + utcOffset() + "); hover a time for UTC";
}

export function duration(ms) {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return s + " s";
  const m = Math.floor(s / 60);
  if (m < 60) return m + " min" + (s % 60 && m < 10 ? " " + (s % 60) + " s" : "");
  const h = Math.floor(m / 60);
  if (h < 48) return h + " h" + (m % 60 ? " " + (m % 60) + " min" : "");
  return Math.floor(h / 24) + " d " + (h % 24) + " h";
}

export function ago(iso, now = Date.now()) {
  const ms = now - new Date(iso).getTime();
  return ms < 5000 ? "just now" : duration(ms) + " ago";
}

// ---- numbers ----

const fmtCount = new Intl.NumberFormat(undefined);
export const count = n => (n === null || n === undefined ? "–" : fmtCount.format(n));

export function pct(fraction) {
  if (fraction === null || fraction === undefined) return "–";
  const p = fraction * 100;
  if (p === 0) return "0%";
  return (p < 1 ? p.toFixed(2) : p < 10 ? p.toFixed(1) : p.toFixed(0)) + "%";
}

export function ms(v) {
  if (v === null || v === undefined) return "–";
  if (v >= 1000) return (v / 1000).toFixed(v >= 10000 ? 1 : 2) + " s";
  return (v < 10 ? v.toFixed(1) : v.toFixed(0)) + " ms";
}

// ---- a refresh loop that rests while the tab is hidden ----

/** Calls `fn` now and every `everyMs` after it finishes; nothing runs while the tab is hidden. */
export function poll(fn, everyMs) {
  let timer = null;
  let running = false;
  let stopped = false;
  const schedule = () => {
    clearTimeout(timer);
    if (!stopped && !document.hidden) timer = setTimeout(tick, everyMs);
  };
  async function tick() {
    if (stopped || document.hidden || running) return;
    running = true;
    try { await fn(); } catch (e) { console.warn(e); } finally { running = false; schedule(); }
  }
  const onVisibility = () => (document.hidden ? clearTimeout(timer) : tick());
  document.addEventListener("visibilitychange", onVisibility);
  tick();
  return {
    now: tick,
    stop() { stopped = true; clearTimeout(timer); document.removeEventListener("visibilitychange", onVisibility); },
  };
}

/** Fills the header's zone note and marks the current page in the navigation. */
export function header() {
  const tz = document.getElementById("tz");
  if (tz) tz.textContent = zoneNote();
}

/** Says what the page is doing in its header (errors stand out). */
export function setState(text, error = false) {
  const s = document.getElementById("state");
  if (!s) return;
  s.textContent = text;
  s.classList.toggle("error", error);
}

/** A colour per service, stable for a set of names. */
const COLORS = ["#2e6ee6", "#d92d20", "#12a36b", "#e07b00", "#7a5af8", "#0e9384", "#c11574", "#5d6b98", "#b54708", "#667085"];
export function colorsFor(names) {
  const m = new Map();
  [...new Set(names)].sort().forEach((s, i) => m.set(s, COLORS[i % COLORS.length]));
  return m;
}

/** A coloured square before a service name (the colour set with CSSOM: style attributes are refused by the CSP). */
export function swatch(color) {
  const s = el("span", { class: "swatch", "aria-hidden": "true" });
  s.style.setProperty("--c", color);
  return s;
}
