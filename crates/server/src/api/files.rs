//! Serving one file, from disk or from the recordings' bucket, with single
//! byte ranges (RFC 9110 §14), streamed in bounded chunks so that a large
//! recording never sits in memory (a bucket's file is read with a ranged
//! GET of just the bytes asked for).
//!
//! What is answered:
//! - no `Range` (or one this code does not understand, which RFC 9110 says
//!   to ignore): 200 with the whole file;
//! - `bytes=a-b`, `bytes=a-`, `bytes=-n`: 206 with `Content-Range`;
//! - a range that starts past the end (or `-0`, or any range of an empty
//!   file): 416 with `Content-Range: bytes */len`;
//! - several ranges: 200 with the whole file (RFC 9110 allows ignoring
//!   `Range`; multipart answers are not worth their complexity here);
//! - `If-None-Match` with the current `ETag`: 304; `If-Range` that no longer
//!   matches: the whole file.
//!
//! Files still being written are served as they are when opened: the length
//! is taken once, so a response never mixes two sizes.

use std::io::SeekFrom;
use std::path::Path;
use std::time::SystemTime;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::recording::storage::{RecordingFiles, StorageError};

/// Bytes read per chunk: bounds the memory of each download.
const CHUNK: usize = 64 * 1024;

/// What a `Range` header asks of a file of a given length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RangeAnswer {
    Full,
    /// Inclusive bounds, within the file.
    Partial {
        start: u64,
        end: u64,
    },
    Unsatisfiable,
}

/// Reads a `Range` header against a file of `len` bytes.
pub fn parse_range(header: Option<&str>, len: u64) -> RangeAnswer {
    let Some(spec) = header.map(str::trim) else {
        return RangeAnswer::Full;
    };
    let Some(set) = spec
        .get(..6)
        .filter(|unit| unit.eq_ignore_ascii_case("bytes="))
        .map(|_| spec[6..].trim())
    else {
        return RangeAnswer::Full; // another unit: ignored
    };
    if set.contains(',') {
        return RangeAnswer::Full;
    }
    let Some((first, last)) = set.split_once('-') else {
        return RangeAnswer::Full; // malformed: ignored
    };
    let number = |s: &str| -> Option<u64> {
        let s = s.trim();
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        // Digits too many for u64: larger than any file, so saturate.
        Some(s.parse().unwrap_or(u64::MAX))
    };
    match (first.trim().is_empty(), number(first), number(last)) {
        // bytes=-n: the last n bytes.
        (true, _, Some(n)) => {
            if n == 0 || len == 0 {
                RangeAnswer::Unsatisfiable
            } else {
                RangeAnswer::Partial {
                    start: len.saturating_sub(n),
                    end: len - 1,
                }
            }
        }
        // bytes=a- and bytes=a-b.
        (false, Some(start), last) if last.is_some() || last_is_empty(last, set) => {
            if let Some(end) = last
                && end < start
            {
                return RangeAnswer::Full; // invalid range: ignored
            }
            if start >= len {
                return RangeAnswer::Unsatisfiable;
            }
            let end = last.map_or(len - 1, |e| e.min(len - 1));
            RangeAnswer::Partial { start, end }
        }
        _ => RangeAnswer::Full,
    }
}

/// Whether the part after `-` is empty (`bytes=a-`), as opposed to garbage.
fn last_is_empty(last: Option<u64>, set: &str) -> bool {
    last.is_none()
        && set
            .split_once('-')
            .is_some_and(|(_, l)| l.trim().is_empty())
}

/// `Sun, 06 Nov 1994 08:49:37 GMT`.
fn http_date(at: SystemTime) -> String {
    DateTime::<Utc>::from(at)
        .format("%a, %d %b %Y %H:%M:%S GMT")
        .to_string()
}

