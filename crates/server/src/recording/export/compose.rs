//! What ffmpeg is asked to do: the argument list that composes a recording's
//! tracks into one MP4 (H.264 + AAC, or AAC alone), and the reading of its
//! `-progress` output. Pure: no files are opened and nothing is run here,
//! so every choice is unit-tested without ffmpeg.
//!
//! Alignment: every track is shifted by its manifest `start_offset_ms`
//! (video with `setpts`, audio with `adelay`) onto a black canvas and a
//! silent bed as long as the whole recording, so a track that starts late
//! shows black (or silence) until it starts and after it ends.
//!
//! Layouts:
//! - `grid`: every video track (cameras and screen shares) in a grid of
//!   `ceil(sqrt(n))` columns on a 1280×720 canvas, each scaled to fit its
//!   cell (aspect kept, black bars).
//! - `speaker`: one video large (1280×540), the others in a strip of
//!   320×180 tiles below. The large one is the earliest screen share; with
//!   no screen share, the camera of the host (the user who started the
//!   recording, else the room's owner); else the first video track. It
//!   does not follow who speaks: the choice is made once for the file.
//! - `audio`: no video; the output is AAC in an MP4 (M4A) container.
//!
//! Audio of every audio track is mixed at its own level (no normalisation,
//! so a lone speaker is not made quieter by silent others).

use std::ffi::OsString;
use std::fmt::Write as _;
use std::path::Path;

use vtp_recording::{Kind, Manifest, ManifestTrack};
use vtp_store::ExportLayout;

use super::ExportError;

/// The canvas of video layouts.
pub const CANVAS_WIDTH: u32 = 1280;
pub const CANVAS_HEIGHT: u32 = 720;
/// Frames per second of the output (WebRTC cameras rarely send more to a
/// classroom; the recorder keeps what came).
pub const OUTPUT_FPS: u32 = 15;
/// Height of the speaker layout's strip.
const STRIP_HEIGHT: u32 = 180;
const STRIP_TILE_WIDTH: u32 = 320;
/// Inputs one export may compose: ffmpeg opens a decoder per input, so the
/// memory of an export grows with them.
pub const MAX_VIDEO_TRACKS: usize = 16;
pub const MAX_AUDIO_TRACKS: usize = 32;

/// What to compose and where to write it.
#[derive(Clone, Debug)]
pub struct ComposeRequest<'a> {
    pub manifest: &'a Manifest,
    /// Where the manifest's track files are.
    pub dir: &'a Path,
    pub layout: ExportLayout,
    /// The host whose camera the `speaker` layout shows large when nobody
    /// shares a screen.
    pub host_user_id: Option<&'a str>,
    /// The recording's duration from its row, used when the manifest's
    /// tracks say nothing (all durations zero).
    pub recording_duration_ms: u64,
    pub output: &'a Path,
    /// ffmpeg threads (decoders, filters, encoder each).
    pub threads: u32,
}

/// The ffmpeg invocation: arguments (never a shell string) and the length
/// of the output, against which progress is measured.
#[derive(Clone, Debug, PartialEq)]
pub struct FfmpegPlan {
    pub args: Vec<OsString>,
    pub duration_ms: u64,
}

/// A rectangle on the canvas.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Tile {
    x: u32,
    y: u32,
    width: u32,
    height: u32,
}

fn even(n: u32) -> u32 {
    (n & !1).max(2)
}

/// `n` cells in `ceil(sqrt(n))` columns over the whole canvas.
fn grid_tiles(n: usize) -> Vec<Tile> {
    if n == 0 {
        return Vec::new();
    }
    let cols = (1..=n).find(|c| c * c >= n).unwrap_or(n);
    let rows = n.div_ceil(cols);
    let width = even(CANVAS_WIDTH / cols as u32);
    let height = even(CANVAS_HEIGHT / rows as u32);
    (0..n)
        .map(|i| Tile {
            x: (i % cols) as u32 * width,
            y: (i / cols) as u32 * height,
            width,
            height,
        })
        .collect()
}

