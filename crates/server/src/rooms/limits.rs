//! What one peer may put into a room that others are then sent: chat text
//! and a producer's `appData`, and the caps that bound every answer built
//! from a room (docs/protocol.md, *Limits*).
//!
//! Every answer about a live room (`join-room`, `get-room-info`,
//! `get-participants`, `GET /rooms/{id}/participants`) is built from the
//! room's peers, their producers, the caller's consumers and the session's
//! chat. Each of those is capped here, so the largest answer follows from
//! the caps and stays well under the per-connection outbox (1 MiB in
//! `vtp-sio`): a peer that exceeds what a connection may be queued would
//! otherwise disconnect everyone who asks about the room.

use serde_json::Value;
use vtp_sfu::rtp::MediaKind;

use super::SignalError;

/// Longest chat message, in bytes of UTF-8 (after `\r\n` became `\n`).
pub const CHAT_MAX_BYTES: usize = 2000;
/// Chat messages `join-room` answers at most (the newest).
pub const CHAT_ON_JOIN_MESSAGES: usize = 50;
/// Serialized bytes of chat `join-room` answers at most (always at least
/// one message).
pub const CHAT_ON_JOIN_BYTES: usize = 32 * 1024;
/// Serialized bytes of chat one `get-chat-history` answers at most.
pub const CHAT_PAGE_BYTES: usize = 64 * 1024;
/// Messages one `get-chat-history` answers at most.
pub const CHAT_PAGE_MESSAGES: u32 = 50;
/// A producer's `appData`, serialized as compact JSON.
pub const APP_DATA_MAX_BYTES: usize = 256;
/// Nesting of objects and arrays inside `appData` (itself depth 1).
pub const APP_DATA_MAX_DEPTH: usize = 3;
/// Producers of all peers of one room together.
pub const MAX_PRODUCERS_PER_ROOM: usize = 100;
/// Consumers one peer may hold (each producer of the room, about once).
pub const MAX_CONSUMERS_PER_PEER: usize = MAX_PRODUCERS_PER_ROOM;
/// `maxParticipants` is at most this (the HTTP API refuses more), and a
/// room holds at most this many besides its extra hosts.
pub const MAX_PARTICIPANTS: usize = vtp_store::MAX_ROOM_PARTICIPANTS as usize;
/// Peers one room may hold: hosts may join a room with `maxParticipants`
/// people in it, but not more than this many beyond it.
pub const MAX_EXTRA_HOSTS: usize = 8;

/// Checks and normalises a chat message: `\r\n` becomes `\n`, the text is
/// trimmed, must not be empty, must be at most [`CHAT_MAX_BYTES`], and must
/// hold no control character but `\n` and no bidirectional override (which
/// makes text read other than it is). Refused, not silently cleaned: the
/// sender learns what was wrong.
pub fn chat_text(raw: &str) -> Result<String, SignalError> {
    let text = raw.replace("\r\n", "\n");
    let text = text.trim();
    if text.is_empty() {
        return Err(SignalError::bad_request("text: must not be empty"));
    }
    if text.len() > CHAT_MAX_BYTES {
        return Err(SignalError::bad_request(format!(
            "text: at most {CHAT_MAX_BYTES} bytes of UTF-8 (this is {})",
            text.len()
        )));
    }
    if let Some(c) = text.chars().find(|&c| forbidden_char(c)) {
        return Err(SignalError::bad_request(format!(
            "text: control character U+{:04X} is not allowed (only newlines)",
            u32::from(c)
        )));
    }
    Ok(text.to_string())
}

/// Control characters (C0, DEL, C1) but newline, and the Unicode
/// bidirectional embeddings, overrides and isolates.
fn forbidden_char(c: char) -> bool {
    (c.is_control() && c != '\n') || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// What a producer counts as for the room's permissions: its kind first,
/// and for video whether it is labelled a screen share.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    Mic,
    Camera,
    Screen,
}

