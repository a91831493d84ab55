//! Engine.IO v4 and Socket.IO v5 text packets, server side.
//!
//! An Engine.IO packet is one type digit and its data; over websocket each
//! text frame is one packet, over long-polling packets are joined by the
//! record separator `\x1e`. Socket.IO packets ride in Engine.IO messages
//! (`4…`): a type digit, for binary types an attachment count and `-`, an
//! optional namespace (`/name,`), an optional ack id, and JSON.

use serde_json::Value;

use crate::error::{SioError, malformed};

/// Separates packets in a long-polling payload.
pub const SEPARATOR: char = '\x1e';

/// An Engine.IO packet sent by a client.
#[derive(Debug, PartialEq)]
pub enum EioIn<'a> {
    Close,
    /// `2…`: only sent by clients as the `2probe` of an upgrade.
    Ping(&'a str),
    Pong(&'a str),
    Message(&'a str),
    Upgrade,
    Noop,
}

pub fn parse_eio(text: &str) -> Result<EioIn<'_>, SioError> {
    let (kind, rest) = split_first(text).ok_or_else(|| malformed("empty engine.io packet"))?;
    Ok(match kind {
        '1' => EioIn::Close,
        '2' => EioIn::Ping(rest),
        '3' => EioIn::Pong(rest),
        '4' => EioIn::Message(rest),
        '5' => EioIn::Upgrade,
        '6' => EioIn::Noop,
        'b' => return Err(malformed("binary engine.io packets are not supported")),
        other => {
            return Err(malformed(format!(
                "unknown engine.io packet type {other:?}"
            )));
        }
    })
}

fn split_first(text: &str) -> Option<(char, &str)> {
    let kind = text.chars().next()?;
    Some((kind, &text[kind.len_utf8()..]))
}

/// A Socket.IO packet sent by a client (on any namespace; the caller
/// refuses other namespaces than `/`).
#[derive(Debug, PartialEq)]
pub enum SioIn<'a> {
    Connect {
        nsp: &'a str,
        auth: Option<Value>,
    },
    Disconnect {
        nsp: &'a str,
    },
    Event {
        nsp: &'a str,
        ack: Option<u64>,
        name: String,
        /// The first argument (`null` when there is none).
        data: Value,
        /// Bytes of the packet's JSON, for size limits.
        len: usize,
    },
    /// A client's answer to a server ack request: the server asks none, so
    /// these are ignored.
    Ack,
    /// `5`/`6`: binary attachments, which the protocol does not use.
    Binary {
        nsp: &'a str,
        ack: Option<u64>,
    },
}

pub fn parse_sio(text: &str) -> Result<SioIn<'_>, SioError> {
    let (kind, mut rest) = split_first(text).ok_or_else(|| malformed("empty socket.io packet"))?;
    if !matches!(kind, '0'..='6') {
        return Err(malformed(format!("unknown socket.io packet type {kind:?}")));
    }
    if matches!(kind, '5' | '6') {
        let dash = rest
            .find('-')
            .ok_or_else(|| malformed("binary packet without attachment count"))?;
        rest = &rest[dash + 1..];
    }
    let mut nsp = "/";
    if rest.starts_with('/') {
        let end = rest.find(',').unwrap_or(rest.len());
        nsp = &rest[..end];
        rest = rest.get(end + 1..).unwrap_or("");
    }
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    let ack = if digits == 0 {
        None
    } else {
        Some(
            rest[..digits]
                .parse::<u64>()
                .map_err(|_| malformed("ack id out of range"))?,
        )
    };
    let json = &rest[digits..];
    match kind {
        '0' => {
            let auth = if json.is_empty() {
                None
            } else {
                Some(
                    serde_json::from_str(json)
                        .map_err(|e| malformed(format!("connect payload: {e}")))?,
                )
            };
            Ok(SioIn::Connect { nsp, auth })
        }
        '1' => Ok(SioIn::Disconnect { nsp }),
        '2' => {
            let args: Vec<Value> =
                serde_json::from_str(json).map_err(|e| malformed(format!("event payload: {e}")))?;
            let mut args = args.into_iter();
            let Some(Value::String(name)) = args.next() else {
                return Err(malformed(
                    "event payload: the first element must be the event name",
                ));
            };
            Ok(SioIn::Event {
                nsp,
                ack,
                name,
                data: args.next().unwrap_or(Value::Null),
                len: json.len(),
            })
        }
        '3' => Ok(SioIn::Ack),
        '4' => Err(malformed("connect_error is sent by servers only")),
        _ => Ok(SioIn::Binary { nsp, ack }),
    }
}

