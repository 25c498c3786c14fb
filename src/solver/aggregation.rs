//! Aggregation: turns filled orders into the six result tables (docs/turns.md#aggregation).
//!
//! Each account has one net order, so its taking (sell) or giving (buy) is the order's filled
//! amount. A seller's collector is the one named by its sell offer. A buyer's collector is
//! picked among the currency's active collector accounts (or, when there are none, among the
//! collectors of the currency's sellers), by a hash of the input instead of the reference's
//! unseeded `rand()`, so the output is reproducible. Collectors that collected more than they
//! dispatch then send the surplus to those that dispatch more, pairing them greedily in
//! ascending collector ID.

use super::input::CollectorAccount;
use super::market::{Market, Order, Side};
use super::matching::Matching;
use super::numeric::{FxHashMap, calc_hash, mix64};
use super::rows::*;
use thiserror::Error;

/// An aggregation failure.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum AggregationError {
    /// A collector's balance in one currency does not fit in a 64-bit amount.
    #[error("collector balance overflow in currency {debtor_id}")]
    BalanceOverflow {
        /// The currency.
        debtor_id: i64,
    },
}

/// Active collector accounts grouped by currency, each group by ascending collector ID.
#[derive(Clone, Debug, Default)]
pub struct CollectorPools {
    debtor_ids: Vec<i64>,
    starts: Vec<usize>,
    collector_ids: Vec<i64>,
}

impl CollectorPools {
    /// Groups collector accounts given in any order; duplicates are ignored.
    pub fn new(accounts: &[CollectorAccount]) -> Self {
        let mut accounts = accounts.to_vec();
        accounts.sort_unstable();
        accounts.dedup();
        let mut pools = CollectorPools::default();
        for a in &accounts {
            if pools.debtor_ids.last() != Some(&a.debtor_id) {
                pools.debtor_ids.push(a.debtor_id);
                pools.starts.push(pools.collector_ids.len());
            }
            pools.collector_ids.push(a.collector_id);
        }
        pools.starts.push(pools.collector_ids.len());
        pools
    }

    /// The active collectors of a currency, by ascending ID.
    pub fn of(&self, debtor_id: i64) -> &[i64] {
        match self.debtor_ids.binary_search(&debtor_id) {
            Ok(i) => &self.collector_ids[self.starts[i]..self.starts[i + 1]],
            Err(_) => &[],
        }
    }
}

/// The inputs of aggregation besides the market and the matching.
pub struct Aggregation<'a> {
    /// The turn, copied into every row.
    pub turn_id: i32,
    /// Seeds the choice among several collectors.
    pub seed: u64,
    /// The active collector accounts.
    pub pools: &'a CollectorPools,
    /// [`creditor_hashes`] of the market, if already computed (else empty).
    pub creditor_hashes: &'a [i16],
}

/// `calc_hash` of each order's creditor, by order index.
///
/// The MD5 digests are most of the aggregation's work, and do not depend on the matching, so
/// [`solve_with`](super::solve_with) computes them on a second thread while the matcher runs.
pub fn creditor_hashes(market: &Market) -> Vec<i16> {
    // No memo: a table of a million creditors would crowd the matcher's data out of the
    // shared cache; measured, digesting every order is not slower for the matcher.
    market
        .orders
        .iter()
        .map(|o| calc_hash(o.creditor_id))
        .collect()
}

/// Caches `calc_hash`, which costs an MD5 digest.
#[derive(Default)]
struct Hashes(FxHashMap<i64, i16>);

impl Hashes {
    fn of(&mut self, id: i64) -> i16 {
        *self.0.entry(id).or_insert_with(|| calc_hash(id))
    }
}

