//! A snapshot the replica hands its driver to encode and make durable, away from the node.
//!
//! Taking a snapshot has a cheap part and a long one. The cheap part happens in the replica,
//! between two events: a point-in-time view of the state machine (`StateMachine::view`) and a
//! copy of the client sessions, at an applied index that is durable on this node. The long
//! part, [`SnapshotJob::encode`] and writing the result, is the driver's, on whatever thread
//! it likes; it then tells the replica with `Input::SnapshotSaved`, and only then does the
//! node drop the log entries the snapshot covers.

use core::fmt;
use std::io;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use serde::Serialize;

use crate::encoding::encoded_len;
use crate::ids::LogId;
use crate::raft::{Membership, Snapshot};
use crate::session::Sessions;
use crate::state_machine::StateMachine;

/// What a replica's snapshot holds: the sessions and the state machine's own snapshot (the
/// decoder, `SnapshotIn` in `server`, reads these fields).
#[cfg(test)]
#[derive(Serialize)]
struct SnapshotOut<'a, R> {
    sessions: &'a Sessions<R>,
    #[serde(with = "crate::bytes")]
    state: Vec<u8>,
}

/// What one snapshot encodes, whatever the state machine: `SnapshotOut`, written without
/// holding it in memory (the state's length first, then the state as it is encoded).
trait Encode: Send + Sync {
    fn data_len(&self) -> u64;
    fn write_data(&self, out: &mut dyn io::Write) -> io::Result<()>;
}

/// A view of a state machine and the sessions, with the state machine's encoding of views.
struct Parts<V, R> {
    /// Taken out when the data is written, which lets go of it as it goes.
    view: Mutex<Option<V>>,
    /// The size of the view's encoding, once asked for or written.
    state_len: OnceLock<u64>,
    sessions: Sessions<R>,
    measure_state: fn(&V) -> u64,
    encode_state: fn(V, &mut dyn io::Write) -> io::Result<()>,
}

impl<V: Send, R: Serialize + Send + Sync> Parts<V, R> {
    fn state_len(&self) -> io::Result<u64> {
        if let Some(&state_len) = self.state_len.get() {
            return Ok(state_len);
        }
        let view = self.view.lock().unwrap_or_else(PoisonError::into_inner);
        let view = view.as_ref().ok_or_else(written_once)?;
        Ok(*self.state_len.get_or_init(|| (self.measure_state)(view)))
    }
}

/// The error of a second write of a snapshot's data.
fn written_once() -> io::Error {
    io::Error::other("a snapshot's data is written once: its view was let go of")
}

impl<V: Send, R: Serialize + Send + Sync> Encode for Parts<V, R> {
    fn data_len(&self) -> u64 {
        // The length is known before the view is taken (`write_data` asks for it first).
        let state_len = self.state_len().expect("the size is kept before the view is let go of");
        let sessions = encoded_len(&self.sessions);
        sessions.saturating_add(encoded_len(&state_len)).saturating_add(state_len)
    }

    fn write_data(&self, out: &mut dyn io::Write) -> io::Result<()> {
        let state_len = self.state_len()?;
        let view = self.view.lock().unwrap_or_else(PoisonError::into_inner).take();
        let view = view.ok_or_else(written_once)?;
        // As `SnapshotOut`: the sessions, then the state as a byte string (its length, as
        // postcard writes one, then its bytes).
        postcard::to_io(&self.sessions, &mut *out).map_err(io::Error::other)?;
        postcard::to_io(&state_len, &mut *out).map_err(io::Error::other)?;
        (self.encode_state)(view, out)
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
        let parts = Parts {
            view: Mutex::new(Some(view)),
            state_len: OnceLock::new(),
            sessions,
            measure_state: S::encoded_len,
            encode_state: S::encode_consuming,
        };
        SnapshotJob { last, membership, parts: Arc::new(parts) }
    }

    /// The last entry the snapshot covers.
    pub fn last(&self) -> LogId {
        self.last
    }

    /// The membership in force at `last`.
    pub fn membership(&self) -> &Membership {
        &self.membership
    }

    /// The size of the snapshot's data, known before it is written.
    pub fn data_len(&self) -> u64 {
        self.parts.data_len()
    }

    /// Writes the snapshot's data (`data_len` bytes) to `out`, buffered by the caller: time
    /// in proportion to the state, so not on the node's thread. Save it, then answer
    /// `Input::SnapshotSaved`. The data is written once (by this job or a clone of it): the
    /// view is let go of as it is written ([`StateMachine::encode_consuming`]), so that the
    /// node's writes meanwhile copy less; a second write fails.
    pub fn write_data(&self, out: &mut dyn io::Write) -> io::Result<()> {
        self.parts.write_data(out)
    }

    /// Encodes the snapshot in memory (for drivers whose states are small: tests, the
    /// simulator); once, as [`write_data`](Self::write_data).
    pub fn encode(&self) -> Snapshot {
        let mut data = Vec::with_capacity(usize::try_from(self.data_len()).unwrap_or(0));
        self.write_data(&mut data).expect("writing into a Vec cannot fail");
        Snapshot { last: self.last, membership: self.membership.clone(), data }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{ClientId, LogIndex, RequestId, Term};
    use crate::kv::{KvCommand, KvReply, KvStore};
    use crate::raft::Membership;

    #[test]
    fn the_data_written_is_the_snapshot_out_encoding_of_the_announced_size() {
        let mut state = KvStore::default();
        for i in 0..200 {
            let value = vec![b'v'; i * 3];
            state.apply(&KvCommand::Put { key: format!("key-{i}").into_bytes(), value });
        }
        let mut sessions = Sessions::<KvReply>::new(60_000);
        sessions.open(ClientId(7));
        sessions.record(ClientId(7), RequestId(3), KvReply::Done);
        let last = crate::ids::LogId::new(LogIndex(90), Term(2));
        let job = SnapshotJob::new::<KvStore>(
            last,
            Membership::default(),
            state.view(),
            sessions.clone(),
        );
        let expected =
            postcard::to_allocvec(&SnapshotOut { sessions: &sessions, state: state.snapshot() })
                .unwrap();
        let snapshot = job.encode();
        assert_eq!(snapshot.data, expected);
        assert_eq!(job.data_len(), expected.len() as u64);
        let mut again = Vec::new();
        assert!(job.clone().write_data(&mut again).is_err(), "the view was let go of");
        assert_eq!(job.data_len(), expected.len() as u64, "the size is kept");
        assert_eq!(snapshot.last, last);
    }
}
