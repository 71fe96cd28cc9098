//! The key-value store as the simulator runs it: what `raftkv-sim` simulates.

use std::collections::BTreeMap;

use raftkv_checker::{KvModel, Operation};
use raftkv_core::kv::{KvCommand, KvReply, KvStore, PutCondition, Scan};
use raftkv_core::prng::Prng;
use raftkv_core::protocol::Outcome;

use crate::history;
use crate::machine::Machine;
use crate::options::{BATCH_COMMANDS, MULTI_KEY_OPS, NOT_IN_BATCHES, WorkloadOptions};
use crate::recorded::Recorded;

/// The key-value store, its random workload of gets, puts, appends, deletes and
/// compare-and-sets on a few keys (`WorkloadOptions`), with `--multi-key` also reads, writes
/// and deletes of several keys at once, scans, counts, increments and put-ifs, with
/// `--batches` also pipelines of those run in order at one point; and the checker's
/// key-value model.
#[derive(Clone, Debug)]
pub struct KvMachine {
    options: WorkloadOptions,
    /// By client: values written so far (they make every value unique), and what it last
    /// read or wrote at each key, for a compare-and-set that may succeed.
    clients: Vec<ClientMemory>,
}

#[derive(Clone, Debug, Default)]
struct ClientMemory {
    writes: u64,
    last_seen: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
}

impl KvMachine {
    /// The store with the workload `options` describe.
    pub fn new(options: WorkloadOptions) -> KvMachine {
        KvMachine { options, clients: Vec::new() }
    }

    /// The name of key number `key`.
    fn key_name(key: u64) -> Vec<u8> {
        format!("k{key}").into_bytes()
    }

    /// Operation number `kind` of `MULTI_KEY_OPS`, on `key` and more, writing `value` (and
    /// values made from it, unique too).
    fn multi_key_command(
        &self,
        rng: &mut Prng,
        kind: usize,
        key: Vec<u8>,
        value: Vec<u8>,
    ) -> KvCommand {
        let keys = self.options.keys;
        // One to three keys, a repeat possible (a key named twice is allowed everywhere).
        let some_keys = |rng: &mut Prng| -> Vec<Vec<u8>> {
            let more = rng.range_inclusive(0, 2);
            let mut named = vec![key.clone()];
            named.extend((0..more).map(|_| KvMachine::key_name(rng.range_inclusive(0, keys - 1))));
            named
        };
        match kind {
            0 => KvCommand::GetMany { keys: some_keys(rng) },
            1 => KvCommand::Exists { keys: some_keys(rng) },
            2 => {
                let named = some_keys(rng);
                let pairs = named
                    .into_iter()
                    .enumerate()
                    .map(|(place, key)| {
                        let mut value = value.clone();
                        value.extend_from_slice(format!("{place}.").as_bytes());
                        (key, value)
                    })
                    .collect();
                KvCommand::PutMany { pairs }
            }
            3 => KvCommand::DeleteMany { keys: some_keys(rng) },
            4 => KvCommand::Count,
            5 => {
                // From a key or the start, to a key or the end, a page of 1 to all the keys.
                let bound = |rng: &mut Prng| {
                    rng.chance(1, 2).then(|| KvMachine::key_name(rng.range_inclusive(0, keys - 1)))
                };
                let start = bound(rng).unwrap_or_default();
                let end = bound(rng);
                let limit = rng.range_inclusive(1, keys + 1) as u32;
                let prefix = if rng.chance(1, 4) { key } else { Vec::new() };
                KvCommand::Scan(Scan { start, end, prefix, limit, with_values: true })
            }
            6 => {
                let delta = rng.range_inclusive(0, 20) as i64 - 10;
                KvCommand::Increment { key, delta }
            }
            _ => {
                let condition =
                    [PutCondition::Always, PutCondition::IfMissing, PutCondition::IfPresent]
                        [rng.range_inclusive(0, 2) as usize];
                KvCommand::PutIf { key, value, condition }
            }
        }
    }

    /// A batch of [`BATCH_COMMANDS`] commands, each on a key of its own drawn like those of
    /// the others, but for those a batch may not hold ([`NOT_IN_BATCHES`]).
    fn batch_command(&mut self, rng: &mut Prng, client: usize) -> KvCommand {
        let (fewest, most) = BATCH_COMMANDS;
        let allowed = |op: &str| !NOT_IN_BATCHES.contains(&op);
        let multi = MULTI_KEY_OPS.iter().zip(&self.options.multi);
        let weights: Vec<u64> = (self.options.mix.iter().copied())
            .chain(multi.map(|(op, weight)| if allowed(op) { *weight } else { 0 }))
            .collect();
        let commands = (0..rng.range_inclusive(fewest, most))
            .map(|_| {
                let key = KvMachine::key_name(rng.range_inclusive(0, self.options.keys - 1));
                let kind = draw_kind(rng, &weights);
                let command = self.command_of_kind(rng, client, kind, key);
                assert!(command.may_join_batch(), "a batch drew {command}");
                command
            })
            .collect();
        KvCommand::Batch { commands }
    }