fn header_str(headers: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// What a request for a file gets.
enum Plan {
    /// A complete answer without the file's bytes (304, 416).
    Answered(Response),
    Send(Sending),
}

/// What to send of a file: `count` bytes from `start`, with this status
/// and these headers.
struct Sending {
    status: StatusCode,
    headers: HeaderMap,
    start: u64,
    count: u64,
}

/// The headers, conditional requests and `Range` for a file of `len` bytes
/// whose version is `etag` (one logic for files on disk and in a bucket).
fn plan(
    len: u64,
    etag: &str,
    modified: Option<SystemTime>,
    content_type: &str,
    request: &HeaderMap,
) -> Plan {
    let mut headers = HeaderMap::new();
    let mut put = |name: header::HeaderName, value: &str| {
        if let Ok(v) = HeaderValue::from_str(value) {
            headers.insert(name, v);
        }
    };
    put(header::ACCEPT_RANGES, "bytes");
    put(header::ETAG, etag);
    if let Some(m) = modified {
        put(header::LAST_MODIFIED, &http_date(m));
    }
    // Recordings are private, and may still grow: revalidate every time.
    put(header::CACHE_CONTROL, "private, no-cache");
    put(header::X_CONTENT_TYPE_OPTIONS, "nosniff");

    if header_str(request, header::IF_NONE_MATCH)
        .is_some_and(|tags| tags.split(',').any(|t| t.trim() == etag || t.trim() == "*"))
    {
        return Plan::Answered((StatusCode::NOT_MODIFIED, headers).into_response());
    }
    let range_header = match header_str(request, header::IF_RANGE) {
        Some(tag) if tag.trim() != etag => None,
        _ => header_str(request, header::RANGE),
    };
    let (status, start, count) = match parse_range(range_header, len) {
        RangeAnswer::Full => (StatusCode::OK, 0, len),
        RangeAnswer::Partial { start, end } => {
            put(header::CONTENT_RANGE, &format!("bytes {start}-{end}/{len}"));
            (StatusCode::PARTIAL_CONTENT, start, end - start + 1)
        }
        RangeAnswer::Unsatisfiable => {
            let mut response = ApiError::new(
                ErrorCode::RangeNotSatisfiable,
                format!("the range is outside the file ({len} bytes)"),
            )
            .into_response();
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{len}")) {
                response.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            return Plan::Answered(response);
        }
    };
    put(header::CONTENT_TYPE, content_type);
    put(header::CONTENT_LENGTH, &count.to_string());
    Plan::Send(Sending {
        status,
        headers,
        start,
        count,
    })
}

/// Answers a request for the file at `path` (which the caller has already
/// checked is one it may serve). A missing file is a 404.
pub async fn serve_file(
    path: &Path,
    content_type: &str,
    request: &HeaderMap,
) -> ApiResult<Response> {
    let mut file = match tokio::fs::File::open(path).await {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(ApiError::not_found("this file has not been written"));
        }
        Err(e) => return Err(ApiError::internal("opening a recording file", e)),
    };
    let meta = file
        .metadata()
        .await
        .map_err(|e| ApiError::internal("reading a recording file's metadata", e))?;
    if !meta.is_file() {
        return Err(ApiError::not_found("this file has not been written"));
    }
    let len = meta.len();
    let modified = meta.modified().ok();
    // Changes whenever the file grows or is rewritten (finalize, repair).
    let mtime = modified
        .and_then(|m| m.duration_since(SystemTime::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    let etag = format!("\"{len:x}-{mtime:x}\"");
    let send = match plan(len, &etag, modified, content_type, request) {
        Plan::Send(send) => send,
        Plan::Answered(answer) => return Ok(answer),
    };
    if send.start > 0 {
        file.seek(SeekFrom::Start(send.start))
            .await
            .map_err(|e| ApiError::internal("seeking in a recording file", e))?;
    }
    let body = stream_body(file, send.count);
    Ok((send.status, send.headers, body).into_response())
}

/// Answers a request for an uploaded file, `name` under `prefix` in the
/// bucket (which the caller has already checked is one it may serve): a
/// HEAD for its length and version, then a ranged GET streamed through.
pub async fn serve_object(
    files: &RecordingFiles,
    prefix: &str,
    name: &str,
    content_type: &str,
    request: &HeaderMap,
) -> ApiResult<Response> {
    let unavailable = |e: StorageError| {
        tracing::warn!(error = %e, prefix, name, "recording file not readable from the bucket");
        ApiError::new(
            ErrorCode::Unavailable,
            "the recording's storage is not reachable; try again later",
        )
    };
    let meta = files
        .remote_meta(prefix, name)
        .await
        .map_err(unavailable)?
        .ok_or_else(|| ApiError::not_found("this file is not in the recording's storage"))?;
    let version = meta.e_tag.as_deref().unwrap_or_default().trim_matches('"');
    let etag = format!("\"{:x}-{version}\"", meta.size);
    let modified = Some(SystemTime::from(meta.last_modified));
    let send = match plan(meta.size, &etag, modified, content_type, request) {
        Plan::Send(send) => send,
        Plan::Answered(answer) => return Ok(answer),
    };
    if send.count == 0 {
        return Ok((send.status, send.headers, Body::empty()).into_response());
    }
    let chunks = files
        .read_range(prefix, name, send.start..send.start + send.count)
        .await
        .map_err(unavailable)?;
    Ok((send.status, send.headers, Body::from_stream(chunks)).into_response())
}

/// `count` bytes of `file` from where it stands, one chunk at a time.
fn stream_body(file: tokio::fs::File, count: u64) -> Body {
    let chunks = futures_util::stream::unfold((file, count), |(mut file, left)| async move {
        if left == 0 {
            return None;
        }
        let want = usize::try_from(left).map_or(CHUNK, |l| l.min(CHUNK));
        let mut buf = vec![0u8; want];
        match file.read(&mut buf).await {
            // The file shrank under us (a repair cut it): end here; the
            // client sees a short body and retries.
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok(Bytes::from(buf)), (file, left - n as u64)))
            }
            Err(e) => Some((Err(e), (file, 0))),
        }
    });
    Body::from_stream(chunks)
}

