// Drives the Notifications page in Debian's headless Chromium, as a user
// would. Started by tests/tests/page.rs, which runs the real process and a
// loopback receiver and checks what arrived there afterwards.
//
// Env: BASE_URL, API_KEY, RECEIVER_URL, FAILING_URL (a receiver answering
// 500), OUT_DIR (screenshots), CHROMIUM. Prints one JSON line at the end:
// {"secret": ..., "endpoint_id": ..., "health": {"fired", "delivered", "failed"}}.
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { chromium } from "playwright-core";

const { BASE_URL, API_KEY, RECEIVER_URL, FAILING_URL, OUT_DIR } = process.env;
const executablePath = process.env.CHROMIUM || "/usr/bin/chromium";
mkdirSync(OUT_DIR, { recursive: true });

async function api(method, path, body) {
  const response = await fetch(`${BASE_URL}${path}`, {
    method,
    headers: { Authorization: `Bearer ${API_KEY}`, "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: response.status, body: response.status === 204 ? null : await response.json() };
}

const iso = (ms) => new Date(Date.now() + ms).toISOString().replace(/\.\d+Z$/, "Z");
const DAY = 86_400_000;

const browser = await chromium.launch({
  executablePath,
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
// A zone other than UTC, to see times shown in the browser's zone.
const page = await browser.newPage({ viewport: { width: 1280, height: 900 }, locale: "en-US", timezoneId: "Asia/Tokyo" });
page.setDefaultTimeout(10_000);
const errors = [];
page.on("pageerror", (error) => errors.push(error.message));
const shot = (name) => page.screenshot({ path: `${OUT_DIR}/${name}.png`, fullPage: true });
const step = (name) => console.error(`page test: ${name}`);
const view = (name) => page.locator(`#view-${name}`);
/** A section's link in the top navigation (the Health view has links of its own). */
const nav = (name) => page.locator("nav").getByRole("link", { name, exact: true });
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
/** Every item of a paginated API list. */
async function listAll(path) {
  const items = [];
  let cursor = null;
  do {
    const page = (await api("GET", `${path}${path.includes("?") ? "&" : "?"}limit=500${cursor ? `&cursor=${cursor}` : ""}`)).body;
    items.push(...page.data);
    cursor = page.next_cursor;
  } while (cursor);
  return items;
}

/** What a Health chart drew: its window and, per bar, the figures it
 * carries, its bars' values and heights and its points' values. */
function drawnChart(id) {
  return page.locator(`#${id} svg.chart`).evaluate((chart) => ({
    since: chart.dataset.since, until: chart.dataset.until, binMinutes: Number(chart.dataset.binMinutes),
    bins: [...chart.querySelectorAll(".bin")].map((g) => ({
      start: g.dataset.start, minutes: Number(g.dataset.minutes), fired: Number(g.dataset.fired),
      delivered: Number(g.dataset.delivered), failed: Number(g.dataset.failed),
      p50: g.dataset.lagP50 === "" ? null : Number(g.dataset.lagP50), p99: g.dataset.lagP99 === "" ? null : Number(g.dataset.lagP99),
      title: g.querySelector("title").textContent,
      bars: Object.fromEntries([...g.querySelectorAll("rect.bar")].map((r) =>
        [r.classList[1].slice(2), { value: Number(r.dataset.value), height: Number(r.getAttribute("height")) }])),
      points: Object.fromEntries([...g.querySelectorAll("circle.point")].map((c) => [c.classList[1].slice(2), Number(c.dataset.value)])),
    })),
  }));
}
/** Bars are as tall as their values, on one scale. */
function assertScaled(bins, key, what) {
  const bars = bins.map((b) => b.bars[key]).filter(Boolean);
  const top = Math.max(...bars.map((b) => b.value));
  const tallest = Math.max(...bars.map((b) => b.height));
  for (const bar of bars) {
    assert.ok(Math.abs(bar.height - Math.max(1, (bar.value / top) * tallest)) < 0.5, `${what}: ${JSON.stringify(bar)} on ${top}/${tallest}`);
  }
}
const minuteOf = (iso) => new Date(Math.floor(Date.parse(iso) / 60_000) * 60_000).toISOString().replace(/\.\d+Z$/, "Z");

/** Every visible element of the shown view that reaches outside its card
 * (or the view, outside any card), and every table that scrolls sideways. */
function overflowing() {
  return page.evaluate(() => {
    const bad = [];
    const name = (el) => `${el.tagName.toLowerCase()}${el.id ? `#${el.id}` : ""}${el.getAttribute("class") ? `.${el.getAttribute("class").split(" ").join(".")}` : ""}`;
    if (document.documentElement.scrollWidth > window.innerWidth + 1) {
      bad.push(`the page scrolls sideways: ${document.documentElement.scrollWidth} > ${window.innerWidth}`);
    }
    for (const view of document.querySelectorAll("main > section:not([hidden])")) {
      for (const el of view.querySelectorAll("*")) {
        if (el.getClientRects().length === 0 || el.closest(".sr-only, thead")) continue;
        const card = el.parentElement.closest(".card, .table-wrap") || view;
        const r = el.getBoundingClientRect();
        const c = card.getBoundingClientRect();
        if (r.width > 1 && (r.left < c.left - 1 || r.right > c.right + 1)) {
          bad.push(`${name(el)} (${Math.round(r.left)}..${Math.round(r.right)}) outside ${name(card)} (${Math.round(c.left)}..${Math.round(c.right)})`);
        }
      }
      for (const wrap of view.querySelectorAll(".table-wrap")) {
        if (wrap.scrollWidth > wrap.clientWidth + 1) bad.push(`${name(wrap)} scrolls: ${wrap.scrollWidth} > ${wrap.clientWidth}`);
      }
    }
    return bad.slice(0, 10);
  });
}
const notifications = view("notifications");

try {
  step("sign in");
  await page.goto(BASE_URL);
  await page.getByRole("heading", { name: "Sign in" }).waitFor();
  await shot("sign-in");
  await page.getByLabel("API key").fill("not-the-key");
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.locator("#err-api_key", { hasText: "refused" }).waitFor();
  await page.getByLabel("API key").fill(API_KEY);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("heading", { name: "Notifications", level: 1 }).waitFor();
  assert.equal(await page.evaluate(() => sessionStorage.getItem("lifecycle.apiKey")), API_KEY);

  step("the system defaults are listed, grouped, folded into one row per group");
  const defaults = page.locator("#notification-groups tbody tr")
    .filter({ has: page.locator(".badge", { hasText: /^default$/ }) });
  const folds = page.locator("#notification-groups tr.fold");
  await folds.first().waitFor();
  assert.equal(await defaults.count(), 15, "the 15 system notifications");
  assert.equal(await defaults.filter({ visible: true }).count(), 0, "folded away");
  const folded = (await folds.allTextContents()).map((t) => Number(t.match(/^(\d+) system notifications?, all enabled/)[1]));
  assert.equal(folded.reduce((a, b) => a + b, 0), 15, `the fold rows count them: ${folded}`);
  for (const group of ["Lifecycle: scheduled moments", "Lifecycle: writes", "Thresholds"]) {
    await page.getByRole("heading", { name: group }).waitFor();
  }
  await folds.first().getByRole("button", { name: "show" }).click();
  await defaults.first().waitFor();
  assert.equal(await page.locator("#notification-groups tr.fold").first().getByRole("button", { name: "hide" })
    .getAttribute("aria-expanded"), "true");
  for (const fold of await page.locator("#notification-groups tr.fold").all()) {
    const button = fold.getByRole("button", { name: "show" });
    if (await button.count()) await button.click();
  }
  assert.equal(await defaults.filter({ visible: true }).count(), 15, "all shown once unfolded");

  step("create 7 days before contract end");
  await page.getByRole("button", { name: "New notification" }).click();
  await notifications.getByLabel("Name", { exact: true }).fill("Renewal heads-up");
  await notifications.getByLabel("Event", { exact: true }).selectOption("contract.end");
  await notifications.getByLabel("Amount", { exact: true }).fill("7");
  await notifications.getByLabel("Unit", { exact: true }).selectOption("days");
  await notifications.getByLabel("Before, at or after").selectOption("before");
  assert.equal(await page.locator("#n-offset").textContent(), "-P7D", "the ISO offset is shown");
  await page.getByRole("button", { name: "Save notification" }).click();
  const created = page.locator("#notification-groups tr", { hasText: "Renewal heads-up" });
  await created.waitFor();
  assert.equal((await created.locator("td.when").textContent()).trim(), "7 days before contract end");
  const listed = (await api("GET", "/v1/notifications?limit=500")).body.data;
  const mine = listed.find((n) => n.name === "Renewal heads-up");
  assert.equal(mine.offset, "-P7D");
  assert.equal(mine.event_type, "contract.end");

  step("a threshold notification, in words");
  await page.getByRole("button", { name: "New notification" }).click();
  await notifications.getByLabel("Name", { exact: true }).fill("Big spender");
  await notifications.getByLabel("Event", { exact: true }).selectOption("alerts.spend_threshold_reached");
  await notifications.getByLabel("Threshold", { exact: true }).fill("1000");
  await page.getByRole("button", { name: "Save notification" }).click();
  await page.locator("#notification-groups tr", { hasText: "Big spender" })
    .locator("td.when", { hasText: "when spend reaches 1,000" }).waitFor();
  await shot("notifications");

  step("edit, disable and delete a notification");
  const spender = page.locator("#notification-groups tr", { hasText: "Big spender" });
  await spender.getByRole("button", { name: "Edit" }).click();
  await notifications.getByLabel("Threshold", { exact: true }).fill("2500");
  await page.getByRole("button", { name: "Save notification" }).click();
  await spender.locator("td.when", { hasText: "when spend reaches 2,500" }).waitFor();
  await spender.getByRole("button", { name: "Disable" }).click();
  await spender.locator(".badge", { hasText: "disabled" }).waitFor();
  const spenderId = await spender.getAttribute("data-id");
  const stored = (await api("GET", `/v1/notifications/${spenderId}`)).body;
  assert.equal(stored.threshold, 2500);
  assert.equal(stored.enabled, false);
  page.once("dialog", (dialog) => dialog.accept());
  await spender.getByRole("button", { name: "Delete" }).click();
  await spender.waitFor({ state: "detached" });
  assert.equal((await api("GET", `/v1/notifications/${spenderId}`)).status, 404);
  const system = page.locator("#notification-groups tr", { hasText: "System: contract.end" });
  assert.equal(await system.getByRole("button", { name: "Delete" }).count(), 0, "defaults cannot be deleted");
  assert.equal(await system.getByRole("button", { name: "Edit" }).count(), 0, "nor edited");

  step("a bad offset shows the API's error beside the field");
  await page.getByRole("button", { name: "New notification" }).click();
  await notifications.getByLabel("Name", { exact: true }).fill("Too far out");
  await notifications.getByLabel("Event", { exact: true }).selectOption("contract.end");
  await notifications.getByLabel("Amount", { exact: true }).fill("99999");
  await notifications.getByLabel("Before, at or after").selectOption("before");
  await page.getByRole("button", { name: "Save notification" }).click();
  const refusal = await api("POST", "/v1/notifications", { name: "Too far out", event_type: "contract.end", offset: "-P99999D" });
  assert.equal(refusal.status, 422);
  assert.equal(refusal.body.error.field, "offset");
  await page.locator("#err-offset", { hasText: refusal.body.error.message }).waitFor();
  assert.equal(await notifications.getByLabel("Amount", { exact: true }).getAttribute("aria-invalid"), "true");
  await shot("bad-offset");
  await page.getByRole("button", { name: "Cancel" }).first().click();
  const names = (await api("GET", "/v1/notifications?limit=500")).body.data.map((n) => n.name);
  assert.ok(!names.includes("Too far out"), "a refused form writes nothing");

  step("a contract that started days ago: its start is skipped, before any endpoint exists");
  const old = await api("POST", "/v1/events", {
    id: "wr_page_0", type: "contract.create", occurred_at: iso(0),
    data: { id: "k_old", customer_id: "c_old", starting_at: iso(-3 * DAY), ending_before: iso(60 * DAY) },
  });
  assert.equal(old.status, 200, JSON.stringify(old.body));

  step("an EventBridge endpoint without AWS credentials: the form says why, nothing is stored");
  await page.getByRole("link", { name: "Webhook endpoints" }).click();
  await page.getByRole("button", { name: "Add endpoint" }).click();
  await view("endpoints").getByLabel("Kind", { exact: true }).selectOption("eventbridge");
  assert.equal(await view("endpoints").getByLabel("URL", { exact: true }).isVisible(), false, "the URL field hides");
  await view("endpoints").getByLabel("Event bus ARN", { exact: true })
    .fill("arn:aws:events:us-east-1:123456789012:event-bus/billing");
  await page.getByRole("button", { name: "Save endpoint" }).click();
  await page.locator("#err-kind", { hasText: "AWS credentials" }).waitFor();
  await shot("endpoint-kind-refused");
  assert.equal((await api("GET", "/v1/webhook-endpoints")).body.data.length, 0, "a refused form writes nothing");
  await view("endpoints").getByLabel("Kind", { exact: true }).selectOption("webhook");

  step("add an endpoint; the secret is shown once");
  await view("endpoints").getByLabel("URL", { exact: true }).fill(RECEIVER_URL);
  await view("endpoints").getByLabel("Description", { exact: true }).fill("Loopback receiver");
  await page.getByRole("button", { name: "Save endpoint" }).click();
  await page.locator("#secret-value", { hasText: "whsec_" }).waitFor();
  const secret = (await page.locator("#secret-value").textContent()).trim();
  assert.match(secret, /^whsec_/);
  const endpointRow = page.locator("#endpoint-list tr", { hasText: "Loopback receiver" });
  await endpointRow.waitFor();
  const endpointId = await endpointRow.getAttribute("data-id");
  await shot("endpoints");

  step("post a contract through the API, see it on the timeline");
  const ending = iso(30 * DAY);
  const write = await api("POST", "/v1/events", {
    id: "wr_page_1", type: "contract.create", occurred_at: iso(0),
    data: { id: "k_page", customer_id: "c_page", starting_at: iso(DAY), ending_before: ending },
  });
  assert.equal(write.status, 200, JSON.stringify(write.body));
  await page.getByRole("link", { name: "Upcoming" }).click();
  await view("upcoming").getByLabel("Customer id", { exact: true }).fill("c_page");
  await page.getByRole("button", { name: "Show timeline" }).click();
  const heads = page.locator("#upcoming-list tr", { hasText: "Renewal heads-up" });
  await heads.waitFor();
  assert.match(await heads.textContent(), /contract\.end/);
  assert.match(await heads.textContent(), /contract k_page/);
  const fireAt = await heads.locator("time").first().getAttribute("datetime");
  assert.equal(new Date(fireAt).getTime(), new Date(ending).getTime() - 7 * DAY, "fires 7 days before the end");
  const rows = await page.locator("#upcoming-list tbody tr time:first-child").evaluateAll(
    (times) => times.map((t) => t.getAttribute("datetime")));
  assert.deepEqual(rows, [...rows].sort(), "soonest first");
  const shown = heads.locator("time").first();
  const sameYear = new Date(fireAt).getFullYear() === new Date().getFullYear();
  assert.equal(await shown.textContent(), new Date(fireAt).toLocaleString("en-US", {
    timeZone: "Asia/Tokyo", month: "short", day: "numeric", year: sameYear ? undefined : "numeric",
    hour: "2-digit", minute: "2-digit" }), "compact, in the browser's zone");
  const full = new Date(fireAt).toLocaleString("en-US", { timeZone: "Asia/Tokyo", dateStyle: "medium", timeStyle: "medium" });
  assert.equal(await shown.getAttribute("title"), `${full} · ${fireAt} (UTC)`, "in full and in UTC on hover");
  assert.equal(await shown.evaluate((t) => t.getClientRects().length), 1, "on one line");
  await shot("upcoming");
  await view("upcoming").getByLabel("Customer id", { exact: true }).fill("c_old");
  await page.getByRole("button", { name: "Show timeline" }).click();
  const skipped = page.locator("#upcoming-list tr", { hasText: "contract.start" });
  await skipped.locator(".badge.skipped").waitFor();
  assert.equal(await skipped.getAttribute("data-status"), "skipped");
  await page.locator("#upcoming-list tr", { hasText: "System: contract.end" }).waitFor();
  await shot("upcoming-skipped");

  step("a skipped moment's reason is reachable by keyboard on the timeline");
  const skippedMark = page.locator("#upcoming-timeline .mark.skipped");
  await skippedMark.first().waitFor();
  const reason = (await skipped.locator(".reason").textContent()).trim();
  assert.ok(reason.length > 0, "the list below gives the reason too");
  await page.locator("#u-customer").focus();
  let focused = "";
  for (let i = 0; i < 80 && !focused.includes("skipped"); i++) {
    await page.keyboard.press("Tab");
    focused = await page.evaluate(() => document.activeElement.getAttribute("aria-label") || "");
  }
  assert.ok(focused.includes(`skipped: ${reason}`), `a focused mark tells the reason: ${focused}`);
  assert.equal((await page.locator("#upcoming-timeline .timeline-detail").textContent()).trim(), focused);

  step("the timeline: a contract, a commit of 12 monthly segments and a credit, one lane each");
  const month = (m) => { const d = new Date(); return new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + m, 1)).toISOString().replace(/\.\d+Z$/, "Z"); };
  const segments = (prefix, n) => Array.from({ length: n }, (_, m) =>
    ({ id: `${prefix}_${m}`, amount: 100, starting_at: month(m + 1), ending_before: month(m + 2) }));
  const timelineWrites = await api("POST", "/v1/events", { events: [
    { id: "wr_tl_1", type: "contract.create", occurred_at: iso(0),
      data: { id: "k_tl", customer_id: "c_tl", starting_at: month(1), ending_before: month(13) } },
    { id: "wr_tl_2", type: "commit.create", occurred_at: iso(0),
      data: { id: "cm_tl", customer_id: "c_tl", contract_id: "k_tl", type: "prepaid", access_schedule: segments("cs", 12) } },
    { id: "wr_tl_3", type: "credit.create", occurred_at: iso(0),
      data: { id: "cr_tl", customer_id: "c_tl", access_schedule: segments("rs", 2) } },
  ] });
  assert.equal(timelineWrites.status, 200, JSON.stringify(timelineWrites.body));
  await view("upcoming").getByLabel("Customer id", { exact: true }).fill("c_tl");
  await view("upcoming").getByLabel("Span", { exact: true }).selectOption("year");
  await page.getByRole("button", { name: "Show timeline" }).click();
  await page.locator("#upcoming-timeline .mark[data-lane='credit cr_tl']").first().waitFor();
  const upcomingOf = async (status) => {
    const out = [];
    let cursor = null;
    do {
      const path = `/v1/customers/c_tl/upcoming?status=${status}&limit=100${cursor ? `&cursor=${cursor}` : ""}`;
      const page = (await api("GET", path)).body;
      out.push(...page.data);
      cursor = page.next_cursor;
    } while (cursor);
    return out;
  };
  const all = [...await upcomingOf("pending"), ...await upcomingOf("skipped")];
  const chartEnd = await page.locator("#upcoming-timeline svg.timeline").getAttribute("data-end");
  const within = all.filter((s) => Date.parse(s.fire_at) <= Date.parse(chartEnd));
  assert.ok(within.length >= 20, `a year of moments: ${within.length}`);
  const drawn = await page.locator("#upcoming-timeline .mark").evaluateAll((marks) => marks.map((m) => ({
    id: m.dataset.scheduleId, lane: m.dataset.lane, fireAt: m.dataset.fireAt, x: Number(m.querySelector(".dot").getAttribute("cx")),
  })));
  assert.equal(drawn.length, within.length, "a mark per moment within the span");
  const laneOf = (s) => s.contract_id ? `contract ${s.contract_id}` : s.commit_id ? `commit ${s.commit_id}` : `credit ${s.credit_id}`;
  for (const s of within) {
    const mark = drawn.find((d) => d.id === s.schedule_id);
    assert.ok(mark, `a mark for ${s.schedule_id} (${s.event_type} at ${s.fire_at})`);
    assert.equal(mark.lane, laneOf(s), `${s.event_type} in its entity's lane`);
  }
  assert.deepEqual([...new Set(drawn.map((d) => d.lane))].sort(), ["commit cm_tl", "contract k_tl", "credit cr_tl"]);
  for (const lane of new Set(drawn.map((d) => d.lane))) {
    const marks = drawn.filter((d) => d.lane === lane).sort((a, b) => a.x - b.x);
    assert.deepEqual(marks.map((d) => d.fireAt), marks.map((d) => d.fireAt).sort(), `left to right by time in ${lane}`);
  }
  await page.locator("#upcoming-timeline").screenshot({ path: `${OUT_DIR}/timeline.png` });
  await shot("upcoming-timeline");

  step("the delivery is in the log with its attempt; resend it");
  await page.getByRole("link", { name: "Deliveries" }).click();
  await view("deliveries").getByLabel("Customer id", { exact: true }).fill("c_page");
  await view("deliveries").getByLabel("Event type", { exact: true }).selectOption("contract.create");
  const delivered = page.locator("#delivery-list tr[data-id]", { hasText: "delivered" });
  const listedRows = page.locator("#delivery-list tr[data-id]");
  // Apply until the filtered list shows the delivery as delivered.
  for (let i = 0; i < 40; i++) {
    await page.getByRole("button", { name: "Apply filter" }).click();
    await page.waitForTimeout(250);
    if ((await delivered.count()) === 1 && (await listedRows.count()) === 1) break;
  }
  assert.equal(await listedRows.count(), 1, "only c_page's contract.create");
  assert.match(await listedRows.first().textContent(), /c_page.*delivered/s);
  await delivered.getByRole("button", { name: "Attempts" }).click();
  const attempts = page.locator("#delivery-list tr.details table tbody tr");
  await attempts.first().waitFor();
  assert.equal(await attempts.count(), 1);
  assert.match(await attempts.first().textContent(), /200/);
  await page.getByRole("button", { name: "Resend" }).click();
  await page.waitForFunction(() => document.querySelectorAll("#delivery-list tr.details table tbody tr").length === 2);
  assert.match(await attempts.nth(1).textContent(), /manual/);
  await shot("deliveries");

  step("edit the endpoint's filter and rotate its secret");
  await page.getByRole("link", { name: "Webhook endpoints" }).click();
  await endpointRow.getByRole("button", { name: "Edit" }).click();
  await view("endpoints").getByLabel("contract.end", { exact: true }).check();
  await view("endpoints").getByLabel("contract.create", { exact: true }).check();
  await page.getByRole("button", { name: "Save endpoint" }).click();
  await endpointRow.locator("td", { hasText: "contract.end, contract.create" }).waitFor();
  assert.deepEqual((await api("GET", `/v1/webhook-endpoints/${endpointId}`)).body.event_types,
    ["contract.end", "contract.create"]);
  page.once("dialog", (dialog) => dialog.accept());
  await endpointRow.getByRole("button", { name: "Rotate secret" }).click();
  await page.locator("#status", { hasText: "Secret rotated" }).waitFor();
  const rotated = (await page.locator("#secret-value").textContent()).trim();
  assert.match(rotated, /^whsec_/);
  assert.notEqual(rotated, secret, "a new secret, shown once");

  step("send a test event, then disable the endpoint");
  await endpointRow.getByRole("button", { name: "Send test event" }).click();
  await page.locator("#status", { hasText: "Test event sent" }).waitFor();
  await endpointRow.getByRole("button", { name: "Disable" }).click();
  await endpointRow.locator(".badge", { hasText: "disabled" }).waitFor();
  const endpoint = (await api("GET", `/v1/webhook-endpoints/${endpointId}`)).body;
  assert.equal(endpoint.enabled, false);
  await shot("endpoint-disabled");

  step("an endpoint answering 500 gets a contract.create: its attempt fails, the endpoint is failing");
  const failingEndpoint = await api("POST", "/v1/webhook-endpoints",
    { url: FAILING_URL, description: "Failing receiver", event_types: ["contract.create"] });
  assert.equal(failingEndpoint.status, 201, JSON.stringify(failingEndpoint.body));
  const failingId = failingEndpoint.body.id;
  const health = await api("POST", "/v1/events", { id: "wr_health_1", type: "contract.create", occurred_at: iso(0),
    data: { id: "k_health", customer_id: "c_health", starting_at: iso(DAY), ending_before: iso(60 * DAY) } });
  assert.equal(health.status, 200, JSON.stringify(health.body));
  let failingNow;
  let failedAttempt;
  for (let i = 0; i < 100 && !(failingNow?.failing_since && failedAttempt); i++) {
    if (i) await sleep(100);
    failingNow = (await api("GET", `/v1/webhook-endpoints/${failingId}`)).body;
    failedAttempt = (await api("GET", `/v1/deliveries?endpoint_id=${failingId}`)).body.data[0]?.attempts[0];
  }
  assert.ok(failingNow.failing_since, `failing after its attempt: ${JSON.stringify(failingNow)}`);
  assert.equal(failedAttempt.status_code, 500);

  step("the Health view draws the last hour's attempts, minute by minute, as the log has them");
  // The log by minute: webhooks made (those that went to no endpoint too,
  // not moments skipped unfired), attempts answered 2xx and the others.
  const log = await listAll("/v1/deliveries");
  const expected = {};
  const at = (minute) => (expected[minute] ||= { fired: new Set(), delivered: 0, failed: 0 });
  for (const d of log) {
    const made = d.status !== "skipped" || /no enabled webhook endpoint/.test(d.reason);
    if (made) at(minuteOf(d.created_at)).fired.add(d.webhook_id);
    for (const a of d.attempts) at(minuteOf(a.at))[a.status_code >= 200 && a.status_code < 300 ? "delivered" : "failed"] += 1;
  }
  await nav("Health").click();
  await page.getByRole("heading", { name: "Health", level: 1 }).waitFor();
  await page.locator("#chart-webhooks svg.chart").waitFor();
  const matches = (bins) => bins.every((b) => b.delivered === (expected[b.start]?.delivered || 0) &&
    b.failed === (expected[b.start]?.failed || 0));
  let hour = await drawnChart("chart-webhooks");
  // Counted figures may trail the log by a moment: refresh until they agree.
  for (let i = 0; i < 20 && !matches(hour.bins); i++) {
    await sleep(250);
    await page.getByRole("button", { name: "Refresh" }).click();
    await page.waitForTimeout(100);
    hour = await drawnChart("chart-webhooks");
  }
  assert.equal(hour.binMinutes, 1);
  assert.equal(hour.bins.length, 60, "a bar a minute for the last hour");
  const sinceLast = Date.now() - Date.parse(hour.bins.at(-1).start);
  assert.ok(sinceLast >= 0 && sinceLast < 120_000, `up to this minute: ${hour.bins.at(-1).start}`);
  for (const b of hour.bins) {
    const want = expected[b.start] || { fired: new Set(), delivered: 0, failed: 0 };
    assert.deepEqual([b.delivered, b.failed], [want.delivered, want.failed], `${b.start}: delivered and failed attempts as the log has them`);
    assert.equal(b.fired, want.fired.size, `${b.start}: webhooks fired`);
    for (const key of ["fired", "delivered"]) {
      assert.equal(b.bars[key]?.value ?? 0, b[key], `${b.start}: a ${key} bar of ${b[key]}`);
    }
    assert.ok(b.title.includes(`${b.delivered} delivered`), b.title);
  }
  assertScaled(hour.bins, "fired", "fired");
  assertScaled(hour.bins, "delivered", "delivered");
  const stats = (await api("GET", `/v1/stats?since=${hour.since}&until=${hour.until}`)).body;
  assert.deepEqual(hour.bins.map((b) => [b.start, b.fired, b.delivered, b.failed]),
    stats.data.map((m) => [m.minute, m.fired, m.delivered, m.failed]), "the chart is /v1/stats, minute by minute");
  const failed = await drawnChart("chart-failed");
  const failedBin = failed.bins.find((b) => b.start === minuteOf(failedAttempt.at));
  assert.ok(failedBin.bars.failed.value >= 1, `the failed attempt's minute has a bar: ${JSON.stringify(failedBin)}`);
  assert.match(failedBin.title, /[1-9]\d* failed attempts?/);
  assertScaled(failed.bins, "failed", "failed");
  const lag = await drawnChart("chart-lag");
  lag.bins.forEach((b, i) => {
    const m = stats.data[i];
    assert.deepEqual([b.p50, b.p99], [m.lag_p50_s, m.lag_p99_s], `${b.start}: the lag as /v1/stats has it`);
    assert.deepEqual(b.points, m.lag_p50_s == null ? {} : { p50: m.lag_p50_s, p99: m.lag_p99_s }, `${b.start}: a point each`);
    assert.equal(b.delivered > 0, b.p50 != null, `${b.start}: a lag where something was delivered`);
  });
  const totals = Object.fromEntries(["fired", "delivered", "failed"].map((key) => [key, hour.bins.reduce((n, b) => n + b[key], 0)]));
  for (const [key, value] of Object.entries(totals)) {
    assert.equal(await page.locator(`[data-figure="${key}"]`).textContent(), value.toLocaleString("en-US"), `the ${key} tile`);
  }

  step("the backlog now, and the endpoints failing or disabled");
  const pending = (await listAll("/v1/deliveries?status=pending")).length;
  assert.ok(pending >= 1, "the failed delivery waits for its retry");
  const backlog = (await api("GET", "/v1/stats")).body.backlog;
  assert.equal(backlog.deliveries_pending, pending, "the backlog counts the pending deliveries");
  assert.equal(await page.locator('[data-figure="deliveries-pending"]').textContent(), String(pending));
  assert.equal(await page.locator('[data-figure="schedules-pending"]').textContent(),
    backlog.schedules_pending.toLocaleString("en-US"));
  const failingRow = page.locator(`#health-endpoints tr[data-id="${failingId}"]`);
  assert.equal(await failingRow.getAttribute("data-state"), "failing");
  await failingRow.locator(".badge", { hasText: "failing" }).waitFor();
  assert.equal(await failingRow.locator("time").getAttribute("datetime"), failingNow.failing_since);
  assert.equal(await page.locator(`#health-endpoints tr[data-id="${endpointId}"]`).getAttribute("data-state"), "disabled");
  assert.equal(await page.locator("#health-endpoints tbody tr").count(), 2, "the healthy ones are not listed");

  step("a chart by keyboard: the detail line tells a minute's figures");
  const told = () => page.locator("#chart-failed").evaluate((host) => ({
    detail: host.querySelector(".chart-detail").textContent, titles: [...host.querySelectorAll(".bin title")].map((t) => t.textContent) }));
  await page.locator("#chart-failed svg.chart").focus();
  await page.keyboard.press("End");
  let read = await told();
  assert.equal(read.detail, read.titles.at(-1), "End: this minute");
  await page.keyboard.press("ArrowLeft");
  read = await told();
  assert.equal(read.detail, read.titles.at(-2), "ArrowLeft: the minute before");
  await shot("health");

  step("the last day: quarter hours, the same figures");
  await page.getByRole("button", { name: "Last day" }).click();
  await page.locator('#chart-webhooks svg.chart[data-bin-minutes="15"]').waitFor();
  const day = await drawnChart("chart-webhooks");
  assert.equal(await page.getByRole("button", { name: "Last day" }).getAttribute("aria-pressed"), "true");
  assert.ok(day.bins.length >= 96 && day.bins.length <= 97, `a day of quarter hours: ${day.bins.length}`);
  assert.ok(Date.parse(day.until) - Date.parse(day.since) >= DAY, "at least a day");
  for (const key of ["fired", "delivered", "failed"]) {
    assert.equal(day.bins.reduce((n, b) => n + b[key], 0), totals[key], `the day's ${key}: this hour's`);
  }
  const quarter = day.bins.find((b) => Date.parse(b.start) <= Date.parse(failedAttempt.at) &&
    Date.parse(failedAttempt.at) < Date.parse(b.start) + 15 * 60_000);
  assert.ok(quarter.failed >= 1, "the failed attempt in its quarter hour");
  assertScaled(day.bins, "fired", "the day's fired");
  await shot("health-day");
  await page.getByRole("button", { name: "Last hour" }).click();
  await page.locator('#chart-webhooks svg.chart[data-bin-minutes="1"]').waitFor();

  step("the failing endpoint links to its deliveries");
  await failingRow.getByRole("link", { name: "View deliveries" }).click();
  await page.getByRole("heading", { name: "Deliveries", level: 1 }).waitFor();
  assert.equal(await page.evaluate(() => location.hash), `#deliveries?endpoint_id=${failingId}`);
  const its = page.locator("#delivery-list tr[data-id]");
  await its.filter({ hasText: "c_health" }).waitFor();
  assert.equal(await page.locator("#d-endpoint").inputValue(), failingId, "the endpoint filter is set");
  assert.equal(await page.locator("#d-customer").inputValue(), "", "and only it");
  assert.equal(await its.count(), 1, "only its delivery");
  assert.match(await its.first().textContent(), /c_health.*Failing receiver.*pending/s);

  step("nothing is wider than its card, at 1280 and at 390 px");
  for (const width of [1280, 390]) {
    await page.setViewportSize({ width, height: width > 500 ? 900 : 844 });
    for (const [link, ready] of [["Notifications", "#notification-groups table"], ["Webhook endpoints", "#endpoint-list table"],
      ["Upcoming", "#upcoming-timeline svg"], ["Deliveries", "#delivery-list table"], ["Health", "#chart-webhooks svg"]]) {
      await nav(link).click();
      await page.locator(ready).first().waitFor();
      await page.waitForTimeout(100);
      const wide = await overflowing();
      assert.deepEqual(wide, [], `${link} at ${width} px`);
    }
    await page.getByRole("link", { name: "Upcoming" }).click();
    await page.locator("#upcoming-timeline svg").waitFor();
    await page.locator("#upcoming-timeline").screenshot({ path: `${OUT_DIR}/timeline-${width}.png` });
    await nav("Health").click();
    await page.locator("#chart-webhooks svg.chart").waitFor();
    await page.waitForTimeout(300);
    await page.screenshot({ path: `${OUT_DIR}/health-${width}.png`, fullPage: true });
  }

  step("narrow screens: the defaults folded away again");
  await page.getByRole("link", { name: "Notifications" }).click();
  await page.getByRole("button", { name: "New notification" }).waitFor();
  for (const fold of await page.locator("#notification-groups tr.fold").all()) {
    const button = fold.getByRole("button", { name: "hide" });
    if (await button.count()) await button.click();
  }
  assert.equal(await defaults.filter({ visible: true }).count(), 0);
  await shot("notifications-narrow");

  assert.deepEqual(errors, [], "no script errors");
  console.log(JSON.stringify({ secret, rotated, endpoint_id: endpointId, failing_endpoint_id: failingId, health: totals }));
} catch (error) {
  await shot("failure").catch(() => {});
  throw error;
} finally {
  await browser.close();
}
