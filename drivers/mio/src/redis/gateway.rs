//! The Redis listener, a [`Front`] of the node's event loop: it accepts Redis clients and runs
//! their commands on the cluster through a pool of clerks, one session per connection, on one
//! poll that the event loop watches. A connection's commands go to the cluster in batches, one
//! request at a time (see [`pipeline`](crate::redis::pipeline)).
//!
//! A command goes to the leader wherever it is (the clerk finds it and retries, with the same
//! request id, across leader changes), so clients may connect to any node. When this node
//! leads, the request goes straight to its replica (the pool's link to this node is local);
//! otherwise over the pool's connection to the leader. The answers of a connection go out in
//! the order of its commands.

use std::collections::{HashMap, VecDeque};
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::time::{Duration, Instant};

use mio::net::TcpListener;
use mio::{Interest, Token};
use raftkv_core::kv::{KvCommand, KvReply};
use raftkv_core::protocol::{ClientReply, ClientRequest};
use tracing::{debug, error, warn};

use crate::client::pool::{ClerkPool, FOREIGN_TOKENS, ForeignEvent};
use crate::redis::RedisConfig;
use crate::redis::commands::{self, Action, ConnectionState, Settings};
use crate::redis::connection::{Connection, ReadError};
use crate::redis::cursors::Cursors;
use crate::redis::info::{ListenerFacts, info_text};
use crate::redis::pipeline::BatchLimits;
use crate::redis::refusals::{Refusal, Refusals};
use crate::redis::resp::{self, Reply};
use crate::server::{Front, FrontCounts};
use crate::tls::RedisTls;
use crate::transport::{ReadOutcome, ReadUntil, Transport};
use crate::wire::NodeStatus;

const LISTENER: Token = Token(FOREIGN_TOKENS);

/// How often waiting commands and idle connections are checked.
const SWEEP: Duration = Duration::from_millis(50);

/// Room a command's frame needs besides its keys and values.
const FRAME_OVERHEAD: usize = 4096;

/// What a TLS client that speaks in the clear is told before the connection closes.
const PLAINTEXT_REFUSED: &[u8] =
    b"-ERR this port speaks TLS: connect with TLS (redis-cli --tls --cacert CA.crt ...)\r\n";

pub(crate) struct Gateway {
    config: RedisConfig,
    pool: ClerkPool,
    listener: TcpListener,
    connections: HashMap<Token, Connection>,
    /// Connection by pool session.
    by_session: HashMap<usize, Token>,
    /// Sessions of closed connections, to reuse (fresh, with a new clerk).
    free_sessions: Vec<usize>,
    next_token: usize,
    next_client_id: u64,
    cursors: Cursors,
    settings: Settings,
    refusals: Refusals,
    /// TLS connections in the order accepted, while their handshake may be going on (at most
    /// `--max-pending-connections`).
    handshakes: VecDeque<Token>,
    /// Connections with answers to send or reads to resume.
    touched: Vec<Token>,
    /// When waiting commands and idle connections were last checked.
    last_sweep: Instant,
    /// Some connection waits for `INFO` (so that a turn without one looks at no connection).
    info_asked: bool,
    /// Requests sent to the cluster, and the commands they carried (for `INFO stats`).
    cluster_requests: u64,
    cluster_commands: u64,
}

impl Gateway {
    /// A gateway for `listener`, whose clerks reach the cluster through `pool`; the pool's
    /// link to this node becomes local.
    pub(crate) fn new(
        config: RedisConfig,
        mut listener: TcpListener,
        mut pool: ClerkPool,
    ) -> io::Result<Gateway> {
        pool.registry().register(&mut listener, LISTENER, Interest::READABLE)?;
        pool.serve_locally(config.own_position, config.own_id);
        let settings = Settings { password: config.password.clone() };
        Ok(Gateway {
            cursors: Cursors::new(config.scan_cursors),
            settings,
            config,
            pool,
            listener,
            connections: HashMap::new(),
            by_session: HashMap::new(),
            free_sessions: Vec::new(),
            next_token: FOREIGN_TOKENS + 1,
            next_client_id: 1,
            refusals: Refusals::default(),
            handshakes: VecDeque::new(),
            touched: Vec::new(),
            last_sweep: Instant::now(),
            info_asked: false,
            cluster_requests: 0,
            cluster_commands: 0,
        })
    }

