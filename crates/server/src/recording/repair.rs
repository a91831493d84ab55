//! Start-up repair of recordings a crash left in `recording` or
//! `finalizing`: every track file the manifest names is cut after its last
//! whole frame and re-indexed, the manifest gets the durations and sizes
//! found, and the recording is `ready` if any track plays, else `failed`.

use std::path::Path;

use vtp_recording::Manifest;

use super::{MANIFEST_FILE, write_manifest};

/// What repairing one recording directory found.
#[derive(Clone, Debug)]
pub struct Repaired {
    pub manifest: Option<Manifest>,
    pub bytes: u64,
    pub duration_ms: u64,
    /// At least one track plays.
    pub playable: bool,
    /// Why not, when nothing plays.
    pub error: Option<String>,
}

/// Repairs the recording in `dir` (blocking file work: run it on a
/// blocking thread).
pub fn repair_recording(dir: &Path) -> Repaired {
    let manifest = std::fs::read_to_string(dir.join(MANIFEST_FILE))
        .ok()
        .and_then(|json| Manifest::from_json(&json).ok());
    let Some(mut manifest) = manifest else {
        return Repaired {
            manifest: None,
            bytes: 0,
            duration_ms: 0,
            playable: false,
            error: Some("no readable manifest: nothing can be recovered".into()),
        };
    };
    let mut playable = false;
    let mut error = None;
    for track in &mut manifest.tracks {
        let path = dir.join(&track.file);
        match vtp_recording::repair_file(&path) {
            Ok(report) => {
                track.duration_ms = report.duration_ms;
                track.bytes = report.valid_len;
                playable |= report.playable;
                if !report.playable {
                    tracing::warn!(file = %path.display(), "recorded track has nothing playable");
                }
            }
            Err(e) => {
                tracing::warn!(file = %path.display(), error = %e, "recorded track cannot be repaired");
                track.bytes = 0;
                track.duration_ms = 0;
                error.get_or_insert_with(|| format!("{}: {e}", track.file));
            }
        }
    }
    if let Err(e) = write_manifest(dir, &manifest) {
        error.get_or_insert_with(|| format!("manifest: {e}"));
    }
    let duration_ms = manifest
        .tracks
        .iter()
        .map(|t| t.start_offset_ms.saturating_add(t.duration_ms))
        .max()
        .unwrap_or(0);
    Repaired {
        bytes: manifest.tracks.iter().map(|t| t.bytes).sum(),
        duration_ms,
        manifest: Some(manifest),
        playable,
        error: if playable {
            None
        } else {
            Some(error.unwrap_or_else(|| "no track has a playable frame".into()))
        },
    }
}
