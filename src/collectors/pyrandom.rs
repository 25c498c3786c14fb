//! CPython's `random.Random` (the Mersenne Twister MT19937), as far as choosing collector IDs
//! needs it: seeding with an integer and `randint(a, b)`.
//!
//! Workers racing to create the collector accounts of one debtor must pick the same IDs, so
//! the sequence is seeded with the debtor ID; and since Python workers of the reference may
//! share the deployment, the sequence is CPython's, bit for bit (see
//! `docs/turns.md#collector-accounts`).

/// MT19937's state size.
const N: usize = 624;
/// MT19937's shift size.
const M: usize = 397;
const MATRIX_A: u32 = 0x9908_b0df;
const UPPER_MASK: u32 = 0x8000_0000;
const LOWER_MASK: u32 = 0x7fff_ffff;

/// A CPython-compatible random number generator.
#[derive(Clone)]
pub struct PyRandom {
    state: [u32; N],
    index: usize,
}

impl PyRandom {
    /// `random.Random(seed)` for an integer `seed`: the state is initialized from the 32-bit
    /// words of `abs(seed)`, least significant first (`[0]` for zero).
    pub fn new(seed: i128) -> Self {
        let mut magnitude = seed.unsigned_abs();
        let mut key = Vec::with_capacity(4);
        while magnitude > 0 {
            key.push((magnitude & 0xffff_ffff) as u32);
            magnitude >>= 32;
        }
        if key.is_empty() {
            key.push(0);
        }
        let mut r = Self {
            state: [0; N],
            index: N,
        };
        r.init_by_array(&key);
        r
    }

    fn init_genrand(&mut self, seed: u32) {
        self.state[0] = seed;
        for i in 1..N {
            let prev = self.state[i - 1];
            self.state[i] = 1_812_433_253u32
                .wrapping_mul(prev ^ (prev >> 30))
                .wrapping_add(i as u32);
        }
        self.index = N;
    }

    fn init_by_array(&mut self, key: &[u32]) {
        self.init_genrand(19_650_218);
        let (mut i, mut j) = (1usize, 0usize);
        for _ in 0..N.max(key.len()) {
            let prev = self.state[i - 1];
            self.state[i] = (self.state[i] ^ (prev ^ (prev >> 30)).wrapping_mul(1_664_525))
                .wrapping_add(key[j])
                .wrapping_add(j as u32);
            i += 1;
            j += 1;
            if i >= N {
                self.state[0] = self.state[N - 1];
                i = 1;
            }
            if j >= key.len() {
                j = 0;
            }
        }
        for _ in 0..N - 1 {
            let prev = self.state[i - 1];
            self.state[i] = (self.state[i] ^ (prev ^ (prev >> 30)).wrapping_mul(1_566_083_941))
                .wrapping_sub(i as u32);
            i += 1;
            if i >= N {
                self.state[0] = self.state[N - 1];
                i = 1;
            }
        }
        self.state[0] = 0x8000_0000;
    }

    /// The next 32 random bits (`genrand_uint32`).
    pub fn next_u32(&mut self) -> u32 {
        if self.index >= N {
            self.twist();
        }
        let mut y = self.state[self.index];
        self.index += 1;
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c_5680;
        y ^= (y << 15) & 0xefc6_0000;
        y ^ (y >> 18)
    }

    fn twist(&mut self) {
        let mag = |y: u32| if y & 1 == 0 { 0 } else { MATRIX_A };
        for k in 0..N {
            let y = (self.state[k] & UPPER_MASK) | (self.state[(k + 1) % N] & LOWER_MASK);
            self.state[k] = self.state[(k + M) % N] ^ (y >> 1) ^ mag(y);
        }
        self.index = 0;
    }

    /// `getrandbits(k)` for `1 ≤ k ≤ 128`: 32-bit words, least significant first, the last
    /// one shifted right to keep its `k` remaining bits.
    pub fn getrandbits(&mut self, k: u32) -> u128 {
        debug_assert!((1..=128).contains(&k));
        let mut result = 0u128;
        let mut shift = 0;
        let mut remaining = k;
        while remaining > 0 {
            let mut word = self.next_u32();
            if remaining < 32 {
                word >>= 32 - remaining;
            }
            result |= u128::from(word) << shift;
            shift += 32;
            remaining = remaining.saturating_sub(32);
        }
        result
    }

    /// `randint(a, b)`: a number in `[a, b]`, drawn as CPython's `randrange` does (rejection
    /// sampling of `bit_length(b − a + 1)` random bits).
    ///
    /// # Panics
    ///
    /// When `a > b` (an empty range; CPython raises `ValueError`).
    pub fn randint(&mut self, a: i64, b: i64) -> i64 {
        assert!(a <= b, "empty range for randint({a}, {b})");
        let width = (i128::from(b) - i128::from(a) + 1) as u128;
        let k = 128 - width.leading_zeros();
        loop {
            let r = self.getrandbits(k);
            if r < width {
                return (i128::from(a) + r as i128) as i64;
            }
        }
    }
}

impl std::fmt::Debug for PyRandom {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PyRandom")
            .field("index", &self.index)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 0x0000_0100_0000_0000;
    const MAX: i64 = 0x0000_0100_0000_07ff;

    #[test]
    fn matches_cpython_random_for_collector_ids() {
        // CPython: r = random.Random(666); [hex(r.randint(0x10000000000, 0x100000007ff))
        // for _ in range(3)] == ['0x1000000074c', '0x10000000608', '0x100000006f3'].
        let mut r = PyRandom::new(666);
        let ids: Vec<i64> = (0..3).map(|_| r.randint(MIN, MAX)).collect();
        assert_eq!(ids, [0x1000000074c, 0x10000000608, 0x100000006f3]);
        // random.Random(-1) seeds like random.Random(1).
        assert_eq!(PyRandom::new(-1).randint(MIN, MAX), 0x10000000226);
    }

    #[test]
    fn matches_cpython_mt19937_outputs() {
        // CPython: random.Random(0).getrandbits(32) == 3626764237, and
        // random.Random(42).getrandbits(32) == 2746317213.
        assert_eq!(PyRandom::new(0).next_u32(), 3_626_764_237);
        assert_eq!(PyRandom::new(42).next_u32(), 2_746_317_213);
        // Seeds wider than 64 bits, and 64-bit ranges (two words per draw):
        // r = random.Random(2**70 + 5); r.randint(-2**63, 2**63 - 1) == -2030964297105920853;
        // then r.randint(1, 10**18) == 424745957292089739.
        let mut r = PyRandom::new((1i128 << 70) + 5);
        assert_eq!(r.randint(i64::MIN, i64::MAX), -2_030_964_297_105_920_853);
        assert_eq!(
            r.randint(1, 1_000_000_000_000_000_000),
            424_745_957_292_089_739
        );
    }

    #[test]
    fn randint_stays_in_range_for_wide_and_negative_ranges() {
        let mut r = PyRandom::new(i128::from(i64::MIN));
        for _ in 0..1000 {
            let v = r.randint(-5, 5);
            assert!((-5..=5).contains(&v));
        }
        assert_eq!(r.randint(7, 7), 7);
    }
}
