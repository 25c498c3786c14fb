//! Deterministic random turns, shaped like the reference's performance test
//! (`tests/test_matching.pyx`, `test_random_matches`).
//!
//! For `N` offers there are `T = N / 5` traders and `T / 50` currencies. Every trader gets one
//! sell and one buy offer in random currencies; the remaining offers go to traders "near" a
//! random currency (within 10 000 places of the currency's location), about one in eleven of
//! them a sell. Amounts are exponentially distributed with a mean of 100 minimum trade amounts.
//! Used by the benchmarks and by the property tests; it needs no external crate, so the same
//! seed gives the same turn everywhere.

use super::input::{BuyOffer, CollectorAccount, CurrencyInfo, SellOffer, TurnInput, TurnParams};
use super::numeric::mix64;

/// What turn to generate.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GenParams {
    /// About how many offers (sell plus buy); a few repeats are dropped.
    pub offers: usize,
    /// The random seed.
    pub seed: u64,
    /// Prices are spread log-uniformly over `[1 / spread, spread]` base units; 1 = all equal.
    pub price_spread: f64,
    /// Active collector accounts per currency; with 0, sellers still name collectors (one per
    /// currency) but none is registered as active, so buyers get a seller's collector.
    pub collectors_per_currency: usize,
    /// The turn's minimum trade amount.
    pub min_trade_amount: i64,
    /// The number of currencies; 0 means one per 50 traders (at least 2).
    pub currencies: usize,
}

impl GenParams {
    /// The benchmark's shape for a given number of offers.
    pub fn bench(offers: usize) -> Self {
        GenParams {
            offers,
            seed: 1,
            price_spread: 2.0,
            collectors_per_currency: 2,
            min_trade_amount: 1000,
            currencies: 0,
        }
    }
}

/// A small, fast, deterministic random generator (SplitMix64).
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// Creates a generator from a seed.
    pub fn new(seed: u64) -> Self {
        Rng(mix64(seed))
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        mix64(self.0)
    }

    /// A uniform number in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// A uniform index below `n` (> 0).
    pub fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next_u64()) * n as u128) >> 64) as usize
    }

    /// An exponentially distributed number with the given mean.
    pub fn exponential(&mut self, mean: f64) -> f64 {
        -(1.0 - self.unit()).ln() * mean
    }
}

/// The debtor ID of the first (base) generated currency.
pub const FIRST_DEBTOR_ID: i64 = 10_000_000_001;

/// The first generated collector ID.
pub const FIRST_COLLECTOR_ID: i64 = 0x0000_0100_0000_0000;

/// Generates a turn.
pub fn random_turn(p: &GenParams) -> TurnInput {
    let mut rng = Rng::new(p.seed);
    let traders = (p.offers / 5).max(2);
    let ncur = match p.currencies {
        0 => (traders / 50).max(2),
        n => n.max(2),
    };
    let locations: Vec<usize> = (0..ncur).map(|_| rng.below(traders)).collect();
    let params = TurnParams {
        turn_id: 1,
        base_debtor_info_locator: locator(FIRST_DEBTOR_ID),
        base_debtor_id: FIRST_DEBTOR_ID,
        max_distance_to_base: 10,
        min_trade_amount: p.min_trade_amount,
    };
    let currencies = (0..ncur)
        .map(|c| currency(c, p.price_spread, &mut rng))
        .collect();
    let per = p.collectors_per_currency.max(1);
    let active = if p.collectors_per_currency == 0 {
        0
    } else {
        ncur * per
    };
    let collectors = (0..active)
        .map(|k| CollectorAccount {
            debtor_id: FIRST_DEBTOR_ID + (k / per) as i64,
            collector_id: FIRST_COLLECTOR_ID + k as i64,
        })
        .collect();
    let mut offers = OfferGen {
        rng,
        p: *p,
        per,
        sells: Vec::new(),
        buys: Vec::new(),
    };
    for trader in 0..traders {
        let (sell, buy) = (offers.rng.below(ncur), offers.rng.below(ncur));
        offers.push(trader, sell, true);
        offers.push(trader, buy, false);
    }
    let locality = traders.min(10_000);
    for _ in 0..p.offers.saturating_sub(2 * traders) {
        let c = offers.rng.below(ncur);
        let trader = (locations[c] + offers.rng.below(locality)) % traders;
        let is_sell = offers.rng.unit() < 0.1 / 1.1;
        offers.push(trader, c, is_sell);
    }
    let (sell_offers, buy_offers) = offers.finish();
    TurnInput {
        params,
        currencies,
        collectors,
        sell_offers,
        buy_offers,
    }
}

fn locator(debtor_id: i64) -> String {
    format!("https://example.com/{debtor_id}")
}

/// Currency `c`: the base (index 0) or pegged to the base at a random rate.
fn currency(c: usize, spread: f64, rng: &mut Rng) -> CurrencyInfo {
    let debtor_id = FIRST_DEBTOR_ID + c as i64;
    let ln = spread.max(1.0).ln();
    let rate = (ln * (2.0 * rng.unit() - 1.0)).exp();
    CurrencyInfo {
        debtor_info_locator: locator(debtor_id),
        debtor_id,
        peg_debtor_info_locator: (c > 0).then(|| locator(FIRST_DEBTOR_ID)),
        peg_debtor_id: (c > 0).then_some(FIRST_DEBTOR_ID),
        peg_exchange_rate: (c > 0).then_some(rate),
        is_confirmed: true,
    }
}

struct OfferGen {
    rng: Rng,
    p: GenParams,
    per: usize,
    sells: Vec<SellOffer>,
    buys: Vec<BuyOffer>,
}

impl OfferGen {
    fn push(&mut self, trader: usize, c: usize, is_sell: bool) {
        let amount = (self.rng.exponential(100.0) * self.p.min_trade_amount as f64).round();
        let (creditor_id, debtor_id) = (trader as i64 + 1, FIRST_DEBTOR_ID + c as i64);
        let amount = (amount as i64).max(1);
        if is_sell {
            let k = c * self.per + self.rng.below(self.per);
            let collector_id = FIRST_COLLECTOR_ID + k as i64;
            self.sells.push(SellOffer {
                creditor_id,
                debtor_id,
                amount,
                collector_id,
            });
        } else {
            self.buys.push(BuyOffer {
                creditor_id,
                debtor_id,
                amount,
            });
        }
    }

    /// Drops repeated (creditor, debtor) pairs per side and shuffles, like a table's heap order.
    fn finish(mut self) -> (Vec<SellOffer>, Vec<BuyOffer>) {
        self.sells.sort_by_key(|o| (o.debtor_id, o.creditor_id));
        self.sells.dedup_by_key(|o| (o.debtor_id, o.creditor_id));
        self.buys.sort_by_key(|o| (o.debtor_id, o.creditor_id));
        self.buys.dedup_by_key(|o| (o.debtor_id, o.creditor_id));
        shuffle(&mut self.sells, &mut self.rng);
        shuffle(&mut self.buys, &mut self.rng);
        (self.sells, self.buys)
    }
}

/// Fisher–Yates shuffle.
pub fn shuffle<T>(items: &mut [T], rng: &mut Rng) {
    for i in (1..items.len()).rev() {
        items.swap(i, rng.below(i + 1));
    }
}
