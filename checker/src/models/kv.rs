//! The key-value store: get, put, append, delete, compare-and-set, put-if and increment on one
//! key; reads, writes and deletes of several keys at once; counts and scans.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::hash::{Hash, Hasher};
use std::rc::Rc;

use smallvec::{SmallVec, smallvec};

use crate::history::{Command, Operation, PutCondition, ScanOutput, ScanRange};
use crate::model::{Model, Partition};
use crate::models::cas_outcome_word;

/// The key-value store, partitioned by key: keys are independent, so each is checked alone,
/// except that the keys one operation names together (several keys at once, or a scan's
/// range, or every key for a count) are checked together.
#[derive(Clone, Copy, Debug, Default)]
pub struct KvModel;

/// The value of one key, a string: cheap to clone, hash and compare however long it grows.
/// The text is shared, and a hash of it is kept alongside and extended by appends in time
/// proportional to what they add.
#[derive(Clone, Debug)]
struct Value {
    /// A function of `text` alone (FNV-1a over its bytes), so equal values hash alike.
    hash: u64,
    text: Rc<str>,
}

impl Value {
    fn new(text: &str) -> Value {
        Value { hash: extend_hash(FNV_OFFSET, text), text: Rc::from(text) }
    }

    fn appended(old: Option<&Value>, suffix: &str) -> Value {
        let Some(old) = old else {
            return Value::new(suffix);
        };
        let mut text = String::with_capacity(old.text.len() + suffix.len());
        text.push_str(&old.text);
        text.push_str(suffix);
        Value { hash: extend_hash(old.hash, suffix), text: Rc::from(text) }
    }
}

impl PartialEq for Value {
    fn eq(&self, other: &Self) -> bool {
        self.hash == other.hash && (Rc::ptr_eq(&self.text, &other.text) || self.text == other.text)
    }
}

impl Eq for Value {}

/// The keys of one partition that are present, with their values; a missing key is absent.
///
/// Cheap to clone (shared), to hash (the hash of each key and value is combined into one
/// kept alongside) and to compare.
#[derive(Clone, Debug)]
pub struct KvState {
    /// In key order.
    entries: Rc<[(Rc<str>, Value)]>,
    /// The exclusive or of [`entry_hash`] over the entries.
    hash: u64,
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// The part of a state's hash one present key contributes.
fn entry_hash(key: &str, value: &Value) -> u64 {
    (extend_hash(FNV_OFFSET, key) ^ value.hash.rotate_left(29)).wrapping_mul(FNV_PRIME)
}

impl KvState {
    fn empty() -> Self {
        KvState { entries: Rc::from(Vec::new()), hash: 0 }
    }

    fn value(&self, key: &str) -> Option<&Value> {
        let found = self.entries.binary_search_by(|(present, _)| (**present).cmp(key));
        found.ok().map(|at| &self.entries[at].1)
    }

    /// What a get returns: a missing key reads as `""`.
    fn read(&self, key: &str) -> &str {
        self.value(key).map_or("", |value| &value.text)
    }

    fn text(&self, key: &str) -> Option<&str> {
        self.value(key).map(|value| &*value.text)
    }

    /// The state with `key` set to `value` (`None`: removed).
    fn with(&self, key: &str, value: Option<Value>) -> Self {
        self.with_all([(key, value)])
    }

    /// The state with each key set in turn.
    fn with_all<'a>(&self, changes: impl IntoIterator<Item = (&'a str, Option<Value>)>) -> Self {
        let mut entries = self.entries.to_vec();
        let mut hash = self.hash;
        for (key, value) in changes {
            let found = entries.binary_search_by(|(present, _)| (**present).cmp(key));
            if let Ok(at) = found {
                hash ^= entry_hash(key, &entries[at].1);
            }
            if let Some(value) = &value {
                hash ^= entry_hash(key, value);
            }
            match (found, value) {
                (Ok(at), Some(value)) => entries[at].1 = value,
                (Ok(at), None) => {
                    entries.remove(at);
                }
                (Err(at), Some(value)) => entries.insert(at, (Rc::from(key), value)),
                (Err(_), None) => {}
            }
        }
        KvState { entries: Rc::from(entries), hash }
    }

    /// The state holding `text` at `key` and nothing else (for tests and examples).
    pub fn holding(key: &str, text: &str) -> Self {
        KvState::empty().with(key, Some(Value::new(text)))
    }

    /// Whether a scan of `range` may have read `output` here.
    fn scanned(&self, range: &ScanRange, output: &ScanOutput) -> bool {
        let limit = usize::try_from(range.limit).unwrap_or(usize::MAX);
        let mut in_range =
            self.entries.iter().filter(|(key, _)| range.contains(key)).map(|(k, v)| (k, v));
        let read_alike = output.pairs.len() <= limit
            && output.pairs.iter().all(|(key, text)| {
                in_range
                    .next()
                    .is_some_and(|(present, value)| **present == **key && *value.text == **text)
            });
        // A page may stop short of its limit (at its byte limit), but says whether keys follow.
        read_alike && output.more == in_range.next().is_some()
    }
}

impl PartialEq for KvState {
    fn eq(&self, other: &Self) -> bool {
        self.hash == other.hash && self.entries == other.entries
    }
}

impl Eq for KvState {}

impl Hash for KvState {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.hash);
    }
}

/// Whether `text` may be some of `pieces` end to end, each used at most once. Exact when at
/// every point the pieces that fit all read alike (unique values ending with a separator, as
/// the simulator writes them, always do); when two different ones fit, the answer is `true`,
/// which is never wrong here.
fn may_be_made_of(mut text: &str, pieces: &[&str]) -> bool {
    let mut used: SmallVec<[bool; 16]> = smallvec![false; pieces.len()];
    while !text.is_empty() {
        let mut fitting =
            (0..pieces.len()).filter(|&piece| !used[piece] && text.starts_with(pieces[piece]));
        let Some(first) = fitting.next() else {
            return false;
        };
        if fitting.any(|other| pieces[other] != pieces[first]) {
            return true;
        }
        used[first] = true;
        text = &text[pieces[first].len()..];
    }
    true
}

