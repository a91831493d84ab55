//! SSRC allocation helpers shared by the producer and consumer sides.
//!
//! Negotiation never draws SSRCs from a global random source: callers pass a
//! generator (`&mut dyn FnMut() -> u32`, usually a seeded RNG in the engine
//! and a counter in tests), so results are deterministic and the engine
//! decides how SSRCs are allocated. This module turns one draw into a block
//! of consecutive, non-zero SSRCs that does not wrap around.

/// A source of SSRCs; any `FnMut() -> u32` closure is one.
pub type SsrcGenerator<'a> = dyn FnMut() -> u32 + 'a;

/// First of `count` consecutive non-zero SSRCs, from one generator draw.
pub(crate) fn ssrc_base(next_ssrc: &mut SsrcGenerator<'_>, count: usize) -> u32 {
    let count = count.clamp(1, 1 << 16) as u64;
    let raw = u64::from(next_ssrc());
    let max = u64::from(u32::MAX);
    let base = if raw >= 1 && raw + count - 1 <= max {
        raw
    } else {
        1 + raw % (max - count + 1)
    };
    // `base + count - 1 <= u32::MAX` by construction.
    u32::try_from(base).unwrap_or(1)
}

pub(crate) fn ssrc_at(base: u32, index: usize) -> u32 {
    base.wrapping_add(u32::try_from(index).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssrc_blocks_stay_in_range_and_nonzero() {
        for raw in [0u32, 1, 7, u32::MAX - 2, u32::MAX - 1, u32::MAX] {
            let mut g = move || raw;
            let base = ssrc_base(&mut g, 3);
            assert!(base >= 1, "{raw}");
            assert!(u64::from(base) + 2 <= u64::from(u32::MAX), "{raw}");
        }
        let mut g = || 1000;
        assert_eq!(ssrc_base(&mut g, 3), 1000);
        assert_eq!(ssrc_at(1000, 2), 1002);
    }
}
