//! Checking a whole history: split it into partitions, search each (in parallel where there are
//! cores to spare), and gather the verdict.

use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::explain::explain;
use crate::model::{Model, Partition};
use crate::report::{PartitionOutcome, PartitionReport, Report, Verdict, Violation};
use crate::search::{Ended, Outcome, search};

/// How far a check may go before it gives up with [`Verdict::Unknown`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// How long the whole check may take; `None`: no limit.
    pub time: Option<Duration>,
    /// The most bytes the caches of configurations may take together. A search whose cache
    /// is full goes on without recording more configurations: slower, but still exact, so it
    /// is the time limit that ends it.
    pub cache_bytes: usize,
}

impl Limits {
    /// The default bound on the caches: 1 GiB.
    pub const DEFAULT_CACHE_BYTES: usize = 1 << 30;

    /// A time limit and the default bound on the caches.
    pub fn time(time: Option<Duration>) -> Limits {
        Limits { time, cache_bytes: Limits::DEFAULT_CACHE_BYTES }
    }
}

/// Checks whether `history` is linearizable with respect to `model`, giving up with
/// [`Verdict::Unknown`] once `timeout` has passed; the caches take at most
/// [`Limits::DEFAULT_CACHE_BYTES`]. See [`check_within`].
pub fn check<M: Model>(history: &[M::Operation], model: &M, timeout: Option<Duration>) -> Report {
    check_within(history, model, Limits::time(timeout), &|| {})
}

/// Checks whether `history` is linearizable with respect to `model`, giving up with
/// [`Verdict::Unknown`] when `limits` run out. Calls `partition_done` each time the search of
/// a partition ends (from the thread that ran it), for a progress display.
///
/// Each partition of the model is searched on its own, on up to as many threads as the machine
/// has cores, each with an equal share of the caches' bound. Unless the time limit runs out,
/// the verdict does not depend on the number of threads or their timing, nor does the report
/// unless a cache fills up: when several partitions fail, the one explained is the one whose
/// search failed in the fewest steps (then the first in the model's order), and partitions
/// whose outcome could depend on timing are reported as [`PartitionOutcome::Skipped`].
pub fn check_within<M: Model>(
    history: &[M::Operation],
    model: &M,
    limits: Limits,
    partition_done: &(dyn Fn() + Sync),
) -> Report {
    let started = Instant::now();
    let deadline = limits.time.map(|timeout| started + timeout);
    let partitions = model.partition(history);
    let threads = if history.len() < OPS_WORTH_A_THREAD {
        1
    } else {
        std::thread::available_parallelism().map_or(1, NonZeroUsize::get).min(partitions.len())
    };
    let job = Job {
        model,
        history,
        partitions: &partitions,
        deadline,
        cache_bytes: limits.cache_bytes / threads.max(1),
        partition_done,
        first_failure: Mutex::new(None),
        first_failure_steps: AtomicU64::new(u64::MAX),
        next: AtomicUsize::new(0),
        largest_first: largest_first(&partitions),
    };
    let mut searched: Vec<Searched> = if threads <= 1 {
        job.work()
    } else {
        std::thread::scope(|scope| {
            let helpers: Vec<_> = (1..threads).map(|_| scope.spawn(|| job.work())).collect();
            let mut searched = job.work();
            for helper in helpers {
                // A panic in a helper is a bug in a model or in the search: pass it on.
                searched
                    .extend(helper.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)));
            }
            searched
        })
    };
    searched.sort_unstable_by_key(|searched| searched.index);
    let first_failure = job.first_failure.into_inner().unwrap_or_else(PoisonError::into_inner);
    let partitions: Vec<PartitionReport> = partitions
        .into_iter()
        .zip(searched)
        .map(|(partition, searched)| PartitionReport {
            name: partition.name,
            ops: partition.ops,
            cache_full: searched.cache_full,
            steps: searched.steps,
            outcome: searched.settle(first_failure),
        })
        .collect();
    Report {
        verdict: verdict(&partitions),
        ops: history.len(),
        elapsed: started.elapsed(),
        partitions,
    }
}

/// Below this many operations, starting a thread costs more than it saves.
const OPS_WORTH_A_THREAD: usize = 1000;

/// What the threads share.
struct Job<'a, M: Model> {
    model: &'a M,
    history: &'a [M::Operation],
    partitions: &'a [Partition],
    deadline: Option<Instant>,
    /// The bound of each search's cache.
    cache_bytes: usize,
    partition_done: &'a (dyn Fn() + Sync),
    /// The failure found in the fewest steps so far, as (steps, partition index): the one to
    /// explain, whatever else fails later.
    first_failure: Mutex<Option<(u64, usize)>>,
    /// Its steps, for searches to read cheaply: past that many steps, a search cannot fail
    /// first, so it stops.
    first_failure_steps: AtomicU64,
    /// The next position in `largest_first` to take.
    next: AtomicUsize,
    /// Partition indices, largest first, so that no big one is left for last.
    largest_first: Vec<usize>,
}

