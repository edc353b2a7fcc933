//! The API against its own OpenAPI description: schemathesis generates
//! requests (valid and invalid) for every operation of `/v1/openapi.json`,
//! sends them to the real process and checks every answer: no 5xx, only
//! documented status codes and content types, bodies that match their schema,
//! 401 without the key, 405 (with `Allow`) for a method a route does not take.

use lifecycle_e2e::{Lifecycle, Options};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// `SCHEMATHESIS`, else the pinned one `scripts/tools` installs.
fn schemathesis() -> PathBuf {
    if let Some(path) = std::env::var_os("SCHEMATHESIS") {
        return PathBuf::from(path);
    }
    let home = std::env::var_os("HOME").expect("HOME is set");
    PathBuf::from(home).join(".cache/lifecycle-venv/bin/schemathesis")
}

const CHECKS: &str = "not_a_server_error,response_schema_conformance,status_code_conformance,\
content_type_conformance,ignored_auth,unsupported_method,allow_header_conformance";

/// Examples per operation and phase: about a minute on a loaded 2-core machine.
const MAX_EXAMPLES: &str = "100";
const SEED: &str = "20261125";

#[tokio::test]
async fn the_api_answers_as_its_openapi_description_says() {
    let binary = schemathesis();
    assert!(
        binary.is_file(),
        "schemathesis not found at {}: run scripts/tools (it installs the pinned \
         schemathesis into ~/.cache/lifecycle-venv), or point SCHEMATHESIS at one",
        binary.display()
    );
    let app = Lifecycle::start(Options::default()).await;
    let base = app.base_url().to_string();
    let auth = format!("Authorization: Bearer {}", app.key);
    let schema = format!("{base}/v1/openapi.json");
    // Its own folder, so that no config file or example database is picked up or left behind.
    let workdir = tempfile::tempdir().expect("a temporary folder");
    let args = [
        "run",
        schema.as_str(),
        "--url",
        base.as_str(),
        "--header",
        auth.as_str(),
        "--checks",
        CHECKS,
        "--max-examples",
        MAX_EXAMPLES,
        "--seed",
        SEED,
        "--workers",
        "1",
        "--request-timeout",
        "20",
        "--generation-database",
        "none",
        "--no-color",
    ];
    let started = Instant::now();
    let run = tokio::process::Command::new(&binary)
        .args(args)
        .current_dir(workdir.path())
        .env("NO_COLOR", "1")
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(600), run)
        .await
        .unwrap_or_else(|_| panic!("schemathesis ran over 10 minutes: {binary:?} {args:?}"))
        .unwrap_or_else(|e| panic!("{} does not start: {e}", binary.display()));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let shown = args.map(|a| {
        if a == auth {
            "Authorization: Bearer <key>"
        } else {
            a
        }
    });
    assert!(
        output.status.success(),
        "schemathesis found the API out of step with its description ({}, after {:?}):\n\
         {} {}\n\n{text}",
        output.status,
        started.elapsed(),
        binary.display(),
        shown.join(" "),
    );
    assert!(
        text.contains("Operations:") && text.contains("passed"),
        "schemathesis exited 0 but did not report testing the operations:\n{text}"
    );
    eprintln!(
        "schemathesis passed in {:?}:\n{}",
        started.elapsed(),
        text.lines()
            .skip_while(|l| !l.contains("SUMMARY"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}
