// The Health view: the last hour or day from GET /v1/stats (webhooks fired
// and delivered, delivery lag p50/p99, failed attempts), the backlog now and
// the endpoints that are failing or disabled, each linking to its deliveries.
// Charts are plain SVG built here (svg() from timeline.js, h() from app.js);
// every bar and point carries its figures in data attributes and a <title>,
// and each chart takes keyboard focus (arrow keys walk its minutes).
"use strict";

const MINUTE = 60_000;
/** A span: its length, the minutes a bar stands for, and its name. */
const HEALTH_SPANS = {
  hour: { minutes: 60, bin: 1, name: "the last hour" },
  day: { minutes: 1440, bin: 15, name: "the last day" },
};
const CHART_HEIGHT = 160;
/** Axis labels: 950, 1.2K, 3M. */
const COMPACT = new Intl.NumberFormat("en-US", { notation: "compact" });

/** The span's window: whole minutes up to the end of the current one (a
 * day starts on a quarter hour, so that each bar is one). */
function healthWindow(span) {
  const { minutes, bin } = HEALTH_SPANS[span];
  const until = Math.floor(Date.now() / MINUTE) * MINUTE + MINUTE;
  const since = Math.floor((until - minutes * MINUTE) / (bin * MINUTE)) * bin * MINUTE;
  return { since, until };
}

const isoMinute = (ms) => new Date(ms).toISOString().replace(/\.\d+Z$/, "Z");

async function loadHealth() {
  const span = state.healthSpan || "hour";
  const { since, until } = healthWindow(span);
  const request = ++state.healthRequest;
  try {
    const [stats, endpoints] = await Promise.all([
      api("GET", `/v1/stats?since=${isoMinute(since)}&until=${isoMinute(until)}`),
      all("/v1/webhook-endpoints"),
    ]);
    if (request !== state.healthRequest) return;
    state.endpoints = endpoints;
    state.health = { span, since, until, stats, at: Date.now() };
    $("err-health").textContent = "";
    renderHealth();
  } catch (error) {
    if (request === state.healthRequest) $("err-health").textContent = error.message;
  }
}

/** Sums the API's minutes into bars of `bin` minutes from `since`. A bar's
 * p50 is its minutes' p50 weighted by deliveries, its p99 the worst minute's. */
function binsOf(rows, since, until, bin) {
  const bins = [];
  for (let t = since; t < until; t += bin * MINUTE) {
    bins.push({ start: t, minutes: Math.min(bin, (until - t) / MINUTE), fired: 0, delivered: 0, failed: 0,
      p50: null, p99: null, weight: 0 });
  }
  for (const row of rows) {
    const b = bins[Math.floor((Date.parse(row.minute) - since) / (bin * MINUTE))];
    if (!b) continue;
    b.fired += row.fired;
    b.delivered += row.delivered;
    b.failed += row.failed;
    if (row.lag_p50_s != null) {
      const w = Math.max(1, row.delivered);
      b.p50 = b.weight ? (b.p50 * b.weight + row.lag_p50_s * w) / (b.weight + w) : row.lag_p50_s;
      b.weight += w;
    }
    if (row.lag_p99_s != null) b.p99 = Math.max(b.p99 || 0, row.lag_p99_s);
  }
  return bins;
}

function seconds(v) {
  if (v == null) return "—";
  if (v >= 100) return `${Math.round(v).toLocaleString("en-US")} s`;
  return `${Number(v.toPrecision(2))} s`;
}

const clock = (ms) => new Date(ms).toLocaleTimeString(undefined, { hour: "numeric", minute: "2-digit" });

/** A bar in words: its time, then every figure. */
function binInWords(b) {
  const day = new Date(b.start).toLocaleDateString(undefined, { month: "short", day: "numeric" });
  const time = b.minutes > 1 ? `${clock(b.start)}–${clock(b.start + b.minutes * MINUTE)}` : clock(b.start);
  const lag = b.p50 == null ? "no lag measured" : `lag p50 ${seconds(b.p50)}, p99 ${seconds(b.p99)}`;
  return `${day}, ${time}: ${plural(b.fired, "webhook")} fired, ${b.delivered.toLocaleString("en-US")} delivered, ` +
    `${plural(b.failed, "failed attempt")}; ${lag}`;
}

/** The smallest round value at or above `v` (at least `least`). */
function niceTop(v, least) {
  if (v <= least) return least;
  const exp = 10 ** Math.floor(Math.log10(v));
  return [1, 2, 2.5, 5, 10].map((f) => f * exp).find((n) => n >= v);
}

/**
 * Draws one chart of `bins` into `host`: `series` are [key, name, "bar" or
 * "line"]; `format` writes an axis value. The first bar series is drawn
 * wide, a second one narrower in front of it.
 */
