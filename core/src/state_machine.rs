//! The replicated state machine that committed commands are applied to.

use core::fmt;
use std::io;

use serde::Serialize;
use serde::de::DeserializeOwned;

/// A deterministic state machine: every replica applies the same commands in the same order and
/// must reach the same state and replies.
///
/// Determinism is the whole contract: `apply` and `read` may depend on the state and the
/// command only (no clock, no randomness, no iteration over a `HashMap`), and
/// [`restore`](Self::restore) of an encoding must give a state that behaves exactly like the
/// one encoded. Commands and replies travel as `serde` values (in the log, in snapshots of the
/// sessions, on the wire), so changing their encoding is changing the disk format.
///
/// A replicated counter with a conditional add, run by a [`Replica`](crate::server::Replica)
/// like the key-value store:
///
/// ```
/// use std::io;
///
/// use raftkv_core::raft::{Config, Recovered};
/// use raftkv_core::server::{Replica, ReplicaConfig};
/// use raftkv_core::state_machine::{InvalidCommand, RestoreError, StateMachine};
/// use raftkv_core::{Instant, NodeId};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Default)]
/// struct Counter(u64);
///
/// #[derive(Clone, Debug, Serialize, Deserialize)]
/// enum CounterCommand {
///     Read,
///     /// Adds `amount` if the counter holds `expected` (`None`: whatever it holds).
///     Add { amount: u64, expected: Option<u64> },
/// }
///
/// #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
/// enum CounterReply {
///     Value(u64),
///     /// The counter did not hold what was expected; it holds `actual`.
///     Unchanged { actual: u64 },
/// }
///
/// impl StateMachine for Counter {
///     type Command = CounterCommand;
///     type Reply = CounterReply;
///     type View = u64; // A copy of the state is a point-in-time view.
///
///     fn is_read_only(command: &CounterCommand) -> bool {
///         matches!(command, CounterCommand::Read)
///     }
///
///     fn validate(&self, command: &CounterCommand) -> Result<(), InvalidCommand> {
///         match command {
///             CounterCommand::Add { amount: 0, .. } => {
///                 Err(InvalidCommand { reason: "adding 0 changes nothing".to_owned() })
///             }
///             _ => Ok(()),
///         }
///     }
///
///     fn apply(&mut self, command: &CounterCommand) -> CounterReply {
///         match *command {
///             CounterCommand::Add { expected: Some(expected), .. } if expected != self.0 => {
///                 CounterReply::Unchanged { actual: self.0 }
///             }
///             CounterCommand::Add { amount, .. } => {
///                 // Saturates: every replica must reach the same state, and never panic.
///                 self.0 = self.0.saturating_add(amount);
///                 CounterReply::Value(self.0)
///             }
///             CounterCommand::Read => self.read(command),
///         }
///     }
///
///     fn read(&self, _command: &CounterCommand) -> CounterReply {
///         CounterReply::Value(self.0)
///     }
///
///     fn view(&self) -> u64 {
///         self.0
///     }
///
///     fn encoded_len(_view: &u64) -> u64 {
///         8
///     }
///
///     fn encode_into(view: &u64, out: &mut dyn io::Write) -> io::Result<()> {
///         out.write_all(&view.to_le_bytes())
///     }
///
///     fn restore(&mut self, snapshot: &[u8]) -> Result<(), RestoreError> {
///         let bytes = snapshot.try_into().map_err(|_| RestoreError {
///             reason: format!("a counter is 8 bytes, not {}", snapshot.len()),
///         })?;
///         self.0 = u64::from_le_bytes(bytes);
///         Ok(())
///     }
/// }
///
/// let mut counter = Counter::default();
/// let add = CounterCommand::Add { amount: 5, expected: None };
/// assert_eq!(counter.apply(&add), CounterReply::Value(5));
/// let stale = CounterCommand::Add { amount: 1, expected: Some(4) };
/// assert_eq!(counter.apply(&stale), CounterReply::Unchanged { actual: 5 });
/// let mut copy = Counter::default();
/// copy.restore(&counter.snapshot()).unwrap();
/// assert_eq!(copy.read(&CounterCommand::Read), CounterReply::Value(5));
/// assert!(copy.restore(b"short").is_err());
///
/// // A replica of it, driven like any other (see the crate's documentation).
/// let config = ReplicaConfig::new(Config::new(NodeId(1), [NodeId(1)]));
/// let replica = Replica::new(Instant::ZERO, config, Recovered::default(), Counter::default());
/// assert_eq!(replica.unwrap().state().0, 0);
/// ```
pub trait StateMachine {
    /// What clients ask for.
    type Command: Clone + fmt::Debug + Serialize + DeserializeOwned;
    /// What a command returns.
    type Reply: Clone
        + fmt::Debug
        + PartialEq
        + Serialize
        + DeserializeOwned
        + Send
        + Sync
        + 'static;
    /// A point-in-time view of the whole state: what a snapshot encodes. Taking one must be
    /// cheap (the node takes it between two events, where a long pause would stall the node),
    /// and later commands applied to the state machine must not change it, so that it can be
    /// encoded elsewhere, at leisure, while the node goes on.
    type View: Send + Sync + 'static;

