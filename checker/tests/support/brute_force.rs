//! A reference checker that tries every order: small, slow and obviously right, to hold the
//! real one to account. It knows nothing of partitions, lists or caches beyond a memo of the
//! (placed set, state) pairs it has already seen fail.

use std::collections::HashSet;
use std::hash::Hash;

use raftkv_checker::Recorded;

/// Whether some order of `ops` respects real time (an operation that returned before another
/// was called comes first) and `step`, with every operation that returned in it.
pub(crate) fn is_linearizable<O: Recorded, S: Clone + Eq + Hash>(
    ops: &[O],
    init: S,
    step: impl Fn(&S, &O) -> Option<S>,
) -> bool {
    assert!(ops.len() <= 64, "the brute force tries small histories only");
    let mut failed = HashSet::new();
    extend(ops, &step, 0, init, &mut failed)
}

fn extend<O: Recorded, S: Clone + Eq + Hash>(
    ops: &[O],
    step: &impl Fn(&S, &O) -> Option<S>,
    placed: u64,
    state: S,
    failed: &mut HashSet<(u64, S)>,
) -> bool {
    let unplaced = || (0..ops.len()).filter(move |&op| placed & (1 << op) == 0);
    if unplaced().all(|op| ops[op].ret().is_none()) {
        return true;
    }
    if failed.contains(&(placed, state.clone())) {
        return false;
    }
    for op in unplaced() {
        let must_wait =
            unplaced().any(|other| ops[other].ret().is_some_and(|ret| ret < ops[op].call()));
        if must_wait {
            continue;
        }
        if let Some(next) = step(&state, &ops[op]) {
            if extend(ops, step, placed | 1 << op, next, failed) {
                return true;
            }
        }
    }
    failed.insert((placed, state));
    false
}
