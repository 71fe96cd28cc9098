//! The search for a linearization of one partition: Wing & Gong's algorithm with Lowe's
//! refinements (just-in-time linearization over a list of calls and returns, and a cache of
//! configurations already visited).
//!
//! A configuration is the set of operations linearized so far and the state they leave. Its
//! candidates, the operations that may come next, are those not yet linearized that were
//! called before the first return of one not yet linearized: that one must take effect before
//! anything called later. The search moves depth first: it linearizes a candidate if the model
//! allows it and the configuration it leads to is new, and undoes its latest choice when a
//! configuration has no candidate left. It succeeds when every operation that returned is
//! linearized; operations that never returned need not take effect.
//!
//! The order of trying candidates decides only how soon a linearization is found, and most
//! histories have one. An operation that returned early most often took effect early, so
//! candidates go by return, earliest first. An operation that never returned goes by its call
//! instead: trying its effect early costs little when it had none (the next read disagrees),
//! while trying it late costs much when it had one (every order of the others is tried first).
//! Reads that are allowed go first and alone (see [`Search::enter`]).
//!
//! Two more prunings keep the search small: configurations that differ only by operations that
//! never returned and need not have taken effect are compared by subsumption (see
//! [`Visited`]), and a configuration is given up as soon as one of the next reads to return
//! cannot see what it returned, whatever else takes effect first (see
//! [`Search::next_reads_may_become_allowed`]). A write that observed the state first (a batch
//! that read a key before writing it) counts as such a read: whatever precedes it was called
//! by its return, as for a read.

use std::hash::{Hash, Hasher};

use crate::bitset::BitSet;
use crate::entries::Entries;
use crate::fxhash::FxHasher;
use crate::model::{Model, Recorded};
use crate::pending::Pending;
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

/// How many of the first operations to return that observed the state, in each list, are
/// judged in each configuration: judging one costs a pass over the writes that may precede it,
/// and the first few are those most often out of reach.
const OBSERVERS_JUDGED: usize = 4;

/// How many steps the search takes between two calls of `should_stop` (which may read the
/// clock).
const STEPS_BETWEEN_STOP_CHECKS: u64 = 1024;

/// How a search ended, with what it took.
pub(crate) struct Ended {
    pub(crate) outcome: Outcome,
    /// A step is trying one candidate or undoing one choice; the count is the same on every
    /// run, and so serves to compare partitions deterministically.
    pub(crate) steps: u64,
    /// Whether the cache of configurations reached its bound (the search went on without
    /// recording more).
    pub(crate) cache_full: bool,
}

/// Searches for a linearization of `ops`, with a cache of configurations of at most
/// `cache_bytes`. Every so many steps it asks `should_stop`, given the steps taken so far,
/// whether to give up.
pub(crate) fn search<M: Model>(
    model: &M,
    ops: &[&M::Operation],
    cache_bytes: usize,
    should_stop: impl FnMut(u64) -> bool,
) -> Ended {
    let mut search = Search::new(model, ops, cache_bytes);
    let (outcome, steps) = search.run(should_stop);
    Ended { outcome, steps, cache_full: search.visited.is_full() }
}

impl<M: Model> Search<'_, M> {
    fn run(&mut self, mut should_stop: impl FnMut(u64) -> bool) -> (Outcome, u64) {
        let search = self;
        // False when the configuration the search is in is known to fail.
        let mut viable = search.enter();
        let mut steps = 0;
        loop {
            if search.unreturned_left == 0 {
                let order = search.stack.iter().map(|frame| frame.op).collect();
                return (Outcome::Linearizable(order), steps);
            }
            steps += 1;
            if steps % STEPS_BETWEEN_STOP_CHECKS == 0 && should_stop(steps) {
                return (Outcome::Stopped, steps);
            }
            let candidate = if viable { search.next_candidate() } else { None };
            viable = match candidate {
                Some(op) => search.try_candidate(op),
                None if search.backtrack() => true,
                None => return (Outcome::NotLinearizable(search.longest.ops.clone()), steps),
            };
        }
    }
}

/// A linearization choice, kept to undo it.
struct Frame<S> {
    op: usize,
    /// The state before the operation took effect.
    state_before: S,
    /// Whether the choice was forced (see [`Search::enter`]): then no alternative at this
    /// point needs trying.
    forced: bool,
    /// The length of the candidate arena before the choice, with the next candidate to try
    /// after undoing it at `resume`.
    arena_len: usize,
    resume: usize,
    /// `Observers::next` of each list before the choice.
    next_observers: [usize; 2],
}

/// Operations that returned, by return; those before `next` are linearized (it may lag
/// behind).
struct Observers {
    by_return: Vec<usize>,
    next: usize,
}

