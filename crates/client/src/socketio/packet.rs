//! Engine.IO v4 and Socket.IO v5 text packets (the "Socket.IO v4" stack).
//!
//! Over the websocket transport every text frame is exactly one Engine.IO
//! packet: one type digit followed by its data. Socket.IO packets travel inside
//! Engine.IO `4` (message) packets: one type digit, an optional namespace
//! (`/name,`), an optional ack id (decimal digits) and an optional JSON payload.
//! Only the default namespace `/` is used by VTP; packets of other namespaces are
//! reported as [`SioPacket::OtherNamespace`]. Binary packets (types `5` and `6`)
//! are not supported.

use serde::Deserialize;
use serde_json::Value;

/// An Engine.IO packet decoded from a websocket text frame; data borrows the frame.
#[derive(Debug, PartialEq)]
pub(crate) enum EioPacket<'a> {
    /// `0{json}`: the handshake sent by the server first.
    Open(&'a str),
    /// `1`: the server closes the Engine.IO session.
    Close,
    /// `2`: heartbeat ping from the server (must be answered with `3`).
    Ping,
    /// `3`: pong (not expected from a v4 server, ignored).
    Pong,
    /// `4…`: a message, i.e. a Socket.IO packet.
    Message(&'a str),
    /// `5`: upgrade (only used with long-polling, ignored).
    Upgrade,
    /// `6`: noop (ignored).
    Noop,
}

/// The Engine.IO open packet payload (`0{…}`); unknown fields are ignored.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct OpenPacket {
    /// Engine.IO session id.
    pub sid: String,
    /// Interval between server pings, in milliseconds.
    #[serde(default = "default_ping_interval")]
    pub ping_interval: u64,
    /// How long the server waits for a pong, in milliseconds.
    #[serde(default = "default_ping_timeout")]
    pub ping_timeout: u64,
}

fn default_ping_interval() -> u64 {
    25_000
}

fn default_ping_timeout() -> u64 {
    20_000
}

/// Decodes one Engine.IO packet from a websocket text frame.
pub(crate) fn parse_eio(frame: &str) -> Result<EioPacket<'_>, String> {
    let Some(kind) = frame.chars().next() else {
        return Err("empty engine.io packet".to_owned());
    };
    // The type is one ASCII digit, so slicing after one byte is safe when it matches.
    let data = &frame[kind.len_utf8()..];
    Ok(match kind {
        '0' => EioPacket::Open(data),
        '1' => EioPacket::Close,
        '2' => EioPacket::Ping,
        '3' => EioPacket::Pong,
        '4' => EioPacket::Message(data),
        '5' => EioPacket::Upgrade,
        '6' => EioPacket::Noop,
        _ => return Err(format!("unknown engine.io packet type {kind:?}")),
    })
}

/// A Socket.IO packet of the default namespace.
#[derive(Debug, PartialEq)]
pub(crate) enum SioPacket {
    /// `0{…}`: namespace connected (the payload holds `sid`), or `Null` without payload.
    Connect(Value),
    /// `1`: the server removed us from the namespace.
    Disconnect,
    /// `2[id]["name",args…]`: an event, with an ack id when the sender wants an ack.
    Event {
        /// Ack id requested by the sender, if any.
        id: Option<u64>,
        /// Event name (first array element).
        name: String,
        /// Remaining array elements.
        args: Vec<Value>,
    },
    /// `3<id>[args…]`: the answer to one of our events.
    Ack {
        /// Ack id of our event.
        id: u64,
        /// Acknowledgement arguments.
        args: Vec<Value>,
    },
    /// `4{…}`: the namespace connection was refused (payload usually `{"message":…}`).
    ConnectError(Value),
    /// `5`/`6`: binary event or ack (unsupported).
    Binary,
    /// A packet addressed to another namespace than `/`.
    OtherNamespace,
}

/// Decodes the Socket.IO packet carried by an Engine.IO message.
pub(crate) fn parse_sio(message: &str) -> Result<SioPacket, String> {
    let Some(kind) = message.chars().next() else {
        return Err("empty socket.io packet".to_owned());
    };
    let mut rest = &message[kind.len_utf8()..];
    match kind {
        '0'..='4' => {}
        '5' | '6' => return Ok(SioPacket::Binary),
        _ => return Err(format!("unknown socket.io packet type {kind:?}")),
    }
    if rest.starts_with('/') {
        let (namespace, after) = rest.split_once(',').unwrap_or((rest, ""));
        if namespace != "/" {
            return Ok(SioPacket::OtherNamespace);
        }
        rest = after;
    }
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    let id = if digits > 0 {
        let id = rest[..digits]
            .parse::<u64>()
            .map_err(|e| format!("bad ack id {:?}: {e}", &rest[..digits]))?;
        Some(id)
    } else {
        None
    };
    rest = &rest[digits..];
    let payload = if rest.is_empty() {
        None
    } else {
        Some(serde_json::from_str::<Value>(rest).map_err(|e| format!("bad JSON payload: {e}"))?)
    };
    match kind {
        '0' => Ok(SioPacket::Connect(payload.unwrap_or(Value::Null))),
        '1' => Ok(SioPacket::Disconnect),
        '2' => {
            let Some(Value::Array(mut args)) = payload else {
                return Err("event payload is not an array".to_owned());
            };
            if args.is_empty() {
                return Err("event without a name".to_owned());
            }
            let Value::String(name) = args.remove(0) else {
                return Err("event name is not a string".to_owned());
            };
            Ok(SioPacket::Event { id, name, args })
        }
        '3' => {
            let id = id.ok_or_else(|| "ack without an id".to_owned())?;
            let Some(Value::Array(args)) = payload else {
                return Err("ack payload is not an array".to_owned());
            };
            Ok(SioPacket::Ack { id, args })
        }
        _ => Ok(SioPacket::ConnectError(payload.unwrap_or(Value::Null))),
    }
}