    /// Encodes the answers of the requests the pool finished, and sends each connection's
    /// next.
    fn answer_finished(&mut self) {
        while let Some(finished) = self.pool.pop_finished() {
            let Some(&token) = self.by_session.get(&finished.session) else {
                continue;
            };
            let Some(connection) = self.connections.get_mut(&token) else {
                continue;
            };
            let cursors = &mut self.cursors;
            connection.pipeline.answer(finished.result, |shape, protocol, result| {
                encoded(&commands::answer(shape, result, cursors), protocol)
            });
            self.send_next(token);
            self.touched.push(token);
        }
    }

    /// Sends the next request of a connection's commands waiting for the cluster, unless one
    /// is in flight.
    fn send_next(&mut self, token: Token) {
        let limits = BatchLimits {
            depth: self.config.pipeline_depth,
            bytes: self.config.max_command_bytes.saturating_sub(FRAME_OVERHEAD),
        };
        let Some(connection) = self.connections.get_mut(&token) else {
            return;
        };
        if let Some(request) = connection.pipeline.next_request(limits) {
            let commands = match &request {
                KvCommand::Batch { commands } => commands.len(),
                _ => 1,
            };
            self.cluster_requests = self.cluster_requests.saturating_add(1);
            self.cluster_commands = self.cluster_commands.saturating_add(commands as u64);
            self.pool.submit(connection.session, request);
        }
    }

    fn on_event(&mut self, event: ForeignEvent) {
        if event.token == LISTENER {
            self.accept();
            return;
        }
        if event.readable {
            let until =
                if event.read_closed { ReadUntil::WouldBlock } else { ReadUntil::ShortRead };
            self.read(event.token, until);
        }
        if event.readable || event.writable {
            self.pump(event.token);
        }
    }

    fn accept(&mut self) {
        loop {
            let (stream, address) = match self.listener.accept() {
                Ok(accepted) => accepted,
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => return,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(error) => {
                    warn!("redis listener cannot accept: {error}");
                    return;
                }
            };
            if self.connections.len() >= self.config.limits.max_client_connections {
                self.make_room_for_a_client(address);
            }
            let transport = match self.config.listener_tls.as_ref().map(RedisTls::accept) {
                None => Transport::plain(stream),
                Some(Ok(server)) => Transport::tls(stream, server),
                Some(Err(error)) => {
                    error!("redis listener cannot start TLS for {address}: {error}");
                    continue;
                }
            };
            let handshaking = transport.is_handshaking();
            if handshaking {
                self.make_room_for_a_handshake();
            }
            match self.add_connection(transport, address) {
                Ok(token) if handshaking => self.handshakes.push_back(token),
                Ok(_) => {}
                Err(error) => warn!("redis listener cannot register {address}: {error}"),
            }
        }
    }

    /// At `--max-client-connections`, closes a connection for the new one from `address`, as
    /// the node's own listener does, rather than refuse it: the one silent longest, but first
    /// one that has not authenticated (or not finished its TLS handshake), so that clients
    /// without the password cannot push out those with it; and one with commands unanswered
    /// only if every connection has some.
    fn make_room_for_a_client(&mut self, address: SocketAddr) {
        let idlest = self
            .connections
            .iter()
            .min_by_key(|(token, connection)| {
                (connection.busy(), connection.admitted(), connection.last_heard, token.0)
            })
            .map(|(token, connection)| (*token, connection.state.id, connection.last_heard));
        let Some((token, id, last_heard)) = idlest else {
            return;
        };
        let max = self.config.limits.max_client_connections;
        self.refusals.record(
            Refusal::Evicted,
            &format!(
                "client {id}, silent for {:.1?}, closed for a new one from {address} \
                 (--max-client-connections {max})",
                last_heard.elapsed()
            ),
        );
        self.close(token, "evicted: too many clients");
    }

