//! Damage to acknowledged data is told apart from a torn write: it is cut away, durably, and
//! reported, so that the node stays out of elections until it has caught up.

mod common;

use std::path::{Path, PathBuf};

use common::{entries, hard_state, indexes_and_terms, node_starts, open, persist, sim};
use raftkv_core::raft::{HardState, Persist, Recovered};
use raftkv_core::{LogId, LogIndex, Term};
use raftkv_storage::sim_fs::SimFs;
use raftkv_storage::{Dropped, FileSystem, Storage, StorageError, StorageOptions};

const SEGMENT_BYTES: u64 = 1 << 20;

/// Writes entries 1..=5 and 6..=10 in two persists (two records) and closes the storage.
fn two_records(fs: &SimFs, dir: &Path) {
    let (mut storage, _, _) = open(fs.clone(), dir, SEGMENT_BYTES);
    let first =
        Persist { hard_state: Some(hard_state(1, None)), entries: entries(1, 1..=5), ..persist(1) };
    storage.persist(&[first]).unwrap();
    storage.persist(&[Persist { entries: entries(1, 6..=10), ..persist(2) }]).unwrap();
}

/// The only segment of the WAL.
fn only_segment(fs: &SimFs, dir: &Path) -> PathBuf {
    let wal = dir.join("wal");
    let names = fs.list(&wal).unwrap();
    assert_eq!(names.len(), 1, "{names:?}");
    wal.join(&names[0])
}

/// Where the records of a segment end (the writer zero-fills the space after them).
fn data_end(fs: &SimFs, path: &Path) -> u64 {
    let bytes = fs.read(path).unwrap().unwrap();
    bytes.iter().rposition(|&b| b != 0).map_or(0, |last| last as u64 + 1)
}

/// Flips bit 3 of the byte at `offset` of `path`, durably.
fn flip(fs: &SimFs, path: &Path, offset: u64) {
    let bytes = fs.read(path).unwrap().unwrap();
    let at = usize::try_from(offset).unwrap();
    overwrite(fs, path, offset, &[bytes[at] ^ 0x08]);
}

/// Writes `bytes` at `offset` of `path`, durably.
fn overwrite(fs: &SimFs, path: &Path, offset: u64, bytes: &[u8]) {
    let mut file = fs.open_for_writing(path).unwrap();
    fs.write_at(&mut file, offset, bytes).unwrap();
    fs.sync_data(&mut file).unwrap();
}

/// The offsets of the records of a segment (format version 2: a 20-byte segment header, then
/// records of a 12-byte header whose second word is the payload's length).
fn record_offsets(fs: &SimFs, path: &Path) -> Vec<u64> {
    let bytes = fs.read(path).unwrap().unwrap();
    let mut offsets = Vec::new();
    let mut offset = 20;
    while bytes.len() >= offset + 12 && bytes[offset..offset + 12].iter().any(|&b| b != 0) {
        offsets.push(offset as u64);
        let length = u32::from_le_bytes(bytes[offset + 4..offset + 8].try_into().unwrap());
        offset += 12 + length as usize;
    }
    offsets
}

fn ids(range: std::ops::RangeInclusive<u64>) -> Vec<(u64, u64)> {
    range.map(|index| (index, 1)).collect()
}

/// Opens the directory and checks that a node starts from what it holds.
fn reopen(fs: &SimFs, dir: &Path) -> (Storage<SimFs>, Recovered, raftkv_storage::OpenReport) {
    let (storage, recovered, report) = open(fs.clone(), dir, SEGMENT_BYTES);
    assert_eq!(node_starts(&recovered), Ok(()), "{report:?}");
    (storage, recovered, report)
}