#[cfg(test)]
mod tests {
    use super::RangeAnswer::*;
    use super::*;

    #[test]
    fn ranges() {
        let p = |s: &str| parse_range(Some(s), 100);
        assert_eq!(parse_range(None, 100), Full);
        assert_eq!(p("bytes=0-9"), Partial { start: 0, end: 9 });
        assert_eq!(
            p("Bytes = 10-"),
            Full,
            "spaces around = are not the grammar"
        );
        assert_eq!(p("bytes=10-"), Partial { start: 10, end: 99 });
        assert_eq!(p("bytes=90-200"), Partial { start: 90, end: 99 });
        assert_eq!(p("bytes=-10"), Partial { start: 90, end: 99 });
        assert_eq!(p("bytes=-1000"), Partial { start: 0, end: 99 });
        assert_eq!(p("bytes=99-99"), Partial { start: 99, end: 99 });
        assert_eq!(p("bytes=100-"), Unsatisfiable);
        assert_eq!(p("bytes=100-200"), Unsatisfiable);
        assert_eq!(p("bytes=-0"), Unsatisfiable);
        assert_eq!(p("bytes=99999999999999999999999-"), Unsatisfiable);
        assert_eq!(p("bytes=0-1,5-6"), Full);
        assert_eq!(p("bytes=5-1"), Full);
        assert_eq!(p("bytes=x-1"), Full);
        assert_eq!(p("bytes=1-x"), Full);
        assert_eq!(p("bytes=-"), Full);
        assert_eq!(p("items=0-1"), Full);
        assert_eq!(p("bytes=1"), Full);
        assert_eq!(parse_range(Some("bytes=0-"), 0), Unsatisfiable);
        assert_eq!(parse_range(Some("bytes=-5"), 0), Unsatisfiable);
    }
}
