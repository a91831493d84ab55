//! What makes a finished file pleasant to seek in: Cues, a SeekHead, the
//! Duration, and the Cluster and Segment sizes. Written by
//! [`crate::WebmWriter::finalize`] at the end of a recording, and by
//! [`crate::repair_file`] for a file a crash left unfinished, from the same
//! [`Layout`].
//!
//! The order of the writes keeps the file playable throughout: Cues are
//! appended first, then the patches in place go into room that was kept
//! for them, the Segment size last. A crash in between leaves a file that
//! repair re-indexes again.

use std::io::{Seek, SeekFrom, Write};

use crate::ebml::{self, id};
use crate::error::Result;

/// Room reserved at the start of the Segment for the SeekHead (three Seek
/// entries with 8-byte positions take 68 bytes).
pub const SEEK_HEAD_ROOM: u64 = 96;
/// A Duration element: 2-byte ID, 1-byte size, 8-byte float.
pub const DURATION_ROOM: u64 = 11;
/// Cluster ID and 8-byte size.
pub const CLUSTER_HEADER: u64 = 12;

/// One Cluster of the file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cluster {
    /// Offset of the Cluster element from the start of the file.
    pub offset: u64,
    pub timecode: u64,
    /// Its size field is 8 bytes (as this crate writes it) and may be
    /// patched to the Cluster's real size.
    pub sizable: bool,
}

/// Where things are in a file, as its writer knows or a scan found them;
/// offsets from the start of the file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Layout {
    /// The Segment's payload; its 8-byte size field is just before.
    pub segment_data: u64,
    /// The room kept for the SeekHead, if there is one.
    pub seek_head_room: Option<u64>,
    pub info_at: Option<u64>,
    pub tracks_at: Option<u64>,
    /// The room kept for (or holding) the Duration, if there is one.
    pub duration_room: Option<u64>,
    pub clusters: Vec<Cluster>,
    /// End of the last Cluster, where the Cues go.
    pub end_of_clusters: u64,
    pub duration_ms: u64,
}

/// Writes the index into `out`, whose offset `base` is the file's first
/// byte and whose content ends at `layout.end_of_clusters`. Leaves `out`
/// positioned at the new end, and returns that end.
pub fn write_index<W: Write + Seek>(out: &mut W, base: u64, layout: &Layout) -> Result<u64> {
    let seg = layout.segment_data;
    let mut cues = Vec::new();
    for cluster in &layout.clusters {
        let mut position = Vec::new();
        ebml::uint(&mut position, id::CUE_TRACK, 1);
        ebml::uint(
            &mut position,
            id::CUE_CLUSTER_POSITION,
            cluster.offset - seg,
        );
        let mut point = Vec::new();
        ebml::uint(&mut point, id::CUE_TIME, cluster.timecode);
        ebml::master(&mut point, id::CUE_TRACK_POSITIONS, &position);
        ebml::master(&mut cues, id::CUE_POINT, &point);
    }
    let cues_at = layout.end_of_clusters;
    let mut end = cues_at;
    out.seek(SeekFrom::Start(base + cues_at))?;
    if !cues.is_empty() {
        let mut element = Vec::with_capacity(cues.len() + 12);
        ebml::master(&mut element, id::CUES, &cues);
        out.write_all(&element)?;
        end += element.len() as u64;
    }
    out.flush()?;

    let mut patch = |at: u64, bytes: &[u8]| -> Result<()> {
        out.seek(SeekFrom::Start(base + at))?;
        out.write_all(bytes)?;
        Ok(())
    };
    for (i, cluster) in layout.clusters.iter().enumerate() {
        let next = layout.clusters.get(i + 1).map_or(cues_at, |c| c.offset);
        if cluster.sizable {
            let mut size = Vec::new();
            ebml::write_size_len(&mut size, next - cluster.offset - CLUSTER_HEADER, 8);
            patch(cluster.offset + 4, &size)?;
        }
    }
    if let Some(room) = layout.seek_head_room {
        let mut targets = Vec::new();
        targets.extend(layout.info_at.map(|at| (id::INFO, at)));
        targets.extend(layout.tracks_at.map(|at| (id::TRACKS, at)));
        if !cues.is_empty() {
            targets.push((id::CUES, cues_at));
        }
        let mut entries = Vec::new();
        for (target, at) in targets {
            let mut seek = Vec::new();
            let mut target_id = Vec::new();
            ebml::write_id(&mut target_id, target);
            ebml::bytes(&mut seek, id::SEEK_ID, &target_id);
            ebml::uint_fixed(&mut seek, id::SEEK_POSITION, at - seg);
            ebml::master(&mut entries, id::SEEK, &seek);
        }
        let mut seek_head = Vec::new();
        ebml::master(&mut seek_head, id::SEEK_HEAD, &entries);
        let left = (SEEK_HEAD_ROOM as usize).saturating_sub(seek_head.len());
        ebml::void(&mut seek_head, left);
        patch(room, &seek_head)?;
    }
    if let Some(room) = layout.duration_room {
        let mut duration = Vec::new();
        ebml::float(&mut duration, id::DURATION, layout.duration_ms as f64);
        patch(room, &duration)?;
    }
    let mut size = Vec::new();
    ebml::write_size_len(&mut size, end - seg, 8);
    patch(seg - 8, &size)?;

    out.seek(SeekFrom::Start(base + end))?;
    out.flush()?;
    Ok(end)
}
