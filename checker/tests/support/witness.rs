//! Checking the witnesses the checker gives: a linearization of every linearizable partition,
//! the longest prefix of one for a failing partition.

use raftkv_checker::{PartitionOutcome, Recorded, Report};

/// Panics unless every witness in `report` holds for `history` under the sequential
/// specification (`init`, `step`).
pub(crate) fn assert_witnesses_hold<O: Recorded + Clone, S: Clone>(
    history: &[O],
    report: &Report,
    init: S,
    step: impl Fn(&S, &O) -> Option<S> + Copy,
    context: &str,
) {
    for partition in &report.partitions {
        let ops: Vec<O> = partition.ops.iter().map(|&op| history[op].clone()).collect();
        let position =
            |index: usize| partition.ops.binary_search(&index).expect("in the partition");
        let (order, complete): (Vec<usize>, bool) = match &partition.outcome {
            PartitionOutcome::Linearizable { order } => {
                (order.iter().map(|&op| position(op)).collect(), true)
            }
            PartitionOutcome::NotLinearizable(violation) => {
                (violation.prefix.iter().map(|op| position(op.index)).collect(), false)
            }
            PartitionOutcome::TimedOut | PartitionOutcome::Skipped => continue,
        };
        assert!(
            is_valid_order(&ops, &order, complete, init.clone(), step),
            "bad witness {order:?} for {}: {context}",
            partition.name
        );
    }
}

/// Whether `order` (indices into `ops`) is a linearization of the operations it holds: real
/// time respected among them and with the operations left out that returned, and every step
/// allowed. With `complete`, every operation that returned must be in it.
fn is_valid_order<O: Recorded, S>(
    ops: &[O],
    order: &[usize],
    complete: bool,
    init: S,
    step: impl Fn(&S, &O) -> Option<S>,
) -> bool {
    let mut state = init;
    for (position, &op) in order.iter().enumerate() {
        let later = &order[position + 1..];
        let placed_too_early =
            later.iter().any(|&other| ops[other].ret().is_some_and(|ret| ret < ops[op].call()));
        // An operation left out that returned before this one was called would have to precede it.
        let skips_a_predecessor = (0..ops.len())
            .filter(|other| !order.contains(other))
            .any(|other| ops[other].ret().is_some_and(|ret| ret < ops[op].call()));
        if placed_too_early || skips_a_predecessor {
            return false;
        }
        match step(&state, &ops[op]) {
            Some(next) => state = next,
            None => return false,
        }
    }
    !complete || (0..ops.len()).all(|op| order.contains(&op) || ops[op].ret().is_none())
}
