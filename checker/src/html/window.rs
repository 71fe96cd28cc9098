//! Which operations of a partition a drawing shows.

use crate::model::Recorded;
use crate::report::{PartitionOutcome, PartitionReport};

/// The operations of one partition that are drawn.
pub(super) struct Window {
    /// Indices into the history, in increasing order.
    pub(super) ops: Vec<usize>,
}

/// Of a window around a violation, how many operations are called before the first one that
/// has to come next: about what a screen shows before it, so that the violation is in view
/// when the page opens, with what led to it.
const OPS_BEFORE: usize = 12;

impl Window {
    /// All of the partition's operations if there are at most `max`; otherwise `max`
    /// operations consecutive by call: if the partition fails, around the read that can never
    /// be allowed, or else the first operation that has to come next (with every operation
    /// its explanation names); otherwise the first ones.
    pub(super) fn of<O: Recorded>(history: &[O], partition: &PartitionReport, max: usize) -> Self {
        if partition.ops.len() <= max {
            return Window { ops: partition.ops.clone() };
        }
        let mut by_call = partition.ops.clone();
        by_call.sort_by_key(|&op| (history[op].call(), op));
        let (start, named) = match &partition.outcome {
            PartitionOutcome::NotLinearizable(violation) => {
                let center = violation.unreachable.as_ref().unwrap_or(&violation.due).index;
                let position = by_call.iter().position(|&op| op == center).unwrap_or(0);
                let start = position.saturating_sub(OPS_BEFORE).min(by_call.len() - max);
                let named: Vec<usize> = violation
                    .stuck
                    .iter()
                    .map(|stuck| stuck.operation.index)
                    .chain(violation.unreachable.as_ref().map(|read| read.index))
                    .chain(violation.prefix.last().map(|last| last.index))
                    .collect();
                (start, named)
            }
            _ => (0, Vec::new()),
        };
        let mut ops = by_call[start..start + max].to_vec();
        // What the explanation names is drawn even when it was called long before.
        for op in named {
            if !ops.contains(&op) {
                ops.push(op);
            }
        }
        ops.sort_unstable();
        Window { ops }
    }
}
