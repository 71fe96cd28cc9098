//! The simulated network: every packet between nodes and clients gets a delay with a long tail
//! (so packets reorder), may be lost or duplicated, and crosses no cut link.

use core::fmt;

use raftkv_core::Duration;
use raftkv_core::kv::KvReply;
use raftkv_core::prng::Prng;
use raftkv_core::protocol::{Op, Outcome};
use raftkv_testkit::{Endpoint, Packet};

use crate::machine::{CommandOf, Machine, ReplyOf};
use crate::node_ids;
use crate::options::{NetworkOptions, Ratio};

/// A packet of machine `M`'s cluster as the trace shows it: the ends of requests and replies
/// named as [`Endpoint`] names them, commands and replies as the machine describes them (the
/// key-value store's values by their length only). Trace hashes depend on every byte of it.
pub(crate) struct TraceLine<'a, M: Machine>(pub(crate) &'a Packet<CommandOf<M>, ReplyOf<M>>);

impl<M: Machine> fmt::Display for TraceLine<'_, M> {
    /// For example `1->2 Append t=3 ...`, `c0->n2 #4 put k1=c0-4.`, `n2->c0 #4 done`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Packet::Peer(message) => write!(f, "{message}"),
            Packet::Request { client, to, request } => {
                write!(f, "c{client}->n{to} #{} ", request.request)?;
                match &request.op {
                    Op::Register => f.write_str("register"),
                    Op::Command(command) => f.write_str(&M::command_text(command)),
                }
            }
            Packet::Reply { from, client, reply } => {
                let text = machine_outcome_text::<M>(&reply.outcome);
                write!(f, "n{from}->c{client} #{} {text}", reply.request)
            }
        }
    }
}

/// An answer of machine `M` in a few words.
pub(crate) fn machine_outcome_text<M: Machine>(outcome: &Outcome<ReplyOf<M>>) -> String {
    match outcome {
        Outcome::Done(reply) => M::reply_text(reply),
        Outcome::Registered { client } => format!("registered as {client}"),
        Outcome::Rejected(reject) => format!("rejected: {reject}"),
    }
}

/// A reply in a few words; values by their length only, since appends make them long.
pub(crate) fn outcome_text(outcome: &Outcome<KvReply>) -> String {
    match outcome {
        Outcome::Registered { client } => format!("registered as {client}"),
        Outcome::Done(KvReply::Value(Some(value))) => format!("value({}B)", value.len()),
        Outcome::Done(KvReply::Value(None)) => "missing".to_string(),
        Outcome::Done(KvReply::Done) => "done".to_string(),
        Outcome::Done(KvReply::Cas { swapped: true, .. }) => "cas ok".to_string(),
        Outcome::Done(KvReply::Cas { swapped: false, .. }) => "cas fail".to_string(),
        Outcome::Done(KvReply::Length(length)) => format!("length {length}"),
        Outcome::Done(other) => format!("{other:?}"),
        Outcome::Rejected(reject) => format!("rejected: {reject}"),
    }
}

/// The bounds of a long delay (`NetworkOptions::long_delay`).
const LONG_DELAY_US_MIN: u64 = 200_000;
const LONG_DELAY_US_MAX: u64 = 2_200_000;

/// The links between `nodes` replicas and `clients` clients, and what happens on them.
pub(crate) struct Network {
    options: NetworkOptions,
    rng: Prng,
    nodes: usize,
    clients: usize,
    /// `cut[from * ends + to]`: the directed link drops everything.
    cut: Vec<bool>,
}

impl Network {
    pub(crate) fn new(options: NetworkOptions, rng: Prng, nodes: usize, clients: usize) -> Network {
        let ends = nodes + clients;
        Network { options, rng, nodes, clients, cut: vec![false; ends * ends] }
    }

    /// Adds a node after the last: every link of it starts whole.
    pub(crate) fn add_node(&mut self) {
        let old_ends = self.nodes + self.clients;
        let old_slot = |nodes: usize, end: usize| if end < nodes { end } else { end + 1 };
        let mut cut = vec![false; (old_ends + 1) * (old_ends + 1)];
        for from in 0..old_ends {
            for to in 0..old_ends {
                let (new_from, new_to) = (old_slot(self.nodes, from), old_slot(self.nodes, to));
                cut[new_from * (old_ends + 1) + new_to] = self.cut[from * old_ends + to];
            }
        }
        self.nodes += 1;
        self.cut = cut;
    }

    fn slot(&self, end: Endpoint) -> usize {
        match end {
            Endpoint::Node(id) => node_ids::node_index(id)
                .filter(|&index| index < self.nodes)
                .unwrap_or_else(|| panic!("no node {id} on the network")),
            Endpoint::Client(index) => self.nodes + index,
        }
    }

    fn link(&self, from: Endpoint, to: Endpoint) -> usize {
        self.slot(from) * (self.nodes + self.clients) + self.slot(to)
    }

    /// Every endpoint.
    pub(crate) fn endpoints(&self) -> impl Iterator<Item = Endpoint> + use<> {
        let nodes = node_ids::all(self.nodes).map(Endpoint::Node);
        nodes.chain((0..self.clients).map(Endpoint::Client))
    }

    /// The delays after which copies of a packet from `from` to `to` arrive: none if the link
    /// is cut or the packet is lost, two if it is duplicated.
    pub(crate) fn route(&mut self, from: Endpoint, to: Endpoint) -> Route {
        if self.cut[self.link(from, to)] {
            return Route::Cut;
        }
        if self.options.loss.happens(&mut self.rng) {
            return Route::Lost;
        }
        let first = self.delay();
        if self.options.duplicate.happens(&mut self.rng) {
            Route::Duplicated(first, self.delay())
        } else {
            Route::Delivered(first)
        }
    }