/// What an operation can do to the state, as far as the search cares.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Effect {
    ReadOnly,
    /// See [`Model::only_extends`].
    Extends,
    Any,
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
    effects: Vec<Effect>,
    /// The order of trying candidates: return time, or call time for operations that never
    /// returned.
    priorities: Vec<u64>,
    /// Random words whose xor over a set of returned operations hashes that set (Zobrist
    /// hashing), so that the hash follows each change in constant time.
    op_hashes: Vec<u64>,
    returned: BitSet,
    returned_hash: u64,
    open: BitSet,
    state: M::State,
    stack: Vec<Frame<M::State>>,
    /// The candidates of every configuration on the stack, back to back; the current one's
    /// are last, and `next` is the next of them to try.
    arena: Vec<usize>,
    next: usize,
    visited: Visited<M::State>,
    /// Operations that returned but are not linearized yet.
    unreturned_left: usize,
    /// The operations not linearized yet that may change the state, apart (resets) and
    /// extending it (extensions): what may take effect before the next read.
    resets: Pending,
    extensions: Pending,
    /// The operations that returned and observed the state, by return, in two lists: the
    /// read-only ones, and those that also change it ([`Model::observes_first`]). Each list is
    /// judged at its first operation not linearized, so that a write's observation does not
    /// hide a later read's.
    observers: [Observers; 2],
    longest: LongestPrefix,
}

impl<'a, M: Model> Search<'a, M> {
    fn new(model: &'a M, ops: &'a [&'a M::Operation], cache_bytes: usize) -> Self {
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
        let effects: Vec<Effect> = ops
            .iter()
            .map(|op| {
                if model.is_read_only(op) {
                    Effect::ReadOnly
                } else if model.only_extends(op) {
                    Effect::Extends
                } else {
                    Effect::Any
                }
            })
            .collect();
        let calls: Vec<u64> = intervals.iter().map(|&(call, _)| call).collect();
        let resets = Pending::new(&calls, |op| effects[op] == Effect::Any);
        let extensions = Pending::new(&calls, |op| effects[op] == Effect::Extends);
        let observers = [true, false].map(|read_only| {
            let mut by_return: Vec<usize> = (0..ops.len())
                .filter(|&op| intervals[op].1.is_some())
                .filter(|&op| match read_only {
                    true => effects[op] == Effect::ReadOnly,
                    false => effects[op] != Effect::ReadOnly && model.observes_first(ops[op]),
                })
                .collect();
            by_return.sort_unstable_by_key(|&op| (intervals[op].1, op));
            Observers { by_return, next: 0 }
        });
        Search {
            model,
            ops,
            entries: Entries::new(&intervals),
            slots,
            resets,
            extensions,
            effects,
            priorities: intervals.iter().map(|&(call, ret)| ret.unwrap_or(call)).collect(),
            op_hashes: (0..returned_count as u64).map(splitmix64).collect(),
            visited: Visited::new(returned.words().len(), open.words().len(), cache_bytes),
            returned,
            returned_hash: 0,
            open,
            state: model.init(),
            stack: Vec::with_capacity(ops.len()),
            arena: Vec::new(),
            next: 0,
            unreturned_left: returned_count,
            observers,
            longest: LongestPrefix::default(),
        }
    }

    /// Lists the candidates of the configuration just reached, in the order to try them.
    /// Returns whether the configuration may still succeed.
    ///
    /// A read-only operation that returned and is allowed is a forced choice: any
    /// linearization from here places it later, and could place it now instead, as it is a
    /// candidate (everything that had to precede it is linearized), allowed here, and
    /// invisible to what comes between. So it is linearized at once without listing the
    /// others; and if that leads to a configuration visited before, this one fails too.
    /// Read-only candidates that are not allowed are left out: nothing at this point changes
    /// the state they see, and so are those that never returned: they need not take effect.
    fn enter(&mut self) -> bool {
        'configuration: loop {
            if !self.next_reads_may_become_allowed() {
                return false;
            }
            let start = self.arena.len();
            self.next = start;
            self.arena.extend(self.entries.calls_before_first_return());
            let mut kept = start;
            for index in start..self.arena.len() {
                let op = self.arena[index];
                let operation = self.ops[op];
                if self.effects[op] != Effect::ReadOnly {
                    self.arena[kept] = op;
                    kept += 1;
                    continue;
                }
                if matches!(self.slots[op], Slot::Open(_)) {
                    continue;
                }
                if let Some(state_after) = self.model.step(&self.state, operation) {
                    self.arena.truncate(start);
                    if !self.linearize(op, state_after, true) {
                        return false;
                    }
                    continue 'configuration;
                }
            }
            self.arena.truncate(kept);
            let priorities = &self.priorities;
            self.arena[start..].sort_unstable_by_key(|&op| (priorities[op], op));
            return true;
        }
    }