#[test]
fn a_bit_flip_in_the_last_acknowledged_record_is_damage_not_a_torn_write() {
    let (fs, dir) = sim(1);
    two_records(&fs, &dir);
    let segment = only_segment(&fs, &dir);
    let second = record_offsets(&fs, &segment)[1];
    // Inside the payload of the last record, well after its header.
    flip(&fs, &segment, data_end(&fs, &segment) - 30);

    let (mut storage, recovered, report) = reopen(&fs, &dir);
    assert!(recovered.hard_state.damaged, "{:?}", indexes_and_terms(&recovered));
    assert_eq!(indexes_and_terms(&recovered), ids(1..=5));
    assert_eq!(report.torn_tail, None);
    let [cut] = &report.damage[..] else { panic!("{report:?}") };
    assert_eq!((&cut.path, cut.offset), (&segment, second));
    assert!(cut.reason.contains("body fails its checksum"), "{cut}");
    assert_eq!(cut.dropped, Dropped::LogAfter { kept_last: LogIndex(5) });

    // The cut is durable: after a crash the damage is gone, and the log goes on after it.
    let new_term =
        Persist { hard_state: Some(hard_state(2, None)), entries: entries(2, 6..=7), ..persist(3) };
    storage.persist(&[new_term]).unwrap();
    drop(storage);
    fs.crash();
    let (_, recovered, report) = reopen(&fs, &dir);
    assert!(!recovered.hard_state.damaged, "{report:?}");
    assert_eq!(indexes_and_terms(&recovered), [ids(1..=5), vec![(6, 2), (7, 2)]].concat());
}

#[test]
fn a_lost_sector_at_the_end_of_the_last_write_is_a_torn_write() {
    let (fs, dir) = sim(2);
    let (mut storage, _, _) = open(fs.clone(), &dir, SEGMENT_BYTES);
    let first =
        Persist { hard_state: Some(hard_state(1, None)), entries: entries(1, 1..=5), ..persist(1) };
    storage.persist(&[first]).unwrap();
    // A record of 20 entries spans several sectors; its last sector never reached the disk.
    storage.persist(&[Persist { entries: entries(1, 6..=25), ..persist(2) }]).unwrap();
    drop(storage);
    let segment = only_segment(&fs, &dir);
    let second = record_offsets(&fs, &segment)[1];
    let end = data_end(&fs, &segment);
    let last_sector = (end - 1) / 512 * 512;
    overwrite(&fs, &segment, last_sector, &vec![0; (end - last_sector) as usize]);

    let (_, recovered, report) = reopen(&fs, &dir);
    assert!(!recovered.hard_state.damaged, "{report:?}");
    assert_eq!(indexes_and_terms(&recovered), ids(1..=5));
    let torn = report.torn_tail.expect("a torn tail");
    assert_eq!(torn.offset, second);
    assert!(torn.reason.contains("sector of zeros"), "{torn}");
    assert!(matches!(torn.dropped, Dropped::TornWrite { bytes } if bytes > 0), "{torn}");
    assert_eq!(data_end(&fs, &segment), torn.offset, "the torn write is cleared");
}

#[test]
fn damage_followed_by_an_intact_record_cuts_the_log_at_the_damage() {
    let (fs, dir) = sim(3);
    two_records(&fs, &dir);
    let segment = only_segment(&fs, &dir);
    let first = record_offsets(&fs, &segment)[0];
    // Zeros over the first record's header, as a lost write of a whole sector would leave
    // them: the intact record after it shows this is not the end of the log.
    overwrite(&fs, &segment, first, &[0; 12]);

    let (_, recovered, report) = reopen(&fs, &dir);
    assert!(recovered.hard_state.damaged);
    assert_eq!(indexes_and_terms(&recovered), []);
    let [cut] = &report.damage[..] else { panic!("{report:?}") };
    assert_eq!(cut.offset, first);
    assert!(cut.reason.contains("an intact record follows"), "{cut}");
    assert_eq!(data_end(&fs, &segment), 20, "everything after the header is cleared");
}

