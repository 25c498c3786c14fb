//! Bid processing on the workers' side (docs/turns.md#bid-processing).
//!
//! A worker turns its creditors' trading policies into *bids*. A bid may be pegged to another
//! bid of the same creditor; when the resulting bid price agrees with the currency's price, and
//! the creditor both buys and sells something, the bid becomes a candidate offer.

use super::{BaseCurrency, CurrencyPrices, CurrencyRegistry, PricingError};
use crate::solver::input::CurrencyInfo;
use crate::solver::numeric::{FxHashMap, FxHashSet, compare_prices, rate_to_f32};
use chrono::NaiveDate;
use std::collections::BTreeSet;

/// The smallest bid amount kept: bids below it are raised to it, so `abs()` never overflows.
const MIN_BID_AMOUNT: i64 = -i64::MAX;

/// Data carried from a bid to its candidate offer, untouched by the processing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BidAux {
    /// The creation date of the creditor's account.
    pub creation_date: NaiveDate,
    /// The number of the account's latest transfer.
    pub last_transfer_number: i64,
}

impl Default for BidAux {
    fn default() -> Self {
        BidAux {
            creation_date: NaiveDate::from_ymd_opt(1970, 1, 1).expect("valid date"),
            last_transfer_number: 0,
        }
    }
}

/// A bid that qualified as an offer: positive amount to buy, negative to sell.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CandidateOffer {
    /// Tokens to buy (> 0) or to sell (< 0).
    pub amount: i64,
    /// The currency.
    pub debtor_id: i64,
    /// The bidder.
    pub creditor_id: i64,
    /// The data given with the bid.
    pub aux: BidAux,
}

#[derive(Clone, Debug)]
struct Bid {
    creditor_id: i64,
    debtor_id: i64,
    amount: i64,
    peg_debtor_id: i64,
    rate: f32,
    aux: BidAux,
}

/// The currency registry, first collecting, then prepared on the first analysis.
#[derive(Clone, Debug)]
enum Currencies {
    Collecting(CurrencyRegistry),
    Prepared(CurrencyPrices),
}

/// Turns batches of bids into candidate offers, pricing them against the turn's currencies.
///
/// All bids of one creditor must be registered in the same batch (between two calls of
/// [`BidProcessor::analyze_bids`]).
#[derive(Clone, Debug)]
pub struct BidProcessor {
    currencies: Currencies,
    base_debtor_id: i64,
    min_trade_amount: i64,
    bids: Vec<Bid>,
    bid_index: FxHashMap<(i64, i64), u32>,
    to_be_confirmed: BTreeSet<i64>,
}

impl BidProcessor {
    /// Creates a processor for a turn's base currency and minimum trade amount.
    pub fn new(base: BaseCurrency, min_trade_amount: i64) -> Self {
        BidProcessor {
            base_debtor_id: base.debtor_id,
            currencies: Currencies::Collecting(CurrencyRegistry::new(base)),
            min_trade_amount,
            bids: Vec::new(),
            bid_index: FxHashMap::default(),
            to_be_confirmed: BTreeSet::new(),
        }
    }

    /// Registers a currency; allowed only before the first analysis.
    pub fn register_currency(&mut self, info: &CurrencyInfo) -> Result<(), PricingError> {
        match &mut self.currencies {
            Currencies::Collecting(registry) => registry.add_currency(info),
            Currencies::Prepared(_) => Err(PricingError::CurrencyAfterAnalysis),
        }
    }

    /// Registers one bid; debtor ID 0 is ignored, a repeated (creditor, debtor) is an error.
    pub fn register_bid(
        &mut self,
        creditor_id: i64,
        debtor_id: i64,
        amount: i64,
        peg: Option<(i64, f64)>,
        aux: BidAux,
    ) -> Result<(), PricingError> {
        if debtor_id == 0 {
            return Ok(());
        }
        let index = self.bids.len() as u32;
        if self
            .bid_index
            .insert((creditor_id, debtor_id), index)
            .is_some()
        {
            return Err(PricingError::DuplicatedBid {
                creditor_id,
                debtor_id,
            });
        }
        self.bids.push(Bid {
            creditor_id,
            debtor_id,
            amount: amount.max(MIN_BID_AMOUNT),
            peg_debtor_id: peg.map_or(0, |(id, _)| id),
            rate: rate_to_f32(peg.map(|(_, rate)| rate)),
            aux,
        });
        Ok(())
    }

    /// Analyses the registered bids, returns the candidate offers and forgets the bids.
    ///
    /// Offers are sorted by (creditor ID, debtor ID).
    pub fn analyze_bids(&mut self) -> Result<Vec<CandidateOffer>, PricingError> {
        self.prepare_currencies()?;
        self.add_base_bids();
        let prices = self.bid_prices();
        let offers = self.select_offers(&prices);
        self.bids.clear();
        self.bid_index.clear();
        Ok(offers)
    }

