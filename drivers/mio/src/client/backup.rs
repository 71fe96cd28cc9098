//! Copying a snapshot of the cluster's state from the leader (`raftkv snapshot save`): the
//! leader names a snapshot that covers its commit index when first asked (taking one if
//! needed), and the client reads its data in chunks of at most
//! [`MAX_BACKUP_CHUNK_BYTES`], one at a time, so that neither side holds more than a chunk.
//! If a newer snapshot replaces it meanwhile, or the leader changes, the copy starts again,
//! still covering the same entry.

use std::time::Instant;

use raftkv_core::{LogIndex, NodeId};

use crate::client::{Client, Error};
use crate::wire::{
    AdminAnswer, AdminRequest, BackupAnswer, BackupStep, MAX_BACKUP_CHUNK_BYTES, SnapshotHeader,
};

/// How many times a copy starts again before the backup gives up.
const MAX_ATTEMPTS: u32 = 5;

/// Where [`Client::backup`] puts the snapshot it copies. [`BackupWriter`](crate::BackupWriter)
/// writes the file `raftkv snapshot restore` reads.
pub trait BackupSink {
    /// A copy of the snapshot `header` describes starts: whatever an earlier attempt wrote is
    /// to be dropped.
    fn begin(&mut self, header: &SnapshotHeader) -> std::io::Result<()>;
    /// The next bytes of its data, in order; `header.data_bytes` of them in all.
    fn data(&mut self, chunk: &[u8]) -> std::io::Result<()>;
}

impl Client {
    /// Copies a snapshot of the leader's state into `sink` and returns its header. The
    /// snapshot covers every write acknowledged before the call: the leader takes one if
    /// it has none that recent. Its data comes in chunks of at most 1 MiB, so neither side
    /// holds more than a chunk; if a newer snapshot replaces it midway, or the leader
    /// changes, the copy starts again (`sink.begin` anew), up to five times. Each step may
    /// take up to the client's timeout.
    ///
    /// ```no_run
    /// // What `raftkv snapshot save backup.rkv` does.
    /// let mut client = raftkv::Client::connect(&["127.0.0.1:7001", "127.0.0.1:7002"])?;
    /// let mut file = raftkv::BackupWriter::new("backup.rkv");
    /// let header = client.backup(&mut file)?;
    /// file.finish().map_err(|error| raftkv::Error::Io(error.to_string()))?;
    /// println!("saved the snapshot at index {}", header.last.index);
    /// # Ok::<(), raftkv::Error>(())
    /// ```
    pub fn backup(&mut self, sink: &mut dyn BackupSink) -> Result<SnapshotHeader, Error> {
        copy(self, sink)
    }

    /// Asks the leader until it names a snapshot covering `at_least` (set from its first
    /// answer); returns the leader and the snapshot.
    fn prepare_backup(
        &mut self,
        at_least: &mut Option<LogIndex>,
    ) -> Result<(NodeId, SnapshotHeader), Error> {
        let deadline = Instant::now() + self.options.timeout;
        loop {
            let leader = self.leader_members(deadline)?.leader;
            let step = BackupStep::Prepare { at_least: *at_least };
            let left = deadline.saturating_duration_since(Instant::now());
            let answer = self
                .pool
                .ask(leader, AdminRequest::Backup(step), left)
                .map_err(|error| Error::Io(error.to_string()))?;
            let problem = match answer {
                Ok(AdminAnswer::Backup(BackupAnswer::Ready(header))) => {
                    return Ok((leader, header));
                }
                Ok(AdminAnswer::Backup(BackupAnswer::Pending { at_least: wanted })) => {
                    *at_least = Some(wanted);
                    format!("the leader is taking a snapshot that covers entry {wanted}")
                }
                Ok(AdminAnswer::Refused { reason, retry: false }) => {
                    return Err(Error::Invalid { reason });
                }
                Ok(AdminAnswer::Refused { reason, retry: true }) => reason,
                Ok(AdminAnswer::NotLeader { .. }) => "the leader changed".to_string(),
                Ok(other) => format!("unexpected answer {other:?}"),
                Err(problem) => problem,
            };
            self.wait_or_time_out(deadline, &problem)?;
        }
    }
}

