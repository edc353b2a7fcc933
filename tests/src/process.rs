//! Starting, killing and restarting the real process.

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

pub struct Lifecycle {
    child: Option<Child>,
    data: tempfile::TempDir,
    args: Vec<String>,
    pub base: String,
    pub key: String,
    http: reqwest::Client,
}

/// The binary under test, built once if `cargo test` did not build it.
fn binary() -> PathBuf {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY
        .get_or_init(|| {
            if let Ok(path) = std::env::var("LIFECYCLE_BIN") {
                return PathBuf::from(path);
            }
            let exe = std::env::current_exe().expect("the test binary has a path");
            let path = exe
                .parent()
                .and_then(|deps| deps.parent())
                .expect("target/<profile>/deps")
                .join("lifecycle");
            if !path.exists() {
                let status = Command::new(env!("CARGO"))
                    .args(["build", "-p", "lifecycle-local", "--bin", "lifecycle"])
                    .status()
                    .expect("cargo runs");
                assert!(status.success(), "building the lifecycle binary failed");
            }
            path
        })
        .clone()
}

impl Lifecycle {
    /// Starts the process; `args` are extra `serve` flags.
    pub async fn start(args: &[&str]) -> Self {
        let mut lifecycle = Lifecycle {
            child: None,
            data: tempfile::tempdir().unwrap(),
            args: args.iter().map(|a| a.to_string()).collect(),
            base: String::new(),
            key: "test-key".into(),
            http: reqwest::Client::new(),
        };
        lifecycle.spawn();
        lifecycle
    }

    fn spawn(&mut self) {
        let mut child = Command::new(binary())
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--api-key",
                &self.key,
                "--data",
            ])
            .arg(self.data.path())
            .args(&self.args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("the lifecycle binary starts");
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let line = lines.next().expect("it prints where it listens").unwrap();
        let address = line
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
        self.base = address.to_string();
        // Keep draining stdout so the process never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        self.child = Some(child);
    }

    /// SIGKILL: no shutdown, no flushing.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    /// Starts again on the same data folder.
    pub fn restart(&mut self) {
        self.kill9();
        self.spawn();
    }

    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> (u16, Value) {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.key);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request
            .timeout(Duration::from_secs(30))
            .send()
            .await
            .expect("the API answers");
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    pub async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        self.send(reqwest::Method::POST, path, Some(body)).await
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        self.send(reqwest::Method::GET, path, None).await
    }

    pub async fn patch(&self, path: &str, body: &Value) -> (u16, Value) {
        self.send(reqwest::Method::PATCH, path, Some(body)).await
    }

    /// A raw body with an optional key, for bad-input tests.
    pub async fn post_raw(
        &self,
        path: &str,
        body: impl Into<reqwest::Body>,
        key: Option<&str>,
    ) -> (u16, Value) {
        let mut request = self.http.post(format!("{}{path}", self.base)).body(body);
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        let response = request.send().await.expect("the API answers");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Posts write events and expects them accepted; returns their statuses.
    pub async fn events(&self, body: &Value) -> Vec<String> {
        let (status, answer) = self.post("/v1/events", body).await;
        assert_eq!(status, 200, "{answer}");
        answer["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["status"].as_str().unwrap().to_string())
            .collect()
    }

    /// Creates an endpoint taking these types; returns (id, secret).
    pub async fn endpoint(&self, url: &str, types: &[&str]) -> (String, String) {
        let (status, body) = self
            .post(
                "/v1/webhook-endpoints",
                &serde_json::json!({"url": url, "event_types": types}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        (
            body["id"].as_str().unwrap().into(),
            body["secret"].as_str().unwrap().into(),
        )
    }
}

impl Drop for Lifecycle {
    fn drop(&mut self) {
        self.kill9();
    }
}
