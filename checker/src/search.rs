//! The search for a linearization of one partition: Wing & Gong's algorithm with Lowe's
//! refinements (just-in-time linearization over a list of calls and returns, and a cache of
//! configurations already visited).
//!
//! The search walks the list of calls and returns. At a call it tries to linearize that
//! operation now: if the model allows it and the resulting configuration (set of linearized
//! operations, state) is new, it lifts the operation out of the list and starts again from the
//! front. At a return, the operation returning has not been linearized and can no longer be:
//! the search undoes its latest choice and tries the next call after it. It succeeds when every
//! operation that returned is linearized; operations that never returned need not take effect.

use std::hash::{Hash, Hasher};

use crate::bitset::BitSet;
use crate::entries::{Cursor, Entries, Event};
use crate::fxhash::FxHasher;
use crate::model::{Model, Recorded};
use crate::visited::Visited;

/// How one partition's search ended. Operations are numbered by their position in the slice
/// given to [`search`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// An order in which the operations can take effect. Operations that never returned and
    /// are absent did not take effect (or took effect last, which is the same).
    Linearizable(Vec<usize>),
    /// No order exists. This is the longest prefix of one that the search found.
    NotLinearizable(Vec<usize>),
    /// `should_stop` said so first.
    Stopped,
}

/// How many steps the search takes between two calls of `should_stop` (which may read the
/// clock).
const STEPS_BETWEEN_STOP_CHECKS: u64 = 1024;

/// Searches for a linearization of `ops`. Every so many steps it asks `should_stop`, given
/// the steps taken so far, whether to give up. Returns the outcome and the steps it took.
///
/// A step is looking at one call or return; the count is the same on every run, and so serves
/// to compare partitions deterministically.
pub(crate) fn search<M: Model>(
    model: &M,
    ops: &[&M::Operation],
    mut should_stop: impl FnMut(u64) -> bool,
) -> (Outcome, u64) {
    let mut search = Search::new(model, ops);
    let mut cursor = search.entries.first();
    let mut steps = 0;
    loop {
        if search.unreturned_left == 0 {
            return (
                Outcome::Linearizable(search.stack.iter().map(|frame| frame.op).collect()),
                steps,
            );
        }
        steps += 1;
        if steps % STEPS_BETWEEN_STOP_CHECKS == 0 && should_stop(steps) {
            return (Outcome::Stopped, steps);
        }
        let next = match search.entries.event(cursor) {
            Event::Call(op) => search.try_linearize(op, cursor),
            // An operation returned without having taken effect; `End` is only reached with
            // returned operations left, so one of them is in the same situation.
            Event::Return(_) | Event::End => search.backtrack(),
        };
        match next {
            Some(next) => cursor = next,
            None => return (Outcome::NotLinearizable(search.longest.ops.clone()), steps),
        }
    }
}

/// A linearization choice, kept to undo it.
struct Frame<S> {
    op: usize,
    /// The state before the operation took effect.
    state_before: S,
    /// Whether the choice was forced (see [`Search::try_linearize`]): then no alternative at
    /// this point needs trying.
    forced: bool,
}

/// Where an operation's bit lives: operations that returned and those that did not are kept
/// in separate sets, as the cache treats them differently.
#[derive(Clone, Copy)]
enum Slot {
    Returned(usize),
    Open(usize),
}

struct Search<'a, M: Model> {
    model: &'a M,
    ops: &'a [&'a M::Operation],
    entries: Entries,
    slots: Vec<Slot>,
    /// Random words whose xor over a set of returned operations hashes that set (Zobrist
    /// hashing), so that the hash follows each change in constant time.
    op_hashes: Vec<u64>,
    returned: BitSet,
    returned_hash: u64,
    open: BitSet,
    state: M::State,
    stack: Vec<Frame<M::State>>,
    visited: Visited<M::State>,
    /// Operations that returned but are not linearized yet.
    unreturned_left: usize,
    longest: LongestPrefix,
}

