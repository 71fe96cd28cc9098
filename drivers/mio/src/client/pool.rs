//! Many sessions over one connection per node: a mio poll, a link to each address, and a
//! [`Clerk`] per session. The blocking [`Client`](crate::Client) runs one session; the
//! benchmark runs hundreds on one thread.
//!
//! The clerks name nodes by their position in the address list; each node's `Welcome` tells
//! which node id an address has, so that a "not the leader, try node 3" hint can be followed.
//! A link that fails answers for the node: every session waiting on it gets "not the leader,
//! leader unknown", which makes its clerk retry elsewhere, safely, with the same request id.
//! A hint that names a node the pool has no address of (one added to the cluster since the
//! pool connected) makes it ask the hinting node for its status, whose membership gives the
//! addresses of every member.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use raftkv_core::client::{Clerk, ClerkConfig, ClerkError, ClerkInput, ClerkOutput};
use raftkv_core::kv::{KvCommand, KvReply};
use raftkv_core::protocol::{ClientReply, ClientRequest, Outcome, Reject};
use raftkv_core::{Instant, NodeId, RequestId};

use crate::client::pool_error::PoolError;
use crate::clock::{Clock, core_duration};
use crate::conn::{Conn, ReadOutcome, ReadUntil};
use crate::frame::MAX_FRAME_BYTES;
use crate::tls::ClientTls;
use crate::tls::identity::named_nodes;
use crate::transport::Transport;
use crate::wire::{
    AdminAnswer, AdminRequest, ClientFrame, Hello, HelloRole, MAGIC, NodeStatus, PROTOCOL_VERSION,
    ServerFrame, Welcome,
};

/// A node's address and its state, or why it did not answer (see
/// [`Client::status`](crate::Client::status)).
pub type AddressStatus = (String, Result<NodeStatus, String>);

/// Tokens from this one on belong to sockets the pool's owner registered on its poll
/// ([`ClerkPool::registry`]); the pool hands their events back ([`ClerkPool::take_foreign_events`]).
pub(crate) const FOREIGN_TOKENS: usize = usize::MAX / 2;

/// After the first node accepts, how long `connect` waits for the other addresses.
const CONNECT_GRACE: raftkv_core::Duration = raftkv_core::Duration::from_millis(50);

/// Readiness of a socket the pool's owner registered.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ForeignEvent {
    /// Its token (at least [`FOREIGN_TOKENS`]).
    pub(crate) token: Token,
    /// It may be read (or has failed or closed: a read tells).
    pub(crate) readable: bool,
    /// It may be written.
    pub(crate) writable: bool,
    /// The other side closed or the socket failed: only a read until "would block" finds it.
    pub(crate) read_closed: bool,
}

/// An operation a session finished.
#[derive(Debug)]
pub(crate) struct Finished {
    /// The session.
    pub(crate) session: usize,
    /// Its result.
    pub(crate) result: Result<KvReply, ClerkError>,
}

#[derive(Debug)]
enum LinkState {
    Down,
    Connecting(Conn),
    Up(Conn),
    /// The node the pool runs in: requests go straight to its replica, through the pool's
    /// owner ([`ClerkPool::take_local_requests`], [`ClerkPool::local_reply`]).
    Local,
}

/// The connection to one node.
#[derive(Debug)]
struct Link {
    address: String,
    resolved: SocketAddr,
    state: LinkState,
    /// The node id it announced.
    node: Option<NodeId>,
    /// The last thing that went wrong, for error messages.
    last_error: Option<String>,
    /// Status answer, for `status`.
    status: Option<NodeStatus>,
    /// Answer to an operator's request, for `ask`.
    admin: Option<AdminAnswer>,
}

impl Link {
    fn new(address: String, resolved: SocketAddr) -> Link {
        Link {
            address,
            resolved,
            state: LinkState::Down,
            node: None,
            last_error: None,
            status: None,
            admin: None,
        }
    }
}

/// What taking the next frame of a link did.
enum FrameOutcome {
    /// Handled a frame; there may be more.
    Handled,
    /// No complete frame is left.
    NoneLeft,
    /// The link failed and is closed.
    LinkFailed,
}

/// One session.
struct Session {
    clerk: Clerk<KvCommand, KvReply>,
    /// The link and request of its last send: if that link fails, the request needs an answer.
    waiting_on: Option<(usize, RequestId)>,
    /// Its name in frames; answers carry it back.
    tag: u32,
    /// The clerk's timeout, as `timers` holds it.
    armed: Option<Instant>,
}

