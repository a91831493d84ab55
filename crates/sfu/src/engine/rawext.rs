//! Raw capture of RTP header-extension values in str0m: a user extension
//! per id that keeps the bytes, for ids whose meaning a send transport
//! learns after its `Rtc` was built (see `rtpmap`).

use std::sync::Arc;
use std::sync::atomic::{AtomicU16, Ordering};

use str0m::rtp::{Extension, ExtensionSerializer, ExtensionValues};

/// Ids captured raw: the one-byte form's (RFC 8285 §4.2), all a browser
/// with mediasoup-client numbers with.
pub(super) const RAW_MAX_ID: u8 = 14;
/// The longest value the one-byte form carries.
const RAW_MAX_LEN: usize = 16;

/// A str0m user extension that keeps the raw value of extension id `ID`
/// (each id its own type: str0m keeps one user value per type) when some
/// producer's value is read from that id (bit `ID` of `wanted`).
#[derive(Debug)]
pub(super) struct RawCapture<const ID: u8> {
    pub(super) wanted: Arc<AtomicU16>,
}

/// The raw value of extension id `ID` in a packet.
#[derive(Debug, Clone, Copy)]
struct RawValue<const ID: u8> {
    len: u8,
    bytes: [u8; RAW_MAX_LEN],
}

impl<const ID: u8> RawValue<ID> {
    fn bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len).min(RAW_MAX_LEN)]
    }
}

impl<const ID: u8> ExtensionSerializer for RawCapture<ID> {
    /// Send transports never write RTP.
    fn write_to(&self, _buf: &mut [u8], _ev: &ExtensionValues) -> usize {
        0
    }

    fn parse_value(&self, buf: &[u8], ev: &mut ExtensionValues) -> bool {
        if self.wanted.load(Ordering::Relaxed) & (1 << ID) == 0 {
            return true;
        }
        let Ok(len) = u8::try_from(buf.len()) else {
            return false;
        };
        if buf.len() > RAW_MAX_LEN {
            return false;
        }
        let mut bytes = [0; RAW_MAX_LEN];
        bytes[..buf.len()].copy_from_slice(buf);
        ev.user_values.set(RawValue::<ID> { len, bytes });
        true
    }

    fn is_video(&self) -> bool {
        true
    }

    fn is_audio(&self) -> bool {
        true
    }
}

/// The capturing extension for id `id` and the value it captured, one
/// arm per id (the id is part of the type).
macro_rules! raw_ids {
    ($($id:literal)*) => {
        pub(super) fn raw_extension(id: u8, wanted: &Arc<AtomicU16>) -> Option<Extension> {
            match id {
                $($id => Some(Extension::with_serializer(
                    concat!("urn:x-vtp:raw-extension:", $id),
                    RawCapture::<$id> { wanted: wanted.clone() },
                )),)*
                _ => None,
            }
        }

        pub(super) fn raw_value(ev: &ExtensionValues, id: u8) -> Option<&[u8]> {
            match id {
                $($id => ev.user_values.get::<RawValue<$id>>().map(RawValue::bytes),)*
                _ => None,
            }
        }
    };
}
raw_ids!(1 2 3 4 5 6 7 8 9 10 11 12 13 14);
