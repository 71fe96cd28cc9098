//! The simulated file system keeps what was synced, may lose what was not (a sector or a
//! directory operation at a time), and injects the faults it is asked for.

use std::io;
use std::path::Path;

use raftkv_storage::FileSystem;
use raftkv_storage::sim_fs::{FailureKind, SimFs};

const DIR: &str = "d";

/// A file system with a durable directory `d` holding a durable file `d/f` of `contents`.
fn with_durable_file(seed: u64, contents: &[u8]) -> SimFs {
    let fs = SimFs::new(seed);
    fs.create_dir_all(Path::new(DIR)).unwrap();
    fs.sync_dir(Path::new("")).unwrap();
    let mut file = fs.create_new(&file_path()).unwrap();
    fs.write_at(&mut file, 0, contents).unwrap();
    fs.sync_data(&mut file).unwrap();
    fs.sync_dir(Path::new(DIR)).unwrap();
    fs
}

fn file_path() -> std::path::PathBuf {
    Path::new(DIR).join("f")
}

#[test]
fn synced_data_and_entries_survive_a_crash() {
    let fs = with_durable_file(1, b"durable");
    fs.crash();
    assert_eq!(fs.read(&file_path()).unwrap().as_deref(), Some(&b"durable"[..]));
    assert_eq!(fs.list(Path::new(DIR)).unwrap(), ["f"]);
    assert_eq!(fs.faults().crashes, 1);
}

#[test]
fn a_crash_keeps_or_loses_each_unsynced_sector_and_so_can_tear_a_write() {
    let (mut torn, mut lost, mut kept) = (0, 0, 0);
    for seed in 0..64 {
        let fs = with_durable_file(seed, &[0; 2048]);
        let mut file = fs.open_for_writing(&file_path()).unwrap();
        fs.write_at(&mut file, 0, &[7; 2048]).unwrap();
        assert_eq!(fs.read(&file_path()).unwrap().unwrap(), [7; 2048], "seen before a crash");
        fs.crash();
        let after = fs.read(&file_path()).unwrap().unwrap();
        assert_eq!(after.len(), 2048);
        for sector in after.chunks(512) {
            assert!(sector == [0; 512] || sector == [7; 512], "a sector is kept or lost whole");
        }
        let (was_torn, was_lost) = (after.contains(&0) && after.contains(&7), !after.contains(&7));
        assert_eq!(fs.faults().torn_writes, u64::from(was_torn));
        assert_eq!(fs.faults().lost_writes, u64::from(was_lost));
        match (was_torn, was_lost) {
            (true, _) => torn += 1,
            (_, true) => lost += 1,
            _ => kept += 1,
        }
    }
    assert!(torn > 0 && lost > 0 && kept > 0, "torn {torn}, lost {lost}, kept {kept}");
}

#[test]
fn unsynced_directory_operations_may_be_lost_and_a_rename_is_atomic() {
    let mut outcomes = std::collections::BTreeSet::new();
    for seed in 0..64 {
        let fs = with_durable_file(seed, b"old");
        let temporary = Path::new(DIR).join("f.tmp");
        let mut file = fs.create_new(&temporary).unwrap();
        fs.write_at(&mut file, 0, b"new").unwrap();
        fs.sync_data(&mut file).unwrap();
        fs.rename(&temporary, &file_path()).unwrap();
        let mut created = fs.create_new(&Path::new(DIR).join("g")).unwrap();
        fs.write_at(&mut created, 0, b"g").unwrap();
        fs.sync_data(&mut created).unwrap();
        fs.crash();
        let contents = fs.read(&file_path()).unwrap().expect("f is old or new, never missing");
        let names = fs.list(Path::new(DIR)).unwrap();
        assert!(contents == b"old" || contents == b"new", "{contents:?}");
        outcomes.insert((contents, names.contains(&"g".to_string())));
        assert!(fs.faults().lost_dir_ops <= 3);
    }
    assert_eq!(outcomes.len(), 4, "old or new, g or not, in every combination: {outcomes:?}");
}