/// Sessions and their connections.
pub(crate) struct ClerkPool {
    poll: Poll,
    events: Events,
    clock: Clock,
    hello: Hello,
    /// TLS for every link, or `None` in the clear.
    tls: Option<ClientTls>,
    links: Vec<Link>,
    /// Node id announced by a link -> its position.
    positions: BTreeMap<NodeId, usize>,
    /// Members named by the nodes' welcomes, not yet given links.
    members: Vec<(NodeId, String)>,
    /// The link asked for its status to learn the members, until it answers or fails.
    learning_members_from: Option<usize>,
    sessions: Vec<Session>,
    /// Session by tag.
    tags: HashMap<u32, usize>,
    next_tag: u32,
    /// Sessions with outputs to drain.
    touched: Vec<usize>,
    /// Links with requests queued since the last turn.
    unflushed: Vec<usize>,
    /// Links that failed this turn.
    failed: Vec<usize>,
    /// Each session's armed timeout, earliest first: one entry per session at most.
    timers: BTreeSet<(Instant, usize)>,
    /// Requests for the local node, with their tags, for the owner to hand to its replica.
    local_requests: Vec<(u32, ClientRequest<KvCommand>)>,
    /// The last wait found as many events as it could take: more may be ready.
    saturated: bool,
    finished: std::collections::VecDeque<Finished>,
    /// Events of sockets the owner registered, for it to handle.
    foreign: Vec<ForeignEvent>,
    seed: u64,
}

impl ClerkPool {
    /// A pool for the nodes at `addresses` of cluster `cluster`; connects lazily.
    pub(crate) fn new(
        addresses: &[String],
        cluster: &str,
        tls: Option<ClientTls>,
    ) -> Result<ClerkPool, PoolError> {
        if addresses.is_empty() {
            return Err(PoolError::NoAddress);
        }
        let mut links = Vec::new();
        for address in addresses {
            let resolved = address
                .to_socket_addrs()
                .map_err(|source| PoolError::Unresolvable { address: address.clone(), source })?
                .next()
                .ok_or_else(|| PoolError::ResolvesToNothing { address: address.clone() })?;
            links.push(Link::new(address.clone(), resolved));
        }
        let poll = Poll::new().map_err(PoolError::CreatePoll)?;
        let clock = Clock::new();
        Ok(ClerkPool {
            poll,
            events: Events::with_capacity(256),
            hello: Hello {
                magic: MAGIC,
                version: PROTOCOL_VERSION,
                cluster: cluster.to_string(),
                role: HelloRole::Client,
            },
            tls,
            links,
            positions: BTreeMap::new(),
            members: Vec::new(),
            learning_members_from: None,
            sessions: Vec::new(),
            tags: HashMap::new(),
            next_tag: 1,
            touched: Vec::new(),
            unflushed: Vec::new(),
            failed: Vec::new(),
            timers: BTreeSet::new(),
            local_requests: Vec::new(),
            saturated: false,
            finished: std::collections::VecDeque::new(),
            foreign: Vec::new(),
            seed: clock.now().as_nanos(),
            clock,
        })
    }

    /// Opens a new session; returns its number.
    pub(crate) fn add_session(&mut self) -> usize {
        let session = self.sessions.len();
        let fresh = self.fresh_session(session);
        self.sessions.push(fresh);
        session
    }

    /// Abandons whatever session `session` was doing and starts it afresh, with a new tag so
    /// that late answers to the old one cannot be mistaken for answers to the new one.
    /// Whether `session`'s operation in flight was last answered "busy".
    pub(crate) fn session_busy(&self, session: usize) -> bool {
        self.sessions[session].clerk.last_answer_busy()
    }

    pub(crate) fn reset_session(&mut self, session: usize) {
        self.tags.remove(&self.sessions[session].tag);
        if let Some(at) = self.sessions[session].armed {
            self.timers.remove(&(at, session));
        }
        self.sessions[session] = self.fresh_session(session);
        self.finished.retain(|finished| finished.session != session);
    }

    fn fresh_session(&mut self, session: usize) -> Session {
        let tag = self.next_tag;
        self.next_tag = self.next_tag.wrapping_add(1);
        self.tags.insert(tag, session);
        Session { clerk: self.new_clerk(), waiting_on: None, tag, armed: None }
    }

