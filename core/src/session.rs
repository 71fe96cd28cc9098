//! Client sessions: the memory that makes retried requests take effect exactly once.
//!
//! Part of the replicated state: every replica applies the same log entries to its table and so
//! holds the same sessions, expires them at the same index, and answers a retry the same way.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::ids::{ClientId, RequestId};

/// One client's session.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Session<R> {
    /// The last request applied, and its reply (kept to answer a retry).
    last: Option<(RequestId, R)>,
    /// The log clock (leader-stamped milliseconds) of its last activity.
    active_ms: u64,
}

/// What to do with a request of a session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SessionCheck<'a, R> {
    /// Not seen before: apply it.
    New,
    /// The last request again: answer with its reply, do not apply.
    Duplicate(&'a R),
    /// Older than the last request: the client has moved on.
    Superseded,
    /// No such session (never opened, or expired).
    Unknown,
}

/// The sessions of all clients, with expiry by a clock that the leader stamps into the log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sessions<R> {
    /// Idle time after which a session expires: configuration, not state, so a snapshot does
    /// not carry it.
    #[serde(skip)]
    timeout_ms: u64,
    /// The log clock: the latest stamp applied (stamps of different leaders may go backwards;
    /// the clock never does).
    clock_ms: u64,
    sessions: BTreeMap<ClientId, Session<R>>,
    /// (active_ms, client) for every session, oldest first, to expire without scanning all.
    by_activity: BTreeSet<(u64, ClientId)>,
}

impl<R> Sessions<R> {
    /// An empty table whose sessions expire after `timeout_ms` idle.
    pub fn new(timeout_ms: u64) -> Sessions<R> {
        Sessions {
            timeout_ms,
            clock_ms: 0,
            sessions: BTreeMap::new(),
            by_activity: BTreeSet::new(),
        }
    }

    /// The same sessions, expiring after `timeout_ms` idle.
    pub fn with_timeout_ms(self, timeout_ms: u64) -> Sessions<R> {
        Sessions { timeout_ms, ..self }
    }

    /// Idle time after which a session expires.
    pub fn timeout_ms(&self) -> u64 {
        self.timeout_ms
    }

    /// The log clock: the latest stamp applied, in milliseconds.
    pub fn clock_ms(&self) -> u64 {
        self.clock_ms
    }

    /// Advances the log clock to a stamp of an entry being applied, and expires every session
    /// idle for longer than the timeout.
    pub fn advance_clock(&mut self, stamp_ms: u64) {
        self.clock_ms = self.clock_ms.max(stamp_ms);
        let horizon = self.clock_ms.saturating_sub(self.timeout_ms);
        while let Some(&(active_ms, client)) = self.by_activity.first() {
            if active_ms >= horizon {
                break;
            }
            self.by_activity.pop_first();
            self.sessions.remove(&client);
        }
    }

    /// Opens the session `client` at the current log clock.
    pub fn open(&mut self, client: ClientId) {
        let active_ms = self.clock_ms;
        if self.sessions.insert(client, Session { last: None, active_ms }).is_none() {
            self.by_activity.insert((active_ms, client));
        }
    }

    /// What to do with `request` of `client`.
    pub fn check(&self, client: ClientId, request: RequestId) -> SessionCheck<'_, R> {
        let Some(session) = self.sessions.get(&client) else {
            return SessionCheck::Unknown;
        };
        match &session.last {
            Some((last, reply)) if *last == request => SessionCheck::Duplicate(reply),
            Some((last, _)) if *last > request => SessionCheck::Superseded,
            _ => SessionCheck::New,
        }
    }

    /// Records that `request` of `client` was applied with `reply`.
    pub fn record(&mut self, client: ClientId, request: RequestId, reply: R) {
        let active_ms = self.clock_ms;
        if let Some(session) = self.sessions.get_mut(&client) {
            self.by_activity.remove(&(session.active_ms, client));
            self.by_activity.insert((active_ms, client));
            session.active_ms = active_ms;
            session.last = Some((request, reply));
        }
    }

    /// Number of open sessions.
    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    /// Whether no session is open.
    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_retry_is_answered_from_memory_and_older_requests_are_superseded() {
        let mut sessions = Sessions::new(1_000);
        let client = ClientId(7);
        sessions.open(client);
        assert_eq!(sessions.check(client, RequestId(1)), SessionCheck::New);
        sessions.record(client, RequestId(1), "one");
        assert_eq!(sessions.check(client, RequestId(1)), SessionCheck::Duplicate(&"one"));
        sessions.record(client, RequestId(2), "two");
        assert_eq!(sessions.check(client, RequestId(1)), SessionCheck::Superseded);
        assert_eq!(sessions.check(ClientId(8), RequestId(1)), SessionCheck::Unknown);
    }

    #[test]
    fn idle_sessions_expire_by_the_log_clock_and_active_ones_stay() {
        let mut sessions: Sessions<()> = Sessions::new(1_000);
        sessions.advance_clock(100);
        sessions.open(ClientId(1));
        sessions.open(ClientId(2));
        assert_eq!((sessions.len(), sessions.is_empty()), (2, false));
        sessions.advance_clock(900);
        sessions.record(ClientId(2), RequestId(1), ());
        sessions.advance_clock(1_101);
        assert_eq!(sessions.check(ClientId(1), RequestId(1)), SessionCheck::Unknown);
        assert_eq!(sessions.check(ClientId(2), RequestId(2)), SessionCheck::New);
        sessions.advance_clock(50); // A stamp from a leader whose clock is behind.
        assert_eq!(sessions.clock_ms(), 1_101, "the clock never goes back");
        sessions.advance_clock(1_899);
        assert_eq!(sessions.len(), 1, "the clock never went back");
        sessions.advance_clock(1_901);
        assert!(sessions.is_empty());
    }
}
