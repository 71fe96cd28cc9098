//! The seam between the simulator and what it replicates: a state machine, the random
//! workload its clients run against it, and the sequential specification its history is
//! checked against. The key-value store is one ([`crate::KvMachine`]); a machine of your own
//! gets the same seeded runs, every fault class and a linearizability verdict.

use core::fmt;

use raftkv_checker::Model;
use raftkv_core::StateMachine;
use raftkv_core::prng::Prng;

use crate::recorded::Recorded;

/// What clients of `M` ask.
pub type CommandOf<M> = <<M as Machine>::State as StateMachine>::Command;
/// What `M` answers.
pub type ReplyOf<M> = <<M as Machine>::State as StateMachine>::Reply;
/// One operation of `M`'s history as its checker model takes it.
pub type CheckedOf<M> = <<M as Machine>::Model as Model>::Operation;

/// A replicated state machine as the simulator runs it.
///
/// The simulator draws every random choice from seeded streams and passes the workload's to
/// [`next_command`](Self::next_command), so a machine that draws only from it (and keeps no
/// other source of randomness) keeps runs reproducible from their seed.
pub trait Machine {
    /// The state machine every replica runs. Replicas that applied as far as each other must
    /// hold equal states.
    type State: StateMachine + PartialEq;
    /// The sequential specification of the state machine, which judges the history.
    type Model: Model<Operation: Clone + fmt::Debug>;

    /// The state of a new replica.
    fn new_state(&self) -> Self::State;

    /// The next random command of client `client`, drawn from `rng`.
    fn next_command(&mut self, rng: &mut Prng, client: usize) -> CommandOf<Self>;

    /// Client `client` got `reply` to `command` (to aim later commands, a compare-and-set at a
    /// value it saw, say). Does nothing by default.
    fn observe(&mut self, client: usize, command: &CommandOf<Self>, reply: &ReplyOf<Self>) {
        let _ = (client, command, reply);
    }

    /// The reads issued once the faults have stopped and every operation returned: whatever
    /// the history may leave unread, so that lost writes show.
    fn final_reads(&self) -> Vec<CommandOf<Self>>;

    /// Whether `reply` is an answer of the kind `command` asks for; a reply that is not fails
    /// the run.
    fn reply_fits(command: &CommandOf<Self>, reply: &ReplyOf<Self>) -> bool;

    /// A command a test proposes by hand with [`crate::Simulation::start`], outside any
    /// session, that writes `value`.
    fn hand_command(value: &str) -> CommandOf<Self>;

    /// The model that judges the history.
    fn model(&self) -> Self::Model;

    /// The history in the model's terms. An operation that did not return, or returned not
    /// knowing whether it took effect, has an unknown outcome there.
    fn to_checker(history: &[Recorded<CommandOf<Self>, ReplyOf<Self>>]) -> Vec<CheckedOf<Self>>;

    /// A command in a few words, for traces.
    fn command_text(command: &CommandOf<Self>) -> String {
        format!("{command:?}")
    }

    /// A reply in a few words, for traces.
    fn reply_text(reply: &ReplyOf<Self>) -> String {
        format!("{reply:?}")
    }
}
