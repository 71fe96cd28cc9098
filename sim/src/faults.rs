//! The fault injector of a random run: crashes and restarts, pauses and resumptions,
//! partitions of every shape, each class on its own random schedule while the faulty phase
//! lasts.

use raftkv_core::prng::Prng;
use raftkv_core::{Duration, Instant, NodeId};
use raftkv_testkit::Endpoint;

use crate::event::{Event, FaultEvent};
use crate::machine::Machine;
use crate::node_ids::node_id;
use crate::simulation::Simulation;
use crate::trace::Actor;

/// The smallest cluster whose disks rot: a rotted disk is a failed node, and only a cluster
/// that keeps a majority without it can repair it.
const BIT_ROT_NODES_MIN: usize = 3;

/// The fewest nodes two halves joined by a bridge take: one on each side, and the bridge.
const BRIDGED_NODES_MIN: usize = 3;

impl<M: Machine> Simulation<M> {
    /// Whether the injector is on (a random run in its faulty phase).
    fn injecting(&self) -> bool {
        self.auto.as_ref().is_some_and(|auto| auto.is_faulty())
    }

    /// Schedules the first fault of every class the run injects.
    pub(crate) fn start_faults(&mut self) {
        let faults = self.options.shape.faults;
        let classes = [
            (faults.crash, FaultEvent::Crash, self.options.crash.interval_ms_max),
            (faults.partition, FaultEvent::Partition, self.options.partition.interval_ms_max),
            (faults.pause, FaultEvent::Pause, self.options.pause.interval_ms_max),
            (faults.transfer, FaultEvent::Transfer, self.options.transfer_interval_ms_max),
            (
                faults.disk
                    && self.options.shape.nodes >= BIT_ROT_NODES_MIN
                    && self.options.disk.bit_rot_interval_ms_max > 0,
                FaultEvent::BitRot,
                self.options.disk.bit_rot_interval_ms_max,
            ),
        ];
        for (on, event, interval_ms_max) in classes {
            if on {
                let delay = self.draw_ms(1, interval_ms_max);
                self.schedule_in(delay, Event::Fault(event));
            }
        }
        // From its own stream: the other classes draw as in runs without it.
        if faults.membership {
            let interval_ms_max = self.options.membership.interval_ms_max;
            let delay = self.membership_rng.range_inclusive(1, interval_ms_max);
            self.schedule_in(Duration::from_millis(delay), Event::Fault(FaultEvent::Membership));
        }
    }

    /// A span of `low..=high` whole milliseconds, drawn.
    fn draw_ms(&mut self, low: u64, high: u64) -> Duration {
        Duration::from_millis(self.fault_rng.range_inclusive(low, high.max(low)))
    }

    pub(crate) fn on_fault(&mut self, event: FaultEvent) {
        match event {
            FaultEvent::Restart { node, life } => {
                if self.nodes[node].life == life && self.nodes[node].replica.is_none() {
                    self.restart(node_id(node));
                }
            }
            FaultEvent::Resume { node, life } => {
                if self.nodes[node].life == life {
                    self.resume(node_id(node));
                }
            }
            _ if !self.injecting() => {}
            FaultEvent::Crash => self.inject_crash(),
            FaultEvent::CrashDuringSnapshot { node, life } => {
                let state = &self.nodes[node];
                if state.life == life && state.replica.is_some() && self.may_crash_one_more() {
                    self.crash_for_a_while(node);
                }
            }
            FaultEvent::Partition => self.inject_partition(),
            FaultEvent::Pause => self.inject_pause(),
            FaultEvent::Transfer => self.inject_transfer(),
            FaultEvent::BitRot => self.inject_bit_rot(),
            FaultEvent::Membership => self.inject_membership_change(),
        }
    }

    /// Rots a bit of a random node's data, and crashes it so that it finds the damage when it
    /// restarts; only while every disk is sound. Raft survives a minority of failed nodes, and
    /// a node whose disk lost what it acknowledged has failed until it caught up again; two
    /// rotted bits in one header can make a file unrecognizable, which only an operator can
    /// repair.
    fn inject_bit_rot(&mut self) {
        let count = self.nodes.len();
        if (0..count).all(|node| !self.nodes[node].disk.is_suspect()) {
            let node = self.fault_rng.range_inclusive(0, count as u64 - 1) as usize;
            let rotted = self.rot_bit(node_id(node)).is_some();
            if rotted && self.nodes[node].replica.is_some() {
                self.crash_for_a_while(node);
            }
        }
        let next = self.draw_ms(1, self.options.disk.bit_rot_interval_ms_max);
        self.schedule_in(next, Event::Fault(FaultEvent::BitRot));
    }

