//! RFC 4571 framing of ICE-TCP (`vtp_sfu_driver`'s `framing`), on any byte
//! stream cut into reads at any points.
//!
//! The module is included by path: it depends on nothing, and the driver
//! crate would bring the whole media engine into the fuzz build.
//!
//! Beyond "no panic": the frames handed out are exactly the stream's frames
//! (framing them again gives back the bytes consumed), none is empty or
//! above the maximum, and a stream is refused only for an empty or
//! oversize length.
#![no_main]

#[allow(dead_code)]
#[path = "../../crates/sfu-driver/src/framing.rs"]
mod framing;

use framing::{FrameDecoder, FrameError, MAX_FRAME, encode};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The first byte says how the rest is cut into reads.
    let Some((&cut, stream)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(cut).max(1);
    let mut decoder = FrameDecoder::new(MAX_FRAME);
    let mut reframed = Vec::new();
    for read in stream.chunks(chunk) {
        decoder.push(read);
        loop {
            match decoder.next_frame() {
                Ok(Some(frame)) => {
                    assert!(!frame.is_empty() && frame.len() <= MAX_FRAME);
                    reframed.extend(encode(frame).expect("a frame fits its length"));
                }
                Ok(None) => break,
                Err(e) => {
                    let at = &stream[reframed.len()..];
                    let len = usize::from(u16::from_be_bytes([at[0], at[1]]));
                    match e {
                        FrameError::Empty => assert_eq!(len, 0),
                        FrameError::Oversize(n) => assert!(n == len && n > MAX_FRAME),
                    }
                    return;
                }
            }
        }
    }
    assert_eq!(reframed, stream[..reframed.len()]);
    // What is left is less than one whole frame.
    let rest = &stream[reframed.len()..];
    if rest.len() >= 2 {
        let len = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
        assert!(rest.len() < 2 + len);
    }
});