/// The large tile, then `others` tiles centred in the strip below.
fn speaker_tiles(others: usize) -> Vec<Tile> {
    if others == 0 {
        return grid_tiles(1);
    }
    let main_height = CANVAS_HEIGHT - STRIP_HEIGHT;
    let width = even(STRIP_TILE_WIDTH.min(CANVAS_WIDTH / others as u32));
    let left = (CANVAS_WIDTH - width * others as u32) / 2;
    let mut tiles = vec![Tile {
        x: 0,
        y: 0,
        width: CANVAS_WIDTH,
        height: main_height,
    }];
    tiles.extend((0..others).map(|i| Tile {
        x: left + i as u32 * width,
        y: main_height,
        width,
        height: STRIP_HEIGHT,
    }));
    tiles
}

/// The video tracks in the speaker layout's order: the large one first.
fn speaker_order<'m>(
    videos: &[&'m ManifestTrack],
    host_user_id: Option<&str>,
) -> Vec<&'m ManifestTrack> {
    let screen = videos
        .iter()
        .filter(|t| t.source == "screen")
        .min_by_key(|t| t.start_offset_ms);
    let host_camera = || {
        let host = host_user_id?;
        videos
            .iter()
            .filter(|t| t.user_id == host)
            .min_by_key(|t| (t.source != "camera", t.start_offset_ms))
    };
    let main = screen.or_else(host_camera).or(videos.first()).copied();
    let mut order: Vec<&ManifestTrack> = main.into_iter().collect();
    order.extend(
        videos
            .iter()
            .copied()
            .filter(|t| !main.is_some_and(|m| std::ptr::eq(*t, m))),
    );
    order
}

/// The whole recording's length: the latest end of any track.
fn total_duration_ms(manifest: &Manifest, fallback: u64) -> u64 {
    let end = manifest
        .tracks
        .iter()
        .map(|t| t.start_offset_ms.saturating_add(t.duration_ms))
        .max()
        .unwrap_or(0);
    if end > 0 { end } else { fallback }
}

fn seconds(ms: u64) -> String {
    format!("{}.{:03}", ms / 1000, ms % 1000)
}

