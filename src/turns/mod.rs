//! Trading turns (see `docs/turns.md`): the solver's turn loop ([`solver`]) and when turns
//! start ([`schedule`]).

pub mod schedule;
pub mod solver;
pub mod worker;