#[test]
fn damage_in_a_closed_segment_removes_every_later_segment() {
    let (fs, dir) = sim(4);
    let (mut storage, _, _) = open(fs.clone(), &dir, 1024);
    for chunk in 0..6 {
        let from = chunk * 5 + 1;
        let batch = Persist {
            hard_state: Some(hard_state(1, None)),
            entries: entries(1, from..=from + 4),
            ..persist(chunk + 1)
        };
        storage.persist(&[batch]).unwrap();
    }
    drop(storage);
    let wal = dir.join("wal");
    let mut names = fs.list(&wal).unwrap();
    names.sort();
    assert!(names.len() >= 3, "{names:?}");
    let second = wal.join(&names[1]);
    let records = record_offsets(&fs, &second);
    flip(&fs, &second, records[0] + 40);

    let (mut storage, recovered, report) = open(fs.clone(), &dir, 1024);
    assert_eq!(node_starts(&recovered), Ok(()));
    assert!(recovered.hard_state.damaged);
    let kept = indexes_and_terms(&recovered);
    let [cut] = &report.damage[..] else { panic!("{report:?}") };
    assert_eq!((&cut.path, cut.offset), (&second, records[0]));
    assert_eq!(cut.dropped, Dropped::LogAfter { kept_last: LogIndex(kept.len() as u64) });
    assert_eq!(fs.list(&wal).unwrap().len(), 2, "the segments after the damage are gone");

    // The damaged segment is written again after its last intact record.
    let next = kept.len() as u64 + 1;
    storage.persist(&[Persist { entries: entries(1, next..=next), ..persist(7) }]).unwrap();
    drop(storage);
    fs.crash();
    let (_, recovered, report) = open(fs, &dir, 1024);
    assert!(recovered.hard_state.damaged, "until the node clears it, having caught up");
    assert!(report.damage.is_empty(), "{report:?}");
    assert_eq!(indexes_and_terms(&recovered), [kept, vec![(next, 1)]].concat());
}

#[test]
fn a_damaged_segment_header_drops_the_whole_segment() {
    let (fs, dir) = sim(5);
    two_records(&fs, &dir);
    let segment = only_segment(&fs, &dir);
    flip(&fs, &segment, 10); // in the sequence number

    let (mut storage, recovered, report) = reopen(&fs, &dir);
    assert!(recovered.hard_state.damaged);
    assert_eq!(indexes_and_terms(&recovered), []);
    let [cut] = &report.damage[..] else { panic!("{report:?}") };
    assert_eq!((&cut.path, cut.offset), (&segment, 0));
    assert!(cut.reason.contains("segment header"), "{cut}");
    assert_eq!(fs.read(&segment).unwrap(), None, "the damaged segment is removed");
    let new_term =
        Persist { hard_state: Some(hard_state(2, None)), entries: entries(2, 1..=1), ..persist(3) };
    storage.persist(&[new_term]).unwrap();
    drop(storage);
    let (_, recovered, _) = reopen(&fs, &dir);
    assert_eq!(indexes_and_terms(&recovered), [(1, 2)]);
}

#[test]
fn a_damaged_hard_state_goes_on_with_the_last_term_of_the_log_and_no_vote() {
    let (fs, dir) = sim(6);
    let (mut storage, _, _) = open(fs.clone(), &dir, SEGMENT_BYTES);
    let voted = Persist {
        hard_state: Some(hard_state(4, Some(2))),
        entries: entries(3, 1..=3),
        ..persist(1)
    };
    storage.persist(&[voted]).unwrap();
    drop(storage);
    flip(&fs, &dir.join("hardstate"), 21);

    let (_, recovered, report) = reopen(&fs, &dir);
    assert!(recovered.hard_state.damaged);
    let expected = HardState { term: Term(3), vote: None, damaged: true };
    assert_eq!(recovered.hard_state, expected);
    assert_eq!(indexes_and_terms(&recovered), [(1, 3), (2, 3), (3, 3)]);
    let [cut] = &report.damage[..] else { panic!("{report:?}") };
    assert_eq!(cut.dropped, Dropped::HardState { recovered: expected });
    fs.crash();
    let (_, recovered, report) = reopen(&fs, &dir);
    assert_eq!(recovered.hard_state, expected, "replaced durably, and still damaged");
    assert!(report.damage.is_empty(), "the damage itself is gone: {report:?}");
}

