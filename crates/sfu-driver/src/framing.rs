//! RFC 4571 framing of ICE-TCP (RFC 6544): on a TCP connection every STUN,
//! DTLS, RTP or RTCP packet is preceded by its length as two big-endian
//! bytes.
//!
//! The decoder takes whatever a read returned (several frames, half a
//! frame, a lone length byte) and hands out whole frames. It refuses a
//! length of zero (nothing WebRTC sends) and a length above its maximum as
//! soon as the two length bytes are in, so a peer announcing 65535 bytes
//! and trickling them never makes it buffer more than one read.

/// The largest frame accepted: WebRTC packets stay near the path MTU (str0m
/// writes at most about 1200 bytes, browsers about 1500), so four times
/// that leaves room for any DTLS record or SCTP packet while keeping what
/// one connection can make the driver hold small.
pub const MAX_FRAME: usize = 4096;

/// Why a connection's byte stream is not RFC 4571 frames.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FrameError {
    /// A frame of length zero.
    Empty,
    /// A frame longer than the decoder's maximum (the announced length).
    Oversize(usize),
}

/// Reassembles frames from the reads of one connection.
#[derive(Debug)]
pub(crate) struct FrameDecoder {
    buf: Vec<u8>,
    /// Where the next frame starts in `buf` (bytes before it are spent).
    start: usize,
    max: usize,
}

impl FrameDecoder {
    pub fn new(max: usize) -> FrameDecoder {
        FrameDecoder {
            buf: Vec::new(),
            start: 0,
            max,
        }
    }

    /// Adds bytes just read. Call [`FrameDecoder::next_frame`] until it
    /// answers `None` before the next read, which keeps the buffer at most
    /// one read plus one partial frame long.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.start > 0 && self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        } else if self.start > self.buf.len() / 2 {
            // Keep the unread tail only.
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// The next whole frame's payload, `None` while it is incomplete.
    /// After an error the stream cannot be resynchronised: close it.
    pub fn next_frame(&mut self) -> Result<Option<&[u8]>, FrameError> {
        let rest = &self.buf[self.start..];
        let Some(header) = rest.get(..2) else {
            return Ok(None);
        };
        let len = usize::from(u16::from_be_bytes([header[0], header[1]]));
        if len == 0 {
            return Err(FrameError::Empty);
        }
        if len > self.max {
            return Err(FrameError::Oversize(len));
        }
        if rest.len() < 2 + len {
            return Ok(None);
        }
        let at = self.start + 2;
        self.start = at + len;
        Ok(Some(&self.buf[at..at + len]))
    }

    /// Bytes held (spent ones included until the next `push`).
    #[cfg(test)]
    fn buffered(&self) -> usize {
        self.buf.len()
    }
}

