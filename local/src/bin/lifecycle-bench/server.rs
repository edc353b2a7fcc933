//! The `lifecycle` binary as a benchmark runs it: a child process on a data
//! folder, serving on a loopback port, and what the process costs (CPU,
//! peak resident memory) and leaves on disk (the data folder, its WAL).

use super::Result;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The `lifecycle` binary beside this one.
pub fn binary() -> Result<PathBuf> {
    let binary = std::env::current_exe()?.with_file_name("lifecycle");
    if !binary.exists() {
        return Err(format!(
            "{} is missing: cargo build --release --bin lifecycle",
            binary.display()
        )
        .into());
    }
    Ok(binary)
}

pub struct Running {
    child: Child,
    pub serving_ms: f64,
    /// host:port it serves on.
    pub address: String,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

/// Starts the binary and waits until it answers `/healthz`.
pub fn start(binary: &Path, data: &Path) -> Result<Running> {
    std::fs::create_dir_all(data)?;
    let started = Instant::now();
    let mut child = Command::new(binary)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--api-key",
            "bench",
            "--data",
        ])
        .arg(data)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let mut running = Running {
        child,
        serving_ms: 0.0,
        address: String::new(),
    };
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line)?;
    let address = line
        .trim()
        .strip_prefix("listening on http://")
        .ok_or_else(|| format!("unexpected first line: {line:?}"))?
        .to_string();
    while std::net::TcpStream::connect(&address).is_err() {
        std::thread::sleep(Duration::from_millis(1));
    }
    healthz(&address)?;
    running.address = address;
    running.serving_ms = started.elapsed().as_secs_f64() * 1000.0;
    Ok(running)
}

/// One blocking `GET /healthz`, to be sure the router answers.
fn healthz(address: &str) -> Result<()> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(address)?;
    stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer)?;
    if !answer.starts_with("HTTP/1.1 200") {
        return Err(format!("healthz answered {answer:?}").into());
    }
    Ok(())
}

/// The peak resident set of a running process (VmHWM), after `settle`.
pub async fn peak_rss_kb(running: &Running, settle: Duration) -> f64 {
    tokio::time::sleep(settle).await;
    running.peak_rss_kb()
}

impl Running {
    /// The peak resident set so far (VmHWM), in KiB.
    pub fn peak_rss_kb(&self) -> f64 {
        let status = PathBuf::from(format!("/proc/{}/status", self.child.id()));
        std::fs::read_to_string(status)
            .ok()
            .and_then(|text| {
                text.lines()
                    .find(|l| l.starts_with("VmHWM:"))
                    .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
            })
            .unwrap_or(0.0)
    }

    /// CPU seconds the process has used, user and system.
    pub fn cpu_seconds(&self) -> f64 {
        let stat =
            std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap_or_default();
        // Fields 14 and 15 (utime, stime), counted after the command name,
        // which may hold spaces but ends at the last ')'; in clock ticks,
        // which Linux fixes at 100 a second for user space (USER_HZ).
        let after_name = stat.rsplit(')').next().unwrap_or_default();
        let ticks: f64 = after_name
            .split_whitespace()
            .skip(11)
            .take(2)
            .filter_map(|t| t.parse::<f64>().ok())
            .sum();
        ticks / 100.0
    }
}

/// Bytes of every file in a data folder, and of its WAL alone.
pub fn folder_bytes(data: &Path) -> (u64, u64) {
    let files = std::fs::read_dir(data).into_iter().flatten().flatten();
    let sizes: Vec<(String, u64)> = files
        .filter_map(|f| {
            Some((
                f.file_name().to_string_lossy().into_owned(),
                f.metadata().ok()?.len(),
            ))
        })
        .collect();
    let total = sizes.iter().map(|(_, len)| len).sum();
    let wal = sizes
        .iter()
        .filter(|(name, _)| name.ends_with("-wal"))
        .map(|(_, len)| len)
        .sum();
    (total, wal)
}