fn extend_hash(hash: u64, text: &str) -> u64 {
    text.bytes().fold(hash, |hash, byte| (hash ^ u64::from(byte)).wrapping_mul(FNV_PRIME))
}

impl Model for KvModel {
    type Operation = Operation;
    /// The keys of a partition that are present, with their values.
    type State = KvState;

    fn init(&self) -> KvState {
        KvState::empty()
    }

    fn step(&self, state: &KvState, operation: &Operation) -> Option<KvState> {
        step_command(state, &operation.key, &operation.command)
    }

    fn is_read_only(&self, operation: &Operation) -> bool {
        is_read_only(&operation.command)
    }

    fn only_extends(&self, operation: &Operation) -> bool {
        matches!(operation.command, Command::Append { .. })
    }

    fn observes_first(&self, operation: &Operation) -> bool {
        !observations(&operation.key, &operation.command).is_empty()
    }

    /// What a get read, or a compare-and-set that swapped found, must be a value some write
    /// may leave (the current one, or that of a put, a delete or a compare-and-set, alone or
    /// in a batch) followed by some of the appends to its key, each at most once; so must
    /// each of a batch's, up to its first write of the key.
    fn may_become_allowed<'a>(
        &self,
        state: &KvState,
        read: &Operation,
        resets: impl Iterator<Item = &'a Operation>,
        extensions: impl Iterator<Item = &'a Operation>,
    ) -> bool {
        // The commonest case, and the cheapest: nothing need take effect first.
        let unexplained: Observations<'_> = observations(&read.key, &read.command)
            .into_iter()
            .filter(|(key, output)| state.read(key) != output.as_ref())
            .collect();
        if unexplained.is_empty() {
            return true;
        }
        let writes: SmallVec<[&Operation; 16]> = resets.chain(extensions).collect();
        unexplained.iter().all(|(key, output)| {
            let mut leaves = Leaves::new(output, state.read(key));
            let worked_out = writes.iter().all(|write| leaves.add(key, &write.key, &write.command));
            !worked_out || leaves.may_read()
        })
    }

    /// By key; the keys one operation names together go together, a scan's with every key
    /// of its range, and a count's with every key.
    fn partition(&self, history: &[Operation]) -> Vec<Partition> {
        let all: BTreeSet<&str> = history.iter().flat_map(named_keys).collect();
        let touched: Vec<Vec<&str>> = history
            .iter()
            .map(|operation| touched_keys(&all, &operation.key, &operation.command))
            .collect();
        let mut groups = KeyGroups::default();
        for keys in &touched {
            groups.join(keys);
        }
        groups.partitions(&touched)
    }

    fn describe_operation(&self, operation: &Operation) -> String {
        describe(&operation.key, &operation.command)
    }

    fn label(&self, operation: &Operation) -> String {
        label(&operation.command)
    }

    fn describe_state(&self, state: &KvState) -> String {
        match &state.entries[..] {
            // Every key of the partition.
            [] => "is missing".to_owned(),
            [(key, value)] => format!("holds {:?} at {key:?}", &*value.text),
            entries => {
                let shown: Vec<String> = entries
                    .iter()
                    .map(|(key, value)| format!("{key:?}={:?}", &*value.text))
                    .collect();
                format!("holds {}", shown.join(", "))
            }
        }
    }
}
/// What the writes before a get may leave at its key, as far as the get's `output` is
/// concerned: what follows in `output` each value some may set the key to (the value before
/// them among them) that begins it, and the texts some may append. Values that do not begin
/// `output` are not kept: the get cannot have read them, appended to or not.
struct Leaves<'a> {
    output: &'a str,
    rests: SmallVec<[&'a str; 4]>,
    appends: SmallVec<[&'a str; 8]>,
}

impl<'a> Leaves<'a> {
    fn new(output: &'a str, value_before: &str) -> Leaves<'a> {
        let mut leaves = Leaves { output, rests: SmallVec::new(), appends: SmallVec::new() };
        leaves.add_base(value_before);
        leaves
    }

    fn add_base(&mut self, base: &str) {
        if let Some(rest) = self.output.strip_prefix(base) {
            self.rests.push(rest);
        }
    }

    /// Adds what `command` on `command_key` may leave at `key`; `false` if that is not worked
    /// out here (an increment of the key whose outcome is unknown).
    fn add(&mut self, key: &str, command_key: &'a str, command: &'a Command) -> bool {
        let on_key = command_key == key;
        match command {
            Command::Put { value } | Command::Cas { value, .. } if on_key => self.add_base(value),
            Command::PutIf { value, output, .. }
                if on_key && output.as_ref().is_none_or(|(written, _)| *written) =>
            {
                self.add_base(value);
            }
            Command::Delete if on_key => self.add_base(""),
            Command::Append { value } if on_key && !value.is_empty() => self.appends.push(value),
            Command::PutMany { pairs } => {
                for (_, value) in pairs.iter().filter(|(written, _)| written == key) {
                    self.add_base(value);
                }
            }
            Command::DeleteMany { keys, .. } if keys.iter().any(|removed| removed == key) => {
                self.add_base("");
            }
            Command::Increment { output, .. } if on_key => match output {
                Some(Ok(sum)) => self.add_base(&sum.to_string()),
                Some(Err(())) => {}
                None => return false,
            },
            // Each of its commands: whatever it leaves is what one of them left, followed by
            // appends of the ones after it.
            Command::Batch { steps } => {
                return steps.iter().all(|step| self.add(key, &step.key, &step.command));
            }
            _ => {}
        }
        true
    }

    /// Whether the get may read its output: a base followed by some of the appends, each at
    /// most once.
    fn may_read(&self) -> bool {
        let appendable =
            self.appends.iter().fold(0usize, |sum, append| sum.saturating_add(append.len()));
        self.rests
            .iter()
            .any(|rest| rest.len() <= appendable && may_be_made_of(rest, &self.appends))
    }
}

/// `command` on `key` in plain words, e.g. `get("x") -> "1"`; a batch lists its commands.
fn describe(key: &str, command: &Command) -> String {
    match command {
        Command::Get { output: Some(output) } => format!("get({key:?}) -> {output:?}"),
        Command::Get { output: None } => format!("get({key:?}) -> ?"),
        Command::Put { value } => format!("put({key:?}, {value:?})"),
        Command::Append { value } => format!("append({key:?}, {value:?})"),
        Command::Delete => format!("delete({key:?})"),
        Command::Cas { expected, value, swapped } => {
            let expected = match expected {
                Some(expected) => format!("{expected:?}"),
                None => "missing".to_owned(),
            };
            format!("cas({key:?}, {expected} -> {value:?}) -> {}", cas_outcome_word(*swapped))
        }
        Command::Batch { steps } => {
            let shown: Vec<String> =
                steps.iter().map(|step| describe(&step.key, &step.command)).collect();
            format!("batch[{}]", shown.join("; "))
        }
        other => format!("{}{}", other_name(other), other_details(key, other)),
    }
}

/// `command` in a few words for a bar of the HTML view; values bare unless they are empty or
/// hold a space or a quote.
fn label(command: &Command) -> String {
    match command {
        Command::Get { output: Some(output) } => format!("get {}", bare(output)),
        Command::Get { output: None } => "get ?".to_owned(),
        Command::Put { value } => format!("put {}", bare(value)),
        Command::Append { value } => format!("append {}", bare(value)),
        Command::Delete => "delete".to_owned(),
        Command::Cas { expected, value, swapped } => {
            let expected = expected.as_deref().map_or("missing".to_owned(), bare);
            format!("cas {expected}->{} {}", bare(value), cas_outcome_word(*swapped))
        }
        Command::Batch { steps } => {
            let shown: Vec<String> = steps.iter().map(|step| label(&step.command)).collect();
            format!("batch[{}]", shown.join("; "))
        }
        other => format!("{} {}", other_name(other), outcome_text(other)),
    }
}

/// The state after `command` on `key` (unused by commands on several keys), if its output
/// agrees with `state`.
fn step_command(state: &KvState, key: &str, command: &Command) -> Option<KvState> {
    match command {
        Command::Get { output } => match output {
            Some(output) if output != state.read(key) => None,
            _ => Some(state.clone()),
        },
        Command::Put { value } => Some(state.with(key, Some(Value::new(value)))),
        Command::Append { value } => {
            Some(state.with(key, Some(Value::appended(state.value(key), value))))
        }
        Command::Delete => Some(state.with(key, None)),
        Command::Cas { expected, value, swapped } => {
            let holds_expected = state.text(key) == expected.as_deref();
            if swapped.is_some_and(|swapped| swapped != holds_expected) {
                return None;
            }
            Some(if holds_expected {
                state.with(key, Some(Value::new(value)))
            } else {
                state.clone()
            })
        }
        Command::PutIf { value, condition, output } => {
            put_if(state, key, value, *condition, output.as_ref())
        }
        Command::Increment { delta, output } => increment(state, key, *delta, output.as_ref()),
        Command::GetMany { keys, output } => match output {
            Some(output) if output.len() != keys.len() => None,
            Some(output) => keys
                .iter()
                .zip(output)
                .all(|(key, seen)| state.text(key) == seen.as_deref())
                .then(|| state.clone()),
            None => Some(state.clone()),
        },
        Command::Exists { keys, output } => {
            let present = keys.iter().filter(|key| state.value(key).is_some()).count();
            output.is_none_or(|seen| seen == present as u64).then(|| state.clone())
        }
        Command::PutMany { pairs } => Some(
            state
                .with_all(pairs.iter().map(|(key, value)| (key.as_str(), Some(Value::new(value))))),
        ),
        Command::DeleteMany { keys, output } => {
            let named: BTreeSet<&str> = keys.iter().map(String::as_str).collect();
            let present = named.iter().filter(|key| state.value(key).is_some()).count();
            if output.is_some_and(|seen| seen != present as u64) {
                return None;
            }
            Some(state.with_all(named.into_iter().map(|key| (key, None))))
        }
        Command::Count { output } => {
            output.is_none_or(|seen| seen == state.entries.len() as u64).then(|| state.clone())
        }
        Command::Scan { range, output } => match output {
            Some(output) if !state.scanned(range, output) => None,
            _ => Some(state.clone()),
        },
        Command::Batch { steps } => steps
            .iter()
            .try_fold(state.clone(), |state, step| step_command(&state, &step.key, &step.command)),
    }
}

/// What `command` on `key` saw of the state before it changed anything there, as `(key,
/// text read)` (a missing key reads as empty): a get's output and a get-many's, the pairs a
/// scan read, the value a compare-and-set that swapped found, the value before a put-if and
/// before an increment (unless that was 0, which a missing key counts as too), and in a batch
/// those of its commands up to the first that may write their key.
/// What an operation saw of keys before it wrote, if anything: (key, value read) pairs. Most
/// see one key, so they are kept inline.
type Observations<'a> = SmallVec<[(&'a str, Cow<'a, str>); 2]>;

fn observations<'a>(key: &'a str, command: &'a Command) -> Observations<'a> {
    let text = |value: Option<&'a String>| Cow::Borrowed(value.map_or("", String::as_str));
    match command {
        Command::Get { output: Some(output) } => smallvec![(key, text(Some(output)))],
        Command::Cas { expected, swapped: Some(true), .. } => {
            smallvec![(key, text(expected.as_ref()))]
        }
        Command::PutIf { output: Some((_, previous)), .. } => {
            smallvec![(key, text(previous.as_ref()))]
        }
        Command::Increment { delta, output: Some(Ok(sum)) } => match sum.checked_sub(*delta) {
            Some(previous) if previous != 0 => smallvec![(key, Cow::Owned(previous.to_string()))],
            _ => Observations::new(),
        },
        Command::GetMany { keys, output: Some(output) } if output.len() == keys.len() => keys
            .iter()
            .zip(output)
            .map(|(key, value)| (key.as_str(), text(value.as_ref())))
            .collect(),
        Command::Scan { output: Some(output), .. } => {
            output.pairs.iter().map(|(key, value)| (key.as_str(), text(Some(value)))).collect()
        }
        Command::Batch { steps } => {
            let mut written: BTreeSet<&str> = BTreeSet::new();
            let mut observed = Observations::new();
            for step in steps {
                for (key, text) in observations(&step.key, &step.command) {
                    if !written.contains(key) {
                        observed.push((key, text));
                    }
                }
                if !is_read_only(&step.command) {
                    written.extend(step.command.keys().unwrap_or_else(|| vec![step.key.as_str()]));
                }
            }
            observed
        }
        _ => Observations::new(),
    }
}

/// Whether `command`, given its output, changed nothing.
fn is_read_only(command: &Command) -> bool {
    match command {
        Command::Get { .. }
        | Command::GetMany { .. }
        | Command::Exists { .. }
        | Command::Count { .. }
        | Command::Scan { .. }
        | Command::Cas { swapped: Some(false), .. }
        | Command::PutIf { output: Some((false, _)), .. }
        | Command::Increment { output: Some(Err(())), .. }
        | Command::DeleteMany { output: Some(0), .. } => true,
        Command::Batch { steps } => steps.iter().all(|step| is_read_only(&step.command)),
        Command::Put { .. }
        | Command::Append { .. }
        | Command::Delete
        | Command::Cas { .. }
        | Command::PutIf { .. }
        | Command::Increment { .. }
        | Command::PutMany { .. }
        | Command::DeleteMany { .. } => false,
    }
}

/// The state after a put-if of `value` under `condition`, if the output seen (whether it wrote,
/// and the value before) agrees with it.
fn put_if(
    state: &KvState,
    key: &str,
    value: &str,
    condition: PutCondition,
    output: Option<&(bool, Option<String>)>,
) -> Option<KvState> {
    let previous = state.text(key);
    let writes = match condition {
        PutCondition::Always => true,
        PutCondition::IfMissing => previous.is_none(),
        PutCondition::IfPresent => previous.is_some(),
    };
    if output.is_some_and(|(written, before)| *written != writes || before.as_deref() != previous) {
        return None;
    }
    Some(if writes { state.with(key, Some(Value::new(value))) } else { state.clone() })
}

/// The state after adding `delta` to the counter at `key`, if the output seen (the sum, or a
/// refusal when the value is not a counter or the sum overflows) agrees with it.
fn increment(
    state: &KvState,
    key: &str,
    delta: i64,
    output: Option<&Result<i64, ()>>,
) -> Option<KvState> {
    let sum = match state.text(key) {
        None => Some(delta),
        Some(text) => counter_value(text).and_then(|old| old.checked_add(delta)),
    };
    match (output, sum) {
        (Some(Ok(seen)), Some(sum)) if *seen != sum => None,
        (Some(Ok(_)), None) | (Some(Err(())), Some(_)) => None,
        (_, Some(sum)) => Some(state.with(key, Some(Value::new(&sum.to_string())))),
        (_, None) => Some(state.clone()),
    }
}

/// The integer a counter holds: a decimal integer with an optional minus sign, without a plus
/// sign, spaces or leading zeros (nor `-0`), within `i64`: what an increment writes, and
/// nothing else.
fn counter_value(text: &str) -> Option<i64> {
    let digits = text.strip_prefix('-').unwrap_or(text);
    let canonical = !digits.is_empty()
        && digits.bytes().all(|byte| byte.is_ascii_digit())
        && (digits == "0" || !digits.starts_with('0'))
        && text != "-0";
    canonical.then(|| text.parse().ok()).flatten()
}

/// The keys an operation names: its key, or those it names together (for a scan, the keys
/// it read).
fn named_keys(operation: &Operation) -> Vec<&str> {
    operation.command.keys().unwrap_or_else(|| vec![operation.key.as_str()])
}

/// The keys of `all` that `command` on `key` may read or write: those it names, a scan's
/// every key of its range, a count's every key, a batch's those of its commands together.
fn touched_keys<'a>(all: &BTreeSet<&'a str>, key: &'a str, command: &'a Command) -> Vec<&'a str> {
    match command {
        Command::Count { .. } => all.iter().copied().collect(),
        Command::Scan { range, .. } => {
            all.iter().copied().filter(|key| range.contains(key)).collect()
        }
        Command::Batch { steps } => {
            steps.iter().flat_map(|step| touched_keys(all, &step.key, &step.command)).collect()
        }
        _ => command.keys().unwrap_or_else(|| vec![key]),
    }
}

