//! The solver's input: one turn's parameters, currencies, collector accounts and offers.
//!
//! Field names follow the solver database's columns (docs/turns.md#solver-database-tables), so
//! that the database layer and the CSV loader can fill these structs directly.

/// The base parameters of a turn (a subset of the `turn` table).
#[derive(Clone, Debug, PartialEq)]
pub struct TurnParams {
    /// `turn.turn_id`, copied into every result row.
    pub turn_id: i32,
    /// The debtor info locator of the base currency.
    pub base_debtor_info_locator: String,
    /// The debtor ID of the base currency (never 0).
    pub base_debtor_id: i64,
    /// How many pegs a tradable currency may be away from the base (> 0).
    pub max_distance_to_base: i16,
    /// The smallest amount, in tokens of its currency, that may change hands (> 0).
    pub min_trade_amount: i64,
}

/// One `currency_info` row.
#[derive(Clone, Debug, PartialEq)]
pub struct CurrencyInfo {
    /// The locator of the currency's debtor info document (primary key within a turn).
    pub debtor_info_locator: String,
    /// The currency's debtor ID.
    pub debtor_id: i64,
    /// The locator of the currency it is pegged to, if any.
    pub peg_debtor_info_locator: Option<String>,
    /// The debtor ID of the currency it is pegged to, if any.
    pub peg_debtor_id: Option<i64>,
    /// How many peg-currency units one unit of this currency is worth, if pegged.
    pub peg_exchange_rate: Option<f64>,
    /// Whether the debtor confirmed the locator and an active collector account exists.
    pub is_confirmed: bool,
}

impl CurrencyInfo {
    /// Returns the peg as (locator, debtor ID, rate) when all three peg columns are present.
    pub fn peg(&self) -> Option<(&str, i64, f64)> {
        match (
            &self.peg_debtor_info_locator,
            self.peg_debtor_id,
            self.peg_exchange_rate,
        ) {
            (Some(locator), Some(id), Some(rate)) => Some((locator.as_str(), id, rate)),
            _ => None,
        }
    }
}

/// One active (`status = 2`) `collector_account` row.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CollectorAccount {
    /// The currency the collector account is in.
    pub debtor_id: i64,
    /// The creditor ID of the collector account.
    pub collector_id: i64,
}

/// One `sell_offer` row (the amount is positive).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SellOffer {
    /// The seller.
    pub creditor_id: i64,
    /// The currency being sold.
    pub debtor_id: i64,
    /// The most the seller is willing to give, in tokens (> 0).
    pub amount: i64,
    /// The collector that will withdraw the amount from the seller's account.
    pub collector_id: i64,
}

/// One `buy_offer` row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BuyOffer {
    /// The buyer.
    pub creditor_id: i64,
    /// The currency being bought.
    pub debtor_id: i64,
    /// The most the buyer is willing to receive, in tokens (> 0).
    pub amount: i64,
}

/// Everything the solver needs to solve one turn.
#[derive(Clone, Debug, PartialEq)]
pub struct TurnInput {
    /// The turn's base parameters.
    pub params: TurnParams,
    /// The turn's `currency_info` rows, in any order.
    pub currencies: Vec<CurrencyInfo>,
    /// Active collector accounts, in any order.
    pub collectors: Vec<CollectorAccount>,
    /// The turn's sell offers, in any order.
    pub sell_offers: Vec<SellOffer>,
    /// The turn's buy offers, in any order.
    pub buy_offers: Vec<BuyOffer>,
}
