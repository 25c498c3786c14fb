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

/// What "issue shape" turn to generate (see [`shaped_turn`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ShapeParams {
    /// About how many offers (sell plus buy).
    pub offers: usize,
    /// The random seed.
    pub seed: u64,
    /// The turn's minimum trade amount.
    pub min_trade_amount: i64,
    /// The median offer amount, in tokens.
    pub median_amount: f64,
    /// The exponent of the currencies' Zipf-like popularity.
    pub zipf: f64,
}

impl ShapeParams {
    /// The shape of docs/turns.md#benchmarks for a given number of offers.
    pub fn new(offers: usize, seed: u64) -> Self {
        ShapeParams {
            offers,
            seed,
            min_trade_amount: 1000,
            median_amount: 20_000.0,
            zipf: 0.8,
        }
    }
}

/// Generates a turn of a harder shape than [`random_turn`]'s, closer to a live market.
///
/// About `√N` currencies in a peg tree of depth at most 3 under the base, with log-uniform
/// rates (`10^±1` under the base, `10^±0.3` below); about 2 % of the currencies unconfirmed and
/// 1.5 % pegged to a locator that does not exist (unpriceable); 1–3 active collectors per
/// currency. `N / 4` traders, each with at least one sell and one buy in distinct currencies
/// chosen by Zipf-like popularity; lognormal amounts with the given median, 99 % of them at
/// least `median / 20`.
pub fn shaped_turn(p: &ShapeParams) -> TurnInput {
    let mut rng = Rng::new(p.seed ^ 0x5eed_f7a1);
    let ncur = ((p.offers as f64).sqrt().round() as usize).max(3);
    let traders = (p.offers / 4).max(2);
    let params = TurnParams {
        turn_id: 1,
        base_debtor_info_locator: locator(FIRST_DEBTOR_ID),
        base_debtor_id: FIRST_DEBTOR_ID,
        max_distance_to_base: 3,
        min_trade_amount: p.min_trade_amount,
    };
    let mut depth = vec![0u8; ncur];
    let mut currencies = Vec::with_capacity(ncur);
    let mut collectors = Vec::new();
    let mut next_collector = FIRST_COLLECTOR_ID;
    for c in 0..ncur {
        let debtor_id = FIRST_DEBTOR_ID + c as i64;
        let mut info = CurrencyInfo {
            debtor_info_locator: locator(debtor_id),
            debtor_id,
            peg_debtor_info_locator: None,
            peg_debtor_id: None,
            peg_exchange_rate: None,
            is_confirmed: c == 0 || rng.unit() >= 0.02,
        };
        if c > 0 {
            // A parent among the earlier currencies of depth below 3: under the base about
            // 40 % of the time.
            let parent = if rng.unit() < 0.4 {
                0
            } else {
                let mut k = rng.below(c);
                while depth[k] >= 3 {
                    k = rng.below(c);
                }
                k
            };
            depth[c] = depth[parent] + 1;
            let spread: f64 = if parent == 0 { 1.0 } else { 0.3 };
            let rate = 10f64.powf(spread * (2.0 * rng.unit() - 1.0));
            let peg_id = FIRST_DEBTOR_ID + parent as i64;
            let broken = rng.unit() < 0.015;
            info.peg_debtor_info_locator = Some(if broken {
                format!("https://example.com/missing/{peg_id}")
            } else {
                locator(peg_id)
            });
            info.peg_debtor_id = Some(peg_id);
            info.peg_exchange_rate = Some(rate);
        }
        currencies.push(info);
        for _ in 0..1 + rng.below(3) {
            collectors.push(CollectorAccount {
                debtor_id,
                collector_id: next_collector,
            });
            next_collector += 1;
        }
    }
    // Popularity: weight 1 / rank^zipf, ranks a random permutation of the currencies.
    let mut ranks: Vec<usize> = (0..ncur).collect();
    shuffle(&mut ranks, &mut rng);
    let mut cumulative = Vec::with_capacity(ncur);
    let mut total = 0.0;
    for &r in &ranks {
        total += 1.0 / ((r + 1) as f64).powf(p.zipf);
        cumulative.push(total);
    }
    let pick = |rng: &mut Rng| {
        let x = rng.unit() * total;
        cumulative.partition_point(|&w| w <= x).min(ncur - 1)
    };
    let collectors_of = |c: usize| -> Vec<i64> {
        let id = FIRST_DEBTOR_ID + c as i64;
        collectors
            .iter()
            .filter(|a| a.debtor_id == id)
            .map(|a| a.collector_id)
            .collect()
    };
    let pools: Vec<Vec<i64>> = (0..ncur).map(collectors_of).collect();
    // Lognormal amounts: 1 % below median / 20 means sigma = ln(20) / 2.326.
    let sigma = 20f64.ln() / 2.326;
    let mut counts = vec![2usize; traders];
    for _ in 0..p.offers.saturating_sub(2 * traders) {
        counts[rng.below(traders)] += 1;
    }
    let (mut sells, mut buys) = (Vec::new(), Vec::new());
    let mut chosen: Vec<usize> = Vec::new();
    for (trader, &k) in counts.iter().enumerate() {
        chosen.clear();
        let k = k.min(ncur);
        while chosen.len() < k {
            let c = pick(&mut rng);
            if !chosen.contains(&c) {
                chosen.push(c);
            }
        }
        for (j, &c) in chosen.iter().enumerate() {
            let is_sell = match j {
                0 => true,
                1 => false,
                _ => rng.unit() < 0.5,
            };
            let z = normal(&mut rng);
            let amount = (p.median_amount * (sigma * z).exp()).round().max(1.0) as i64;
            let (creditor_id, debtor_id) = (trader as i64 + 1, FIRST_DEBTOR_ID + c as i64);
            if is_sell {
                let pool = &pools[c];
                sells.push(SellOffer {
                    creditor_id,
                    debtor_id,
                    amount,
                    collector_id: pool[rng.below(pool.len())],
                });
            } else {
                buys.push(BuyOffer {
                    creditor_id,
                    debtor_id,
                    amount,
                });
            }
        }
    }
    shuffle(&mut sells, &mut rng);
    shuffle(&mut buys, &mut rng);
    TurnInput {
        params,
        currencies,
        collectors,
        sell_offers: sells,
        buy_offers: buys,
    }
}

/// A standard normal number (Box–Muller).
fn normal(rng: &mut Rng) -> f64 {
    let u = 1.0 - rng.unit();
    let v = rng.unit();
    (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
}
