// Log lines on a page: a list that never holds more than MAX_LINES lines (older pages and live
// lines alike), each line's text inserted as text, and a live follower that polls for lines
// after the newest one, at a capped rate, resting while the tab is hidden.
"use strict";
import { el, timeEl, ms, request, nextLink } from "./logmon.js";

/** The most lines a page keeps (in the DOM and in memory). */
export const MAX_LINES = 1000;
/** Lines shown of a message before it is cut (the whole message is one click away). */
const PREVIEW = 400;

/**
 * One line as a <li>: a summary row (time, level, service, status, latency, message) that opens
 * on the rest (the whole message, attributes, pattern). `patternLink(line)` gives the href that
 * filters by the line's pattern.
 */
export function renderLine(line, patternLink) {
  const msg = line.message ?? "";
  const summary = el("summary", {},
    el("span", { class: "ts" }, timeEl(line.ts)),
    el("span", { class: "lvl" }, line.level || "–"),
    el("span", { class: "svc" }, line.service || ""),
    line.status_code ? el("span", { class: "code", title: "status code" }, String(line.status_code)) : null,
    line.latency_ms !== null && line.latency_ms !== undefined ? el("span", { class: "lat", title: "latency" }, ms(line.latency_ms)) : null,
    el("span", { class: "msg" }, msg.length > PREVIEW ? msg.slice(0, PREVIEW) + " …" : msg));
  const details = el("details", {}, summary);
  details.addEventListener("toggle", () => {
    if (!details.open || details.querySelector(".more")) return;
    const more = el("div", { class: "more" });
    if (msg.length > PREVIEW) more.appendChild(el("pre", { class: "full" }, msg));
    if (line.pattern_id) {
      more.appendChild(el("div", {}, "pattern ",
        el("a", { href: patternLink(line), class: "tpl", "data-pattern": line.pattern_id }, line.pattern || line.pattern_id)));
    }
    if (line.attrs && Object.keys(line.attrs).length) more.appendChild(el("pre", { class: "attrs" }, JSON.stringify(line.attrs, null, 2)));
    more.appendChild(el("div", { class: "sub" }, "received ", timeEl(line.received_at), " · ts ", line.ts));
    details.appendChild(more);
  }, { once: false });
  const li = el("li", { class: "line lvl-" + (line.level || "none"), "data-cursor": line.cursor }, details);
  return li;
}

/** A list of lines, newest on top, bounded by `max`. */
export class LineList {
  constructor(ol, patternLink, max = MAX_LINES) {
    this.ol = ol;
    this.patternLink = patternLink;
    this.max = max;
    this.trimmed = 0;
    ol.dataset.max = String(max);
  }
  get size() { return this.ol.querySelectorAll("li.line").length; }
  /** The cursor of the newest line shown. */
  get newest() { const li = this.ol.querySelector("li.line"); return li ? li.dataset.cursor : null; }
  clear() { this.ol.replaceChildren(); this.trimmed = 0; }
  /** Older lines at the bottom; returns how many fitted (the rest would pass the bound). */
  append(lines) {
    const room = Math.max(0, this.max - this.size);
    const frag = document.createDocumentFragment();
    for (const l of lines.slice(0, room)) frag.appendChild(renderLine(l, this.patternLink));
    this.ol.appendChild(frag);
    return Math.min(room, lines.length);
  }
  /** Newer lines (oldest first, as live mode reads them) on top; the oldest fall off the bottom. */
  prepend(linesAsc) {
    for (const li of this.ol.querySelectorAll("li.fresh")) li.classList.remove("fresh");
    const frag = document.createDocumentFragment();
    for (let i = linesAsc.length - 1; i >= 0; i--) {
      const li = renderLine(linesAsc[i], this.patternLink);
      li.classList.add("fresh");
      frag.appendChild(li);
    }
    this.ol.insertBefore(frag, this.ol.firstChild);
    return this.trim();
  }
  /** A row that is not a line (e.g. "lines skipped"), on top. */
  marker(text) {
    this.ol.insertBefore(el("li", { class: "marker", role: "note" }, text), this.ol.firstChild);
    this.trim();
  }
  trim() {
    let dropped = 0;
    const items = this.ol.children;
    while (this.size > this.max) {
      const last = items[items.length - 1];
      if (last.classList.contains("line")) dropped++;
      last.remove();
    }
    // markers left at the bottom would describe lines no longer shown
    while (items.length && !items[items.length - 1].classList.contains("line")) items[items.length - 1].remove();
    while (this.ol.querySelectorAll("li.marker").length > 20) [...this.ol.querySelectorAll("li.marker")].pop().remove();
    this.trimmed += dropped;
    return dropped;
  }
}