/// Keys joined into groups (union-find), in key order.
#[derive(Default)]
struct KeyGroups {
    /// Each key's parent; a root is its own.
    parent: BTreeMap<String, String>,
}

impl KeyGroups {
    fn root(&mut self, key: &str) -> String {
        let mut at = key.to_owned();
        loop {
            let parent = self.parent.entry(at.clone()).or_insert_with(|| at.clone()).clone();
            if parent == at {
                return at;
            }
            // Halving the path keeps the next search short.
            let grandparent = self.parent[&parent].clone();
            self.parent.insert(at, grandparent.clone());
            at = grandparent;
        }
    }

    /// Puts `keys` in one group (makes each a group of its own if new).
    fn join(&mut self, keys: &[&str]) {
        let Some((first, rest)) = keys.split_first() else {
            return;
        };
        let mut root = self.root(first);
        for key in rest {
            let other = self.root(key);
            if other != root {
                // The smaller key becomes the root, so that groups are named alike every run.
                let (low, high) = if other < root { (other, root) } else { (root, other) };
                self.parent.insert(high, low.clone());
                root = low;
            }
        }
    }

    /// The partitions of a history whose operations touch `touched` keys, by group, in the
    /// order of their first key. The operations that touch no key (a scan of a range no
    /// operation names a key of) make a partition of their own: the store holds no key there.
    fn partitions(mut self, touched: &[Vec<&str>]) -> Vec<Partition> {
        let mut by_root: BTreeMap<String, (Vec<String>, Vec<usize>)> = BTreeMap::new();
        let keys: Vec<String> = self.parent.keys().cloned().collect();
        for key in keys {
            let root = self.root(&key);
            by_root.entry(root).or_default().0.push(key);
        }
        let mut keyless = Vec::new();
        for (index, keys) in touched.iter().enumerate() {
            match keys.first() {
                Some(key) => {
                    let root = self.root(key);
                    by_root.entry(root).or_default().1.push(index);
                }
                None => keyless.push(index),
            }
        }
        let mut partitions: Vec<Partition> = by_root
            .into_values()
            .map(|(keys, ops)| Partition { name: group_name(&keys), ops })
            .collect();
        if !keyless.is_empty() {
            partitions.push(Partition { name: "no key".to_owned(), ops: keyless });
        }
        partitions
    }
}

