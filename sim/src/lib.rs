//! raftkv-sim: a deterministic simulator for raftkv.
//!
//! One thread, one virtual clock, one queue of events ordered by (time, sequence number), and
//! one seed: the seed's generator hands sub-seeds to every node, disk, the network, the
//! workload and the fault injector, so the same seed gives the same run, byte for byte (the
//! trace hash says so). The very same core that runs in production is driven through a network
//! that loses, duplicates, delays and partitions, disks that are slow and lose what was not
//! acknowledged, crashes, pauses and drifting clocks. Raft's safety properties are checked from
//! outside at every step ([`checks`]), and each run ends with a liveness phase, final reads
//! and a linearizability check of the whole history.
//!
//! - [`run`]: one random run of a seed of the key-value store (what `raftkv-sim run` does).
//! - [`Simulation`]: the same machinery, scripted by a test (crash this node, cut that link).
//! - [`Options`]: every setting, drawn from the seed (swarm testing) or set by hand.
//! - [`catch_up`]: the time a follower far behind takes to catch up (`raftkv-sim catchup`).
//!
//! # Your own state machine
//!
//! The simulator runs any [`raftkv_core::StateMachine`], not only the key-value store: a
//! [`Machine`] names the state machine, draws its clients' random commands, and turns the
//! history into operations of a [`raftkv_checker::Model`], the sequential specification that
//! judges it. [`run_machine`] then gives seeded runs with every fault class and a
//! linearizability verdict for it ([`Simulation::with_machine`] for scripted ones).
//! [`KvMachine`] is the key-value store's; the crate's `examples/counters` holds replicated
//! counters with conditional additions (`cargo run -p raftkv-sim --example counters`). A
//! seed's run, with the key-value store as the machine:
//!
//! ```
//! use raftkv_sim::{KvMachine, Options, Shape, TraceOutput};
//!
//! let options = Options::draw(7, Shape::draw(7)); // Faults, rates and shape from the seed.
//! let machine = KvMachine::new(options.workload.clone());
//! let report = raftkv_sim::run_machine(machine, options, TraceOutput::Hidden);
//! assert!(report.passed(), "{}", report.verdict_line());
//! ```

#![warn(missing_docs)]

mod catch_up;
pub mod checks;
mod clock;
mod disk;
mod event;
mod faults;
pub mod history;
mod kv_machine;
mod machine;
mod membership_faults;
mod membership_plan;
mod membership_stats;
mod network;
mod node;
mod node_ids;
pub mod options;
mod persisted;
mod phase;
mod quorum_checks;
mod recorded;
mod report;
mod run;
mod simulation;
pub mod trace;
mod workload;

pub use catch_up::{CatchUp, CatchUpSettings, catch_up};
pub use checks::{Check, Violation};
pub use kv_machine::KvMachine;
pub use machine::{CheckedOf, CommandOf, Machine, ReplyOf};
pub use membership_stats::MembershipStats;
pub use node::Kv;
pub use options::{
    FaultSet, MembershipOptions, Options, RaftOptions, Ratio, SIM_LOG_CACHE_BYTES, Shape,
    SnapshotOptions,
};
pub use persisted::PersistedMax;
pub use raftkv_storage::sim_fs::FaultCounters;
pub use raftkv_testkit::Endpoint;
pub use recorded::{OpId, Recorded};
pub use report::Report;
pub use run::{run, run_machine};
pub use simulation::{Simulation, Stats};
pub use trace::TraceOutput;
