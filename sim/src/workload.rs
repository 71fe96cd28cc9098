//! The clients: each drives a sans-IO clerk, one operation at a time, and every call and return
//! goes into the history that the checker judges. What they ask is the machine's to draw.

use std::collections::BTreeMap;

use raftkv_core::client::{Clerk, ClerkConfig, ClerkError};
use raftkv_core::prng::Prng;
use raftkv_core::{Duration, Instant, NodeId, RequestId};

use crate::machine::{CommandOf, Machine, ReplyOf};
use crate::options::{RaftOptions, WorkloadOptions};
use crate::recorded::{OpId, Recorded};

/// The history of machine `M`.
pub(crate) type History<M> = Vec<Recorded<CommandOf<M>, ReplyOf<M>>>;

/// A client: its clerk and its operations in flight.
pub(crate) struct Client<M: Machine> {
    pub(crate) clerk: Clerk<CommandOf<M>, ReplyOf<M>>,
    /// Operations submitted and not finished, by the clerk's request id.
    pending: BTreeMap<RequestId, OpId>,
    /// The virtual time of the pending timer event and its generation.
    pub(crate) timer: Option<Instant>,
    pub(crate) timer_generation: u64,
}

/// Every client, the machine that draws their commands, the operations still to issue, and
/// the history.
pub(crate) struct Workload<M: Machine> {
    options: WorkloadOptions,
    pub(crate) machine: M,
    rng: Prng,
    pub(crate) clients: Vec<Client<M>>,
    pub(crate) history: History<M>,
    /// Random operations still to issue.
    pub(crate) to_issue: u64,
}

impl<M: Machine> Workload<M> {
    pub(crate) fn new(
        machine: M,
        options: WorkloadOptions,
        raft: &RaftOptions,
        mut rng: Prng,
        voters: &[NodeId],
        clients: usize,
        ops: u64,
    ) -> Workload<M> {
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
                    timer: None,
                    timer_generation: 0,
                }
            })
            .collect();
        Workload { options, machine, rng, clients, history: Vec::new(), to_issue: ops }
    }

    /// Draws the next random operation of `client`.
    pub(crate) fn draw_command(&mut self, client: usize) -> CommandOf<M> {
        self.machine.next_command(&mut self.rng, client)
    }

    /// Hands `command` to `client`'s clerk at `now` and records the call.
    pub(crate) fn submit(&mut self, client: usize, now: Instant, command: CommandOf<M>) -> OpId {
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
        result: Result<ReplyOf<M>, ClerkError>,
    ) -> Option<OpId> {
        let op = self.clients[client].pending.remove(&request)?;
        let recorded = &mut self.history[op];
        if let Ok(reply) = &result {
            self.machine.observe(client, &recorded.command, reply);
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