#[test]
fn a_damaged_snapshot_is_dropped_with_the_whole_log() {
    let (fs, dir) = sim(7);
    let (mut storage, _, _) = open(fs.clone(), &dir, 1024);
    let first = Persist {
        hard_state: Some(hard_state(2, None)),
        entries: entries(2, 1..=20),
        ..persist(1)
    };
    storage.persist(&[first]).unwrap();
    let snapshot = Persist { snapshot: Some(common::snapshot(15, 2)), ..persist(2) };
    storage.persist(&[snapshot]).unwrap();
    storage.persist(&[Persist { entries: entries(2, 21..=22), ..persist(3) }]).unwrap();
    drop(storage);
    flip(&fs, &dir.join("snapshot"), 25);

    let (_, recovered, report) = reopen(&fs, &dir);
    assert!(recovered.hard_state.damaged);
    assert_eq!((recovered.snapshot.clone(), indexes_and_terms(&recovered)), (None, vec![]));
    assert_eq!(recovered.hard_state, HardState { damaged: true, ..hard_state(2, None) });
    let [cut] = &report.damage[..] else { panic!("{report:?}") };
    assert_eq!(cut.dropped, Dropped::SnapshotAndLog);
    fs.crash();
    let (_, recovered, report) = reopen(&fs, &dir);
    assert!(recovered.hard_state.damaged && report.damage.is_empty(), "{report:?}");
    assert_eq!((recovered.snapshot, recovered.entries), (None, vec![]));
}

#[test]
fn a_damaged_identity_file_refuses_to_start() {
    let (fs, dir) = sim(8);
    two_records(&fs, &dir);
    flip(&fs, &dir.join("node"), 22);
    let error = Storage::open(fs, &dir, &common::options(SEGMENT_BYTES)).unwrap_err();
    assert!(matches!(error, StorageError::Corrupt { .. }), "{error}");
    let message = error.to_string();
    assert!(message.contains("node") && message.contains("refusing to start"), "{message}");
}

#[test]
fn a_segment_of_format_version_1_is_refused_with_the_file_and_the_version() {
    let (fs, dir) = sim(9);
    two_records(&fs, &dir);
    let segment = only_segment(&fs, &dir);
    let mut version_1 = b"RKVWAL\x00\x01".to_vec();
    version_1.extend_from_slice(&1u64.to_le_bytes());
    overwrite(&fs, &segment, 0, &version_1);
    let error = Storage::open(fs, &dir, &common::options(SEGMENT_BYTES)).unwrap_err().to_string();
    assert!(error.contains(&segment.display().to_string()), "{error}");
    assert!(error.contains("format version 1") && error.contains("older raftkv"), "{error}");
}

/// Review finding: the damage was reported only by the start that found it; a crash after
/// the cut, before the node caught up, let the next start vote again. The hard state says
/// "damaged" durably before anything is cut.
#[test]
fn a_crash_while_the_log_is_cut_finds_the_same_cut_again() {
    for crash_after in 0..12 {
        let (fs, dir) = sim(10 + crash_after);
        two_records(&fs, &dir);
        let segment = only_segment(&fs, &dir);
        flip(&fs, &segment, record_offsets(&fs, &segment)[1] + 30);
        fs.crash_after_ops(crash_after);
        let _ = Storage::open(fs.clone(), &dir, &common::options(SEGMENT_BYTES));
        fs.crash();
        let (_, recovered, _) = reopen(&fs, &dir);
        assert_eq!(indexes_and_terms(&recovered), ids(1..=5), "crash after {crash_after}");
        assert!(recovered.hard_state.damaged, "crash after {crash_after}: damage forgotten");
    }
}

/// Bit rot anywhere: the node refuses to start only for its identity file, and whenever what
/// it recovers differs from what it wrote, it knows it is damaged.
#[test]
fn random_bit_flips_are_never_lost_silently() {
    let options = StorageOptions { zero_fill_bytes: 256, ..common::options(2048) };
    let mut damaged = 0;
    for seed in 0..300 {
        let (fs, dir) = sim(seed);
        let (mut storage, _, _) = Storage::open(fs.clone(), &dir, &options).unwrap();
        let first = Persist {
            hard_state: Some(hard_state(2, Some(1))),
            entries: entries(2, 1..=12),
            ..persist(1)
        };
        storage.persist(&[first]).unwrap();
        let snapshot = Persist { snapshot: Some(common::snapshot(10, 2)), ..persist(2) };
        storage.persist(&[snapshot]).unwrap();
        storage.persist(&[Persist { entries: entries(2, 13..=30), ..persist(3) }]).unwrap();
        drop(storage);
        let (_, written, _) = Storage::open(fs.clone(), &dir, &options).unwrap();
        let flip = fs.flip_bit(|_| true).expect("files to flip a bit in");
        match Storage::open(fs.clone(), &dir, &options) {
            Err(error) => assert!(flip.path.ends_with("node"), "seed {seed}, {flip:?}: {error}"),
            Ok((_, recovered, report)) => {
                assert_eq!(node_starts(&recovered), Ok(()), "seed {seed}, {flip:?}");
                let mut undamaged = recovered.clone();
                undamaged.hard_state.damaged = false;
                let same = undamaged == written;
                assert!(
                    same || recovered.hard_state.damaged,
                    "seed {seed}, {flip:?}: lost silently {report:?}"
                );
                damaged += u64::from(recovered.hard_state.damaged);
            }
        }
    }
    assert!(damaged > 100, "{damaged} of 300 flips were damage");
}

