//! Repair of a recording cut short (the process was killed, the disk
//! filled): find the end of the last whole block, cut the partial tail, and
//! say whether anything playable is left.
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
    /// Offset of the Void kept for the Duration in Info, if there is one.
    duration_void_at: Option<u64>,
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
    let len = r.seek(SeekFrom::End(0))?;
    let mut report = RepairReport {
        original_len: len,
        ..RepairReport::default()
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
        Some((id::EBML, Some(_), _)) | None => return Ok(report),
        _ => return Err(Error::Corrupt("no EBML header")),
    }
    let (segment_size, header) = match header_at(r, report.valid_len)? {
        Some((id::SEGMENT, size, header)) => (size, header),
        None => return Ok(report),
        _ => return Err(Error::Corrupt("no Segment")),
    };
    let segment_data = report.valid_len + header;
    report.segment_size_field = (report.valid_len + 4, header as usize - 4);
    report.finalized = segment_size.is_some();
    let segment_end = segment_size.map_or(len, |size| (segment_data + size).min(len));
    report.valid_len = segment_data;

    let mut tracks = false;
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
        let Some(size) = size else { break };
        let end = at + header + size;
        if end > segment_end {
            break;
        }
        match element {
            id::TRACKS => tracks = true,
            id::INFO => report.duration_void_at = find_duration_void(r, at + header, end)?,
            _ => {}
        }
        report.valid_len = end;
        at = end;
    }
    report.playable = tracks && report.blocks > 0;
    Ok(report)
}

/// The Void inside Info that [`crate::WebmWriter`] keeps for the Duration.
fn find_duration_void<R: Read + Seek>(r: &mut R, mut at: u64, end: u64) -> Result<Option<u64>> {
    while at < end {
        let Some((element, Some(size), header)) = header_at(r, at)? else {
            return Ok(None);
        };
        if element == id::VOID && header + size == 11 {
            return Ok(Some(at));
        }
        at += header + size;
    }
    Ok(None)
}

/// Repairs a recording file in place: cuts it after its last whole element
/// and, when the Info kept room for it, writes the Duration found. Returns
/// the report; `playable == false` means the caller should mark it failed
/// (the file is then left as it was, for the caller to delete or keep).
/// A file that was finalized and is whole is left untouched too.
pub fn repair_file(path: &Path) -> Result<RepairReport> {
    let mut file = OpenOptions::new().read(true).write(true).open(path)?;
    let report = scan(&mut file)?;
    // Nothing to keep (the caller marks it failed), or nothing to do.
    if !report.playable || (report.finalized && !report.truncated()) {
        return Ok(report);
    }
    file.set_len(report.valid_len)?;
    if report.finalized {
        // A finalized file cut later: its Segment size now points past the
        // end, so make it unknown again, as it was while recording.
        let (at, len) = report.segment_size_field;
        let mut unknown = Vec::new();
        ebml::write_size_len(&mut unknown, (1u64 << (7 * len)) - 1, len);
        file.seek(SeekFrom::Start(at))?;
        file.write_all(&unknown)?;
    }
    if report.playable
        && let Some(at) = report.duration_void_at
    {
        let mut duration = Vec::new();
        ebml::float(&mut duration, id::DURATION, report.duration_ms as f64);
        file.seek(SeekFrom::Start(at))?;
        file.write_all(&duration)?;
    }
    file.sync_all()?;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use super::*;
    use crate::webm::{TrackInfo, WebmWriter};

    fn recording(finalize: bool) -> Vec<u8> {
        let mut w = WebmWriter::new(Cursor::new(Vec::new()), &TrackInfo::vp8(320, 240)).unwrap();
        for i in 0..60u64 {
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
        let file = recording(false);
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
    fn repair_file_truncates_and_writes_the_duration() {
        let dir = std::env::temp_dir().join(format!("vtp-repair-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("cut.webm");
        let file = recording(false);
        std::fs::write(&path, &file[..file.len() - 30]).unwrap();
        let report = repair_file(&path).unwrap();
        assert!(report.truncated() && report.playable);
        assert_eq!((report.blocks, report.duration_ms), (59, 5800));
        let repaired = std::fs::read(&path).unwrap();
        assert_eq!(repaired.len() as u64, report.valid_len);
        assert!(
            repaired.windows(3).any(|w| w == [0x44, 0x89, 0x88]),
            "Duration written"
        );
        let again = scan(&mut Cursor::new(&repaired)).unwrap();
        assert!(!again.truncated() && again.blocks == 59);

        // A finalized whole file is left alone.
        std::fs::write(&path, recording(true)).unwrap();
        let report = repair_file(&path).unwrap();
        assert!(report.finalized && !report.truncated());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_cut_finalized_file_becomes_a_live_one_again() {
        let file = recording(true);
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
        let file = recording(false);
        for cut in [0, 1, 4, 10, 40, 100, 150] {
            let report = scan(&mut Cursor::new(&file[..cut])).unwrap();
            assert!(!report.playable && report.blocks == 0, "cut at {cut}");
        }
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(scan(&mut Cursor::new(b"RIFF....WAVE".to_vec())).is_err());
        let file = recording(false);
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
