//! The short log: one line per event (virtual time, who, what), hashed whether or not it is
//! printed, so that two runs of one seed can be compared by one number.

use core::fmt::{self, Write as _};
use std::ffi::OsString;
use std::io::{self, IsTerminal, Write as _};

use raftkv_core::Instant;

/// FNV-1a, 64 bits: tiny, stable across platforms and versions, good enough to tell two traces
/// apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fnv64(u64);

impl Fnv64 {
    const OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;

    /// The hash of nothing.
    pub const fn new() -> Fnv64 {
        Fnv64(Fnv64::OFFSET_BASIS)
    }

    /// Mixes `bytes` in.
    pub fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 ^= u64::from(byte);
            self.0 = self.0.wrapping_mul(Fnv64::PRIME);
        }
    }

    /// The hash so far.
    pub const fn finish(self) -> u64 {
        self.0
    }

    /// The hash of `bytes`.
    pub fn of(bytes: &[u8]) -> u64 {
        let mut hash = Fnv64::new();
        hash.write(bytes);
        hash.finish()
    }
}

impl Default for Fnv64 {
    fn default() -> Fnv64 {
        Fnv64::new()
    }
}

/// Who an event happened to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Actor {
    /// A replica, by id.
    Node(u64),
    /// A client, by index.
    Client(usize),
    /// The simulator itself (faults, phases).
    Sim,
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Actor::Node(id) => write!(f, "n{id}"),
            Actor::Client(index) => write!(f, "c{index}"),
            Actor::Sim => f.write_str("sim"),
        }
    }
}

/// Where trace lines go besides the hash.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TraceOutput {
    /// Nowhere: hash only.
    Hidden,
    /// Standard output, with a color per node when it is a terminal and `NO_COLOR` is not set
    /// to a non-empty value (<https://no-color.org>).
    Stdout,
}

/// The trace of a run: formats every event into one line, mixes it into the hash and prints it
/// when asked to.
pub struct Trace {
    hash: Fnv64,
    lines: u64,
    line: String,
    print: bool,
    color: bool,
}

const NODE_COLORS: [&str; 7] =
    ["\x1b[31m", "\x1b[32m", "\x1b[33m", "\x1b[34m", "\x1b[35m", "\x1b[36m", "\x1b[91m"];
const RESET: &str = "\x1b[0m";

/// The column where the time ends (right-aligned: times under 10,000 s line up).
const TIME_END: usize = "1234567.123ms".len();

/// The column where the actor's name ends (time, a space, the name padded).
const ACTOR_END: usize = "1234567.123ms sim".len();

impl Trace {
    /// A trace that prints to `output`.
    pub fn new(output: TraceOutput) -> Trace {
        let print = output == TraceOutput::Stdout;
        Trace {
            hash: Fnv64::new(),
            lines: 0,
            line: String::with_capacity(128),
            print,
            color: print && wants_color(io::stdout().is_terminal(), std::env::var_os("NO_COLOR")),
        }
    }

    /// Records one event: `what` happened to `actor` at `now`.
    pub fn event(&mut self, now: Instant, actor: Actor, what: fmt::Arguments<'_>) {
        self.line.clear();
        // Writing into a String cannot fail.
        let _ = write!(self.line, "{now}");
        while self.line.len() < TIME_END {
            self.line.insert(0, ' ');
        }
        let _ = write!(self.line, " {actor}");
        while self.line.len() < ACTOR_END {
            self.line.push(' ');
        }
        self.line.push(' ');
        let _ = self.line.write_fmt(what);
        self.hash.write(self.line.as_bytes());
        self.hash.write(b"\n");
        self.lines += 1;
        if self.print {
            self.print_line(actor);
        }
    }

    fn print_line(&self, actor: Actor) {
        let mut out = io::stdout().lock();
        // A closed pipe (e.g. `| head`) ends the printing, not the run.
        let _ = match actor {
            Actor::Node(id) if self.color => {
                let color = NODE_COLORS[(id as usize) % NODE_COLORS.len()];
                writeln!(out, "{color}{}{RESET}", self.line)
            }
            _ => writeln!(out, "{}", self.line),
        };
    }

    /// The hash of every line so far.
    pub fn hash(&self) -> u64 {
        self.hash.finish()
    }

    /// Lines so far.
    pub fn lines(&self) -> u64 {
        self.lines
    }
}

/// Whether to colour output that goes to a terminal or not, given `NO_COLOR`: set and not
/// empty, it says no.
fn wants_color(is_terminal: bool, no_color: Option<OsString>) -> bool {
    is_terminal && no_color.is_none_or(|value| value.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv_matches_the_reference_vectors() {
        assert_eq!(Fnv64::of(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(Fnv64::of(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(Fnv64::of(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn colours_only_a_terminal_and_only_without_no_color() {
        assert!(wants_color(true, None));
        assert!(wants_color(true, Some(OsString::new())), "an empty NO_COLOR is unset");
        assert!(!wants_color(true, Some(OsString::from("1"))));
        assert!(!wants_color(false, None));
    }

    #[test]
    fn the_hash_covers_time_actor_and_text() {
        let hash_of = |nanos: u64, actor: Actor, text: &str| {
            let mut trace = Trace::new(TraceOutput::Hidden);
            trace.event(Instant::from_nanos(nanos), actor, format_args!("{text}"));
            trace.hash()
        };
        let base = hash_of(1_000, Actor::Node(1), "crash");
        assert_eq!(base, hash_of(1_000, Actor::Node(1), "crash"));
        assert_ne!(base, hash_of(2_000, Actor::Node(1), "crash"));
        assert_ne!(base, hash_of(1_000, Actor::Node(2), "crash"));
        assert_ne!(base, hash_of(1_000, Actor::Node(1), "restart"));
    }
}
