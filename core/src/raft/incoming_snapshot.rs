//! A follower's snapshot from the leader, received in chunks that arrive in order (a few in
//! flight, some lost or repeated) and written to the driver's disk as they come (a `Persist`
//! carries each one): the node keeps only how far it got, never the data, so a restart resumes
//! where its disk stands.

use crate::ids::LogId;
use crate::raft::persist::{PartialSnapshot, PersistId};

/// How much of one snapshot the node has handed to its driver, and whether it asked for it
/// back once whole.
#[derive(Debug)]
pub(crate) struct IncomingSnapshot {
    last: LogId,
    total: u64,
    /// Bytes handed to the driver to persist, from the first one on without gaps.
    received: u64,
    /// Once every byte is handed out: the persist after whose acknowledgement they are all
    /// durable.
    whole_at: Option<PersistId>,
    /// The driver was asked to load the whole snapshot (`Output::LoadSnapshot`).
    load_asked: bool,
}

/// What to do with a chunk.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Taken {
    /// Write the chunk, but for its first `skip` bytes, held already: it continues the
    /// snapshot, or starts a new one.
    Write {
        /// Bytes at the chunk's start that are held already.
        skip: u64,
    },
    /// Every byte of it is held already (a resend, or the leader starting again before it
    /// learned what a restarted node holds).
    Held,
    /// It continues no snapshot held: another snapshot's, or one past a gap.
    Refused,
}

impl IncomingSnapshot {
    /// The part of a snapshot the disk held at a restart, durable by definition.
    pub(crate) fn resumed(partial: PartialSnapshot) -> IncomingSnapshot {
        let PartialSnapshot { last, total, received } = partial;
        let whole_at = (received == total).then_some(PersistId(0));
        IncomingSnapshot { last, total, received, whole_at, load_asked: false }
    }

    /// Takes a chunk of `length` bytes at `offset` of the snapshot `last` of `total` bytes into
    /// `incoming` (the snapshot being received, if any). A chunk at offset 0 of another
    /// snapshot replaces it: only the leader's latest counts. The chunk lies within the
    /// snapshot (`Message::validate`).
    pub(crate) fn accept(
        incoming: &mut Option<IncomingSnapshot>,
        last: LogId,
        total: u64,
        offset: u64,
        length: u64,
    ) -> Taken {
        let end = offset.saturating_add(length);
        match incoming {
            Some(held) if held.last == last && held.total == total => {
                if offset > held.received {
                    return Taken::Refused;
                }
                if end <= held.received {
                    return Taken::Held;
                }
                let skip = held.received - offset;
                held.received = end;
                Taken::Write { skip }
            }
            _ if offset == 0 => {
                let started = IncomingSnapshot {
                    last,
                    total,
                    received: end,
                    whole_at: None,
                    load_asked: false,
                };
                *incoming = Some(started);
                Taken::Write { skip: 0 }
            }
            _ => Taken::Refused,
        }
    }

    /// How many bytes of the snapshot `last` of `total` bytes `incoming` holds (0 of another).
    pub(crate) fn received_of(incoming: &Option<IncomingSnapshot>, last: LogId, total: u64) -> u64 {
        incoming
            .as_ref()
            .filter(|held| held.last == last && held.total == total)
            .map_or(0, |held| held.received)
    }

    /// Records that every byte is handed out once `barrier` is acknowledged, if it is whole
    /// now and was not before.
    pub(crate) fn note_whole(&mut self, barrier: PersistId) {
        if self.received == self.total && self.whole_at.is_none() {
            self.whole_at = Some(barrier);
        }
    }

    /// The snapshot to ask the driver for, once whole and durable (`acknowledged` says which
    /// persists are); asked once.
    pub(crate) fn take_load_request(
        &mut self,
        acknowledged: impl Fn(PersistId) -> bool,
    ) -> Option<PartialSnapshot> {
        let durable = self.whole_at.is_some_and(acknowledged);
        if !durable || self.load_asked {
            return None;
        }
        self.load_asked = true;
        Some(PartialSnapshot { last: self.last, total: self.total, received: self.received })
    }

