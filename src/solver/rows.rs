//! The rows of the six phase-3 result tables (docs/turns.md#the-six-result-tables), one struct
//! per table.
//!
//! Field names and order are the tables' columns in DDL order, so the database layer can insert
//! them as they are and the CSV writer can use the field names as its header.

/// A `creditor_taking` row: an amount to withdraw from a creditor's account.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CreditorTaking {
    /// The turn.
    pub turn_id: i32,
    /// The creditor that gives.
    pub creditor_id: i64,
    /// The currency.
    pub debtor_id: i64,
    /// `calc_hash(creditor_id)`.
    pub creditor_hash: i16,
    /// Tokens to withdraw (> 0).
    pub amount: i64,
    /// The collector that receives the amount.
    pub collector_id: i64,
}

/// A `collector_collecting` row: the same withdrawal seen from the collector.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CollectorCollecting {
    /// The turn.
    pub turn_id: i32,
    /// The currency.
    pub debtor_id: i64,
    /// The creditor that gives.
    pub creditor_id: i64,
    /// Tokens to collect (> 0).
    pub amount: i64,
    /// The collector.
    pub collector_id: i64,
    /// `calc_hash(collector_id)`.
    pub collector_hash: i16,
}

/// A `collector_sending` row: an amount one collector must transfer to another.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CollectorSending {
    /// The turn.
    pub turn_id: i32,
    /// The currency.
    pub debtor_id: i64,
    /// The sending collector.
    pub from_collector_id: i64,
    /// The receiving collector (never the sender).
    pub to_collector_id: i64,
    /// `calc_hash(from_collector_id)`.
    pub from_collector_hash: i16,
    /// Tokens to send (> 0).
    pub amount: i64,
}

/// A `collector_receiving` row: the same transfer seen from the receiving collector.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CollectorReceiving {
    /// The turn.
    pub turn_id: i32,
    /// The currency.
    pub debtor_id: i64,
    /// The receiving collector.
    pub to_collector_id: i64,
    /// The sending collector (never the receiver).
    pub from_collector_id: i64,
    /// `calc_hash(to_collector_id)`.
    pub to_collector_hash: i16,
    /// Tokens to receive (> 0).
    pub amount: i64,
}

/// A `collector_dispatching` row: an amount a collector must deposit to a creditor's account.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CollectorDispatching {
    /// The turn.
    pub turn_id: i32,
    /// The currency.
    pub debtor_id: i64,
    /// The creditor that receives.
    pub creditor_id: i64,
    /// Tokens to deposit (> 0).
    pub amount: i64,
    /// The collector.
    pub collector_id: i64,
    /// `calc_hash(collector_id)`.
    pub collector_hash: i16,
}

/// A `creditor_giving` row: the same deposit seen from the creditor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CreditorGiving {
    /// The turn.
    pub turn_id: i32,
    /// The creditor that receives.
    pub creditor_id: i64,
    /// The currency.
    pub debtor_id: i64,
    /// `calc_hash(creditor_id)`.
    pub creditor_hash: i16,
    /// Tokens to deposit (> 0).
    pub amount: i64,
    /// The collector that pays the amount.
    pub collector_id: i64,
}

/// The six result tables of a solved turn.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ResultRows {
    /// `creditor_taking` rows, by (debtor ID, creditor ID).
    pub creditor_taking: Vec<CreditorTaking>,
    /// `collector_collecting` rows, paired 1:1 with `creditor_taking`.
    pub collector_collecting: Vec<CollectorCollecting>,
    /// `collector_sending` rows, by (debtor ID, from, to).
    pub collector_sending: Vec<CollectorSending>,
    /// `collector_receiving` rows, paired 1:1 with `collector_sending`.
    pub collector_receiving: Vec<CollectorReceiving>,
    /// `collector_dispatching` rows, paired 1:1 with `creditor_giving`.
    pub collector_dispatching: Vec<CollectorDispatching>,
    /// `creditor_giving` rows, by (debtor ID, creditor ID).
    pub creditor_giving: Vec<CreditorGiving>,
}
