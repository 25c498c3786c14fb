//! Routing keys and the sharding realm (docs/messages.md#sharding-and-routing-keys).
//!
//! Every sharded value is hashed with MD5: an ID (or several) as the concatenation of 8-byte
//! big-endian two's-complement encodings, a string as its UTF-8 bytes. The first 24 bits of
//! the digest form the `to_trade` routing key; the first 32 bits are tested against the
//! realm derived from `PROTOCOL_BROKER_QUEUE_ROUTING_KEY`, so a queue bound with `0.1.#`
//! receives exactly the messages its realm accepts.

use std::fmt;
use std::str::FromStr;

/// The value a message or a row is sharded by (docs/messages.md#sharding-keys).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShardingKey<'a> {
    /// A creditor, debtor or collector ID.
    Id(i64),
    /// An IRI or debtor-info locator.
    Str(&'a str),
}

impl ShardingKey<'_> {
    /// The MD5 digest the realm and the routing key are computed from.
    pub fn digest(&self) -> [u8; 16] {
        match self {
            ShardingKey::Id(id) => ids_digest(&[*id]),
            ShardingKey::Str(s) => md5::compute(s.as_bytes()).0,
        }
    }

    /// The `to_trade` routing key of this key.
    pub fn routing_key(&self) -> String {
        digest_routing_key(&self.digest())
    }
}

/// MD5 over the 8-byte big-endian encodings of `ids`, one after another.
pub fn ids_digest(ids: &[i64]) -> [u8; 16] {
    let bytes: Vec<u8> = ids.iter().flat_map(|id| id.to_be_bytes()).collect();
    md5::compute(bytes).0
}

/// The `creditors_out` routing key: the 8 bytes of `id` as lowercase hex, dot-separated
/// (`10` → `00.00.00.00.00.00.00.0a`).
pub fn hex_routing_key(id: i64) -> String {
    let parts: Vec<String> = id
        .to_be_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    parts.join(".")
}

/// The `to_trade` routing key of one ID (`123` → `1.1.1.1.1.1.0.0.…`).
pub fn bin_routing_key(id: i64) -> String {
    bin_routing_key_of_ids(&[id])
}

/// The `to_trade` routing key of several IDs hashed together (e.g. a debtor/creditor pair).
pub fn bin_routing_key_of_ids(ids: &[i64]) -> String {
    digest_routing_key(&ids_digest(ids))
}

/// The `to_trade` routing key of a string (an IRI or a debtor-info locator).
pub fn str_routing_key(s: &str) -> String {
    ShardingKey::Str(s).routing_key()
}

/// The 24 highest digest bits, most significant first, each as `0`/`1`, dot-separated.
fn digest_routing_key(digest: &[u8; 16]) -> String {
    let bits: Vec<&str> = digest[..3]
        .iter()
        .flat_map(|byte| {
            (0..8)
                .rev()
                .map(move |i| if byte >> i & 1 == 1 { "1" } else { "0" })
        })
        .collect();
    bits.join(".")
}

/// The signed 16-bit hash stored in solver tables (`collector_hash`, `creditor_hash`…): the
/// first two digest bytes of an ID, big-endian.
pub fn i16_hash(id: i64) -> i16 {
    let d = ids_digest(&[id]);
    i16::from_be_bytes([d[0], d[1]])
}

/// The error for a malformed `PROTOCOL_BROKER_QUEUE_ROUTING_KEY`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid routing key: {0:?}")]
pub struct InvalidRoutingKey(pub String);

/// The set of sharding keys one worker is responsible for.
///
/// Parsed from a binding key of up to 20 `0.`/`1.` groups followed by `#`
/// (docs/messages.md#the-sharding-realm).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShardingRealm {
    /// Number of fixed leading bits (0 for `#`).
    bits: u32,
    /// Mask over the first 32 digest bits.
    realm_mask: u32,
    /// Required value of the masked bits.
    realm: u32,
    /// Mask of the parent realm (the same realm with its last bit dropped).
    parent_realm_mask: u32,
    /// Required value of the parent-masked bits.
    parent_realm: u32,
}

impl ShardingRealm {
    /// The realm that accepts every key (binding key `#`).
    pub const ALL: ShardingRealm = ShardingRealm {
        bits: 0,
        realm_mask: 0,
        realm: 0,
        parent_realm_mask: 0,
        parent_realm: 0,
    };