    /// The snapshot the driver was asked to load, as its last entry and size, if it was.
    pub(crate) fn loading(&self) -> Option<(LogId, u64)> {
        self.load_asked.then_some((self.last, self.total))
    }

    /// The last entry of the snapshot being received.
    pub(crate) fn last(&self) -> LogId {
        self.last
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{LogIndex, Term};

    #[test]
    fn chunks_in_order_are_written_a_gap_is_refused_and_a_repeat_is_held_already() {
        let last = LogId::new(LogIndex(9), Term(2));
        let mut incoming = None;
        let accept = |incoming: &mut _, offset, length| {
            IncomingSnapshot::accept(incoming, last, 6, offset, length)
        };
        assert_eq!(accept(&mut incoming, 2, 2), Taken::Refused, "not the first");
        assert_eq!(accept(&mut incoming, 0, 2), Taken::Write { skip: 0 });
        assert_eq!(accept(&mut incoming, 0, 2), Taken::Held, "a repeat");
        assert_eq!(accept(&mut incoming, 4, 2), Taken::Refused, "a gap");
        assert_eq!(accept(&mut incoming, 1, 3), Taken::Write { skip: 1 }, "overlapping");
        assert_eq!(IncomingSnapshot::received_of(&incoming, last, 6), 4);
        let held = incoming.as_mut().unwrap();
        held.note_whole(PersistId(3));
        assert_eq!(held.take_load_request(|_| true), None, "not whole yet");
        assert_eq!(accept(&mut incoming, 4, 2), Taken::Write { skip: 0 });
        let held = incoming.as_mut().unwrap();
        held.note_whole(PersistId(5));
        assert_eq!(held.take_load_request(|id| id <= PersistId(4)), None, "not durable yet");
        let whole = PartialSnapshot { last, total: 6, received: 6 };
        assert_eq!(held.take_load_request(|id| id <= PersistId(5)), Some(whole));
        assert_eq!(held.take_load_request(|_| true), None, "asked once");
        assert_eq!(held.loading(), Some((last, 6)));
    }

    #[test]
    fn a_new_snapshot_starts_at_its_first_byte_and_replaces_the_one_held() {
        let first = LogId::new(LogIndex(9), Term(2));
        let newer = LogId::new(LogIndex(12), Term(2));
        let mut incoming = None;
        assert_eq!(
            IncomingSnapshot::accept(&mut incoming, first, 6, 0, 2),
            Taken::Write { skip: 0 }
        );
        // The next chunk of a newer snapshot: nothing to continue.
        assert_eq!(IncomingSnapshot::accept(&mut incoming, newer, 6, 2, 2), Taken::Refused);
        assert_eq!(IncomingSnapshot::received_of(&incoming, first, 6), 2, "still held");
        // A snapshot of the same last entry but another size is another snapshot, too.
        assert_eq!(IncomingSnapshot::accept(&mut incoming, first, 8, 2, 2), Taken::Refused);
        assert_eq!(
            IncomingSnapshot::accept(&mut incoming, newer, 4, 0, 4),
            Taken::Write { skip: 0 }
        );
        assert_eq!(IncomingSnapshot::received_of(&incoming, first, 6), 0, "replaced");
        assert_eq!(incoming.as_ref().map(IncomingSnapshot::last), Some(newer));
    }

    #[test]
    fn a_resumed_snapshot_continues_where_the_disk_stands() {
        let last = LogId::new(LogIndex(9), Term(2));
        let partial = PartialSnapshot { last, total: 10, received: 4 };
        let mut incoming = Some(IncomingSnapshot::resumed(partial));
        assert_eq!(IncomingSnapshot::accept(&mut incoming, last, 10, 0, 4), Taken::Held);
        assert_eq!(
            IncomingSnapshot::accept(&mut incoming, last, 10, 4, 6),
            Taken::Write { skip: 0 }
        );
        let whole = PartialSnapshot { last, total: 10, received: 10 };
        let mut resumed_whole = IncomingSnapshot::resumed(whole);
        assert_eq!(resumed_whole.take_load_request(|id| id == PersistId(0)), Some(whole));
    }
}
