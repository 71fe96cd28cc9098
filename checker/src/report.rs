//! What a check found, for programs (fields) and for people (`Display`).

use std::fmt;
use std::time::Duration;

/// The answer to "is this history linearizable?".
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Verdict {
    /// Every partition has a linearization.
    Linearizable,
    /// Some partition has none: the history could not come from one copy of the state.
    NotLinearizable,
    /// The time limit ran out first. Never a guess either way.
    Unknown,
}

/// The result of [`crate::check()`].
///
/// `Display` gives a summary line and, for a history that is not linearizable, an explanation
/// of the first failing partition. It leaves out the elapsed time, so that the same history
/// always reads the same.
#[derive(Clone, Debug)]
pub struct Report {
    /// The answer for the whole history.
    pub verdict: Verdict,
    /// Operations in the history.
    pub ops: usize,
    /// How long the check took (left out of `Display`).
    pub elapsed: Duration,
    /// One per partition, in the model's order.
    pub partitions: Vec<PartitionReport>,
}

/// The result for one partition.
#[derive(Clone, Debug)]
pub struct PartitionReport {
    /// How people call it, e.g. `key "x"`.
    pub name: String,
    /// Its operations: indices into the history, in increasing order.
    pub ops: Vec<usize>,
    /// How its search ended.
    pub outcome: PartitionOutcome,
    /// Whether its search filled its cache of configurations and went on without recording
    /// more (see [`crate::Limits::cache_bytes`]).
    pub cache_full: bool,
    /// The steps its search took (a step tries one candidate or undoes one choice): the same
    /// on every run, unlike the time, so a measure of how hard the partition was.
    pub steps: u64,
}

/// How the search of one partition ended.
#[derive(Clone, Debug)]
pub enum PartitionOutcome {
    /// `order` is a linearization: indices into the history in the order they take effect.
    /// Operations that never returned and are absent from it did not take effect.
    Linearizable {
        /// The linearization found.
        order: Vec<usize>,
    },
    /// No linearization exists; the violation says why.
    NotLinearizable(Violation),
    /// The time limit ran out while checking it.
    TimedOut,
    /// Not reported: another partition is not linearizable, which settles the verdict, and
    /// this one's outcome could depend on the timing of threads.
    Skipped,
}

/// Why a partition is not linearizable, from the longest linearizable prefix found.
#[derive(Clone, Debug)]
pub struct Violation {
    /// The longest prefix of a linearization the search reached, in order: operations that can
    /// take effect one after the other, respecting real time. (The search skips what it can
    /// prove leads nowhere, so a longer one may exist.)
    pub prefix: Vec<DescribedOperation>,
    /// The partition after the prefix, as a phrase, e.g. `holds "1"`.
    pub state: String,
    /// The operations that could take effect next, none of which leads to a linearization
    /// (leaving out those that never returned and would change nothing there).
    pub stuck: Vec<StuckOperation>,
    /// The first operation to return among those not in the prefix: it has to take effect
    /// before that return, so the prefix cannot wait for anything that is called later.
    pub due: DescribedOperation,
    /// The next read to return after the prefix, if nothing that may take effect before it can
    /// leave what it read (see [`crate::Model::may_become_allowed`]).
    pub unreachable: Option<DescribedOperation>,
}

/// An operation of the history with its description.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DescribedOperation {
    /// Index into the history.
    pub index: usize,
    /// Its id ([`crate::Recorded::id`]).
    pub id: u64,
    /// The client that issued it.
    pub client: u64,
    /// When it was called.
    pub call: u64,
    /// When it returned; `None` if it never did.
    pub ret: Option<u64>,
    /// From [`crate::Model::describe_operation`].
    pub text: String,
}

/// An operation that could come right after the longest prefix, and why it does not.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StuckOperation {
    /// The operation.
    pub operation: DescribedOperation,
    /// Why it cannot come next.
    pub reason: StuckReason,
}

/// Why an operation cannot come next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StuckReason {
    /// Its recorded outcome is impossible in the state after the prefix.
    Impossible,
    /// It could take effect, but nothing can follow it.
    DeadEnd,
}