/// The two questions a backup asks: which snapshot to copy, and each chunk of it. A
/// [`Client`] asks the leader; the tests ask a fake.
trait SnapshotSource {
    /// A leader and the snapshot it names, covering `at_least` (set on the way).
    fn prepare(
        &mut self,
        at_least: &mut Option<LogIndex>,
    ) -> Result<(NodeId, SnapshotHeader), Error>;
    /// `leader`'s answer to a chunk step, or why none came.
    fn chunk(
        &mut self,
        leader: NodeId,
        step: BackupStep,
    ) -> Result<Result<AdminAnswer, String>, Error>;
}

impl SnapshotSource for Client {
    fn prepare(
        &mut self,
        at_least: &mut Option<LogIndex>,
    ) -> Result<(NodeId, SnapshotHeader), Error> {
        self.prepare_backup(at_least)
    }

    fn chunk(
        &mut self,
        leader: NodeId,
        step: BackupStep,
    ) -> Result<Result<AdminAnswer, String>, Error> {
        self.pool
            .ask(leader, AdminRequest::Backup(step), self.options.timeout)
            .map_err(|error| Error::Io(error.to_string()))
    }
}

/// Copies a snapshot from `source` into `sink`, starting again when it is interrupted.
fn copy(
    source: &mut dyn SnapshotSource,
    sink: &mut dyn BackupSink,
) -> Result<SnapshotHeader, Error> {
    let mut at_least = None;
    let mut problem = String::new();
    for _ in 0..MAX_ATTEMPTS {
        let (leader, header) = source.prepare(&mut at_least)?;
        let sink_failed = |error: std::io::Error| Error::Io(format!("cannot write: {error}"));
        sink.begin(&header).map_err(sink_failed)?;
        match copy_chunks(source, leader, &header, sink)? {
            None => return Ok(header),
            Some(interrupted) => problem = interrupted,
        }
    }
    Err(Error::Io(format!("the copy started {MAX_ATTEMPTS} times over; last: {problem}")))
}

