//! The solver database: turns, collector accounts, currencies, offers and the results of
//! solving a turn (solver.md §2).

pub mod schema;
