//! The key-value store: get, put, append, delete and compare-and-set on string keys.

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::rc::Rc;

use crate::history::{Command, Operation};
use crate::model::{Model, Partition};
use crate::models::cas_outcome_word;

/// The key-value store, partitioned by key: keys are independent, so each is checked alone.
#[derive(Clone, Copy, Debug, Default)]
pub struct KvModel;

/// The value of one key: missing, or a string.
///
/// Cheap to clone, hash and compare however long the string grows: the text is shared, and a
/// hash of it is kept alongside and extended by appends in time proportional to what they add.
#[derive(Clone, Debug)]
pub struct KvState {
    /// A function of `text` alone (FNV-1a over its bytes), so equal states hash alike.
    hash: u64,
    /// `None`: missing.
    text: Option<Rc<str>>,
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;
/// Any constant would do: equality, not the hash, tells missing from a string.
const MISSING_HASH: u64 = 0x6d69_7373_696e_6721;

impl KvState {
    fn missing() -> Self {
        KvState { hash: MISSING_HASH, text: None }
    }

    fn holding(text: &str) -> Self {
        KvState { hash: extend_hash(FNV_OFFSET, text), text: Some(Rc::from(text)) }
    }

    fn appended(&self, suffix: &str) -> Self {
        let old = self.text.as_deref().unwrap_or("");
        let mut text = String::with_capacity(old.len() + suffix.len());
        text.push_str(old);
        text.push_str(suffix);
        let hash = extend_hash(if self.text.is_some() { self.hash } else { FNV_OFFSET }, suffix);
        KvState { hash, text: Some(Rc::from(text)) }
    }

    /// What a get returns: a missing key reads as `""`.
    fn read(&self) -> &str {
        self.text.as_deref().unwrap_or("")
    }

    /// Whether a compare-and-set expecting `expected` (`None`: missing) succeeds.
    fn is(&self, expected: Option<&str>) -> bool {
        self.text.as_deref() == expected
    }
}

/// Whether `text` may be some of `pieces` end to end, each used at most once. Exact when at
/// every point the pieces that fit all read alike (unique values ending with a separator, as
/// the simulator writes them, always do); when two different ones fit, the answer is `true`,
/// which is never wrong here.
fn may_be_made_of(mut text: &str, pieces: &[&str]) -> bool {
    let mut used = vec![false; pieces.len()];
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

impl PartialEq for KvState {
    fn eq(&self, other: &Self) -> bool {
        self.hash == other.hash
            && match (&self.text, &other.text) {
                (None, None) => true,
                (Some(mine), Some(theirs)) => Rc::ptr_eq(mine, theirs) || mine == theirs,
                _ => false,
            }
    }
}

impl Eq for KvState {}

impl Hash for KvState {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.hash);
    }
}

impl Model for KvModel {
    type Operation = Operation;
    /// The value of the one key of a partition.
    type State = KvState;

    fn init(&self) -> KvState {
        KvState::missing()
    }

    fn step(&self, state: &KvState, operation: &Operation) -> Option<KvState> {
        match &operation.command {
            Command::Get { output } => match output {
                Some(output) if output != state.read() => None,
                _ => Some(state.clone()),
            },
            Command::Put { value } => Some(KvState::holding(value)),
            Command::Append { value } => Some(state.appended(value)),
            Command::Delete => Some(KvState::missing()),
            Command::Cas { expected, value, swapped } => {
                let holds_expected = state.is(expected.as_deref());
                if swapped.is_some_and(|swapped| swapped != holds_expected) {
                    return None;
                }
                Some(if holds_expected { KvState::holding(value) } else { state.clone() })
            }
        }
    }

    fn is_read_only(&self, operation: &Operation) -> bool {
        matches!(operation.command, Command::Get { .. } | Command::Cas { swapped: Some(false), .. })
    }

    fn only_extends(&self, operation: &Operation) -> bool {
        matches!(operation.command, Command::Append { .. })
    }