    /// Debtor IDs that someone wants to sell but that have no tradable currency yet.
    pub fn currencies_to_be_confirmed(&self) -> impl Iterator<Item = i64> + '_ {
        self.to_be_confirmed.iter().copied()
    }

    /// Forgets a debtor ID from [`BidProcessor::currencies_to_be_confirmed`] (idempotent).
    pub fn remove_currency_to_be_confirmed(&mut self, debtor_id: i64) {
        self.to_be_confirmed.remove(&debtor_id);
    }

    /// The price of a tradable currency (NaN if none), preparing the registry if needed.
    pub fn currency_price(&mut self, debtor_id: i64) -> Result<f32, PricingError> {
        Ok(self.prepare_currencies()?.currency_price(debtor_id))
    }

    fn prepare_currencies(&mut self) -> Result<&CurrencyPrices, PricingError> {
        if let Currencies::Collecting(registry) = &self.currencies {
            let prices = registry.clone().prepare()?;
            self.currencies = Currencies::Prepared(prices);
        }
        match &self.currencies {
            Currencies::Prepared(prices) => Ok(prices),
            Currencies::Collecting(_) => unreachable!("prepared above"),
        }
    }

    /// Gives every bidder without a base bid a zero-amount base bid to anchor its pegs.
    fn add_base_bids(&mut self) {
        let traders: BTreeSet<i64> = self.bids.iter().map(|b| b.creditor_id).collect();
        for creditor_id in traders {
            if !self
                .bid_index
                .contains_key(&(creditor_id, self.base_debtor_id))
            {
                let registered =
                    self.register_bid(creditor_id, self.base_debtor_id, 0, None, BidAux::default());
                debug_assert!(registered.is_ok());
            }
        }
    }

    /// The price of every bid (`None` when unpriceable), following pegs within each bidder.
    ///
    /// A bid is priceable when its chain of pegs reaches the bidder's base bid; peg cycles never
    /// do. Uses an explicit stack, like the currency registry.
    fn bid_prices(&self) -> Vec<Option<f32>> {
        let pegs: Vec<Option<u32>> = self
            .bids
            .iter()
            .map(|b| {
                self.bid_index
                    .get(&(b.creditor_id, b.peg_debtor_id))
                    .copied()
            })
            .collect();
        let mut price: Vec<Option<f32>> = vec![None; self.bids.len()];
        let mut decided = vec![false; self.bids.len()];
        for (i, bid) in self.bids.iter().enumerate() {
            if bid.debtor_id == self.base_debtor_id {
                (price[i], decided[i]) = (Some(1.0), true);
            }
        }
        let mut chain = Vec::new();
        for start in 0..self.bids.len() {
            let mut current = Some(start as u32);
            while let Some(c) = current.filter(|&c| !decided[c as usize]) {
                decided[c as usize] = true;
                chain.push(c);
                current = pegs[c as usize];
            }
            let mut p = current.and_then(|c| price[c as usize]);
            while let Some(c) = chain.pop() {
                p = p.map(|p| p * self.bids[c as usize].rate);
                price[c as usize] = p;
            }
        }
        price
    }

    fn select_offers(&mut self, prices: &[Option<f32>]) -> Vec<CandidateOffer> {
        let Currencies::Prepared(currencies) = &self.currencies else {
            unreachable!("currencies are prepared before bids are analysed");
        };
        let (mut buyers, mut sellers) = (FxHashSet::default(), FxHashSet::default());
        let mut offers = Vec::new();
        for (bid, &price) in self.bids.iter().zip(prices) {
            let Some(price) = price else {
                continue;
            };
            let Some(currency) = currencies.tradable_currency(bid.debtor_id) else {
                if bid.amount <= -self.min_trade_amount {
                    self.to_be_confirmed.insert(bid.debtor_id);
                }
                continue;
            };
            if compare_prices(price, currency.price) && bid.amount.abs() >= self.min_trade_amount {
                let side = if bid.amount > 0 {
                    &mut buyers
                } else {
                    &mut sellers
                };
                side.insert(bid.creditor_id);
                offers.push(CandidateOffer {
                    amount: bid.amount,
                    debtor_id: bid.debtor_id,
                    creditor_id: bid.creditor_id,
                    aux: bid.aux,
                });
            }
        }
        offers.retain(|o| {
            let other_side = if o.amount > 0 { &sellers } else { &buyers };
            other_side.contains(&o.creditor_id)
        });
        offers.sort_by_key(|o| (o.creditor_id, o.debtor_id));
        offers
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reference case T04 (`test_bid_registry`): which bids are priceable.
    #[test]
    fn bid_pegs_are_followed_within_one_bidder() {
        let base = BaseCurrency {
            locator: "x/101".into(),
            debtor_id: 101,
            max_distance_to_base: 10,
        };
        let mut bp = BidProcessor::new(base, 1000);
        let aux = BidAux::default();
        type Row = (i64, i64, i64, Option<(i64, f64)>);
        let bids: [Row; 12] = [
            (1, 0, 1000, None),
            (1, 101, 6000, None),
            (1, 102, 0, Some((101, 1.0))),
            (1, 122, 0, Some((101, 1.0))),
            (1, 103, 0, Some((102, 1.0))),
            (1, 133, 0, Some((102, 1.0))),
            (1, 104, 0, Some((0, 1.0))),
            (1, 105, 0, Some((104, 1.0))),
            (1, 155, 0, Some((666, 1.0))),
            (1, 106, 0, Some((107, 1.0))),
            (1, 107, 0, Some((106, 1.0))),
            (2, 123, 0, Some((102, 1.0))),
        ];
        for (creditor, debtor, amount, peg) in bids {
            bp.register_bid(creditor, debtor, amount, peg, aux).unwrap();
        }
        bp.add_base_bids();
        let prices = bp.bid_prices();
        let mut priceable: Vec<i64> = bp
            .bids
            .iter()
            .zip(&prices)
            .filter(|(_, p)| p.is_some())
            .map(|(b, _)| b.debtor_id)
            .collect();
        priceable.sort();
        assert_eq!(priceable, [101, 101, 102, 103, 122, 133]);
    }
}
