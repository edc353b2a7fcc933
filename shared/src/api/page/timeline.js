// Upcoming as a timeline: a customer's moments on a time axis, one lane per
// entity (the contract, each commit, each credit), each moment a mark by
// kind. Plain SVG built here (nothing loaded from elsewhere); every mark
// takes keyboard focus and tells what it is, reason included, in its
// tooltip and in the detail line under the chart.
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const TIMELINE_DAY = 86_400_000;
/** Spans the axis can show, from the start of today. */
const SPANS = { week: 7, month: 31, quarter: 92, year: 366 };
/** Mark colours by kind of moment. */
const KINDS = {
  start: ["start", "#1a7f37"],
  end: ["end", "#b42318"],
  "segment.start": ["segment start", "#0b5cad"],
  "segment.end": ["segment end", "#9a6700"],
};
const LANE = 48;
const AXIS = 34;

function svg(tag, attrs, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value != null && value !== false) el.setAttribute(name, value);
  }
  for (const child of children.flat()) {
    if (child != null) el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

function kindOf(eventType) {
  return eventType.includes(".segment.") ? (eventType.endsWith(".start") ? "segment.start" : "segment.end")
    : eventType.endsWith(".start") ? "start" : "end";
}

/** The entity a moment belongs to (`key`, as the page names it): its lane. */
function laneOf(s) {
  if (s.contract_id) return { key: `contract ${s.contract_id}`, order: 0 };
  if (s.commit_id) return { key: `commit ${s.commit_id}`, order: 1 };
  return { key: `credit ${s.credit_id}`, order: 2 };
}

function shortDate(ms, withYear) {
  return new Date(ms).toLocaleDateString(undefined, withYear
    ? { month: "short", day: "numeric", year: "numeric" } : { month: "short", day: "numeric" });
}

/** Axis ticks for a span: days for a week, weeks for a month, months beyond. */
function ticks(start, end, spanDays) {
  const out = [];
  if (spanDays <= 7) {
    for (let t = start; t <= end; t += TIMELINE_DAY) out.push(t);
  } else if (spanDays <= 31) {
    for (let t = start; t <= end; t += 7 * TIMELINE_DAY) out.push(t);
  } else {
    const d = new Date(start);
    let month = new Date(d.getFullYear(), d.getMonth() + 1, 1).getTime();
    while (month <= end) {
      out.push(month);
      const m = new Date(month);
      month = new Date(m.getFullYear(), m.getMonth() + 1, 1).getTime();
    }
  }
  return out;
}

/**
 * Draws `items` (upcoming rows of the API: pending and skipped) into `host`
 * over `span` from the start of today, or from the earliest item when that
 * is sooner (a skipped moment lies in the past). `label(s)` names a moment
 * for its tooltip. Returns how many fire after the span's end (not drawn).
 */
function drawTimeline(host, items, span, label) {
  const width = Math.max(280, Math.floor(host.clientWidth || 800));
  const today = new Date();
  today.setHours(0, 0, 0, 0);
  const spanDays = SPANS[span] || SPANS.quarter;
  const start = Math.min(today.getTime(), ...items.map((s) => Date.parse(s.fire_at)));
  const end = today.getTime() + spanDays * TIMELINE_DAY;
  const shown = items.filter((s) => Date.parse(s.fire_at) <= end);
  const lanes = [...new Map(shown.map((s) => [laneOf(s).key, laneOf(s)])).values()]
    .sort((a, b) => a.order - b.order || a.key.localeCompare(b.key));
  const pad = 12;
  const x = (ms) => pad + ((ms - start) / (end - start)) * (width - 2 * pad);
  const height = AXIS + lanes.length * LANE + 8;
  const chart = svg("svg", {
    class: "timeline", width, height, viewBox: `0 0 ${width} ${height}`, role: "group",
    "aria-label": `Timeline from ${shortDate(start, true)} to ${shortDate(end, true)}: ${shown.length} moments`,
    "data-start": new Date(start).toISOString(), "data-end": new Date(end).toISOString(),
  });
  chart.append(svg("line", { x1: pad, x2: width - pad, y1: AXIS - 8, y2: AXIS - 8, class: "axis" }));
  const marks = ticks(start, end, spanDays);
  const every = Math.max(1, Math.ceil((marks.length * 56) / width));
  marks.forEach((t, i) => {
    chart.append(svg("line", { x1: x(t), x2: x(t), y1: AXIS - 12, y2: height - 4, class: "tick" }));
    if (i % every === 0) {
      chart.append(svg("text", { x: x(t), y: AXIS - 16, class: "tick-label", "text-anchor": "middle" }, shortDate(t)));
    }
  });
  if (today.getTime() > start) {
    chart.append(svg("line", { x1: x(Date.now()), x2: x(Date.now()), y1: AXIS - 12, y2: height - 4, class: "now" }));
  }
  lanes.forEach((lane, i) => {
    const y = AXIS + i * LANE;
    chart.append(svg("text", { x: pad, y: y + 12, class: "lane-label" }, lane.key));
    chart.append(svg("line", { x1: pad, x2: width - pad, y1: y + 26, y2: y + 26, class: "lane", "data-lane": lane.key }));
  });
  // Moments of one lane at the same place (a segment's end is the next
  // one's start) stand one above the other instead of hiding each other.
  const spot = (s) => `${laneOf(s).key}|${Math.round(x(Date.parse(s.fire_at)) / 8)}`;
  const together = new Map();
  for (const s of shown) together.set(spot(s), (together.get(spot(s)) || 0) + 1);
  const placed = new Map();
  const radius = width < 500 ? 5 : 7;
  const endsFirst = (s) => (s.event_type.endsWith(".end") ? 0 : 1);
  for (const s of shown.sort((a, b) => a.fire_at.localeCompare(b.fire_at) || endsFirst(a) - endsFirst(b))) {
    const lane = lanes.findIndex((l) => l.key === laneOf(s).key);
    const slot = placed.get(spot(s)) || 0;
    placed.set(spot(s), slot + 1);
    const y = AXIS + lane * LANE + 26 + (slot - (together.get(spot(s)) - 1) / 2) * (2 * radius + 1);
    const [kind, colour] = KINDS[kindOf(s.event_type)];
    const fires = Date.parse(s.fire_at);
    const moment = Date.parse(s.event_time);
    const text = label(s, kind);
    const group = svg("g", {
      class: `mark ${s.status}${s.late ? " late" : ""}`, tabindex: 0, role: "img", "aria-label": text,
      "data-schedule-id": s.schedule_id, "data-lane": laneOf(s).key, "data-fire-at": s.fire_at,
    }, svg("title", {}, text));
    if (moment !== fires && moment >= start && moment <= end) {
      // An offset moment is linked to the moment it anticipates (or follows).
      group.append(svg("line", { x1: x(fires), x2: x(moment), y1: y, y2: y, class: "link", stroke: colour }));
      group.append(svg("rect", { x: x(moment) - 3, y: y - 3, width: 6, height: 6, class: "anchor", fill: colour,
        transform: `rotate(45 ${x(moment)} ${y})` }));
    }
    group.append(svg("circle", { cx: x(fires), cy: y, r: radius, fill: s.status === "skipped" ? "#fff" : colour,
      stroke: colour, class: "dot" }));
    if (s.status === "skipped") {
      group.append(svg("path", { d: `M${x(fires) - 4} ${y - 4}l8 8m0 -8l-8 8`, stroke: colour, class: "cross" }));
    }
    chart.append(group);
  }
  const legend = Object.values(KINDS).map(([name, colour]) =>
    h("span", { className: "legend-item" }, h("span", { className: "swatch", "data-colour": colour }), name));
  const wrap = h("div", { className: "timeline-wrap" },
    chart,
    h("div", { className: "legend" }, legend, h("span", { className: "legend-item" }, "hollow with a cross: skipped")),
    h("p", { className: "timeline-detail hint", "aria-live": "polite" },
      "Focus or point at a mark for what it is."));
  // Colours as properties, not inline style attributes (the page's policy refuses those).
  for (const swatch of wrap.querySelectorAll(".swatch")) swatch.style.background = swatch.dataset.colour;
  host.replaceChildren(wrap);
  for (const group of chart.querySelectorAll(".mark")) {
    const tellDetail = () => {
      wrap.querySelector(".timeline-detail").textContent = group.getAttribute("aria-label");
    };
    group.addEventListener("focus", tellDetail);
    group.addEventListener("mouseenter", tellDetail);
  }
  return items.length - shown.length;
}