/// How a partition of `keys` is called: `key "x"`, or `keys "a", "b" and 3 more`.
fn group_name(keys: &[String]) -> String {
    const SHOWN: usize = 4;
    match keys {
        [key] => format!("key {key:?}"),
        _ => {
            let shown: Vec<String> =
                keys.iter().take(SHOWN).map(|key| format!("{key:?}")).collect();
            let more = keys.len().saturating_sub(SHOWN);
            if more > 0 {
                format!("keys {} and {more} more", shown.join(", "))
            } else {
                format!("keys {}", shown.join(", "))
            }
        }
    }
}

/// The name of an operation besides get, put, append, delete and cas.
fn other_name(command: &Command) -> &'static str {
    match command {
        Command::GetMany { .. } => "get_many",
        Command::Exists { .. } => "exists",
        Command::PutMany { .. } => "put_many",
        Command::DeleteMany { .. } => "delete_many",
        Command::Count { .. } => "count",
        Command::Scan { .. } => "scan",
        Command::Increment { .. } => "increment",
        Command::PutIf { .. } => "put_if",
        Command::Batch { .. } => "batch",
        Command::Get { .. }
        | Command::Put { .. }
        | Command::Append { .. }
        | Command::Delete
        | Command::Cas { .. } => "",
    }
}

