//! The floor under a single client's put on this machine: what one durable, replicated write
//! cannot avoid. The leader syncs the entry (one 4 KiB `fdatasync` of a file whose blocks are
//! already allocated, as WAL segments are) while it sends it to a follower that syncs it too
//! (in parallel), and two round trips on the loopback carry the request to the leader and the
//! entry to a follower, and their answers back. Both are measured here, medians of many.
//!
//! When the cluster's nodes share this machine's disk (`--spawn-nodes`), that floor cannot be
//! reached: a commit needs a majority of the nodes' syncs, and syncs at once on one disk take
//! longer than one alone. The cluster floor measures what one disk allows: a majority of the
//! nodes syncing 4 KiB at once, waiting for all of them (the least a commit needs), and, for
//! comparison, every node syncing at once as a put makes them today, waiting for a majority.
//! It also times a bare put (see `bare_put`): the put's whole path, hops and syncs, with none
//! of raftkv's code on it.

use std::fs::{self, File};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use super::bare_put;
use super::rank::nearest_rank;
use super::scratch;

/// Syncs timed.
const SYNCS: usize = 400;
/// Round trips timed.
const ROUND_TRIPS: usize = 2_000;
/// Bytes of each round trip's message, about a small put.
const MESSAGE_BYTES: usize = 128;

/// What the floor is made of.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Floor {
    /// The median of a 4 KiB write and `fdatasync` into a preallocated file.
    pub(crate) fdatasync_p50: Duration,
    /// Their 99th percentile: the disk's own tail, against which a run's p99 / p50 reads.
    pub(crate) fdatasync_p99: Duration,
    /// The median round trip of a small message over loopback TCP.
    pub(crate) round_trip_p50: Duration,
    /// With the nodes on this disk, what their syncs at once take.
    pub(crate) shared_disk: Option<SharedDisk>,
}

/// Syncs started together on one disk by as many threads as the cluster has nodes, or as a
/// majority of it has, one preallocated file each: medians over rounds.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SharedDisk {
    /// The cluster's nodes.
    pub(crate) nodes: usize,
    /// A majority of them syncing 4 KiB at once, until all of those are done: the least disk
    /// time a commit needs when they share this disk.
    pub(crate) majority_at_once_p50: Duration,
    /// Every node syncing 4 KiB at once (as a put makes them: the leader's sync overlaps its
    /// followers'), until a majority of them are done.
    pub(crate) all_at_once_p50: Duration,
    /// A put's whole path with none of raftkv's code on it (see `bare_put`): what is left of a
    /// single client's latency above it is the code's.
    pub(crate) bare_put_p50: Duration,
}

impl Floor {
    /// The floor itself: one sync and two round trips.
    pub(crate) fn total(&self) -> Duration {
        self.fdatasync_p50.saturating_add(self.round_trip_p50.saturating_mul(2))
    }

    /// The cluster floor, when the nodes share this disk: a majority of them syncing at once,
    /// and two round trips.
    pub(crate) fn cluster_total(&self) -> Option<Duration> {
        let shared = self.shared_disk?;
        Some(shared.majority_at_once_p50.saturating_add(self.round_trip_p50.saturating_mul(2)))
    }
}

/// The floor measured before the run and after it. Another process's I/O or CPU during one
/// measurement raises it (a busy shared disk once read 4 ms for a 0.15 ms sync), so the lower
/// of the two is the floor the run is held against; both are printed.
#[derive(Clone, Copy, Debug)]
pub(crate) struct FloorReadings {
    pub(crate) before: Floor,
    pub(crate) after: Floor,
}

impl FloorReadings {
    /// The reading with the lower floor.
    pub(crate) fn kept(&self) -> Floor {
        if self.after.total() < self.before.total() { self.after } else { self.before }
    }

    /// The reading with the lower cluster floor, kept apart from [`kept`](Self::kept): the
    /// disk may have been busy during one of the two measurements and not the other.
    pub(crate) fn kept_cluster(&self) -> Floor {
        match (self.before.cluster_total(), self.after.cluster_total()) {
            (Some(before), Some(after)) if after < before => self.after,
            _ => self.before,
        }
    }
}

