//! raftkv-core: the sans-IO heart of raftkv.
//!
//! Every state machine here has the same shape: feed an event with `handle(now, input)`, drain
//! `poll_output()` until it returns `None`, and call `handle(now, Timeout)` at `poll_timeout()`.
//! Nothing here reads a clock, touches a socket or a file, or spawns a thread: drivers do that,
//! and the simulator drives the very same code through seeded faults.
//!
//! - [`raft`]: consensus, a [`raft::RaftNode`] per server.
//! - [`server::Replica`]: Raft plus client [`session`]s plus a [`StateMachine`], here the
//!   key-value store of [`kv`].
//! - [`client::Clerk`]: the client that finds the leader and retries exactly-once.

mod bytes;
pub mod client;
mod encoding;
pub mod ids;
pub mod kv;
pub mod prng;
pub mod protocol;
pub mod raft;
pub mod server;
pub mod session;
pub mod snapshot_job;
pub mod state_machine;
pub mod time;

pub use ids::{ClientId, LogId, LogIndex, NodeId, RequestId, Term};
pub use state_machine::StateMachine;
pub use time::{Duration, Instant};