/// Encodes a namespace CONNECT to `/`: `40` or `40{auth}`.
pub(crate) fn encode_connect(auth: Option<&Value>) -> String {
    match auth {
        Some(auth) => format!("40{auth}"),
        None => "40".to_owned(),
    }
}

/// Encodes an EVENT to `/`: `42["event",args…]`, or `42<id>["event",args…]` with an ack id.
pub(crate) fn encode_event(id: Option<u64>, event: &str, args: Vec<Value>) -> String {
    let mut array = Vec::with_capacity(args.len() + 1);
    array.push(Value::String(event.to_owned()));
    array.extend(args);
    let array = Value::Array(array);
    match id {
        Some(id) => format!("42{id}{array}"),
        None => format!("42{array}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn engine_io_types() {
        assert_eq!(
            parse_eio("0{\"sid\":\"a\"}"),
            Ok(EioPacket::Open("{\"sid\":\"a\"}"))
        );
        assert_eq!(parse_eio("1"), Ok(EioPacket::Close));
        assert_eq!(parse_eio("2"), Ok(EioPacket::Ping));
        assert_eq!(parse_eio("3"), Ok(EioPacket::Pong));
        assert_eq!(parse_eio("42[\"a\"]"), Ok(EioPacket::Message("2[\"a\"]")));
        assert_eq!(parse_eio("6"), Ok(EioPacket::Noop));
        assert!(parse_eio("").is_err());
        assert!(parse_eio("x").is_err());
        assert!(parse_eio("é").is_err());
    }

    #[test]
    fn open_packet() {
        let open: OpenPacket = serde_json::from_str(
            r#"{"sid":"abc","upgrades":[],"pingInterval":300,"pingTimeout":200,"maxPayload":100000}"#,
        )
        .unwrap();
        assert_eq!(
            (open.sid.as_str(), open.ping_interval, open.ping_timeout),
            ("abc", 300, 200)
        );
        let open: OpenPacket = serde_json::from_str(r#"{"sid":"abc"}"#).unwrap();
        assert_eq!((open.ping_interval, open.ping_timeout), (25_000, 20_000));
    }

    #[test]
    fn socket_io_packets() {
        assert_eq!(
            parse_sio(r#"0{"sid":"s1"}"#),
            Ok(SioPacket::Connect(json!({"sid":"s1"})))
        );
        assert_eq!(parse_sio("1"), Ok(SioPacket::Disconnect));
        assert_eq!(
            parse_sio(r#"2["peer-joined",{"a":1},2]"#),
            Ok(SioPacket::Event {
                id: None,
                name: "peer-joined".into(),
                args: vec![json!({"a":1}), json!(2)]
            })
        );
        assert_eq!(
            parse_sio(r#"217["x"]"#),
            Ok(SioPacket::Event {
                id: Some(17),
                name: "x".into(),
                args: vec![]
            })
        );
        assert_eq!(
            parse_sio(r#"3123[{"ok":true,"data":{}}]"#),
            Ok(SioPacket::Ack {
                id: 123,
                args: vec![json!({"ok":true,"data":{}})]
            })
        );
        assert_eq!(
            parse_sio("30[]"),
            Ok(SioPacket::Ack {
                id: 0,
                args: vec![]
            })
        );
        assert_eq!(
            parse_sio(r#"4{"message":"unauthorized"}"#),
            Ok(SioPacket::ConnectError(json!({"message":"unauthorized"})))
        );
        assert_eq!(
            parse_sio(r#"2/,["a"]"#),
            Ok(SioPacket::Event {
                id: None,
                name: "a".into(),
                args: vec![]
            })
        );
        assert_eq!(parse_sio(r#"2/admin,["a"]"#), Ok(SioPacket::OtherNamespace));
        assert_eq!(
            parse_sio(r#"51-["a",{"_placeholder":true,"num":0}]"#),
            Ok(SioPacket::Binary)
        );
    }

    #[test]
    fn malformed_socket_io_packets() {
        for bad in [
            "",
            "9",
            "2",
            "2{}",
            "2[]",
            "2[1]",
            "3[]",
            "3",
            "31{}",
            "2[",
            "399999999999999999999[]",
        ] {
            assert!(parse_sio(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn encoding() {
        assert_eq!(encode_connect(None), "40");
        assert_eq!(
            encode_connect(Some(&json!({"token":"t"}))),
            r#"40{"token":"t"}"#
        );
        assert_eq!(
            encode_event(None, "e", vec![json!({"a":1})]),
            r#"42["e",{"a":1}]"#
        );
        assert_eq!(encode_event(Some(7), "e", vec![]), r#"427["e"]"#);
        assert_eq!(
            encode_event(Some(0), "e\"q", vec![json!(1), json!("s")]),
            r#"420["e\"q",1,"s"]"#
        );
    }
}