    fn delay(&mut self) -> Duration {
        let o = &self.options;
        let micros = if o.long_delay.happens(&mut self.rng) {
            self.rng.range_inclusive(LONG_DELAY_US_MIN, LONG_DELAY_US_MAX)
        } else if o.tail.happens(&mut self.rng) {
            self.rng.range_inclusive(o.latency_us_max, o.latency_tail_us_max)
        } else {
            self.rng.range_inclusive(o.latency_us_min, o.latency_us_max)
        };
        Duration::from_micros(micros)
    }

    /// Cuts (or restores) the directed link.
    pub(crate) fn set_cut(&mut self, from: Endpoint, to: Endpoint, cut: bool) {
        let link = self.link(from, to);
        self.cut[link] = cut;
    }

    /// Cuts every link between endpoints of different sides; endpoints in no side keep every
    /// link (a bridge).
    pub(crate) fn partition(&mut self, sides: &[Vec<Endpoint>]) {
        for (a, side_a) in sides.iter().enumerate() {
            for (b, side_b) in sides.iter().enumerate() {
                if a == b {
                    continue;
                }
                for &from in side_a {
                    for &to in side_b {
                        self.set_cut(from, to, true);
                    }
                }
            }
        }
    }

    /// Restores every link.
    pub(crate) fn heal(&mut self) {
        self.cut.fill(false);
    }

    /// Whether any link is cut.
    pub(crate) fn is_partitioned(&self) -> bool {
        self.cut.contains(&true)
    }

    /// Stops losing, duplicating and holding back packets (the healed phase); ordinary delays
    /// and their tail stay.
    pub(crate) fn stop_faults(&mut self) {
        self.options.loss = Ratio::NEVER;
        self.options.duplicate = Ratio::NEVER;
        self.options.long_delay = Ratio::NEVER;
    }
}

/// What became of a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Route {
    /// The link is cut.
    Cut,
    /// Lost on the way.
    Lost,
    /// Arrives after this delay.
    Delivered(Duration),
    /// Arrives twice, after each of these delays.
    Duplicated(Duration, Duration),
}

#[cfg(test)]
mod tests {
    use super::*;
    use raftkv_core::NodeId;

    fn reliable() -> NetworkOptions {
        NetworkOptions {
            latency_us_min: 10,
            latency_us_max: 20,
            tail: Ratio::NEVER,
            latency_tail_us_max: 20,
            loss: Ratio::NEVER,
            duplicate: Ratio::NEVER,
            long_delay: Ratio::NEVER,
        }
    }

    #[test]
    fn a_node_added_keeps_the_cuts_of_the_others_and_starts_connected() {
        let mut network = Network::new(reliable(), Prng::seeded(1), 2, 1);
        let client = Endpoint::Client(0);
        network.set_cut(N1, client, true);
        network.set_cut(client, N2, true);
        network.add_node();
        assert_eq!(network.endpoints().count(), 4);
        assert!(matches!(network.route(N1, client), Route::Cut));
        assert!(matches!(network.route(client, N2), Route::Cut));
        assert!(matches!(network.route(N2, N1), Route::Delivered(_)));
        for end in [N1, N2, client] {
            assert!(matches!(network.route(end, N3), Route::Delivered(_)));
            assert!(matches!(network.route(N3, end), Route::Delivered(_)));
        }
    }

    #[test]
    fn a_long_delay_holds_a_packet_back_for_hundreds_of_milliseconds() {
        let options = NetworkOptions { long_delay: Ratio::new(1, 1), ..reliable() };
        let mut network = Network::new(options, Prng::seeded(1), 2, 0);
        for _ in 0..100 {
            let Route::Delivered(delay) = network.route(N1, N2) else { panic!("reliable") };
            let long =
                Duration::from_micros(LONG_DELAY_US_MIN)..=Duration::from_micros(LONG_DELAY_US_MAX);
            assert!(long.contains(&delay));
        }
        network.stop_faults();
        let Route::Delivered(delay) = network.route(N1, N2) else { panic!("reliable") };
        assert!(delay <= Duration::from_micros(20), "ordinary delays once the faults stop");
    }

    const N1: Endpoint = Endpoint::Node(NodeId(1));
    const N2: Endpoint = Endpoint::Node(NodeId(2));
    const N3: Endpoint = Endpoint::Node(NodeId(3));

    #[test]
    fn a_partition_cuts_between_sides_and_spares_the_bridge() {
        let mut network = Network::new(reliable(), Prng::seeded(1), 3, 1);
        network.partition(&[vec![N1], vec![N2, Endpoint::Client(0)]]);
        assert_eq!(network.route(N1, N2), Route::Cut);
        assert_eq!(network.route(Endpoint::Client(0), N1), Route::Cut);
        assert!(matches!(network.route(N2, Endpoint::Client(0)), Route::Delivered(_)));
        assert!(matches!(network.route(N3, N1), Route::Delivered(_)));
        assert!(matches!(network.route(N2, N3), Route::Delivered(_)));
        network.heal();
        assert!(!network.is_partitioned());
        assert!(matches!(network.route(N1, N2), Route::Delivered(_)));
    }

    #[test]
    fn delays_stay_in_range_and_loss_follows_its_ratio() {
        let mut options = reliable();
        options.loss = Ratio::new(1, 2);
        let mut network = Network::new(options, Prng::seeded(2), 2, 0);
        let mut lost = 0;
        for _ in 0..1_000 {
            match network.route(N1, N2) {
                Route::Lost => lost += 1,
                Route::Delivered(delay) => {
                    let latency = Duration::from_micros(10)..=Duration::from_micros(20);
                    assert!(latency.contains(&delay));
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        assert!((400..600).contains(&lost), "{lost} of 1000 lost at 1/2");
    }
}
