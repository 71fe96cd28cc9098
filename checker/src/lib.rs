//! Linearizability checker for raftkv histories.
//!
//! A history is the list of operations clients issued, each with the interval from its call to
//! its return. It is linearizable if every operation can be given a point inside its interval
//! such that, taken in the order of those points, the operations return what a single copy of
//! the store would have returned. Operations whose return is unknown (`ret: None`) may take
//! effect at any point after their call, or never.
//!
//! Times are integers on one clock shared by all clients, in any unit; an operation that returned
//! at the instant another was called counts as concurrent with it.
//!
//! The checker is the search of Wing & Gong as refined by Lowe, run separately on each
//! partition of the history (for the key-value store, each key) in parallel. Its verdict is
//! never a guess: when the time limit runs out first, it is [`Verdict::Unknown`]. Short of
//! that, the report depends on the history alone, not on threads or timing, so that a
//! simulator's output stays reproducible.
//!
//! ```
//! use std::time::Duration;
//! use raftkv_checker::{Command, KvModel, Operation, Verdict, check};
//!
//! let history = vec![
//!     Operation { id: 0, client: 1, call: 10, ret: Some(20), key: "x".into(),
//!                 command: Command::Put { value: "1".into() } },
//!     Operation { id: 1, client: 2, call: 30, ret: Some(40), key: "x".into(),
//!                 command: Command::Get { output: Some("".into()) } },
//! ];
//! let report = check(&history, &KvModel, Some(Duration::from_secs(10)));
//! assert_eq!(report.verdict, Verdict::NotLinearizable);
//! // A summary line, then why: key "x" cannot read "" after the put returned.
//! println!("{report}");
//! ```
//!
//! Histories in our JSON Lines format are written with [`parse::jsonl::write`] and
//! read with [`parse::jsonl::parse`] or [`parse::read`], which also reads Porcupine's key-value
//! logs and Jepsen's etcd logs. [`html::Page`] draws checked histories as a web page.

#![warn(missing_docs)]

mod bitset;
mod check;
mod entries;
mod explain;
mod fxhash;
mod history;
pub mod html;
mod model;
pub mod models;
pub mod parse;
mod pending;
mod report;
mod search;
mod visited;

pub use check::{Limits, check, check_within};
pub use history::{BatchStep, Command, Operation, PutCondition, ScanOutput, ScanRange};
pub use model::{Model, Partition, Recorded};
pub use models::kv::{KvModel, KvState};
pub use models::register::{ReadOutput, RegisterCommand, RegisterModel, RegisterOperation};
pub use report::{
    DescribedOperation, PartitionOutcome, PartitionReport, Report, StuckOperation, StuckReason,
    Verdict, Violation,
};