    /// Node `node`'s disk failed a write: the process stops, as a real one does, and comes
    /// back after a while.
    pub(crate) fn stop_after_disk_failure(&mut self, node: usize) {
        self.crash_for_a_while(node);
    }

    fn inject_transfer(&mut self) {
        if let Some(leader) = self.leader() {
            let nodes = self.node_ids();
            let target = nodes[self.fault_rng.range_inclusive(0, nodes.len() as u64 - 1) as usize];
            self.transfer_leadership(leader, target);
        }
        let next = self.draw_ms(1, self.options.transfer_interval_ms_max);
        self.schedule_in(next, Event::Fault(FaultEvent::Transfer));
    }

    /// Crashes a random running node, the leader one time in two (leader churn: each new
    /// leader inherits the uncommitted tail of the last).
    fn inject_crash(&mut self) {
        let up: Vec<usize> =
            (0..self.nodes.len()).filter(|&n| self.nodes[n].replica.is_some()).collect();
        if self.may_crash_one_more() && !up.is_empty() {
            let random = up[self.fault_rng.range_inclusive(0, up.len() as u64 - 1) as usize];
            let leader = self.leader().map(|id| self.node_index(id));
            let node = match leader {
                Some(leader) if self.fault_rng.chance(1, 2) => leader,
                _ => random,
            };
            self.crash_for_a_while(node);
        }
        let next = self.draw_ms(1, self.options.crash.interval_ms_max);
        self.schedule_in(next, Event::Fault(FaultEvent::Crash));
    }

    /// Whether fewer nodes than allowed are down.
    fn may_crash_one_more(&self) -> bool {
        let down = self.nodes.iter().filter(|node| node.replica.is_none()).count();
        down < self.options.crash.down_max
    }

    /// Crashes running node `node` and schedules its restart.
    fn crash_for_a_while(&mut self, node: usize) {
        self.crash(node_id(node));
        let life = self.nodes[node].life;
        let downtime = self.draw_ms(0, self.options.crash.downtime_ms_max);
        self.schedule_in(downtime, Event::Fault(FaultEvent::Restart { node, life }));
    }

    /// Node `node` is writing, sending or receiving a snapshot until `until`: with the drawn
    /// chance, it crashes before then.
    pub(crate) fn maybe_crash_during_snapshot(&mut self, node: usize, until: Instant) {
        let chance = self.options.crash.during_snapshot;
        // Never drawing when it cannot happen keeps the runs recorded before it as they were.
        if !self.injecting() || !self.options.shape.faults.crash || chance.is_never() {
            return;
        }
        if !chance.happens(&mut self.fault_rng) {
            return;
        }
        // Drawn to the nanosecond: the window may be shorter than a microsecond.
        let window_ns = (until - self.now).as_nanos().max(1);
        let at = self.now + Duration::from_nanos(self.fault_rng.range_inclusive(0, window_ns - 1));
        let life = self.nodes[node].life;
        self.schedule(at, Event::Fault(FaultEvent::CrashDuringSnapshot { node, life }));
    }

    fn inject_pause(&mut self) {
        let running: Vec<usize> =
            (0..self.nodes.len()).filter(|&n| self.nodes[n].is_running()).collect();
        if !running.is_empty() {
            let node =
                running[self.fault_rng.range_inclusive(0, running.len() as u64 - 1) as usize];
            self.pause(node_id(node));
            let life = self.nodes[node].life;
            let duration = self.draw_ms(1, self.options.pause.duration_ms_max);
            self.schedule_in(duration, Event::Fault(FaultEvent::Resume { node, life }));
        }
        let next = self.draw_ms(1, self.options.pause.interval_ms_max);
        self.schedule_in(next, Event::Fault(FaultEvent::Pause));
    }

    /// Partitions the network if it is whole, heals it otherwise.
    fn inject_partition(&mut self) {
        if self.network.is_partitioned() {
            self.heal();
            let next = self.draw_ms(1, self.options.partition.interval_ms_max);
            self.schedule_in(next, Event::Fault(FaultEvent::Partition));
            return;
        }
        let leader = self.leader();
        let clients = self.options.shape.clients;
        let nodes = self.node_ids();
        let plan = draw_partition(&mut self.fault_rng, &nodes, clients, leader);
        match plan {
            Plan::Sides(kind, sides) => {
                self.trace.event(self.now, Actor::Sim, format_args!("partition: {kind}"));
                self.partition(&sides);
            }
            Plan::OneWay { from, to } => {
                self.stats.partitions += 1;
                for &source in &from {
                    for &destination in &to {
                        self.cut(source, destination);
                    }
                }
            }
        }
        let duration = self.draw_ms(1, self.options.partition.duration_ms_max);
        self.schedule_in(duration, Event::Fault(FaultEvent::Partition));
    }
}

