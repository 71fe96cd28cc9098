//! The bare put: the path of one client's put on this machine with none of raftkv's code on it,
//! against which a single client's latency reads as what the code itself costs. A client thread
//! sends a small request over loopback TCP to a leader thread, which forwards it to one thread
//! per follower (over TCP again) and hands its own write to a disk thread; each of the nodes
//! writes 4 KiB into a preallocated file of its own and syncs it (`fdatasync`), each follower
//! answers once its sync is done, and the leader answers the client once a majority of the
//! nodes' writes are durable. Every thread waits in a blocking call, the cheapest a hop gets.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, Sender};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use super::scratch;

/// Puts timed.
const PUTS: usize = 1_000;
/// Bytes of a request, about a small put, and of an answer.
const REQUEST_BYTES: usize = 128;
const ANSWER_BYTES: usize = 16;
/// A thread that hears nothing for this long gives up (another one failed).
const STUCK: Duration = Duration::from_secs(10);

/// The median latency of a bare put of `nodes` nodes (at least 2) syncing in `dir`.
pub(crate) fn median(dir: &Path, nodes: usize) -> io::Result<Duration> {
    assert!(nodes >= 2, "a bare put needs a leader and a follower");
    let files: Vec<PathBuf> =
        (0..nodes).map(|node| dir.join(format!("bare-{node}.scratch"))).collect();
    let outcome = timed_puts(&files);
    for path in &files {
        let _ = fs::remove_file(path);
    }
    let mut took = outcome?;
    took.sort_unstable();
    Ok(took.get(took.len() / 2).copied().unwrap_or_default())
}

fn timed_puts(paths: &[PathBuf]) -> io::Result<Vec<Duration>> {
    let majority = paths.len() / 2 + 1;
    // Prepared before any thread starts, so that a failure here leaves none waiting.
    let mut files = paths
        .iter()
        .map(|path| scratch::preallocated(path, PUTS))
        .collect::<io::Result<Vec<_>>>()?;
    let own_file = files.remove(0);
    let (durable, durable_rx) = mpsc::channel::<usize>();
    let mut threads: Vec<JoinHandle<io::Result<()>>> = Vec::new();
    let mut to_followers = Vec::new();
    for file in files {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let address = listener.local_addr()?;
        threads.push(thread::spawn(move || follow(&listener, &file)));
        let stream = connected(TcpStream::connect(address)?)?;
        let answers = stream.try_clone()?;
        let durable = durable.clone();
        threads.push(thread::spawn(move || count_answers(answers, &durable)));
        to_followers.push(stream);
    }
    let (own_writes, own_writes_rx) = mpsc::channel::<usize>();
    threads.push(thread::spawn(move || write_own(&own_file, &own_writes_rx, &durable)));
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let address = listener.local_addr()?;
    threads.push(thread::spawn(move || {
        lead(&listener, &mut to_followers, &own_writes, &durable_rx, majority)
    }));
    let took = run_client(connected(TcpStream::connect(address)?)?);
    for thread in threads {
        thread.join().map_err(|_| io::Error::other("a bare-put thread panicked"))??;
    }
    took
}

fn run_client(mut leader: TcpStream) -> io::Result<Vec<Duration>> {
    let request = [7u8; REQUEST_BYTES];
    let mut answer = [0u8; ANSWER_BYTES];
    let mut took = Vec::with_capacity(PUTS);
    for _ in 0..PUTS {
        let started = Instant::now();
        leader.write_all(&request)?;
        leader.read_exact(&mut answer)?;
        took.push(started.elapsed());
    }
    Ok(took)
}

/// The leader: forwards each request, writes its own copy, answers at a majority durable.
fn lead(
    listener: &TcpListener,
    followers: &mut [TcpStream],
    own_writes: &Sender<usize>,
    durable: &Receiver<usize>,
    majority: usize,
) -> io::Result<()> {
    let mut client = connected(listener.accept()?.0)?;
    let mut request = [0u8; REQUEST_BYTES];
    let mut durable_count = vec![0usize; PUTS];
    for put in 0..PUTS {
        client.read_exact(&mut request)?;
        for follower in followers.iter_mut() {
            follower.write_all(&request)?;
        }
        own_writes.send(put).map_err(|_| io::Error::other("the disk thread stopped"))?;
        while durable_count[put] < majority {
            let done = durable.recv_timeout(STUCK).map_err(|_| io::Error::other("stuck"))?;
            durable_count[done] += 1;
        }
        client.write_all(&request[..ANSWER_BYTES])?;
    }
    Ok(())
}

/// A follower: writes and syncs each request's page, then answers.
fn follow(listener: &TcpListener, file: &File) -> io::Result<()> {
    let mut leader = connected(listener.accept()?.0)?;
    let mut request = [0u8; REQUEST_BYTES];
    for put in 0..PUTS {
        leader.read_exact(&mut request)?;
        scratch::write_and_sync(file, put)?;
        leader.write_all(&request[..ANSWER_BYTES])?;
    }
    Ok(())
}

/// Tells the leader of each follower's answer.
fn count_answers(mut follower: TcpStream, durable: &Sender<usize>) -> io::Result<()> {
    let mut answer = [0u8; ANSWER_BYTES];
    for put in 0..PUTS {
        follower.read_exact(&mut answer)?;
        // The leader stops listening once it has answered the last put.
        let _ = durable.send(put);
    }
    Ok(())
}

/// The leader's disk thread.
fn write_own(file: &File, writes: &Receiver<usize>, durable: &Sender<usize>) -> io::Result<()> {
    for put in writes.iter() {
        scratch::write_and_sync(file, put)?;
        let _ = durable.send(put);
    }
    Ok(())
}

/// A stream without Nagle's delay, that gives up on a silent peer.
fn connected(stream: TcpStream) -> io::Result<TcpStream> {
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(STUCK))?;
    Ok(stream)
}