function drawChart(host, bins, { title, series, format, counts, binMinutes }) {
  const width = Math.max(260, Math.floor(host.clientWidth || 600));
  const m = { left: 46, right: 10, top: 10, bottom: 24 };
  const plotW = width - m.left - m.right;
  const plotH = CHART_HEIGHT - m.top - m.bottom;
  const values = bins.flatMap((b) => series.map(([key]) => b[key])).filter((v) => v != null);
  const top = niceTop(Math.max(0, ...values), counts ? 1 : 0.5);
  const y = (v) => m.top + plotH - (v / top) * plotH;
  const band = plotW / bins.length;
  const chart = svg("svg", {
    class: "chart", width, height: CHART_HEIGHT, viewBox: `0 0 ${width} ${CHART_HEIGHT}`, tabindex: 0, role: "img",
    "aria-label": title, "data-since": isoMinute(bins[0].start),
    "data-until": isoMinute(bins[bins.length - 1].start + bins[bins.length - 1].minutes * MINUTE),
    "data-bin-minutes": binMinutes,
  });
  for (const v of [0, top / 2, top].filter((v) => !counts || Number.isInteger(v))) {
    chart.append(svg("line", { x1: m.left, x2: width - m.right, y1: y(v), y2: y(v), class: v ? "grid" : "axis" }),
      svg("text", { x: m.left - 6, y: y(v) + 4, class: "tick-label", "text-anchor": "end" }, format(v)));
  }
  // Time labels on round local times, as many as fit.
  const total = bins.length * binMinutes;
  const step = [5, 10, 15, 30, 60, 120, 180, 240, 360, 720].find((s) => (total / s) * 68 <= plotW) || 1440;
  bins.forEach((b, i) => {
    const d = new Date(b.start);
    const ofDay = d.getHours() * 60 + d.getMinutes();
    if (ofDay % step !== 0) return;
    const x = m.left + i * band;
    if (x + 30 > width) return;
    const text = ofDay === 0 && binMinutes > 1 ? d.toLocaleDateString(undefined, { month: "short", day: "numeric" }) : clock(b.start);
    chart.append(svg("line", { x1: x, x2: x, y1: m.top + plotH, y2: m.top + plotH + 4, class: "axis" }),
      svg("text", { x, y: CHART_HEIGHT - 6, class: "tick-label", "text-anchor": "middle" }, text));
  });
  const cursor = svg("rect", { x: m.left, y: m.top, width: band, height: plotH, class: "cursor", visibility: "hidden" });
  chart.append(cursor);
  // The lines first, the bars and points of each minute above them.
  for (const [key, , kind] of series) {
    if (kind !== "line") continue;
    let d = "";
    bins.forEach((b, i) => {
      if (b[key] == null) return;
      const joined = i > 0 && bins[i - 1][key] != null;
      d += `${joined ? "L" : "M"}${(m.left + (i + 0.5) * band).toFixed(1)} ${y(b[key]).toFixed(1)}`;
    });
    if (d) chart.append(svg("path", { d, class: `line s-${key}` }));
  }
  const bars = series.filter(([, , kind]) => kind === "bar").map(([key]) => key);
  bins.forEach((b, i) => {
    const text = binInWords(b);
    const group = svg("g", {
      class: "bin", "data-start": isoMinute(b.start), "data-minutes": b.minutes, "data-fired": b.fired,
      "data-delivered": b.delivered, "data-failed": b.failed, "data-lag-p50": b.p50 ?? "", "data-lag-p99": b.p99 ?? "",
    }, svg("title", {}, text),
    svg("rect", { x: m.left + i * band, y: m.top, width: band, height: plotH, class: "hit" }));
    for (const [key, , kind] of series) {
      const v = b[key];
      if (v == null || v === 0) continue;
      if (kind === "bar") {
        const w = Math.max(1, band * (bars.indexOf(key) === 0 ? 0.8 : 0.45));
        const h = Math.max(1, (v / top) * plotH);
        group.append(svg("rect", { x: m.left + i * band + (band - w) / 2, y: m.top + plotH - h, width: w, height: h,
          class: `bar s-${key}`, "data-value": v }));
      } else {
        group.append(svg("circle", { cx: m.left + (i + 0.5) * band, cy: y(v), r: band < 8 ? 2 : 3,
          class: `point s-${key}`, "data-value": v }));
      }
    }
    chart.append(group);
  });
  const detail = h("p", { className: "hint chart-detail", "aria-live": "polite" }, "Point at a bar, or focus the chart and use the arrow keys.");
  const legend = h("div", { className: "legend" }, series.map(([key, name]) =>
    h("span", { className: "legend-item" }, h("span", { className: `swatch s-${key}` }), name)));
  host.replaceChildren(chart, legend, detail);
  let at = -1;
  const select = (i) => {
    at = Math.max(0, Math.min(bins.length - 1, i));
    cursor.setAttribute("x", m.left + at * band);
    cursor.setAttribute("visibility", "visible");
    detail.textContent = binInWords(bins[at]);
  };
  chart.querySelectorAll(".bin").forEach((g, i) => g.addEventListener("mouseenter", () => select(i)));
  chart.addEventListener("focus", () => {
    const busy = bins.findLastIndex((b) => b.fired || b.delivered || b.failed);
    if (at < 0) select(busy < 0 ? bins.length - 1 : busy);
  });
  chart.addEventListener("keydown", (event) => {
    const moves = { ArrowLeft: at - 1, ArrowRight: at + 1, Home: 0, End: bins.length - 1 };
    if (!(event.key in moves)) return;
    event.preventDefault();
    select(moves[event.key]);
  });
}

