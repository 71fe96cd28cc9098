//! The floor under a single client's put on this machine: what one durable, replicated write
//! cannot avoid. The leader syncs the entry (one 4 KiB `fdatasync` of a file whose blocks are
//! already allocated, as WAL segments are) while it sends it to a follower that syncs it too
//! (in parallel), and two round trips on the loopback carry the request to the leader and the
//! entry to a follower, and their answers back. Both are measured here, medians of many.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::{Duration, Instant};

use super::rank::nearest_rank;

/// Syncs timed.
const SYNCS: usize = 400;
/// Round trips timed.
const ROUND_TRIPS: usize = 2_000;
/// Bytes of each synced write, a WAL record's page.
const WRITE_BYTES: usize = 4 << 10;
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
}

impl Floor {
    /// The floor itself: one sync and two round trips.
    pub(crate) fn total(&self) -> Duration {
        self.fdatasync_p50.saturating_add(self.round_trip_p50.saturating_mul(2))
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
}

/// Measures the floor with a scratch file in `dir` (on the disk the nodes use), removed after.
pub(crate) fn measure(dir: &Path) -> Result<Floor, String> {
    fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let mut syncs = fdatasync_times(&dir.join("floor.scratch"))
        .map_err(|e| format!("cannot measure fdatasync in {}: {e}", dir.display()))?;
    let round_trip_p50 =
        round_trip_median().map_err(|e| format!("cannot measure a loopback round trip: {e}"))?;
    let fdatasync_p50 = percentile(&mut syncs, 50);
    let fdatasync_p99 = percentile(&mut syncs, 99);
    Ok(Floor { fdatasync_p50, fdatasync_p99, round_trip_p50 })
}

fn fdatasync_times(path: &Path) -> std::io::Result<Vec<Duration>> {
    let file = OpenOptions::new().create(true).truncate(true).read(true).write(true).open(path)?;
    let outcome = timed_syncs(&file);
    drop(file);
    fs::remove_file(path)?;
    outcome
}

fn timed_syncs(file: &File) -> std::io::Result<Vec<Duration>> {
    // Allocated and synced before timing, as the WAL's prepared segments are.
    let zeros = vec![0u8; WRITE_BYTES];
    for page in 0..SYNCS {
        file.write_all_at(&zeros, (page * WRITE_BYTES) as u64)?;
    }
    file.sync_all()?;
    let page = vec![0x5au8; WRITE_BYTES];
    let mut took = Vec::with_capacity(SYNCS);
    for index in 0..SYNCS {
        let started = Instant::now();
        file.write_all_at(&page, (index * WRITE_BYTES) as u64)?;
        file.sync_data()?;
        took.push(started.elapsed());
    }
    Ok(took)
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
        };
        assert_eq!(floor.total(), Duration::from_micros(160));
    }

    #[test]
    fn the_lower_of_the_readings_before_and_after_the_run_is_kept() {
        let reading = |sync_micros, round_trip_micros| Floor {
            fdatasync_p50: Duration::from_micros(sync_micros),
            fdatasync_p99: Duration::from_micros(sync_micros * 2),
            round_trip_p50: Duration::from_micros(round_trip_micros),
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
    }

    #[test]
    fn measuring_leaves_no_scratch_file() {
        let dir = std::env::temp_dir().join(format!("raftkv-floor-test-{}", std::process::id()));
        let floor = measure(&dir).expect("measures");
        assert!(floor.fdatasync_p50 > Duration::ZERO && floor.round_trip_p50 > Duration::ZERO);
        assert!(floor.fdatasync_p99 >= floor.fdatasync_p50);
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 0);
        fs::remove_dir(&dir).unwrap();
    }
}