impl Aggregation<'_> {
    /// Produces the result rows of a matched market.
    pub fn run(
        &self,
        market: &Market,
        matching: &Matching,
    ) -> Result<ResultRows, AggregationError> {
        let mut rows = ResultRows::default();
        let filled = market
            .orders
            .iter()
            .zip(&matching.filled)
            .filter(|(_, f)| **f > 0);
        let sells = filled.clone().filter(|(o, _)| o.side == Side::Sell).count();
        let buys = filled.count() - sells;
        rows.creditor_taking.reserve_exact(sells);
        rows.collector_collecting.reserve_exact(sells);
        rows.creditor_giving.reserve_exact(buys);
        rows.collector_dispatching.reserve_exact(buys);
        let mut hashes = Hashes::default();
        let mut start = 0;
        while start < market.orders.len() {
            let currency = market.orders[start].currency;
            let len = market.orders[start..]
                .iter()
                .take_while(|o| o.currency == currency)
                .count();
            let group = start..start + len;
            let debtor_id = market.currencies[currency as usize].debtor_id;
            let creditor_hashes = self.creditor_hashes.get(group.clone()).unwrap_or(&[]);
            let (orders, filled) = (&market.orders[group.clone()], &matching.filled[group]);
            let group = Group {
                debtor_id,
                orders,
                filled,
                creditor_hashes,
            };
            self.currency_rows(group, &mut hashes, &mut rows)?;
            start += len;
        }
        Ok(rows)
    }

    /// The rows of one currency, whose orders are sorted by creditor.
    fn currency_rows(
        &self,
        group: Group<'_>,
        hashes: &mut Hashes,
        rows: &mut ResultRows,
    ) -> Result<(), AggregationError> {
        let Group {
            debtor_id,
            orders,
            filled,
            creditor_hashes,
        } = group;
        let pool = self.pools.of(debtor_id);
        let fallback = seller_collectors(orders, filled);
        let mut balances: Vec<(i64, i128)> = Vec::new();
        for (j, (order, &amount)) in orders.iter().zip(filled).enumerate() {
            if amount <= 0 {
                continue;
            }
            let creditor_hash = match creditor_hashes.get(j) {
                Some(&h) => h,
                None => hashes.of(order.creditor_id),
            };
            let account = (order.creditor_id, debtor_id);
            let collector_id = match order.side {
                Side::Sell => order.collector_id,
                Side::Buy if order.collector_id != 0 => order.collector_id,
                Side::Buy if !pool.is_empty() => self.pick(pool, account),
                Side::Buy => self.pick(&fallback, account),
            };
            let change = Change {
                turn_id: self.turn_id,
                creditor_id: order.creditor_id,
                debtor_id,
                amount,
                collector_id,
                creditor_hash,
            };
            let signed = i128::from(amount);
            match order.side {
                Side::Sell => change.push_taking(hashes, rows),
                Side::Buy => change.push_giving(hashes, rows),
            }
            balances.push((
                collector_id,
                if order.side == Side::Sell {
                    signed
                } else {
                    -signed
                },
            ));
        }
        for (from, to, amount) in transfers(net_balances(balances), debtor_id)? {
            let transfer = Transfer {
                turn_id: self.turn_id,
                debtor_id,
                from,
                to,
                amount,
            };
            transfer.push(hashes, rows);
        }
        Ok(())
    }

    /// Picks one collector for an account, uniformly by a hash of the account and the seed.
    fn pick(&self, candidates: &[i64], (creditor_id, debtor_id): (i64, i64)) -> i64 {
        let h = mix64(self.seed ^ mix64(creditor_id as u64 ^ mix64(debtor_id as u64)));
        candidates[(h % candidates.len() as u64) as usize]
    }
}

/// The distinct collectors of a currency's filled sell orders, ascending.
fn seller_collectors(orders: &[Order], filled: &[i64]) -> Vec<i64> {
    let mut ids: Vec<i64> = orders
        .iter()
        .zip(filled)
        .filter(|(o, f)| o.side == Side::Sell && **f > 0)
        .map(|(o, _)| o.collector_id)
        .collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// Sums balance changes per collector; returns non-zero balances by ascending collector ID.
fn net_balances(mut changes: Vec<(i64, i128)>) -> Vec<(i64, i128)> {
    changes.sort_unstable_by_key(|c| c.0);
    let mut net: Vec<(i64, i128)> = Vec::new();
    for (collector, amount) in changes {
        match net.last_mut() {
            Some(last) if last.0 == collector => last.1 += amount,
            _ => net.push((collector, amount)),
        }
    }
    net.retain(|b| b.1 != 0);
    net
}

/// Pairs collectors with a surplus (givers) and with a deficit (takers), greedily, both in
/// ascending collector ID; returns (from, to, amount) transfers.
fn transfers(
    balances: Vec<(i64, i128)>,
    debtor_id: i64,
) -> Result<Vec<(i64, i64, i64)>, AggregationError> {
    let mut givers: Vec<(i64, i128)> = balances.iter().copied().filter(|b| b.1 > 0).collect();
    let mut takers: Vec<(i64, i128)> = balances.into_iter().filter(|b| b.1 < 0).collect();
    let mut result = Vec::new();
    let mut t = 0;
    for giver in &mut givers {
        while giver.1 > 0 {
            let taker = takers
                .get_mut(t)
                .expect("balances of a currency sum to zero");
            let amount = giver.1.min(-taker.1);
            let amount64 = i64::try_from(amount)
                .map_err(|_| AggregationError::BalanceOverflow { debtor_id })?;
            result.push((giver.0, taker.0, amount64));
            giver.1 -= amount;
            taker.1 += amount;
            if taker.1 == 0 {
                t += 1;
            }
        }
    }
    debug_assert!(takers.iter().all(|t| t.1 == 0));
    Ok(result)
}

/// One currency's orders, by creditor, with their filled amounts and creditor hashes (the
/// latter empty when not computed in advance).
struct Group<'a> {
    debtor_id: i64,
    orders: &'a [Order],
    filled: &'a [i64],
    creditor_hashes: &'a [i16],
}