/// Measures the floor with scratch files in `dir` (on the disk the nodes use), removed after;
/// with `shared_disk_nodes` (at least 2: a cluster on this disk), the cluster floor too.
pub(crate) fn measure(dir: &Path, shared_disk_nodes: Option<usize>) -> Result<Floor, String> {
    fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let failed = |e: std::io::Error| format!("cannot measure fdatasync in {}: {e}", dir.display());
    let mut syncs = syncs_at_once(dir, 1).map_err(failed)?.remove(0);
    let shared_disk = match shared_disk_nodes.filter(|&nodes| nodes >= 2) {
        Some(nodes) => Some(shared_disk(dir, nodes).map_err(failed)?),
        None => None,
    };
    let round_trip_p50 =
        round_trip_median().map_err(|e| format!("cannot measure a loopback round trip: {e}"))?;
    let fdatasync_p50 = percentile(&mut syncs, 50);
    let fdatasync_p99 = percentile(&mut syncs, 99);
    Ok(Floor { fdatasync_p50, fdatasync_p99, round_trip_p50, shared_disk })
}

/// The syncs of `nodes` nodes sharing the disk of `dir`, a majority of them at once, then all.
fn shared_disk(dir: &Path, nodes: usize) -> std::io::Result<SharedDisk> {
    let majority = nodes / 2 + 1;
    let mut majority_rounds = round_times(&syncs_at_once(dir, majority)?, majority);
    let mut all_rounds = round_times(&syncs_at_once(dir, nodes)?, majority);
    Ok(SharedDisk {
        nodes,
        majority_at_once_p50: percentile(&mut majority_rounds, 50),
        all_at_once_p50: percentile(&mut all_rounds, 50),
        bare_put_p50: bare_put::median(dir, nodes)?,
    })
}

/// Per round, how long the syncs started together took until `needed` of them were done.
fn round_times(per_thread: &[Vec<Duration>], needed: usize) -> Vec<Duration> {
    let rounds = per_thread.iter().map(Vec::len).min().unwrap_or(0);
    (0..rounds)
        .filter_map(|round| {
            let mut took: Vec<Duration> = per_thread.iter().map(|syncs| syncs[round]).collect();
            took.sort_unstable();
            took.get(needed.checked_sub(1)?).copied()
        })
        .collect()
}

/// `SYNCS` rounds of one 4 KiB write and `fdatasync` on each of `threads` threads, each on a
/// preallocated file of its own in `dir`, every round started together; each thread's times.
fn syncs_at_once(dir: &Path, threads: usize) -> std::io::Result<Vec<Vec<Duration>>> {
    let barrier = Arc::new(Barrier::new(threads));
    let workers: Vec<_> = (0..threads)
        .map(|thread| {
            let path = dir.join(format!("floor-{thread}.scratch"));
            let barrier = Arc::clone(&barrier);
            std::thread::spawn(move || fdatasync_times(&path, &barrier))
        })
        .collect();
    workers
        .into_iter()
        .map(|worker| worker.join().map_err(|_| std::io::Error::other("a sync thread panicked"))?)
        .collect()
}

fn fdatasync_times(path: &Path, barrier: &Barrier) -> std::io::Result<Vec<Duration>> {
    let outcome = match scratch::preallocated(path, SYNCS) {
        Ok(file) => timed_syncs(&file, barrier),
        Err(error) => {
            // Through every round's barrier all the same, so that no other thread waits for
            // this one forever.
            (0..SYNCS).for_each(|_| {
                barrier.wait();
            });
            Err(error)
        }
    };
    let removed = fs::remove_file(path);
    let took = outcome?;
    removed?;
    Ok(took)
}

/// Every thread goes through every round's barrier, even after an error, so that no other
/// thread waits for it forever; the first error is returned at the end.
fn timed_syncs(file: &File, barrier: &Barrier) -> std::io::Result<Vec<Duration>> {
    let mut took = Vec::with_capacity(SYNCS);
    let mut outcome = Ok(());
    for page in 0..SYNCS {
        barrier.wait();
        if outcome.is_err() {
            continue;
        }
        let started = Instant::now();
        outcome = scratch::write_and_sync(file, page);
        took.push(started.elapsed());
    }
    outcome.map(|()| took)
}

fn round_trip_median() -> std::io::Result<Duration> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let address = listener.local_addr()?;
    let echo = std::thread::spawn(move || -> std::io::Result<()> {
        let (mut stream, _) = listener.accept()?;
        stream.set_nodelay(true)?;
        let mut message = [0u8; MESSAGE_BYTES];
        for _ in 0..ROUND_TRIPS {
            stream.read_exact(&mut message)?;
            stream.write_all(&message)?;
        }
        Ok(())
    });
    let mut stream = TcpStream::connect(address)?;
    stream.set_nodelay(true)?;
    let mut message = [7u8; MESSAGE_BYTES];
    let mut took = Vec::with_capacity(ROUND_TRIPS);
    for _ in 0..ROUND_TRIPS {
        let started = Instant::now();
        stream.write_all(&message)?;
        stream.read_exact(&mut message)?;
        took.push(started.elapsed());
    }
    echo.join().map_err(|_| std::io::Error::other("the echo thread panicked"))??;
    Ok(percentile(&mut took, 50))
}

