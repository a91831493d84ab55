//! Running ffmpeg: arguments as a list (never through a shell), stdin
//! closed, progress read from its stdout, the tail of its stderr kept for
//! the log, a deadline, and the process killed if the run is dropped.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, BufReader};
use tokio::process::Command;

use super::{ExportError, FfmpegPlan, ProgressParser};

/// How much of ffmpeg's stderr is kept (its last bytes) for the log.
const STDERR_TAIL_BYTES: usize = 4096;

/// `ffmpeg -version`'s first line, or `None` when ffmpeg cannot be run.
pub async fn ffmpeg_version(ffmpeg: &Path) -> Option<String> {
    let out = Command::new(ffmpeg)
        .arg("-version")
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(10), out)
        .await
        .ok()?
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout);
    Some(text.lines().next().unwrap_or("ffmpeg").to_string())
}

/// Runs `plan`, calling `on_progress` with 0..1 as ffmpeg reports it.
/// Fails with [`ExportError::FfmpegMissing`] when the program is not
/// there, [`ExportError::TimedOut`] after `deadline` (ffmpeg is killed),
/// and [`ExportError::Ffmpeg`] when it exits unsuccessfully (its stderr
/// goes to the log, not into the error).
pub async fn run_ffmpeg(
    ffmpeg: &Path,
    plan: &FfmpegPlan,
    deadline: Duration,
    mut on_progress: impl FnMut(f64),
) -> Result<(), ExportError> {
    let mut child = Command::new(ffmpeg)
        .args(&plan.args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound | std::io::ErrorKind::PermissionDenied => {
                ExportError::FfmpegMissing
            }
            _ => ExportError::Io(e),
        })?;
    let stdout = child.stdout.take();
    let stderr = tokio::spawn(tail(child.stderr.take()));
    let parser = ProgressParser::new(plan.duration_ms);
    let work = async {
        if let Some(stdout) = stdout {
            let mut lines = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(p) = parser.line(&line) {
                    on_progress(p);
                }
            }
        }
        child.wait().await
    };
    let status = match tokio::time::timeout(deadline, work).await {
        Ok(status) => status?,
        Err(_) => {
            let _ = child.start_kill();
            let _ = child.wait().await;
            return Err(ExportError::TimedOut(deadline));
        }
    };
    let stderr = stderr.await.unwrap_or_default();
    if status.success() {
        return Ok(());
    }
    tracing::warn!(%status, stderr = %stderr.trim(), "ffmpeg failed");
    Err(ExportError::Ffmpeg(status.to_string()))
}

/// The last [`STDERR_TAIL_BYTES`] of a stream, read to its end.
async fn tail(stream: Option<impl AsyncRead + Unpin>) -> String {
    let Some(mut stream) = stream else {
        return String::new();
    };
    let mut kept: Vec<u8> = Vec::new();
    let mut buf = [0u8; 1024];
    while let Ok(n) = stream.read(&mut buf).await {
        if n == 0 {
            break;
        }
        kept.extend_from_slice(&buf[..n]);
        if kept.len() > STDERR_TAIL_BYTES {
            kept.drain(..kept.len() - STDERR_TAIL_BYTES);
        }
    }
    String::from_utf8_lossy(&kept).into_owned()
}

#[cfg(test)]
mod tests {
    //! With Debian's ffmpeg, as the server runs it.
    use super::*;
    use std::ffi::OsString;

    fn plan(args: &[&str], duration_ms: u64) -> FfmpegPlan {
        FfmpegPlan {
            args: args.iter().map(OsString::from).collect(),
            duration_ms,
        }
    }

    /// Two seconds of generated video encoded to nothing.
    const TWO_SECONDS: [&str; 12] = [
        "-nostdin",
        "-progress",
        "pipe:1",
        "-f",
        "lavfi",
        "-i",
        "testsrc=rate=15",
        "-t",
        "2",
        "-f",
        "null",
        "-",
    ];

    #[tokio::test]
    async fn progress_is_reported_up_to_the_end() {
        let ffmpeg = Path::new("ffmpeg");
        assert!(
            ffmpeg_version(ffmpeg).await.is_some(),
            "apt-get install ffmpeg"
        );
        let mut seen = Vec::new();
        run_ffmpeg(
            ffmpeg,
            &plan(&TWO_SECONDS, 2000),
            Duration::from_secs(120),
            |p| seen.push(p),
        )
        .await
        .expect("ffmpeg runs");
        assert_eq!(seen.last(), Some(&1.0), "{seen:?}");
        assert!(seen.iter().all(|p| (0.0..=1.0).contains(p)));
    }

    #[tokio::test]
    async fn failures_say_what_happened() {
        let missing = Path::new("/nonexistent/ffmpeg");
        assert_eq!(ffmpeg_version(missing).await, None);
        let err = run_ffmpeg(
            missing,
            &plan(&TWO_SECONDS, 2000),
            Duration::from_secs(5),
            |_| {},
        )
        .await
        .unwrap_err();
        assert!(err.to_string().contains("Debian package `ffmpeg`"), "{err}");

        let bad = plan(
            &[
                "-nostdin",
                "-i",
                "/nonexistent/input.webm",
                "-f",
                "null",
                "-",
            ],
            1000,
        );
        let err = run_ffmpeg(Path::new("ffmpeg"), &bad, Duration::from_secs(120), |_| {})
            .await
            .unwrap_err();
        assert!(matches!(err, ExportError::Ffmpeg(_)), "{err}");
        assert!(
            !err.to_string().contains("/nonexistent"),
            "no paths for users: {err}"
        );

        // Far more work than the deadline allows: stopped, not waited for.
        let endless = plan(
            &[
                "-nostdin",
                "-f",
                "lavfi",
                "-i",
                "testsrc=rate=15",
                "-f",
                "null",
                "-",
            ],
            1000,
        );
        let err = run_ffmpeg(
            Path::new("ffmpeg"),
            &endless,
            Duration::from_millis(300),
            |_| {},
        )
        .await
        .unwrap_err();
        assert!(matches!(err, ExportError::TimedOut(_)), "{err}");
    }
}
