//! raftkv-core: the sans-IO heart of raftkv.
//!
//! Every state machine here has the same shape: feed an event with `handle(now, input)`, drain
//! `poll_output()` until it returns `None`, and call `handle(now, Timeout)` at `poll_timeout()`.
//! Nothing here reads a clock, touches a socket or a file, or spawns a thread: drivers do that,
//! and the simulator drives the very same code through seeded faults.

pub mod ids;
pub mod prng;
pub mod raft;
pub mod time;

pub use ids::{ClientId, LogId, LogIndex, NodeId, RequestId, Term};
pub use time::Instant;
