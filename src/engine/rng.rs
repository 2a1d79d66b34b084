//! A tiny deterministic RNG (SplitMix64) for per-client schedules.
//!
//! Why not `StdRng`: it holds ~300 bytes of state, and every simulated client
//! keeps a couple of generators alive; SplitMix64 holds 8 bytes, is portable
//! across `rand` versions (so a seed means the same schedule forever), and
//! passes BigCrush, which is plenty for arrival times and room picks.

use rand::RngCore;

#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

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
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The generator for one client and one purpose, derived from the run seed.
    pub fn for_client(run_seed: u64, client: u64, stream: Stream) -> Self {
        let mut s = Self(run_seed ^ 0x9E37_79B9_7F4A_7C15u64.wrapping_mul(client + 1));
        let a = s.next_u64();
        Self(a ^ (stream as u64).wrapping_mul(0xD1B5_4A32_D192_ED03))
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in [0, n).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            ((self.next_u64() as u128 * n as u128) >> 64) as u64
        }
    }

    /// Exponentially distributed with the given mean.
    pub fn exp(&mut self, mean: f64) -> f64 {
        -mean * (1.0 - self.unit()).ln()
    }
}

impl RngCore for SplitMix64 {
    fn next_u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for chunk in dest.chunks_mut(8) {
            let v = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }

    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand::Error> {
        self.fill_bytes(dest);
        Ok(())
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
        let mut r = SplitMix64::new(1);
        let mean = (0..20_000).map(|_| r.exp(2.0)).sum::<f64>() / 20_000.0;
        assert!((mean - 2.0).abs() < 0.1, "{mean}");
    }
}
