//! Swaptacular "Circular Trade" service.
//!
//! One binary runs every role of the service: the solver, the per-shard workers and the admin
//! API. See `README.md` for the architecture.
pub mod offline;
pub mod solver;
