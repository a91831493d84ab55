//! The server side of RFC 6455 websockets, as small as Engine.IO needs.
//!
//! Why our own frames rather than tungstenite: tungstenite keeps its write
//! buffer at the size of the largest message ever sent and a read buffer per
//! connection, which is most of the memory of an idle signalling connection.
//! Here an idle connection holds a buffer of a few bytes; a message is
//! assembled in a buffer sized for it and freed once handled or written.

use base64::Engine as _;
use sha1::{Digest, Sha1};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::error::SioError;

/// The key suffix of RFC 6455 §1.3.
const GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
/// Bytes asked of the socket at least per read: enough for a header and a
/// small message, small enough to keep on an idle connection.
const MIN_READ: usize = 64;
/// A buffer larger than this is dropped once empty, not kept.
const KEEP_CAPACITY: usize = 256;

/// `Sec-WebSocket-Accept` for a client's `Sec-WebSocket-Key`.
pub fn accept_key(key: &[u8]) -> String {
    let mut sha = Sha1::new();
    sha.update(key);
    sha.update(GUID.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(sha.finalize())
}

#[derive(Debug, PartialEq)]
pub enum Message {
    Text(String),
    /// Binary messages are not part of the protocol; their size is reported.
    Binary(usize),
    Ping(Vec<u8>),
    Close,
}

/// Reads client frames. Cancel-safe: every await is one `read_buf`, and what
/// was read stays in `buf`, so it can sit in a `select!` with other work.
pub struct Reader {
    buf: Vec<u8>,
    /// A fragmented message being assembled (opcode and data).
    partial: Option<(u8, Vec<u8>)>,
    max_message: usize,
}

struct Frame {
    fin: bool,
    opcode: u8,
    payload: Vec<u8>,
}

impl Reader {
    pub fn new(max_message: usize) -> Self {
        Reader {
            buf: Vec::new(),
            partial: None,
            max_message,
        }
    }

    pub async fn next<S: AsyncRead + Unpin>(&mut self, io: &mut S) -> Result<Message, SioError> {
        loop {
            let frame = self.frame(io).await?;
            match frame.opcode {
                0x8 => return Ok(Message::Close),
                0x9 => return Ok(Message::Ping(frame.payload)),
                0xA => continue,
                0x0 => {
                    let (opcode, mut data) = self
                        .partial
                        .take()
                        .ok_or(SioError::Protocol("stray continuation"))?;
                    if data.len() + frame.payload.len() > self.max_message {
                        return Err(SioError::TooLarge(
                            (data.len() + frame.payload.len()) as u64,
                        ));
                    }
                    data.extend_from_slice(&frame.payload);
                    if frame.fin {
                        return message(opcode, data);
                    }
                    self.partial = Some((opcode, data));
                }
                0x1 | 0x2 if self.partial.is_some() => {
                    return Err(SioError::Protocol("new message inside a fragmented one"));
                }
                0x1 | 0x2 if !frame.fin => self.partial = Some((frame.opcode, frame.payload)),
                0x1 | 0x2 => return message(frame.opcode, frame.payload),
                _ => return Err(SioError::Protocol("unknown opcode")),
            }
        }
    }

    async fn frame<S: AsyncRead + Unpin>(&mut self, io: &mut S) -> Result<Frame, SioError> {
        loop {
            if let Some(frame) = self.parse()? {
                if self.buf.is_empty() && self.buf.capacity() > KEEP_CAPACITY {
                    self.buf = Vec::new();
                }
                return Ok(frame);
            }
            let want = self.needed().saturating_sub(self.buf.len()).max(MIN_READ);
            self.buf.reserve(want);
            if io.read_buf(&mut self.buf).await? == 0 {
                return Err(SioError::Eof);
            }
        }
    }

    /// Bytes the frame at the front of `buf` needs in all (a guess while
    /// its header is incomplete).
    fn needed(&self) -> usize {
        match header(&self.buf) {
            Ok(Some((head, len))) => head + usize::try_from(len).unwrap_or(usize::MAX),
            _ => 14,
        }
    }

    fn parse(&mut self) -> Result<Option<Frame>, SioError> {
        let Some((head, len)) = header(&self.buf)? else {
            return Ok(None);
        };
        let b0 = self.buf[0];
        let opcode = b0 & 0x0F;
        if opcode >= 0x8 && (len > 125 || b0 & 0x80 == 0) {
            return Err(SioError::Protocol("bad control frame"));
        }
        if len > self.max_message as u64 {
            return Err(SioError::TooLarge(len));
        }
        let len = len as usize;
        if self.buf.len() < head + len {
            return Ok(None);
        }
        let mask: [u8; 4] = self.buf[head - 4..head].try_into().unwrap_or([0; 4]);
        let mut payload: Vec<u8> = self.buf[head..head + len].to_vec();
        for (i, byte) in payload.iter_mut().enumerate() {
            *byte ^= mask[i % 4];
        }
        self.buf.drain(..head + len);
        Ok(Some(Frame {
            fin: b0 & 0x80 != 0,
            opcode,
            payload,
        }))
    }
}

/// The header length (mask included) and payload length of the frame at
/// the front of `buf`, once its header is complete.
fn header(buf: &[u8]) -> Result<Option<(usize, u64)>, SioError> {
    if buf.len() < 2 {
        return Ok(None);
    }
    if buf[0] & 0x70 != 0 {
        return Err(SioError::Protocol("reserved bits set"));
    }
    if buf[1] & 0x80 == 0 {
        return Err(SioError::Protocol("client frames must be masked"));
    }
    let (ext, len) = match buf[1] & 0x7F {
        126 => (2, None),
        127 => (8, None),
        n => (0, Some(u64::from(n))),
    };
    let head = 2 + ext + 4;
    if buf.len() < head {
        return Ok(None);
    }
    let len = match len {
        Some(len) => len,
        None if ext == 2 => u64::from(u16::from_be_bytes([buf[2], buf[3]])),
        None => u64::from_be_bytes(buf[2..10].try_into().unwrap_or([0xFF; 8])),
    };
    // RFC 6455 §5.2: the most significant bit of a 64-bit length must be 0.
    if len > i64::MAX as u64 {
        return Err(SioError::Protocol("frame length out of range"));
    }
    Ok(Some((head, len)))
}

/// The payload of a close frame: the status code and a reason cut to fit
/// the 125 bytes of a control frame (at a character boundary).
pub fn close_payload(code: u16, reason: &str) -> Vec<u8> {
    let mut end = reason.len().min(123);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    let mut payload = code.to_be_bytes().to_vec();
    payload.extend_from_slice(&reason.as_bytes()[..end]);
    payload
}

fn message(opcode: u8, data: Vec<u8>) -> Result<Message, SioError> {
    if opcode == 0x2 {
        return Ok(Message::Binary(data.len()));
    }
    String::from_utf8(data)
        .map(Message::Text)
        .map_err(|_| SioError::InvalidText)
}

/// Writes one unmasked frame, header and payload in one buffer of their size.
pub async fn write<S: AsyncWrite + Unpin>(
    io: &mut S,
    opcode: u8,
    payload: &[u8],
) -> std::io::Result<()> {
    let len = payload.len();
    let mut frame = Vec::with_capacity(len + 10);
    frame.push(0x80 | opcode);
    if len < 126 {
        frame.push(len as u8);
    } else if let Ok(len) = u16::try_from(len) {
        frame.push(126);
        frame.extend_from_slice(&len.to_be_bytes());
    } else {
        frame.push(127);
        frame.extend_from_slice(&(len as u64).to_be_bytes());
    }
    frame.extend_from_slice(payload);
    io.write_all(&frame).await?;
    io.flush().await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn masked(opcode: u8, fin: bool, payload: &[u8]) -> Vec<u8> {
        let mask = [1u8, 2, 3, 4];
        let mut out = vec![(if fin { 0x80 } else { 0 }) | opcode];
        if payload.len() < 126 {
            out.push(0x80 | payload.len() as u8);
        } else {
            out.push(0x80 | 126);
            out.extend_from_slice(&(payload.len() as u16).to_be_bytes());
        }
        out.extend_from_slice(&mask);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        out
    }

    #[test]
    fn accept_key_of_the_rfc() {
        assert_eq!(
            accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[tokio::test]
    async fn reads_fragments_controls_and_refuses_bad_frames() {
        let long = "x".repeat(300);
        let mut bytes = masked(0x1, false, b"he");
        bytes.extend(masked(0x9, true, b"p"));
        bytes.extend(masked(0x0, true, b"llo"));
        bytes.extend(masked(0x1, true, long.as_bytes()));
        bytes.extend(masked(0x2, true, b"bin"));
        bytes.extend(masked(0x8, true, b""));
        let mut io = &bytes[..];
        let mut reader = Reader::new(1000);
        assert_eq!(
            reader.next(&mut io).await.unwrap(),
            Message::Ping(b"p".to_vec())
        );
        assert_eq!(
            reader.next(&mut io).await.unwrap(),
            Message::Text("hello".into())
        );
        assert_eq!(reader.next(&mut io).await.unwrap(), Message::Text(long));
        assert_eq!(reader.next(&mut io).await.unwrap(), Message::Binary(3));
        assert_eq!(reader.next(&mut io).await.unwrap(), Message::Close);
        assert!(matches!(reader.next(&mut io).await, Err(SioError::Eof)));

        let big = masked(0x1, true, &[b'a'; 200]);
        let mut reader = Reader::new(100);
        assert!(matches!(
            reader.next(&mut &big[..]).await,
            Err(SioError::TooLarge(200))
        ));

        let mut unmasked = masked(0x1, true, b"hi");
        unmasked[1] &= 0x7F;
        let mut reader = Reader::new(100);
        assert!(matches!(
            reader.next(&mut &unmasked[..]).await,
            Err(SioError::Protocol(_))
        ));

        let bad_utf8 = masked(0x1, true, &[0xFF, 0xFE]);
        assert!(matches!(
            Reader::new(100).next(&mut &bad_utf8[..]).await,
            Err(SioError::InvalidText)
        ));
    }

    #[tokio::test]
    async fn huge_lengths_are_refused_from_the_header_alone() {
        // 2^63: the top bit of a 64-bit length must be 0 (RFC 6455 §5.2).
        let mut huge = vec![0x81, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4];
        let err = Reader::new(100).next(&mut &huge[..]).await.unwrap_err();
        assert!(matches!(err, SioError::Protocol(_)), "{err}");
        assert_eq!(err.close_code(), Some(1002));
        // 2^63 - 1: a valid length, refused as too large before any payload.
        huge[2] = 0x7F;
        huge[3..10].fill(0xFF);
        let err = Reader::new(100).next(&mut &huge[..]).await.unwrap_err();
        assert!(
            matches!(err, SioError::TooLarge(n) if n == i64::MAX as u64),
            "{err}"
        );
        assert_eq!(err.close_code(), Some(1009));
    }

    #[test]
    fn close_payloads_carry_the_code_and_fit_a_control_frame() {
        assert_eq!(close_payload(1008, "bad"), [0x03, 0xF0, b'b', b'a', b'd']);
        let long = "é".repeat(100);
        let payload = close_payload(1002, &long);
        assert!(payload.len() <= 125);
        assert!(std::str::from_utf8(&payload[2..]).is_ok());
    }
}
