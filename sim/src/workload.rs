//! The clients: each drives a sans-IO clerk, one operation at a time, and every call and return
//! goes into the history that the checker judges.

use std::collections::BTreeMap;

use raftkv_core::client::{Clerk, ClerkConfig, ClerkError};
use raftkv_core::kv::{KvCommand, KvReply};
use raftkv_core::prng::Prng;
use raftkv_core::{Duration, Instant, NodeId, RequestId};

use crate::options::{RaftOptions, WorkloadOptions};

/// One operation as a client saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recorded {
    /// The client that issued it.
    pub client: usize,
    /// What it asked.
    pub command: KvCommand,
    /// When it was called (virtual time).
    pub call: Instant,
    /// When it returned, and with what; `None` while open.
    pub ret: Option<(Instant, Result<KvReply, ClerkError>)>,
}

impl Recorded {
    /// Whether the client has its answer (or knows it will never get one).
    pub fn is_finished(&self) -> bool {
        self.ret.is_some()
    }
}

/// Index of an operation in the history.
pub type OpId = usize;

/// A client: its clerk and its operations in flight.
pub(crate) struct Client {
    pub(crate) clerk: Clerk<KvCommand, KvReply>,
    /// Operations submitted and not finished, by the clerk's request id.
    pending: BTreeMap<RequestId, OpId>,
    /// Values written by this client so far (they make every value unique).
    writes: u64,
    /// What this client last read or wrote at each key, for a compare-and-set that may succeed.
    last_seen: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    /// The virtual time of the pending timer event and its generation.
    pub(crate) timer: Option<Instant>,
    pub(crate) timer_generation: u64,
}

/// Every client, the operations still to issue, and the history.
pub(crate) struct Workload {
    options: WorkloadOptions,
    rng: Prng,
    pub(crate) clients: Vec<Client>,
    pub(crate) history: Vec<Recorded>,
    /// Random operations still to issue.
    pub(crate) to_issue: u64,
}

impl Workload {
    pub(crate) fn new(
        options: WorkloadOptions,
        raft: &RaftOptions,
        mut rng: Prng,
        voters: &[NodeId],
        clients: usize,
        ops: u64,
    ) -> Workload {
        let clients = (0..clients)
            .map(|_| {
                // Each client tries the servers in its own order, so they do not all start at
                // the same node.
                let mut servers = voters.to_vec();
                for i in (1..servers.len()).rev() {
                    let j = rng.range_inclusive(0, i as u64) as usize;
                    servers.swap(i, j);
                }
                let mut config = ClerkConfig::new(servers);
                config.request_timeout_ms = raft.request_timeout_ms;
                config.seed = rng.next_u64();
                Client {
                    clerk: Clerk::new(config),
                    pending: BTreeMap::new(),
                    writes: 0,
                    last_seen: BTreeMap::new(),
                    timer: None,
                    timer_generation: 0,
                }
            })
            .collect();
        Workload { options, rng, clients, history: Vec::new(), to_issue: ops }
    }

    /// The name of key number `key`.
    pub(crate) fn key_name(key: u64) -> Vec<u8> {
        format!("k{key}").into_bytes()
    }

    /// Keys the random operations use.
    pub(crate) fn keys(&self) -> u64 {
        self.options.keys
    }

    /// Draws the next random operation of `client`; every value written is unique.
    pub(crate) fn draw_command(&mut self, client: usize) -> KvCommand {
        let key_number = self.rng.range_inclusive(0, self.options.keys - 1);
        let key = Workload::key_name(key_number);
        let total: u64 = self.options.mix.iter().sum();
        let mut pick = self.rng.range_inclusive(0, total - 1);
        let mut kind = 0;
        while pick >= self.options.mix[kind] {
            pick -= self.options.mix[kind];
            kind += 1;
        }
        let state = &mut self.clients[client];
        state.writes += 1;
        let value = format!("c{client}-{}.", state.writes).into_bytes();
        match kind {
            0 => KvCommand::Get { key },
            1 => KvCommand::Put { key, value },
            2 => KvCommand::Append { key, value },
            3 => KvCommand::Delete { key },
            _ => {
                let expected = state.last_seen.get(&key).cloned().flatten();
                KvCommand::Cas { key, expected, new: value }
            }
        }
    }

    /// Hands `command` to `client`'s clerk at `now` and records the call.
    pub(crate) fn submit(&mut self, client: usize, now: Instant, command: KvCommand) -> OpId {
        let op = self.history.len();
        let request = self.clients[client].clerk.submit(now, command.clone());
        self.clients[client].pending.insert(request, op);
        self.history.push(Recorded { client, command, call: now, ret: None });
        op
    }

    /// Records that `client`'s operation `request` returned at `now`. Returns the operation.
    pub(crate) fn finish(
        &mut self,
        client: usize,
        request: RequestId,
        now: Instant,
        result: Result<KvReply, ClerkError>,
    ) -> Option<OpId> {
        let op = self.clients[client].pending.remove(&request)?;
        let recorded = &mut self.history[op];
        if let Ok(reply) = &result {
            let seen = match (&recorded.command, reply) {
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
                let key = recorded.command.key().expect("a command on one key").to_vec();
                self.clients[client].last_seen.insert(key, seen);
            }
        }
        recorded.ret = Some((now, result));
        Some(op)
    }

    /// Whether `client` has no operation in flight.
    pub(crate) fn is_idle(&self, client: usize) -> bool {
        self.clients[client].pending.is_empty()
    }

    /// Whether every operation submitted so far has returned.
    pub(crate) fn all_finished(&self) -> bool {
        self.clients.iter().all(|client| client.pending.is_empty())
    }

    /// The operations in flight.
    pub(crate) fn open_ops(&self) -> impl Iterator<Item = OpId> + '_ {
        self.clients.iter().flat_map(|client| client.pending.values().copied())
    }

    /// How long `client` thinks before its next operation.
    pub(crate) fn think_time(&mut self) -> Duration {
        Duration::from_micros(self.rng.range_inclusive(0, self.options.think_us_max))
    }
}
