//! Sharding: which worker is responsible for a creditor, a debtor or a locator.
//!
//! A sharding key is the first 32 bits of the MD5 digest of the 8-byte big-endian encodings
//! of one or more i64 values, or of a string's UTF-8 bytes (operations.md §4.4). A worker's
//! realm is a bit prefix of that key, given by its queue's binding key
//! (`PROTOCOL_BROKER_QUEUE_ROUTING_KEY`, e.g. `0.1.#`).

use std::fmt;

/// The most routing-key bits a realm may have (the reference's regular expression).
const MAX_ROUTING_KEY_BITS: usize = 20;

/// The 16 bytes of the MD5 digest of the big-endian encodings of `ids`.
fn digest_ids(ids: &[i64]) -> [u8; 16] {
    let mut ctx = md5::Context::new();
    for id in ids {
        ctx.consume(id.to_be_bytes());
    }
    ctx.finalize().0
}

/// The 32-bit sharding key of one or more i64 values.
pub fn sharding_key_of_ids(ids: &[i64]) -> u32 {
    let d = digest_ids(ids);
    u32::from_be_bytes([d[0], d[1], d[2], d[3]])
}

/// The 32-bit sharding key of a string (a debtor info locator or an IRI).
pub fn sharding_key_of_str(s: &str) -> u32 {
    let d = md5::compute(s.as_bytes()).0;
    u32::from_be_bytes([d[0], d[1], d[2], d[3]])
}

/// The signed 16-bit hash stored in `*_hash` columns: the top 16 bits of the sharding key
/// (solver.md §2.4), e.g. `calc_hash(123) == -1008`.
pub fn calc_hash(id: i64) -> i16 {
    (sharding_key_of_ids(&[id]) >> 16) as u16 as i16
}

/// A worker's shard: the set of sharding keys that start with the realm's bits.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ShardingRealm {
    /// The top `n` bits set, for an `n`-bit realm.
    pub realm_mask: u32,
    /// The realm's bits, in the top `n` positions.
    pub realm: u32,
    /// The mask of the parent realm (one bit shorter).
    pub parent_realm_mask: u32,
    /// The bits of the parent realm.
    pub parent_realm: u32,
}

impl ShardingRealm {
    /// Parses a binding key: up to 20 groups of `0.` or `1.`, then `#`.
    pub fn parse(routing_key: &str) -> Result<Self, String> {
        let bits_part = routing_key.strip_suffix('#').ok_or("invalid routing key")?;
        let groups: Vec<&str> = bits_part.split_terminator('.').collect();
        let well_formed = bits_part.is_empty()
            || (bits_part.ends_with('.')
                && groups.iter().all(|g| *g == "0" || *g == "1")
                && groups.len() <= MAX_ROUTING_KEY_BITS);
        if !well_formed {
            return Err("invalid routing key".into());
        }
        let n = groups.len() as u32;
        let realm_mask = if n == 0 { 0 } else { u32::MAX << (32 - n) };
        let realm = groups
            .iter()
            .enumerate()
            .filter(|(_, g)| **g == "1")
            .fold(0u32, |acc, (i, _)| acc | (1 << (31 - i)));
        let parent_realm_mask = realm_mask & (realm_mask << 1);
        Ok(Self {
            realm_mask,
            realm,
            parent_realm_mask,
            parent_realm: realm & parent_realm_mask,
        })
    }

    /// How many bits the realm has.
    pub fn bits(&self) -> u32 {
        self.realm_mask.count_ones()
    }

    /// Whether this shard is responsible for a sharding key.
    pub fn contains_key(&self, key: u32) -> bool {
        key & self.realm_mask == self.realm
    }

    /// Whether the parent shard (before the last split) was responsible for a sharding key.
    pub fn parent_contains_key(&self, key: u32) -> bool {
        key & self.parent_realm_mask == self.parent_realm
    }

    /// Whether this shard is responsible for the given i64 values.
    pub fn matches_ids(&self, ids: &[i64]) -> bool {
        self.contains_key(sharding_key_of_ids(ids))
    }

    /// Whether this shard is responsible for the given string.
    pub fn matches_str(&self, s: &str) -> bool {
        self.contains_key(sharding_key_of_str(s))
    }

