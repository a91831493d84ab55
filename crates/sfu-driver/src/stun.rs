//! Just enough STUN to route a datagram: is it STUN, and which local ICE
//! ufrag does its USERNAME name (the part before `:`).

const MAGIC_COOKIE: [u8; 4] = [0x21, 0x12, 0xA4, 0x42];
const ATTR_USERNAME: u16 = 0x0006;
const HEADER_LEN: usize = 20;

/// What the routing thread needs to know about a datagram.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Kind<'a> {
    /// STUN with a USERNAME attribute: the local (our) ufrag.
    StunWithUfrag(&'a str),
    /// STUN without USERNAME (responses, indications).
    Stun,
    /// DTLS, RTP, RTCP or anything else.
    Other,
}

/// Classifies one datagram (RFC 7983: STUN starts with 0..=3 and carries
/// the magic cookie).
pub(crate) fn classify(buf: &[u8]) -> Kind<'_> {
    if buf.len() < HEADER_LEN || buf[0] & 0xC0 != 0 || buf[4..8] != MAGIC_COOKIE {
        return Kind::Other;
    }
    let len = usize::from(u16::from_be_bytes([buf[2], buf[3]]));
    let Some(body) = buf.get(HEADER_LEN..HEADER_LEN + len) else {
        return Kind::Stun;
    };
    let mut at = 0;
    while at + 4 <= body.len() {
        let attr = u16::from_be_bytes([body[at], body[at + 1]]);
        let alen = usize::from(u16::from_be_bytes([body[at + 2], body[at + 3]]));
        let Some(value) = body.get(at + 4..at + 4 + alen) else {
            return Kind::Stun;
        };
        if attr == ATTR_USERNAME {
            return match std::str::from_utf8(value) {
                Ok(text) => Kind::StunWithUfrag(text.split(':').next().unwrap_or(text)),
                Err(_) => Kind::Stun,
            };
        }
        at += 4 + alen.div_ceil(4) * 4;
    }
    Kind::Stun
}

/// A STUN Binding request (class request, method Binding: type 0x0001),
/// what an ICE connectivity check is.
pub(crate) fn is_binding_request(buf: &[u8]) -> bool {
    buf.len() >= HEADER_LEN && buf[..2] == [0x00, 0x01] && buf[4..8] == MAGIC_COOKIE
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A STUN message of `msg_type` with a padded USERNAME (and a dummy
    /// attribute before it).
    pub(crate) fn stun(username: &str, msg_type: u16) -> Vec<u8> {
        let mut attrs = vec![0x80, 0x22, 0, 3, b'a', b'b', b'c', 0];
        attrs.extend_from_slice(&ATTR_USERNAME.to_be_bytes());
        attrs.extend_from_slice(&(username.len() as u16).to_be_bytes());
        attrs.extend_from_slice(username.as_bytes());
        while attrs.len() % 4 != 0 {
            attrs.push(0);
        }
        let mut m = msg_type.to_be_bytes().to_vec();
        m.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
        m.extend_from_slice(&MAGIC_COOKIE);
        m.extend_from_slice(&[7; 12]);
        m.extend_from_slice(&attrs);
        m
    }

    #[test]
    fn username_gives_the_local_ufrag() {
        assert_eq!(classify(&stun("abcd:xyz", 1)), Kind::StunWithUfrag("abcd"));
        assert_eq!(
            classify(&stun("nocolon", 1)),
            Kind::StunWithUfrag("nocolon")
        );
    }

    #[test]
    fn other_datagrams_are_not_stun() {
        assert_eq!(classify(&[0x80, 0x60, 0, 0]), Kind::Other);
        assert_eq!(classify(&[22, 254, 253, 0, 0, 0, 0, 0]), Kind::Other);
        let mut rtp = stun("abcd:xyz", 1);
        rtp[0] = 0x80;
        assert_eq!(classify(&rtp), Kind::Other);
        let mut no_cookie = stun("abcd:xyz", 1);
        no_cookie[4] = 0;
        assert_eq!(classify(&no_cookie), Kind::Other);
    }

    #[test]
    fn binding_requests_are_told_from_other_stun() {
        assert!(is_binding_request(&stun("a:b", 0x0001)));
        assert!(!is_binding_request(&stun("a:b", 0x0101)), "a response");
        assert!(!is_binding_request(&stun("a:b", 0x0011)), "an indication");
        assert!(!is_binding_request(&stun("a:b", 0x0001)[..19]));
    }

    #[test]
    fn truncated_stun_has_no_ufrag() {
        let m = stun("abcd:xyz", 1);
        assert_eq!(classify(&m[..26]), Kind::Stun);
        let mut header_only = m[..20].to_vec();
        header_only[2] = 0;
        header_only[3] = 0;
        assert_eq!(classify(&header_only), Kind::Stun);
    }
}
