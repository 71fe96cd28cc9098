//! The contract between the search and a sequential specification.

use std::hash::Hash;

/// An operation as a client recorded it: who issued it, and when it was called and returned.
///
/// Times are integers on one monotonic clock shared by all clients, in any unit. An operation
/// that returned at the same instant another was called counts as concurrent with it.
pub trait Recorded {
    /// Identifies the operation in messages (unique within a history).
    fn id(&self) -> u64;
    /// The client (process) that issued it.
    fn client(&self) -> u64;
    /// When the client called it.
    fn call(&self) -> u64;
    /// When the client learned the outcome, never before the call; `None` if it never did
    /// (timeout, crash). Such an operation may take effect at any point after its call, or
    /// never.
    fn ret(&self) -> Option<u64>;
}

/// A sequential specification: what each operation may return, given the state it runs in.
///
/// The search only ever moves forward with [`Model::step`], so a model is a pure function of
/// its arguments. States are compared and hashed on every step: make both cheap.
///
/// A model of your own: a counter that clients add to and read. The operation type records
/// what each client asked and saw; the model says which outcomes a state allows.
///
/// ```
/// use std::time::Duration;
///
/// use raftkv_checker::{Model, Recorded, Verdict, check};
///
/// /// What a client asked of the counter, and what it saw.
/// #[derive(Debug)]
/// enum CounterOp {
///     Add(u64),
///     /// `None`: the read never returned.
///     Read(Option<u64>),
/// }
///
/// struct Call {
///     client: u64,
///     call: u64,
///     ret: Option<u64>,
///     op: CounterOp,
/// }
///
/// impl Recorded for Call {
///     fn id(&self) -> u64 { self.call } // Calls are at distinct times here.
///     fn client(&self) -> u64 { self.client }
///     fn call(&self) -> u64 { self.call }
///     fn ret(&self) -> Option<u64> { self.ret }
/// }
///
/// struct CounterModel;
///
/// impl Model for CounterModel {
///     type Operation = Call;
///     type State = u64;
///
///     fn init(&self) -> u64 {
///         0
///     }
///
///     fn step(&self, state: &u64, call: &Call) -> Option<u64> {
///         match call.op {
///             CounterOp::Add(amount) => state.checked_add(amount),
///             CounterOp::Read(Some(seen)) => (seen == *state).then_some(*state),
///             CounterOp::Read(None) => Some(*state),
///         }
///     }
///
///     fn is_read_only(&self, call: &Call) -> bool {
///         matches!(call.op, CounterOp::Read(_))
///     }
///
///     fn describe_operation(&self, call: &Call) -> String {
///         format!("{:?}", call.op)
///     }
///
///     fn describe_state(&self, state: &u64) -> String {
///         format!("holds {state}")
///     }
/// }
///
/// let call = |client, call, ret, op| Call { client, call, ret: Some(ret), op };
/// // Client 2's read overlaps the add: it may see the counter before or after it.
/// let history = [
///     call(1, 0, 10, CounterOp::Add(5)),
///     call(2, 5, 20, CounterOp::Read(Some(0))),
///     call(2, 30, 40, CounterOp::Read(Some(5))),
/// ];
/// let limit = Some(Duration::from_secs(5));
/// assert_eq!(check(&history, &CounterModel, limit).verdict, Verdict::Linearizable);
///
/// // Reading 0 after reading 5 cannot happen to one copy of the counter.
/// let history = [
///     call(1, 0, 10, CounterOp::Add(5)),
///     call(2, 20, 30, CounterOp::Read(Some(5))),
///     call(3, 40, 50, CounterOp::Read(Some(0))),
/// ];
/// let report = check(&history, &CounterModel, limit);
/// assert_eq!(report.verdict, Verdict::NotLinearizable);
/// assert!(report.to_string().contains("Read(Some(0))"), "{report}");
/// ```
pub trait Model: Sync {
    /// One operation together with its recorded outcome (unknown when it never returned).
    type Operation: Recorded + Sync;
    /// The state of one partition.
    type State: Clone + Eq + Hash;

    /// The state before any operation.
    fn init(&self) -> Self::State;

    /// The state after `operation` takes effect in `state`, or `None` if its recorded outcome
    /// is impossible there. An operation whose outcome is unknown must be allowed in every
    /// state (any outcome could have been returned).
    fn step(&self, state: &Self::State, operation: &Self::Operation) -> Option<Self::State>;

    /// Whether `operation` leaves the state as it is wherever it is allowed (a read, a failed
    /// compare-and-set). The search linearizes such an operation as soon as it is allowed,
    /// without trying the alternatives, which prunes much of the search. Saying `false` is
    /// always correct; saying `true` of an operation that can change the state is not.
    fn is_read_only(&self, operation: &Self::Operation) -> bool {
        let _ = operation;
        false
    }

    /// Whether `operation` can only extend the state, in the sense that
    /// [`Model::may_become_allowed`] understands (an append). Saying `false` is always correct.
    fn only_extends(&self, operation: &Self::Operation) -> bool {
        let _ = operation;
        false
    }

    /// Whether `operation`, which may change the state, observes the state before it does so
    /// in a way [`Model::may_become_allowed`] can judge (a batch that reads a key before it
    /// writes it, a compare-and-set that swapped). The search then gives up configurations in
    /// which that observation can no longer be made, as it does for reads. Saying `false` is
    /// always correct.
    fn observes_first(&self, operation: &Self::Operation) -> bool {
        let _ = operation;
        false
    }

    /// Whether `read`, a read-only operation or one that [`Model::observes_first`], could be
    /// allowed in some state reached from `state` by some of `extensions` (operations that
    /// [`Model::only_extends`]), each at most once, possibly after one of `resets` (operations that may change the state otherwise):
    /// these are the operations that may take effect before `read`.
    ///
    /// The search gives up every configuration for which this is false about the next read to
    /// return. So a history of concurrent appends read now and then is checked in about linear
    /// time instead of trying every order of the appends. Saying `true` is always correct.
    fn may_become_allowed<'a>(
        &self,
        state: &Self::State,
        read: &Self::Operation,
        resets: impl Iterator<Item = &'a Self::Operation>,
        extensions: impl Iterator<Item = &'a Self::Operation>,
    ) -> bool
    where
        Self::Operation: 'a,
    {
        let _ = (state, read, resets, extensions);
        true
    }

    /// Splits a history into independent parts that are checked separately (P-compositionality:
    /// a history is linearizable if and only if each part is). Each operation belongs to exactly
    /// one part. The default is one part holding everything.
    fn partition(&self, history: &[Self::Operation]) -> Vec<Partition> {
        vec![Partition { name: "the history".to_owned(), ops: (0..history.len()).collect() }]
    }

    /// The operation and its outcome in a few words, e.g. `get("x") -> "1"`.
    fn describe_operation(&self, operation: &Self::Operation) -> String;

    /// The operation and its outcome in fewer words, where its partition goes without saying,
    /// e.g. `get 1`: what a drawing of the partition writes on it. The default is
    /// [`Model::describe_operation`].
    fn label(&self, operation: &Self::Operation) -> String {
        self.describe_operation(operation)
    }

    /// The state as a phrase that completes "after it, the partition ...", e.g. `holds "1"`.
    fn describe_state(&self, state: &Self::State) -> String;
}

/// One independent part of a history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Partition {
    /// How people call it, e.g. `key "x"`.
    pub name: String,
    /// Indices into the history, in increasing order.
    pub ops: Vec<usize>,
}