function tile(label, value, figure, note) {
  return h("div", { className: "tile" }, h("span", { className: "tile-label" }, label),
    h("strong", { className: "tile-value", "data-figure": figure }, value),
    note ? h("span", { className: "hint" }, note) : null);
}

function renderHealth() {
  if (!state.health || $("view-health").hidden) return;
  const { span, since, until, stats, at } = state.health;
  const { bin, name } = HEALTH_SPANS[span];
  const bins = binsOf(stats.data || [], since, until, bin);
  const sum = (key) => bins.reduce((n, b) => n + b[key], 0);
  const worst = bins.reduce((w, b) => (b.p99 != null && (w == null || b.p99 > w) ? b.p99 : w), null);
  const count = (n) => n.toLocaleString("en-US");
  for (const button of document.querySelectorAll("#health-spans button")) {
    button.setAttribute("aria-pressed", String(button.dataset.span === span));
  }
  $("health-updated").replaceChildren(`${name[0].toUpperCase()}${name.slice(1)}, as of `, when(new Date(at).toISOString()),
    bin > 1 ? `; each bar is ${bin} minutes` : "; each bar is a minute", ". It refreshes every minute.");
  const backlog = stats.backlog;
  $("health-summary").replaceChildren(
    h("div", { className: "card" }, h("h2", {}, `In ${name}`), h("div", { className: "tiles" },
      tile("Fired", count(sum("fired")), "fired"),
      tile("Delivered", count(sum("delivered")), "delivered"),
      tile("Failed attempts", count(sum("failed")), "failed"),
      tile("Lag p99", seconds(worst), "lag-p99", "worst minute"))),
    h("div", { className: "card" }, h("h2", {}, "Backlog now"), h("div", { className: "tiles" },
      tile("Pending schedules", backlog ? count(backlog.schedules_pending) : "—", "schedules-pending",
        backlog ? "moments not yet fired" : "not counted by this runtime"),
      tile("Pending deliveries", backlog ? count(backlog.deliveries_pending) : "—", "deliveries-pending",
        backlog ? "awaiting an attempt or a retry" : "not counted by this runtime"))));
  const every = bin > 1 ? `per ${bin} minutes` : "per minute";
  const counts = (v) => COMPACT.format(v);
  drawChart($("chart-webhooks"), bins, { title: `Webhooks fired and delivered ${every}, ${name}`, counts: true,
    format: counts, binMinutes: bin, series: [["fired", "fired", "bar"], ["delivered", "delivered", "bar"]] });
  drawChart($("chart-lag"), bins, { title: `Delivery lag p50 and p99 ${every}, ${name}`, format: seconds,
    binMinutes: bin, series: [["p50", "p50", "line"], ["p99", "p99", "line"]] });
  drawChart($("chart-failed"), bins, { title: `Failed attempts ${every}, ${name}`, counts: true, format: counts,
    binMinutes: bin, series: [["failed", "failed attempts (timeouts included)", "bar"]] });
  renderEndpointHealth();
}

/** The endpoints that are failing (enabled, failing since a time) or disabled. */
function renderEndpointHealth() {
  const troubled = state.endpoints.filter((e) => !e.enabled || e.failing_since);
  const host = $("health-endpoints");
  const total = state.endpoints.length;
  if (troubled.length === 0) {
    const healthy = total === 1 ? "The endpoint is healthy." : `All ${total} endpoints are healthy.`;
    host.replaceChildren(h("p", { className: "empty" }, total ? healthy : "No endpoints yet."));
    return;
  }
  host.replaceChildren(
    h("p", { className: "hint" }, `${troubled.length} of ${plural(total, "endpoint")} ${troubled.length === 1 ? "needs" : "need"} attention.`),
    table(["Endpoint", "State", "Since", ""], troubled.map((e) => h("tr", { "data-id": e.id, "data-state": e.enabled ? "failing" : "disabled" },
      h("td", {}, e.description || "", h("div", {}, h("code", { className: "url" }, e.url || e.event_bus_arn || e.queue_url))),
      h("td", {}, e.enabled ? badge("failing", "failed") : badge("disabled", "off"),
        e.disabled_reason ? h("div", { className: "hint reason" }, e.disabled_reason) : null),
      h("td", {}, e.failing_since ? when(e.failing_since) : ""),
      h("td", {}, h("a", { href: `#deliveries?endpoint_id=${encodeURIComponent(e.id)}` }, "View deliveries")))),
    "Endpoints failing or disabled"));
}

function chooseHealthSpan(span) {
  state.healthSpan = span;
  loadHealth();
}
