//! The websocket frame reader (`vtp_sio::ws::Reader`) on any byte stream a
//! client can send after the upgrade, cut into reads at any points.
//!
//! Beyond "no panic": no message above the limit comes out, nothing is
//! allocated for a frame larger than the limit (libFuzzer's malloc limit
//! catches it), every protocol error has a close code, and a text message
//! the reader returns reads back the same when framed again.
#![no_main]

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use libfuzzer_sys::fuzz_target;
use vtp_sio::ws::{Message, Reader};

const MAX: usize = 4096;

fuzz_target!(|data: &[u8]| {
    let mut reader = Reader::new(MAX);
    let mut io = data;
    for _ in 0..64 {
        let next = run(reader.next(&mut io));
        match next {
            Some(Ok(Message::Text(text))) => {
                assert!(text.len() <= MAX);
                round_trip(&text);
            }
            Some(Ok(Message::Binary(len))) => assert!(len <= MAX),
            Some(Ok(Message::Ping(payload))) => assert!(payload.len() <= 125),
            Some(Ok(Message::Close)) => {}
            Some(Err(e)) => {
                let eof = matches!(e, vtp_sio::SioError::Eof);
                assert!(eof || e.close_code().is_some(), "{e} has no close code");
                return;
            }
            None => return,
        }
    }
});

/// A masked client frame of `text` reads back as `text`.
fn round_trip(text: &str) {
    let mask = [0x37, 0xFA, 0x21, 0x3D];
    let payload = text.as_bytes();
    let mut frame = vec![0x81];
    match payload.len() {
        n if n < 126 => frame.push(0x80 | n as u8),
        n => {
            frame.push(0x80 | 126);
            frame.extend_from_slice(&(n as u16).to_be_bytes());
        }
    }
    frame.extend_from_slice(&mask);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    let mut io = &frame[..];
    match run(Reader::new(MAX).next(&mut io)) {
        Some(Ok(Message::Text(back))) => assert_eq!(back, text),
        other => panic!("{text:?} framed again read as {other:?}"),
    }
}

/// Polls `future` to the end: reading from a slice never waits.
fn run<F: Future>(future: F) -> Option<F::Output> {
    let mut future = pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    match future.as_mut().poll(&mut cx) {
        Poll::Ready(out) => Some(out),
        Poll::Pending => None,
    }
}
