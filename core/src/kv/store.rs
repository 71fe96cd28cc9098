//! The key-value state machine: an ordered map from keys to values.
//!
//! The map is persistent (`imbl::OrdMap`, a B+tree whose nodes are shared between copies and
//! copied on write): a snapshot's view is a copy of it, taken in constant time between two
//! events, and encoded on another thread while the node goes on applying commands. The
//! standard library has no such map, and writing a balanced persistent tree here would be a
//! second, less tested copy of a well-kept one. The map holds buckets of pairs packed in one
//! allocation each (`pairs`, `bucket`), reference counted, so the nodes a write copies while
//! a view is alive copy pointers, not pairs, and a snapshot writes each pair straight from its
//! bucket. The map keeps keys in order, which scans read in pages (`scan`).

use std::io;

use crate::kv::command::{KvCommand, KvReply, PutCondition};
use crate::kv::counter::incremented;
use crate::kv::pairs::Pairs;
use crate::kv::restore::read_pairs;
use crate::kv::scan::read_page;
use crate::state_machine::{InvalidCommand, RestoreError, StateMachine};

/// Size limits, checked before a command reaches the log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KvLimits {
    /// Longest key. Default 4 KiB.
    pub max_key_bytes: usize,
    /// Longest value in a command, and longest value an append may produce. Default 1 MiB.
    pub max_value_bytes: usize,
}

impl Default for KvLimits {
    fn default() -> KvLimits {
        KvLimits { max_key_bytes: 4 << 10, max_value_bytes: 1 << 20 }
    }
}

/// A read of several values is refused rather than answered with more than this, so that its
/// reply fits the default frame limit of 16 MiB.
pub const MAX_VALUES_REPLY_BYTES: usize = 12 << 20;

/// A [`KvCommand::Batch`] runs no further command once the replies of those it ran weigh
/// this much. Its commands' replies weigh one value at most ([`KvCommand::may_join_batch`]),
/// so a batch's reply, which its session keeps on every replica and in every snapshot to
/// answer a retry, weighs at most this and one value (1 MiB by default).
pub const BATCH_REPLY_BYTES: usize = 256 << 10;

/// Commands in a [`KvCommand::Batch`] at most.
pub const MAX_BATCH_COMMANDS: usize = 4096;

/// The replicated key-value store.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KvStore {
    limits: KvLimits,
    entries: Pairs,
}

/// The store at one point in time, unchanged by later commands (see `StateMachine::View`).
#[derive(Clone, Debug)]
pub struct KvView {
    entries: Pairs,
}

impl KvStore {
    /// An empty store with these limits.
    pub fn new(limits: KvLimits) -> KvStore {
        KvStore { limits, entries: Pairs::default() }
    }

