//! A snapshot the replica hands its driver to encode and make durable, away from the node.
//!
//! Taking a snapshot has a cheap part and a long one. The cheap part happens in the replica,
//! between two events: a point-in-time view of the state machine (`StateMachine::view`) and a
//! copy of the client sessions, at an applied index that is durable on this node. The long
//! part, [`SnapshotJob::encode`] and writing the result, is the driver's, on whatever thread
//! it likes; it then tells the replica with `Input::SnapshotSaved`, and only then does the
//! node drop the log entries the snapshot covers.

use core::fmt;
use std::sync::Arc;

use serde::Serialize;

use crate::ids::LogId;
use crate::raft::{Membership, Snapshot};
use crate::session::Sessions;
use crate::state_machine::StateMachine;

/// What a replica's snapshot holds: the sessions and the state machine's own snapshot.
#[derive(Serialize)]
struct SnapshotOut<'a, R> {
    sessions: &'a Sessions<R>,
    #[serde(with = "crate::bytes")]
    state: Vec<u8>,
}

/// The encoding of a replica's snapshot, from its parts.
pub(crate) fn encode_snapshot<R: Serialize>(sessions: &Sessions<R>, state: Vec<u8>) -> Vec<u8> {
    postcard::to_allocvec(&SnapshotOut { sessions, state })
        .expect("encoding into a Vec cannot fail")
}

/// What one snapshot encodes, whatever the state machine.
trait Encode: Send + Sync {
    fn encode(&self) -> Vec<u8>;
}

/// A view of a state machine and the sessions, with the state machine's encoding of views.
struct Parts<V, R> {
    view: V,
    sessions: Sessions<R>,
    encode_view: fn(&V) -> Vec<u8>,
}

impl<V: Send + Sync, R: Serialize + Send + Sync> Encode for Parts<V, R> {
    fn encode(&self) -> Vec<u8> {
        encode_snapshot(&self.sessions, (self.encode_view)(&self.view))
    }
}

/// A snapshot to encode and make durable (see the module's documentation). It owns what it
/// encodes and can be sent to another thread; it is independent of the state machine's type,
/// so that outputs keep theirs.
#[derive(Clone)]
pub struct SnapshotJob {
    last: LogId,
    membership: Membership,
    parts: Arc<dyn Encode>,
}

impl SnapshotJob {
    /// A job for the state `view` and `sessions` at `last`, with `membership` in force there.
    pub(crate) fn new<S: StateMachine>(
        last: LogId,
        membership: Membership,
        view: S::View,
        sessions: Sessions<S::Reply>,
    ) -> SnapshotJob {
        let parts = Parts { view, sessions, encode_view: S::encode };
        SnapshotJob { last, membership, parts: Arc::new(parts) }
    }

    /// The last entry the snapshot covers.
    pub fn last(&self) -> LogId {
        self.last
    }

    /// Encodes the snapshot: time in proportion to the state, so not on the node's thread.
    /// Save the result, then hand it back with `Input::SnapshotSaved`.
    pub fn encode(&self) -> Snapshot {
        Snapshot { last: self.last, membership: self.membership.clone(), data: self.parts.encode() }
    }
}

impl PartialEq for SnapshotJob {
    /// Jobs of the same point and membership encode the same state (a replica's state is a
    /// function of the entries applied).
    fn eq(&self, other: &SnapshotJob) -> bool {
        self.last == other.last && self.membership == other.membership
    }
}

impl Eq for SnapshotJob {}

impl fmt::Debug for SnapshotJob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SnapshotJob")
            .field("last", &self.last)
            .field("membership", &self.membership)
            .finish_non_exhaustive()
    }
}
