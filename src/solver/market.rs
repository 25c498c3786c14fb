//! The market a matcher works on: tradable currencies and one net order per account.
//!
//! Built from a [`TurnInput`] and the prepared prices. Offers are put in a canonical order
//! (by currency, then creditor), so the solve does not depend on the order of the input rows.
//! A creditor that both sells and buys one currency gets a single order for the difference;
//! orders below the minimum trade amount are dropped, since they could never be filled.

use super::input::{BuyOffer, SellOffer, TurnInput};
use super::numeric::FxHashMap;
use super::pricing::CurrencyPrices;
use thiserror::Error;

/// An input row that the solver refuses.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum OfferError {
    /// Two sell offers for one (creditor, debtor) pair.
    #[error("duplicated sell offer: creditor {creditor_id}, debtor {debtor_id}")]
    DuplicatedSellOffer {
        /// The seller.
        creditor_id: i64,
        /// The currency.
        debtor_id: i64,
    },
    /// Two buy offers for one (creditor, debtor) pair.
    #[error("duplicated buy offer: creditor {creditor_id}, debtor {debtor_id}")]
    DuplicatedBuyOffer {
        /// The buyer.
        creditor_id: i64,
        /// The currency.
        debtor_id: i64,
    },
    /// An offer with a non-positive amount, a seller with ID 0 or a collector with ID 0.
    #[error("invalid offer: creditor {creditor_id}, debtor {debtor_id}")]
    InvalidOffer {
        /// The creditor of the offer.
        creditor_id: i64,
        /// The currency.
        debtor_id: i64,
    },
}

/// A currency that can be traded: tradable, with a positive, finite price.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MarketCurrency {
    /// The currency's debtor ID.
    pub debtor_id: i64,
    /// The value of one token in base units.
    pub price: f32,
}

/// Which way an order goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Side {
    /// The creditor gives tokens.
    Sell,
    /// The creditor receives tokens.
    Buy,
}

/// One account's net order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Order {
    /// The creditor.
    pub creditor_id: i64,
    /// Index into [`Market::currencies`].
    pub currency: u32,
    /// Sell or buy.
    pub side: Side,
    /// The most tokens that may change hands (at least the minimum trade amount).
    pub amount: i64,
    /// The collector of the account's sell offer, or 0 if it had none.
    pub collector_id: i64,
}

/// Everything a [`Matcher`](super::matching::Matcher) needs.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Market {
    /// Tradable currencies, by ascending debtor ID.
    pub currencies: Vec<MarketCurrency>,
    /// Orders, by ascending (currency, creditor ID).
    pub orders: Vec<Order>,
    /// The smallest number of tokens of its currency that any leg of a trade may move.
    pub min_trade_amount: i64,
}

impl Market {
    /// Builds the market of a turn from its offers and the prepared prices.
    pub fn build(input: &TurnInput, prices: &CurrencyPrices) -> Result<Market, OfferError> {
        let currencies = market_currencies(prices);
        let index: FxHashMap<i64, u32> = currencies
            .iter()
            .enumerate()
            .map(|(i, c)| (c.debtor_id, i as u32))
            .collect();
        // The sorts are independent: a second thread sorts the first part of the buys, this one
        // the sells and the rest of the buys (there are usually more buys than sells), and the
        // two runs of buys are merged.
        let offers = &input.buy_offers;
        let split = offers
            .len()
            .min((offers.len() + input.sell_offers.len()) / 2);
        let (sells, first, second) = std::thread::scope(|scope| {
            let first = scope.spawn(|| sorted_buys(&offers[..split], &index));
            let sells = sorted_sells(&input.sell_offers, &index);
            let second = sorted_buys(&offers[split..], &index);
            (
                sells,
                first.join().expect("the buy sort does not panic"),
                second,
            )
        });
        let sells = sells?;
        let buys = merge_buys(first?, second?);
        check_buys(&buys)?;
        let min = input.params.min_trade_amount.max(1);
        let orders = net_orders(&sells, &buys, &index, min);
        Ok(Market {
            currencies,
            orders,
            min_trade_amount: min,
        })
    }

    /// The price of an order's currency.
    pub fn price(&self, order: &Order) -> f64 {
        f64::from(self.currencies[order.currency as usize].price)
    }

    /// The debtor ID of an order's currency.
    pub fn debtor_id(&self, order: &Order) -> i64 {
        self.currencies[order.currency as usize].debtor_id
    }
}

/// Tradable currencies whose price is positive and finite, by debtor ID.
///
/// The reference admits `+inf` prices (docs/turns.md#pricing-edge-cases), which lets a cycle
/// hand out tokens of other currencies for nothing; we leave such currencies out.
fn market_currencies(prices: &CurrencyPrices) -> Vec<MarketCurrency> {
    let mut currencies: Vec<MarketCurrency> = prices
        .tradable()
        .filter(|c| c.price > 0.0 && c.price.is_finite())
        .map(|c| MarketCurrency {
            debtor_id: c.debtor_id,
            price: c.price,
        })
        .collect();
    currencies.sort_by_key(|c| c.debtor_id);
    currencies
}