impl<'a, M: Model> Search<'a, M> {
    fn new(model: &'a M, ops: &'a [&'a M::Operation]) -> Self {
        let intervals: Vec<(u64, Option<u64>)> =
            ops.iter().map(|op| (op.call(), op.ret())).collect();
        let (mut returned_count, mut open_count) = (0, 0);
        let mut slots = Vec::with_capacity(ops.len());
        for (_, ret) in &intervals {
            slots.push(if ret.is_some() {
                returned_count += 1;
                Slot::Returned(returned_count - 1)
            } else {
                open_count += 1;
                Slot::Open(open_count - 1)
            });
        }
        let returned = BitSet::new(returned_count);
        let open = BitSet::new(open_count);
        Search {
            model,
            ops,
            entries: Entries::new(&intervals),
            slots,
            op_hashes: (0..returned_count as u64).map(splitmix64).collect(),
            visited: Visited::new(returned.words().len(), open.words().len()),
            returned,
            returned_hash: 0,
            open,
            state: model.init(),
            stack: Vec::with_capacity(ops.len()),
            unreturned_left: returned_count,
            longest: LongestPrefix::default(),
        }
    }

    /// Tries to linearize `op` (whose call `cursor` is at) next. Returns where to go on.
    ///
    /// Linearizing a read-only operation that returned is a forced choice: any linearization
    /// from here places it later, and could place it now instead, as it is pending (everything
    /// that had to precede it is linearized), allowed here, and invisible to what comes
    /// between. So if the choice fails, this whole configuration fails, and so it does if it
    /// was visited before. An operation that never returned and would leave the state as it is
    /// is not worth linearizing: the configuration without it subsumes the one with it.
    fn try_linearize(&mut self, op: usize, cursor: Cursor) -> Option<Cursor> {
        let operation = self.ops[op];
        let slot = self.slots[op];
        let read_only = self.model.is_read_only(operation);
        if read_only && matches!(slot, Slot::Open(_)) {
            return Some(self.entries.next(cursor));
        }
        let Some(state_after) = self.model.step(&self.state, operation) else {
            return Some(self.entries.next(cursor));
        };
        let returned_hash = match slot {
            Slot::Returned(bit) => {
                self.returned.insert(bit);
                self.returned_hash ^ self.op_hashes[bit]
            }
            Slot::Open(_) if state_after == self.state => return Some(self.entries.next(cursor)),
            Slot::Open(bit) => {
                self.open.insert(bit);
                self.returned_hash
            }
        };
        let mut hasher = FxHasher::default();
        hasher.write_u64(returned_hash);
        state_after.hash(&mut hasher);
        let new = self.visited.insert(
            hasher.finish(),
            self.returned.words(),
            self.open.words(),
            &state_after,
        );
        if !new {
            self.unmark(slot);
            return if read_only {
                self.backtrack()
            } else {
                Some(self.entries.next(cursor))
            };
        }
        self.returned_hash = returned_hash;
        let state_before = std::mem::replace(&mut self.state, state_after);
        self.stack.push(Frame {
            op,
            state_before,
            forced: read_only,
        });
        self.entries.lift(op);
        if matches!(slot, Slot::Returned(_)) {
            self.unreturned_left -= 1;
        }
        Some(self.entries.first())
    }

    /// Undoes choices up to the latest one that was not forced, and returns the call after
    /// it; `None` when there is nothing left to undo.
    fn backtrack(&mut self) -> Option<Cursor> {
        loop {
            self.longest.before_pop(&self.stack);
            let frame = self.stack.pop()?;
            self.longest.after_pop(self.stack.len());
            self.state = frame.state_before;
            let slot = self.slots[frame.op];
            self.unmark(slot);
            if let Slot::Returned(bit) = slot {
                self.returned_hash ^= self.op_hashes[bit];
                self.unreturned_left += 1;
            }
            self.entries.unlift(frame.op);
            if !frame.forced {
                return Some(self.entries.next(Entries::call_of(frame.op)));
            }
        }
    }

    fn unmark(&mut self, slot: Slot) {
        match slot {
            Slot::Returned(bit) => self.returned.remove(bit),
            Slot::Open(bit) => self.open.remove(bit),
        }
    }
}

/// The deepest stack seen, copied lazily: only when a stack deeper than the copy is about to
/// shrink, and then only the part that changed since the last copy. The copying so costs no
/// more than the pushes that preceded it.
#[derive(Default)]
struct LongestPrefix {
    ops: Vec<usize>,
    /// The stack has not changed below this depth since the last copy.
    unchanged: usize,
}

impl LongestPrefix {
    fn before_pop<S>(&mut self, stack: &[Frame<S>]) {
        if stack.len() > self.ops.len() {
            self.ops.truncate(self.unchanged);
            self.ops
                .extend(stack[self.unchanged..].iter().map(|frame| frame.op));
            self.unchanged = stack.len();
        }
    }

    fn after_pop(&mut self, depth: usize) {
        self.unchanged = self.unchanged.min(depth);
    }
}

/// A bijective mix of a counter into well-spread words (the SplitMix64 finalizer).
fn splitmix64(index: u64) -> u64 {
    let mut z = index.wrapping_add(1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}
