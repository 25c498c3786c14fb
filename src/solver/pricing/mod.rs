//! Pricing: the currency peg tree rooted at the base currency (docs/turns.md#pricing).
//!
//! Every currency may be pegged to another one at a fixed exchange rate. A currency has a price
//! (in base units) when its chain of pegs reaches the base currency within
//! `max_distance_to_base` steps; it is *tradable* when it also is confirmed. Both the solver and
//! the workers' [`BidProcessor`] use this registry, so they agree on prices bit for bit.
//!
//! [`CurrencyRegistry`] only collects currencies; [`CurrencyRegistry::prepare`] turns it into
//! [`CurrencyPrices`], which answers queries. The reference's "query before preparation" and
//! "add after preparation" errors therefore cannot happen: the types forbid them.

mod bids;

pub use bids::{BidAux, BidProcessor, CandidateOffer};

use super::input::CurrencyInfo;
use super::numeric::{FxHashMap, rate_to_f32};
use std::collections::HashMap;
use thiserror::Error;

/// The distance of a currency whose chain of pegs does not reach the base.
pub const INFINITE_DISTANCE: u16 = u16::MAX;

/// A pricing failure; each one aborts the solve (and a worker's bid analysis).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum PricingError {
    /// Two currencies have the same debtor info locator.
    #[error("duplicated debtor_key: {locator}")]
    DuplicatedDebtorKey {
        /// The repeated locator.
        locator: String,
    },
    /// Two tradable (confirmed and priceable) currencies have the same debtor ID.
    #[error("duplicated tradable debtor_id: {debtor_id}")]
    DuplicatedTradableDebtorId {
        /// The repeated debtor ID.
        debtor_id: i64,
    },
    /// The currency at the base locator has a debtor ID other than the base debtor ID.
    #[error("inconsistent base_debtor_key and base_debtor_id")]
    InconsistentBase,
    /// The base is not tradable but another tradable currency has the base debtor ID.
    #[error("the base_debtor_id has been claimed by another tradable currency")]
    BaseClaimed,
    /// A bid for the same (creditor, debtor) pair was registered twice.
    #[error("duplicated bid: creditor {creditor_id}, debtor {debtor_id}")]
    DuplicatedBid {
        /// The bidder.
        creditor_id: i64,
        /// The currency of the bid.
        debtor_id: i64,
    },
    /// A currency was registered after the bids had been analysed.
    #[error("a currency has been registered after currencies analysis")]
    CurrencyAfterAnalysis,
}

/// Identifies the base currency of a turn and the peg-distance limit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BaseCurrency {
    /// The base currency's debtor info locator.
    pub locator: String,
    /// The base currency's debtor ID.
    pub debtor_id: i64,
    /// The maximum number of pegs between a priceable currency and the base.
    pub max_distance_to_base: u16,
}

/// A registered currency before preparation.
#[derive(Clone, Debug)]
struct Declared {
    debtor_id: i64,
    confirmed: bool,
    peg: Option<(String, i64)>,
    rate: f32,
}

/// Collects currencies until [`CurrencyRegistry::prepare`] computes their prices.
#[derive(Clone, Debug)]
pub struct CurrencyRegistry {
    base: BaseCurrency,
    declared: Vec<Declared>,
    by_locator: HashMap<String, u32>,
}

impl CurrencyRegistry {
    /// Creates an empty registry for the given base currency.
    pub fn new(base: BaseCurrency) -> Self {
        CurrencyRegistry {
            base,
            declared: Vec::new(),
            by_locator: HashMap::new(),
        }
    }

    /// Registers one currency (a `currency_info` row); debtor ID 0 is silently ignored.
    pub fn add_currency(&mut self, info: &CurrencyInfo) -> Result<(), PricingError> {
        if info.debtor_id == 0 {
            return Ok(());
        }
        if self.by_locator.contains_key(&info.debtor_info_locator) {
            return Err(PricingError::DuplicatedDebtorKey {
                locator: info.debtor_info_locator.clone(),
            });
        }
        let index = self.declared.len() as u32;
        self.by_locator
            .insert(info.debtor_info_locator.clone(), index);
        let peg = info.peg();
        self.declared.push(Declared {
            debtor_id: info.debtor_id,
            confirmed: info.is_confirmed,
            peg: peg.map(|(locator, id, _)| (locator.to_owned(), id)),
            rate: rate_to_f32(peg.map(|(_, _, rate)| rate)),
        });
        Ok(())
    }

    /// Links the pegs, computes distances and prices, and validates the base.
    pub fn prepare(self) -> Result<CurrencyPrices, PricingError> {
        let pegs = self.link_pegs();
        let base = self.base_index();
        let priced = price_chains(&pegs, &self.declared, base, self.base.max_distance_to_base);
        let currencies: Vec<PricedCurrency> = self
            .declared
            .iter()
            .zip(priced)
            .map(|(d, (distance, price))| PricedCurrency {
                debtor_id: d.debtor_id,
                confirmed: d.confirmed,
                distance_to_base: distance,
                price,
            })
            .collect();
        let tradable = collect_tradable(&currencies)?;
        self.validate_base(&currencies, &tradable)?;
        Ok(CurrencyPrices {
            currencies,
            tradable,
        })
    }

