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

/// Where a backup's snapshot goes.
pub(crate) trait BackupSink {
    /// A copy of the snapshot `header` describes starts: whatever an earlier attempt wrote is
    /// to be dropped.
    fn begin(&mut self, header: &SnapshotHeader) -> std::io::Result<()>;
    /// The next bytes of its data.
    fn data(&mut self, chunk: &[u8]) -> std::io::Result<()>;
}

impl Client {
    /// Copies a snapshot of the leader's state that covers at least the leader's commit index
    /// at the time of the call into `sink`; returns its header. Each step may take up to the
    /// client's timeout.
    pub(crate) fn backup(&mut self, sink: &mut dyn BackupSink) -> Result<SnapshotHeader, Error> {
        let mut at_least = None;
        let mut problem = String::new();
        for _ in 0..MAX_ATTEMPTS {
            let (leader, header) = self.prepare_backup(&mut at_least)?;
            let sink_failed = |error: std::io::Error| Error::Io(format!("cannot write: {error}"));
            sink.begin(&header).map_err(sink_failed)?;
            match self.copy_chunks(leader, &header, sink)? {
                None => return Ok(header),
                Some(interrupted) => problem = interrupted,
            }
        }
        Err(Error::Io(format!("the copy started {MAX_ATTEMPTS} times over; last: {problem}")))
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

    /// Copies the data of the snapshot `header` names from `leader` into `sink`; `Some` says
    /// why the copy must start again.
    fn copy_chunks(
        &mut self,
        leader: NodeId,
        header: &SnapshotHeader,
        sink: &mut dyn BackupSink,
    ) -> Result<Option<String>, Error> {
        let mut offset = 0u64;
        while offset < header.data_bytes {
            let length = (header.data_bytes - offset).min(MAX_BACKUP_CHUNK_BYTES);
            let step = BackupStep::Chunk { last: header.last, offset, length };
            let answer = self
                .pool
                .ask(leader, AdminRequest::Backup(step), self.options.timeout)
                .map_err(|error| Error::Io(error.to_string()))?;
            match answer {
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
}
