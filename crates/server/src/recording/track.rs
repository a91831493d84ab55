//! One recorded track: a thread that reads a tap's packets, runs a
//! `TrackRecorder` over them and writes its WebM/Matroska file.
//!
//! A thread and not a task: the recorder and the file are blocking and
//! sans-IO respectively, and a slow disk must never hold up the async
//! runtime or the SFU worker (the tap drops what the thread cannot take).
//! The file is flushed every second, so a crash loses at most that much.

use std::fs::File;
use std::io::BufWriter;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use vtp_recording::{Codec, RecorderConfig, RecorderEvent, RtpPacket, TrackRecorder};
use vtp_sfu::engine::TapPacket;

/// How often written frames are pushed to the file.
const FLUSH_EVERY: Duration = Duration::from_secs(1);
/// The longest the thread sleeps without looking at its stop flag.
const TICK: Duration = Duration::from_millis(100);

/// What a track thread needs.
pub struct TrackJob {
    pub path: PathBuf,
    pub codec: Codec,
    /// The router payload types of `codec` (packets of others are skipped).
    pub payload_types: Vec<u8>,
    pub epoch: Instant,
    pub max_duration: Option<Duration>,
    pub max_bytes: Option<u64>,
    pub packets: Receiver<TapPacket>,
    /// Called when the recorder wants a keyframe (sends a PLI upstream).
    pub keyframe: Box<dyn Fn() + Send>,
}

/// How a track ended.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrackOutcome {
    /// When its first frame came, after the recording's start.
    pub start_offset: Option<Duration>,
    pub duration: Duration,
    pub bytes: u64,
    pub frames: u64,
    /// Why it failed, if it did (nothing playable, disk error).
    pub error: Option<String>,
}

/// A running track thread.
pub struct TrackThread {
    stop: Arc<AtomicBool>,
    join: Option<JoinHandle<TrackOutcome>>,
}

impl TrackThread {
    /// Creates the file and starts the thread.
    pub fn start(job: TrackJob) -> std::io::Result<TrackThread> {
        let file = File::create(&job.path)?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let join = std::thread::Builder::new()
            .name("vtp-recorder".into())
            .spawn(move || run(job, BufWriter::new(file), &flag))?;
        Ok(TrackThread {
            stop,
            join: Some(join),
        })
    }

    /// Asks the thread to finish the file (it also ends when its tap does).
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Release);
    }

    /// Waits for the thread (blocking: call from a blocking context).
    pub fn join(mut self) -> TrackOutcome {
        match self.join.take().map(JoinHandle::join) {
            Some(Ok(outcome)) => outcome,
            _ => TrackOutcome {
                error: Some("the recorder thread panicked".into()),
                ..TrackOutcome::default()
            },
        }
    }
}

fn run(job: TrackJob, sink: BufWriter<File>, stop: &AtomicBool) -> TrackOutcome {
    let config = RecorderConfig {
        max_duration: job.max_duration,
        max_bytes: job.max_bytes,
        ..RecorderConfig::new(job.codec, job.epoch)
    };
    let mut recorder = TrackRecorder::new(config, sink);
    let mut start_offset = None;
    let mut last_flush = Instant::now();
    let mut error = None;
    while !stop.load(Ordering::Acquire) {
        let now = Instant::now();
        let wait = recorder
            .poll_timeout()
            .map_or(TICK, |at| at.saturating_duration_since(now).min(TICK));
        let step = match job.packets.recv_timeout(wait) {
            Ok(packet) => {
                if !job.payload_types.contains(&packet.payload_type) {
                    continue;
                }
                recorder.push_rtp(
                    RtpPacket {
                        // The recorder unwraps 16-bit numbers itself.
                        sequence_number: packet.sequence_number as u16,
                        timestamp: packet.timestamp,
                        marker: packet.marker,
                        payload: packet.payload,
                    },
                    Instant::now(),
                )
            }
            Err(RecvTimeoutError::Timeout) => recorder.handle_timeout(Instant::now()),
            Err(RecvTimeoutError::Disconnected) => break,
        };
        if let Err(e) = step {
            error = Some(format!("writing {}: {e}", job.path.display()));
            break;
        }
        let mut limit = false;
        while let Some(event) = recorder.poll_event() {
            match event {
                RecorderEvent::KeyframeRequest => (job.keyframe)(),
                RecorderEvent::Started { offset } => start_offset = Some(offset),
                RecorderEvent::LimitReached(which) => {
                    tracing::info!(file = %job.path.display(), ?which, "recording limit reached");
                    limit = true;
                }
                RecorderEvent::Lost { .. } => {}
            }
        }
        if limit {
            break;
        }
        if last_flush.elapsed() >= FLUSH_EVERY {
            last_flush = Instant::now();
            if let Err(e) = recorder.flush() {
                error = Some(format!("writing {}: {e}", job.path.display()));
                break;
            }
        }
    }
    let (duration, frames) = (recorder.duration(), recorder.stats().frames_written);
    if let Some(e) = error {
        // A partial block may end the file: leave it for repair.
        return TrackOutcome {
            start_offset,
            duration,
            frames,
            bytes: file_len(&job.path),
            error: Some(e),
        };
    }
    let finished = match recorder.finish() {
        Ok(finished) => finished,
        Err(e) => {
            return TrackOutcome {
                start_offset,
                duration,
                frames,
                bytes: file_len(&job.path),
                error: Some(format!("finishing {}: {e}", job.path.display())),
            };
        }
    };
    let empty = finished.is_empty();
    let result = finished.finalize().and_then(|mut sink| {
        use std::io::Write as _;
        sink.flush()?;
        Ok(())
    });
    TrackOutcome {
        start_offset,
        duration,
        frames,
        bytes: file_len(&job.path),
        error: match (result, empty) {
            (Err(e), _) => Some(format!("finalizing {}: {e}", job.path.display())),
            (Ok(()), true) => Some("no frame was recorded (no keyframe came)".into()),
            (Ok(()), false) => None,
        },
    }
}

fn file_len(path: &std::path::Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}