    /// The value of `key`.
    pub fn get(&self, key: &[u8]) -> Option<&[u8]> {
        self.entries.get(key)
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the store holds no key.
    pub fn is_empty(&self) -> bool {
        self.entries.len() == 0
    }

    fn insert(&mut self, key: &[u8], value: &[u8]) {
        self.entries.insert(key, value);
    }

    /// The values of `keys`, or a refusal if together they weigh more than a reply may.
    fn read_values(&self, keys: &[Vec<u8>]) -> KvReply {
        let values: Vec<Option<Vec<u8>>> =
            keys.iter().map(|key| self.get(key).map(<[u8]>::to_vec)).collect();
        let bytes =
            values.iter().flatten().fold(0usize, |sum, value| sum.saturating_add(value.len()));
        if bytes > MAX_VALUES_REPLY_BYTES {
            let reason = format!(
                "the values weigh {bytes} bytes, over the {MAX_VALUES_REPLY_BYTES} bytes a reply may carry"
            );
            return KvReply::Refused { reason };
        }
        KvReply::Values(values)
    }

    /// A batch is valid if each of its commands is, and it holds one to
    /// [`MAX_BATCH_COMMANDS`], each one that [may join a batch](KvCommand::may_join_batch).
    fn validate_batch(&self, commands: &[KvCommand]) -> Result<(), InvalidCommand> {
        if commands.is_empty() || commands.len() > MAX_BATCH_COMMANDS {
            return Err(InvalidCommand {
                reason: format!(
                    "a batch holds 1 to {MAX_BATCH_COMMANDS} commands, not {}",
                    commands.len()
                ),
            });
        }
        for (position, command) in commands.iter().enumerate() {
            if !command.may_join_batch() {
                return Err(InvalidCommand {
                    reason: format!(
                        "command {} of the batch ({command}) may not be in a batch: only \
                         commands whose reply weighs one value at most may, send it alone",
                        position + 1
                    ),
                });
            }
        }
        // An append's limit depends on what the commands before it in the batch wrote: those
        // are run on a copy (constant time to take) so each is checked against the state it
        // will meet. Apply enforces the limit again against the state it really meets.
        let last_append =
            commands.iter().rposition(|command| matches!(command, KvCommand::Append { .. }));
        let mut after_earlier: Option<KvStore> = None;
        for (position, command) in commands.iter().enumerate() {
            let state = after_earlier.as_ref().unwrap_or(self);
            state.validate(command).map_err(|invalid| InvalidCommand {
                reason: format!("command {} of the batch: {}", position + 1, invalid.reason),
            })?;
            let append_follows = last_append.is_some_and(|last| position < last);
            if append_follows && !Self::is_read_only(command) {
                after_earlier.get_or_insert_with(|| self.clone()).apply(command);
            }
        }
        Ok(())
    }

    /// The limit on the value an append produces, if `grown` bytes pass it.
    fn check_grown(&self, grown: usize) -> Result<(), String> {
        if grown > self.limits.max_value_bytes {
            return Err(format!(
                "append would grow the value to {grown} bytes, over the limit of {} bytes",
                self.limits.max_value_bytes
            ));
        }
        Ok(())
    }

    fn check_key(&self, key: &[u8]) -> Result<(), InvalidCommand> {
        if key.len() > self.limits.max_key_bytes {
            return Err(InvalidCommand {
                reason: format!(
                    "key of {} bytes exceeds the limit of {} bytes",
                    key.len(),
                    self.limits.max_key_bytes
                ),
            });
        }
        Ok(())
    }

    fn check_value(&self, value: &[u8]) -> Result<(), InvalidCommand> {
        if value.len() > self.limits.max_value_bytes {
            return Err(InvalidCommand {
                reason: format!(
                    "value of {} bytes exceeds the limit of {} bytes",
                    value.len(),
                    self.limits.max_value_bytes
                ),
            });
        }
        Ok(())
    }
}

impl StateMachine for KvStore {
    type Command = KvCommand;
    type Reply = KvReply;
    type View = KvView;

    fn is_read_only(command: &KvCommand) -> bool {
        matches!(
            command,
            KvCommand::Get { .. }
                | KvCommand::Scan(_)
                | KvCommand::Count
                | KvCommand::GetMany { .. }
                | KvCommand::Exists { .. }
        ) || matches!(command, KvCommand::Batch { commands } if commands.iter().all(Self::is_read_only))
    }

    fn validate(&self, command: &KvCommand) -> Result<(), InvalidCommand> {
        command.try_for_each_named_key(&mut |key| self.check_key(key))?;
        match command {
            KvCommand::Get { .. }
            | KvCommand::Delete { .. }
            | KvCommand::Count
            | KvCommand::GetMany { .. }
            | KvCommand::Exists { .. }
            | KvCommand::DeleteMany { .. }
            | KvCommand::Increment { .. } => Ok(()),
            KvCommand::Scan(scan) if scan.limit == 0 => {
                Err(InvalidCommand { reason: "a scan's limit must be at least 1".to_string() })
            }
            KvCommand::Scan(_) => Ok(()),
            KvCommand::Batch { commands } => self.validate_batch(commands),
            KvCommand::Put { value, .. } | KvCommand::PutIf { value, .. } => {
                self.check_value(value)
            }
            KvCommand::PutMany { pairs } => {
                pairs.iter().try_for_each(|(_, value)| self.check_value(value))
            }
            KvCommand::Cas { expected, new, .. } => {
                self.check_value(new)?;
                expected.as_deref().map_or(Ok(()), |expected| self.check_value(expected))
            }
            KvCommand::Append { key, value } => {
                let current = self.get(key).map_or(0, <[u8]>::len);
                self.check_grown(current.saturating_add(value.len()))
                    .map_err(|reason| InvalidCommand { reason })
            }
        }
    }