/// Checks a producer's `appData`: at most [`APP_DATA_MAX_BYTES`] as JSON,
/// nested at most [`APP_DATA_MAX_DEPTH`] deep, `source` a string when
/// present. An audio producer is a microphone whatever its label; a video
/// producer is a screen share when labelled `screen`, else a camera.
pub fn app_data(app_data: &Value, kind: MediaKind) -> Result<Source, SignalError> {
    let size = serde_json::to_vec(app_data)
        .map(|v| v.len())
        .unwrap_or(usize::MAX);
    if size > APP_DATA_MAX_BYTES {
        return Err(SignalError::bad_request(format!(
            "appData: at most {APP_DATA_MAX_BYTES} bytes as JSON (this is {size})"
        )));
    }
    if depth(app_data) > APP_DATA_MAX_DEPTH {
        return Err(SignalError::bad_request(format!(
            "appData: nested at most {APP_DATA_MAX_DEPTH} deep"
        )));
    }
    let screen = match app_data.get("source") {
        None => false,
        Some(Value::String(label)) => label == "screen",
        Some(_) => {
            return Err(SignalError::bad_request("appData.source: a string"));
        }
    };
    // Other labels (`mic`, `camera`, a client's own words) change nothing
    // the server decides: what counts is the kind, and for video whether
    // it claims the screen permission.
    Ok(match kind {
        MediaKind::Audio => Source::Mic,
        MediaKind::Video if screen => Source::Screen,
        MediaKind::Video => Source::Camera,
    })
}

fn depth(value: &Value) -> usize {
    match value {
        Value::Object(map) => 1 + map.values().map(depth).max().unwrap_or(0),
        Value::Array(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

/// The newest messages of `all` (oldest first) that fit one page: at most
/// `max` messages and `max_bytes` serialized, at least one.
pub fn chat_page<T: serde::Serialize + Clone>(all: &[T], max: usize, max_bytes: usize) -> Vec<T> {
    let mut bytes = 0;
    let mut taken = 0;
    for message in all.iter().rev().take(max) {
        let size = serde_json::to_vec(message)
            .map(|v| v.len() + 1)
            .unwrap_or(0);
        if taken > 0 && bytes + size > max_bytes {
            break;
        }
        bytes += size;
        taken += 1;
    }
    all[all.len() - taken..].to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn chat_is_counted_in_bytes_and_refuses_control_characters() {
        assert_eq!(chat_text(" a\r\nb ").unwrap(), "a\nb");
        assert!(chat_text(&"é".repeat(1000)).is_ok()); // 2000 bytes
        assert!(chat_text(&"é".repeat(1001)).is_err());
        for bad in [
            "a\u{1}b",
            "a\tb",
            "a\rb",
            "\u{202E}gpj.exe",
            "a\u{7f}",
            "a\u{85}b",
        ] {
            let e = chat_text(bad).unwrap_err();
            assert_eq!(e.code, super::super::SignalCode::BadRequest, "{bad:?}");
        }
        assert!(chat_text("  \n ").is_err());
    }

    #[test]
    fn app_data_is_bounded() {
        let video = MediaKind::Video;
        let ok = json!({ "source": "camera", "n": { "a": [1] } });
        assert_eq!(app_data(&ok, video).unwrap(), Source::Camera);
        assert_eq!(app_data(&json!({}), MediaKind::Audio).unwrap(), Source::Mic);
        assert_eq!(
            app_data(&json!({ "source": "screen" }), video).unwrap(),
            Source::Screen
        );
        for bad in [
            json!({ "source": 1 }),
            json!({ "x": "a".repeat(APP_DATA_MAX_BYTES) }),
            json!({ "a": { "b": { "c": { "d": 1 } } } }),
        ] {
            assert!(app_data(&bad, video).is_err(), "{bad}");
        }
        // Another label gains nothing: audio is a microphone, video a camera.
        let screen = json!({ "source": "screen" });
        assert_eq!(app_data(&screen, MediaKind::Audio).unwrap(), Source::Mic);
        let other = json!({ "source": "microphone" });
        assert_eq!(app_data(&other, video).unwrap(), Source::Camera);
    }

    #[test]
    fn a_chat_page_keeps_the_newest_within_its_bytes() {
        let all: Vec<String> = (0..100)
            .map(|i| format!("{i}{}", "x".repeat(2000)))
            .collect();
        let page = chat_page(&all, 100, CHAT_PAGE_BYTES);
        assert!(page.len() < 100 && page.len() > 1);
        assert_eq!(page.last(), all.last());
        let one = chat_page(&all[..1], 50, 10);
        assert_eq!(one.len(), 1);
    }
}