/**
 * "Load more": the page at `url` appended to `list`. Returns null when the answer came too late
 * (`stillWanted()` false: the search changed meanwhile), else the link to the page after it (null
 * when none, or when the list is full) and whether lines were left out because it is full.
 */
export async function loadPage(list, url, stillWanted) {
  const { data, resp } = await request(url);
  if (!stillWanted()) return null;
  const fitted = list.append(data);
  const full = fitted < data.length;
  return { next: full ? null : nextLink(resp), full };
}

/**
 * Follows new lines: every `everyMs`, asks for the lines after the newest one (order=asc, at
 * most `pageSize`). A full page means lines arrive faster than the page shows them (more than
 * pageSize / everyMs): it jumps to the newest lines and reports how it skipped, so the rate on
 * screen stays capped. Nothing is asked while the tab is hidden.
 *   afterUrl(cursor) -> URL of the lines after cursor (order=asc, limit=pageSize)
 *   newestUrl() -> URL of the newest lines (order=desc, limit=pageSize)
 *   onLines(linesAsc), onSkip(), onState(text)
 */
export class LiveFollower {
  constructor({ afterUrl, newestUrl, onLines, onSkip, onState, everyMs = 2000, pageSize = 200 }) {
    Object.assign(this, { afterUrl, newestUrl, onLines, onSkip, onState, everyMs, pageSize });
    this.timer = null;
    this.on = false;
    this.busy = false;
    this.polls = 0;
    this.onVisibility = () => {
      if (!this.on) return;
      if (document.hidden) { clearTimeout(this.timer); this.onState("live: paused while the tab is hidden"); }
      else this.tick();
    };
  }
  start(cursor) {
    this.cursor = cursor;
    this.on = true;
    document.addEventListener("visibilitychange", this.onVisibility);
    this.onState("live: following new lines");
    this.tick();
  }
  stop() {
    this.on = false;
    clearTimeout(this.timer);
    document.removeEventListener("visibilitychange", this.onVisibility);
    this.onState("");
  }
  schedule() {
    clearTimeout(this.timer);
    if (this.on && !document.hidden) this.timer = setTimeout(() => this.tick(), this.everyMs);
  }
  async tick() {
    if (!this.on || this.busy) return;
    if (document.hidden) { this.onState("live: paused while the tab is hidden"); return; }
    this.busy = true;
    try {
      this.polls++;
      const fresh = !this.cursor;
      const { data, resp } = await request(fresh ? this.newestUrl() : this.afterUrl(this.cursor));
      if (!this.on) return;
      let lines = fresh ? data.slice().reverse() : data;
      if (!fresh && lines.length >= this.pageSize) {
        // falling behind: show the newest lines instead of everything
        const newest = await request(this.newestUrl());
        if (!this.on) return;
        this.onSkip();
        lines = newest.data.slice().reverse();
      }
      if (lines.length) {
        this.cursor = lines[lines.length - 1].cursor;
        this.onLines(lines);
      } else if (!fresh) {
        // the search budget may end a page early: continue where it stopped
        const next = nextLink(resp);
        const c = next && next.searchParams.get("cursor");
        if (c) this.cursor = c;
      }
      this.onState("live: following new lines · checked " + new Date().toLocaleTimeString(undefined, { hourCycle: "h23" }));
    } catch (e) {
      this.onState("live: " + e.message + " (retrying)");
    } finally {
      this.busy = false;
      this.schedule();
    }
  }
}
