//! Repair of a recording cut short (the process was killed, the disk
//! filled): find the end of the last whole block, cut the partial tail,
//! re-index what is left as finalize would have (Cues, SeekHead, Duration,
//! sizes), and say whether anything playable is left.
//!
//! The reader walks the element tree with `Read + Seek`, reading headers and
//! the first bytes of each block only, so a file of any size is repaired in
//! little memory. It understands the files [`crate::WebmWriter`] writes
//! (unknown-size Segment and Clusters, SimpleBlocks) and also finalized ones.

use std::fs::OpenOptions;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

use crate::ebml::{self, id};
use crate::error::{Error, Result};
use crate::index::{CLUSTER_HEADER, Cluster, DURATION_ROOM, Layout, SEEK_HEAD_ROOM, write_index};

/// What [`scan`] found, and [`repair_file`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RepairReport {
    /// Length of the file as found.
    pub original_len: u64,
    /// Length up to the end of the last whole element: the file is cut here.
    pub valid_len: u64,
    /// Whole blocks (frames) kept.
    pub blocks: u64,
    /// Timestamp of the last whole block, in milliseconds.
    pub duration_ms: u64,
    /// Whether the Segment had its size patched, i.e. was finalized.
    pub finalized: bool,
    /// Track header and at least one block: the recording is usable
    /// (`ready`), otherwise it is `failed`.
    pub playable: bool,
    /// Whether [`repair_file`] wrote Cues, SeekHead, Duration and sizes.
    pub reindexed: bool,
}

/// What a scan found besides the report.
struct Found {
    layout: Layout,
    /// Offset and length of the Segment's size field.
    segment_size_field: (u64, usize),
}

impl RepairReport {
    /// Whether [`repair_file`] had to (or would have to) cut the file.
    pub fn truncated(&self) -> bool {
        self.valid_len < self.original_len
    }
}

/// Reads up to `buf.len()` bytes at `at`, fewer at the end of the input.
fn read_at<R: Read + Seek>(r: &mut R, at: u64, buf: &mut [u8]) -> Result<usize> {
    r.seek(SeekFrom::Start(at))?;
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(filled)
}

/// An element header at `at`: `(id, size, header length)`; `None` if cut.
fn header_at<R: Read + Seek>(r: &mut R, at: u64) -> Result<Option<(u32, Option<u64>, u64)>> {
    let mut buf = [0u8; 12];
    let n = read_at(r, at, &mut buf)?;
    Ok(ebml::read_header(&buf[..n]).map(|(id, size, len)| (id, size, len as u64)))
}

/// Elements that may follow a Cluster at the Segment's level; seeing one
/// ends an unknown-size Cluster.
fn is_top_level(element: u32) -> bool {
    matches!(
        element,
        id::CLUSTER
            | id::CUES
            | id::TAGS
            | id::CHAPTERS
            | id::ATTACHMENTS
            | id::SEEK_HEAD
            | id::INFO
            | id::TRACKS
    )
}

/// Finds how much of a recording is whole, without changing it.
pub fn scan<R: Read + Seek>(r: &mut R) -> Result<RepairReport> {
    Ok(scan_found(r)?.0)
}

