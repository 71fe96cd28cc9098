//! What travels between the nodes and clients of a key-value cluster.

use core::fmt;

use raftkv_core::NodeId;
use raftkv_core::kv::{KvCommand, KvReply};
use raftkv_core::protocol::{ClientReply, ClientRequest, Op};
use raftkv_core::raft::Message;

use crate::endpoint::{Endpoint, Routed};
use crate::transcript::outcome_text;

/// Anything in flight between replicas and clients of a state machine whose commands are `C`
/// and replies `R` (the key-value store's unless said otherwise).
#[derive(Clone, Debug)]
pub enum Packet<C = KvCommand, R = KvReply> {
    /// A Raft message between replicas.
    Peer(Message),
    /// A client's request to a replica.
    Request { client: usize, to: NodeId, request: ClientRequest<C> },
    /// A replica's reply to a client.
    Reply { from: NodeId, client: usize, reply: ClientReply<R> },
}

impl<C, R> Routed for Packet<C, R> {
    fn source(&self) -> Endpoint {
        match self {
            Packet::Peer(message) => message.source(),
            Packet::Request { client, .. } => Endpoint::Client(*client),
            Packet::Reply { from, .. } => Endpoint::Node(*from),
        }
    }

    fn destination(&self) -> Endpoint {
        match self {
            Packet::Peer(message) => message.destination(),
            Packet::Request { to, .. } => Endpoint::Node(*to),
            Packet::Reply { client, .. } => Endpoint::Client(*client),
        }
    }
}

impl fmt::Display for Packet {
    /// One transcript line, for example `1->2 Append t=3 ...`, `c0->1 #3 append x+=hello`,
    /// `1->c0 #3 done`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Packet::Peer(message) => write!(f, "{message}"),
            Packet::Request { client, to, request } => {
                write!(f, "c{client}->{to} #{} ", request.request)?;
                match &request.op {
                    Op::Register => f.write_str("register"),
                    Op::Command(command) => write!(f, "{command}"),
                }
            }
            Packet::Reply { from, client, reply } => {
                write!(f, "{from}->c{client} #{} {}", reply.request, outcome_text(&reply.outcome))
            }
        }
    }
}

impl<C, R> From<Message> for Packet<C, R> {
    fn from(message: Message) -> Packet<C, R> {
        Packet::Peer(message)
    }
}

#[cfg(test)]
mod tests {
    use raftkv_core::protocol::Outcome;
    use raftkv_core::{ClientId, RequestId};

    use super::*;

    #[test]
    fn requests_and_replies_read_as_one_line_and_know_their_ends() {
        let request =
            ClientRequest { client: ClientId(0), request: RequestId(3), op: Op::Register };
        let request = Packet::Request { client: 0, to: NodeId(1), request };
        assert_eq!(request.to_string(), "c0->1 #3 register");
        assert_eq!(
            (request.source(), request.destination()),
            (Endpoint::Client(0), NodeId(1).into())
        );
        let reply = ClientReply { request: RequestId(3), outcome: Outcome::Done(KvReply::Done) };
        let reply = Packet::Reply { from: NodeId(1), client: 0, reply };
        assert_eq!(reply.to_string(), "1->c0 #3 done");
        assert_eq!(reply.destination().to_string(), "c0");
    }
}
