//! A follower's snapshot from the leader, assembled from chunks that arrive in order (a few in
//! flight, some lost or repeated).

use crate::ids::LogId;

/// The chunks of one snapshot received so far, from its first byte without gaps.
#[derive(Debug)]
pub(crate) struct IncomingSnapshot {
    last: LogId,
    total: u64,
    data: Vec<u8>,
}

/// What a chunk did.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Assembly {
    /// More is needed; this many bytes are held.
    Partial(u64),
    /// The chunk is not the next one of a snapshot in progress, nor the first of a new one:
    /// nothing is held until the sender starts again.
    OutOfOrder,
    /// The snapshot is whole.
    Complete(Vec<u8>),
}

impl IncomingSnapshot {
    /// Takes the chunk at `offset` of the snapshot `last` of `total` bytes into `incoming` (the
    /// snapshot being assembled, if any; a different one is dropped, since only the leader's
    /// latest counts). The chunk lies within the snapshot (`Message::validate`).
    pub(crate) fn accept(
        incoming: &mut Option<IncomingSnapshot>,
        last: LogId,
        total: u64,
        offset: u64,
        chunk: &[u8],
    ) -> Assembly {
        let mut assembling = match incoming.take() {
            Some(assembling) if assembling.last == last && assembling.total == total => assembling,
            // A new snapshot starts at its first byte; anything else waits for a resend.
            _ if offset == 0 => IncomingSnapshot { last, total, data: Vec::new() },
            _ => return Assembly::OutOfOrder,
        };
        if offset == assembling.data.len() as u64 {
            assembling.data.extend_from_slice(chunk);
        }
        let received = assembling.data.len() as u64;
        if received < total {
            *incoming = Some(assembling);
            return Assembly::Partial(received);
        }
        Assembly::Complete(assembling.data)
    }

    /// The last entry of the snapshot being assembled.
    pub(crate) fn last(&self) -> LogId {
        self.last
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{LogIndex, Term};

    #[test]
    fn chunks_in_order_make_a_snapshot_and_a_gap_waits_for_a_resend() {
        let last = LogId::new(LogIndex(9), Term(2));
        let mut incoming = None;
        let accept = |incoming: &mut _, offset, chunk: &[u8]| {
            IncomingSnapshot::accept(incoming, last, 6, offset, chunk)
        };
        assert_eq!(accept(&mut incoming, 2, b"cd"), Assembly::OutOfOrder, "not the first");
        assert_eq!(accept(&mut incoming, 0, b"ab"), Assembly::Partial(2));
        assert_eq!(accept(&mut incoming, 0, b"ab"), Assembly::Partial(2), "a repeat");
        assert_eq!(accept(&mut incoming, 4, b"ef"), Assembly::Partial(2), "a gap");
        assert_eq!(accept(&mut incoming, 2, b"cd"), Assembly::Partial(4));
        assert_eq!(accept(&mut incoming, 4, b"ef"), Assembly::Complete(b"abcdef".to_vec()));
        assert!(incoming.is_none());
    }

    #[test]
    fn chunks_of_another_snapshot_never_mix_with_the_one_assembled() {
        let first = LogId::new(LogIndex(9), Term(2));
        let newer = LogId::new(LogIndex(12), Term(2));
        let mut incoming = None;
        assert_eq!(
            IncomingSnapshot::accept(&mut incoming, first, 6, 0, b"ab"),
            Assembly::Partial(2)
        );
        // The next chunk of a newer snapshot: nothing to continue, so nothing is held.
        let next = IncomingSnapshot::accept(&mut incoming, newer, 6, 2, b"CD");
        assert_eq!(next, Assembly::OutOfOrder);
        assert!(incoming.is_none());
        // A snapshot of the same last entry but another size is another snapshot, too.
        assert_eq!(
            IncomingSnapshot::accept(&mut incoming, first, 6, 0, b"ab"),
            Assembly::Partial(2)
        );
        assert_eq!(
            IncomingSnapshot::accept(&mut incoming, first, 8, 2, b"cd"),
            Assembly::OutOfOrder
        );
        assert_eq!(
            IncomingSnapshot::accept(&mut incoming, newer, 4, 0, b"WXYZ"),
            Assembly::Complete(b"WXYZ".to_vec())
        );
    }
}
