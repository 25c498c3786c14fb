//! The solver database: turns, collector accounts, currencies, offers and the results of
//! solving a turn (docs/turns.md#solver-database-tables).

pub mod collectors;
pub mod reports;
pub mod schema;
pub mod turns;