/// What an operation besides get, put, append, delete and cas asked, then its outcome, e.g.
/// `("a", "b") -> ["1", missing]`.
fn other_details(key: &str, command: &Command) -> String {
    let list =
        |keys: &[String]| keys.iter().map(|key| format!("{key:?}")).collect::<Vec<_>>().join(", ");
    let asked = match command {
        Command::GetMany { keys, .. }
        | Command::Exists { keys, .. }
        | Command::DeleteMany { keys, .. } => {
            format!("({})", list(keys))
        }
        Command::PutMany { pairs } => {
            let shown: Vec<String> =
                pairs.iter().map(|(key, value)| format!("{key:?}={value:?}")).collect();
            format!("({})", shown.join(", "))
        }
        Command::Count { .. } => "()".to_owned(),
        Command::Scan { range, .. } => {
            let end = range.end.as_ref().map_or("no end".to_owned(), |end| format!("{end:?}"));
            format!(
                "(from {:?} to {end}, prefix {:?}, limit {})",
                range.start, range.prefix, range.limit
            )
        }
        Command::Increment { delta, .. } => format!("({key:?}, {delta})"),
        Command::PutIf { value, condition, .. } => {
            let condition = match condition {
                PutCondition::Always => "always",
                PutCondition::IfMissing => "if missing",
                PutCondition::IfPresent => "if present",
            };
            format!("({key:?}, {value:?} {condition})")
        }
        _ => String::new(),
    };
    match command {
        Command::PutMany { .. } => asked,
        _ => format!("{asked} -> {}", outcome_text(command)),
    }
}

/// The outcome of an operation besides get, put, append, delete and cas, `?` when unknown.
fn outcome_text(command: &Command) -> String {
    let text =
        |text: &Option<String>| text.as_ref().map_or("missing".to_owned(), |t| format!("{t:?}"));
    let outcome = match command {
        Command::GetMany { output, .. } => output
            .as_ref()
            .map(|values| format!("[{}]", values.iter().map(text).collect::<Vec<_>>().join(", "))),
        Command::Exists { output, .. }
        | Command::DeleteMany { output, .. }
        | Command::Count { output } => output.map(|count| count.to_string()),
        Command::Scan { output, .. } => output.as_ref().map(|output| {
            let pairs: Vec<String> =
                output.pairs.iter().map(|(key, value)| format!("{key:?}={value:?}")).collect();
            let more = if output.more { " and more" } else { "" };
            format!("[{}]{more}", pairs.join(", "))
        }),
        Command::Increment { output, .. } => output.map(|sum| match sum {
            Ok(sum) => sum.to_string(),
            Err(()) => "refused".to_owned(),
        }),
        Command::PutIf { output, .. } => output.as_ref().map(|(written, previous)| {
            let verb = if *written { "written" } else { "not written" };
            format!("{verb}, was {}", text(previous))
        }),
        Command::PutMany { .. } => Some("done".to_owned()),
        _ => None,
    };
    outcome.unwrap_or_else(|| "?".to_owned())
}