    fn new_clerk(&mut self) -> Clerk<KvCommand, KvReply> {
        let servers = (0..self.links.len() as u64).map(NodeId).collect();
        let mut config = ClerkConfig::new(servers);
        self.seed = self.seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        config.seed = self.seed;
        Clerk::new(config)
    }

    /// Queues `command` in `session`.
    pub(crate) fn submit(&mut self, session: usize, command: KvCommand) {
        let now = self.clock.now();
        self.sessions[session].clerk.submit(now, command);
        self.touched.push(session);
        self.drain();
    }

    /// Runs until an operation finishes or `timeout` passes.
    pub(crate) fn next_finished(&mut self, timeout: Duration) -> io::Result<Option<Finished>> {
        let deadline = self.clock.now() + core_duration(timeout);
        loop {
            if let Some(finished) = self.finished.pop_front() {
                return Ok(Some(finished));
            }
            let now = self.clock.now();
            if now >= deadline {
                return Ok(None);
            }
            self.turn(now, deadline)?;
        }
    }

    /// Waits for events until `timeout` passes or something happens, and handles those of the
    /// links: a turn of the loop of an owner that also has sockets of its own on the poll.
    pub(crate) fn wait(&mut self, timeout: Duration) -> io::Result<()> {
        let now = self.clock.now();
        self.turn(now, now + core_duration(timeout))
    }

    /// Whether the last wait took as many events as it could: more may be ready, so the
    /// owner should wait again without sleeping.
    pub(crate) fn saturated(&self) -> bool {
        self.saturated
    }

    /// How long until a session's timer is due, if one is armed.
    pub(crate) fn next_timer_in(&self) -> Option<Duration> {
        let (at, _) = self.timers.first()?;
        Some(Clock::until(self.clock.now(), *at))
    }

    /// Makes link `position` the node the pool runs in, `node`: its sessions' requests wait in
    /// [`ClerkPool::take_local_requests`] instead of crossing a socket.
    pub(crate) fn serve_locally(&mut self, position: usize, node: NodeId) {
        let link = &mut self.links[position];
        link.state = LinkState::Local;
        link.node = Some(node);
        self.positions.insert(node, position);
    }

    /// The requests the sessions sent to the local node since the last call, by tag.
    pub(crate) fn take_local_requests(&mut self) -> Vec<(u32, ClientRequest<KvCommand>)> {
        std::mem::take(&mut self.local_requests)
    }

    /// Whether requests for the local node wait to be taken.
    pub(crate) fn has_local_requests(&self) -> bool {
        !self.local_requests.is_empty()
    }

    /// The local node's reply to the request tagged `tag`.
    pub(crate) fn local_reply(&mut self, tag: u32, reply: ClientReply<KvReply>) {
        let Some(position) =
            self.links.iter().position(|link| matches!(link.state, LinkState::Local))
        else {
            return;
        };
        if let Some(&session) = self.tags.get(&tag) {
            let now = self.clock.now();
            self.on_reply(position, session, reply, now);
            self.drain();
        }
    }

    /// Sends what the sessions queued for other nodes, one write per link.
    pub(crate) fn flush_queued(&mut self) {
        let now = self.clock.now();
        while !self.unflushed.is_empty() {
            for position in std::mem::take(&mut self.unflushed) {
                self.flush(position);
            }
            self.handle_failures(now);
            self.drain();
        }
    }

    /// The poll, to register sockets of the owner's with tokens from [`FOREIGN_TOKENS`] on.
    pub(crate) fn registry(&self) -> &mio::Registry {
        self.poll.registry()
    }

    /// Events of the owner's sockets since the last call.
    pub(crate) fn take_foreign_events(&mut self) -> Vec<ForeignEvent> {
        std::mem::take(&mut self.foreign)
    }

    /// The next operation a session finished, if any.
    pub(crate) fn pop_finished(&mut self) -> Option<Finished> {
        self.finished.pop_front()
    }

