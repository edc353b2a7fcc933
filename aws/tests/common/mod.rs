//! The harness of the AWS adapter tests: one real `moto_server` per test
//! binary on a free loopback port, SDK clients pointed at it with dummy
//! credentials, and a fresh table or schedule group per test, so tests run
//! in parallel without resetting each other's state. No fakes of the SDK.
#![allow(dead_code)]

use aws_config::{BehaviorVersion, Region};
use lifecycle_aws::DynamoStore;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The venv's Python (`scripts/tools` installs the pinned moto[server]
/// there) and the launcher `scripts/moto_server.py`, which runs moto with
/// its quadratic transaction backup fixed. `$MOTO_PYTHON` overrides the Python.
fn moto_command() -> (PathBuf, PathBuf) {
    let python = match std::env::var_os("MOTO_PYTHON") {
        Some(path) => PathBuf::from(path),
        None => {
            let home = std::env::var_os("HOME").expect("HOME is set");
            PathBuf::from(home).join(".cache/lifecycle-venv/bin/python")
        }
    };
    let launcher = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .map(|dir| dir.join("scripts/moto_server.py"))
        .find(|path| path.exists())
        .expect("scripts/moto_server.py in the workspace");
    (python, launcher)
}

/// The moto server of this test binary: started on first use, stopped by a
/// watchdog shell within a second of this process exiting.
pub fn moto() -> &'static str {
    static URL: OnceLock<String> = OnceLock::new();
    URL.get_or_init(|| {
        let (python, launcher) = moto_command();
        assert!(
            python.exists(),
            "no Python at {} (set MOTO_PYTHON): run scripts/tools, which installs \
             the pinned moto[server] into ~/.cache/lifecycle-venv",
            python.display()
        );
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let script = format!(
            "\"$0\" \"$1\" -H 127.0.0.1 -p {port} >/dev/null 2>&1 & moto=$!; \
             while kill -0 {parent} 2>/dev/null && kill -0 $moto 2>/dev/null; do sleep 1; done; \
             kill $moto 2>/dev/null",
            parent = std::process::id()
        );
        // Kept for the life of the process; the watchdog reaps moto.
        static WATCHDOG: OnceLock<Mutex<Child>> = OnceLock::new();
        let watchdog = Command::new("sh")
            .arg("-c")
            .arg(script)
            .arg(&python)
            .arg(&launcher)
            .stdin(Stdio::null())
            .spawn()
            .expect("start moto_server");
        let _ = WATCHDOG.set(Mutex::new(watchdog));
        let address: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        while TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_err() {
            assert!(
                Instant::now() < deadline,
                "moto_server did not answer on port {port} within 60 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        format!("http://127.0.0.1:{port}")
    })
}

pub async fn sdk_config() -> aws_config::SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(moto())
        .test_credentials()
        .region(Region::new("us-east-1"))
        .load()
        .await
}

/// A name no other test of this run uses.
pub fn unique(prefix: &str) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// A DynamoStore on a fresh table of the moto server.
pub async fn dynamo_store() -> DynamoStore {
    let config = sdk_config().await;
    let client = aws_sdk_dynamodb::Client::new(&config);
    let table = unique("lifecycle");
    lifecycle_aws::create_table(&client, &table)
        .await
        .expect("create the table on moto");
    DynamoStore::new(client, table)
}

/// A fresh schedule group on the moto server (moto answers a schedule in a
/// missing group with HTTP 500).
pub async fn schedule_group(client: &aws_sdk_scheduler::Client) -> String {
    let group = unique("lifecycle");
    client
        .create_schedule_group()
        .name(&group)
        .send()
        .await
        .expect("create the schedule group on moto");
    group
}

pub const ACCOUNT: &str = "123456789012";

pub fn deliver_arn() -> String {
    format!("arn:aws:lambda:us-east-1:{ACCOUNT}:function:lifecycle-deliver")
}

pub fn role_arn() -> String {
    format!("arn:aws:iam::{ACCOUNT}:role/lifecycle-scheduler")
}

pub fn dlq_arn() -> String {
    format!("arn:aws:sqs:us-east-1:{ACCOUNT}:lifecycle-schedule-dlq")
}
