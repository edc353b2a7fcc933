// The Notifications page. Plain JavaScript, no build step: every change goes
// through the public /v1 API with the API key kept in this tab's session.
"use strict";

const KEY = "lifecycle.apiKey";

const MOMENTS = {
  "contract.start": ["contract start", "contract starts"],
  "contract.end": ["contract end", "contract ends"],
  "commit.segment.start": ["commit segment start", "commit segment starts"],
  "commit.segment.end": ["commit segment end", "commit segment ends"],
  "credit.segment.start": ["credit segment start", "credit segment starts"],
  "credit.segment.end": ["credit segment end", "credit segment ends"],
};
const WRITES = {
  "contract.create": "a contract is created", "contract.edit": "a contract is edited",
  "contract.archive": "a contract is archived", "commit.create": "a commit is created",
  "commit.edit": "a commit is edited", "commit.archive": "a commit is archived",
  "credit.create": "a credit is created", "credit.edit": "a credit is edited",
  "credit.archive": "a credit is archived",
};
const THRESHOLDS = {
  "alerts.low_credit_balance_reached": "credit balance falls to",
  "alerts.spend_threshold_reached": "spend reaches",
  "alerts.usage_threshold_reached": "usage reaches",
};
const OPERATIONAL = ["webhook_endpoint.disabled", "webhook_endpoint.test"];
const RESOLVED = Object.keys(THRESHOLDS).map((t) => t.replace(/_reached$/, "_resolved"));
const ALL_TYPES = [...Object.keys(MOMENTS), ...Object.keys(WRITES), ...Object.keys(THRESHOLDS), ...RESOLVED, ...OPERATIONAL];
const GROUPS = [
  ["Lifecycle: scheduled moments", MOMENTS],
  ["Lifecycle: writes", WRITES],
  ["Thresholds", THRESHOLDS],
];

const state = {
  notifications: [], endpoints: [], deliveryCursor: null, deliveryRequest: 0, upcomingRequest: 0,
  /** Groups whose system defaults are shown. */
  unfolded: {},
  /** What the Upcoming view last drew, to draw again at a new width. */
  upcoming: null,
  /** The Health view's span (hour or day) and what it last drew (health.js). */
  healthSpan: "hour", health: null, healthRequest: 0,
};

// ---- small helpers --------------------------------------------------------

const $ = (id) => document.getElementById(id);

/** Builds an element; strings become text nodes, so API data is never HTML. */
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === false || value == null) continue;
    if (name.startsWith("on")) el.addEventListener(name.slice(2), value);
    else if (name === "className") el.className = value;
    else el.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child == null || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

function say(message, bad) {
  const status = $("status");
  status.textContent = message;
  status.classList.toggle("bad", !!bad);
}

/** A time in the browser's zone, compact (on one line; the year only when
 * it is not this one), with the full time and UTC on hover. */
function when(iso) {
  if (!iso) return "";
  const date = new Date(iso);
  const thisYear = date.getFullYear() === new Date().getFullYear();
  const compact = date.toLocaleString(undefined, {
    month: "short", day: "numeric", year: thisYear ? undefined : "numeric", hour: "2-digit", minute: "2-digit",
  });
  return h("time", { datetime: iso, title: `${fullTime(iso)} · ${date.toISOString().replace(".000Z", "Z")} (UTC)` },
    compact);
}

function fullTime(iso) {
  return new Date(iso).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "medium" });
}

/** Names each cell after its column, for the stacked layout of narrow screens. */
function label(headers, rows) {
  for (const row of rows) {
    [...row.children].forEach((cell, i) => headers[i] && cell.setAttribute("data-label", headers[i]));
  }
  return rows;
}

