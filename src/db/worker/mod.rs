//! A worker database (one per shard): the outbox signal tables, trading policies, collector
//! accounts, debtor info documents, account locks and transfers. Queries are grouped by
//! domain; each takes a connection, so it composes inside the caller's transaction.

pub mod accounts;
pub mod collectors;
pub mod debtors;
pub mod locks;
pub mod outbox;
pub mod policies;
pub mod scans;
pub mod schema;
pub mod shard;
pub mod transfers;
pub mod turns;
