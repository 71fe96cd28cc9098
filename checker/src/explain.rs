//! Turning a failed search into words: what the longest linearizable prefix leaves the
//! partition holding, and why no operation can come next.

use crate::model::{Model, Recorded};
use crate::report::{DescribedOperation, StuckOperation, StuckReason, Violation};

/// Explains why the partition made of `ops` (indices into `history`) is not linearizable,
/// given the longest prefix of a linearization the search found (`prefix`, positions in `ops`).
pub(crate) fn explain<M: Model>(
    model: &M,
    history: &[M::Operation],
    ops: &[usize],
    prefix: &[usize],
) -> Violation {
    let describe = |position: usize| describe(model, history, ops[position]);
    let mut state = model.init();
    let mut placed = vec![false; ops.len()];
    for &position in prefix {
        state = model
            .step(&state, &history[ops[position]])
            .expect("the search linearized this prefix, so each step is allowed");
        placed[position] = true;
    }
    let unplaced: Vec<usize> = (0..ops.len()).filter(|&position| !placed[position]).collect();
    // Ties are broken as the search's list does: by position.
    let (due_ret, due) = unplaced
        .iter()
        .filter_map(|&position| history[ops[position]].ret().map(|ret| (ret, position)))
        .min()
        .expect("a failed search leaves an operation that returned unlinearized");
    let mut next: Vec<usize> =
        unplaced.into_iter().filter(|&position| history[ops[position]].call() <= due_ret).collect();
    next.sort_by_key(|&position| (history[ops[position]].call(), position));
    let stuck = next
        .into_iter()
        .filter_map(|position| {
            let operation = &history[ops[position]];
            let reason = match model.step(&state, operation) {
                None => StuckReason::Impossible,
                // One that never returned need not take effect: it is worth naming only if it
                // would change something.
                Some(after) if operation.ret().is_none() && after == state => return None,
                // Every configuration reachable from the prefix was tried and failed.
                Some(_) => StuckReason::DeadEnd,
            };
            Some(StuckOperation { operation: describe(position), reason })
        })
        .collect();
    let unreachable = next_read_out_of_reach(model, history, ops, &placed, &state).map(describe);
    Violation {
        prefix: prefix.iter().map(|&position| describe(position)).collect(),
        state: model.describe_state(&state),
        stuck,
        due: describe(due),
        unreachable,
    }
}

/// The next read to return after the prefix (a position in `ops`), if nothing that may take
/// effect before it can leave what it read: the search's pruning by the next read, redone.
fn next_read_out_of_reach<M: Model>(
    model: &M,
    history: &[M::Operation],
    ops: &[usize],
    placed: &[bool],
    state: &M::State,
) -> Option<usize> {
    let operation = |position: usize| &history[ops[position]];
    let left = || (0..ops.len()).filter(|&position| !placed[position]);
    let (returned, read) = left()
        .filter(|&position| model.is_read_only(operation(position)))
        .filter_map(|position| operation(position).ret().map(|ret| (ret, position)))
        .min()?;
    let before = || left().map(operation).filter(|other| other.call() <= returned);
    let resets = before().filter(|other| !model.is_read_only(other) && !model.only_extends(other));
    let extensions = before().filter(|other| model.only_extends(other));
    (!model.may_become_allowed(state, operation(read), resets, extensions)).then_some(read)
}

fn describe<M: Model>(model: &M, history: &[M::Operation], index: usize) -> DescribedOperation {
    let operation = &history[index];
    DescribedOperation {
        index,
        id: operation.id(),
        client: operation.client(),
        call: operation.call(),
        ret: operation.ret(),
        text: model.describe_operation(operation),
    }
}