    /// For each currency, the index of the currency its peg names by (locator, debtor ID).
    fn link_pegs(&self) -> Vec<Option<u32>> {
        self.declared
            .iter()
            .map(|d| {
                let (locator, id) = d.peg.as_ref()?;
                let target = *self.by_locator.get(locator)?;
                (self.declared[target as usize].debtor_id == *id).then_some(target)
            })
            .collect()
    }

    /// The base record: right locator *and* right debtor ID.
    fn base_index(&self) -> Option<u32> {
        let index = *self.by_locator.get(&self.base.locator)?;
        (self.declared[index as usize].debtor_id == self.base.debtor_id).then_some(index)
    }

    fn validate_base(
        &self,
        currencies: &[PricedCurrency],
        tradable: &FxHashMap<i64, u32>,
    ) -> Result<(), PricingError> {
        let Some(&index) = self.by_locator.get(&self.base.locator) else {
            return Ok(());
        };
        let base = &currencies[index as usize];
        if base.debtor_id != self.base.debtor_id {
            return Err(PricingError::InconsistentBase);
        }
        match tradable.get(&self.base.debtor_id) {
            Some(&t) if t != index => Err(PricingError::BaseClaimed),
            _ => Ok(()),
        }
    }
}

/// Computes (distance, price) of every currency by following its chain of pegs.
///
/// Uses an explicit stack, so a long chain cannot overflow the call stack. A currency visited
/// twice in one chain (a peg cycle) is already "decided" as unreachable, which makes the whole
/// cycle unpriceable — the same rule as the reference's memoised recursion.
fn price_chains(
    pegs: &[Option<u32>],
    declared: &[Declared],
    base: Option<u32>,
    max_distance: u16,
) -> Vec<(u16, f32)> {
    let mut result = vec![(INFINITE_DISTANCE, f32::NAN); pegs.len()];
    let mut decided = vec![false; pegs.len()];
    if let Some(b) = base {
        result[b as usize] = (0, 1.0);
        decided[b as usize] = true;
    }
    let mut chain = Vec::new();
    for start in 0..pegs.len() {
        let mut current = Some(start as u32);
        while let Some(c) = current.filter(|&c| !decided[c as usize]) {
            decided[c as usize] = true;
            chain.push(c);
            current = pegs[c as usize];
        }
        let (mut distance, mut price) =
            current.map_or((INFINITE_DISTANCE, f32::NAN), |c| result[c as usize]);
        while let Some(c) = chain.pop() {
            if distance < max_distance {
                distance += 1;
                price *= declared[c as usize].rate;
            } else {
                (distance, price) = (INFINITE_DISTANCE, f32::NAN);
            }
            result[c as usize] = (distance, price);
        }
    }
    result
}

/// Maps the debtor ID of every confirmed, priceable currency to its index.
fn collect_tradable(currencies: &[PricedCurrency]) -> Result<FxHashMap<i64, u32>, PricingError> {
    let mut tradable = FxHashMap::default();
    for (index, c) in currencies.iter().enumerate() {
        if c.is_tradable() && tradable.insert(c.debtor_id, index as u32).is_some() {
            return Err(PricingError::DuplicatedTradableDebtorId {
                debtor_id: c.debtor_id,
            });
        }
    }
    Ok(tradable)
}

/// A currency after preparation.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PricedCurrency {
    /// The currency's debtor ID.
    pub debtor_id: i64,
    /// Whether the currency is confirmed.
    pub confirmed: bool,
    /// Pegs between the currency and the base ([`INFINITE_DISTANCE`] when unpriceable).
    pub distance_to_base: u16,
    /// The price in base units (NaN when unpriceable).
    pub price: f32,
}

impl PricedCurrency {
    /// Whether the peg chain reaches the base within the distance limit.
    pub fn is_priceable(&self) -> bool {
        self.distance_to_base != INFINITE_DISTANCE
    }

    /// Whether the currency may be traded: confirmed and priceable.
    pub fn is_tradable(&self) -> bool {
        self.confirmed && self.is_priceable()
    }
}

/// Prepared currencies: answers price queries for tradable currencies.
#[derive(Clone, Debug)]
pub struct CurrencyPrices {
    currencies: Vec<PricedCurrency>,
    tradable: FxHashMap<i64, u32>,
}

impl CurrencyPrices {
    /// The tradable currency with this debtor ID, if any.
    pub fn tradable_currency(&self, debtor_id: i64) -> Option<&PricedCurrency> {
        let index = *self.tradable.get(&debtor_id)?;
        Some(&self.currencies[index as usize])
    }

    /// The price of the tradable currency with this debtor ID, or NaN.
    pub fn currency_price(&self, debtor_id: i64) -> f32 {
        self.tradable_currency(debtor_id)
            .map_or(f32::NAN, |c| c.price)
    }

    /// All tradable currencies, in registration order.
    pub fn tradable(&self) -> impl Iterator<Item = &PricedCurrency> {
        self.currencies.iter().filter(|c| c.is_tradable())
    }
}

#[cfg(test)]
mod tests;
