//! CPU and memory of a local process, read from `/proc`.

use std::time::Instant;

/// Resident set size of `pid`, in bytes.
pub fn rss_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// User + system CPU time of `pid`, in clock ticks.
fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may contain spaces) start after ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// Measures a process's CPU use between two points in time.
pub struct CpuMeter {
    pid: u32,
    ticks: u64,
    at: Instant,
}

impl CpuMeter {
    pub fn start(pid: u32) -> Option<CpuMeter> {
        Some(CpuMeter {
            pid,
            ticks: cpu_ticks(pid)?,
            at: Instant::now(),
        })
    }

    /// CPU used since `start`, in percent of one core.
    pub fn percent(&self) -> Option<f64> {
        let ticks = cpu_ticks(self.pid)?.saturating_sub(self.ticks);
        // Linux reports 100 ticks per second on every common configuration.
        let cpu_secs = ticks as f64 / 100.0;
        Some(100.0 * cpu_secs / self.at.elapsed().as_secs_f64().max(1e-6))
    }
}