    /// A command of kind number `kind` (get, put, append, delete, cas, then those of
    /// `MULTI_KEY_OPS`) on `key`, writing a value unique to it.
    fn command_of_kind(
        &mut self,
        rng: &mut Prng,
        client: usize,
        kind: usize,
        key: Vec<u8>,
    ) -> KvCommand {
        let memory = self.client(client);
        memory.writes += 1;
        let value = format!("c{client}-{}.", memory.writes).into_bytes();
        match kind {
            0 => KvCommand::Get { key },
            1 => KvCommand::Put { key, value },
            2 => KvCommand::Append { key, value },
            3 => KvCommand::Delete { key },
            4 => {
                let expected = memory.last_seen.get(&key).cloned().flatten();
                KvCommand::Cas { key, expected, new: value }
            }
            _ => self.multi_key_command(rng, kind - self.options.mix.len(), key, value),
        }
    }

    fn client(&mut self, client: usize) -> &mut ClientMemory {
        if self.clients.len() <= client {
            self.clients.resize_with(client + 1, ClientMemory::default);
        }
        &mut self.clients[client]
    }
}

/// The number of a kind of command drawn at `weights`.
fn draw_kind(rng: &mut Prng, weights: &[u64]) -> usize {
    let total: u64 = weights.iter().sum();
    let mut pick = rng.range_inclusive(0, total - 1);
    let mut kind = 0;
    while pick >= weights[kind] {
        pick -= weights[kind];
        kind += 1;
    }
    kind
}

impl Machine for KvMachine {
    type State = KvStore;
    type Model = KvModel;

    fn new_state(&self) -> KvStore {
        KvStore::default()
    }

    /// Every value written is unique. Without operations on several keys or batches, the
    /// draws are those of the workload before they existed, so that a seed's runs stay as
    /// they were.
    fn next_command(&mut self, rng: &mut Prng, client: usize) -> KvCommand {
        let key = KvMachine::key_name(rng.range_inclusive(0, self.options.keys - 1));
        let weights: Vec<u64> = self
            .options
            .mix
            .iter()
            .chain(&self.options.multi)
            .chain([&self.options.batch])
            .copied()
            .collect();
        match draw_kind(rng, &weights) {
            kind if kind == weights.len() - 1 => self.batch_command(rng, client),
            kind => self.command_of_kind(rng, client, kind, key),
        }
    }

    fn observe(&mut self, client: usize, command: &KvCommand, reply: &KvReply) {
        let seen = match (command, reply) {
            (KvCommand::Batch { commands }, KvReply::Batch(replies)) => {
                for (command, reply) in commands.iter().zip(replies) {
                    self.observe(client, command, reply);
                }
                return;
            }
            (KvCommand::Get { .. }, KvReply::Value(value)) => Some(value.clone()),
            (KvCommand::Put { value, .. }, _) => Some(Some(value.clone())),
            (KvCommand::Delete { .. }, _) => Some(None),
            (KvCommand::Cas { new, .. }, KvReply::Cas { swapped: true, .. }) => {
                Some(Some(new.clone()))
            }
            (KvCommand::Cas { .. }, KvReply::Cas { previous, .. }) => Some(previous.clone()),
            _ => None,
        };
        if let Some(seen) = seen {
            let key = command.key().expect("a command on one key").to_vec();
            self.client(client).last_seen.insert(key, seen);
        }
    }

    /// A get of every key.
    fn final_reads(&self) -> Vec<KvCommand> {
        (0..self.options.keys).map(|key| KvCommand::Get { key: KvMachine::key_name(key) }).collect()
    }

    /// A batch's replies fit its commands in order, one at least; fewer than its commands if it
    /// stopped early.
    fn reply_fits(command: &KvCommand, reply: &KvReply) -> bool {
        if let (KvCommand::Batch { commands }, KvReply::Batch(replies)) = (command, reply) {
            return !replies.is_empty()
                && replies.len() <= commands.len()
                && commands
                    .iter()
                    .zip(replies)
                    .all(|(command, reply)| Self::reply_fits(command, reply));
        }
        matches!(
            (command, reply),
            (KvCommand::Get { .. }, KvReply::Value(_))
                | (KvCommand::Put { .. } | KvCommand::Delete { .. }, KvReply::Done)
                | (KvCommand::Append { .. }, KvReply::Length(_))
                | (KvCommand::Cas { .. }, KvReply::Cas { .. })
                | (KvCommand::GetMany { .. }, KvReply::Values(_))
                | (KvCommand::Exists { .. } | KvCommand::DeleteMany { .. }, KvReply::Count(_))
                | (KvCommand::Count, KvReply::Count(_))
                | (KvCommand::PutMany { .. }, KvReply::Done)
                | (KvCommand::Scan(_), KvReply::Page(_))
                | (KvCommand::Increment { .. }, KvReply::Integer(_) | KvReply::Refused { .. })
                | (KvCommand::PutIf { .. }, KvReply::PutIf { .. })
        )
    }

    /// A put of `value` to key `raft`.
    fn hand_command(value: &str) -> KvCommand {
        KvCommand::Put { key: b"raft".to_vec(), value: value.as_bytes().to_vec() }
    }

    fn model(&self) -> KvModel {
        KvModel
    }

    fn to_checker(recorded: &[Recorded]) -> Vec<Operation> {
        history::to_checker(recorded)
    }

    fn command_text(command: &KvCommand) -> String {
        command.to_string()
    }

    fn reply_text(reply: &KvReply) -> String {
        crate::network::outcome_text(&Outcome::Done(reply.clone()))
    }
}
