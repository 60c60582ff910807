// Line charts as SVG: time on x over a window ending where the caller says (usually now), one
// line per service, the y axis scaled to the data with round ticks in one unit, incidents drawn
// as shaded spans that link to their page.
"use strict";
import { el, hm, dayText, utcText } from "./logmon.js";

/** A round step (1, 2, 2.5, 5 x 10^k) giving about `ticks` intervals over `range`. */
export function niceStep(range, ticks) {
  const raw = range / ticks;
  const p = Math.pow(10, Math.floor(Math.log10(raw)));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= raw * 0.999) return m * p;
  return 10 * p;
}

function decimals(step) {
  const s = String(Number(step.toPrecision(6)));
  return s.includes(".") ? s.split(".")[1].length : 0;
}

/**
 * The y axis for `max` (the data's highest value): a round top just above it and round ticks,
 * all in one unit. kind "percent" takes values in %, "ms" takes milliseconds and switches the
 * whole axis to seconds from 2 s up.
 */
export function yAxis(max, kind) {
  if (kind === "percent") {
    const m = max > 0 ? max : 1;
    const step = niceStep(m, 4);
    const top = Math.ceil(m / step - 1e-9) * step;
    const d = decimals(step);
    return { top, step, fmt: v => (v === 0 ? "0" : v.toFixed(d)) + "%" };
  }
  const m = max > 0 ? max : 10;
  if (m >= 2000) {
    const step = niceStep(m / 1000, 4);
    const top = Math.ceil(m / 1000 / step - 1e-9) * step * 1000;
    const d = decimals(step);
    return { top, step: step * 1000, fmt: v => (v === 0 ? "0" : (v / 1000).toFixed(d)) + " s" };
  }
  const step = niceStep(m, 4);
  const top = Math.ceil(m / step - 1e-9) * step;
  const d = decimals(step);
  return { top, step, fmt: v => (v === 0 ? "0" : v.toFixed(d)) + " ms" };
}

const MINUTE = 60000;
const TIME_STEPS = [1, 2, 5, 10, 15, 30, 60, 120, 180, 360, 720, 1440].map(m => m * MINUTE);

/** Tick times on round local clock times, at most `max` of them in [t0, t1]. */
export function timeTicks(t0, t1, max) {
  const step = TIME_STEPS.find(s => (t1 - t0) / s <= max) || TIME_STEPS[TIME_STEPS.length - 1];
  const off = -new Date(t0).getTimezoneOffset() * MINUTE; // align on the viewer's clock
  const ticks = [];
  for (let t = Math.ceil((t0 + off) / step) * step - off; t <= t1; t += step) ticks.push(t);
  return ticks;
}

/**
 * Draws into `svg`. opts: series [{name, color, points: [{t, v}]}] (t in ms, v in the axis' unit
 * or null), t0, t1, stepMs (a longer gap between points breaks the line: no logs is not zero),
 * kind ("percent" | "ms"), spans [{from, to, label, href}], marks [{t, label}], threshold
 * (a value to draw across), empty (text when there is nothing to draw), label (for screen readers).
 */