#[test]
fn a_directory_whose_entry_is_lost_vanishes_with_its_files() {
    let vanished = (0..32).any(|seed| {
        let fs = SimFs::new(seed);
        fs.create_dir_all(Path::new("a/b")).unwrap();
        fs.sync_dir(Path::new("a/b")).unwrap();
        let mut file = fs.create_new(Path::new("a/b/f")).unwrap();
        fs.sync_data(&mut file).unwrap();
        fs.sync_dir(Path::new("a/b")).unwrap();
        fs.crash();
        let gone = fs.read(Path::new("a/b/f")).unwrap().is_none();
        assert_eq!(gone, fs.list(Path::new("a/b")).is_err(), "seed {seed}");
        gone
    });
    assert!(vanished, "no seed lost the unsynced entry of a or a/b");
}

#[test]
fn crash_after_ops_stops_everything_after_the_given_number_of_mutations() {
    let fs = with_durable_file(3, b"x");
    let ops_before = fs.ops();
    fs.crash_after_ops(2);
    let mut file = fs.open_for_writing(&file_path()).unwrap();
    fs.write_at(&mut file, 0, b"y").unwrap();
    fs.sync_data(&mut file).unwrap();
    assert_eq!(fs.ops(), ops_before + 2);
    assert!(fs.write_at(&mut file, 0, b"z").is_err());
    assert!(fs.read(&file_path()).is_err(), "reads fail too once stopped");
    assert!(fs.list(Path::new(DIR)).is_err());
    fs.crash();
    assert_eq!(fs.read(&file_path()).unwrap().as_deref(), Some(&b"y"[..]));
    assert!(fs.write_at(&mut file, 0, b"z").is_err(), "a handle does not outlive a crash");
    assert_eq!(fs.faults().crashes_between_steps, 1);
    fs.crash();
    assert_eq!(fs.faults().crashes_between_steps, 1, "a plain crash is not counted as one");
}

#[test]
fn injected_errors_look_like_the_kernel_s_and_a_failed_sync_forgets_the_write() {
    let fs = with_durable_file(4, b"old");
    let mut file = fs.open_for_writing(&file_path()).unwrap();
    fs.fail_next(FailureKind::NoSpace);
    let full = fs.write_at(&mut file, 0, b"new").unwrap_err();
    assert_eq!((full.kind(), full.raw_os_error()), (io::ErrorKind::StorageFull, Some(28)));
    assert_eq!(fs.read(&file_path()).unwrap().as_deref(), Some(&b"old"[..]), "nothing written");

    fs.write_at(&mut file, 0, b"new").unwrap();
    fs.fail_next(FailureKind::Io);
    let failed = fs.sync_data(&mut file).unwrap_err();
    assert_eq!(failed.raw_os_error(), Some(5));
    // A retried sync succeeds, and the write it was meant to make durable is gone.
    fs.sync_data(&mut file).unwrap();
    assert_eq!(fs.read(&file_path()).unwrap().as_deref(), Some(&b"old"[..]));
    let faults = fs.faults();
    assert_eq!((faults.no_space_errors, faults.io_errors), (1, 1));
}

#[test]
fn a_bit_flip_changes_one_bit_of_durable_data() {
    let fs = with_durable_file(5, &[0; 100]);
    let flip = fs.flip_bit(|_| true).expect("a file holds durable data");
    assert_eq!(flip.path, file_path());
    let after = fs.read(&file_path()).unwrap().unwrap();
    let ones: u32 = after.iter().map(|byte| byte.count_ones()).sum();
    assert_eq!(ones, 1);
    assert_eq!(after[usize::try_from(flip.offset).unwrap()], 1 << flip.bit);
    fs.crash();
    assert_eq!(fs.read(&file_path()).unwrap().unwrap(), after, "the flip is durable");
    assert_eq!(fs.faults().bit_flips, 1);
    assert!(SimFs::new(5).flip_bit(|_| true).is_none(), "nothing to flip on an empty file system");
}

#[test]
fn the_same_seed_gives_the_same_crash() {
    let run = |seed| {
        let fs = with_durable_file(seed, &[0; 4096]);
        let mut file = fs.open_for_writing(&file_path()).unwrap();
        fs.write_at(&mut file, 100, &[9; 3000]).unwrap();
        fs.crash();
        (fs.read(&file_path()).unwrap(), fs.faults())
    };
    assert_eq!(run(11), run(11));
    assert!((0..8).any(|seed| run(seed) != run(11)), "different seeds, different crashes");
}