/// Found by the simulator (seed 517): the damaged record was a truncation that had erased
/// entries of an older term from an earlier record; cutting the log there brought them back,
/// after a snapshot of a later term, and the node refused to start ("recovered log is broken at
/// entry 240/74"). After a cut, entries whose terms go back are dropped too.
#[test]
fn a_cut_truncation_record_does_not_bring_back_the_entries_it_had_erased() {
    let (fs, dir) = sim(11);
    let (mut storage, _, _) = open(fs.clone(), &dir, SEGMENT_BYTES);
    let first =
        Persist { hard_state: Some(hard_state(1, None)), entries: entries(1, 1..=5), ..persist(1) };
    storage.persist(&[first]).unwrap();
    // A new leader of term 2 replaces entries 3 on; then a snapshot of term 2 covers 3.
    let repair = Persist {
        hard_state: Some(hard_state(2, None)),
        truncate_from: Some(LogIndex(3)),
        entries: entries(2, 3..=4),
        ..persist(2)
    };
    storage.persist(&[repair]).unwrap();
    let snapshot = Persist { snapshot: Some(common::snapshot(3, 2)), ..persist(3) };
    storage.persist(&[snapshot]).unwrap();
    drop(storage);
    // The snapshot closed the segment holding both records.
    let wal = dir.join("wal");
    let mut names = fs.list(&wal).unwrap();
    names.sort();
    let segment = wal.join(&names[0]);
    let records = record_offsets(&fs, &segment);
    assert_eq!(records.len(), 2);
    flip(&fs, &segment, records[1] + 30); // In the repair.

    let (mut storage, recovered, report) = reopen(&fs, &dir);
    assert!(recovered.hard_state.damaged, "{report:?}");
    assert_eq!(indexes_and_terms(&recovered), [], "4/1 and 5/1 were erased by term 2");
    assert!(
        report.damage.iter().any(|cut| cut.reason.contains("older than the snapshot")),
        "{report:?}"
    );
    // The node catches up to the snapshot alone and clears the mark; the erased entries do not
    // come back at the next start, durably gone.
    storage.persist(&[Persist { hard_state: Some(hard_state(2, None)), ..persist(4) }]).unwrap();
    drop(storage);
    fs.crash();
    let (_, recovered, report) = reopen(&fs, &dir);
    assert_eq!((recovered.hard_state.damaged, indexes_and_terms(&recovered)), (false, vec![]));
    assert!(report.damage.is_empty(), "{report:?}");
}

/// Entries read back from the log are checked: a damaged record on the way is an error, never
/// entries; those before it still come back.
#[test]
fn a_damaged_record_fails_a_read_back_instead_of_giving_wrong_entries() {
    let (fs, dir) = sim(41);
    let (mut storage, _, _) = open(fs.clone(), &dir, SEGMENT_BYTES);
    let first =
        Persist { hard_state: Some(hard_state(1, None)), entries: entries(1, 1..=5), ..persist(1) };
    storage.persist(&[first]).unwrap();
    storage.persist(&[Persist { entries: entries(1, 6..=10), ..persist(2) }]).unwrap();
    let segment = only_segment(&fs, &dir);
    flip(&fs, &segment, record_offsets(&fs, &segment)[1] + 40);
    let last = |index| LogId::new(LogIndex(index), Term(1));
    let intact = storage.read_entries(LogIndex(2), last(5)).unwrap().expect("held");
    assert_eq!(intact, entries(1, 2..=5));
    let error = storage.read_entries(LogIndex(6), last(10)).unwrap_err();
    assert!(matches!(error, StorageError::Corrupt { .. }), "{error}");
}
