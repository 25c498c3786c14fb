//! Numeric primitives shared by pricing, matching and aggregation.
//!
//! Prices are single precision on purpose: the reference keeps them as C++ `float`, and workers
//! and the solver must agree on which bids match a currency's price (docs/turns.md#numeric-rules).

/// The largest magnitude an amount may have: `2^63 - 1` (`i64::MIN` is never produced).
pub const MAX_AMOUNT: i64 = i64::MAX;

/// The tolerance of [`compare_prices`], as the reference's `EPSILON = 1e-5f`.
const PRICE_EPSILON: f32 = 1e-5;

/// Tells whether two prices are equal within a relative tolerance of about 1e-5.
///
/// Any zero divisor, NaN or infinity makes the comparison false; negative prices compare like
/// positive ones.
pub fn compare_prices(p1: f32, p2: f32) -> bool {
    if p2 == 0.0 {
        return false;
    }
    let ratio = p1 / p2;
    (1.0 - f64::from(ratio)).abs() < f64::from(PRICE_EPSILON)
}

/// Converts a database exchange rate (double precision) to the single precision used in pricing.
///
/// A missing rate becomes NaN; out-of-range values become infinities.
pub fn rate_to_f32(rate: Option<f64>) -> f32 {
    rate.map_or(f32::NAN, |r| r as f32)
}

/// Converts an amount in base units to whole tokens of a currency with the given price.
///
/// Rounds half away from zero and saturates at `2^63 - 1`; a non-positive, NaN or infinite
/// price, or a quotient that is not positive, gives 0 (the reference's `calc_amt`).
pub fn calc_amt(amount: f64, price: f32) -> i64 {
    let price = f64::from(price);
    if price.is_nan() || price <= 0.0 {
        return 0;
    }
    let tokens = amount / price;
    if tokens.is_nan() || tokens <= 0.0 {
        0
    } else if tokens < 9_223_372_036_854_775_808.0 {
        tokens.round() as i64
    } else {
        MAX_AMOUNT
    }
}

/// Returns the shard hash of an ID: the first two bytes of the MD5 digest of its 8-byte
/// big-endian encoding, read as a big-endian signed 16-bit integer
/// (docs/messages.md#hash-columns). The same function the workers shard by.
pub use crate::sharding::i16_hash as calc_hash;

/// Mixes a 64-bit value into a well-distributed 64-bit value (the SplitMix64 finaliser).
///
/// Used wherever the solver needs a reproducible "random" choice that depends only on its input.
pub fn mix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A fast, deterministic hasher for integer keys (the Fx algorithm used by rustc).
///
/// The solver's hash maps are keyed by IDs chosen by the database, not by an attacker who
/// could force collisions, so a non-randomised hasher is fine and keeps the output
/// independent of process state.
#[derive(Clone, Copy, Default)]
pub struct FxHasher {
    hash: u64,
}

const FX_SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl std::hash::Hasher for FxHasher {
    fn finish(&self) -> u64 {
        self.hash
    }

    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut buf = [0u8; 8];
            buf[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(buf));
        }
    }

    fn write_u64(&mut self, word: u64) {
        self.hash = (self.hash.rotate_left(5) ^ word).wrapping_mul(FX_SEED);
    }

    fn write_i64(&mut self, word: i64) {
        self.write_u64(word as u64);
    }

    fn write_u32(&mut self, word: u32) {
        self.write_u64(u64::from(word));
    }
}

/// Builds [`FxHasher`]s for `HashMap`/`HashSet`.
pub type FxBuild = std::hash::BuildHasherDefault<FxHasher>;

/// A `HashMap` with the [`FxHasher`].
pub type FxHashMap<K, V> = std::collections::HashMap<K, V, FxBuild>;

/// A `HashSet` with the [`FxHasher`].
pub type FxHashSet<K> = std::collections::HashSet<K, FxBuild>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calc_hash_matches_reference_vectors() {
        let cases = [
            (0, 32234),
            (1, -1446),
            (2, -6539),
            (3, 22891),
            (-1, -15669),
            (123, -1008),
            (997, -10027),
            (998, -16868),
            (999, 3057),
            (0x0000_0100_0000_0000, -10672),
            (i64::MIN, 21568),
            (i64::MAX, -17057),
        ];
        for (n, expected) in cases {
            assert_eq!(calc_hash(n), expected, "calc_hash({n})");
        }
    }

    /// Reference case T13 (`test_calc_amt`).
    #[test]
    fn calc_amt_matches_reference() {
        assert_eq!(calc_amt(1000.0, 10.0), 100);
        for price in [0.0, -0.0, -1.0, f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
            assert_eq!(calc_amt(1000.0, price), 0, "price {price}");
        }
        for amount in [f64::NAN, f64::NEG_INFINITY, -1.0, 1e-200, 0.0] {
            assert_eq!(calc_amt(amount, 10.0), 0, "amount {amount}");
        }
        for (amount, price) in [
            (f64::INFINITY, 10.0),
            (f64::INFINITY, 1e30),
            (f64::INFINITY, 1e-30),
            (1e200, 10.0),
        ] {
            assert_eq!(calc_amt(amount, price), MAX_AMOUNT);
        }
        for exact in [0x7fff_ffff_fffe_0000_i64, 0x7fff_ffff_ffff_0000] {
            assert_eq!(calc_amt(exact as f64, 1.0), exact);
        }
        for n in (0..100_000_i128).step_by(0xff) {
            let amount = (0x7fff_ffff_ffff_ff00_i128 + n) as f64;
            assert_eq!(calc_amt(amount, 1.0), MAX_AMOUNT);
        }
    }

    /// Reference case T01 (`test_compare_prices`).
    #[test]
    fn compare_prices_matches_reference() {
        let equal = [
            (1.0, 1.0),
            (-1.0, -1.0),
            (1.0, 1.000001),
            (-1.0, -1.000001),
            (1e-25, 1.000001e-25),
            (1e25, 1.000001e25),
            (-1e-25, -1.000001e-25),
            (-1e25, -1.000001e25),
        ];
        for (a, b) in equal {
            assert!(compare_prices(a, b), "{a} ~ {b}");
        }
        let inf = f32::INFINITY;
        let different = [
            (0.0, 1e-6),
            (0.0, 0.0),
            (1.0, 0.0),
            (0.0, 1.0),
            (-1.0, 0.0),
            (0.0, -1.0),
            (-1.0, 1.0),
            (1.0, -1.0),
            (1.0, 1.000011),
            (1e25, 1.000011e25),
            (1e-25, 1.000011e-25),
            (-1e25, -1.000011e25),
            (inf, inf),
            (-inf, -inf),
            (inf, 1.0),
            (1.0, inf),
            (f32::NAN, 1.0),
            (1.0, f32::NAN),
            (f32::NAN, f32::NAN),
        ];
        for (a, b) in different {
            assert!(!compare_prices(a, b), "{a} !~ {b}");
        }
    }
}