    /// Whether `command` only reads. Such commands are served by the leader after a ReadIndex
    /// confirmation and never enter the log.
    fn is_read_only(command: &Self::Command) -> bool;

    /// Refuses a command before it reaches the log (too large, malformed), with a reason for
    /// the client.
    fn validate(&self, command: &Self::Command) -> Result<(), InvalidCommand>;

    /// Applies a committed command.
    fn apply(&mut self, command: &Self::Command) -> Self::Reply;

    /// Serves a read-only command from the current state.
    fn read(&self, command: &Self::Command) -> Self::Reply;

    /// A view of the state as applied so far (see [`View`](Self::View)).
    fn view(&self) -> Self::View;

    /// The size of a view's encoding, in bytes: what [`encode_into`](Self::encode_into)
    /// writes, known before it writes anything (a file's header comes first).
    fn encoded_len(view: &Self::View) -> u64;

    /// Writes a view's encoding, the bytes [`restore`](Self::restore) reads back, to `out`
    /// (buffered by the caller: encodings write a few bytes at a time). Takes time in
    /// proportion to the state; the driver chooses where it runs.
    fn encode_into(view: &Self::View, out: &mut dyn io::Write) -> io::Result<()>;

    /// Writes a view's encoding as [`encode_into`](Self::encode_into) does, letting go of the
    /// view as it goes: a state machine whose view shares parts with the state may free each
    /// part once written, so that the commands applied meanwhile copy fewer of them on write.
    /// What a snapshot's driver calls; by default, `encode_into`.
    fn encode_consuming(view: Self::View, out: &mut dyn io::Write) -> io::Result<()> {
        Self::encode_into(&view, out)
    }

    /// A view's encoding, in memory.
    fn encode(view: &Self::View) -> Vec<u8> {
        let mut out = Vec::with_capacity(usize::try_from(Self::encoded_len(view)).unwrap_or(0));
        Self::encode_into(view, &mut out).expect("writing into a Vec cannot fail");
        out
    }

    /// The whole state, encoded now.
    fn snapshot(&self) -> Vec<u8> {
        Self::encode(&self.view())
    }

    /// Replaces the whole state with a decoded snapshot.
    fn restore(&mut self, snapshot: &[u8]) -> Result<(), RestoreError>;

    /// Like [`restore`](Self::restore), from an encoding read from `snapshot` to its end (a
    /// snapshot received from the leader, read back from the driver's disk). The default reads
    /// it whole first; a state machine with large states decodes it as it reads, so that the
    /// encoding is never held whole beside the state.
    fn restore_from(&mut self, snapshot: &mut dyn io::Read) -> Result<(), RestoreError> {
        let mut encoding = Vec::new();
        snapshot.read_to_end(&mut encoding)?;
        self.restore(&encoding)
    }
}

/// A command refused before it was proposed.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct InvalidCommand {
    /// Why, for the client.
    pub reason: String,
}

/// A snapshot that does not decode: the bytes are corrupt or from another state machine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RestoreError {
    /// What failed to decode.
    pub reason: String,
}

impl fmt::Display for InvalidCommand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reason)
    }
}

/// A snapshot that could not be read (from a driver's disk, where a checksum failed).
impl From<io::Error> for RestoreError {
    fn from(error: io::Error) -> RestoreError {
        RestoreError { reason: error.to_string() }
    }
}

impl fmt::Display for RestoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "snapshot does not decode: {}", self.reason)
    }
}

impl std::error::Error for InvalidCommand {}
impl std::error::Error for RestoreError {}
