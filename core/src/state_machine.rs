//! The replicated state machine that committed commands are applied to.

use core::fmt;
use std::io;

use serde::Serialize;
use serde::de::DeserializeOwned;

/// A deterministic state machine: every replica applies the same commands in the same order and
/// must reach the same state and replies.
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

impl fmt::Display for RestoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "snapshot does not decode: {}", self.reason)
    }
}

impl std::error::Error for InvalidCommand {}
impl std::error::Error for RestoreError {}