    /// At `--max-pending-connections` TLS handshakes, closes the oldest one still going, as
    /// the node's own listener does: a flood of handshakes that never finish cannot keep
    /// clients out. Handshakes that ended are dropped from the queue on the way.
    fn make_room_for_a_handshake(&mut self) {
        while self.handshakes.len() >= self.config.limits.max_pending_connections {
            let Some(oldest) = self.handshakes.pop_front() else {
                return;
            };
            let going = self.connections.get(&oldest).is_some_and(|c| c.transport.is_handshaking());
            if going {
                self.refusals.record(
                    Refusal::Tls,
                    "a TLS handshake was closed for a newer one (--max-pending-connections)",
                );
                self.close(oldest, "evicted: too many TLS handshakes");
                return;
            }
        }
    }

    fn add_connection(
        &mut self,
        mut transport: Transport,
        address: SocketAddr,
    ) -> io::Result<Token> {
        let token = Token(self.next_token);
        self.next_token = self.next_token.checked_add(1).unwrap_or(FOREIGN_TOKENS + 1);
        self.pool.registry().register(
            transport.stream_mut(),
            token,
            Interest::READABLE | Interest::WRITABLE,
        )?;
        let _ = transport.stream().set_nodelay(true);
        let session = match self.free_sessions.pop() {
            Some(session) => session,
            None => self.pool.add_session(),
        };
        let state = ConnectionState {
            id: self.next_client_id,
            protocol: 2,
            name: None,
            authenticated: self.settings.password.is_none(),
        };
        self.next_client_id = self.next_client_id.saturating_add(1);
        debug!(%address, id = state.id, "redis client connected");
        self.by_session.insert(session, token);
        self.connections.insert(token, Connection::new(transport, session, state));
        Ok(token)
    }

    /// Reads and runs commands until the socket has nothing more (as `until` tells), the
    /// connection has as many commands waiting as it may, or it is closing; then sends what
    /// waits for the cluster.
    fn read(&mut self, token: Token, until: ReadUntil) {
        loop {
            if !self.run_buffered(token) {
                self.send_next(token);
                return;
            }
            let Some(connection) = self.connections.get_mut(&token) else {
                return;
            };
            match connection.read_some(until) {
                Ok(ReadOutcome::Budget) => {}
                Ok(ReadOutcome::Drained) => {
                    self.run_buffered(token);
                    self.send_next(token);
                    return;
                }
                Ok(ReadOutcome::Closed) => {
                    self.close(token, "closed by the client");
                    return;
                }
                Err(error) => {
                    self.refuse(token, error);
                    return;
                }
            }
        }
    }

    /// Closes a connection that could not be read; counts and logs it if refused.
    fn refuse(&mut self, token: Token, error: ReadError) {
        let Some(connection) = self.connections.get_mut(&token) else {
            return;
        };
        let address = connection
            .transport
            .stream()
            .peer_addr()
            .map_or_else(|_| "a client".to_string(), |address| address.to_string());
        match error {
            ReadError::Plaintext => {
                connection.refuse_in_the_clear(PLAINTEXT_REFUSED);
                let what = format!("{address}: spoke in the clear to the TLS port");
                self.refusals.record(Refusal::Tls, &what);
                self.close(token, "not TLS");
            }
            ReadError::Tls(detail) => {
                self.refusals.record(Refusal::Tls, &format!("{address}: {detail}"));
                // The alert rustls queued tells the client why.
                let _ = connection.transport.send_records();
                self.close(token, &detail);
            }
            ReadError::Io(error) => self.close(token, &format!("cannot read: {error}")),
        }
    }