/// The ffmpeg arguments for `request`.
pub fn plan(request: &ComposeRequest<'_>) -> Result<FfmpegPlan, ExportError> {
    let audio: Vec<&ManifestTrack> = request
        .manifest
        .tracks
        .iter()
        .filter(|t| t.kind == Kind::Audio)
        .collect();
    let mut video: Vec<&ManifestTrack> = match request.layout {
        ExportLayout::Audio => Vec::new(),
        _ => request
            .manifest
            .tracks
            .iter()
            .filter(|t| t.kind == Kind::Video)
            .collect(),
    };
    if request.layout == ExportLayout::Audio && audio.is_empty() {
        return Err(ExportError::NothingToExport(
            "the recording has no audio track".into(),
        ));
    }
    if video.len() > MAX_VIDEO_TRACKS {
        return Err(ExportError::TooManyTracks {
            kind: "video",
            count: video.len(),
            max: MAX_VIDEO_TRACKS,
        });
    }
    if audio.len() > MAX_AUDIO_TRACKS {
        return Err(ExportError::TooManyTracks {
            kind: "audio",
            count: audio.len(),
            max: MAX_AUDIO_TRACKS,
        });
    }
    let duration_ms = total_duration_ms(request.manifest, request.recording_duration_ms);
    if duration_ms == 0 {
        return Err(ExportError::NothingToExport(
            "the recording has no recorded media".into(),
        ));
    }
    let tiles = match request.layout {
        ExportLayout::Grid => grid_tiles(video.len()),
        ExportLayout::Speaker => {
            video = speaker_order(&video, request.host_user_id);
            speaker_tiles(video.len().saturating_sub(1))
        }
        ExportLayout::Audio => Vec::new(),
    };
    let threads = request.threads.max(1).to_string();
    let total = seconds(duration_ms);

    let mut args: Vec<OsString> = [
        "-hide_banner",
        "-nostdin",
        "-nostats",
        "-loglevel",
        "error",
        "-progress",
        "pipe:1",
        "-y",
        "-filter_complex_threads",
        &threads,
    ]
    .iter()
    .map(OsString::from)
    .collect();
    // Inputs: videos first (input i is video[i]), then audios.
    for track in video.iter().chain(audio.iter()) {
        args.extend(["-threads", &threads, "-i"].map(OsString::from));
        args.push(request.dir.join(&track.file).into_os_string());
    }

    let mut graph = String::new();
    let video_out = if video.is_empty() {
        None
    } else {
        let _ = write!(
            graph,
            "color=c=black:s={CANVAS_WIDTH}x{CANVAS_HEIGHT}:r={OUTPUT_FPS}:d={total}[base];"
        );
        let mut below = "base".to_string();
        for (i, (track, tile)) in video.iter().zip(&tiles).enumerate() {
            let Tile {
                x,
                y,
                width: w,
                height: h,
            } = *tile;
            let _ = write!(
                graph,
                "[{i}:v]setpts=PTS-STARTPTS+{offset}/TB,\
                 scale={w}:{h}:force_original_aspect_ratio=decrease,\
                 pad={w}:{h}:(ow-iw)/2:(oh-ih)/2:color=black,setsar=1[v{i}];\
                 [{below}][v{i}]overlay=x={x}:y={y}:eof_action=pass[o{i}];",
                offset = seconds(track.start_offset_ms),
            );
            below = format!("o{i}");
        }
        let _ = write!(graph, "[{below}]format=yuv420p[vout];");
        Some("[vout]")
    };
    // A silent bed as long as the recording: the mix lasts exactly that
    // long, and a recording without audio still gets an AAC track.
    let _ = write!(
        graph,
        "anullsrc=r=48000:cl=stereo,atrim=duration={total}[abed];"
    );
    for (j, track) in audio.iter().enumerate() {
        let input = video.len() + j;
        let _ = write!(
            graph,
            "[{input}:a]aresample=48000,aformat=sample_rates=48000:channel_layouts=stereo,\
             asetpts=PTS-STARTPTS,adelay={}:all=1[a{j}];",
            track.start_offset_ms
        );
    }
    graph.push_str("[abed]");
    for j in 0..audio.len() {
        let _ = write!(graph, "[a{j}]");
    }
    let _ = write!(
        graph,
        "amix=inputs={}:duration=first:dropout_transition=0:normalize=0[aout]",
        audio.len() + 1
    );

    args.extend(["-filter_complex", &graph].map(OsString::from));
    if let Some(label) = video_out {
        args.extend(
            [
                "-map", label, "-c:v", "libx264", "-preset", "veryfast", "-crf", "23", "-pix_fmt",
                "yuv420p",
            ]
            .map(OsString::from),
        );
    } else {
        args.push("-vn".into());
    }
    args.extend(
        [
            "-map",
            "[aout]",
            "-c:a",
            "aac",
            "-b:a",
            "128k",
            "-threads",
            &threads,
            "-t",
            &total,
            "-movflags",
            "+faststart",
            "-f",
            "mp4",
        ]
        .map(OsString::from),
    );
    args.push(request.output.as_os_str().to_owned());
    Ok(FfmpegPlan { args, duration_ms })
}

/// Reads ffmpeg's `-progress` output (`key=value` lines) into a fraction
/// of the known duration.
#[derive(Clone, Debug)]
pub struct ProgressParser {
    total_us: u64,
}

impl ProgressParser {
    pub fn new(duration_ms: u64) -> Self {
        ProgressParser {
            total_us: duration_ms.saturating_mul(1000).max(1),
        }
    }