    /// Dials every address and waits until one node accepts (and the others had a moment to),
    /// or `timeout` passes. Then adds the members the nodes named that no address reached,
    /// so that sessions opened afterwards can find the leader anywhere. Returns whether a node
    /// accepted.
    pub(crate) fn connect(&mut self, timeout: Duration) -> io::Result<bool> {
        let now = self.clock.now();
        let deadline = now + core_duration(timeout);
        for link in 0..self.links.len() {
            self.ensure_dialed(link);
        }
        self.handle_failures(now);
        let mut grace_end = None;
        loop {
            let now = self.clock.now();
            let settled = self
                .links
                .iter()
                .all(|link| link.node.is_some() || matches!(link.state, LinkState::Down));
            if settled || now >= deadline || grace_end.is_some_and(|end| now >= end) {
                break;
            }
            if grace_end.is_none() && self.links.iter().any(|link| link.node.is_some()) {
                grace_end = Some(now + CONNECT_GRACE);
            }
            self.turn(now, grace_end.unwrap_or(deadline).min(deadline))?;
        }
        if !self.links.iter().any(|link| link.node.is_some()) {
            return Ok(false);
        }
        let members = std::mem::take(&mut self.members);
        self.add_members(members);
        Ok(true)
    }

    /// Gives a link to each of `members` the pool has none for.
    fn add_members(&mut self, members: Vec<(NodeId, String)>) {
        for (node, address) in members {
            if self.positions.contains_key(&node) {
                continue;
            }
            // An address that does not resolve here is left out; the others still work. One
            // that a link dials already (a node that did not answer) gets no second link.
            let resolved = address.to_socket_addrs().ok().and_then(|mut a| a.next());
            if let Some(resolved) = resolved.filter(|resolved| {
                !self.links.iter().any(|link| link.resolved == *resolved || link.address == address)
            }) {
                self.positions.insert(node, self.links.len());
                self.links.push(Link::new(address, resolved));
            }
        }
    }

    /// Asks the node of link `position` for its status, to learn the members from it; one
    /// such question at a time.
    fn learn_members_from(&mut self, position: usize) {
        if self.learning_members_from.is_some() {
            return;
        }
        if let LinkState::Up(conn) = &mut self.links[position].state {
            conn.send(&ClientFrame::Status { tag: 0 });
            self.unflushed.push(position);
            self.learning_members_from = Some(position);
        }
    }

    /// The nodes that answered, and the members they named, with their addresses.
    pub(crate) fn members(&self) -> Vec<(NodeId, String)> {
        self.positions
            .iter()
            .map(|(&node, &position)| (node, self.links[position].address.clone()))
            .collect()
    }

    /// Asks every node for its status; waits until all answered, failed, or `timeout` passed.
    pub(crate) fn statuses(&mut self, timeout: Duration) -> io::Result<Vec<AddressStatus>> {
        let now = self.clock.now();
        let deadline = now + core_duration(timeout);
        for position in 0..self.links.len() {
            self.links[position].status = None;
            self.ensure_dialed(position);
            if let LinkState::Connecting(conn) | LinkState::Up(conn) =
                &mut self.links[position].state
            {
                conn.send(&ClientFrame::Status { tag: 0 });
            }
            self.flush(position);
        }
        self.handle_failures(now);
        loop {
            let pending = self
                .links
                .iter()
                .any(|link| link.status.is_none() && !matches!(link.state, LinkState::Down));
            let now = self.clock.now();
            if !pending || now >= deadline {
                break;
            }
            self.turn(now, deadline)?;
        }
        Ok(self
            .links
            .iter_mut()
            .map(|link| {
                let result = link.status.take().ok_or_else(|| {
                    link.last_error.clone().unwrap_or_else(|| "no answer in time".to_string())
                });
                (link.address.clone(), result)
            })
            .collect())
    }

    /// Sends an operator's request to node `node`; waits until it answers, its link fails,
    /// or `timeout` passes (then the error says why).
    pub(crate) fn ask(
        &mut self,
        node: NodeId,
        request: AdminRequest,
        timeout: Duration,
    ) -> io::Result<Result<AdminAnswer, String>> {
        let Some(&position) = self.positions.get(&node) else {
            return Ok(Err(format!("no address of node {node} is known")));
        };
        let now = self.clock.now();
        let deadline = now + core_duration(timeout);
        self.links[position].admin = None;
        self.ensure_dialed(position);
        if let LinkState::Connecting(conn) | LinkState::Up(conn) = &mut self.links[position].state {
            conn.send(&ClientFrame::Admin { tag: 0, request });
        }
        self.flush(position);
        self.handle_failures(now);
        loop {
            let link = &mut self.links[position];
            if let Some(answer) = link.admin.take() {
                return Ok(Ok(answer));
            }
            if matches!(link.state, LinkState::Down) {
                let problem = link.last_error.clone().unwrap_or_else(|| "link down".to_string());
                return Ok(Err(problem));
            }
            let now = self.clock.now();
            if now >= deadline {
                return Ok(Err("no answer in time".to_string()));
            }
            self.turn(now, deadline)?;
        }
    }