fn scan_found<R: Read + Seek>(r: &mut R) -> Result<(RepairReport, Found)> {
    let len = r.seek(SeekFrom::End(0))?;
    let mut report = RepairReport {
        original_len: len,
        ..RepairReport::default()
    };
    let mut found = Found {
        layout: Layout::default(),
        segment_size_field: (0, 0),
    };
    // A file cut inside its first headers (or empty: the track never got a
    // keyframe) is simply not playable; only bytes that are not EBML at all
    // are an error.
    let mut magic = [0u8; 4];
    let n = read_at(r, 0, &mut magic)?;
    if magic[..n] != ebml::EBML_MAGIC[..n] {
        return Err(Error::Corrupt("not an EBML file"));
    }
    match header_at(r, 0)? {
        Some((id::EBML, Some(size), header)) if header + size <= len => {
            report.valid_len = header + size
        }
        Some((id::EBML, Some(_), _)) | None => return Ok((report, found)),
        _ => return Err(Error::Corrupt("no EBML header")),
    }
    let (segment_size, header) = match header_at(r, report.valid_len)? {
        Some((id::SEGMENT, size, header)) => (size, header),
        None => return Ok((report, found)),
        _ => return Err(Error::Corrupt("no Segment")),
    };
    let segment_data = report.valid_len + header;
    found.segment_size_field = (report.valid_len + 4, header as usize - 4);
    report.finalized = segment_size.is_some();
    let segment_end = segment_size.map_or(len, |size| (segment_data + size).min(len));
    report.valid_len = segment_data;
    let layout = &mut found.layout;
    layout.segment_data = segment_data;
    // Only SeekHead and Void before Info: that room can hold a new SeekHead.
    let mut room_before_info = true;

    let mut at = segment_data;
    'segment: while at < segment_end {
        let Some((element, size, header)) = header_at(r, at)? else {
            break;
        };
        if element == id::CLUSTER {
            let data = at + header;
            let end = size.map_or(segment_end, |size| (data + size).min(segment_end));
            let mut timecode = 0;
            let mut child = data;
            while child < end {
                let Some((child_id, child_size, child_header)) = header_at(r, child)? else {
                    break 'segment;
                };
                if size.is_none() && is_top_level(child_id) {
                    at = child;
                    continue 'segment;
                }
                // Every child of a Cluster has a known size.
                let Some(child_size) = child_size else {
                    break 'segment;
                };
                let child_end = child + child_header + child_size;
                if child_end > end {
                    break 'segment;
                }
                let mut buf = [0u8; 8];
                match child_id {
                    id::TIMECODE => {
                        let n = read_at(
                            r,
                            child + child_header,
                            &mut buf[..child_size.min(8) as usize],
                        )?;
                        timecode = buf[..n]
                            .iter()
                            .fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
                        layout.clusters.push(Cluster {
                            offset: at,
                            timecode,
                            sizable: header == CLUSTER_HEADER,
                        });
                    }
                    id::SIMPLE_BLOCK | id::BLOCK_GROUP => {
                        // A BlockGroup starts with its Block's header.
                        let mut block = child + child_header;
                        if child_id == id::BLOCK_GROUP {
                            match header_at(r, block)? {
                                Some((id::BLOCK, Some(_), h)) => block += h,
                                _ => break 'segment,
                            }
                        }
                        let n = read_at(r, block, &mut buf[..4])?;
                        // Track number VINT (one byte here), then i16 timecode.
                        let Some((_, track_len)) = ebml::read_size(&buf[..n]) else {
                            break 'segment;
                        };
                        let Some(rel) = buf.get(track_len..track_len + 2) else {
                            break 'segment;
                        };
                        let rel = i64::from(i16::from_be_bytes([rel[0], rel[1]]));
                        report.duration_ms =
                            report.duration_ms.max(timecode.saturating_add_signed(rel));
                        report.blocks += 1;
                    }
                    _ => {}
                }
                child = child_end;
                report.valid_len = child_end;
            }
            at = end;
            continue;
        }
        // Cues of an unfinished file are from a finalize or repair that
        // did not finish: they are written anew.
        if element == id::CUES && !report.finalized {
            break;
        }
        let Some(size) = size else { break };
        let end = at + header + size;
        if end > segment_end {
            break;
        }
        match element {
            id::TRACKS => layout.tracks_at = Some(at),
            id::INFO => {
                if room_before_info && at == segment_data + SEEK_HEAD_ROOM {
                    layout.seek_head_room = Some(segment_data);
                }
                layout.info_at = Some(at);
                layout.duration_room = find_duration_room(r, at + header, end)?;
            }
            id::SEEK_HEAD | id::VOID => {}
            _ => room_before_info = false,
        }
        report.valid_len = end;
        at = end;
    }
    report.playable = layout.tracks_at.is_some() && report.blocks > 0;
    layout.end_of_clusters = report.valid_len;
    layout.duration_ms = report.duration_ms;
    Ok((report, found))
}

/// The room inside Info that [`crate::WebmWriter`] keeps for the Duration:
/// its Void, or the Duration a finalize or repair already wrote there.
fn find_duration_room<R: Read + Seek>(r: &mut R, mut at: u64, end: u64) -> Result<Option<u64>> {
    while at < end {
        let Some((element, Some(size), header)) = header_at(r, at)? else {
            return Ok(None);
        };
        if matches!(element, id::VOID | id::DURATION) && header + size == DURATION_ROOM {
            return Ok(Some(at));
        }
        at += header + size;
    }
    Ok(None)
}