    /// The progress (0..1) a line reports, if it reports one:
    /// `out_time_us=…` (`out_time_ms` is microseconds too, despite its
    /// name) gives the position; `progress=end` is 1. Anything else,
    /// including `N/A` and garbage, is ignored.
    pub fn line(&self, line: &str) -> Option<f64> {
        let (key, value) = line.trim().split_once('=')?;
        match key {
            "out_time_us" | "out_time_ms" => {
                let us: i64 = value.trim().parse().ok()?;
                let us = u64::try_from(us).unwrap_or(0);
                Some((us as f64 / self.total_us as f64).clamp(0.0, 1.0))
            }
            "progress" if value.trim() == "end" => Some(1.0),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;
    use vtp_recording::Codec;

    fn track(file: &str, user: &str, kind: Kind, source: &str, start: u64) -> ManifestTrack {
        ManifestTrack {
            file: file.into(),
            peer_id: format!("peer-{user}"),
            user_id: user.into(),
            kind,
            codec: if kind == Kind::Audio {
                Codec::Opus
            } else {
                Codec::Vp8
            },
            source: source.into(),
            start_offset_ms: start,
            duration_ms: 5000,
            bytes: 1000,
        }
    }

    fn manifest(tracks: Vec<ManifestTrack>) -> Manifest {
        let mut m = Manifest::new("rec".into(), "room".into(), "session".into(), 0);
        m.tracks = tracks;
        m
    }

    fn two_peers() -> Manifest {
        manifest(vec![
            track("01-camera-a.webm", "ann", Kind::Video, "camera", 0),
            track("02-mic-a.webm", "ann", Kind::Audio, "mic", 0),
            track("03-camera-b.webm", "bob", Kind::Video, "camera", 1500),
            track("04-mic-b.webm", "bob", Kind::Audio, "mic", 1500),
        ])
    }

    fn plan_for(m: &Manifest, layout: ExportLayout, host: Option<&str>) -> FfmpegPlan {
        let dir = PathBuf::from("/data/recordings/rec");
        let out = PathBuf::from("/data/exports/out.mp4");
        plan(&ComposeRequest {
            manifest: m,
            dir: &dir,
            layout,
            host_user_id: host,
            recording_duration_ms: 0,
            output: &out,
            threads: 2,
        })
        .expect("a plan")
    }

    fn strings(p: &FfmpegPlan) -> Vec<String> {
        p.args
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    }

    fn after<'a>(args: &'a [String], flag: &str) -> Vec<&'a str> {
        args.windows(2)
            .filter(|w| w[0] == flag)
            .map(|w| w[1].as_str())
            .collect()
    }

    #[test]
    fn grid_tiles_every_video_and_mixes_every_audio_aligned_by_offsets() {
        let p = plan_for(&two_peers(), ExportLayout::Grid, None);
        let args = strings(&p);
        assert_eq!(p.duration_ms, 6500, "the latest end of any track");
        assert_eq!(
            after(&args, "-i"),
            [
                "/data/recordings/rec/01-camera-a.webm",
                "/data/recordings/rec/03-camera-b.webm",
                "/data/recordings/rec/02-mic-a.webm",
                "/data/recordings/rec/04-mic-b.webm",
            ]
        );
        let graph = after(&args, "-filter_complex")[0];
        // Two side by side, the second delayed by 1.5 s.
        assert!(
            graph.contains("[0:v]setpts=PTS-STARTPTS+0.000/TB,scale=640:720"),
            "{graph}"
        );
        assert!(
            graph.contains("[1:v]setpts=PTS-STARTPTS+1.500/TB"),
            "{graph}"
        );
        assert!(graph.contains("overlay=x=640:y=0"), "{graph}");
        assert!(
            graph.contains("[3:a]") && graph.contains("adelay=1500:all=1"),
            "{graph}"
        );
        assert!(graph.contains("amix=inputs=3:duration=first"), "{graph}");
        assert!(graph.contains(":d=6.500[base]"), "{graph}");
        assert_eq!(after(&args, "-c:v"), ["libx264"]);
        assert_eq!(after(&args, "-c:a"), ["aac"]);
        assert_eq!(after(&args, "-t"), ["6.500"]);
        assert_eq!(after(&args, "-map"), ["[vout]", "[aout]"]);
        assert_eq!(args.last().unwrap(), "/data/exports/out.mp4");
        assert_eq!(after(&args, "-progress"), ["pipe:1"]);
    }

    #[test]
    fn audio_layout_has_no_video_and_needs_an_audio_track() {
        let p = plan_for(&two_peers(), ExportLayout::Audio, None);
        let args = strings(&p);
        assert!(args.contains(&"-vn".to_string()));
        assert!(after(&args, "-c:v").is_empty());
        assert_eq!(
            after(&args, "-i").len(),
            2,
            "only the audio tracks are read"
        );
        assert!(!after(&args, "-filter_complex")[0].contains("overlay"));

        let silent = manifest(vec![track("v.webm", "ann", Kind::Video, "camera", 0)]);
        let dir = PathBuf::from("/d");
        let err = plan(&ComposeRequest {
            manifest: &silent,
            dir: &dir,
            layout: ExportLayout::Audio,
            host_user_id: None,
            recording_duration_ms: 5000,
            output: &dir,
            threads: 1,
        })
        .unwrap_err();
        assert!(err.to_string().contains("no audio track"), "{err}");
    }