    /// What a get read must be a value some write may leave (the current one, or that of a
    /// put, a delete or a compare-and-set) followed by some of the appends, each at most once.
    fn may_become_allowed<'a>(
        &self,
        state: &KvState,
        read: &Operation,
        mut resets: impl Iterator<Item = &'a Operation>,
        extensions: impl Iterator<Item = &'a Operation>,
    ) -> bool {
        let Command::Get { output: Some(output) } = &read.command else {
            return true;
        };
        let appends: Vec<&str> = extensions
            .filter_map(|extension| match &extension.command {
                Command::Append { value } if !value.is_empty() => Some(value.as_str()),
                _ => None,
            })
            .collect();
        let may_follow = |base: &str| {
            output.strip_prefix(base).is_some_and(|rest| may_be_made_of(rest, &appends))
        };
        may_follow(state.read())
            || resets.any(|reset| match &reset.command {
                Command::Put { value } | Command::Cas { value, .. } => may_follow(value),
                Command::Delete => may_follow(""),
                Command::Get { .. } | Command::Append { .. } => true,
            })
    }

    fn partition(&self, history: &[Operation]) -> Vec<Partition> {
        let mut by_key: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        for (index, operation) in history.iter().enumerate() {
            by_key.entry(&operation.key).or_default().push(index);
        }
        by_key
            .into_iter()
            .map(|(key, ops)| Partition { name: format!("key {key:?}"), ops })
            .collect()
    }

    fn describe_operation(&self, operation: &Operation) -> String {
        let key = &operation.key;
        match &operation.command {
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
        }
    }

    /// Values bare unless they are empty or hold a space or a quote, to fit on short bars.
    fn label(&self, operation: &Operation) -> String {
        match &operation.command {
            Command::Get { output: Some(output) } => format!("get {}", bare(output)),
            Command::Get { output: None } => "get ?".to_owned(),
            Command::Put { value } => format!("put {}", bare(value)),
            Command::Append { value } => format!("append {}", bare(value)),
            Command::Delete => "delete".to_owned(),
            Command::Cas { expected, value, swapped } => {
                let expected = expected.as_deref().map_or("missing".to_owned(), bare);
                format!("cas {expected}->{} {}", bare(value), cas_outcome_word(*swapped))
            }
        }
    }

    fn describe_state(&self, state: &KvState) -> String {
        match &state.text {
            None => "is missing".to_owned(),
            Some(text) => format!("holds {text:?}"),
        }
    }
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
        let empty = KvState::holding("");
        assert_ne!(missing, empty);
        assert!(model.step(&missing, &get("")).is_some());
        assert!(model.step(&empty, &get("")).is_some());
        assert_eq!(model.step(&missing, &cas(None, Some(true))), Some(KvState::holding("new")));
        assert_eq!(model.step(&missing, &cas(Some(""), Some(true))), None);
        assert_eq!(model.step(&empty, &cas(Some(""), Some(true))), Some(KvState::holding("new")));
        assert_eq!(model.step(&empty, &cas(None, Some(false))), Some(empty.clone()));
        assert_eq!(model.step(&empty, &cas(None, None)), Some(empty));
    }

    #[test]
    fn appends_concatenate_and_hash_like_the_same_text_put_whole() {
        let model = KvModel;
        let append = |value: &str| op("x", Command::Append { value: value.to_owned() });
        let once = model.step(&model.init(), &append("ab")).unwrap();
        let twice = model.step(&once, &append("c")).unwrap();
        let whole = KvState::holding("abc");
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
        assert_eq!(model.describe_state(&KvState::holding("v")), r#"holds "v""#);
    }

    #[test]
    fn a_get_may_become_allowed_only_by_writes_that_can_make_what_it_read() {
        let model = KvModel;
        let read = get("a.b.c.");
        let put = |value: &str| op("x", Command::Put { value: value.to_owned() });
        let append = |value: &str| op("x", Command::Append { value: value.to_owned() });
        let may = |state: &str, resets: &[Operation], appends: &[Operation]| {
            model.may_become_allowed(&KvState::holding(state), &read, resets.iter(), appends.iter())
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
        assert!(!model.may_become_allowed(&KvState::holding(""), &twice, [].iter(), once.iter()));
        let both = [append("b."), append("b.")];
        assert!(model.may_become_allowed(&KvState::holding(""), &twice, [].iter(), both.iter()));
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
}
