//! What clients and replicas say to each other.

use core::fmt;

use serde::{Deserialize, Serialize};

use crate::ids::{ClientId, NodeId, RequestId};

/// A client's request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientRequest<C> {
    /// The client's session; `ClientId(0)` before it has one (only `Register` is sent then).
    pub client: ClientId,
    /// Grows by one with each new request of the session; a retry repeats it.
    pub request: RequestId,
    /// What is asked.
    pub op: Op<C>,
}

/// The operations a client can request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Op<C> {
    /// Open a session. The answer names its `ClientId`.
    Register,
    /// Run a command of the state machine within the session.
    Command(C),
}

/// A replica's answer to the request with id `request`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientReply<R> {
    /// The request answered.
    pub request: RequestId,
    /// How it went.
    pub outcome: Outcome<R>,
}

/// How a request went.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome<R> {
    /// The session is open.
    Registered {
        /// The session's id, for every later request.
        client: ClientId,
    },
    /// The command took effect exactly once (or, for a read, was served) with this reply.
    Done(R),
    /// The command was not served by this replica.
    Rejected(Reject),
}

/// Why a replica did not serve a request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Reject {
    /// This replica does not lead, or stopped leading before the request was done; whether a
    /// write took effect is unknown. Retry the same request at `hint` (the leader it knows of)
    /// or elsewhere: the session makes the retry safe.
    NotLeader {
        /// The leader this replica knows of.
        hint: Option<NodeId>,
    },
    /// The session is unknown or expired: the command was not applied under it now. Whether an
    /// earlier attempt of it took effect is unknown. Register a new session.
    SessionExpired,
    /// The session has already moved past this request: the client no longer waits for it.
    Superseded,
    /// The command can never succeed (too large, malformed); do not retry it.
    Invalid {
        /// Why.
        reason: String,
    },
    /// The replica has as many requests waiting as it accepts: this one was not handed to
    /// consensus and had no effect. Retry the same request at the same replica after a
    /// backoff. (Last variant: appended, so the encoding of the others did not change.)
    Busy,
}

impl Reject {
    /// Whether retrying the same request may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Reject::NotLeader { .. } | Reject::Busy)
    }
}

impl fmt::Display for Reject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reject::NotLeader { hint: Some(hint) } => write!(f, "not the leader (try node {hint})"),
            Reject::NotLeader { hint: None } => write!(f, "not the leader (leader unknown)"),
            Reject::SessionExpired => write!(f, "session expired"),
            Reject::Superseded => write!(f, "request superseded by a newer one of its session"),
            Reject::Invalid { reason } => write!(f, "invalid request: {reason}"),
            Reject::Busy => write!(f, "busy: too many requests waiting, retry later"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_is_retryable_and_appended_so_older_answers_encode_as_before() {
        assert!(Reject::Busy.is_retryable());
        assert!(!Reject::Invalid { reason: String::new() }.is_retryable());
        let encode = |reject: &Reject| postcard::to_allocvec(reject).expect("encodes");
        assert_eq!(encode(&Reject::NotLeader { hint: Some(NodeId(3)) }), [0, 1, 3]);
        assert_eq!(encode(&Reject::SessionExpired), [1]);
        assert_eq!(encode(&Reject::Superseded), [2]);
        assert_eq!(encode(&Reject::Busy), [4]);
        assert_eq!(Reject::Busy.to_string(), "busy: too many requests waiting, retry later");
    }
}