/// Copies the data of the snapshot `header` names from `leader` into `sink`; `Some` says why
/// the copy must start again.
fn copy_chunks(
    source: &mut dyn SnapshotSource,
    leader: NodeId,
    header: &SnapshotHeader,
    sink: &mut dyn BackupSink,
) -> Result<Option<String>, Error> {
    let mut offset = 0u64;
    while offset < header.data_bytes {
        let length = (header.data_bytes - offset).min(MAX_BACKUP_CHUNK_BYTES);
        let step = BackupStep::Chunk { last: header.last, offset, length };
        match source.chunk(leader, step)? {
            Ok(AdminAnswer::Backup(BackupAnswer::Chunk { data }))
                if data.len() as u64 == length =>
            {
                sink.data(&data).map_err(|e| Error::Io(format!("cannot write: {e}")))?;
                offset += length;
            }
            Ok(AdminAnswer::Backup(BackupAnswer::Replaced)) => {
                return Ok(Some("a newer snapshot replaced the one being copied".to_string()));
            }
            Ok(AdminAnswer::Backup(BackupAnswer::Chunk { data })) => {
                return Ok(Some(format!("a chunk of {} bytes, not {length}", data.len())));
            }
            Ok(AdminAnswer::Refused { reason, .. }) => return Err(Error::Invalid { reason }),
            Ok(other) => return Ok(Some(format!("unexpected answer {other:?}"))),
            Err(problem) => return Ok(Some(problem)),
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;

    use raftkv_core::raft::Membership;
    use raftkv_core::{LogId, Term};

    use super::*;

    /// A snapshot the fake leader names, and the offset of the chunk at which a newer one
    /// replaces it, if it is replaced.
    struct Version {
        header: SnapshotHeader,
        data: Vec<u8>,
        replaced_at: Option<u64>,
    }

    /// A leader whose snapshots are replaced as `versions` say, one `prepare` each.
    struct FakeLeader {
        versions: VecDeque<Version>,
        current: Option<Version>,
        prepares: u32,
    }

    impl SnapshotSource for FakeLeader {
        fn prepare(
            &mut self,
            _at_least: &mut Option<LogIndex>,
        ) -> Result<(NodeId, SnapshotHeader), Error> {
            self.prepares += 1;
            let version = self.versions.pop_front().expect("a prepare too many");
            let header = version.header.clone();
            self.current = Some(version);
            Ok((NodeId(1), header))
        }

        fn chunk(
            &mut self,
            _leader: NodeId,
            step: BackupStep,
        ) -> Result<Result<AdminAnswer, String>, Error> {
            let BackupStep::Chunk { last, offset, length } = step else {
                panic!("a chunk step expected, got {step:?}");
            };
            let version = self.current.as_ref().expect("a chunk before a prepare");
            assert_eq!(last, version.header.last, "the chunk names the snapshot prepared");
            if version.replaced_at == Some(offset) {
                return Ok(Ok(AdminAnswer::Backup(BackupAnswer::Replaced)));
            }
            let data = version.data[offset as usize..(offset + length) as usize].to_vec();
            Ok(Ok(AdminAnswer::Backup(BackupAnswer::Chunk { data })))
        }
    }

    /// Keeps what the copy wrote, and counts the copies begun.
    #[derive(Default)]
    struct MemorySink {
        header: Option<SnapshotHeader>,
        data: Vec<u8>,
        begun: u32,
    }

    impl BackupSink for MemorySink {
        fn begin(&mut self, header: &SnapshotHeader) -> std::io::Result<()> {
            self.header = Some(header.clone());
            self.data.clear();
            self.begun += 1;
            Ok(())
        }

        fn data(&mut self, chunk: &[u8]) -> std::io::Result<()> {
            self.data.extend_from_slice(chunk);
            Ok(())
        }
    }

    /// A snapshot at `index` of 2.5 chunks, each byte telling the index apart.
    fn version(index: u64, replaced_at: Option<u64>) -> Version {
        let bytes = MAX_BACKUP_CHUNK_BYTES * 5 / 2;
        let header = SnapshotHeader {
            last: LogId::new(LogIndex(index), Term(2)),
            membership: Membership::with_voters([NodeId(1), NodeId(2), NodeId(3)]),
            data_bytes: bytes,
        };
        let data = (0..bytes).map(|i| (i % 251) as u8 ^ index as u8).collect();
        Version { header, data, replaced_at }
    }

    fn leader(versions: Vec<Version>) -> FakeLeader {
        FakeLeader { versions: versions.into(), current: None, prepares: 0 }
    }

    #[test]
    fn a_snapshot_replaced_mid_copy_is_copied_again_whole_from_the_newer_one() {
        let mut source = leader(vec![version(10, Some(MAX_BACKUP_CHUNK_BYTES)), version(20, None)]);
        let mut sink = MemorySink::default();
        let header = copy(&mut source, &mut sink).expect("the second copy completes");
        assert_eq!((source.prepares, sink.begun), (2, 2));
        assert_eq!(header.last.index, LogIndex(20));
        assert_eq!(sink.header, Some(header));
        assert!(sink.data == version(20, None).data, "the newer snapshot's data, whole");
    }

    #[test]
    fn a_copy_replaced_every_time_gives_up_after_its_attempts() {
        let versions = (1..=u64::from(MAX_ATTEMPTS)).map(|index| version(index, Some(0)));
        let mut source = leader(versions.collect());
        let error = copy(&mut source, &mut MemorySink::default()).expect_err("it gives up");
        assert_eq!(source.prepares, MAX_ATTEMPTS);
        let Error::Io(reason) = error else { panic!("an I/O error, not {error:?}") };
        assert!(reason.contains("a newer snapshot replaced the one being copied"), "{reason}");
    }
}
