//! A worker database (one per shard): the outbox signal tables, trading policies, collector
//! accounts, debtor info documents, account locks and transfers (worker.md §5).

pub mod schema;