    /// Runs the commands complete in the inbox, up to the cap of commands waiting (reading
    /// resumes from the inbox once answers go out). Returns whether more may be read.
    fn run_buffered(&mut self, token: Token) -> bool {
        let max_waiting = self.config.limits.max_requests_per_connection;
        let mut used_total = 0;
        let more = loop {
            let Some(connection) = self.connections.get_mut(&token) else {
                return false;
            };
            if connection.closing {
                break false;
            }
            if connection.pipeline.len() >= max_waiting {
                connection.read_paused = true;
                break false;
            }
            connection.read_paused = false;
            let unparsed = &connection.inbox[used_total..];
            match resp::parse_command(unparsed, self.config.max_command_bytes) {
                Ok(Some((command, used))) => {
                    used_total += used;
                    self.run_command(token, command);
                }
                Ok(None) => break true,
                Err(error) => {
                    connection.pipeline.push_ready(encoded(&Reply::error(&error), 2));
                    connection.closing = true;
                    let what = format!("client {}: {error}", connection.state.id);
                    self.refusals.record(Refusal::BadCommand, &what);
                    break false;
                }
            }
        };
        if let Some(connection) = self.connections.get_mut(&token) {
            // Once per batch: draining after each command would move the rest every time.
            connection.inbox.drain(..used_total);
        }
        more
    }

    fn run_command(&mut self, token: Token, command: resp::Command) {
        let Some(connection) = self.connections.get_mut(&token) else {
            return;
        };
        let action =
            commands::dispatch(command, &mut connection.state, &self.settings, &self.cursors);
        let protocol = connection.state.protocol;
        let pipeline = &mut connection.pipeline;
        match action {
            Action::Reply(reply) => pipeline.push_ready(encoded(&reply, protocol)),
            Action::Quit => {
                connection.closing = true;
                pipeline.push_ready(encoded(&Reply::Simple("OK"), protocol));
            }
            Action::Cluster(command, _) if too_large(&command, self.config.max_command_bytes) => {
                let reply = Reply::error(format!(
                    "invalid request: {} bytes of keys and values exceed the frame limit",
                    command.payload_bytes()
                ));
                pipeline.push_ready(encoded(&reply, protocol));
            }
            Action::Cluster(command, shape) => pipeline.push_cluster(command, shape, protocol),
            Action::Info(sections) => {
                self.info_asked = true;
                pipeline.push_info(protocol, sections);
            }
        }
    }

    /// Answers the `INFO`s waiting with the node's state.
    fn answer_info(&mut self, status: &mut dyn FnMut() -> NodeStatus) {
        if !std::mem::take(&mut self.info_asked) {
            return;
        }
        let waiting: Vec<Token> = self
            .connections
            .iter()
            .filter(|(_, connection)| connection.pipeline.waits_for_info())
            .map(|(token, _)| *token)
            .collect();
        if waiting.is_empty() {
            return;
        }
        let status = status();
        let facts = ListenerFacts { port: self.config.listen.port(), counts: self.counts() };
        for token in &waiting {
            if let Some(connection) = self.connections.get_mut(token) {
                connection.pipeline.answer_info(|protocol, sections| {
                    encoded(&Reply::text(info_text(&status, facts, sections)), protocol)
                });
            }
        }
        self.touched.extend(waiting);
    }

    /// Fails the commands of connections that waited too long for the cluster, and closes
    /// idle connections.
    fn sweep(&mut self) {
        let now = Instant::now();
        let (mut idle, mut stalled) = (Vec::new(), Vec::new());
        for (token, connection) in &mut self.connections {
            let expired = connection
                .pipeline
                .oldest_cluster_wait()
                .is_some_and(|since| now.duration_since(since) >= self.config.timeout);
            if expired {
                let reply = if self.pool.session_busy(connection.session) {
                    Reply::Error(
                        "TRYAGAIN the cluster is busy: too many requests waiting; retry later"
                            .to_string(),
                    )
                } else {
                    Reply::Error(format!(
                        "CLUSTERDOWN no answer from the cluster within {:?} (no leader?); a write may or may not have taken effect",
                        self.config.timeout
                    ))
                };
                // The session gives up on everything it was doing: its clerk starts afresh.
                connection.pipeline.fail_all(|protocol| encoded(&reply, protocol));
                self.pool.reset_session(connection.session);
                self.touched.push(*token);
            }
            let silent = now.duration_since(connection.last_heard);
            let handshaking = now.duration_since(connection.accepted_at);
            if connection.transport.is_handshaking() && handshaking >= self.config.handshake_timeout
            {
                stalled.push(*token);
            } else if connection.pipeline.is_empty() && silent >= self.config.idle_timeout {
                idle.push(*token);
            }
        }
        for token in idle {
            self.close(token, "idle");
        }
        for token in stalled {
            self.refusals.record(
                Refusal::Tls,
                "a client did not finish its TLS handshake in time (--handshake-timeout-ms)",
            );
            self.close(token, "TLS handshake timed out");
        }
    }