    fn apply(&mut self, command: &KvCommand) -> KvReply {
        match command {
            KvCommand::Get { .. }
            | KvCommand::Scan(_)
            | KvCommand::Count
            | KvCommand::GetMany { .. }
            | KvCommand::Exists { .. } => self.read(command),
            KvCommand::Put { key, value } => {
                self.insert(key, value);
                KvReply::Done
            }
            KvCommand::Append { key, value } => {
                // Validation saw an earlier state: commands applied since (earlier ones of a
                // batch, other clients' in flight) may have grown the value. Every replica
                // meets the same state here, so every one refuses alike.
                let current = self.get(key).unwrap_or_default();
                if let Err(reason) = self.check_grown(current.len().saturating_add(value.len())) {
                    return KvReply::Refused { reason };
                }
                let mut grown = current.to_vec();
                grown.extend_from_slice(value);
                let length = grown.len() as u64;
                self.entries.insert(key, &grown);
                KvReply::Length(length)
            }
            KvCommand::Delete { key } => {
                self.entries.remove(key);
                KvReply::Done
            }
            KvCommand::Cas { key, expected, new } => {
                let previous = self.get(key).map(<[u8]>::to_vec);
                let swapped = previous == *expected;
                if swapped {
                    self.insert(key, new);
                }
                KvReply::Cas { swapped, previous }
            }
            KvCommand::PutMany { pairs } => {
                for (key, value) in pairs {
                    self.insert(key, value);
                }
                KvReply::Done
            }
            KvCommand::DeleteMany { keys } => {
                let removed = keys.iter().filter(|key| self.entries.remove(key));
                KvReply::Count(removed.count() as u64)
            }
            KvCommand::PutIf { key, value, condition } => {
                let previous = self.get(key).map(<[u8]>::to_vec);
                let written = match condition {
                    PutCondition::Always => true,
                    PutCondition::IfMissing => previous.is_none(),
                    PutCondition::IfPresent => previous.is_some(),
                };
                if written {
                    self.insert(key, value);
                }
                KvReply::PutIf { written, previous }
            }
            KvCommand::Increment { key, delta } => match incremented(self.get(key), *delta) {
                Ok(sum) => {
                    self.insert(key, sum.to_string().as_bytes());
                    KvReply::Integer(sum)
                }
                Err(reason) => KvReply::Refused { reason },
            },
            KvCommand::Batch { commands } => batch_replies(commands, |command| self.apply(command)),
        }
    }

    fn read(&self, command: &KvCommand) -> KvReply {
        match command {
            KvCommand::Get { key } => KvReply::Value(self.get(key).map(<[u8]>::to_vec)),
            KvCommand::Scan(scan) => KvReply::Page(read_page(&self.entries, scan)),
            KvCommand::Count => KvReply::Count(self.entries.len() as u64),
            KvCommand::GetMany { keys } => self.read_values(keys),
            KvCommand::Exists { keys } => KvReply::Count(
                keys.iter().filter(|key| self.entries.contains_key(key)).count() as u64,
            ),
            KvCommand::Batch { commands } => batch_replies(commands, |command| self.read(command)),
            write => {
                debug_assert!(false, "read of a write: {write}");
                KvReply::Refused { reason: format!("{write} is not a read") }
            }
        }
    }

    fn view(&self) -> KvView {
        KvView { entries: self.entries.clone() }
    }

    fn encoded_len(view: &KvView) -> u64 {
        view.entries.encoded_len()
    }

    /// The pairs in key order (see `Pairs::encode_into`).
    fn encode_into(view: &KvView, out: &mut dyn io::Write) -> io::Result<()> {
        view.entries.encode_into(out)
    }

    /// As `encode_into`, letting go of each bucket of pairs once written: a write that lands
    /// in it afterwards need not copy it.
    fn encode_consuming(view: KvView, out: &mut dyn io::Write) -> io::Result<()> {
        view.entries.encode_consuming(out)
    }

    fn restore(&mut self, snapshot: &[u8]) -> Result<(), RestoreError> {
        self.entries = read_pairs(&mut &snapshot[..])?;
        Ok(())
    }

