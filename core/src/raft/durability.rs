//! Bookkeeping of what is durable: the persists in flight, the last durable log index, and the
//! messages held back until the state they promise is on disk.

use std::collections::VecDeque;

use crate::ids::LogIndex;
use crate::raft::log::{AppendChange, RaftLog};
use crate::raft::message::Message;
use crate::raft::persist::{HardState, Persist, PersistId, ReceivedChunk, SavedSnapshot, Snapshot};

/// Tracks the changes not yet handed to the driver, the persists it has not yet acknowledged,
/// and the messages waiting for them.
///
/// The rule it enforces: a message that promises durable state (a vote grant, an append
/// acknowledgement) leaves only once every change made before it was built is acknowledged.
/// Acknowledgements come in order, so one number, the last acknowledged id, says what is
/// durable.
#[derive(Debug)]
pub(crate) struct Durability {
    hard_state_changed: bool,
    snapshot: Option<Snapshot>,
    /// The leader's snapshot received whole, installed.
    install_received: Option<SavedSnapshot>,
    /// Bytes of the leader's snapshot received since the last persist, consecutive.
    snapshot_chunk: Option<ReceivedChunk>,
    truncate_from: Option<LogIndex>,
    append_from: Option<LogIndex>,
    /// Id of the next persist to hand out.
    next_id: u64,
    /// Highest id acknowledged by the driver.
    acknowledged: u64,
    /// Persists handed out, not yet acknowledged: id and the last log index once it lands.
    in_flight: VecDeque<(u64, LogIndex)>,
    /// The last log index known durable, of entries that are still in the log.
    durable_index: LogIndex,
    /// Messages waiting for the acknowledgement of an id.
    held: VecDeque<(u64, Message)>,
}

/// An acknowledgement for a persist that was never handed out, or was acknowledged already.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct UnknownPersist;

impl Durability {
    /// Nothing pending; the recovered log is durable up to `durable_index`.
    pub(crate) fn new(durable_index: LogIndex) -> Durability {
        Durability {
            hard_state_changed: false,
            snapshot: None,
            install_received: None,
            snapshot_chunk: None,
            truncate_from: None,
            append_from: None,
            next_id: 1,
            acknowledged: 0,
            in_flight: VecDeque::new(),
            durable_index,
            held: VecDeque::new(),
        }
    }

    /// Panics unless the bookkeeping is consistent with a log ending at `last`: nothing
    /// durable past it, acknowledgements below the next id, persists in flight and held
    /// messages in order after the last acknowledgement.
    pub(crate) fn check_invariants(&self, last: LogIndex) {
        assert!(
            self.durable_index <= last,
            "durable {} past the log at {last}",
            self.durable_index
        );
        assert!(self.acknowledged < self.next_id, "acknowledged a persist never handed out");
        let mut previous = self.acknowledged;
        for &(id, in_flight_last) in &self.in_flight {
            assert!(previous < id && id < self.next_id, "persists in flight out of order");
            assert!(in_flight_last <= last, "a persist in flight reaches past the log");
            previous = id;
        }
        let mut previous = self.acknowledged + 1;
        for &(barrier, _) in &self.held {
            assert!(previous <= barrier && barrier <= self.next_id, "held messages out of order");
            previous = barrier;
        }
    }

    pub(crate) fn durable_index(&self) -> LogIndex {
        self.durable_index
    }

    pub(crate) fn hard_state_changed(&mut self) {
        self.hard_state_changed = true;
    }

    /// The leader appended an entry at `index`.
    pub(crate) fn appended(&mut self, index: LogIndex) {
        self.append_from.get_or_insert(index);
    }

    /// Records what a follower's append changed in the log.
    pub(crate) fn follower_appended(&mut self, change: AppendChange) {
        if let Some(index) = change.truncated_from {
            self.truncated(index);
        }
        if let Some(index) = change.first_new {
            let from = self.append_from.map_or(index, |from| from.min(index));
            self.append_from = Some(from);
        }
    }

    /// The node took a snapshot of its own state machine: store it (the driver may then drop
    /// the entries it covers).
    pub(crate) fn snapshot_taken(&mut self, snapshot: Snapshot) {
        self.snapshot = Some(snapshot);
    }