export function lineChart(svg, opts) {
  svg.replaceChildren();
  const W = Math.max(200, svg.clientWidth || 600);
  const H = Math.max(120, svg.clientHeight || 210);
  const L = 52, R = 8, T = 8, B = 22;
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  svg.setAttribute("role", "img");
  const { t0, t1 } = opts;
  let max = opts.threshold || 0;
  let points = 0;
  for (const s of opts.series) for (const p of s.points) if (p.v !== null && p.t >= t0 && p.t <= t1) { max = Math.max(max, p.v); points++; }
  const axis = yAxis(max, opts.kind);
  const x = t => L + (W - L - R) * (t - t0) / (t1 - t0);
  const y = v => T + (H - T - B) * (1 - v / axis.top);
  svg.dataset.top = String(axis.top);
  for (let v = 0; v <= axis.top + axis.step * 1e-6; v += axis.step) {
    svg.appendChild(el("svg:line", { class: "grid", x1: L, x2: W - R, y1: y(v), y2: y(v) }));
    svg.appendChild(el("svg:text", { class: "ytick", x: L - 6, y: y(v) + 4, "text-anchor": "end" }, axis.fmt(v)));
  }
  const ticks = timeTicks(t0, t1, Math.max(2, Math.floor((W - L - R) / 70)));
  const multiDay = new Date(t0).toDateString() !== new Date(t1).toDateString();
  for (const t of ticks) {
    const d = new Date(t);
    const midnight = d.getHours() === 0 && d.getMinutes() === 0;
    const px = x(t);
    const anchor = px < L + 20 ? "start" : px > W - R - 20 ? "end" : "middle";
    svg.appendChild(el("svg:line", { class: "axis", x1: px, x2: px, y1: H - B, y2: H - B + 4 }));
    svg.appendChild(el("svg:text", { class: "xtick", x: px, y: H - 6, "text-anchor": anchor },
      multiDay && midnight ? dayText(d) : hm(d), el("svg:title", {}, utcText(d))));
  }
  for (const s of opts.spans || []) {
    const a = Math.max(t0, s.from), b = Math.min(t1, s.to ?? t1);
    if (b < t0 || a > t1) continue;
    const rect = el("svg:rect", { class: "span", x: x(a), y: T, width: Math.max(2, x(b) - x(a)), height: H - T - B },
      el("svg:title", {}, s.label));
    svg.appendChild(s.href ? el("svg:a", { href: s.href, class: "span-link", "aria-label": s.label }, rect) : rect);
  }
  for (const m of opts.marks || []) {
    if (m.t < t0 || m.t > t1) continue;
    svg.appendChild(el("svg:line", { class: "mark", x1: x(m.t), x2: x(m.t), y1: T, y2: H - B, stroke: m.color || "currentColor" },
      el("svg:title", {}, m.label)));
  }
  if (opts.threshold) {
    svg.appendChild(el("svg:line", { class: "threshold", x1: L, x2: W - R, y1: y(opts.threshold), y2: y(opts.threshold) },
      el("svg:title", {}, "threshold " + axis.fmt(opts.threshold))));
  }
  if (points === 0) {
    svg.appendChild(el("svg:text", { class: "nodata", x: (L + W) / 2, y: H / 2, "text-anchor": "middle" }, opts.empty || "no logs in this window"));
  }
  const gap = (opts.stepMs || MINUTE) * 1.5;
  for (const s of opts.series) {
    let d = "", prev = null, run = 0;
    const dots = [];
    const flush = () => { if (run === 1) dots.push(prev); };
    for (const p of s.points) {
      if (p.v === null || p.t < t0 || p.t > t1) { flush(); prev = null; run = 0; continue; }
      const brk = prev === null || p.t - prev.t > gap;
      if (brk) { flush(); run = 0; }
      d += (brk ? "M" : "L") + x(p.t).toFixed(1) + "," + y(p.v).toFixed(1);
      prev = p;
      run++;
    }
    flush();
    const path = el("svg:path", { class: "series", d, stroke: s.color, "data-service": s.name }, el("svg:title", {}, s.name));
    svg.appendChild(path);
    for (const p of dots) svg.appendChild(el("svg:circle", { cx: x(p.t), cy: y(p.v), r: 2.5, fill: s.color, "data-service": s.name }));
  }
  svg.setAttribute("aria-label", opts.label + (points ? "" : ": no data"));
}

/** Redraws `draw` when the element's width changes (phones turning, windows resizing). */
export function onResize(elem, draw) {
  let w = elem.clientWidth;
  new ResizeObserver(() => {
    if (elem.clientWidth !== w) { w = elem.clientWidth; draw(); }
  }).observe(elem);
}
