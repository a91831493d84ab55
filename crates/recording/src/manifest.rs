//! The recording's manifest: one JSON file next to the track files that says
//! whose each track is and where it starts, so that a player or an editor
//! can line the tracks up.

use serde::{Deserialize, Serialize};

use crate::depack::{Codec, Kind};
use crate::error::Result;

/// Version of the manifest format written by this crate.
pub const MANIFEST_VERSION: u32 = 1;

/// A whole recording (one room session).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub version: u32,
    pub recording_id: String,
    pub room_id: String,
    pub session_id: String,
    /// Wall-clock start (Unix milliseconds): the zero of every track's
    /// `start_offset_ms`.
    pub started_at_unix_ms: u64,
    pub tracks: Vec<ManifestTrack>,
}

/// One recorded track (one producer).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestTrack {
    /// File name, relative to the manifest.
    pub file: String,
    /// The peer (connection) and user who produced the track.
    pub peer_id: String,
    pub user_id: String,
    pub kind: Kind,
    pub codec: Codec,
    /// What the producer said it is (`"camera"`, `"mic"`, `"screen"`, …), as
    /// the client named it in the producer's app data.
    pub source: String,
    /// When the track's first frame came, after `started_at_unix_ms`.
    pub start_offset_ms: u64,
    pub duration_ms: u64,
    pub bytes: u64,
}

impl Manifest {
    pub fn new(
        recording_id: String,
        room_id: String,
        session_id: String,
        started_at_unix_ms: u64,
    ) -> Self {
        Manifest {
            version: MANIFEST_VERSION,
            recording_id,
            room_id,
            session_id,
            started_at_unix_ms,
            tracks: Vec::new(),
        }
    }

    /// Pretty JSON, for people as much as for programs.
    pub fn to_json(&self) -> Result<String> {
        Ok(serde_json::to_string_pretty(self)?)
    }

    pub fn from_json(json: &str) -> Result<Self> {
        Ok(serde_json::from_str(json)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_round_trip_with_stable_names() {
        let mut manifest = Manifest::new(
            "rec-1".into(),
            "room-1".into(),
            "session-1".into(),
            1_700_000_000_000,
        );
        manifest.tracks.push(ManifestTrack {
            file: "peer-a-camera.webm".into(),
            peer_id: "peer-a".into(),
            user_id: "user-a".into(),
            kind: Kind::Video,
            codec: Codec::Vp8,
            source: "camera".into(),
            start_offset_ms: 120,
            duration_ms: 5000,
            bytes: 70_000,
        });
        let json = manifest.to_json().unwrap();
        assert!(json.contains("\"kind\": \"video\""), "{json}");
        assert!(json.contains("\"codec\": \"vp8\""), "{json}");
        assert!(json.contains("\"start_offset_ms\": 120"), "{json}");
        assert_eq!(Manifest::from_json(&json).unwrap(), manifest);
        assert!(Manifest::from_json("{\"version\": 1}").is_err());
    }
}
