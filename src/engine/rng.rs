//! Per-client RNG streams for schedules: the crate's one SplitMix64
//! ([`crate::rng`]), derived per client and per purpose from the run seed.

use rand::RngCore;

pub use crate::rng::SplitMix64;

/// Stream identifiers, so that a client's chat schedule does not shift when,
/// say, its reconnect draws change.
#[derive(Debug, Clone, Copy)]
pub enum Stream {
    Rooms = 1,
    Chat = 2,
    Life = 3,
    Content = 4,
}

impl SplitMix64 {
    /// The generator for one client and one purpose, derived from the run seed.
    pub fn for_client(run_seed: u64, client: u64, stream: Stream) -> Self {
        let mut s = Self::new(run_seed ^ 0x9E37_79B9_7F4A_7C15u64.wrapping_mul(client + 1));
        let a = s.next_u64();
        Self::new(a ^ (stream as u64).wrapping_mul(0xD1B5_4A32_D192_ED03))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_stream_and_streams_differ() {
        let a: Vec<u64> = (0..4)
            .map(|_| SplitMix64::for_client(7, 3, Stream::Chat).next_u64())
            .collect();
        assert!(a.windows(2).all(|w| w[0] == w[1]));
        let mut c = SplitMix64::for_client(7, 3, Stream::Chat);
        let mut l = SplitMix64::for_client(7, 3, Stream::Life);
        let mut d = SplitMix64::for_client(7, 4, Stream::Chat);
        let (x, y, z) = (c.next_u64(), l.next_u64(), d.next_u64());
        assert!(x != y && x != z);
    }
}
