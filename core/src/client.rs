//! The client (`Clerk`): finds the leader, retries with backoff, and keeps a request's id across
//! retries so that the replicas apply it exactly once.

use core::fmt;
use std::collections::VecDeque;

use crate::ids::{ClientId, NodeId, RequestId};
use crate::prng::Prng;
use crate::protocol::{ClientReply, ClientRequest, Op, Outcome, Reject};
use crate::time::{Duration, Instant};

/// Settings of a clerk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClerkConfig {
    /// The replicas, in the order to try them. A replica named as the leader by another that
    /// the clerk does not know (one added to the cluster since) is added at the end.
    pub servers: Vec<NodeId>,
    /// How long to wait for an answer before trying the next replica. Default 1000 ms: above
    /// an election, so a request is not sent around while a new leader is chosen anyway.
    pub request_timeout_ms: u64,
    /// First backoff after a failed attempt. Default 5 ms.
    pub backoff_ms_min: u64,
    /// Backoff cap; the backoff doubles up to it. Default 500 ms.
    pub backoff_ms_max: u64,
    /// Seed of the jitter.
    pub seed: u64,
}

impl ClerkConfig {
    /// Defaults for a cluster of `servers`.
    pub fn new(servers: Vec<NodeId>) -> ClerkConfig {
        ClerkConfig {
            servers,
            request_timeout_ms: 1_000,
            backoff_ms_min: 5,
            backoff_ms_max: 500,
            seed: 0,
        }
    }
}

/// An event fed to a clerk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClerkInput<R> {
    /// A replica answered.
    Reply {
        /// The replica.
        from: NodeId,
        /// Its answer.
        reply: ClientReply<R>,
    },
    /// The instant of `poll_timeout` has come.
    Timeout,
}

/// Something a clerk wants done, or an operation it finished.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClerkOutput<C, R> {
    /// Send this request to replica `to`.
    Send {
        /// The replica.
        to: NodeId,
        /// The request.
        request: ClientRequest<C>,
    },
    /// The operation submitted as `request` finished.
    Finished {
        /// The id `submit` returned.
        request: RequestId,
        /// Its reply, or why there is none.
        result: Result<R, ClerkError>,
    },
}

/// Why an operation finished without a reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClerkError {
    /// The command can never succeed; it was not applied.
    Invalid {
        /// Why, as the replica said.
        reason: String,
    },
    /// The command was retried, and then refused: its session expired, or a replica found it
    /// invalid against a state that an earlier try may have changed (an append it grew). It
    /// may or may not have taken effect, once at most. Read to find out.
    Indeterminate,
}

impl fmt::Display for ClerkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClerkError::Invalid { reason } => write!(f, "invalid request: {reason}"),
            ClerkError::Indeterminate => f.write_str(
                "refused after a retry (session expired, or invalid after an earlier try): the \
                 operation may or may not have taken effect",
            ),
        }
    }
}

impl std::error::Error for ClerkError {}

/// The operation being sent, and where it stands.
#[derive(Clone, Debug)]
struct Attempt<C> {
    /// The id `submit` returned, which `Finished` carries.
    submitted: RequestId,
    /// The id on the wire. A command sent again in a new session gets a new one, so that
    /// answers to copies sent in the old session (a late duplicate saying that session expired)
    /// cannot be taken for answers about the new one.
    request: RequestId,
    op: Op<C>,
    /// Index into `servers` of the replica asked.
    target: usize,
    /// When to give up on the replica asked and try the next.
    deadline: Instant,
    /// While backing off: when to send again.
    resend_at: Option<Instant>,
    /// Whether an earlier try may have been applied (it timed out or hit a stepping-down
    /// leader): then a session expiry, or an invalid answer, leaves the outcome unknown.
    maybe_applied: bool,
    /// Hints followed at once in a row; past a few, replicas that point at each other (a
    /// leadership change under way) are asked again only after a backoff.
    redirects: u32,
    /// Whether the last answer was "busy": kept across the resend, so that a caller giving up
    /// can tell an overloaded cluster from an unreachable one.
    last_answer_busy: bool,
}

/// Hints followed without waiting, in a row.
const MAX_IMMEDIATE_REDIRECTS: u32 = 2;

