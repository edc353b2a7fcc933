// Drives the Notifications page in Debian's headless Chromium, as a user
// would. Started by tests/tests/page.rs, which runs the real process and a
// loopback receiver and checks what arrived there afterwards.
//
// Env: BASE_URL, API_KEY, RECEIVER_URL, OUT_DIR (screenshots), CHROMIUM.
// Prints one JSON line at the end: {"secret": ..., "endpoint_id": ...}.
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { chromium } from "playwright-core";

const { BASE_URL, API_KEY, RECEIVER_URL, OUT_DIR } = process.env;
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

  step("the system defaults are listed, grouped");
  const defaults = page.locator("#notification-groups tbody tr")
    .filter({ has: page.locator(".badge", { hasText: /^default$/ }) });
  await defaults.first().waitFor();
  assert.equal(await defaults.count(), 15, "the 15 system notifications");
  for (const group of ["Lifecycle: scheduled moments", "Lifecycle: writes", "Thresholds"]) {
    await page.getByRole("heading", { name: group }).waitFor();
  }

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

  step("add an endpoint; the secret is shown once");
  await page.getByRole("link", { name: "Webhook endpoints" }).click();
  await page.getByRole("button", { name: "Add endpoint" }).click();
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
  assert.equal(await shown.textContent(), new Date(fireAt).toLocaleString("en-US",
    { timeZone: "Asia/Tokyo", dateStyle: "medium", timeStyle: "medium" }), "in the browser's zone");
  assert.equal(await shown.getAttribute("title"), `${fireAt} (UTC)`, "UTC on hover");
  await shot("upcoming");
  await view("upcoming").getByLabel("Customer id", { exact: true }).fill("c_old");
  await page.getByRole("button", { name: "Show timeline" }).click();
  const skipped = page.locator("#upcoming-list tr", { hasText: "contract.start" });
  await skipped.locator(".badge.skipped").waitFor();
  assert.equal(await skipped.getAttribute("data-status"), "skipped");
  await page.locator("#upcoming-list tr", { hasText: "System: contract.end" }).waitFor();
  await shot("upcoming-skipped");

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

  step("narrow screens");
  await page.setViewportSize({ width: 390, height: 844 });
  await page.getByRole("link", { name: "Notifications" }).click();
  await page.getByRole("button", { name: "New notification" }).waitFor();
  await shot("notifications-narrow");

  assert.deepEqual(errors, [], "no script errors");
  console.log(JSON.stringify({ secret, rotated, endpoint_id: endpointId }));
} catch (error) {
  await shot("failure").catch(() => {});
  throw error;
} finally {
  await browser.close();
}