/// A partition to make.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Plan {
    /// Cut between sides; a node in no side is a bridge that sees them all.
    Sides(&'static str, Vec<Vec<Endpoint>>),
    /// Cut every link from `from` to `to`, but not back.
    OneWay { from: Vec<Endpoint>, to: Vec<Endpoint> },
}

fn shuffled(rng: &mut Prng, ids: &[NodeId]) -> Vec<Endpoint> {
    let mut ends: Vec<Endpoint> = ids.iter().map(|&id| Endpoint::Node(id)).collect();
    for i in (1..ends.len()).rev() {
        let j = rng.range_inclusive(0, i as u64) as usize;
        ends.swap(i, j);
    }
    ends
}

/// Draws one of: random halves, the leader alone, a one-way cut around one node, two halves
/// joined by a bridge node, the leader cut off from its peers while every client still reaches
/// it. Clients join a random side, so some are stuck with a minority.
fn draw_partition(
    rng: &mut Prng,
    voters: &[NodeId],
    clients: usize,
    leader: Option<NodeId>,
) -> Plan {
    let nodes = shuffled(rng, voters);
    let count = nodes.len();
    let (kind, mut sides) = match rng.range_inclusive(0, 4) {
        4 => {
            let alone = Endpoint::Node(leader.unwrap_or(voters[0]));
            let rest: Vec<Endpoint> = nodes.into_iter().filter(|&end| end != alone).collect();
            return Plan::Sides(
                "the leader cut off from its peers, with every client",
                vec![vec![alone], rest],
            );
        }
        1 => {
            let alone = Endpoint::Node(leader.unwrap_or(voters[0]));
            let rest: Vec<Endpoint> = nodes.into_iter().filter(|&end| end != alone).collect();
            ("the leader alone", vec![vec![alone], rest])
        }
        2 => {
            let node = nodes[0];
            let others = nodes[1..].to_vec();
            return if rng.chance(1, 2) {
                Plan::OneWay { from: vec![node], to: others }
            } else {
                Plan::OneWay { from: others, to: vec![node] }
            };
        }
        3 if count >= BRIDGED_NODES_MIN => {
            let split = rng.range_inclusive(2, count as u64 - 1) as usize;
            ("halves with a bridge", vec![nodes[1..split].to_vec(), nodes[split..].to_vec()])
        }
        _ => {
            let split = rng.range_inclusive(1, (count as u64).saturating_sub(1).max(1)) as usize;
            ("halves", vec![nodes[..split].to_vec(), nodes[split..].to_vec()])
        }
    };
    for client in 0..clients {
        let side = rng.range_inclusive(0, sides.len() as u64 - 1) as usize;
        sides[side].push(Endpoint::Client(client));
    }
    Plan::Sides(kind, sides)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(count: usize) -> Vec<NodeId> {
        crate::node_ids::all(count).collect()
    }

    #[test]
    fn every_partition_keeps_each_endpoint_in_at_most_one_side() {
        let mut rng = Prng::seeded(5);
        let mut kinds = std::collections::BTreeSet::new();
        for _ in 0..200 {
            match draw_partition(&mut rng, &ids(5), 3, Some(NodeId(2))) {
                Plan::Sides(kind, sides) => {
                    kinds.insert(kind);
                    let mut all: Vec<Endpoint> = sides.concat();
                    let total = all.len();
                    all.sort();
                    all.dedup();
                    assert_eq!(all.len(), total, "{kind}: an endpoint on two sides");
                    let nodes = all.iter().filter(|end| matches!(end, Endpoint::Node(_))).count();
                    let expected = if kind == "halves with a bridge" { 4 } else { 5 };
                    assert_eq!(nodes, expected, "{kind}");
                    if kind.starts_with("the leader") {
                        assert!(sides[0].contains(&Endpoint::Node(NodeId(2))));
                    }
                    if kind == "the leader cut off from its peers, with every client" {
                        assert!(
                            !all.iter().any(|end| matches!(end, Endpoint::Client(_))),
                            "clients reach both sides"
                        );
                    }
                }
                Plan::OneWay { from, to } => {
                    kinds.insert("one way");
                    assert_eq!(from.len() + to.len(), 5);
                }
            }
        }
        assert_eq!(kinds.len(), 5, "every kind drawn: {kinds:?}");
    }

    #[test]
    fn a_single_node_can_still_lose_its_clients() {
        let mut rng = Prng::seeded(9);
        let cut_off = (0..100).any(|_| match draw_partition(&mut rng, &ids(1), 2, None) {
            Plan::Sides(_, sides) => sides.iter().skip(1).any(|side| !side.is_empty()),
            Plan::OneWay { .. } => false,
        });
        assert!(cut_off);
    }
}