/// The sample at `percent` of the way up, by nearest rank; zero if there is none.
fn percentile(samples: &mut [Duration], percent: u64) -> Duration {
    samples.sort_unstable();
    nearest_rank(samples, percent.saturating_mul(10)).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_floor_is_one_sync_and_two_round_trips() {
        let floor = Floor {
            fdatasync_p50: Duration::from_micros(100),
            fdatasync_p99: Duration::from_micros(900),
            round_trip_p50: Duration::from_micros(30),
            shared_disk: None,
        };
        assert_eq!(floor.total(), Duration::from_micros(160));
        assert_eq!(floor.cluster_total(), None, "no nodes on this disk");
        let shared_disk = SharedDisk {
            nodes: 3,
            majority_at_once_p50: Duration::from_micros(170),
            all_at_once_p50: Duration::from_micros(210),
            bare_put_p50: Duration::from_micros(250),
        };
        let on_one_disk = Floor { shared_disk: Some(shared_disk), ..floor };
        assert_eq!(on_one_disk.total(), Duration::from_micros(160), "the issue's floor stays");
        assert_eq!(on_one_disk.cluster_total(), Some(Duration::from_micros(230)));
    }

    #[test]
    fn a_round_lasts_until_as_many_syncs_as_needed_are_done() {
        let micros = |list: &[u64]| list.iter().map(|&m| Duration::from_micros(m)).collect();
        let per_thread: Vec<Vec<Duration>> =
            vec![micros(&[100, 300, 50]), micros(&[200, 100, 60]), micros(&[150, 200])];
        // Rounds every thread finished: the second fastest of each.
        assert_eq!(round_times(&per_thread, 2), micros(&[150, 200]));
        assert_eq!(round_times(&per_thread, 3), micros(&[200, 300]));
        assert_eq!(round_times(&per_thread, 0), Vec::<Duration>::new());
    }

    #[test]
    fn the_lower_of_the_readings_before_and_after_the_run_is_kept() {
        let reading = |sync_micros, round_trip_micros| Floor {
            fdatasync_p50: Duration::from_micros(sync_micros),
            fdatasync_p99: Duration::from_micros(sync_micros * 2),
            round_trip_p50: Duration::from_micros(round_trip_micros),
            shared_disk: Some(SharedDisk {
                nodes: 3,
                majority_at_once_p50: Duration::from_micros(sync_micros * 3 / 2),
                all_at_once_p50: Duration::from_micros(sync_micros * 2),
                bare_put_p50: Duration::from_micros(sync_micros * 3),
            }),
        };
        // A lower sync with slower round trips can still be the higher floor.
        let before = reading(100, 60);
        let after = reading(150, 10);
        assert_eq!(FloorReadings { before, after }.kept().total(), Duration::from_micros(170));
        assert_eq!(FloorReadings { before: after, after: before }.kept().total(), after.total());
        let disturbed = reading(4_000, 30);
        assert_eq!(
            FloorReadings { before: disturbed, after }.kept().fdatasync_p50,
            after.fdatasync_p50
        );
        // The cluster floor is kept apart: the disk was busy during a different measurement.
        let quick = reading(100, 10);
        let busy_cluster = Floor {
            shared_disk: Some(SharedDisk {
                majority_at_once_p50: Duration::from_millis(4),
                ..quick.shared_disk.unwrap()
            }),
            ..quick
        };
        let readings = FloorReadings { before: busy_cluster, after };
        assert_eq!(readings.kept().total(), busy_cluster.total());
        assert_eq!(readings.kept_cluster().cluster_total(), after.cluster_total());
    }

    #[test]
    fn measuring_leaves_no_scratch_file() {
        let dir = std::env::temp_dir().join(format!("raftkv-floor-test-{}", std::process::id()));
        let floor = measure(&dir, Some(3)).expect("measures");
        assert!(floor.fdatasync_p50 > Duration::ZERO && floor.round_trip_p50 > Duration::ZERO);
        assert!(floor.fdatasync_p99 >= floor.fdatasync_p50);
        let shared = floor.shared_disk.expect("three nodes share the disk");
        assert_eq!(shared.nodes, 3);
        assert!(shared.majority_at_once_p50 > Duration::ZERO);
        assert!(shared.all_at_once_p50 > Duration::ZERO);
        assert!(shared.bare_put_p50 > Duration::ZERO);
        assert!(measure(&dir, Some(1)).expect("measures").shared_disk.is_none(), "one node");
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 0);
        fs::remove_dir(&dir).unwrap();
    }
}