impl Verdict {
    /// `linearizable`, `not-linearizable` or `unknown`.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Linearizable => "linearizable",
            Verdict::NotLinearizable => "not-linearizable",
            Verdict::Unknown => "unknown",
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Report {
    /// The partition that is not linearizable, with the reason. There is at most one: when
    /// several fail, [`crate::check()`] reports one and skips the others.
    pub fn violation(&self) -> Option<(&PartitionReport, &Violation)> {
        self.partitions.iter().find_map(|partition| match &partition.outcome {
            PartitionOutcome::NotLinearizable(violation) => Some((partition, violation)),
            _ => None,
        })
    }

    /// The partitions the time limit cut short.
    pub fn timed_out(&self) -> impl Iterator<Item = &PartitionReport> {
        self.partitions
            .iter()
            .filter(|partition| matches!(partition.outcome, PartitionOutcome::TimedOut))
    }
}

/// How many operations of the prefix an explanation shows: the last ones matter.
const PREFIX_SHOWN: usize = 8;

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ({} ops, {} partition{})",
            self.verdict,
            self.ops,
            self.partitions.len(),
            plural(self.partitions.len())
        )?;
        if let Some((partition, violation)) = self.violation() {
            write!(f, "\n{}", Explanation { partition, violation })?;
        } else if self.verdict == Verdict::Unknown {
            let names: Vec<&str> =
                self.timed_out().map(|partition| partition.name.as_str()).collect();
            write!(f, "\nthe time limit ran out while checking {}", names.join(", "))?;
            if self.timed_out().any(|partition| partition.cache_full) {
                f.write_str(" (its cache of configurations was full, which slows the search)")?;
            }
        }
        Ok(())
    }
}

struct Explanation<'a> {
    partition: &'a PartitionReport,
    violation: &'a Violation,
}

impl fmt::Display for Explanation<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Explanation { partition, violation } = self;
        let name = &partition.name;
        let prefix = &violation.prefix;
        let total = partition.ops.len();
        let after = match prefix.len() {
            0 => {
                writeln!(
                    f,
                    "{name} is not linearizable: none of its {total} operations can come first."
                )?;
                "At the start"
            }
            shown if shown <= PREFIX_SHOWN => {
                writeln!(
                    f,
                    "{name} is not linearizable. The longest linearizable prefix found has {shown} of its \
                     {total} operations:"
                )?;
                if shown == 1 { "After it" } else { "After them" }
            }
            length => {
                writeln!(
                    f,
                    "{name} is not linearizable. The longest linearizable prefix found has {length} of its \
                     {total} operations, ending with:"
                )?;
                "After them"
            }
        };
        for operation in &prefix[prefix.len().saturating_sub(PREFIX_SHOWN)..] {
            writeln!(f, "  {operation}")?;
        }
        writeln!(f, "{after}, {name} {}, and no operation can come next:", violation.state)?;
        let unreachable = violation.unreachable.as_ref();
        let is_unreachable = |operation: &DescribedOperation| {
            unreachable.is_some_and(|read| read.index == operation.index)
        };
        const NEVER: &str = "nothing that may take effect before it leaves what it read";
        for stuck in &violation.stuck {
            let reason = match stuck.reason {
                StuckReason::Impossible if is_unreachable(&stuck.operation) => {
                    format!("impossible there, and ever after: {NEVER}")
                }
                StuckReason::Impossible => "impossible there".to_owned(),
                StuckReason::DeadEnd => "possible there, but nothing can follow it".to_owned(),
            };
            writeln!(f, "  {}: {reason}", stuck.operation)?;
        }
        if let Some(read) = unreachable
            .filter(|read| !violation.stuck.iter().any(|stuck| stuck.operation.index == read.index))
        {
            writeln!(f, "  and {read} can never be allowed: {NEVER}")?;
        }
        let due = &violation.due;
        match due.ret {
            Some(ret) => write!(
                f,
                "Nothing called after {ret} can come next either: op {} returned at {ret}, so it has to \
                 take effect before them.",
                due.id
            ),
            None => Ok(()),
        }
    }
}

impl fmt::Display for DescribedOperation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "op {} (client {}, called {}, ", self.id, self.client, self.call)?;
        match self.ret {
            Some(ret) => write!(f, "returned {ret}")?,
            None => f.write_str("never returned")?,
        }
        write!(f, "): {}", self.text)
    }
}

fn plural(count: usize) -> &'static str {
    if count == 1 { "" } else { "s" }
}
