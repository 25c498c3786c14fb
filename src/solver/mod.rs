//! The solver: decides who gives what to whom in one trading turn.
//!
//! Pure code: no I/O, no async, no database. [`solve`] takes a [`TurnInput`] (the turn's
//! currencies, active collector accounts and offers) and returns a [`TurnOutput`] (the rows of
//! the six result tables). The stages are separate modules so they can be tested and replaced
//! on their own: [`pricing`], [`matching`] and [`aggregation`].

pub mod input;
pub mod numeric;
pub mod pricing;

pub use input::{BuyOffer, CollectorAccount, CurrencyInfo, SellOffer, TurnInput, TurnParams};
pub mod graph;
pub mod market;
pub mod matching;
pub mod reference;