    #[test]
    fn speaker_puts_the_screen_share_large_else_the_hosts_camera() {
        let mut m = two_peers();
        let p = plan_for(&m, ExportLayout::Speaker, Some("bob"));
        let inputs: Vec<String> = after(&strings(&p), "-i")
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert!(
            inputs[0].ends_with("03-camera-b.webm"),
            "the host's camera: {inputs:?}"
        );
        let graph = after(&strings(&p), "-filter_complex")[0].to_string();
        assert!(
            graph.contains("[0:v]setpts=PTS-STARTPTS+1.500/TB,scale=1280:540"),
            "{graph}"
        );
        assert!(graph.contains("scale=320:180"), "{graph}");

        m.tracks.push(track(
            "05-screen-a.webm",
            "ann",
            Kind::Video,
            "screen",
            2000,
        ));
        let p = plan_for(&m, ExportLayout::Speaker, Some("bob"));
        let inputs = after(&strings(&p), "-i")
            .iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>();
        assert!(
            inputs[0].ends_with("05-screen-a.webm"),
            "the screen share: {inputs:?}"
        );
        assert_eq!(inputs.len(), 5, "every track once");

        // No host known: the first video.
        let p = plan_for(&two_peers(), ExportLayout::Speaker, None);
        assert!(after(&strings(&p), "-i")[0].ends_with("01-camera-a.webm"));
    }

    #[test]
    fn grid_cells_fit_the_canvas() {
        for n in 1..=MAX_VIDEO_TRACKS {
            let tiles = grid_tiles(n);
            assert_eq!(tiles.len(), n);
            for t in &tiles {
                assert!(
                    t.x + t.width <= CANVAS_WIDTH && t.y + t.height <= CANVAS_HEIGHT,
                    "{n}: {t:?}"
                );
                assert!(t.width % 2 == 0 && t.height % 2 == 0);
            }
        }
        assert_eq!(
            grid_tiles(4)[3],
            Tile {
                x: 640,
                y: 360,
                width: 640,
                height: 360
            }
        );
        for k in 1..MAX_VIDEO_TRACKS {
            for t in speaker_tiles(k) {
                assert!(t.x + t.width <= CANVAS_WIDTH && t.y + t.height <= CANVAS_HEIGHT);
            }
        }
    }

    #[test]
    fn limits_and_empty_recordings_are_refused() {
        let many = manifest(
            (0..=MAX_VIDEO_TRACKS)
                .map(|i| track(&format!("{i}.webm"), "u", Kind::Video, "camera", 0))
                .collect(),
        );
        let dir = PathBuf::from("/d");
        let request = ComposeRequest {
            manifest: &many,
            dir: &dir,
            layout: ExportLayout::Grid,
            host_user_id: None,
            recording_duration_ms: 0,
            output: &dir,
            threads: 1,
        };
        assert!(matches!(
            plan(&request),
            Err(ExportError::TooManyTracks { .. })
        ));
        // The audio layout does not read the videos, so it is not limited by them.
        let many_with_mic = {
            let mut m = many.clone();
            m.tracks.push(track("mic.webm", "u", Kind::Audio, "mic", 0));
            m
        };
        assert!(
            plan(&ComposeRequest {
                manifest: &many_with_mic,
                layout: ExportLayout::Audio,
                ..request.clone()
            })
            .is_ok()
        );
        let empty = manifest(Vec::new());
        assert!(matches!(
            plan(&ComposeRequest {
                manifest: &empty,
                ..request
            }),
            Err(ExportError::NothingToExport(_))
        ));
    }

    #[test]
    fn progress_lines_become_fractions() {
        let p = ProgressParser::new(10_000);
        assert_eq!(p.line("out_time_us=2500000"), Some(0.25));
        assert_eq!(p.line("out_time_ms=5000000"), Some(0.5));
        assert_eq!(p.line("out_time_us=N/A"), None);
        assert_eq!(p.line("out_time_us=-40000"), Some(0.0));
        assert_eq!(p.line("out_time_us=99000000"), Some(1.0), "clamped");
        assert_eq!(p.line("progress=continue"), None);
        assert_eq!(p.line("progress=end"), Some(1.0));
        assert_eq!(p.line("frame=12"), None);
        assert_eq!(p.line("garbage"), None);
        assert_eq!(ProgressParser::new(0).line("out_time_us=5"), Some(1.0));
    }
}