/// Sell offers in market currencies, sorted by (debtor, creditor), checked for duplicates.
fn sorted_sells(
    offers: &[SellOffer],
    index: &FxHashMap<i64, u32>,
) -> Result<Vec<SellOffer>, OfferError> {
    let mut sells = Vec::with_capacity(offers.len());
    for o in offers.iter().filter(|o| index.contains_key(&o.debtor_id)) {
        if o.amount <= 0 || o.creditor_id == 0 || o.collector_id == 0 {
            return Err(OfferError::InvalidOffer {
                creditor_id: o.creditor_id,
                debtor_id: o.debtor_id,
            });
        }
        sells.push(*o);
    }
    sells.sort_unstable_by_key(|o| (o.debtor_id, o.creditor_id));
    match sells.windows(2).find(|w| key(&w[0]) == key(&w[1])) {
        Some(w) => Err(OfferError::DuplicatedSellOffer {
            creditor_id: w[0].creditor_id,
            debtor_id: w[0].debtor_id,
        }),
        None => Ok(sells),
    }
}

/// Buy offers in market currencies, sorted by (debtor, creditor).
fn sorted_buys(
    offers: &[BuyOffer],
    index: &FxHashMap<i64, u32>,
) -> Result<Vec<BuyOffer>, OfferError> {
    let mut buys = Vec::with_capacity(offers.len());
    for o in offers.iter().filter(|o| index.contains_key(&o.debtor_id)) {
        if o.amount <= 0 {
            return Err(OfferError::InvalidOffer {
                creditor_id: o.creditor_id,
                debtor_id: o.debtor_id,
            });
        }
        buys.push(*o);
    }
    buys.sort_unstable_by_key(|o| (o.debtor_id, o.creditor_id));
    Ok(buys)
}

/// Merges two runs of buy offers sorted by (debtor, creditor).
fn merge_buys(a: Vec<BuyOffer>, b: Vec<BuyOffer>) -> Vec<BuyOffer> {
    if b.is_empty() {
        return a;
    }
    let mut merged = Vec::with_capacity(a.len() + b.len());
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        if (b[j].debtor_id, b[j].creditor_id) < (a[i].debtor_id, a[i].creditor_id) {
            merged.push(b[j]);
            j += 1;
        } else {
            merged.push(a[i]);
            i += 1;
        }
    }
    merged.extend_from_slice(&a[i..]);
    merged.extend_from_slice(&b[j..]);
    merged
}

/// Refuses sorted buy offers with a repeated (debtor, creditor) pair.
fn check_buys(buys: &[BuyOffer]) -> Result<(), OfferError> {
    match buys
        .windows(2)
        .find(|w| (w[0].debtor_id, w[0].creditor_id) == (w[1].debtor_id, w[1].creditor_id))
    {
        Some(w) => Err(OfferError::DuplicatedBuyOffer {
            creditor_id: w[0].creditor_id,
            debtor_id: w[0].debtor_id,
        }),
        None => Ok(()),
    }
}

fn key(o: &SellOffer) -> (i64, i64) {
    (o.debtor_id, o.creditor_id)
}

/// Merges sorted sells and buys into one net order per account.
///
/// Buyer ID 0 is dropped: the reference accepts it but can never match it.
fn net_orders(
    sells: &[SellOffer],
    buys: &[BuyOffer],
    index: &FxHashMap<i64, u32>,
    min: i64,
) -> Vec<Order> {
    let mut orders = Vec::with_capacity(sells.len() + buys.len());
    let (mut s, mut b) = (0, 0);
    while s < sells.len() || b < buys.len() {
        let sk = sells.get(s).map(key);
        let bk = buys.get(b).map(|o| (o.debtor_id, o.creditor_id));
        let (sell, buy) = match (sk, bk) {
            (Some(x), Some(y)) if x == y => (Some(&sells[s]), Some(&buys[b])),
            (Some(x), Some(y)) if x < y => (Some(&sells[s]), None),
            (Some(_), None) => (Some(&sells[s]), None),
            _ => (None, Some(&buys[b])),
        };
        s += usize::from(sell.is_some());
        b += usize::from(buy.is_some());
        let (debtor_id, creditor_id) = sell.map_or_else(|| bk.expect("a buy"), key);
        let net =
            i128::from(buy.map_or(0, |o| o.amount)) - i128::from(sell.map_or(0, |o| o.amount));
        let (side, amount) = if net < 0 {
            (Side::Sell, -net)
        } else {
            (Side::Buy, net)
        };
        if amount < i128::from(min) || (side == Side::Buy && creditor_id == 0) {
            continue;
        }
        orders.push(Order {
            creditor_id,
            currency: index[&debtor_id],
            side,
            amount: amount as i64,
            collector_id: sell.map_or(0, |o| o.collector_id),
        });
    }
    orders
}