/// How the search of one partition ended, before comparing with the others.
struct Searched {
    index: usize,
    steps: u64,
    cache_full: bool,
    result: SearchResult,
}

enum SearchResult {
    Linearizable(Vec<usize>),
    NotLinearizable(Violation),
    Stopped,
}

impl<M: Model> Job<'_, M> {
    /// Takes partitions until none is left.
    fn work(&self) -> Vec<Searched> {
        let mut searched = Vec::new();
        loop {
            let position = self.next.fetch_add(1, Ordering::Relaxed);
            let Some(&index) = self.largest_first.get(position) else {
                return searched;
            };
            searched.push(self.check_partition(index));
            (self.partition_done)();
        }
    }

    fn check_partition(&self, index: usize) -> Searched {
        let ops = &self.partitions[index].ops;
        let operations: Vec<&M::Operation> = ops.iter().map(|&op| &self.history[op]).collect();
        let should_stop = |steps| {
            steps > self.first_failure_steps.load(Ordering::Relaxed)
                || self.deadline.is_some_and(|deadline| Instant::now() >= deadline)
        };
        let Ended { outcome, steps, cache_full } =
            search(self.model, &operations, self.cache_bytes, should_stop);
        let result = match outcome {
            Outcome::Linearizable(order) => SearchResult::Linearizable(
                order.into_iter().map(|position| ops[position]).collect(),
            ),
            Outcome::NotLinearizable(prefix) => {
                let mut first = self.first_failure.lock().unwrap_or_else(PoisonError::into_inner);
                let candidate = (steps, index);
                if first.is_none_or(|first| candidate < first) {
                    *first = Some(candidate);
                    self.first_failure_steps.store(steps, Ordering::Relaxed);
                }
                drop(first);
                SearchResult::NotLinearizable(explain(self.model, self.history, ops, &prefix))
            }
            Outcome::Stopped => SearchResult::Stopped,
        };
        Searched { index, steps, cache_full, result }
    }
}

impl Searched {
    /// The outcome to report, given the failure to explain. Whatever could have come out
    /// otherwise with other timing is `Skipped`: a linearizable partition whose search took
    /// longer than the first failure's might have been stopped, and a failure other than the
    /// first might not have been reached.
    fn settle(self, first_failure: Option<(u64, usize)>) -> PartitionOutcome {
        match (self.result, first_failure) {
            (SearchResult::Linearizable(_), Some((steps, _))) if self.steps > steps => {
                PartitionOutcome::Skipped
            }
            (SearchResult::Linearizable(order), _) => PartitionOutcome::Linearizable { order },
            (SearchResult::NotLinearizable(violation), Some((_, index))) if index == self.index => {
                PartitionOutcome::NotLinearizable(violation)
            }
            (SearchResult::NotLinearizable(_) | SearchResult::Stopped, Some(_)) => {
                PartitionOutcome::Skipped
            }
            (SearchResult::Stopped, None) => PartitionOutcome::TimedOut,
            (SearchResult::NotLinearizable(_), None) => {
                unreachable!("every failure is recorded in first_failure")
            }
        }
    }
}
fn largest_first(partitions: &[Partition]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..partitions.len()).collect();
    order.sort_by_key(|&index| std::cmp::Reverse(partitions[index].ops.len()));
    order
}

fn verdict(partitions: &[PartitionReport]) -> Verdict {
    let any = |wanted: fn(&PartitionOutcome) -> bool| {
        partitions.iter().any(|partition| wanted(&partition.outcome))
    };
    if any(|outcome| matches!(outcome, PartitionOutcome::NotLinearizable(_))) {
        Verdict::NotLinearizable
    } else if any(|outcome| matches!(outcome, PartitionOutcome::TimedOut)) {
        Verdict::Unknown
    } else {
        Verdict::Linearizable
    }
}

#[cfg(test)]
mod tests {
    // Through `check`, the way a failure's explanation reaches its reader.
    use super::check;
    use crate::{Command, KvModel, Operation};

    fn operation(id: u64, call: u64, command: Command) -> Operation {
        Operation { id, client: id + 1, call, ret: Some(call + 1), key: "k".to_owned(), command }
    }

    #[test]
    fn names_the_read_that_nothing_can_make_possible() {
        let history = [
            operation(0, 0, Command::Put { value: "a".to_owned() }),
            operation(1, 2, Command::Get { output: Some("b".to_owned()) }),
        ];
        let text = check(&history, &KvModel, None).to_string();
        let expected = r#"not-linearizable (2 ops, 1 partition)
key "k" is not linearizable: none of its 2 operations can come first.
At the start, key "k" is missing, and no operation can come next:
  op 0 (client 1, called 0, returned 1): put("k", "a"): possible there, but nothing can follow it
  and op 1 (client 2, called 2, returned 3): get("k") -> "b" can never be allowed: nothing that may take effect before it leaves what it read
Nothing called after 1 can come next either: op 0 returned at 1, so it has to take effect before them."#;
        assert_eq!(text, expected);
    }
}