    /// The node installed a snapshot from the leader; unless it kept the entries after it, the
    /// log ends at the snapshot now.
    pub(crate) fn snapshot_installed(&mut self, snapshot: SavedSnapshot, kept_suffix: bool) {
        if !kept_suffix {
            self.truncated(snapshot.last.index.next());
        }
        // A snapshot of its own not handed out yet is older, and covered by this one.
        self.snapshot = None;
        self.install_received = Some(snapshot);
    }

    /// The node took `chunk` of the snapshot it receives from the leader: the next bytes of
    /// the one it holds, or the first of a new one. Chunks taken between two persists go
    /// out as one.
    pub(crate) fn snapshot_chunk_received(&mut self, chunk: ReceivedChunk) {
        match &mut self.snapshot_chunk {
            Some(pending)
                if pending.last == chunk.last
                    && pending.total == chunk.total
                    && pending.end() == chunk.offset =>
            {
                pending.data.extend_from_slice(&chunk.data);
            }
            pending => {
                assert!(chunk.offset == 0 || pending.is_none(), "a received chunk with a gap");
                *pending = Some(chunk);
            }
        }
    }

    /// Entries from `index` on left the log: whatever the disk holds there no longer counts.
    fn truncated(&mut self, index: LogIndex) {
        let kept = index.prev();
        self.truncate_from = Some(self.truncate_from.map_or(index, |from| from.min(index)));
        self.durable_index = self.durable_index.min(kept);
        for (_, last) in &mut self.in_flight {
            *last = (*last).min(kept);
        }
    }

    /// The id that must be acknowledged before a message promising the current state may go.
    fn barrier(&self) -> u64 {
        if self.has_pending() { self.next_id } else { self.next_id - 1 }
    }

    fn has_pending(&self) -> bool {
        self.hard_state_changed
            || self.snapshot.is_some()
            || self.install_received.is_some()
            || self.snapshot_chunk.is_some()
            || self.truncate_from.is_some()
            || self.append_from.is_some()
    }

    /// Whether everything changed so far is durable.
    pub(crate) fn is_settled(&self) -> bool {
        self.barrier() <= self.acknowledged
    }

    /// The id after whose acknowledgement the current state is durable.
    pub(crate) fn current_barrier(&self) -> PersistId {
        PersistId(self.barrier())
    }

    pub(crate) fn is_acknowledged(&self, id: PersistId) -> bool {
        id.0 <= self.acknowledged
    }

    /// Sends `message` now if what it promises is durable, otherwise holds it. Returns it when
    /// it may go now.
    pub(crate) fn hold_until_durable(&mut self, message: Message) -> Option<Message> {
        if self.is_settled() {
            Some(message)
        } else {
            self.held.push_back((self.barrier(), message));
            None
        }
    }

    /// Hands the pending changes to the driver as one persist, if there are any.
    pub(crate) fn take_persist(&mut self, log: &RaftLog, hard_state: HardState) -> Option<Persist> {
        if !self.has_pending() {
            return None;
        }
        let id = self.next_id;
        self.next_id += 1;
        let entries = match self.append_from.take() {
            Some(from) => log.slice(from, usize::MAX, usize::MAX),
            None => Vec::new(),
        };
        self.in_flight.push_back((id, log.last_index()));
        let persist = Persist {
            id: PersistId(id),
            hard_state: std::mem::take(&mut self.hard_state_changed).then_some(hard_state),
            truncate_from: self.truncate_from.take(),
            entries,
            snapshot: self.snapshot.take(),
            install_received: self.install_received.take(),
            snapshot_chunk: self.snapshot_chunk.take(),
        };
        Some(persist)
    }

    /// The driver made persist `id` (and every earlier one) durable. Returns the messages that
    /// may now be sent, in the order they were held.
    pub(crate) fn acknowledge(
        &mut self,
        id: PersistId,
    ) -> Result<impl Iterator<Item = Message> + '_, UnknownPersist> {
        if id.0 <= self.acknowledged || id.0 >= self.next_id {
            return Err(UnknownPersist);
        }
        self.acknowledged = id.0;
        while let Some(&(in_flight_id, last)) = self.in_flight.front() {
            if in_flight_id > id.0 {
                break;
            }
            self.durable_index = last;
            self.in_flight.pop_front();
        }
        let released = self.held.iter().take_while(|(barrier, _)| *barrier <= id.0).count();
        Ok(self.held.drain(..released).map(|(_, message)| message))
    }
}