/// A client of a replicated state machine, one operation at a time, in submission order.
///
/// Calling order: [`submit`](Self::submit) operations, feed replies and timeouts with
/// [`handle`](Self::handle), drain [`poll_output`](Self::poll_output) after each call, and call
/// `handle(now, ClerkInput::Timeout)` at [`poll_timeout`](Self::poll_timeout).
///
/// The driver carries each `Send` to its replica (as `server::Input::Request`) and each reply
/// back (as `ClerkInput::Reply`). Here the replicas' answers are written by hand:
///
/// ```
/// use raftkv_core::client::{Clerk, ClerkConfig, ClerkInput, ClerkOutput};
/// use raftkv_core::kv::{KvCommand, KvReply};
/// use raftkv_core::protocol::{ClientReply, ClientRequest, Op, Outcome, Reject};
/// use raftkv_core::{ClientId, Instant, NodeId};
///
/// let mut clerk = Clerk::new(ClerkConfig::new(vec![NodeId(1), NodeId(2)]));
/// let sent = |clerk: &mut Clerk<KvCommand, KvReply>| match clerk.poll_output() {
///     Some(ClerkOutput::Send { to, request }) => (to, request),
///     other => panic!("expected a request, got {other:?}"),
/// };
/// let now = Instant::ZERO;
/// let put = clerk.submit(now, KvCommand::Put { key: b"x".to_vec(), value: b"1".to_vec() });
///
/// // It opens a session first, at the first server, which points to the leader.
/// let (to, register) = sent(&mut clerk);
/// assert_eq!((to, &register.op), (NodeId(1), &Op::Register));
/// let outcome = Outcome::Rejected(Reject::NotLeader { hint: Some(NodeId(2)) });
/// let reply = ClientReply { request: register.request, outcome };
/// clerk.handle(now, ClerkInput::Reply { from: NodeId(1), reply });
/// let (to, register) = sent(&mut clerk);
/// assert_eq!(to, NodeId(2));
/// let outcome = Outcome::Registered { client: ClientId(7) };
/// let reply = ClientReply { request: register.request, outcome };
/// clerk.handle(now, ClerkInput::Reply { from: NodeId(2), reply });
///
/// // Then the put, in that session. No answer comes: at its timeout the clerk backs off,
/// // then sends the very same request (same id: applied at most once) to the next server.
/// let (to, request) = sent(&mut clerk);
/// assert_eq!((to, request.client), (NodeId(2), ClientId(7)));
/// let retry = loop {
///     let at = clerk.poll_timeout().unwrap();
///     clerk.handle(at, ClerkInput::Timeout);
///     if let Some(output) = clerk.poll_output() {
///         break output;
///     }
/// };
/// let ClerkOutput::Send { to, request: again } = retry else { panic!("{retry:?}") };
/// assert_eq!((to, again.clone()), (NodeId(1), request));
/// let reply = ClientReply { request: again.request, outcome: Outcome::Done(KvReply::Done) };
/// clerk.handle(now, ClerkInput::Reply { from: NodeId(1), reply });
/// let finished = clerk.poll_output();
/// assert_eq!(finished, Some(ClerkOutput::Finished { request: put, result: Ok(KvReply::Done) }));
/// ```
pub struct Clerk<C, R> {
    config: ClerkConfig,
    rng: Prng,
    client: Option<ClientId>,
    next_request: u64,
    /// Where the leader probably is: the last replica that served a request.
    leader: usize,
    queue: VecDeque<(RequestId, C)>,
    current: Option<Attempt<C>>,
    /// The highest id a command went out with: a command whose own id is not above it takes a
    /// new one, since a session only accepts growing ids.
    last_command_sent: RequestId,
    backoff_ms: u64,
    outbox: VecDeque<ClerkOutput<C, R>>,
}

impl<C: Clone, R> Clerk<C, R> {
    /// A clerk with no session yet; it opens one with its first operation.
    pub fn new(config: ClerkConfig) -> Clerk<C, R> {
        assert!(!config.servers.is_empty(), "a clerk needs at least one server");
        let rng = Prng::seeded(config.seed);
        let backoff_ms = config.backoff_ms_min;
        Clerk {
            config,
            rng,
            client: None,
            next_request: 1,
            leader: 0,
            queue: VecDeque::new(),
            current: None,
            last_command_sent: RequestId(0),
            backoff_ms,
            outbox: VecDeque::new(),
        }
    }

