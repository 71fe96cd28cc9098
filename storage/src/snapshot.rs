//! The snapshot file: the latest state machine snapshot, the last entry it covers and the
//! membership in force there, replaced atomically.
//!
//! Format 2 (`RKVSNAP2`) records the membership; format 1 (`RKVSNAP1`), written before
//! memberships could change, is still read, with an empty membership, which tells the node to
//! take the initial membership of its configuration (the cluster's, which never changed then).

use std::path::Path;

use raftkv_core::LogId;
use raftkv_core::raft::{Membership, Snapshot};
use serde::Deserialize;

use crate::error::StorageError;
use crate::fs::FileSystem;
use crate::small_file::{self, SmallFile};

/// The file's name in the data directory.
pub const FILE: &str = "snapshot";
/// The format written.
pub(crate) const MAGIC: &[u8; 8] = b"RKVSNAP2";
/// The format before snapshots recorded their membership.
pub(crate) const MAGIC_WITHOUT_MEMBERSHIP: &[u8; 8] = b"RKVSNAP1";

/// A snapshot of format 1.
#[derive(Deserialize)]
struct SnapshotWithoutMembership {
    last: LogId,
    data: Vec<u8>,
}

/// Replaces the snapshot file of `dir` with `snapshot`, durably.
pub(crate) fn save<F: FileSystem>(
    fs: &F,
    dir: &Path,
    snapshot: &Snapshot,
) -> Result<(), StorageError> {
    small_file::replace(fs, dir, FILE, MAGIC, snapshot)
}

/// Replaces the snapshot file of `dir`, durably, with the snapshot at `last` with
/// `membership`, whose `data_len` bytes of data `write_data` writes: the same file as
/// [`save`], never held in memory whole.
pub(crate) fn save_streaming<F: FileSystem>(
    fs: &F,
    dir: &Path,
    last: LogId,
    membership: &Membership,
    data_len: u64,
    write_data: impl FnOnce(&mut dyn std::io::Write) -> std::io::Result<()>,
) -> Result<(), StorageError> {
    let prefix = contents_prefix(last, membership, data_len);
    small_file::replace_streaming(fs, dir, FILE, MAGIC, &prefix, data_len, write_data)
}

/// The contents of a snapshot file before its data: `Snapshot`'s fields in order, the data a
/// byte string (its length, then its bytes).
pub(crate) fn contents_prefix(last: LogId, membership: &Membership, data_len: u64) -> Vec<u8> {
    let mut prefix = postcard::to_allocvec(&last).expect("encoding into a Vec cannot fail");
    prefix.extend(postcard::to_allocvec(membership).expect("encoding into a Vec cannot fail"));
    prefix.extend(postcard::to_allocvec(&data_len).expect("encoding into a Vec cannot fail"));
    prefix
}

/// The snapshot saved in `dir`, of either format.
pub(crate) fn load<F: FileSystem>(fs: &F, dir: &Path) -> Result<SmallFile<Snapshot>, StorageError> {
    small_file::remove_leftover(fs, dir, FILE)?;
    let magics = [MAGIC, MAGIC_WITHOUT_MEMBERSHIP];
    small_file::read_versions(fs, dir, FILE, &magics, |version, contents| match version {
        0 => postcard::from_bytes(contents),
        _ => {
            let old: SnapshotWithoutMembership = postcard::from_bytes(contents)?;
            Ok(Snapshot { last: old.last, membership: Membership::default(), data: old.data })
        }
    })
}

/// Removes the snapshot file of `dir`, durably.
pub(crate) fn remove<F: FileSystem>(fs: &F, dir: &Path) -> Result<(), StorageError> {
    small_file::remove(fs, dir, FILE)
}

#[cfg(test)]
mod tests {
    use raftkv_core::{LogIndex, NodeId, Term};
    use serde::Serialize;

    use super::*;
    use crate::directory;
    use crate::sim_fs::SimFs;

    /// A snapshot as format 1 wrote it.
    #[derive(Serialize)]
    struct Format1<'a> {
        last: LogId,
        data: &'a [u8],
    }

    #[test]
    fn a_snapshot_of_format_1_reads_back_with_an_empty_membership() {
        let fs = SimFs::new(1);
        let dir = Path::new("dir");
        directory::create(&fs, dir).unwrap();
        let last = LogId::new(LogIndex(40), Term(3));
        let old = Format1 { last, data: b"state" };
        small_file::replace(&fs, dir, FILE, MAGIC_WITHOUT_MEMBERSHIP, &old).unwrap();
        let expected =
            Snapshot { last, membership: Membership::default(), data: b"state".to_vec() };
        assert_eq!(load(&fs, dir).unwrap(), SmallFile::Intact(expected));
    }

    #[test]
    fn a_snapshot_saved_streaming_is_the_same_file_and_a_short_write_leaves_the_old_one() {
        let fs = SimFs::new(1);
        let dir = Path::new("dir");
        directory::create(&fs, dir).unwrap();
        let membership = Membership::with_voters([NodeId(1), NodeId(2), NodeId(3)]);
        let last = LogId::new(LogIndex(7), Term(2));
        // More than the writer's buffer, so that it writes in several pieces.
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 253) as u8).collect();
        let snapshot = Snapshot { last, membership: membership.clone(), data: data.clone() };
        save(&fs, dir, &snapshot).unwrap();
        let whole = fs.read(&dir.join(FILE)).unwrap().unwrap();
        let len = data.len() as u64;
        save_streaming(&fs, dir, last, &membership, len, |out| out.write_all(&data)).unwrap();
        assert_eq!(fs.read(&dir.join(FILE)).unwrap().unwrap(), whole);
        let short =
            save_streaming(&fs, dir, LogId::new(LogIndex(9), Term(2)), &membership, len, |out| {
                out.write_all(&data[1..])
            });
        assert!(short.is_err(), "fewer bytes than announced");
        assert_eq!(load(&fs, dir).unwrap(), SmallFile::Intact(snapshot));
    }

    #[test]
    fn a_snapshot_reads_back_with_its_membership_and_an_unknown_format_is_damage() {
        let fs = SimFs::new(1);
        let dir = Path::new("dir");
        directory::create(&fs, dir).unwrap();
        let membership =
            Membership::with_voters([NodeId(1), NodeId(2)]).with_address(NodeId(2), "b");
        let last = LogId::new(LogIndex(7), Term(2));
        let snapshot = Snapshot { last, membership, data: b"state".to_vec() };
        save(&fs, dir, &snapshot).unwrap();
        assert_eq!(load(&fs, dir).unwrap(), SmallFile::Intact(snapshot.clone()));
        small_file::replace(&fs, dir, FILE, b"RKVSNAP9", &snapshot).unwrap();
        let found = load(&fs, dir).unwrap();
        assert!(matches!(found, SmallFile::Damaged { offset: 0, .. }), "{found:?}");
    }
}
