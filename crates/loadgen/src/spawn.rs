//! Starting a fresh `vtp` for a load run, and the few HTTP calls a run needs.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context as _, bail};
use serde_json::Value;

/// A server started by the load generator (`vtp` or Janus); stopped (and
/// its folder removed) on drop.
pub struct Spawned {
    pub child: Child,
    dir: PathBuf,
}

impl Spawned {
    /// Owns `child` and its folder `dir` from now on.
    pub fn new(child: Child, dir: PathBuf) -> Spawned {
        Spawned { child, dir }
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Starts `bin serve` on free ports with a fresh data directory and an
/// instructor account, with limits raised for load; `extra` adds flags.
pub fn spawn(
    bin: &Path,
    email: &str,
    password: &str,
    extra: &[&str],
) -> anyhow::Result<(Spawned, String)> {
    spawn_pinned(bin, email, password, extra, None)
}

/// [`spawn`], with the server pinned to core `cpu` by `taskset` (which
/// execs it, so the child's pid is the server's).
pub fn spawn_pinned(
    bin: &Path,
    email: &str,
    password: &str,
    extra: &[&str],
    cpu: Option<usize>,
) -> anyhow::Result<(Spawned, String)> {
    let dir =
        std::env::temp_dir().join(format!("vtp-load-{}-{}", std::process::id(), rand_suffix()));
    std::fs::create_dir_all(&dir)?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let status = Command::new(bin)
        .args([
            "user",
            "create",
            "--email",
            email,
            "--password",
            password,
            "--role",
            "instructor",
            "--data-dir",
        ])
        .arg(&dir)
        .stdout(Stdio::null())
        .status()
        .context("running vtp user create")?;
    if !status.success() {
        bail!("vtp user create failed");
    }
    let child = pinned_command(bin, cpu)
        .args([
            "serve",
            "--bind",
            &format!("127.0.0.1:{port}"),
            "--rtc-bind",
            "127.0.0.1:0",
            "--log-level",
            "warn",
        ])
        // Every simulated client comes from 127.0.0.1: lift the per-address limits.
        .args([
            "--login-rate-per-ip",
            "1000000",
            "--socket-events-per-second",
            "1000",
            "--max-connections-per-ip",
            "1000000",
            "--max-unauthenticated-per-ip",
            "1000000",
        ])
        .args(extra)
        .arg("--data-dir")
        .arg(&dir)
        .stdout(Stdio::null())
        .spawn()
        .context("starting vtp serve")?;
    Ok((Spawned { child, dir }, format!("http://127.0.0.1:{port}")))
}

/// A command for `bin`, run through `taskset -c cpu` when `cpu` is given
/// (taskset execs `bin`, so the child's pid is `bin`'s, and every thread
/// it starts inherits the mask).
pub fn pinned_command(bin: &Path, cpu: Option<usize>) -> Command {
    match cpu {
        Some(c) => {
            let mut command = Command::new("taskset");
            command.arg("-c").arg(c.to_string()).arg(bin);
            command
        }
        None => Command::new(bin),
    }
}

pub fn rand_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

/// Waits until `base/health` answers.
pub async fn wait_healthy(http: &reqwest::Client, base: &str) {
    for _ in 0..100 {
        if http
            .get(format!("{base}/health"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// POSTs JSON; an error status becomes an error with the body.
pub async fn post(
    http: &reqwest::Client,
    url: String,
    token: Option<&str>,
    body: Value,
) -> anyhow::Result<Value> {
    let mut req = http.post(url).json(&body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await?;
    let status = resp.status();
    let value: Value = resp.json().await?;
    if !status.is_success() {
        bail!("{status}: {value}");
    }
    Ok(value)
}