    /// Sends the answers that are ready, resumes a paused read, and closes a finished
    /// connection.
    fn pump(&mut self, token: Token) {
        let max_outbox = self.config.limits.max_reply_queue_bytes;
        let max_waiting = self.config.limits.max_requests_per_connection;
        let Some(connection) = self.connections.get_mut(&token) else {
            return;
        };
        if let Err(error) = connection.send_ready(max_outbox) {
            self.close(token, &format!("cannot send: {error}"));
            return;
        }
        if connection.read_paused && connection.pipeline.len() < max_waiting {
            // No event tells what arrived while reading was paused, an end of stream included.
            self.read(token, ReadUntil::WouldBlock);
            if let Some(connection) = self.connections.get_mut(&token) {
                if let Err(error) = connection.send_ready(max_outbox) {
                    self.close(token, &format!("cannot send: {error}"));
                    return;
                }
            }
        }
        if self.connections.get(&token).is_some_and(Connection::finished) {
            self.close(token, "quit");
        }
    }

    fn close(&mut self, token: Token, why: &str) {
        let Some(mut connection) = self.connections.remove(&token) else {
            return;
        };
        debug!(id = connection.state.id, "redis client disconnected: {why}");
        // Best effort: a TLS client learns that the close is no truncation.
        connection.transport.close_notify();
        let _ = connection.transport.send_records();
        let _ = self.pool.registry().deregister(connection.transport.stream_mut());
        self.by_session.remove(&connection.session);
        self.pool.reset_session(connection.session);
        self.free_sessions.push(connection.session);
    }
}

impl Front for Gateway {
    fn poll_fd(&self) -> RawFd {
        self.pool.registry().as_raw_fd()
    }

    fn turn(&mut self) {
        if let Err(failure) = self.pool.wait(Duration::ZERO) {
            error!("the redis listener cannot poll: {failure}");
            return;
        }
        for event in self.pool.take_foreign_events() {
            self.on_event(event);
        }
        // Operations answered by other nodes, or by a timer.
        self.answer_finished();
    }

    fn take_requests(&mut self) -> Vec<(u32, ClientRequest<KvCommand>)> {
        self.pool.take_local_requests()
    }

    fn on_reply(&mut self, tag: u32, reply: ClientReply<KvReply>) {
        self.pool.local_reply(tag, reply);
    }

    fn settle(&mut self, status: &mut dyn FnMut() -> NodeStatus) {
        self.answer_finished();
        self.answer_info(status);
        if self.last_sweep.elapsed() >= SWEEP {
            self.last_sweep = Instant::now();
            self.sweep();
        }
        let mut touched = std::mem::take(&mut self.touched);
        touched.sort_unstable();
        touched.dedup();
        for token in touched {
            self.pump(token);
        }
        self.pool.flush_queued();
    }

    fn next_turn_in(&self) -> Option<Duration> {
        if self.pool.saturated() || self.pool.has_local_requests() || !self.touched.is_empty() {
            return Some(Duration::ZERO);
        }
        let sweep = SWEEP.saturating_sub(self.last_sweep.elapsed());
        Some(self.pool.next_timer_in().map_or(sweep, |timer| timer.min(sweep)))
    }

    fn counts(&self) -> FrontCounts {
        FrontCounts {
            connections: self.connections.len() as u64,
            refused: self.refusals.counts(),
            cluster_requests: self.cluster_requests,
            cluster_commands: self.cluster_commands,
        }
    }
}

fn encoded(reply: &Reply, protocol: u8) -> Vec<u8> {
    let mut out = Vec::new();
    reply.encode(protocol, &mut out);
    out
}

/// Whether `command` would not fit in a frame to the cluster.
fn too_large(command: &KvCommand, max_command_bytes: usize) -> bool {
    command.payload_bytes().saturating_add(FRAME_OVERHEAD) > max_command_bytes
}