    /// The mask over the first 32 bits of a key's MD5 digest (`0xc0000000` for `0.1.#`).
    pub fn realm_mask(&self) -> u32 {
        self.realm_mask
    }

    /// The value the masked bits must have (`0x40000000` for `0.1.#`).
    pub fn realm(&self) -> u32 {
        self.realm
    }

    /// Number of fixed leading bits. The reference's start-up check allows at most 16
    /// (`realm_mask & 0xffff == 0`); that check belongs to the configuration layer.
    pub fn bit_count(&self) -> u32 {
        self.bits
    }

    /// Whether this worker owns `key`.
    pub fn contains(&self, key: ShardingKey<'_>) -> bool {
        self.contains_digest(&key.digest(), false)
    }

    /// Whether the parent shard (before the last split) would own `key`; used with
    /// `DELETE_PARENT_SHARD_RECORDS` to recognise left-overs of the sibling shard.
    pub fn parent_contains(&self, key: ShardingKey<'_>) -> bool {
        self.contains_digest(&key.digest(), true)
    }

    /// Whether this worker owns the ID.
    pub fn contains_id(&self, id: i64) -> bool {
        self.contains(ShardingKey::Id(id))
    }

    /// Whether this worker owns the string key.
    pub fn contains_str(&self, s: &str) -> bool {
        self.contains(ShardingKey::Str(s))
    }

    /// Whether this worker owns a `to_trade` routing key (24 dotted bits, as produced by
    /// [`bin_routing_key`]). Returns `false` for anything that is not such a key.
    pub fn contains_routing_key(&self, routing_key: &str) -> bool {
        let mut value: u32 = 0;
        let mut count = 0;
        for part in routing_key.split('.') {
            let bit = match part {
                "0" => 0,
                "1" => 1,
                _ => return false,
            };
            value = value << 1 | bit;
            count += 1;
        }
        count == 24 && (value << 8) & self.realm_mask == self.realm
    }

    /// A row-level filter for the solver tables' 16-bit hash columns:
    /// `hash & mask == prefix` selects this shard's rows (docs/messages.md#hash-columns).
    pub fn i16_hash_filter(&self) -> (i16, i16) {
        let mask = (self.realm_mask >> 16) as u16;
        let prefix = (self.realm >> 16) as u16;
        (mask as i16, prefix as i16)
    }

    fn contains_digest(&self, digest: &[u8; 16], parent: bool) -> bool {
        let key = u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]);
        if parent {
            key & self.parent_realm_mask == self.parent_realm
        } else {
            key & self.realm_mask == self.realm
        }
    }
}

impl FromStr for ShardingRealm {
    type Err = InvalidRoutingKey;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid = || InvalidRoutingKey(s.to_owned());
        let prefix = s.strip_suffix('#').ok_or_else(invalid)?;
        let bytes = prefix.as_bytes();
        if bytes.len() % 2 != 0 || bytes.len() > 40 {
            return Err(invalid());
        }
        let mut value: u64 = 0;
        for pair in bytes.chunks(2) {
            let bit = match pair {
                b"0." => 0,
                b"1." => 1,
                _ => return Err(invalid()),
            };
            value = value << 1 | bit;
        }
        let bits = (bytes.len() / 2) as u32;
        let shift = 32 - bits;
        let realm_mask = (((1u64 << bits) - 1) << shift) as u32;
        let realm = (value << shift) as u32;
        let parent_realm_mask = realm_mask & (realm_mask << 1);
        Ok(ShardingRealm {
            bits,
            realm_mask,
            realm,
            parent_realm_mask,
            parent_realm: realm & parent_realm_mask,
        })
    }
}

