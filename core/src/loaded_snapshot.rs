//! A replica's snapshot decoded as it is read, never held whole: the snapshot a follower
//! received from its leader, which its driver reads back from disk (`Output::LoadSnapshot`)
//! and decodes on whatever thread it likes, then hands to the replica
//! (`Replica::snapshot_loaded`); and the snapshot a replica recovers at a start.

use core::fmt;
use std::io::{self, Read};

use crate::encoding::read_varint;
use crate::raft::SavedSnapshot;
use crate::session::Sessions;
use crate::state_machine::{RestoreError, StateMachine};

/// Bytes read first to decode the sessions, which come before the state; doubled until they
/// hold the sessions' whole encoding.
const SESSIONS_READ_BYTES: usize = 64 << 10;

/// A replica's snapshot, decoded: the state machine and the client sessions, at `last`.
pub struct LoadedSnapshot<S: StateMachine> {
    pub(crate) snapshot: SavedSnapshot,
    pub(crate) state: S,
    pub(crate) sessions: Sessions<S::Reply>,
}

impl<S: StateMachine> LoadedSnapshot<S> {
    /// Decodes the `snapshot.bytes` bytes of a replica's snapshot that `data` yields (as
    /// `SnapshotJob::write_data` wrote them) into `state`, an empty state machine. Fails if the
    /// data does not decode, is shorter or longer, or cannot be read (a checksum failed).
    pub fn decode(
        snapshot: SavedSnapshot,
        data: &mut dyn Read,
        mut state: S,
    ) -> Result<LoadedSnapshot<S>, RestoreError> {
        let mut data = data.take(snapshot.bytes);
        let (sessions, read_ahead) = decode_sessions::<S::Reply>(&mut data)?;
        let mut rest = io::Cursor::new(read_ahead).chain(data);
        let state_bytes = read_varint(&mut rest)?;
        let mut state_data = (&mut rest).take(state_bytes);
        state.restore_from(&mut state_data)?;
        if state_data.limit() > 0 || rest.read(&mut [0])? > 0 {
            return Err(RestoreError { reason: "the state is not the length it says".into() });
        }
        if rest.into_inner().1.limit() > 0 {
            return Err(RestoreError { reason: "shorter than its size".into() });
        }
        Ok(LoadedSnapshot { snapshot, state, sessions })
    }

    /// The snapshot decoded: its last entry, membership and size.
    pub fn snapshot(&self) -> &SavedSnapshot {
        &self.snapshot
    }

    /// The state machine decoded.
    pub fn state(&self) -> &S {
        &self.state
    }
}

/// Decodes the sessions at the start of `data`; returns them and the bytes read past them.
fn decode_sessions<R: serde::de::DeserializeOwned>(
    data: &mut dyn Read,
) -> Result<(Sessions<R>, Vec<u8>), RestoreError> {
    let mut buffer = Vec::new();
    let mut wanted = SESSIONS_READ_BYTES;
    loop {
        let missing = wanted.saturating_sub(buffer.len()) as u64;
        data.take(missing).read_to_end(&mut buffer)?;
        match postcard::take_from_bytes::<Sessions<R>>(&buffer) {
            Ok((sessions, rest)) => return Ok((sessions, rest.to_vec())),
            Err(postcard::Error::DeserializeUnexpectedEnd) if buffer.len() == wanted => {
                wanted = wanted.saturating_mul(2);
            }
            Err(error) => return Err(RestoreError { reason: format!("sessions: {error}") }),
        }
    }
}

impl<S: StateMachine> fmt::Debug for LoadedSnapshot<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoadedSnapshot").field("snapshot", &self.snapshot).finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{ClientId, LogId, LogIndex, RequestId, Term};
    use crate::kv::{KvCommand, KvReply, KvStore};
    use crate::raft::Membership;
    use crate::snapshot_job::SnapshotJob;

    fn job(keys: usize, clients: u64) -> SnapshotJob {
        let mut state = KvStore::default();
        for i in 0..keys {
            state.apply(&KvCommand::Put { key: format!("k{i}").into_bytes(), value: vec![7; i] });
        }
        let mut sessions = Sessions::<KvReply>::new(60_000);
        for client in 0..clients {
            sessions.open(ClientId(client));
            sessions.record(ClientId(client), RequestId(3), KvReply::Value(Some(vec![1; 100])));
        }
        let last = LogId::new(LogIndex(90), Term(2));
        SnapshotJob::new::<KvStore>(last, Membership::default(), state.view(), sessions)
    }

    #[test]
    fn a_snapshot_decodes_as_it_is_read_whatever_the_size_of_its_sessions() {
        // Sessions past the first read, so that it is doubled.
        for (keys, clients) in [(0, 0), (50, 3), (400, 2_000)] {
            let snapshot = job(keys, clients).encode();
            let saved = SavedSnapshot::of(&snapshot);
            let loaded = LoadedSnapshot::decode(saved, &mut &snapshot.data[..], KvStore::default())
                .expect("decodes");
            assert_eq!(loaded.state().len(), keys);
            assert_eq!(loaded.sessions.len(), clients as usize);
        }
    }

    #[test]
    fn a_snapshot_shorter_or_longer_than_its_size_or_damaged_is_refused() {
        let snapshot = job(20, 2).encode();
        let saved = SavedSnapshot::of(&snapshot);
        let decode = |data: &[u8], bytes: u64| {
            let saved = SavedSnapshot { bytes, ..saved.clone() };
            LoadedSnapshot::decode(saved, &mut &data[..], KvStore::default()).map(drop)
        };
        let data = &snapshot.data[..];
        let size = data.len() as u64;
        assert!(decode(data, size).is_ok());
        assert!(decode(&data[..data.len() - 1], size).is_err(), "short");
        assert!(decode(data, size - 1).is_err(), "cut at its size");
        assert!(decode(&[data, b"x"].concat(), size + 1).is_err(), "a byte past the state");
        let mut failing = io::Cursor::new(data).chain(FailingRead);
        let saved = SavedSnapshot { bytes: size + 10, ..saved };
        assert!(LoadedSnapshot::decode(saved, &mut failing, KvStore::default()).is_err());
    }

    /// A read that fails, as a checksum that does not match.
    struct FailingRead;

    impl Read for FailingRead {
        fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
            Err(io::Error::new(io::ErrorKind::InvalidData, "checksum"))
        }
    }
}