    /// The 16-bit (hash mask, hash prefix) pair for SQL filters on `*_hash` columns: a row
    /// belongs to the shard iff `hash & mask = prefix`.
    pub fn hash_filter(&self) -> (i16, i16) {
        (
            (self.realm_mask >> 16) as u16 as i16,
            (self.realm >> 16) as u16 as i16,
        )
    }
}

impl fmt::Debug for ShardingRealm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ShardingRealm({:#010x}/{:#010x})",
            self.realm, self.realm_mask
        )
    }
}

/// The `to_trade` routing key of a sharding key: its 24 highest bits as `0`/`1`, dotted.
pub fn bin_routing_key(key: u32) -> String {
    let bits: Vec<&str> = (0..24)
        .map(|i| if key & (1 << (31 - i)) != 0 { "1" } else { "0" })
        .collect();
    bits.join(".")
}

/// The `creditors_out` routing key of a debtor ID: its 8 big-endian bytes as lowercase hex,
/// dotted (`00.00.00.00.00.00.00.0a` for 10).
pub fn hex_routing_key(debtor_id: i64) -> String {
    let parts: Vec<String> = debtor_id
        .to_be_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    parts.join(".")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routing_keys_match_the_reference_examples() {
        assert_eq!(
            bin_routing_key(sharding_key_of_ids(&[123])),
            "1.1.1.1.1.1.0.0.0.0.0.1.0.0.0.0.0.1.1.0.0.0.1.1"
        );
        assert_eq!(
            bin_routing_key(sharding_key_of_ids(&[-123])),
            "1.1.0.0.0.0.1.1.1.1.1.1.1.1.1.0.1.0.1.0.1.1.1.1"
        );
        assert_eq!(
            bin_routing_key(sharding_key_of_ids(&[123, 456])),
            "0.0.0.0.1.0.0.0.0.1.0.0.0.1.0.0.0.0.1.1.0.1.0.0"
        );
        assert_eq!(
            bin_routing_key(sharding_key_of_str("https://example.com/iri")),
            "0.1.0.0.0.0.1.1.1.1.0.1.0.1.0.0.1.1.0.0.0.1.0.1"
        );
        assert_eq!(hex_routing_key(10), "00.00.00.00.00.00.00.0a");
        assert_eq!(hex_routing_key(2), "00.00.00.00.00.00.00.02");
        assert_eq!(hex_routing_key(-2), "ff.ff.ff.ff.ff.ff.ff.fe");
    }

    #[test]
    fn calc_hash_matches_the_reference() {
        assert_eq!(calc_hash(123), -1008);
    }

    #[test]
    fn realm_parsing() {
        let all = ShardingRealm::parse("#").unwrap();
        assert_eq!((all.realm_mask, all.realm, all.bits()), (0, 0, 0));
        let r = ShardingRealm::parse("1.0.#").unwrap();
        assert_eq!(r.realm_mask, 0xc000_0000);
        assert_eq!(r.realm, 0x8000_0000);
        assert_eq!(r.parent_realm_mask, 0x8000_0000);
        assert_eq!(r.parent_realm, 0x8000_0000);
        assert!(ShardingRealm::parse(&"1.".repeat(20)).is_err());
        assert!(ShardingRealm::parse(&format!("{}#", "1.".repeat(20))).is_ok());
        assert!(ShardingRealm::parse(&format!("{}#", "1.".repeat(21))).is_err());
        for bad in [
            "", "0.1", "*", "0.1.*", "2.#", "0..#", ".#", "0.1#", "# ", "01.#",
        ] {
            assert!(
                ShardingRealm::parse(bad).is_err(),
                "{bad:?} should be rejected"
            );
        }
    }

    #[test]
    fn realm_matching_follows_the_reference_examples() {
        let r = ShardingRealm::parse("1.#").unwrap();
        assert!(r.matches_ids(&[1]));
        assert!(!r.matches_ids(&[3]));
        assert!(r.parent_contains_key(sharding_key_of_ids(&[3])));
        assert!(r.matches_str("65"));
        assert!(!r.matches_str("59"));
        let zero = ShardingRealm::parse("0.#").unwrap();
        assert!(zero.matches_str("https://example.com/666"));
        assert!(!r.matches_str("https://example.com/666"));
    }
}