/// One account's net change, before it becomes a pair of rows.
struct Change {
    turn_id: i32,
    creditor_id: i64,
    debtor_id: i64,
    amount: i64,
    collector_id: i64,
    creditor_hash: i16,
}

impl Change {
    fn push_taking(&self, hashes: &mut Hashes, rows: &mut ResultRows) {
        rows.creditor_taking.push(CreditorTaking {
            turn_id: self.turn_id,
            creditor_id: self.creditor_id,
            debtor_id: self.debtor_id,
            creditor_hash: self.creditor_hash,
            amount: self.amount,
            collector_id: self.collector_id,
        });
        rows.collector_collecting.push(CollectorCollecting {
            turn_id: self.turn_id,
            debtor_id: self.debtor_id,
            creditor_id: self.creditor_id,
            amount: self.amount,
            collector_id: self.collector_id,
            collector_hash: hashes.of(self.collector_id),
        });
    }

    fn push_giving(&self, hashes: &mut Hashes, rows: &mut ResultRows) {
        rows.collector_dispatching.push(CollectorDispatching {
            turn_id: self.turn_id,
            debtor_id: self.debtor_id,
            creditor_id: self.creditor_id,
            amount: self.amount,
            collector_id: self.collector_id,
            collector_hash: hashes.of(self.collector_id),
        });
        rows.creditor_giving.push(CreditorGiving {
            turn_id: self.turn_id,
            creditor_id: self.creditor_id,
            debtor_id: self.debtor_id,
            creditor_hash: self.creditor_hash,
            amount: self.amount,
            collector_id: self.collector_id,
        });
    }
}

/// One collector-to-collector transfer, before it becomes a pair of rows.
struct Transfer {
    turn_id: i32,
    debtor_id: i64,
    from: i64,
    to: i64,
    amount: i64,
}

impl Transfer {
    fn push(&self, hashes: &mut Hashes, rows: &mut ResultRows) {
        rows.collector_sending.push(CollectorSending {
            turn_id: self.turn_id,
            debtor_id: self.debtor_id,
            from_collector_id: self.from,
            to_collector_id: self.to,
            from_collector_hash: hashes.of(self.from),
            amount: self.amount,
        });
        rows.collector_receiving.push(CollectorReceiving {
            turn_id: self.turn_id,
            debtor_id: self.debtor_id,
            to_collector_id: self.to,
            from_collector_id: self.from,
            to_collector_hash: hashes.of(self.to),
            amount: self.amount,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reference case T15 (`test_collector_transfers`), on net balances.
    #[test]
    fn collector_transfers() {
        let b = |v: &[(i64, i128)]| transfers(net_balances(v.to_vec()), 101).unwrap();
        assert_eq!(b(&[(1, 20000), (2, -20000)]), [(1, 2, 20000)]);
        let balances = [
            (1, 20000),
            (2, -20000),
            (2, 5000),
            (3, -4000),
            (4, -7000),
            (5, 2000),
            (6, 4000),
        ];
        let expected = [
            (1, 2, 15000),
            (1, 3, 4000),
            (1, 4, 1000),
            (5, 4, 2000),
            (6, 4, 4000),
        ];
        assert_eq!(b(&balances), expected);
    }

    #[test]
    fn transfer_overflow_is_an_error() {
        let max = i128::from(i64::MAX);
        let result = transfers(vec![(1, max + 1), (2, -(max + 1))], 7);
        assert_eq!(
            result,
            Err(AggregationError::BalanceOverflow { debtor_id: 7 })
        );
    }

    /// Reference case T16 (`test_get_random_collector_id`), with a seeded choice.
    #[test]
    fn collector_choice() {
        let pools = CollectorPools::new(&[
            CollectorAccount {
                debtor_id: 666,
                collector_id: 3,
            },
            CollectorAccount {
                debtor_id: 666,
                collector_id: 1,
            },
            CollectorAccount {
                debtor_id: 666,
                collector_id: 2,
            },
            CollectorAccount {
                debtor_id: 777,
                collector_id: 1,
            },
        ]);
        assert_eq!(pools.of(666), [1, 2, 3]);
        assert!(pools.of(555).is_empty());
        let agg = Aggregation {
            turn_id: 1,
            seed: 42,
            pools: &pools,
            creditor_hashes: &[],
        };
        let mut seen: Vec<i64> = (0..100)
            .map(|c| agg.pick(pools.of(666), (c, 666)))
            .collect();
        seen.sort();
        seen.dedup();
        assert_eq!(seen, [1, 2, 3]);
        assert!((0..20).all(|c| agg.pick(pools.of(777), (c, 777)) == 1));
        assert_eq!(
            agg.pick(pools.of(666), (5, 666)),
            agg.pick(pools.of(666), (5, 666))
        );
    }
}