/// `42["event",payload]`: an Engine.IO message carrying a Socket.IO event.
pub fn event(name: &str, payload: &Value) -> String {
    let name = serde_json::to_string(name).unwrap_or_else(|_| "\"\"".into());
    format!("42[{name},{payload}]")
}

/// `43<id>[payload]`: the acknowledgement of event `id`.
pub fn ack(id: u64, payload: &Value) -> String {
    format!("43{id}[{payload}]")
}

/// `40{"sid":…}`: the namespace connection is accepted.
pub fn connected(sid: &str) -> String {
    format!("40{}", serde_json::json!({ "sid": sid }))
}

/// `44<nsp,>{"message":…}`: the namespace connection is refused.
pub fn connect_error(nsp: &str, message: &str) -> String {
    let body = serde_json::json!({ "message": message });
    if nsp == "/" {
        format!("44{body}")
    } else {
        format!("44{nsp},{body}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn engine_packets() {
        assert_eq!(parse_eio("2probe").ok(), Some(EioIn::Ping("probe")));
        assert_eq!(parse_eio("3").ok(), Some(EioIn::Pong("")));
        assert_eq!(parse_eio("40").ok(), Some(EioIn::Message("0")));
        assert_eq!(parse_eio("5").ok(), Some(EioIn::Upgrade));
        assert!(parse_eio("").is_err());
        assert!(parse_eio("bAAA").is_err());
        assert!(parse_eio("é").is_err());
    }

    #[test]
    fn socket_packets() {
        assert_eq!(
            parse_sio(r#"0{"token":"t"}"#).ok(),
            Some(SioIn::Connect {
                nsp: "/",
                auth: Some(json!({ "token": "t" }))
            })
        );
        assert_eq!(
            parse_sio("0/admin,").ok(),
            Some(SioIn::Connect {
                nsp: "/admin",
                auth: None
            })
        );
        assert_eq!(
            parse_sio(r#"212["join-room",{"roomId":"r"}]"#).ok(),
            Some(SioIn::Event {
                nsp: "/",
                ack: Some(12),
                name: "join-room".into(),
                data: json!({ "roomId": "r" }),
                len: 28,
            })
        );
        assert_eq!(
            parse_sio(r#"51-3[{"_placeholder":true,"num":0}]"#).ok(),
            Some(SioIn::Binary {
                nsp: "/",
                ack: Some(3)
            })
        );
        for bad in [
            "",
            "9",
            "2",
            "2{}",
            "2[1]",
            "2[]",
            "299999999999999999999999[\"a\"]",
            "0{bad",
            "5[]",
            "4{}",
        ] {
            assert!(parse_sio(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn encodes() {
        assert_eq!(
            event("peer-joined", &json!({ "a": 1 })),
            r#"42["peer-joined",{"a":1}]"#
        );
        assert_eq!(ack(7, &json!({ "ok": true })), r#"437[{"ok":true}]"#);
        assert_eq!(
            connect_error("/", "unauthorized"),
            r#"44{"message":"unauthorized"}"#
        );
        assert_eq!(connect_error("/x", "no"), r#"44/x,{"message":"no"}"#);
    }
}
