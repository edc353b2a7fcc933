//! The Notifications page in a real browser: `tests/browser/page.mjs` drives
//! headless Chromium (playwright-core, installed by `scripts/tools`) against
//! the real process; this test then checks what reached the receivers (one
//! answering 200, one 500) against what the page showed, the Health view's
//! charts included. Screenshots of each view land in `tests/browser/output/`.

use axum::http::StatusCode;
use lifecycle_e2e::{Lifecycle, Options, Receiver};
use serde_json::Value;
use std::path::Path;
use std::time::Duration;

#[tokio::test]
async fn the_page_manages_notifications_endpoints_and_deliveries() {
    let browser_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("browser");
    assert!(
        browser_dir.join("node_modules/playwright-core").exists(),
        "playwright-core is missing: run scripts/tools"
    );
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        Path::new(&chromium).exists(),
        "{chromium} is missing: run scripts/tools"
    );
    let output_dir = browser_dir.join("output");
    let _ = std::fs::remove_dir_all(&output_dir);
    // A failed attempt is retried an hour later: the figures stay put meanwhile.
    let app = Lifecycle::start(Options::default().retry_delays("1h")).await;
    let receiver = Receiver::start().await;
    let failing = Receiver::start_with(&[], |_| StatusCode::INTERNAL_SERVER_ERROR).await;

    let output = tokio::process::Command::new("node")
        .arg("page.mjs")
        .current_dir(&browser_dir)
        .env("BASE_URL", app.base_url())
        .env("API_KEY", &app.key)
        .env("RECEIVER_URL", receiver.url())
        .env("FAILING_URL", failing.url())
        .env("OUT_DIR", &output_dir)
        .env("CHROMIUM", &chromium)
        .output()
        .await
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "the browser test failed:\n{}\n{stdout}\nprocess log:\n{}",
        String::from_utf8_lossy(&output.stderr),
        app.log_tail()
    );
    let result: Value = serde_json::from_str(stdout.lines().last().unwrap_or_default())
        .expect("the browser test prints its result");
    let secret = result["secret"].as_str().unwrap();

    // contract.create, its resend and the test event, all signed with the
    // secret the page showed once.
    let got = receiver
        .expect(
            6,
            Duration::from_secs(5),
            "the page's deliveries (three of them the timeline's writes)",
        )
        .await;
    assert!(got.iter().all(|r| r.verify(secret)));
    let of_type = |t: &str| -> Vec<_> { got.iter().filter(|r| r.body["type"] == t).collect() };
    let rotated = result["rotated"].as_str().unwrap();
    assert!(
        of_type("webhook_endpoint.test")[0].verify(rotated),
        "sent after the rotation: signed with both secrets"
    );
    // The timeline's own contract (k_tl) is created too; these are k_page's.
    let creates: Vec<_> = (of_type("contract.create").into_iter())
        .filter(|r| r.raw.contains("\"k_page\""))
        .collect();
    assert_eq!(creates.len(), 2, "delivered, then resent from the page");
    assert_eq!(
        creates[0].header("webhook-id"),
        creates[1].header("webhook-id"),
        "a resend keeps the id"
    );
    assert_eq!(of_type("webhook_endpoint.test").len(), 1);

    // The Health view's charts summed up what the receivers saw: every
    // attempt answered 200 delivered, every 500 a failed attempt.
    let health = &result["health"];
    assert_eq!(health["delivered"], got.len(), "{health}");
    let failed = failing.requests();
    assert!(failed.iter().all(|r| r.status == 500));
    assert_eq!(health["failed"], failed.len(), "{health}");
    assert_eq!(failed.len(), 1, "one attempt, its retry an hour away");
    assert!(failed[0].raw.contains("\"k_health\""), "{}", failed[0].raw);
    for view in [
        "sign-in",
        "notifications",
        "endpoints",
        "upcoming",
        "deliveries",
        "timeline-1280",
        "timeline-390",
        "health",
        "health-day",
        "health-1280",
        "health-390",
    ] {
        assert!(
            output_dir.join(format!("{view}.png")).exists(),
            "a screenshot of {view}"
        );
    }
}