    /// Queues `command`; returns the id its `Finished` output will carry.
    pub fn submit(&mut self, now: Instant, command: C) -> RequestId {
        let request = self.take_request_id();
        self.queue.push_back((request, command));
        self.start_next(now);
        request
    }

    /// Feeds one event.
    pub fn handle(&mut self, now: Instant, input: ClerkInput<R>) {
        match input {
            ClerkInput::Reply { from, reply } => self.on_reply(now, from, reply),
            ClerkInput::Timeout => self.on_timeout(now),
        }
    }

    /// The next thing to do; `None` once drained.
    pub fn poll_output(&mut self) -> Option<ClerkOutput<C, R>> {
        self.outbox.pop_front()
    }

    /// When to call `handle(now, ClerkInput::Timeout)`.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.current.as_ref().map(|attempt| attempt.resend_at.unwrap_or(attempt.deadline))
    }

    /// The session, once open.
    pub fn client_id(&self) -> Option<ClientId> {
        self.client
    }

    /// Whether the operation in flight was last answered "busy" (and waits to be sent again).
    pub fn last_answer_busy(&self) -> bool {
        self.current.as_ref().is_some_and(|attempt| attempt.last_answer_busy)
    }

    /// Operations submitted and not finished (the one in flight included).
    pub fn pending(&self) -> usize {
        self.queue.len() + usize::from(self.current.as_ref().is_some_and(|a| is_command(&a.op)))
    }

    fn take_request_id(&mut self) -> RequestId {
        let id = RequestId(self.next_request);
        self.next_request += 1;
        id
    }

    fn start_next(&mut self, now: Instant) {
        if self.current.is_some() {
            return;
        }
        let (submitted, request, op) = match self.client {
            None if !self.queue.is_empty() => {
                let request = self.take_request_id();
                (request, request, Op::Register)
            }
            Some(_) => match self.queue.pop_front() {
                Some((submitted, command)) => {
                    let request = if submitted > self.last_command_sent {
                        submitted
                    } else {
                        self.take_request_id()
                    };
                    self.last_command_sent = request;
                    (submitted, request, Op::Command(command))
                }
                None => return,
            },
            None => return,
        };
        let attempt = Attempt {
            submitted,
            request,
            op,
            target: self.leader,
            deadline: now,
            resend_at: None,
            maybe_applied: false,
            redirects: 0,
            last_answer_busy: false,
        };
        self.current = Some(attempt);
        self.send(now);
    }

    fn send(&mut self, now: Instant) {
        let Some(attempt) = self.current.as_mut() else {
            return;
        };
        attempt.resend_at = None;
        attempt.deadline = now + Duration::from_millis(self.config.request_timeout_ms);
        let request = ClientRequest {
            client: self.client.unwrap_or(ClientId(0)),
            request: attempt.request,
            op: attempt.op.clone(),
        };
        let to = self.config.servers[attempt.target];
        self.outbox.push_back(ClerkOutput::Send { to, request });
    }

    /// Waits a jittered, growing backoff, then tries `target`.
    fn retry_later(&mut self, now: Instant, target: usize) {
        let wait_ms = self.rng.range_inclusive(self.backoff_ms / 2, self.backoff_ms);
        self.backoff_ms = (self.backoff_ms * 2).min(self.config.backoff_ms_max);
        if let Some(attempt) = self.current.as_mut() {
            attempt.target = target;
            attempt.resend_at = Some(now + Duration::from_millis(wait_ms));
            attempt.redirects = 0;
        }
    }

    /// Where `server` is among the servers; one the clerk did not know is added.
    fn server_index(&mut self, server: NodeId) -> usize {
        match self.config.servers.iter().position(|&known| known == server) {
            Some(index) => index,
            None => {
                self.config.servers.push(server);
                self.config.servers.len() - 1
            }
        }
    }

    fn next_server(&self, after: usize) -> usize {
        (after + 1) % self.config.servers.len()
    }

    fn finish(&mut self, now: Instant, result: Option<Result<R, ClerkError>>) {
        let Some(attempt) = self.current.take() else {
            return;
        };
        self.backoff_ms = self.config.backoff_ms_min;
        if let Some(result) = result {
            self.outbox.push_back(ClerkOutput::Finished { request: attempt.submitted, result });
        }
        self.start_next(now);
    }

    fn on_reply(&mut self, now: Instant, from: NodeId, reply: ClientReply<R>) {
        let Some(attempt) = self.current.as_mut() else {
            return;
        };
        let Some(from_index) = self.config.servers.iter().position(|&server| server == from) else {
            return;
        };
        if reply.request != attempt.request {
            return; // An answer to an earlier operation.
        }
        let backing_off = attempt.resend_at.is_some();
        if matches!(reply.outcome, Outcome::Rejected(_)) && !backing_off {
            attempt.last_answer_busy = matches!(reply.outcome, Outcome::Rejected(Reject::Busy));
        }
        match reply.outcome {
            // An answer is an answer, even from a replica we stopped waiting for.
            Outcome::Registered { client } if !is_command(&attempt.op) => {
                self.client = Some(client);
                self.leader = from_index;
                self.finish(now, None);
            }
            Outcome::Done(reply) if is_command(&attempt.op) => {
                self.leader = from_index;
                self.finish(now, Some(Ok(reply)));
            }
            Outcome::Registered { .. } | Outcome::Done(_) => {}
            // A rejection of a try we already gave up on changes nothing.
            Outcome::Rejected(_) if backing_off => {}
            Outcome::Rejected(Reject::NotLeader { hint }) => {
                attempt.maybe_applied = true;
                let hinted = hint.map(|hint| self.server_index(hint));
                let Some(attempt) = self.current.as_mut() else { return };
                match hinted {
                    // A fresh hint is worth following at once.
                    Some(target)
                        if target != from_index && attempt.redirects < MAX_IMMEDIATE_REDIRECTS =>
                    {
                        attempt.redirects += 1;
                        attempt.target = target;
                        self.send(now);
                    }
                    Some(target) if target != from_index => self.retry_later(now, target),
                    _ => self.retry_later(now, self.next_server(from_index)),
                }
            }
            Outcome::Rejected(Reject::SessionExpired) => {
                self.client = None;
                let attempt = self.current.take().expect("checked above");
                if attempt.maybe_applied {
                    self.outbox.push_back(ClerkOutput::Finished {
                        request: attempt.submitted,
                        result: Err(ClerkError::Indeterminate),
                    });
                } else if let Op::Command(command) = attempt.op {
                    // Never applied: run it again in a new session, under a new id.
                    self.queue.push_front((attempt.submitted, command));
                }
                self.start_next(now);
            }
            // A replica checks a command against the state it has applied, which an earlier try
            // may have changed: an append that grew a value past half the limit, valid once, is
            // invalid against the value it grew. Only a first try's refusal says it never ran.
            Outcome::Rejected(Reject::Invalid { .. }) if attempt.maybe_applied => {
                self.finish(now, Some(Err(ClerkError::Indeterminate)));
            }
            Outcome::Rejected(Reject::Invalid { reason }) => {
                self.finish(now, Some(Err(ClerkError::Invalid { reason })));
            }
            Outcome::Rejected(Reject::Superseded) => {}
            // Not applied, and the replica is fine: ask it again once it had time to drain.
            Outcome::Rejected(Reject::Busy) => self.retry_later(now, from_index),
        }
    }

    fn on_timeout(&mut self, now: Instant) {
        let Some(attempt) = self.current.as_mut() else {
            return;
        };
        match attempt.resend_at {
            Some(at) if now >= at => self.send(now),
            Some(_) => {}
            None if now >= attempt.deadline => {
                attempt.maybe_applied = true;
                attempt.last_answer_busy = false;
                let target = attempt.target;
                self.retry_later(now, self.next_server(target));
            }
            None => {}
        }
    }
}

fn is_command<C>(op: &Op<C>) -> bool {
    matches!(op, Op::Command(_))
}
