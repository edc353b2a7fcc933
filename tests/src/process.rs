//! Starting, killing and restarting the real process.

use serde_json::{json, Value};
use std::fs::OpenOptions;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// How to start the process.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// `--retry-delays`, e.g. `"1s,1s"`.
    pub retry_delays: Option<String>,
    /// Any further `serve` flags.
    pub args: Vec<String>,
    /// The umask the process starts under (through `sh`); None: the test's.
    pub umask: Option<u32>,
    /// Start without `--api-key`: the process keeps (or generates) its key
    /// in the data folder, and the harness reads it from there.
    pub stored_key: bool,
    /// Environment variables set for the process (after the AWS ones are cleared).
    pub env: Vec<(String, String)>,
}

impl Options {
    pub fn retry_delays(mut self, delays: &str) -> Self {
        self.retry_delays = Some(delays.to_string());
        self
    }
}

/// The binary under test: `LIFECYCLE_BIN`, else `lifecycle` next to the test
/// binary's `deps/` folder, built once if it is not there.
pub fn binary() -> PathBuf {
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
                .expect("the test binary lives in target/<profile>/deps")
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

/// One `lifecycle serve` process and its data folder (kept across restarts).
pub struct Lifecycle {
    child: Option<Child>,
    /// `root/data` is the data folder, `root/stderr.log` the process's logs.
    root: tempfile::TempDir,
    options: Options,
    pub base: String,
    pub key: String,
    http: reqwest::Client,
}

impl Lifecycle {
    pub async fn start(options: Options) -> Self {
        let mut lifecycle = Lifecycle {
            child: None,
            root: tempfile::tempdir().expect("a temporary folder"),
            options,
            base: String::new(),
            key: "e2e-test-key".into(),
            http: reqwest::Client::new(),
        };
        lifecycle.spawn().await;
        lifecycle
    }

    pub fn base_url(&self) -> &str {
        &self.base
    }

    pub fn data_dir(&self) -> PathBuf {
        self.root.path().join("data")
    }

    fn log_path(&self) -> PathBuf {
        self.root.path().join("stderr.log")
    }

    /// `lifecycle serve` on a free port and this data folder, with the options.
    fn command(&self) -> Command {
        let mut command = match self.options.umask {
            Some(mask) => {
                let mut sh = Command::new("sh");
                sh.args(["-c", &format!("umask {mask:03o} && exec \"$0\" \"$@\"")])
                    .arg(binary());
                sh
            }
            None => Command::new(binary()),
        };
        command.args(["serve", "--listen", "127.0.0.1:0"]);
        if !self.options.stored_key {
            command.args(["--api-key", &self.key]);
        }
        command.arg("--data").arg(self.data_dir());
        if let Some(delays) = &self.options.retry_delays {
            command.args(["--retry-delays", delays]);
        }
        command.args(&self.options.args);
        // Whatever AWS configuration the machine has, the process starts
        // without (eventbridge and sqs endpoints refused), unless a test gives one.
        for name in [
            "AWS_REGION",
            "AWS_DEFAULT_REGION",
            "AWS_PROFILE",
            "AWS_ACCESS_KEY_ID",
        ] {
            command.env_remove(name);
        }
        command
            .env("AWS_CONFIG_FILE", "/nonexistent")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent");
        command.envs(self.options.env.iter().map(|(k, v)| (k, v)));
        command
    }

    async fn spawn(&mut self) {
        assert!(self.child.is_none(), "the process is already running");
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("the log file opens");
        let mut command = self.command();
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("the lifecycle binary starts");
        let stdout = child.stdout.take().unwrap();
        let (first_line, first) = mpsc::channel();
        // Passes on the lines up to the address, then keeps draining so the
        // pipe never fills up.
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            loop {
                let line = lines.next();
                let last = !matches!(&line, Some(Ok(l)) if l.starts_with("generated"));
                let _ = first_line.send(line);
                if last {
                    break;
                }
            }
            lines.for_each(drop);
        });
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        let line = loop {
            match first.try_recv() {
                Ok(Some(Ok(line))) => break line,
                Ok(_) | Err(mpsc::TryRecvError::Disconnected) => {
                    panic!("the process exited before listening:\n{}", self.log_tail())
                }
                Err(mpsc::TryRecvError::Empty) if Instant::now() > deadline => {
                    panic!("no `listening on` line within 20 s:\n{}", self.log_tail())
                }
                Err(mpsc::TryRecvError::Empty) => {
                    tokio::time::sleep(Duration::from_millis(10)).await
                }
            }
        };
        // A generated key is announced before the address.
        let line = match line.starts_with("generated") {
            true => loop {
                match first.recv_timeout(Duration::from_secs(20)) {
                    Ok(Some(Ok(next))) if next.starts_with("generated") => continue,
                    Ok(Some(Ok(next))) => break next,
                    _ => panic!("the process exited before listening:\n{}", self.log_tail()),
                }
            },
            false => line,
        };
        if self.options.stored_key {
            let keys = std::fs::read_to_string(self.data_dir().join("api_key"))
                .expect("the process keeps its API key in the data folder");
            self.key = keys.lines().next().unwrap_or_default().trim().to_string();
        }
        let address = line
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first stdout line {line:?}"));
        let port: u16 = address
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no port in {line:?}"));
        assert_ne!(port, 0, "{line:?}");
        self.base = format!("http://127.0.0.1:{port}");
    }

    /// SIGKILL (`Child::kill` on unix): no shutdown, no flushing.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Kills the process if it runs, then starts it again on the same data folder.
    pub async fn restart(&mut self) {
        self.kill9();
        self.spawn().await;
    }

    /// The options the next start uses.
    pub fn options_mut(&mut self) -> &mut Options {
        &mut self.options
    }

    /// Kills the process if it runs, starts it again and expects it to exit
    /// without listening: returns its exit status and what it logged then.
    pub fn restart_expecting_failure(&mut self) -> (std::process::ExitStatus, String) {
        self.kill9();
        let output = self
            .command()
            .output()
            .expect("the lifecycle binary starts");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        (output.status, text)
    }

    /// Everything the process logged (its stderr), every start included.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// The last lines the process logged, for failure messages.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.log_path()).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
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
            .bearer_auth(&self.key)
            .timeout(Duration::from_secs(30));
        if let Some(body) = body {
            request = request.json(body);
        }
        answer(request).await
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

    pub async fn delete(&self, path: &str) -> (u16, Value) {
        self.send(reqwest::Method::DELETE, path, None).await
    }

    /// A raw body (JSON content type) with an optional key, for bad-input tests.
    pub async fn post_raw(
        &self,
        path: &str,
        body: impl Into<reqwest::Body>,
        key: Option<&str>,
    ) -> (u16, Value) {
        let mut request = self
            .http
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .body(body)
            .timeout(Duration::from_secs(30));
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        answer(request).await
    }

    /// Posts write events, expects 200 and returns the per-event statuses.
    pub async fn events(&self, body: &Value) -> Vec<String> {
        let (status, answer) = self.post("/v1/events", body).await;
        assert_eq!(status, 200, "POST /v1/events {body}\n-> {answer}");
        answer["results"]
            .as_array()
            .unwrap_or_else(|| panic!("no results array in {answer}"))
            .iter()
            .map(|r| r["status"].as_str().unwrap_or_default().to_string())
            .collect()
    }

    /// Creates an endpoint taking only these types; returns (id, secret).
    pub async fn endpoint(&self, url: &str, types: &[&str]) -> (String, String) {
        let body = json!({"url": url, "event_types": types});
        let (status, answer) = self.post("/v1/webhook-endpoints", &body).await;
        assert_eq!(
            status, 201,
            "POST /v1/webhook-endpoints {body}\n-> {answer}"
        );
        let secret = answer["secret"].as_str().unwrap_or_default();
        assert!(secret.starts_with("whsec_"), "{answer}");
        (answer["id"].as_str().unwrap().into(), secret.into())
    }

    /// Creates a notification, expects 201 and returns it.
    pub async fn notification(&self, body: &Value) -> Value {
        let (status, answer) = self.post("/v1/notifications", body).await;
        assert_eq!(status, 201, "POST /v1/notifications {body}\n-> {answer}");
        answer
    }

    /// Disables the system notification of one event type, found by listing.
    pub async fn disable_system(&self, event_type: &str) {
        let (status, list) = self.get("/v1/notifications?limit=500").await;
        assert_eq!(status, 200, "{list}");
        let system = list["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["system"] == json!(true) && n["event_type"] == json!(event_type))
            .unwrap_or_else(|| panic!("no system notification for {event_type} in {list}"));
        let path = format!("/v1/notifications/{}", system["id"].as_str().unwrap());
        let (status, answer) = self.patch(&path, &json!({"enabled": false})).await;
        assert_eq!(
            (status, &answer["enabled"]),
            (200, &json!(false)),
            "PATCH {path}: {answer}"
        );
    }

    /// The customer's upcoming schedules (until 2100, so nothing is cut off).
    pub async fn upcoming(&self, customer: &str) -> Vec<Value> {
        let path =
            format!("/v1/customers/{customer}/upcoming?limit=500&until=2100-01-01T00:00:00Z");
        let (status, answer) = self.get(&path).await;
        assert_eq!(status, 200, "GET {path}: {answer}");
        answer["data"]
            .as_array()
            .unwrap_or_else(|| panic!("{answer}"))
            .clone()
    }

    /// Deliveries matching a query string such as `customer_id=c_1`.
    pub async fn deliveries(&self, query: &str) -> Vec<Value> {
        let path = format!("/v1/deliveries?limit=500&{query}");
        let (status, answer) = self.get(&path).await;
        assert_eq!(status, 200, "GET {path}: {answer}");
        answer["data"]
            .as_array()
            .unwrap_or_else(|| panic!("{answer}"))
            .clone()
    }
}

async fn answer(request: reqwest::RequestBuilder) -> (u16, Value) {
    let response = request.send().await.expect("the API answers");
    let status = response.status().as_u16();
    let text = response.text().await.unwrap_or_default();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

impl Drop for Lifecycle {
    fn drop(&mut self) {
        self.kill9();
        if std::thread::panicking() {
            eprintln!("--- lifecycle stderr (last lines) ---\n{}", self.log_tail());
        }
    }
}