    /// Decodes the snapshot a pair at a time, straight into the map.
    fn restore_from(&mut self, snapshot: &mut dyn io::Read) -> Result<(), RestoreError> {
        self.entries = read_pairs(snapshot)?;
        Ok(())
    }
}

/// The replies of `commands` run in order by `run`, up to [`BATCH_REPLY_BYTES`] of them.
fn batch_replies(commands: &[KvCommand], mut run: impl FnMut(&KvCommand) -> KvReply) -> KvReply {
    let mut replies = Vec::with_capacity(commands.len());
    let mut weight = 0usize;
    for command in commands {
        if weight >= BATCH_REPLY_BYTES {
            break;
        }
        let reply = run(command);
        weight = weight.saturating_add(reply.payload_bytes());
        replies.push(reply);
    }
    KvReply::Batch(replies)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(text: &str) -> Vec<u8> {
        text.as_bytes().to_vec()
    }

    #[test]
    fn commands_change_the_store_as_documented() {
        let mut store = KvStore::default();
        let x = || bytes("x");
        assert_eq!(store.apply(&KvCommand::Get { key: x() }), KvReply::Value(None));
        store.apply(&KvCommand::Append { key: x(), value: bytes("a") });
        store.apply(&KvCommand::Append { key: x(), value: bytes("b") });
        assert_eq!(store.apply(&KvCommand::Get { key: x() }), KvReply::Value(Some(bytes("ab"))));
        store.apply(&KvCommand::Put { key: x(), value: bytes("p") });
        let failed = store.apply(&KvCommand::Cas { key: x(), expected: None, new: bytes("n") });
        assert_eq!(failed, KvReply::Cas { swapped: false, previous: Some(bytes("p")) });
        let swapped =
            store.apply(&KvCommand::Cas { key: x(), expected: Some(bytes("p")), new: bytes("n") });
        assert_eq!(swapped, KvReply::Cas { swapped: true, previous: Some(bytes("p")) });
        store.apply(&KvCommand::Delete { key: x() });
        assert_eq!(store.read(&KvCommand::Get { key: x() }), KvReply::Value(None));
        let created = store.apply(&KvCommand::Cas { key: x(), expected: None, new: bytes("c") });
        assert_eq!(created, KvReply::Cas { swapped: true, previous: None });
    }

    #[test]
    fn commands_on_several_keys_read_and_write_them_together() {
        let mut store = KvStore::default();
        let pairs =
            vec![(bytes("a"), bytes("1")), (bytes("b"), bytes("2")), (bytes("a"), bytes("3"))];
        assert_eq!(store.apply(&KvCommand::PutMany { pairs }), KvReply::Done);
        assert_eq!(store.read(&KvCommand::Count), KvReply::Count(2));
        let keys = vec![bytes("a"), bytes("x"), bytes("b")];
        let values = store.read(&KvCommand::GetMany { keys: keys.clone() });
        assert_eq!(values, KvReply::Values(vec![Some(bytes("3")), None, Some(bytes("2"))]));
        let twice = vec![bytes("a"), bytes("a"), bytes("x")];
        assert_eq!(store.read(&KvCommand::Exists { keys: twice }), KvReply::Count(2));
        assert_eq!(store.apply(&KvCommand::DeleteMany { keys }), KvReply::Count(2));
        assert!(store.is_empty());
    }

    #[test]
    fn conditional_puts_counters_and_appends_answer_what_they_did() {
        let mut store = KvStore::default();
        let put_if = |condition| KvCommand::PutIf { key: bytes("k"), value: bytes("v"), condition };
        let present = store.apply(&put_if(PutCondition::IfPresent));
        assert_eq!(present, KvReply::PutIf { written: false, previous: None });
        let missing = store.apply(&put_if(PutCondition::IfMissing));
        assert_eq!(missing, KvReply::PutIf { written: true, previous: None });
        let again = store.apply(&put_if(PutCondition::IfMissing));
        assert_eq!(again, KvReply::PutIf { written: false, previous: Some(bytes("v")) });
        let always = store.apply(&put_if(PutCondition::Always));
        assert_eq!(always, KvReply::PutIf { written: true, previous: Some(bytes("v")) });
        assert_eq!(
            store.apply(&KvCommand::Append { key: bytes("k"), value: bytes("w") }),
            KvReply::Length(2)
        );
        let increment = |delta| KvCommand::Increment { key: bytes("n"), delta };
        assert_eq!(store.apply(&increment(5)), KvReply::Integer(5));
        assert_eq!(store.apply(&increment(-7)), KvReply::Integer(-2));
        assert_eq!(store.get(b"n"), Some(&b"-2"[..]));
        let refused = store.apply(&KvCommand::Increment { key: bytes("k"), delta: 1 });
        assert!(matches!(refused, KvReply::Refused { .. }), "{refused:?}");
        assert_eq!(store.get(b"k"), Some(&b"vw"[..]), "a refused increment changes nothing");
    }

    #[test]
    fn several_keys_and_scans_are_checked_before_the_log() {
        let store = KvStore::new(KvLimits { max_key_bytes: 4, max_value_bytes: 8 });
        let long_key = KvCommand::DeleteMany { keys: vec![bytes("ok"), bytes("12345")] };
        assert!(store.validate(&long_key).is_err());
        let long_value = KvCommand::PutMany { pairs: vec![(bytes("k"), vec![0; 9])] };
        assert!(store.validate(&long_value).is_err());
        let scan = |limit| {
            KvCommand::Scan(crate::kv::Scan {
                start: Vec::new(),
                end: Some(bytes("12345")),
                prefix: Vec::new(),
                limit,
                with_values: false,
            })
        };
        assert!(store.validate(&scan(1)).unwrap_err().reason.contains("key of 5 bytes"));
        let mut empty_limit = scan(0);
        if let KvCommand::Scan(scan) = &mut empty_limit {
            scan.end = None;
        }
        assert!(store.validate(&empty_limit).unwrap_err().reason.contains("at least 1"));
    }

    #[test]
    fn a_batch_runs_its_commands_in_order_and_answers_each() {
        let mut store = KvStore::default();
        let set = |value: &str| KvCommand::Put { key: bytes("k"), value: bytes(value) };
        let get = || KvCommand::Get { key: bytes("k") };
        let batch = KvCommand::Batch { commands: vec![set("1"), get(), set("2"), get()] };
        assert!(!KvStore::is_read_only(&batch), "a batch with a write goes through the log");
        assert_eq!(store.validate(&batch), Ok(()));
        let replies = vec![
            KvReply::Done,
            KvReply::Value(Some(bytes("1"))),
            KvReply::Done,
            KvReply::Value(Some(bytes("2"))),
        ];
        assert_eq!(store.apply(&batch), KvReply::Batch(replies));
        let reads = KvCommand::Batch { commands: vec![get(), KvCommand::Count] };
        assert!(KvStore::is_read_only(&reads), "a batch of reads is a read");
        let answer = KvReply::Batch(vec![KvReply::Value(Some(bytes("2"))), KvReply::Count(1)]);
        assert_eq!(store.read(&reads), answer);
    }

    #[test]
    fn a_batch_stops_once_its_replies_weigh_the_limit_and_the_rest_does_not_run() {
        let mut store = KvStore::default();
        let big = vec![7; BATCH_REPLY_BYTES / 2];
        store.apply(&KvCommand::Put { key: bytes("big"), value: big.clone() });
        let get = KvCommand::Get { key: bytes("big") };
        let last = KvCommand::Put { key: bytes("after"), value: bytes("x") };
        let batch = KvCommand::Batch { commands: vec![get.clone(), get.clone(), last] };
        let KvReply::Batch(replies) = store.apply(&batch) else { panic!("a batch reply") };
        assert_eq!(replies, vec![KvReply::Value(Some(big.clone())); 2]);
        assert_eq!(store.get(b"after"), None, "the command past the limit did not run");
    }

    #[test]
    fn a_batch_is_valid_only_if_every_command_is_and_none_is_a_batch() {
        let store = KvStore::new(KvLimits { max_key_bytes: 4, max_value_bytes: 8 });
        let get = || KvCommand::Get { key: bytes("k") };
        let empty = KvCommand::Batch { commands: Vec::new() };
        assert!(store.validate(&empty).unwrap_err().reason.contains("1 to"));
        let too_many = KvCommand::Batch { commands: vec![get(); MAX_BATCH_COMMANDS + 1] };
        assert!(store.validate(&too_many).is_err());
        let nested =
            KvCommand::Batch { commands: vec![get(), KvCommand::Batch { commands: vec![get()] }] };
        assert!(store.validate(&nested).unwrap_err().reason.contains("may not be in a batch"));
        let long_value = KvCommand::Put { key: bytes("k"), value: vec![0; 9] };
        let invalid = KvCommand::Batch { commands: vec![get(), long_value] };
        assert!(store.validate(&invalid).unwrap_err().reason.starts_with("command 2 of the batch"));
        assert_eq!(invalid.payload_bytes(), 1 + 1 + 9);
    }

    #[test]
    fn a_batch_holding_a_read_of_many_values_is_refused_and_one_of_counts_is_not() {
        let store = KvStore::default();
        let put = || KvCommand::Put { key: bytes("k"), value: bytes("v") };
        let get_many = KvCommand::GetMany { keys: vec![bytes("k"), bytes("l")] };
        let scan = KvCommand::Scan(crate::kv::Scan {
            start: Vec::new(),
            end: None,
            prefix: Vec::new(),
            limit: 10,
            with_values: true,
        });
        for many_values in [get_many, scan] {
            let batch = KvCommand::Batch { commands: vec![put(), many_values.clone()] };
            let reason = store.validate(&batch).unwrap_err().reason;
            assert!(reason.starts_with("command 2 of the batch"), "{reason}");
            assert!(reason.contains("may not be in a batch"), "{reason}");
            assert_eq!(store.validate(&many_values), Ok(()), "alone it is valid");
        }
        let counts = KvCommand::Batch {
            commands: vec![put(), KvCommand::Count, KvCommand::Exists { keys: vec![bytes("k")] }],
        };
        assert_eq!(store.validate(&counts), Ok(()), "counts weigh nothing");
    }

    #[test]
    fn a_read_of_values_too_large_for_a_reply_is_refused() {
        let mut store = KvStore::new(KvLimits { max_key_bytes: 16, max_value_bytes: 8 << 20 });
        store.apply(&KvCommand::Put { key: bytes("big"), value: vec![0; 7 << 20] });
        let keys = vec![bytes("big"), bytes("big")];
        let reply = store.read(&KvCommand::GetMany { keys });
        assert!(matches!(reply, KvReply::Refused { .. }), "two copies weigh 14 MiB");
    }

    #[test]
    fn missing_and_empty_are_different_for_cas() {
        let mut store = KvStore::default();
        store.apply(&KvCommand::Put { key: bytes("k"), value: Vec::new() });
        let reply =
            store.apply(&KvCommand::Cas { key: bytes("k"), expected: None, new: bytes("v") });
        assert_eq!(reply, KvReply::Cas { swapped: false, previous: Some(Vec::new()) });
    }

    #[test]
    fn oversized_keys_values_and_appends_are_refused() {
        let mut store = KvStore::new(KvLimits { max_key_bytes: 4, max_value_bytes: 8 });
        let long_key = KvCommand::Get { key: bytes("12345") };
        assert!(store.validate(&long_key).unwrap_err().reason.contains("key of 5 bytes"));
        let long_value = KvCommand::Put { key: bytes("k"), value: vec![0; 9] };
        assert!(store.validate(&long_value).is_err());
        store.apply(&KvCommand::Put { key: bytes("k"), value: vec![0; 6] });
        let growing = KvCommand::Append { key: bytes("k"), value: vec![0; 3] };
        assert!(store.validate(&growing).unwrap_err().reason.contains("9 bytes"));
        assert!(store.validate(&KvCommand::Append { key: bytes("k"), value: vec![0; 2] }).is_ok());
    }

    #[test]
    fn appends_past_the_limit_are_refused_by_apply_and_counted_in_a_batch() {
        let mut store = KvStore::new(KvLimits { max_key_bytes: 4, max_value_bytes: 8 });
        let append = |length| KvCommand::Append { key: bytes("k"), value: vec![1; length] };
        // Two appends, each valid against the state they were checked on, applied in turn.
        assert_eq!(store.validate(&append(5)), Ok(()));
        assert_eq!(store.apply(&append(5)), KvReply::Length(5));
        let refused = store.apply(&append(5));
        let KvReply::Refused { reason } = refused else { panic!("refused, not {refused:?}") };
        assert!(reason.contains("10 bytes"), "{reason}");
        assert_eq!(store.get(b"k"), Some(&[1; 5][..]), "a refused append changes nothing");
        // In a batch, each append is checked against what the commands before it wrote.
        let mut empty = KvStore::new(KvLimits { max_key_bytes: 4, max_value_bytes: 8 });
        let twice = KvCommand::Batch { commands: vec![append(5), append(5)] };
        let reason = empty.validate(&twice).unwrap_err().reason;
        assert!(reason.starts_with("command 2 of the batch: append would grow"), "{reason}");
        let put = KvCommand::Put { key: bytes("k"), value: vec![2; 7] };
        let after_put = KvCommand::Batch { commands: vec![put.clone(), append(2)] };
        assert!(empty.validate(&after_put).is_err(), "the put leaves room for 1 byte");
        let delete = KvCommand::Delete { key: bytes("k") };
        let fits = KvCommand::Batch { commands: vec![put, delete, append(8)] };
        assert_eq!(empty.validate(&fits), Ok(()));
        assert_eq!(empty.get(b"k"), None, "validation changes nothing");
        let KvReply::Batch(replies) = empty.apply(&twice) else { panic!("a batch reply") };
        assert_eq!(replies[0], KvReply::Length(5));
        assert!(matches!(replies[1], KvReply::Refused { .. }), "{:?}", replies[1]);
    }

    #[test]
    fn a_snapshot_restores_the_same_store() {
        let mut store = KvStore::default();
        for i in 0..10 {
            store.apply(&KvCommand::Put { key: bytes(&format!("k{i}")), value: bytes("v") });
        }
        // Keys held inline and shared, and an empty value, come back the same.
        store.apply(&KvCommand::Put { key: vec![b'l'; 300], value: vec![7; 200] });
        store.apply(&KvCommand::Put { key: Vec::new(), value: Vec::new() });
        let mut restored = KvStore::default();
        let snapshot = store.snapshot();
        restored.restore(&snapshot).expect("decodes");
        assert_eq!(restored, store);
        assert_eq!(restored.get(&[b'l'; 300]), Some(&[7; 200][..]));
        assert!(restored.restore(&[0xff, 0xff, 0xff]).is_err());
        assert!(restored.restore(&snapshot[..snapshot.len() - 1]).is_err(), "cut short");
    }

    #[test]
    fn a_snapshot_decoded_as_it_is_read_restores_the_same_store() {
        let mut store = KvStore::default();
        for i in 0..300 {
            let value = vec![b'v'; i * 7];
            store.apply(&KvCommand::Put { key: bytes(&format!("k{i}")), value });
        }
        let encoded = store.snapshot();
        let mut restored = KvStore::default();
        restored.restore_from(&mut &encoded[..]).expect("decodes");
        assert_eq!(restored, store);
        let mut short = KvStore::default();
        assert!(short.restore_from(&mut &encoded[..encoded.len() - 1]).is_err());
        // A count of pairs that lies allocates nothing: the read ends with the bytes.
        let lying = postcard::to_allocvec(&u64::MAX).unwrap();
        assert!(short.restore_from(&mut &lying[..]).is_err());
    }

    #[test]
    fn a_view_keeps_the_state_it_was_taken_at() {
        let mut store = KvStore::default();
        store.apply(&KvCommand::Put { key: bytes("a"), value: bytes("1") });
        store.apply(&KvCommand::Put { key: bytes("b"), value: bytes("2") });
        let before = store.clone();
        let view = store.view();
        store.apply(&KvCommand::Put { key: bytes("a"), value: bytes("changed") });
        store.apply(&KvCommand::Append { key: bytes("b"), value: bytes("+") });
        store.apply(&KvCommand::Delete { key: bytes("a") });
        store.apply(&KvCommand::Put { key: bytes("c"), value: bytes("3") });
        let mut restored = KvStore::default();
        restored.restore(&KvStore::encode(&view)).expect("decodes");
        assert_eq!(restored, before);
        assert_eq!(store.get(b"b"), Some(&b"2+"[..]));
    }

    #[test]
    fn the_encoding_is_the_one_snapshots_had_before_views() {
        // Pairs in key order as a postcard sequence: what stored snapshots hold.
        let mut store = KvStore::default();
        store.apply(&KvCommand::Put { key: bytes("b"), value: bytes("2") });
        store.apply(&KvCommand::Put { key: bytes("a"), value: bytes("1") });
        assert_eq!(store.snapshot(), [2, 1, b'a', 1, b'1', 1, b'b', 1, b'2']);
        // Lengths past 127 take two bytes; the size is known before the encoding is written.
        store.apply(&KvCommand::Put { key: bytes("c"), value: vec![b'v'; 300] });
        let encoded = store.snapshot();
        assert_eq!(&encoded[9..13], [1, b'c', 0xac, 0x02]);
        assert_eq!(KvStore::encoded_len(&store.view()), encoded.len() as u64);
    }
}