/// Repairs a recording file in place: cuts it after its last whole element
/// and re-indexes it as [`crate::WebmWriter::finalize`] would have (Cues,
/// SeekHead, Duration, Cluster and Segment sizes), so that the file seeks
/// like a finished one; a file from another writer only gets the cut and,
/// if Info kept room for it, the Duration. Returns the report;
/// `playable == false` means the caller should mark the recording failed
/// (the file is then left as it was, to delete or keep). A finalized whole
/// file is left untouched. Running it again on its own result is harmless,
/// as is a crash during it.
pub fn repair_file(path: &Path) -> Result<RepairReport> {
    let mut file = OpenOptions::new().read(true).write(true).open(path)?;
    let (mut report, found) = scan_found(&mut file)?;
    // Nothing to keep (the caller marks it failed), or nothing to do.
    if !report.playable || (report.finalized && !report.truncated()) {
        return Ok(report);
    }
    file.set_len(report.valid_len)?;
    let (size_at, size_len) = found.segment_size_field;
    if !report.finalized && size_len == 8 {
        write_index(&mut file, 0, &found.layout)?;
        report.reindexed = true;
    } else {
        if report.finalized {
            // A finalized file cut later: its Segment size now points past
            // the end, so make it unknown again, as it was while recording.
            let mut unknown = Vec::new();
            ebml::write_size_len(&mut unknown, (1u64 << (7 * size_len)) - 1, size_len);
            file.seek(SeekFrom::Start(size_at))?;
            file.write_all(&unknown)?;
        }
        if let Some(at) = found.layout.duration_room {
            let mut duration = Vec::new();
            ebml::float(&mut duration, id::DURATION, report.duration_ms as f64);
            file.seek(SeekFrom::Start(at))?;
            file.write_all(&duration)?;
        }
    }
    file.sync_all()?;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use super::*;
    use crate::webm::{TrackInfo, WebmWriter};

    /// `frames` frames 100 ms apart, a keyframe every tenth.
    fn recording(frames: u64, finalize: bool) -> Vec<u8> {
        let mut w = WebmWriter::new(Cursor::new(Vec::new()), &TrackInfo::vp8(320, 240)).unwrap();
        for i in 0..frames {
            w.write_frame(i * 100, i % 10 == 0, &vec![i as u8; 50 + i as usize])
                .unwrap();
        }
        let out = if finalize {
            w.finalize()
        } else {
            w.into_inner()
        };
        out.unwrap().into_inner()
    }

    #[test]
    fn every_cut_keeps_exactly_the_whole_blocks_before_it() {
        let file = recording(60, false);
        let mut last_blocks = 0;
        for cut in 0..=file.len() {
            let report = scan(&mut Cursor::new(&file[..cut])).unwrap();
            assert!(report.valid_len <= cut as u64);
            assert!(report.blocks >= last_blocks, "cut at {cut}");
            last_blocks = report.blocks;
            // What is kept scans whole, with the same blocks.
            let kept = scan(&mut Cursor::new(&file[..report.valid_len as usize])).unwrap();
            assert_eq!(
                (kept.blocks, kept.valid_len),
                (report.blocks, report.valid_len)
            );
            assert_eq!(report.playable, report.blocks > 0);
        }
        assert_eq!(last_blocks, 60);
    }

    #[test]
    fn repair_file_cuts_and_reindexes_like_finalize() {
        let dir = std::env::temp_dir().join(format!("vtp-repair-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("cut.webm");
        let file = recording(60, false);
        std::fs::write(&path, &file[..file.len() - 30]).unwrap();
        let report = repair_file(&path).unwrap();
        assert!(report.truncated() && report.playable && report.reindexed);
        assert_eq!((report.blocks, report.duration_ms), (59, 5800));
        let repaired = std::fs::read(&path).unwrap();

        // The same bytes as a finalized recording of the 59 whole frames,
        // but for the Duration (finalize adds the last frame's length).
        let mut expected = recording(59, true);
        let at = expected
            .windows(3)
            .position(|w| w == [0x44, 0x89, 0x88])
            .unwrap();
        assert_eq!(expected[at + 3..at + 11], 5900f64.to_be_bytes());
        expected[at + 3..at + 11].copy_from_slice(&5800f64.to_be_bytes());
        assert!(
            repaired == expected,
            "repaired file differs from a finalized one"
        );

        // Again: nothing to do.
        let again = repair_file(&path).unwrap();
        assert!(again.finalized && !again.truncated() && !again.reindexed);
        assert!(std::fs::read(&path).unwrap() == expected);

        // A crash just before the last step of re-indexing (the Segment
        // size) is repaired to the same file.
        let mut unfinished = expected.clone();
        let segment_size = unfinished
            .windows(4)
            .position(|w| w == [0x18, 0x53, 0x80, 0x67])
            .unwrap()
            + 4;
        unfinished[segment_size..segment_size + 8].copy_from_slice(&ebml::UNKNOWN_SIZE);
        std::fs::write(&path, &unfinished).unwrap();
        assert!(repair_file(&path).unwrap().reindexed);
        assert!(std::fs::read(&path).unwrap() == expected);

        // A finalized whole file is left alone.
        std::fs::write(&path, recording(60, true)).unwrap();
        let report = repair_file(&path).unwrap();
        assert!(report.finalized && !report.truncated() && !report.reindexed);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_cut_finalized_file_becomes_a_live_one_again() {
        let file = recording(60, true);
        let dir = std::env::temp_dir().join(format!("vtp-repair-fin-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("cut.webm");
        std::fs::write(&path, &file[..file.len() / 2]).unwrap();
        let report = repair_file(&path).unwrap();
        assert!(report.truncated() && report.playable);
        let repaired = std::fs::read(&path).unwrap();
        let again = scan(&mut Cursor::new(&repaired)).unwrap();
        assert!(!again.finalized, "Segment size unknown again");
        assert_eq!(again.blocks, report.blocks);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_file_cut_in_its_headers_is_not_playable() {
        let file = recording(60, false);
        for cut in [0, 1, 4, 10, 40, 100, 150] {
            let report = scan(&mut Cursor::new(&file[..cut])).unwrap();
            assert!(!report.playable && report.blocks == 0, "cut at {cut}");
        }
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(scan(&mut Cursor::new(b"RIFF....WAVE".to_vec())).is_err());
        let file = recording(60, false);
        let mut x: u32 = 99;
        for round in 0..300 {
            let mut damaged = file.clone();
            for _ in 0..(round % 20 + 1) {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                let at = (x as usize >> 8) % damaged.len();
                damaged[at] = (x >> 3) as u8;
            }
            let _ = scan(&mut Cursor::new(&damaged));
        }
    }
}