    /// One line per address saying what went wrong with it last, for error messages.
    pub(crate) fn describe_links(&self) -> String {
        self.links
            .iter()
            .map(|link| {
                let state = match (&link.last_error, &link.state) {
                    (Some(error), _) => error.clone(),
                    (None, LinkState::Up(_)) => "connected".to_string(),
                    (None, _) => "no answer".to_string(),
                };
                format!("{}: {state}", link.address)
            })
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// Sends what the sessions queued, waits for events until `deadline` or the next session
    /// timeout, and handles them.
    fn turn(&mut self, now: Instant, deadline: Instant) -> io::Result<()> {
        // Everything queued since the last turn goes out in one write per link; a link that
        // fails here makes its sessions back off, which may set earlier timers.
        self.flush_queued();
        let wake_at = match self.timers.first() {
            Some((at, _)) => (*at).min(deadline),
            None => deadline,
        };
        let timeout = Clock::until(now, wake_at);
        match self.poll.poll(&mut self.events, Some(timeout)) {
            Ok(()) => {}
            Err(error) if error.kind() == io::ErrorKind::Interrupted => return Ok(()),
            Err(error) => return Err(error),
        }
        let now = self.clock.now();
        let mut ready = Vec::new();
        self.saturated = self.events.iter().count() >= self.events.capacity();
        for event in self.events.iter() {
            if event.token().0 >= FOREIGN_TOKENS {
                // Errors and hang-ups surface at the next read.
                self.foreign.push(ForeignEvent {
                    token: event.token(),
                    readable: event.is_readable() || event.is_error() || event.is_read_closed(),
                    writable: event.is_writable(),
                    read_closed: event.is_read_closed() || event.is_error(),
                });
            } else {
                // A closed stream raises no later event: that read goes on until "would block".
                let closed = event.is_read_closed() || event.is_error();
                let until = if closed { ReadUntil::WouldBlock } else { ReadUntil::ShortRead };
                ready.push((event.token().0, until));
            }
        }
        for (position, until) in ready {
            self.on_link_event(position, until, now);
        }
        while let Some(&(at, session)) = self.timers.first() {
            if at > now {
                break;
            }
            self.timers.pop_first();
            self.sessions[session].armed = None;
            let clerk = &mut self.sessions[session].clerk;
            if clerk.poll_timeout().is_some_and(|due| due <= now) {
                clerk.handle(now, ClerkInput::Timeout);
            }
            // Draining arms its next timeout.
            self.touched.push(session);
        }
        self.handle_failures(now);
        self.drain();
        Ok(())
    }

    /// Carries out what touched sessions want, until nothing more happens.
    fn drain(&mut self) {
        while !self.touched.is_empty() {
            let touched = std::mem::take(&mut self.touched);
            for session in touched {
                while let Some(output) = self.sessions[session].clerk.poll_output() {
                    match output {
                        ClerkOutput::Send { to, request } => {
                            let position = to.0 as usize;
                            self.sessions[session].waiting_on = Some((position, request.request));
                            self.ensure_dialed(position);
                            let tag = self.sessions[session].tag;
                            match &mut self.links[position].state {
                                LinkState::Connecting(conn) | LinkState::Up(conn) => {
                                    conn.send(&ClientFrame::Request { tag, request });
                                    self.unflushed.push(position);
                                }
                                LinkState::Local => self.local_requests.push((tag, request)),
                                LinkState::Down => {}
                            }
                        }
                        ClerkOutput::Finished { result, .. } => {
                            self.sessions[session].waiting_on = None;
                            self.finished.push_back(Finished { session, result });
                        }
                    }
                }
                let target = &mut self.sessions[session];
                let due = target.clerk.poll_timeout();
                if due != target.armed {
                    if let Some(old) = std::mem::replace(&mut target.armed, due) {
                        self.timers.remove(&(old, session));
                    }
                    if let Some(at) = due {
                        self.timers.insert((at, session));
                    }
                }
            }
            let now = self.clock.now();
            self.handle_failures(now);
        }
    }

    /// Dials a link that is down.
    fn ensure_dialed(&mut self, position: usize) {
        let link = &mut self.links[position];
        if !matches!(link.state, LinkState::Down) {
            return;
        }
        let dialed = TcpStream::connect(link.resolved).and_then(|stream| {
            let transport = match &self.tls {
                None => Transport::plain(stream),
                Some(tls) => Transport::tls(stream, tls.dial().map_err(io::Error::other)?),
            };
            let mut conn = Conn::new(transport, MAX_FRAME_BYTES);
            self.poll.registry().register(
                conn.stream_mut(),
                Token(position),
                Interest::READABLE | Interest::WRITABLE,
            )?;
            conn.send(&self.hello);
            Ok(conn)
        });
        match dialed {
            Ok(conn) => link.state = LinkState::Connecting(conn),
            Err(error) => self.fail(position, format!("cannot connect: {error}")),
        }
    }

    fn flush(&mut self, position: usize) {
        if let LinkState::Up(conn) = &mut self.links[position].state {
            if let Err(error) = conn.flush() {
                self.fail(position, format!("cannot send: {error}"));
            }
        }
    }

    /// Handles a readiness event of link `position`: finishes its connect, writes what is
    /// queued, then reads the node's welcome and answers, as far as `until` says.
    fn on_link_event(&mut self, position: usize, until: ReadUntil, now: Instant) {
        let Some(link) = self.links.get_mut(position) else {
            return;
        };
        if matches!(link.state, LinkState::Connecting(_)) && !self.finish_connect(position) {
            return;
        }
        self.flush(position);
        let LinkState::Up(conn) = &mut self.links[position].state else {
            return;
        };
        let state = conn.read_all(until);
        loop {
            let outcome = if self.links[position].node.is_none() {
                self.take_welcome(position)
            } else {
                self.take_answer(position, now)
            };
            match outcome {
                FrameOutcome::Handled => {}
                FrameOutcome::NoneLeft => break,
                FrameOutcome::LinkFailed => return,
            }
        }
        match state {
            Ok(ReadOutcome::Drained | ReadOutcome::Budget) => {}
            Ok(ReadOutcome::Closed) => {
                let reason = self.closed_reason(position);
                self.fail(position, reason);
            }
            Err(error) => self.fail(position, format!("connection lost: {error}")),
        }
    }

    /// Why link `position` closed, as far as the client can tell. A node that closes a plain
    /// connection before its welcome most likely expects TLS: say so, or the user is left with
    /// "connection closed" and no clue.
    fn closed_reason(&self, position: usize) -> String {
        if self.links[position].node.is_none() && self.tls.is_none() {
            "connection closed before the node's welcome (if the cluster uses TLS, give the \
             client its CA, certificate and key: --tls-ca/--tls-cert/--tls-key or \
             RAFTKV_TLS_CA/RAFTKV_TLS_CERT/RAFTKV_TLS_KEY)"
                .to_string()
        } else {
            "connection closed".to_string()
        }
    }

    /// Whether the connect of link `position` finished; if it did, the link is up. A connect
    /// that failed fails the link.
    fn finish_connect(&mut self, position: usize) -> bool {
        let link = &mut self.links[position];
        let LinkState::Connecting(conn) = &link.state else {
            return false;
        };
        match conn.connect_result() {
            Ok(true) => {
                let LinkState::Connecting(conn) =
                    std::mem::replace(&mut link.state, LinkState::Down)
                else {
                    unreachable!("matched Connecting above")
                };
                link.state = LinkState::Up(conn);
                true
            }
            Ok(false) => false,
            Err(error) => {
                self.fail(position, format!("cannot connect: {error}"));
                false
            }
        }
    }

    /// Takes the `Welcome` with which the node of link `position` names itself and the
    /// cluster's members, if it has arrived.
    fn take_welcome(&mut self, position: usize) -> FrameOutcome {
        let LinkState::Up(conn) = &mut self.links[position].state else {
            return FrameOutcome::LinkFailed;
        };
        let certified = match conn.peer_certificates() {
            Some(chain) => chain.first().map(named_nodes).unwrap_or_default(),
            None => Vec::new(),
        };
        match conn.next_frame::<Welcome>() {
            Ok(Some(Welcome::Accepted { node, .. }))
                if self.tls.is_some() && !certified.contains(&node) =>
            {
                let reason = format!("answered as node {node} with a certificate of {certified:?}");
                self.fail(position, reason);
                FrameOutcome::LinkFailed
            }
            Ok(Some(Welcome::Accepted { node, members })) => {
                self.members.extend(members);
                self.links[position].node = Some(node);
                self.links[position].last_error = None;
                self.positions.insert(node, position);
                FrameOutcome::Handled
            }
            Ok(Some(Welcome::Refused { reason })) => {
                self.fail(position, format!("refused: {reason}"));
                FrameOutcome::LinkFailed
            }
            Ok(None) => FrameOutcome::NoneLeft,
            Err(error) => {
                self.fail(position, format!("bad answer: {error}"));
                FrameOutcome::LinkFailed
            }
        }
    }

    /// Takes the next answer received on link `position`: a reply to a session or a status.
    fn take_answer(&mut self, position: usize, now: Instant) -> FrameOutcome {
        let LinkState::Up(conn) = &mut self.links[position].state else {
            return FrameOutcome::LinkFailed;
        };
        match conn.next_frame::<ServerFrame>() {
            Ok(Some(ServerFrame::Reply { tag, reply })) => {
                if let Some(&session) = self.tags.get(&tag) {
                    self.on_reply(position, session, reply, now);
                }
                FrameOutcome::Handled
            }
            Ok(Some(ServerFrame::Status { status, .. })) => {
                if self.learning_members_from == Some(position) {
                    self.learning_members_from = None;
                    self.add_members(status.membership.addresses.clone());
                }
                self.links[position].status = Some(*status);
                FrameOutcome::Handled
            }
            Ok(Some(ServerFrame::Admin { answer, .. })) => {
                self.links[position].admin = Some(answer);
                FrameOutcome::Handled
            }
            Ok(None) => FrameOutcome::NoneLeft,
            Err(error) => {
                self.fail(position, format!("bad answer: {error}"));
                FrameOutcome::LinkFailed
            }
        }
    }

    fn on_reply(
        &mut self,
        position: usize,
        session: usize,
        mut reply: ClientReply<KvReply>,
        now: Instant,
    ) {
        if let Outcome::Rejected(Reject::NotLeader { hint }) = &mut reply.outcome {
            if hint.is_some_and(|node| !self.positions.contains_key(&node)) {
                self.learn_members_from(position);
            }
            // The clerk knows nodes by position in the address list.
            *hint = hint.and_then(|node| self.positions.get(&node).map(|&p| NodeId(p as u64)));
        }
        let Some(target) = self.sessions.get_mut(session) else {
            return;
        };
        if target.waiting_on.is_some_and(|(_, request)| request == reply.request) {
            target.waiting_on = None;
        }
        let from = NodeId(position as u64);
        target.clerk.handle(now, ClerkInput::Reply { from, reply });
        self.touched.push(session);
    }

    /// Closes a link; its sessions hear "not the leader" at the next `handle_failures`.
    fn fail(&mut self, position: usize, error: String) {
        let link = &mut self.links[position];
        if let LinkState::Connecting(mut conn) | LinkState::Up(mut conn) =
            std::mem::replace(&mut link.state, LinkState::Down)
        {
            let _ = self.poll.registry().deregister(conn.stream_mut());
        }
        link.last_error = Some(error);
        link.node = None;
        self.failed.push(position);
        if self.learning_members_from == Some(position) {
            self.learning_members_from = None;
        }
    }

    /// Answers, for each failed link, every request still waiting on it.
    fn handle_failures(&mut self, now: Instant) {
        for position in std::mem::take(&mut self.failed) {
            for (session, target) in self.sessions.iter_mut().enumerate() {
                let Some((waiting, request)) = target.waiting_on else {
                    continue;
                };
                if waiting != position {
                    continue;
                }
                target.waiting_on = None;
                let reply = ClientReply {
                    request,
                    outcome: Outcome::Rejected(Reject::NotLeader { hint: None }),
                };
                let from = NodeId(position as u64);
                target.clerk.handle(now, ClerkInput::Reply { from, reply });
                self.touched.push(session);
            }
        }
    }
}
