//! A snapshot received from the leader, from its first chunk to its install: a crash between
//! any two steps (writing the chunks, reading them back checked and finishing the file,
//! installing it by a rename with the persist that truncates the log) leaves a directory a
//! node starts from, with the snapshot and the log consistent, every acknowledged chunk still
//! there, and, once installed, the data as received, written once.

mod common;

use std::cell::Cell;
use std::io::{self, Read};
use std::path::Path;
use std::rc::Rc;

use common::{entries, hard_state, indexes_and_terms, node_starts, persist, sim};
use raftkv_core::raft::{
    Membership, PartialSnapshot, Persist, ReceivedChunk, Recovered, SavedSnapshot,
};
use raftkv_core::{LogId, LogIndex, NodeId, Term};
use raftkv_storage::sim_fs::SimFs;
use raftkv_storage::{FileSystem, ReceivedSnapshotReader, Storage, StorageError, StorageOptions};

const SEEDS: u64 = 8;
const LAST: LogId = LogId { index: LogIndex(15), term: Term(3) };
/// Three chunks, one of them longer than a piece a record covers (1 MiB).
const CHUNKS: [usize; 3] = [700_000, 1_200_000, 100_000];

fn membership() -> Membership {
    Membership::with_voters([NodeId(1), NodeId(2), NodeId(3)])
}

fn data() -> Vec<u8> {
    let total: usize = CHUNKS.iter().sum();
    (0..total).map(|i| (i * 7 % 251) as u8).collect()
}

fn options() -> StorageOptions {
    StorageOptions { zero_fill_bytes: 0, ..common::options(1024) }
}

/// Entries 1..=20 of term 1 and a vote, acknowledged before the snapshot arrives.
fn acknowledged() -> Persist {
    Persist { hard_state: Some(hard_state(1, Some(2))), entries: entries(1, 1..=20), ..persist(1) }
}

/// The persists that carry the chunks, one each.
fn chunk_persists(data: &[u8]) -> Vec<Persist> {
    let mut offset = 0;
    let mut persists = Vec::new();
    for (i, length) in CHUNKS.into_iter().enumerate() {
        let chunk = ReceivedChunk {
            last: LAST,
            membership: membership(),
            total: data.len() as u64,
            offset: offset as u64,
            data: data[offset..offset + length].to_vec(),
        };
        persists.push(Persist { snapshot_chunk: Some(chunk), ..persist(2 + i as u64) });
        offset += length;
    }
    persists
}

/// The persist that installs it: a new term, the snapshot, the truncation of the entries it
/// conflicts with, and entries after it.
fn install(total: u64) -> Persist {
    Persist {
        hard_state: Some(hard_state(3, None)),
        install_received: Some(SavedSnapshot {
            last: LAST,
            membership: membership(),
            bytes: total,
        }),
        truncate_from: Some(LogIndex(16)),
        entries: entries(3, 16..=18),
        ..persist(9)
    }
}

/// Reads the snapshot received whole back, checked, and finishes it, as a driver does for
/// `Output::LoadSnapshot`.
fn read_back(fs: &SimFs, dir: &Path, total: u64) -> Result<Vec<u8>, StorageError> {
    let whole = PartialSnapshot { last: LAST, total, received: total };
    let mut reader = ReceivedSnapshotReader::open(fs.clone(), dir, &whole)?;
    let mut read = Vec::new();
    reader.read_to_end(&mut read).map_err(|error| reader.damaged(&error))?;
    reader.finish()?;
    Ok(read)
}

/// Everything from the first chunk to the install; stops at the first failure (the machine
/// stopped). Returns how many chunk persists were acknowledged, and whether the install was.
fn receive_and_install(storage: &mut Storage<SimFs>, fs: &SimFs, dir: &Path) -> (usize, bool) {
    let data = data();
    let mut acknowledged = 0;
    for chunk in chunk_persists(&data) {
        if storage.persist(&[chunk]).is_err() {
            return (acknowledged, false);
        }
        acknowledged += 1;
    }
    if read_back(fs, dir, data.len() as u64).is_err() {
        return (acknowledged, false);
    }
    (acknowledged, storage.persist(&[install(data.len() as u64)]).is_ok())
}

/// What a restart may find: the log before the install or after it, consistent.
fn check_consistent(recovered: &Recovered, at: &str) {
    assert_eq!(node_starts(recovered), Ok(()), "{at}");
    let log = indexes_and_terms(recovered);
    let before: Vec<(u64, u64)> = (1..=20).map(|index| (index, 1)).collect();
    match &recovered.snapshot {
        // The truncation lands before the snapshot.
        None => assert!(log == before || log == before[..15], "{at}: {log:?}"),
        Some(snapshot) => {
            assert_eq!((snapshot.last, &snapshot.membership), (LAST, &membership()), "{at}");
            assert!(snapshot.data == data(), "{at}: the snapshot's data as received");
            let after: Vec<(u64, u64)> = (16..=18).map(|index| (index, 3)).collect();
            assert!(log.is_empty() || log == after, "{at}: {log:?}");
            assert_eq!(recovered.partial_snapshot, None, "{at}: nothing left to receive");
        }
    }
}

