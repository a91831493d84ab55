//! The Engine.IO and Socket.IO packet parsers (`vtp_sio::packet`) on any
//! text a client can send, one packet or a polling payload of several.
//!
//! Beyond "no panic": an event the parser accepts, written back by the
//! server's own encoder, parses to the same name and argument (numbers to
//! within a unit in the last place: serde_json, without its
//! `float_roundtrip` feature, may read a long decimal one ulp off); the length
//! it reports is that of the packet's JSON; what the server writes (acks,
//! connect errors) is never taken for a client event.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use vtp_sio::packet::{self, EioIn, SioIn};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for one in text.split(packet::SEPARATOR) {
        check(one);
    }
});

fn check(text: &str) {
    let Ok(EioIn::Message(message)) = packet::parse_eio(text) else {
        return;
    };
    let Ok(parsed) = packet::parse_sio(message) else {
        return;
    };
    if let SioIn::Event {
        name, data, len, ack, ..
    } = parsed
    {
        assert!(len <= message.len());
        let written = packet::event(&name, &data);
        let again = packet::parse_eio(&written).expect("the server's event is an engine.io message");
        let EioIn::Message(again) = again else {
            panic!("{written:?} is not a message");
        };
        match packet::parse_sio(again) {
            Ok(SioIn::Event {
                name: name2,
                data: data2,
                ack: None,
                ..
            }) => {
                assert_eq!(name, name2);
                assert!(same(&data, &data2), "{data} read back as {data2}");
            }
            other => panic!("{written:?} read back as {other:?}"),
        }
        if let Some(id) = ack {
            let answer = packet::ack(id, &data);
            let parsed = packet::parse_sio(&answer[1..]);
            assert!(matches!(parsed, Ok(SioIn::Ack)), "{answer:?}: {parsed:?}");
        }
        let refusal = packet::connect_error("/", &name);
        assert!(packet::parse_sio(&refusal[1..]).is_err(), "{refusal:?}");
    }
}

/// Equal JSON, floating-point numbers to within a few ulps.
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) if x.is_f64() || y.is_f64() => {
            match (x.as_f64(), y.as_f64()) {
                (Some(x), Some(y)) => x == y || (x - y).abs() <= x.abs().max(y.abs()) * 1e-15,
                _ => false,
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}