function table(headers, rows, caption) {
  label(headers, rows.filter((row) => !row.classList.contains("details")));
  return h("div", { className: "table-wrap" },
    h("table", {},
      caption ? h("caption", { className: "sr-only" }, caption) : null,
      h("thead", {}, h("tr", {}, headers.map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, rows)));
}

function badge(text, kind) {
  return h("span", { className: `badge ${kind || text}` }, text);
}

// ---- the API ----------------------------------------------------------------

class ApiError extends Error {
  constructor(status, error) {
    super((error && error.message) || `the API answered ${status}`);
    this.status = status;
    this.field = error && error.field;
  }
}

async function api(method, path, body, key) {
  const headers = { Authorization: `Bearer ${key || sessionStorage.getItem(KEY) || ""}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const data = response.status === 204 ? null : await response.json().catch(() => null);
  if (response.status === 401 && !key) {
    signOut("The API key was refused; sign in again.");
  }
  if (!response.ok) throw new ApiError(response.status, data && data.error);
  return data;
}

/** Every item of a paginated list. */
async function all(path) {
  const items = [];
  let cursor = null;
  do {
    const sep = path.includes("?") ? "&" : "?";
    const page = await api("GET", `${path}${sep}limit=500${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`);
    items.push(...page.data);
    cursor = page.next_cursor;
  } while (cursor);
  return items;
}

/** Shows an API refusal beside the field it names, or at the form's foot. */
function showError(form, error, fallbackId) {
  clearErrors(form);
  const field = (error && error.field) || "";
  const name = field.replace(/^filter\./, "").replace(/[.[].*$/, "");
  const target = (name && form.querySelector(`#err-${CSS.escape(name)}`)) || $(fallbackId);
  target.textContent = error.message;
  // The offset is built from three controls; the amount stands for it.
  const input = form.querySelector(`[name="${CSS.escape(name === "offset" ? "amount" : name)}"]`);
  if (input) {
    input.setAttribute("aria-invalid", "true");
    input.setAttribute("aria-describedby", target.id);
    input.focus();
  }
}

function clearErrors(form) {
  form.querySelectorAll(".error").forEach((e) => (e.textContent = ""));
  form.querySelectorAll("[aria-invalid]").forEach((e) => e.removeAttribute("aria-invalid"));
}

// ---- offsets ----------------------------------------------------------------

const UNIT_CODES = { minutes: ["T", "M"], hours: ["T", "H"], days: ["", "D"], months: ["", "M"] };

/** The ISO 8601 offset the controls describe. */
function offsetOf(amount, unit, direction) {
  const n = Number(amount);
  if (direction === "at" || (amount !== "" && n === 0)) return "PT0S";
  if (amount === "" || !Number.isFinite(n)) return "";
  const [t, code] = UNIT_CODES[unit];
  return `${direction === "before" ? "-" : ""}P${t}${amount}${code}`;
}

/** The parts of an ISO 8601 offset, or null. */
function parseOffset(text) {
  const m = /^([+-])?P(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?$/.exec(text || "");
  if (!m) return null;
  const [, sign, y, mo, w, d, hr, mi, s] = m.map((v, i) => (i > 1 && v ? Number(v) : v));
  return { negative: sign === "-", years: y || 0, months: mo || 0, weeks: w || 0, days: d || 0,
    hours: hr || 0, minutes: mi || 0, seconds: s || 0 };
}

function plural(n, word) {
  return `${n.toLocaleString("en-US")} ${word}${n === 1 ? "" : "s"}`;
}

/** "30 days before contract end", "2 hours after credit segment ends". */
function offsetInWords(offset, eventType) {
  const [noun, verb] = MOMENTS[eventType];
  const p = parseOffset(offset);
  if (!p) return `${offset} from ${noun}`;
  const parts = [["year", p.years], ["month", p.months], ["week", p.weeks], ["day", p.days],
    ["hour", p.hours], ["minute", p.minutes], ["second", p.seconds]]
    .filter(([, n]) => n > 0).map(([w, n]) => plural(n, w));
  if (parts.length === 0) return `when ${verb}`;
  return p.negative ? `${parts.join(" ")} before ${noun}` : `${parts.join(" ")} after ${verb}`;
}

/** The controls for an offset: a single unit when it has one, else null. */
function controlsOf(offset) {
  const p = parseOffset(offset);
  if (!p) return null;
  const direction = p.negative ? "before" : "after";
  const months = p.years * 12 + p.months;
  const minutes = ((p.weeks * 7 + p.days) * 24 + p.hours) * 60 + p.minutes;
  if (p.seconds % 60 !== 0) return null;
  const total = minutes + p.seconds / 60;
  if (months > 0 && total > 0) return null;
  if (months > 0) return { amount: months, unit: "months", direction };
  if (total === 0) return { amount: 0, unit: "days", direction: "at" };
  for (const [unit, size] of [["days", 1440], ["hours", 60], ["minutes", 1]]) {
    if (total % size === 0) return { amount: total / size, unit, direction };
  }
  return null;
}

function describe(n) {
  if (MOMENTS[n.event_type]) return offsetInWords(n.offset, n.event_type);
  if (WRITES[n.event_type]) return `when ${WRITES[n.event_type]}`;
  if (THRESHOLDS[n.event_type]) {
    const amount = Number(n.threshold).toLocaleString("en-US");
    const what = n.event_type === "alerts.usage_threshold_reached" && n.metric
      ? `${n.metric} usage reaches` : THRESHOLDS[n.event_type];
    const period = n.event_type === "alerts.usage_threshold_reached" ? " in a month" : "";
    return `when ${what} ${amount}${period}${n.notify_on_resolve ? ", and when it resolves" : ""}`;
  }
  return n.event_type;
}

function describeFilter(filter) {
  const parts = [];
  if (filter && filter.customer_ids) parts.push(`customers: ${filter.customer_ids.join(", ")}`);
  for (const [k, v] of Object.entries((filter && filter.custom_fields) || {})) parts.push(`${k} = ${v}`);
  return parts.length ? parts.join("; ") : "everyone";
}

// ---- sign in and navigation ----------------------------------------------

function signOut(message) {
  sessionStorage.removeItem(KEY);
  show("signin");
  if (message) say(message, true);
}

async function signIn(event) {
  event.preventDefault();
  const form = $("signin-form");
  const key = $("api-key").value.trim();
  clearErrors(form);
  try {
    await api("GET", "/v1/notifications?limit=1", undefined, key);
  } catch (error) {
    showError(form, { field: "api_key", message: error.status === 401 ? "That API key was refused." : error.message });
    return;
  }
  sessionStorage.setItem(KEY, key);
  $("api-key").value = "";
  say("");
  route();
}

const VIEWS = ["signin", "notifications", "endpoints", "upcoming", "deliveries", "health"];
const LOADERS = { notifications: loadNotifications, endpoints: loadEndpoints, upcoming: async () => {},
  deliveries: loadDeliveryFilters, health: () => { renderHealth(); return loadHealth(); } };

function show(view) {
  for (const name of VIEWS) $(`view-${name}`).hidden = name !== view;
  $("nav").hidden = view === "signin";
  document.querySelectorAll("nav a").forEach((a) => {
    if (a.dataset.view === view) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  });
}

/** `#view`, or `#view?name=value` (the Health view links to `#deliveries?endpoint_id=...`). */
function route() {
  if (!sessionStorage.getItem(KEY)) return show("signin");
  const [view, query] = location.hash.slice(1).split("?");
  const name = LOADERS[view] ? view : "notifications";
  show(name);
  LOADERS[name](new URLSearchParams(query || "")).catch((error) => say(error.message, true));
}

// ---- notifications ----------------------------------------------------------

async function loadNotifications() {
  state.notifications = await all("/v1/notifications");
  renderNotifications();
}

/** Each group lists the user's own notifications first, then its system
 * defaults folded into one row until asked for. */
function renderNotifications() {
  const host = $("notification-groups");
  host.replaceChildren();
  for (const [title, types] of GROUPS) {
    const items = state.notifications
      .filter((n) => types[n.event_type])
      .sort((a, b) => Number(a.system) - Number(b.system) ||
        Object.keys(types).indexOf(a.event_type) - Object.keys(types).indexOf(b.event_type) || a.name.localeCompare(b.name));
    host.append(h("h2", {}, title));
    if (items.length === 0) {
      host.append(h("p", { className: "empty" }, "None yet."));
      continue;
    }
    const system = items.filter((n) => n.system);
    const open = !!state.unfolded[title];
    const rows = items.map((n) => {
      const row = notificationRow(n);
      if (n.system && !open) row.hidden = true;
      return row;
    });
    if (system.length) {
      const enabled = system.filter((n) => n.enabled).length;
      const summary = `${system.length} system notification${system.length === 1 ? "" : "s"}, ` +
        (enabled === system.length ? "all enabled" : `${enabled} enabled`);
      const toggle = h("button", { type: "button", className: "link", "aria-expanded": String(open),
        onclick: () => { state.unfolded[title] = !open; renderNotifications(); } }, open ? "hide" : "show");
      const fold = h("tr", { className: "details fold" }, h("td", { colspan: 7 }, `${summary}: `, toggle));
      rows.splice(items.length - system.length, 0, fold);
    }
    host.append(table(["Name", "Type", "When", "Filter", "Enabled", "Default", "Actions"], rows, title));
  }
}

function notificationRow(n) {
  const toggle = h("button", { type: "button", className: "secondary", "aria-pressed": String(n.enabled),
    onclick: () => patchNotification(n, { enabled: !n.enabled }) }, n.enabled ? "Disable" : "Enable");
  return h("tr", { "data-id": n.id },
    h("td", {}, n.name),
    h("td", {}, h("code", {}, n.event_type)),
    h("td", { className: "when" }, describe(n)),
    h("td", {}, describeFilter(n.filter)),
    h("td", {}, n.enabled ? badge("enabled", "ok") : badge("disabled", "off")),
    h("td", {}, n.system ? badge("default", "") : ""),
    h("td", {}, h("div", { className: "actions" },
      toggle,
      n.system ? null : h("button", { type: "button", className: "secondary", onclick: () => openNotificationForm(n) }, "Edit"),
      n.system ? null : h("button", { type: "button", className: "danger", onclick: () => deleteNotification(n) }, "Delete"))));
}

async function patchNotification(n, body) {
  try {
    await api("PATCH", `/v1/notifications/${encodeURIComponent(n.id)}`, body);
    say(`${n.name}: ${body.enabled ? "enabled" : "disabled"}.`);
    await loadNotifications();
  } catch (error) {
    say(error.message, true);
  }
}

async function deleteNotification(n) {
  if (!confirm(`Delete the notification “${n.name}”? Its pending schedules are cancelled.`)) return;
  try {
    await api("DELETE", `/v1/notifications/${encodeURIComponent(n.id)}`);
    say(`${n.name}: deleted.`);
    await loadNotifications();
  } catch (error) {
    say(error.message, true);
  }
}

function fillEventTypes() {
  const select = $("n-event-type");
  for (const [title, types] of GROUPS) {
    select.append(h("optgroup", { label: title },
      Object.keys(types).map((t) => h("option", { value: t }, t))));
  }
  const filter = $("d-type");
  for (const t of ALL_TYPES) filter.append(h("option", { value: t }, t));
}

function openNotificationForm(n) {
  const form = $("notification-form");
  form.reset();
  clearErrors(form);
  delete form.dataset.keepOffset;
  form.elements.id.value = n ? n.id : "";
  $("notification-form-title").textContent = n ? `Edit “${n.name}”` : "New notification";
  $("n-event-type").disabled = !!n;
  if (n) {
    $("n-name").value = n.name;
    $("n-event-type").value = n.event_type;
    const controls = controlsOf(n.offset);
    // An offset the controls cannot show (say P1M2D) is kept unless they are changed.
    if (!controls) form.dataset.keepOffset = n.offset;
    if (controls) {
      $("n-amount").value = controls.amount;
      $("n-unit").value = controls.unit;
      $("n-direction").value = controls.direction;
    }
    $("n-catch-up").value = n.catch_up || "";
    $("n-threshold").value = n.threshold == null ? "" : n.threshold;
    $("n-metric").value = n.metric || "";
    $("n-resolve").checked = !!n.notify_on_resolve;
    $("n-customers").value = ((n.filter && n.filter.customer_ids) || []).join(", ");
    $("n-custom-fields").value = Object.entries((n.filter && n.filter.custom_fields) || {}).map(([k, v]) => `${k}=${v}`).join(", ");
    $("n-enabled").checked = n.enabled;
  }
  form.hidden = false;
  updateNotificationForm();
  $("n-name").focus();
}

function updateNotificationForm() {
  const type = $("n-event-type").value;
  const timed = !!MOMENTS[type];
  $("offset-fields").hidden = !timed;
  $("threshold-fields").hidden = !THRESHOLDS[type];
  $("metric-field").hidden = type !== "alerts.usage_threshold_reached";
  $("custom-fields-field").hidden = !!THRESHOLDS[type];
  const direction = $("n-direction").value;
  if (timed) {
    $("n-moment").textContent = direction === "after" ? MOMENTS[type][1] : MOMENTS[type][0];
    const kept = $("notification-form").dataset.keepOffset;
    const iso = kept || offsetOf($("n-amount").value.trim(), $("n-unit").value, direction);
    $("n-offset").value = iso || "—";
  }
}

/** The API body the form describes; the API validates it. */
function notificationBody(editing) {
  const type = $("n-event-type").value;
  const body = { name: $("n-name").value.trim() || undefined, enabled: $("n-enabled").checked };
  if (!editing) body.event_type = type;
  if (MOMENTS[type]) {
    const amount = $("n-amount").value.trim();
    const direction = $("n-direction").value;
    // A number the browser could not read is sent as text, so the API names it.
    body.offset = $("notification-form").dataset.keepOffset ||
      offsetOf(amount, $("n-unit").value, direction) || `${direction === "before" ? "-" : ""}P${amount}`;
    const catchUp = $("n-catch-up").value.trim();
    if (catchUp) body.catch_up = catchUp;
  }
  if (THRESHOLDS[type]) {
    const threshold = $("n-threshold").value.trim();
    body.threshold = threshold === "" ? null : Number(threshold);
    body.notify_on_resolve = $("n-resolve").checked;
    const metric = $("n-metric").value.trim();
    if (type === "alerts.usage_threshold_reached" && metric) body.metric = metric;
  }
  const customers = $("n-customers").value.split(",").map((s) => s.trim()).filter(Boolean);
  const custom = {};
  for (const pair of $("n-custom-fields").value.split(",").map((s) => s.trim()).filter(Boolean)) {
    const at = pair.indexOf("=");
    custom[at < 0 ? pair : pair.slice(0, at).trim()] = at < 0 ? "" : pair.slice(at + 1).trim();
  }
  body.filter = {};
  if (customers.length) body.filter.customer_ids = customers;
  if (Object.keys(custom).length) body.filter.custom_fields = custom;
  return body;
}

async function saveNotification(event) {
  event.preventDefault();
  const form = $("notification-form");
  const id = form.elements.id.value;
  clearErrors(form);
  try {
    const saved = id
      ? await api("PATCH", `/v1/notifications/${encodeURIComponent(id)}`, notificationBody(true))
      : await api("POST", "/v1/notifications", notificationBody(false));
    form.hidden = true;
    say(`Saved “${saved.name}”: ${describe(saved)}.`);
    await loadNotifications();
  } catch (error) {
    showError(form, error, "err-form");
  }
}

// ---- endpoints ----------------------------------------------------------------

async function loadEndpoints() {
  state.endpoints = await all("/v1/webhook-endpoints");
  renderEndpoints();
}

function renderEndpoints() {
  const host = $("endpoint-list");
  if (state.endpoints.length === 0) {
    host.replaceChildren(h("p", { className: "empty" }, "No endpoints yet: add one to receive webhooks."));
    return;
  }
  host.replaceChildren(table(["URL", "Description", "Event types", "Status", "Actions"],
    state.endpoints.map(endpointRow), "Webhook endpoints"));
}

/** The field holding an endpoint's address, by its kind. */
const ADDRESS_FIELD = { webhook: "url", eventbridge: "event_bus_arn", sqs: "queue_url" };
const KIND_NAME = { webhook: "webhook", eventbridge: "EventBridge bus", sqs: "SQS queue" };

/** Where an endpoint sends: its URL, bus ARN or queue URL. */
function address(e) {
  return e[ADDRESS_FIELD[e.kind || "webhook"]] || e.url || "";
}

function endpointRow(e) {
  const act = (label, fn, kind) => h("button", { type: "button", className: kind || "secondary", onclick: fn }, label);
  const signed = (e.kind || "webhook") === "webhook";
  return h("tr", { "data-id": e.id },
    h("td", {}, h("code", { className: "url" }, address(e)),
      signed ? null : h("div", { className: "hint" }, KIND_NAME[e.kind])),
    h("td", {}, e.description || ""),
    h("td", {}, e.event_types && e.event_types.length ? e.event_types.join(", ") : "all"),
    h("td", {}, e.enabled ? badge("enabled", "ok") : badge("disabled", "off"),
      e.disabled_reason ? h("div", { className: "hint" }, e.disabled_reason) : null,
      e.failing_since ? h("div", { className: "hint" }, "failing since ", when(e.failing_since)) : null),
    h("td", {}, h("div", { className: "actions" },
      act("Edit", () => openEndpointForm(e)),
      act(e.enabled ? "Disable" : "Enable", () => setEndpointEnabled(e, !e.enabled)),
      signed ? act("Rotate secret", () => rotateSecret(e)) : null,
      e.enabled ? act("Send test event", () => sendTest(e)) : null,
      act("Delete", () => deleteEndpoint(e), "danger"))));
}

function fillEndpointTypes() {
  const host = $("e-types");
  for (const t of ALL_TYPES) {
    host.append(h("label", { className: "check" }, h("input", { type: "checkbox", name: "event_types", value: t }), t));
  }
}

function openEndpointForm(e) {
  const form = $("endpoint-form");
  form.reset();
  clearErrors(form);
  $("secret-panel").hidden = true;
  form.elements.id.value = e ? e.id : "";
  $("endpoint-form-title").textContent = e ? "Edit endpoint" : "Add endpoint";
  $("e-kind").value = e ? e.kind || "webhook" : "webhook";
  showKindField();
  if (e) {
    $(`e-${ADDRESS_FIELD[$("e-kind").value]}`).value = address(e);
    $("e-description").value = e.description || "";
    for (const box of form.querySelectorAll('input[name="event_types"]')) {
      box.checked = (e.event_types || []).includes(box.value);
    }
  }
  form.hidden = false;
  $(`e-${ADDRESS_FIELD[$("e-kind").value]}`).focus();
}

/** Shows the address field of the kind chosen. */
function showKindField() {
  const kind = $("e-kind").value;
  for (const field of $("endpoint-form").querySelectorAll("[data-kind]")) {
    field.hidden = field.dataset.kind !== kind;
  }
}

async function saveEndpoint(event) {
  event.preventDefault();
  const form = $("endpoint-form");
  const id = form.elements.id.value;
  const types = [...form.querySelectorAll('input[name="event_types"]:checked')].map((b) => b.value);
  const kind = $("e-kind").value;
  const field = ADDRESS_FIELD[kind];
  const body = { kind, [field]: $(`e-${field}`).value.trim(), description: $("e-description").value.trim(), event_types: types.length ? types : null };
  clearErrors(form);
  try {
    const saved = id
      ? await api("PATCH", `/v1/webhook-endpoints/${encodeURIComponent(id)}`, body)
      : await api("POST", "/v1/webhook-endpoints", body);
    form.hidden = true;
    if (saved.secret) showSecret(saved.secret);
    say(id ? "Endpoint saved." : "Endpoint added.");
    await loadEndpoints();
  } catch (error) {
    showError(form, error, "err-endpoint-form");
  }
}

function showSecret(secret) {
  $("secret-value").textContent = secret;
  $("secret-panel").hidden = false;
  $("copy-secret").focus();
}

async function copySecret() {
  const secret = $("secret-value").textContent;
  try {
    await navigator.clipboard.writeText(secret);
    say("Secret copied.");
  } catch {
    // No clipboard permission (plain http): select it for a manual copy.
    getSelection().selectAllChildren($("secret-value"));
    say("Press Ctrl+C (⌘C) to copy the selected secret.");
  }
}

async function setEndpointEnabled(e, enabled) {
  try {
    const saved = await api("PATCH", `/v1/webhook-endpoints/${encodeURIComponent(e.id)}`, { enabled });
    say(`${address(e)}: ${enabled ? "enabled" : "disabled"}.`);
    await loadEndpoints();
    if (saved.recovery) offerRecovery(saved);
  } catch (error) {
    say(error.message, true);
  }
}

/** After re-enabling: re-send what failed while the endpoint was down. */
function offerRecovery(saved) {
  const since = saved.recovery.since;
  const button = h("button", { type: "button", className: "secondary", onclick: async () => {
    try {
      const answer = await api("POST", `/v1/webhook-endpoints/${encodeURIComponent(saved.id)}/recover`, { since });
      say(`Re-sending ${plural(answer.resent, "failed delivery")}.`.replace("deliverys", "deliveries"));
    } catch (error) {
      say(error.message, true);
    }
  } }, "Re-send what failed since then");
  $("status").replaceChildren(`${address(saved)} is enabled again. It was failing since `, when(since), ". ", button);
}

async function rotateSecret(e) {
  if (!confirm("Rotate the signing secret? The old one keeps signing beside the new one for 24 hours.")) return;
  try {
    const rotated = await api("POST", `/v1/webhook-endpoints/${encodeURIComponent(e.id)}/rotate-secret`, {});
    showSecret(rotated.secret);
    say("Secret rotated.");
  } catch (error) {
    say(error.message, true);
  }
}

async function sendTest(e) {
  try {
    const delivery = await api("POST", `/v1/webhook-endpoints/${encodeURIComponent(e.id)}/test`, {});
    say(`Test event sent to ${address(e)} (delivery ${delivery.id}); see Deliveries.`);
  } catch (error) {
    say(error.message, true);
  }
}

async function deleteEndpoint(e) {
  if (!confirm(`Delete the endpoint ${address(e)}? What is still pending for it fails.`)) return;
  try {
    await api("DELETE", `/v1/webhook-endpoints/${encodeURIComponent(e.id)}`);
    say("Endpoint deleted.");
    await loadEndpoints();
  } catch (error) {
    say(error.message, true);
  }
}

// ---- upcoming -------------------------------------------------------------

async function showUpcoming(event) {
  event.preventDefault();
  const form = $("upcoming-form");
  const customer = $("u-customer").value.trim();
  clearErrors(form);
  if (!customer) return showError(form, { field: "customer_id", message: "Enter a customer id." });
  const path = (status) => `/v1/customers/${encodeURIComponent(customer)}/upcoming?status=${status}`;
  const request = ++state.upcomingRequest;
  try {
    const [pending, skipped, notifications] = await Promise.all([all(path("pending")), all(path("skipped")), all("/v1/notifications")]);
    if (request !== state.upcomingRequest) return;
    const names = Object.fromEntries(notifications.map((n) => [n.id, n.name]));
    const items = [...pending, ...skipped].sort((a, b) => a.fire_at.localeCompare(b.fire_at));
    state.upcoming = { customer, items, names };
    renderUpcoming();
  } catch (error) {
    showError(form, error, "err-customer_id");
  }
}

/** What a moment is, in words: its tooltip and accessible name on the timeline. */
function momentInWords(s, names, kind) {
  const offset = s.offset === "PT0S" ? `at the ${kind}` : offsetInWords(s.offset, s.event_type);
  const marks = [s.late ? "late" : null, s.status === "skipped" ? `skipped: ${s.reason || ""}` : null].filter(Boolean);
  return `${names[s.notification_id] || s.notification_id}: ${s.event_type} of ${laneOf(s).key}` +
    `${s.segment_id ? ` (segment ${s.segment_id})` : ""}, fires ${fullTime(s.fire_at)}, ${offset}` +
    (marks.length ? `; ${marks.join("; ")}` : "");
}

function renderUpcoming() {
  const host = $("upcoming-list");
  const chart = $("upcoming-timeline");
  if (!state.upcoming) return;
  const { customer, items, names } = state.upcoming;
  if (items.length === 0) {
    chart.replaceChildren();
    host.replaceChildren(h("p", { className: "empty" }, `Nothing scheduled for ${customer}.`));
    return;
  }
  const later = drawTimeline(chart, items, $("u-span").value, (s, kind) => momentInWords(s, names, kind));
  if (later) chart.append(h("p", { className: "hint" }, `${later} more after the span: in the list below.`));
  const now = Date.now();
  host.replaceChildren(table(["Fires", "Event", "Notification", "Entity", "Moment", "Marks"], items.map((s) => {
    const late = s.late || (s.status === "pending" && new Date(s.fire_at).getTime() < now);
    return h("tr", { "data-status": s.status, "data-schedule-id": s.schedule_id },
      h("td", {}, when(s.fire_at)),
      h("td", {}, h("code", {}, s.event_type)),
      h("td", {}, names[s.notification_id] || s.notification_id),
      h("td", {}, laneOf(s).key, s.segment_id ? h("div", { className: "hint" }, `segment ${s.segment_id}`) : null),
      h("td", {}, when(s.event_time), h("div", { className: "hint" }, s.offset)),
      h("td", {}, late ? badge("late") : null, s.status === "skipped" ? badge("skipped") : null,
        s.status === "skipped" && s.reason ? h("div", { className: "hint reason" }, s.reason) : null));
  }), `Upcoming notifications for ${customer}`));
}

// ---- deliveries -------------------------------------------------------------

/** Fills the endpoint filter, then lists; a filter in the address (from a
 * link) replaces the form's. */
async function loadDeliveryFilters(params) {
  state.endpoints = await all("/v1/webhook-endpoints");
  const select = $("d-endpoint");
  const chosen = select.value;
  select.replaceChildren(h("option", { value: "" }, "Any"),
    ...state.endpoints.map((e) => h("option", { value: e.id }, e.description || address(e))));
  select.value = chosen;
  if (params && DELIVERY_FILTERS.some((name) => params.has(name))) {
    for (const name of DELIVERY_FILTERS) $("deliveries-form").elements[name].value = params.get(name) || "";
  }
  await loadDeliveries(false);
}

const DELIVERY_COLUMNS = ["Scheduled for", "Event", "Customer", "Endpoint", "Status", "Attempts", ""];
const DELIVERY_FILTERS = ["customer_id", "event_type", "status", "endpoint_id"];

function deliveryQuery() {
  const params = new URLSearchParams();
  for (const name of DELIVERY_FILTERS) {
    const value = $("deliveries-form").elements[name].value.trim();
    if (value) params.set(name, value);
  }
  return params;
}

async function loadDeliveries(more) {
  const params = deliveryQuery();
  params.set("limit", "50");
  if (more && state.deliveryCursor) params.set("cursor", state.deliveryCursor);
  const form = $("deliveries-form");
  clearErrors(form);
  // Only the latest request draws: an older answer arriving late is dropped.
  const request = ++state.deliveryRequest;
  try {
    const page = await api("GET", `/v1/deliveries?${params}`);
    if (request !== state.deliveryRequest) return;
    state.deliveryCursor = page.next_cursor;
    $("more-deliveries").hidden = !page.next_cursor;
    const host = $("delivery-list");
    let body = host.querySelector("tbody");
    if (!more || !body) {
      host.replaceChildren(table(DELIVERY_COLUMNS, [], "Deliveries"));
      body = host.querySelector("tbody");
    }
    for (const d of page.data) {
      const [row, details] = deliveryRows(d);
      body.append(...label(DELIVERY_COLUMNS, [row]), details);
    }
    if (!body.children.length) host.replaceChildren(h("p", { className: "empty" }, "No deliveries match."));
  } catch (error) {
    showError(form, error, "err-deliveries");
  }
}

function endpointName(id) {
  const e = state.endpoints.find((x) => x.id === id);
  return e ? e.description || address(e) : id || "";
}

function deliveryRows(d) {
  const details = h("tr", { className: "details", hidden: true }, h("td", { colspan: "7" }));
  const toggle = h("button", { type: "button", className: "secondary", "aria-expanded": "false", onclick: () => {
    const open = details.hidden;
    details.hidden = !open;
    toggle.setAttribute("aria-expanded", String(open));
    if (open) renderAttempts(details.firstChild, d);
  } }, "Attempts");
  const row = h("tr", { "data-id": d.id },
    h("td", {}, when(d.scheduled_for)),
    h("td", {}, h("code", {}, d.event_type)),
    h("td", {}, d.customer_id || ""),
    h("td", {}, endpointName(d.endpoint_id)),
    h("td", {}, badge(d.status), d.reason ? h("div", { className: "hint" }, d.reason) : null),
    h("td", { className: "attempt-count" }, String(d.attempt_count)),
    h("td", {}, toggle));
  return [row, details];
}

function renderAttempts(cell, d) {
  const resend = h("button", { type: "button", onclick: () => resendDelivery(cell, d) }, "Resend");
  const rows = d.attempts.map((a) => h("tr", {},
    h("td", {}, String(a.number), a.manual ? h("div", { className: "hint" }, "manual") : null),
    h("td", {}, when(a.at)),
    h("td", {}, a.status_code == null ? "—" : String(a.status_code)),
    h("td", {}, `${a.latency_ms} ms`),
    h("td", {}, a.error || ""),
    h("td", {}, a.response ? h("pre", {}, a.response) : "")));
  cell.replaceChildren(
    h("p", {}, "Webhook id ", h("code", {}, d.webhook_id), d.next_attempt_at ? [" · next attempt ", when(d.next_attempt_at)] : null),
    rows.length ? table(["#", "Time", "Status code", "Latency", "Error", "Response"], rows, `Attempts of ${d.id}`)
      : h("p", { className: "empty" }, "No attempts yet."),
    d.endpoint_id ? h("div", { className: "actions" }, resend) : "");
}

/** Resends, then follows the delivery until the new attempt is recorded. */
async function resendDelivery(cell, d) {
  try {
    const before = d.attempts.length;
    let current = await api("POST", `/v1/deliveries/${encodeURIComponent(d.id)}/resend`, {});
    say(`Resending ${d.webhook_id}.`);
    for (let i = 0; i < 40 && current.attempts.length <= before; i++) {
      await new Promise((r) => setTimeout(r, 250));
      current = await api("GET", `/v1/deliveries/${encodeURIComponent(d.id)}`);
    }
    Object.assign(d, current);
    renderAttempts(cell, d);
    const row = cell.closest("tr").previousElementSibling;
    row.querySelector(".attempt-count").textContent = String(d.attempt_count);
    row.children[4].replaceChildren(badge(d.status));
    say(`Resent ${d.webhook_id}.`);
  } catch (error) {
    say(error.message, true);
  }
}

// ---- wiring -----------------------------------------------------------------

document.addEventListener("DOMContentLoaded", () => {
  fillEventTypes();
  fillEndpointTypes();
  $("signin-form").addEventListener("submit", signIn);
  $("sign-out").addEventListener("click", () => signOut());
  $("new-notification").addEventListener("click", () => openNotificationForm(null));
  $("cancel-notification").addEventListener("click", () => ($("notification-form").hidden = true));
  $("notification-form").addEventListener("submit", saveNotification);
  for (const id of ["n-event-type", "n-amount", "n-unit", "n-direction"]) {
    $(id).addEventListener("input", () => {
      if (id !== "n-event-type") delete $("notification-form").dataset.keepOffset;
      // "at" means no amount, and an amount means not "at" (before, unless chosen).
      const amount = Number($("n-amount").value);
      if (id === "n-amount" && amount > 0 && $("n-direction").value === "at") $("n-direction").value = "before";
      if (id === "n-direction" && $("n-direction").value === "at") $("n-amount").value = "0";
      updateNotificationForm();
    });
  }
  $("new-endpoint").addEventListener("click", () => openEndpointForm(null));
  $("cancel-endpoint").addEventListener("click", () => ($("endpoint-form").hidden = true));
  $("endpoint-form").addEventListener("submit", saveEndpoint);
  $("e-kind").addEventListener("change", showKindField);
  $("copy-secret").addEventListener("click", copySecret);
  $("upcoming-form").addEventListener("submit", showUpcoming);
  $("u-span").addEventListener("change", renderUpcoming);
  let width = window.innerWidth;
  window.addEventListener("resize", () => {
    if (window.innerWidth === width) return;
    width = window.innerWidth;
    renderUpcoming();
    renderHealth();
  });
  for (const button of document.querySelectorAll("#health-spans button")) {
    button.addEventListener("click", () => chooseHealthSpan(button.dataset.span));
  }
  $("refresh-health").addEventListener("click", () => loadHealth());
  // The Health view follows the time, unless a chart is being read by keyboard.
  setInterval(() => {
    const reading = document.activeElement && document.activeElement.closest(".chart");
    if (!$("view-health").hidden && sessionStorage.getItem(KEY) && !reading) loadHealth();
  }, 60_000);
  $("deliveries-form").addEventListener("submit", (event) => {
    event.preventDefault();
    loadDeliveries(false);
  });
  $("more-deliveries").addEventListener("click", () => loadDeliveries(true));
  window.addEventListener("hashchange", () => {
    say("");
    route();
  });
  route();
});