    /// Whether the first few reads to return that are not linearized may still be allowed, and
    /// so the first few operations that write after observing, given what may take effect
    /// before each: only what was called by its return, itself aside (see
    /// [`Model::may_become_allowed`]).
    fn next_reads_may_become_allowed(&mut self) -> bool {
        for list in 0..self.observers.len() {
            self.skip_linearized_observers(list);
            let mut judged = 0;
            let mut position = self.observers[list].next;
            while judged < OBSERVERS_JUDGED {
                let Some(&observer) = self.observers[list].by_return.get(position) else {
                    break;
                };
                position += 1;
                if self.is_linearized(observer) {
                    continue;
                }
                judged += 1;
                if !self.may_become_allowed(observer) {
                    return false;
                }
            }
        }
        true
    }

    fn may_become_allowed(&self, observer: usize) -> bool {
        let read = self.ops[observer];
        let returned = read.ret().unwrap_or(u64::MAX);
        let ops = self.ops;
        let before = |op: &usize| *op != observer;
        let resets = self.resets.called_by(returned).filter(before).map(|op| ops[op]);
        let extensions = self.extensions.called_by(returned).filter(before).map(|op| ops[op]);
        self.model.may_become_allowed(&self.state, read, resets, extensions)
    }

    /// Moves `observers[list].next` past the linearized operations it lags behind.
    fn skip_linearized_observers(&mut self, list: usize) {
        loop {
            let observers = &self.observers[list];
            match observers.by_return.get(observers.next) {
                Some(&op) if self.is_linearized(op) => self.observers[list].next += 1,
                _ => return,
            }
        }
    }

    fn is_linearized(&self, op: usize) -> bool {
        match self.slots[op] {
            Slot::Returned(bit) => self.returned.contains(bit),
            Slot::Open(bit) => self.open.contains(bit),
        }
    }

    fn next_candidate(&mut self) -> Option<usize> {
        let op = *self.arena.get(self.next)?;
        self.next += 1;
        Some(op)
    }

    /// Tries to linearize the candidate `op`. Returns whether the configuration the search is
    /// then in (the new one if it linearized `op`) may still succeed.
    ///
    /// An operation that never returned and would leave the state as it is is not worth
    /// linearizing: the configuration without it subsumes the one with it.
    fn try_candidate(&mut self, op: usize) -> bool {
        let Some(state_after) = self.model.step(&self.state, self.ops[op]) else {
            return true;
        };
        if matches!(self.slots[op], Slot::Open(_)) && state_after == self.state {
            return true;
        }
        if !self.linearize(op, state_after, false) {
            return true;
        }
        self.enter()
    }

    /// Linearizes `op`, leading to `state_after`, unless that configuration was visited.
    /// Returns whether it did.
    fn linearize(&mut self, op: usize, state_after: M::State, forced: bool) -> bool {
        let slot = self.slots[op];
        let returned_hash = match slot {
            Slot::Returned(bit) => {
                self.returned.insert(bit);
                self.returned_hash ^ self.op_hashes[bit]
            }
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
            return false;
        }
        self.returned_hash = returned_hash;
        let state_before = std::mem::replace(&mut self.state, state_after);
        self.stack.push(Frame {
            op,
            state_before,
            forced,
            arena_len: self.arena.len(),
            resume: self.next,
            next_observers: self.observers.each_ref().map(|observers| observers.next),
        });
        self.entries.lift(op);
        if matches!(slot, Slot::Returned(_)) {
            self.unreturned_left -= 1;
        }
        self.resets.remove(op);
        self.extensions.remove(op);
        true
    }

    /// Undoes choices up to the latest one that was not forced, so that the search goes on
    /// with the candidate after it; false when there is nothing left to undo.
    fn backtrack(&mut self) -> bool {
        loop {
            self.longest.before_pop(&self.stack);
            let Some(frame) = self.stack.pop() else {
                return false;
            };
            self.longest.after_pop(self.stack.len());
            self.state = frame.state_before;
            let slot = self.slots[frame.op];
            self.unmark(slot);
            if let Slot::Returned(bit) = slot {
                self.returned_hash ^= self.op_hashes[bit];
                self.unreturned_left += 1;
            }
            self.entries.unlift(frame.op);
            self.resets.put_back(frame.op);
            self.extensions.put_back(frame.op);
            self.arena.truncate(frame.arena_len);
            self.next = frame.resume;
            for (observers, next) in self.observers.iter_mut().zip(frame.next_observers) {
                observers.next = next;
            }
            if !frame.forced {
                return true;
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
            self.ops.extend(stack[self.unchanged..].iter().map(|frame| frame.op));
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