/// `value` as it is, or quoted if that would be unclear (empty, or with spaces or quotes).
fn bare(value: &str) -> String {
    if value.is_empty() || value.contains([' ', '"']) {
        format!("{value:?}")
    } else {
        value.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(key: &str, command: Command) -> Operation {
        Operation { id: 0, client: 0, call: 0, ret: Some(1), key: key.to_owned(), command }
    }

    fn get(output: &str) -> Operation {
        op("x", Command::Get { output: Some(output.to_owned()) })
    }

    fn cas(expected: Option<&str>, swapped: Option<bool>) -> Operation {
        op(
            "x",
            Command::Cas {
                expected: expected.map(str::to_owned),
                value: "new".to_owned(),
                swapped,
            },
        )
    }

    #[test]
    fn a_missing_key_reads_as_empty_but_cas_tells_them_apart() {
        let model = KvModel;
        let missing = model.init();
        let empty = KvState::holding("x", "");
        assert_ne!(missing, empty);
        assert!(model.step(&missing, &get("")).is_some());
        assert!(model.step(&empty, &get("")).is_some());
        assert_eq!(
            model.step(&missing, &cas(None, Some(true))),
            Some(KvState::holding("x", "new"))
        );
        assert_eq!(model.step(&missing, &cas(Some(""), Some(true))), None);
        assert_eq!(
            model.step(&empty, &cas(Some(""), Some(true))),
            Some(KvState::holding("x", "new"))
        );
        assert_eq!(model.step(&empty, &cas(None, Some(false))), Some(empty.clone()));
        assert_eq!(model.step(&empty, &cas(None, None)), Some(empty));
    }

    #[test]
    fn appends_concatenate_and_hash_like_the_same_text_put_whole() {
        let model = KvModel;
        let append = |value: &str| op("x", Command::Append { value: value.to_owned() });
        let once = model.step(&model.init(), &append("ab")).unwrap();
        let twice = model.step(&once, &append("c")).unwrap();
        let whole = KvState::holding("x", "abc");
        assert_eq!(twice, whole);
        assert_eq!(twice.hash, whole.hash);
        assert!(model.step(&twice, &get("abc")).is_some());
        assert!(model.step(&twice, &get("ab")).is_none());
        let deleted = model.step(&twice, &op("x", Command::Delete)).unwrap();
        assert_eq!(deleted, model.init());
    }

    #[test]
    fn partitions_by_key_in_key_order() {
        let history = [get(""), op("a", Command::Delete), get("1")];
        let partitions = KvModel.partition(&history);
        let shape: Vec<(&str, &[usize])> = partitions
            .iter()
            .map(|partition| (partition.name.as_str(), partition.ops.as_slice()))
            .collect();
        assert_eq!(shape, [("key \"a\"", &[1][..]), ("key \"x\"", &[0, 2][..])]);
    }

    #[test]
    fn describes_operations_and_states_in_plain_words() {
        let model = KvModel;
        assert_eq!(model.describe_operation(&get("1")), r#"get("x") -> "1""#);
        assert_eq!(
            model.describe_operation(&cas(None, Some(true))),
            r#"cas("x", missing -> "new") -> ok"#
        );
        assert_eq!(model.label(&get("1")), "get 1");
        assert_eq!(model.label(&get("")), r#"get """#);
        assert_eq!(model.label(&cas(None, Some(true))), "cas missing->new ok");
        assert_eq!(model.describe_state(&model.init()), "is missing");
        assert_eq!(model.describe_state(&KvState::holding("x", "v")), r#"holds "v" at "x""#);
    }

    #[test]
    fn a_get_may_become_allowed_only_by_writes_that_can_make_what_it_read() {
        let model = KvModel;
        let read = get("a.b.c.");
        let put = |value: &str| op("x", Command::Put { value: value.to_owned() });
        let append = |value: &str| op("x", Command::Append { value: value.to_owned() });
        let may = |state: &str, resets: &[Operation], appends: &[Operation]| {
            model.may_become_allowed(
                &KvState::holding("x", state),
                &read,
                resets.iter(),
                appends.iter(),
            )
        };
        let appends = [append("c."), append("x."), append("b.")];
        assert!(may("a.b.c.", &[], &[]));
        assert!(may("a.", &[], &appends), "b. then c.");
        assert!(!may("a.", &[], &appends[..2]), "no b.");
        assert!(!may("b.", &[], &appends), "not from b.");
        assert!(!may("b.", &[put("c.")], &appends));
        assert!(may("b.", &[put("c."), put("a.b.")], &appends));
        assert!(may(
            "b.",
            &[op("x", Command::Delete)],
            &[append("a."), append("b."), append("c.")]
        ));
        assert!(!may("b.", &[op("x", Command::Delete)], &appends), "no a.");
        // Two appends of the same text are interchangeable; one of them cannot be used twice.
        let twice = get("b.b.");
        let once = [append("b.")];
        assert!(!model.may_become_allowed(
            &KvState::holding("x", ""),
            &twice,
            [].iter(),
            once.iter()
        ));
        let both = [append("b."), append("b.")];
        assert!(model.may_become_allowed(
            &KvState::holding("x", ""),
            &twice,
            [].iter(),
            both.iter()
        ));
    }

    #[test]
    fn pieces_that_fit_alike_are_matched_exactly_and_others_give_up_safely() {
        assert!(may_be_made_of("", &[]));
        assert!(may_be_made_of("ab", &["b", "a"]));
        assert!(!may_be_made_of("aba", &["b", "a"]));
        assert!(!may_be_made_of("abc", &["a", "b"]));
        // "a" and "ab" both fit at the start: no exact answer is attempted.
        assert!(may_be_made_of("abx", &["a", "ab"]));
    }

    fn timed(id: u64, client: u64, call: u64, ret: u64, key: &str, command: Command) -> Operation {
        Operation { id, client, call, ret: Some(ret), key: key.to_owned(), command }
    }

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|item| (*item).to_owned()).collect()
    }

    #[test]
    fn keys_written_at_once_are_never_seen_half_written() {
        let put_many = Command::PutMany {
            pairs: vec![("a".to_owned(), "1".to_owned()), ("b".to_owned(), "1".to_owned())],
        };
        let read = |output: [Option<&str>; 2]| Command::GetMany {
            keys: strings(&["a", "b"]),
            output: Some(output.iter().map(|value| value.map(str::to_owned)).collect()),
        };
        let limit = Some(std::time::Duration::from_secs(5));
        // Concurrent with the write, a read sees all of it or none of it.
        for (seen, verdict) in [
            ([None, None], crate::Verdict::Linearizable),
            ([Some("1"), Some("1")], crate::Verdict::Linearizable),
            ([Some("1"), None], crate::Verdict::NotLinearizable),
        ] {
            let history =
                [timed(0, 1, 0, 10, "", put_many.clone()), timed(1, 2, 5, 15, "", read(seen))];
            assert_eq!(crate::check(&history, &KvModel, limit).verdict, verdict, "{seen:?}");
        }
    }

    #[test]
    fn a_scan_reads_the_first_keys_of_its_range_and_says_whether_more_follow() {
        let state = KvState::holding("a", "1")
            .with_all([("b", Some(Value::new("2"))), ("c", Some(Value::new("3")))]);
        let scan = |start: &str, prefix: &str, limit: u64, pairs: &[(&str, &str)], more: bool| {
            let range =
                ScanRange { start: start.to_owned(), end: None, prefix: prefix.to_owned(), limit };
            let pairs = pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
            let operation =
                op("", Command::Scan { range, output: Some(ScanOutput { pairs, more }) });
            KvModel.step(&state, &operation).is_some()
        };
        assert!(scan("", "", 2, &[("a", "1"), ("b", "2")], true));
        assert!(scan("", "", 2, &[("a", "1")], true), "a page may stop at its byte limit");
        assert!(!scan("", "", 2, &[("a", "1"), ("b", "2")], false), "c follows");
        assert!(!scan("", "", 2, &[("a", "1"), ("c", "3")], true), "b was skipped");
        assert!(!scan("", "", 1, &[("a", "1"), ("b", "2")], true), "over the limit");
        assert!(scan("b", "", 5, &[("b", "2"), ("c", "3")], false));
        assert!(scan("", "c", 5, &[("c", "3")], false));
        assert!(!scan("", "", 5, &[("a", "9"), ("b", "2"), ("c", "3")], false), "a holds 1");
    }

    #[test]
    fn counters_add_to_canonical_integers_and_refuse_anything_else() {
        let increment = |delta, output| op("n", Command::Increment { delta, output });
        let after = |state: &KvState, delta, output| KvModel.step(state, &increment(delta, output));
        let five = after(&KvModel.init(), 5, Some(Ok(5))).expect("a missing key counts as 0");
        assert_eq!(five, KvState::holding("n", "5"));
        assert_eq!(after(&five, -7, Some(Ok(-2))), Some(KvState::holding("n", "-2")));
        assert_eq!(after(&five, 1, Some(Ok(5))), None);
        assert_eq!(after(&five, 1, Some(Err(()))), None, "5 is an integer");
        for text in ["x", "007", "+1", " 1", "-0", "9223372036854775808"] {
            let state = KvState::holding("n", text);
            assert_eq!(after(&state, 1, Some(Err(()))), Some(state.clone()), "{text:?}");
            assert_eq!(after(&state, 1, Some(Ok(1))), None, "{text:?}");
        }
        let top = KvState::holding("n", &i64::MAX.to_string());
        assert_eq!(after(&top, 1, Some(Err(()))), Some(top.clone()), "overflow");
    }

    #[test]
    fn put_if_exists_count_and_delete_many_answer_from_the_state() {
        let state = KvState::holding("a", "1").with("b", Some(Value::new("")));
        let put_if = |condition, output: (bool, Option<&str>)| {
            let output = Some((output.0, output.1.map(str::to_owned)));
            op("a", Command::PutIf { value: "2".to_owned(), condition, output })
        };
        let step = |operation: &Operation| KvModel.step(&state, operation);
        assert!(step(&put_if(PutCondition::IfPresent, (true, Some("1")))).is_some());
        assert!(step(&put_if(PutCondition::IfMissing, (false, Some("1")))) == Some(state.clone()));
        assert!(step(&put_if(PutCondition::IfMissing, (true, None))).is_none());
        let keys = strings(&["a", "a", "c", "b"]);
        assert!(step(&op("", Command::Exists { keys: keys.clone(), output: Some(3) })).is_some());
        assert!(step(&op("", Command::Count { output: Some(2) })).is_some());
        assert!(step(&op("", Command::Count { output: Some(1) })).is_none());
        let removed = step(&op("", Command::DeleteMany { keys, output: Some(2) }));
        assert_eq!(removed, Some(KvModel.init()), "a key named twice counts once");
    }

    #[test]
    fn keys_named_together_are_partitioned_together_and_a_count_joins_everything() {
        let get = |key: &str| op(key, Command::Get { output: Some(String::new()) });
        let delete_many = op("", Command::DeleteMany { keys: strings(&["c", "b"]), output: None });
        let history = [get("a"), get("b"), delete_many.clone(), get("c"), get("d")];
        let shape = |history: &[Operation]| -> Vec<(String, Vec<usize>)> {
            let partitions = KvModel.partition(history);
            partitions.into_iter().map(|partition| (partition.name, partition.ops)).collect()
        };
        assert_eq!(
            shape(&history),
            [
                ("key \"a\"".to_owned(), vec![0]),
                ("keys \"b\", \"c\"".to_owned(), vec![1, 2, 3]),
                ("key \"d\"".to_owned(), vec![4]),
            ]
        );
        let range = ScanRange {
            start: "a".to_owned(),
            end: Some("c".to_owned()),
            prefix: String::new(),
            limit: 9,
        };
        let scan = op("", Command::Scan { range, output: None });
        let with_scan = [get("a"), get("b"), scan, get("d")];
        assert_eq!(shape(&with_scan)[0], ("keys \"a\", \"b\"".to_owned(), vec![0, 1, 2]));
        let with_count = [get("a"), op("", Command::Count { output: None }), get("d")];
        assert_eq!(shape(&with_count), [("keys \"a\", \"d\"".to_owned(), vec![0, 1, 2])]);
    }

    fn step(key: &str, command: Command) -> crate::BatchStep {
        crate::BatchStep { key: key.to_owned(), command }
    }

    fn put_step(value: &str) -> crate::BatchStep {
        step("x", Command::Put { value: value.to_owned() })
    }

    fn get_step(output: &str) -> crate::BatchStep {
        step("x", Command::Get { output: Some(output.to_owned()) })
    }

    fn batch(steps: Vec<crate::BatchStep>) -> Command {
        Command::Batch { steps }
    }

    fn verdict(history: &[Operation]) -> crate::Verdict {
        crate::check(history, &KvModel, Some(std::time::Duration::from_secs(5))).verdict
    }

    #[test]
    fn a_batch_runs_its_commands_in_order_on_one_state() {
        let in_order = batch(vec![get_step(""), put_step("1"), get_step("1"), put_step("2")]);
        let after = KvModel.step(&KvModel.init(), &op("", in_order.clone()));
        assert_eq!(after, Some(KvState::holding("x", "2")));
        assert!(!KvModel.is_read_only(&op("", in_order.clone())));
        assert!(KvModel.is_read_only(&op("", batch(vec![get_step(""), get_step("")]))));
        // Its get saw the put that comes after it in the batch: no order of one run allows it.
        let get_saw_later_put = batch(vec![get_step("1"), put_step("1")]);
        assert_eq!(KvModel.step(&KvModel.init(), &op("", get_saw_later_put.clone())), None);
        assert_eq!(verdict(&[timed(0, 1, 0, 10, "", in_order)]), crate::Verdict::Linearizable);
        assert_eq!(
            verdict(&[timed(0, 1, 0, 10, "", get_saw_later_put)]),
            crate::Verdict::NotLinearizable
        );
    }

    #[test]
    fn a_batch_is_atomic_another_clients_operation_cannot_fall_between_its_commands() {
        let put_then_get = batch(vec![put_step("1"), get_step("2")]);
        let other_put =
            |call, ret| timed(1, 2, call, ret, "x", Command::Put { value: "2".to_owned() });
        // Concurrent or not, the other put cannot land between the batch's put and its get.
        for (call, ret) in [(2, 8), (0, 1), (11, 12)] {
            let history = [timed(0, 1, 0, 10, "", put_then_get.clone()), other_put(call, ret)];
            assert_eq!(verdict(&history), crate::Verdict::NotLinearizable, "{call}..{ret}");
        }
        let put_then_get_own = batch(vec![put_step("1"), get_step("1")]);
        let history = [timed(0, 1, 0, 10, "", put_then_get_own), other_put(2, 8)];
        assert_eq!(verdict(&history), crate::Verdict::Linearizable);
        // A batch on two keys is checked with both together.
        let two_keys = batch(vec![step("a", Command::Put { value: "1".to_owned() }), get_step("")]);
        let history = [timed(0, 1, 0, 10, "", two_keys), get("")];
        assert_eq!(KvModel.partition(&history)[0].name, "keys \"a\", \"x\"");
    }

    #[test]
    fn describes_a_batch_by_its_commands() {
        let operation = op("", batch(vec![put_step("1"), get_step("1")]));
        assert_eq!(
            KvModel.describe_operation(&operation),
            r#"batch[put("x", "1"); get("x") -> "1"]"#
        );
        assert_eq!(KvModel.label(&operation), "batch[put 1; get 1]");
    }

    #[test]
    fn a_get_may_become_allowed_by_what_a_batch_may_leave_and_a_reading_batch_is_pruned_too() {
        let read = get("a.b.");
        let append_step = |value: &str| step("x", Command::Append { value: value.to_owned() });
        let may = |read: &Operation, resets: &[Operation]| {
            KvModel.may_become_allowed(&KvState::holding("x", "z."), read, resets.iter(), [].iter())
        };
        let leaves_it = op("", batch(vec![put_step("a."), get_step("a."), append_step("b.")]));
        let leaves_other = op("", batch(vec![put_step("c."), append_step("b.")]));
        let other_key = op("", batch(vec![step("y", Command::Put { value: "a.b.".to_owned() })]));
        assert!(may(&read, std::slice::from_ref(&leaves_it)));
        assert!(!may(&read, &[leaves_other.clone(), other_key]));
        let reading_batch = op("", batch(vec![get_step("z."), get_step("a.b.")]));
        assert!(!may(&reading_batch, std::slice::from_ref(&leaves_other)));
        assert!(may(&reading_batch, &[leaves_it]));
        let increment = step("x", Command::Increment { delta: 1, output: None });
        assert!(may(&read, &[op("", batch(vec![increment]))]), "not worked out: allowed");
    }

    #[test]
    fn a_write_observes_what_it_read_or_swapped_on_before_it_wrote_the_key() {
        let may = |observer: &Command, state: &str| {
            let observer = op("x", observer.clone());
            KvModel.may_become_allowed(
                &KvState::holding("x", state),
                &observer,
                [].iter(),
                [].iter(),
            )
        };
        let observes = |command: &Command| KvModel.observes_first(&op("x", command.clone()));
        // The batch's first get saw the state before it; its second, its own put.
        let read_then_write = batch(vec![get_step("a."), put_step("b."), get_step("b.")]);
        assert!(observes(&read_then_write));
        assert!(may(&read_then_write, "a."));
        assert!(!may(&read_then_write, "z."), "nothing may leave a. before it");
        let write_then_read = batch(vec![put_step("b."), get_step("b.")]);
        assert!(!observes(&write_then_read));
        assert!(may(&write_then_read, "z."));
        let swapped = Command::Cas {
            expected: Some("a.".to_owned()),
            value: "b.".to_owned(),
            swapped: Some(true),
        };
        assert!(observes(&swapped));
        assert!(may(&swapped, "a."));
        assert!(!may(&swapped, "z."));
        let unknown = Command::Cas { expected: None, value: "b.".to_owned(), swapped: None };
        assert!(!observes(&unknown));
        assert!(!observes(&Command::Put { value: "a.".to_owned() }));
    }

    #[test]
    fn put_ifs_increments_get_manys_and_scans_observe_what_they_read_and_leave_what_they_wrote() {
        let may = |observer: Command, state: &str, resets: &[Operation]| {
            let observer = op("x", observer);
            KvModel.may_become_allowed(
                &KvState::holding("x", state),
                &observer,
                resets.iter(),
                [].iter(),
            )
        };
        let put_if = |previous: Option<&str>| Command::PutIf {
            value: "p.".to_owned(),
            condition: PutCondition::Always,
            output: Some((true, previous.map(str::to_owned))),
        };
        assert!(may(put_if(Some("a.")), "a.", &[]));
        assert!(!may(put_if(Some("a.")), "z.", &[]));
        assert!(may(put_if(Some("p.")), "z.", &[op("x", put_if(None))]), "leaves p.");
        let increment = |delta, sum| Command::Increment { delta, output: Some(Ok(sum)) };
        assert!(may(increment(2, 7), "5", &[]));
        assert!(!may(increment(2, 7), "4", &[]));
        assert!(may(increment(2, 7), "4", &[op("x", increment(1, 5))]), "leaves 5");
        assert!(may(increment(2, 2), "4", &[]), "0 before: maybe missing, not judged");
        let unknown = Command::Increment { delta: 1, output: None };
        assert!(may(increment(2, 7), "4", &[op("x", unknown)]), "not worked out: allowed");
        let get_many = Command::GetMany {
            keys: strings(&["x", "y"]),
            output: Some(vec![Some("a.".to_owned()), None]),
        };
        assert!(may(get_many.clone(), "a.", &[]));
        assert!(!may(get_many, "z.", &[]));
        let range = ScanRange { start: String::new(), end: None, prefix: String::new(), limit: 9 };
        let pairs = vec![("x".to_owned(), "a.".to_owned())];
        let scan = Command::Scan { range, output: Some(ScanOutput { pairs, more: false }) };
        assert!(may(scan.clone(), "a.", &[]));
        assert!(!may(scan, "z.", &[]));
    }
}