#[test]
fn a_crash_at_every_step_from_the_first_chunk_to_the_install_recovers_consistent() {
    let total = data().len() as u64;
    let mut installed_seen = false;
    let mut resumed_seen = false;
    for seed in 0..SEEDS {
        for step in 0.. {
            let at = format!("crash at step {step}, seed {seed}");
            let (fs, dir) = sim(seed);
            let (mut storage, _, _) = Storage::open(fs.clone(), &dir, &options()).unwrap();
            storage.persist(&[acknowledged()]).unwrap();
            fs.crash_after_ops(step);
            let (chunks_acknowledged, finished) = receive_and_install(&mut storage, &fs, &dir);
            drop(storage);
            fs.crash();
            let (storage, recovered, report) = Storage::open(fs.clone(), &dir, &options()).unwrap();
            assert!(!recovered.hard_state.damaged, "{at}: a crash is not damage: {report:?}");
            check_consistent(&recovered, &at);
            drop(storage);
            fs.crash();
            let (_, again, _) = Storage::open(fs.clone(), &dir, &options()).unwrap();
            assert_eq!(again, recovered, "{at}: a crash right after opening");
            if recovered.snapshot.is_some() {
                installed_seen = true;
            } else if chunks_acknowledged > 0 {
                // Every acknowledged chunk came back, and a whole one reads back intact.
                let partial = recovered.partial_snapshot.expect("the chunks acknowledged");
                let durable: usize = CHUNKS[..chunks_acknowledged].iter().sum();
                assert!(partial.received >= durable as u64, "{at}: {partial:?}");
                if partial.received == total {
                    assert!(read_back(&fs, &dir, total).unwrap() == data(), "{at}");
                    resumed_seen = true;
                }
            }
            if finished {
                assert!(recovered.snapshot.is_some(), "{at}: installed once nothing crashed");
                break;
            }
        }
    }
    assert!(installed_seen && resumed_seen, "both sides of the install were reached");
}

#[test]
fn the_data_is_written_once_from_the_first_chunk_to_the_install() {
    let (sim_fs, dir) = sim(1);
    let fs = CountingFs { fs: sim_fs.clone(), written: Rc::default() };
    let (mut storage, _, _) = Storage::open(fs.clone(), &dir, &options()).unwrap();
    storage.persist(&[acknowledged()]).unwrap();
    let data = data();
    let written_before = fs.written.get();
    for chunk in chunk_persists(&data) {
        storage.persist(&[chunk]).unwrap();
    }
    let total = data.len() as u64;
    let whole = PartialSnapshot { last: LAST, total, received: total };
    let mut reader = ReceivedSnapshotReader::open(fs.clone(), &dir, &whole).unwrap();
    let mut read = Vec::new();
    reader.read_to_end(&mut read).unwrap();
    reader.finish().unwrap();
    assert!(read == data);
    storage.persist(&[install(data.len() as u64)]).unwrap();
    let written = fs.written.get() - written_before;
    // The data, a few headers and records, and the log's record of the entries after it.
    let overhead = written - data.len() as u64;
    assert!(overhead < 4_096, "the data is written once: {written} bytes for {}", data.len());
    let listed = sim_fs.list(&dir).unwrap();
    assert!(!listed.iter().any(|name| name.starts_with("snapshot.incoming")), "{listed:?}");
    drop(storage);
    sim_fs.crash();
    let (_, recovered, _) = Storage::open(sim_fs, &dir, &options()).unwrap();
    check_consistent(&recovered, "after the install");
    assert!(recovered.snapshot.is_some());
}

/// A file system that counts the bytes written through it.
#[derive(Clone, Debug)]
struct CountingFs {
    fs: SimFs,
    written: Rc<Cell<u64>>,
}

impl FileSystem for CountingFs {
    type File = <SimFs as FileSystem>::File;

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        self.fs.list(dir)
    }
    fn read(&self, path: &Path) -> io::Result<Option<Vec<u8>>> {
        self.fs.read(path)
    }
    fn create_new(&self, path: &Path) -> io::Result<Self::File> {
        self.fs.create_new(path)
    }
    fn open_for_writing(&self, path: &Path) -> io::Result<Self::File> {
        self.fs.open_for_writing(path)
    }
    fn open_for_reading(&self, path: &Path) -> io::Result<Option<Self::File>> {
        self.fs.open_for_reading(path)
    }
    fn read_at(&self, file: &Self::File, offset: u64, length: usize) -> io::Result<Vec<u8>> {
        self.fs.read_at(file, offset, length)
    }
    fn write_at(&self, file: &mut Self::File, offset: u64, bytes: &[u8]) -> io::Result<()> {
        self.written.set(self.written.get() + bytes.len() as u64);
        self.fs.write_at(file, offset, bytes)
    }
    fn len(&self, file: &Self::File) -> io::Result<u64> {
        self.fs.len(file)
    }
    fn shrink(&self, file: &mut Self::File, length: u64) -> io::Result<()> {
        self.fs.shrink(file, length)
    }
    fn sync_data(&self, file: &mut Self::File) -> io::Result<()> {
        self.fs.sync_data(file)
    }
    fn sync_all(&self, file: &mut Self::File) -> io::Result<()> {
        self.fs.sync_all(file)
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.fs.rename(from, to)
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        self.fs.remove_file(path)
    }
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        self.fs.create_dir_all(dir)
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.fs.sync_dir(dir)
    }
}

#[test]
fn an_install_of_a_file_not_read_back_is_refused_and_stops_the_storage() {
    let (fs, dir) = sim(2);
    let (mut storage, _, _) = Storage::open(fs.clone(), &dir, &options()).unwrap();
    storage.persist(&[acknowledged()]).unwrap();
    let data = data();
    for chunk in chunk_persists(&data) {
        storage.persist(&[chunk]).unwrap();
    }
    let refused = storage.persist(&[install(data.len() as u64)]);
    assert!(matches!(refused, Err(StorageError::Refused { .. })), "{refused:?}");
}