impl fmt::Display for ShardingRealm {
    /// Writes the binding key the realm was parsed from (e.g. `0.1.#`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for i in 0..self.bits {
            let bit = self.realm >> (31 - i) & 1;
            write!(f, "{bit}.")?;
        }
        f.write_str("#")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_keys() {
        assert_eq!(hex_routing_key(10), "00.00.00.00.00.00.00.0a");
        assert_eq!(hex_routing_key(666), "00.00.00.00.00.00.02.9a");
        assert_eq!(hex_routing_key(-2), "ff.ff.ff.ff.ff.ff.ff.fe");
        assert_eq!(hex_routing_key(4294967296), "00.00.00.01.00.00.00.00");
    }

    #[test]
    fn binary_keys() {
        assert_eq!(
            bin_routing_key(123),
            "1.1.1.1.1.1.0.0.0.0.0.1.0.0.0.0.0.1.1.0.0.0.1.1"
        );
        assert_eq!(
            bin_routing_key(-123),
            "1.1.0.0.0.0.1.1.1.1.1.1.1.1.1.0.1.0.1.0.1.1.1.1"
        );
        assert_eq!(
            bin_routing_key(4294967296),
            "0.0.1.0.0.0.0.0.0.0.0.0.0.0.1.0.1.1.1.0.0.0.0.1"
        );
        assert_eq!(
            bin_routing_key_of_ids(&[123, 456]),
            "0.0.0.0.1.0.0.0.0.1.0.0.0.1.0.0.0.0.1.1.0.1.0.0"
        );
        assert_eq!(
            str_routing_key("https://example.com/iri"),
            "0.1.0.0.0.0.1.1.1.1.0.1.0.1.0.0.1.1.0.0.0.1.0.1"
        );
        assert_eq!(
            str_routing_key("https://example.com/test"),
            "1.0.0.1.0.0.0.1.0.0.0.0.1.1.0.1.1.0.0.0.1.1.1.1"
        );
    }

    #[test]
    fn parses_realms() {
        let all: ShardingRealm = "#".parse().unwrap();
        assert_eq!(all, ShardingRealm::ALL);
        let r: ShardingRealm = "0.1.#".parse().unwrap();
        assert_eq!((r.realm_mask, r.realm), (0xc000_0000, 0x4000_0000));
        assert_eq!((r.parent_realm_mask, r.parent_realm), (0x8000_0000, 0));
        assert_eq!(r.to_string(), "0.1.#");
        let one: ShardingRealm = "1.#".parse().unwrap();
        assert_eq!((one.parent_realm_mask, one.parent_realm), (0, 0));
        let twenty = "1.".repeat(20) + "#";
        assert_eq!(twenty.parse::<ShardingRealm>().unwrap().bit_count(), 20);
        for bad in [
            "",
            "0.1",
            "*",
            "0.1.#.",
            "2.#",
            "0#",
            ".#",
            &("0.".repeat(21) + "#"),
            "#\n",
        ] {
            assert!(bad.parse::<ShardingRealm>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn realm_membership() {
        let zero: ShardingRealm = "0.#".parse().unwrap();
        assert!(zero.contains_id(3));
        assert!(!zero.contains_id(2));
        assert!(zero.parent_contains(ShardingKey::Id(2)));
        assert!(zero.contains_str("https://example.com/666"));
        let one: ShardingRealm = "1.#".parse().unwrap();
        for id in [123, 127, 128] {
            assert!(one.contains_id(id), "{id}");
        }
        assert!(!one.contains_id(129));
        assert!(ShardingRealm::ALL.contains_id(129));
    }

    #[test]
    fn routing_keys_agree_with_realms() {
        for realm in ["#", "0.#", "1.#", "0.1.#", "1.1.0.1.#"] {
            let r: ShardingRealm = realm.parse().unwrap();
            for id in -50..50 {
                assert_eq!(
                    r.contains_routing_key(&bin_routing_key(id)),
                    r.contains_id(id)
                );
            }
        }
        assert!(!ShardingRealm::ALL.contains_routing_key("1.0"));
        assert!(!ShardingRealm::ALL.contains_routing_key("00.00.00.00.00.00.00.0a"));
    }

    #[test]
    fn i16_hashes_follow_the_realm() {
        let r: ShardingRealm = "1.0.#".parse().unwrap();
        let (mask, prefix) = r.i16_hash_filter();
        assert_eq!((mask, prefix), (0xc000_u16 as i16, 0x8000_u16 as i16));
        for id in -200..200 {
            assert_eq!(i16_hash(id) & mask == prefix, r.contains_id(id), "{id}");
        }
        assert_eq!(i16_hash(123), -1008, "docs/messages.md#hash-columns");
    }

    #[test]
    fn realm_membership_follows_the_reference_examples() {
        let zero: ShardingRealm = "0.#".parse().unwrap();
        assert!(zero.contains_id(3) && !zero.contains_id(2));
        assert!(zero.contains_str("https://example.com/666"));
        let one: ShardingRealm = "1.#".parse().unwrap();
        assert!(one.contains_str("65") && !one.contains_str("59"));
        assert!(one.parent_contains(ShardingKey::Str("59")));
        for id in [123, 127, 128] {
            assert!(one.contains_id(id), "{id}");
        }
        assert!(!one.contains_id(129));
    }
}