/// `payload` framed (length prefix, then the payload), or `None` when it is
/// longer than a frame can say.
pub(crate) fn encode(payload: &[u8]) -> Option<Vec<u8>> {
    let len = u16::try_from(payload.len()).ok()?;
    let mut framed = Vec::with_capacity(2 + payload.len());
    framed.extend_from_slice(&len.to_be_bytes());
    framed.extend_from_slice(payload);
    Some(framed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(decoder: &mut FrameDecoder) -> Result<Vec<Vec<u8>>, FrameError> {
        let mut out = Vec::new();
        while let Some(f) = decoder.next_frame()? {
            out.push(f.to_vec());
        }
        Ok(out)
    }

    #[test]
    fn encode_prefixes_the_big_endian_length() {
        assert_eq!(encode(b"abc").unwrap(), vec![0, 3, b'a', b'b', b'c']);
        assert_eq!(encode(&[7; 300]).unwrap()[..2], [1, 44]);
        assert_eq!(encode(&vec![0; 65_535]).unwrap().len(), 65_537);
        assert!(encode(&vec![0; 65_536]).is_none());
    }

    #[test]
    fn several_frames_in_one_read() {
        let mut d = FrameDecoder::new(MAX_FRAME);
        let mut bytes = encode(b"one").unwrap();
        bytes.extend(encode(b"two!").unwrap());
        bytes.extend(encode(&[9; 1200]).unwrap());
        d.push(&bytes);
        assert_eq!(
            frames(&mut d).unwrap(),
            vec![b"one".to_vec(), b"two!".to_vec(), vec![9; 1200]]
        );
        assert_eq!(d.next_frame(), Ok(None));
    }

    #[test]
    fn a_frame_split_across_reads_byte_by_byte() {
        let mut d = FrameDecoder::new(MAX_FRAME);
        let mut bytes = encode(b"hello").unwrap();
        bytes.extend(encode(b"world").unwrap());
        let mut got = Vec::new();
        for b in &bytes {
            d.push(std::slice::from_ref(b));
            got.extend(frames(&mut d).unwrap());
        }
        assert_eq!(got, vec![b"hello".to_vec(), b"world".to_vec()]);
    }

    #[test]
    fn a_frame_split_inside_its_length_and_merged_with_the_next() {
        let mut d = FrameDecoder::new(MAX_FRAME);
        let mut bytes = encode(&[1; 500]).unwrap();
        bytes.extend(encode(&[2; 700]).unwrap());
        bytes.extend(encode(&[3; 10]).unwrap());
        // Cut in the second frame's length, then in the third's payload.
        let (a, rest) = bytes.split_at(503);
        let (b, c) = rest.split_at(700);
        d.push(a);
        assert_eq!(frames(&mut d).unwrap(), vec![vec![1; 500]]);
        d.push(b);
        assert_eq!(frames(&mut d).unwrap(), Vec::<Vec<u8>>::new());
        d.push(c);
        assert_eq!(frames(&mut d).unwrap(), vec![vec![2; 700], vec![3; 10]]);
    }

    #[test]
    fn zero_length_is_an_error() {
        let mut d = FrameDecoder::new(MAX_FRAME);
        d.push(&[0, 0, 1, 2]);
        assert_eq!(d.next_frame(), Err(FrameError::Empty));
    }

    #[test]
    fn oversize_is_refused_at_its_length_without_waiting_for_the_payload() {
        let mut d = FrameDecoder::new(MAX_FRAME);
        d.push(&[0xFF]);
        assert_eq!(d.next_frame(), Ok(None), "one length byte: wait");
        d.push(&[0xFF, 1, 2, 3]);
        assert_eq!(d.next_frame(), Err(FrameError::Oversize(65_535)));
        let mut d = FrameDecoder::new(MAX_FRAME);
        d.push(&encode(&vec![0; MAX_FRAME]).unwrap());
        assert_eq!(d.next_frame().unwrap().map(<[u8]>::len), Some(MAX_FRAME));
        d.push(&encode(&vec![0; MAX_FRAME + 1]).unwrap());
        assert_eq!(d.next_frame(), Err(FrameError::Oversize(MAX_FRAME + 1)));
    }

    #[test]
    fn garbage_reads_as_an_oversize_length() {
        // What an HTTP client or a scanner would send.
        let mut d = FrameDecoder::new(MAX_FRAME);
        d.push(b"GET / HTTP/1.1\r\n\r\n");
        assert_eq!(d.next_frame(), Err(FrameError::Oversize(0x4745)));
        // TLS ClientHello: 0x16 0x03 …
        let mut d = FrameDecoder::new(MAX_FRAME);
        d.push(&[0x16, 0x03, 0x01, 0x02, 0x00]);
        assert_eq!(d.next_frame(), Err(FrameError::Oversize(0x1603)));
    }

    #[test]
    fn the_buffer_holds_one_partial_frame_at_most_between_reads() {
        let mut d = FrameDecoder::new(MAX_FRAME);
        let one = encode(&[5; 1000]).unwrap();
        for _ in 0..1000 {
            // A frame and a half per read.
            d.push(&one);
            d.push(&one[..500]);
            assert_eq!(frames(&mut d).unwrap().len(), 1);
            d.push(&one[500..]);
            assert_eq!(frames(&mut d).unwrap().len(), 1);
            assert!(d.buffered() <= 3 * one.len(), "{}", d.buffered());
        }
    }
}
