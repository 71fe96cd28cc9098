//! A connection's commands in the order of their answers, and the requests that carry them to
//! the cluster.
//!
//! A connection has one session, and a session one request in flight: that is what makes a
//! retry across a leader change safe. Many commands are in flight at once all the same: every
//! command waiting when the request before is answered goes in the next request, as one
//! [`KvCommand::Batch`] that the cluster runs in the order sent, at one point, once (one log
//! entry if any command in it writes, else one ReadIndex read). So a connection's commands
//! take effect in the order it sent them and a read sees every write sent before it (which
//! separate requests in flight together could not promise: retried after a leader change,
//! a later one may overtake an earlier one), while a pipelining client still pays one round to
//! the cluster per batch instead of per command.

use std::collections::VecDeque;
use std::time::Instant;

use raftkv_core::client::ClerkError;
use raftkv_core::kv::{KvCommand, KvReply};

use crate::redis::commands::Shape;

/// Bytes a command costs in a batch's encoding besides its keys and values (its variant,
/// lengths and options), counted generously.
const COMMAND_OVERHEAD: usize = 32;

/// The bounds of one request to the cluster.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct BatchLimits {
    /// Commands in one request at most (`--redis-pipeline-depth`).
    pub(crate) depth: usize,
    /// Bytes of keys and values (and [`COMMAND_OVERHEAD`] each) in one request at most: what
    /// fits a frame.
    pub(crate) bytes: usize,
}

/// A command waiting for the cluster.
#[derive(Debug)]
pub(crate) struct Waiting {
    /// The command; none once it went to the cluster in a request of its own (which is
    /// answered, never sent again by the pipeline: the clerk retries it).
    command: Option<KvCommand>,
    shape: Shape,
    /// The RESP version to answer in, as it was when the command came.
    protocol: u8,
    since: Instant,
    /// It is in the request in flight.
    sent: bool,
    /// It goes to the cluster in a request of its own: a command that may not join a batch
    /// (`MGET`, `SCAN`, `KEYS`: a read of many values, see `KvCommand::may_join_batch`), or a
    /// command of a batch the cluster refused as invalid (so that only the invalid one is
    /// refused).
    alone: bool,
}

/// A command's place in the order of answers.
#[derive(Debug)]
pub(crate) enum Slot {
    /// The encoded answer.
    Ready(Vec<u8>),
    /// Waiting for the cluster.
    Cluster(Waiting),
    /// Waiting for the node's status (`INFO` of `sections`).
    Info { protocol: u8, sections: Vec<String> },
}

/// The commands of a connection, answered or not, in the order received.
#[derive(Debug, Default)]
pub(crate) struct Pipeline {
    slots: VecDeque<Slot>,
    /// Commands in the request in flight: the first this many cluster slots.
    in_flight: usize,
}

impl Pipeline {
    /// Commands received and not yet written out.
    pub(crate) fn len(&self) -> usize {
        self.slots.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// A command answered at once.
    pub(crate) fn push_ready(&mut self, answer: Vec<u8>) {
        self.slots.push_back(Slot::Ready(answer));
    }

    /// A command for the cluster, to answer as `shape` says in RESP `protocol`.
    pub(crate) fn push_cluster(&mut self, command: KvCommand, shape: Shape, protocol: u8) {
        let alone = !command.may_join_batch();
        let since = Instant::now();
        let waiting =
            Waiting { command: Some(command), shape, protocol, since, sent: false, alone };
        self.slots.push_back(Slot::Cluster(waiting));
    }

    /// An `INFO` of `sections`.
    pub(crate) fn push_info(&mut self, protocol: u8, sections: Vec<String>) {
        self.slots.push_back(Slot::Info { protocol, sections });
    }

    /// The next request for the cluster, unless one is in flight: the commands waiting, in
    /// order, up to `limits` (a lone command as itself, several as a batch).
    pub(crate) fn next_request(&mut self, limits: BatchLimits) -> Option<KvCommand> {
        if self.in_flight > 0 {
            return None;
        }
        let mut chosen = 0;
        let mut bytes = 0usize;
        for waiting in self.waiting_mut() {
            // Only a command in flight gave its command away, and none is.
            debug_assert!(waiting.command.is_some(), "a command taken but not in flight");
            let Some(command) = &waiting.command else { break };
            let weight = command.payload_bytes().saturating_add(COMMAND_OVERHEAD);
            let fits = chosen < limits.depth && bytes.saturating_add(weight) <= limits.bytes;
            if chosen > 0 && (waiting.alone || !fits) {
                break;
            }
            chosen += 1;
            bytes = bytes.saturating_add(weight);
            if waiting.alone {
                break;
            }
        }
        self.in_flight = chosen;
        let mut sent = self.waiting_mut().take(chosen);
        match chosen {
            0 => None,
            // Moved, not copied: a lone command is never sent again from here.
            1 => sent.next().and_then(|waiting| {
                waiting.sent = true;
                waiting.command.take()
            }),
            _ => {
                let commands = sent.filter_map(|waiting| {
                    waiting.sent = true;
                    waiting.command.clone()
                });
                Some(KvCommand::Batch { commands: commands.collect() })
            }
        }
    }

    /// The commands waiting for the cluster, in order.
    fn waiting_mut(&mut self) -> impl Iterator<Item = &mut Waiting> {
        self.slots.iter_mut().filter_map(|slot| match slot {
            Slot::Cluster(waiting) => Some(waiting),
            _ => None,
        })
    }

    /// Takes the cluster's `result` for the request in flight: each command it ran gets its
    /// answer, encoded by `encode`; those a batch did not run (it stopped early) wait for the
    /// next request; a batch refused as invalid is sent again one command at a time. That is
    /// safe because `Invalid` means it never ran: a refusal after a retry, when an earlier try
    /// may have run, is `Indeterminate`, which every command of the batch gets as its answer.
    pub(crate) fn answer(
        &mut self,
        result: Result<KvReply, ClerkError>,
        mut encode: impl FnMut(Shape, u8, Result<KvReply, ClerkError>) -> Vec<u8>,
    ) {
        let sent = std::mem::take(&mut self.in_flight);
        let in_flight = self.slots.iter_mut().filter_map(|slot| match slot {
            Slot::Cluster(waiting) if waiting.sent => Some(slot),
            _ => None,
        });
        match result {
            Ok(KvReply::Batch(replies)) if sent > 1 && (1..=sent).contains(&replies.len()) => {
                let mut replies = replies.into_iter();
                for slot in in_flight {
                    match (replies.next(), &mut *slot) {
                        (Some(reply), _) => answer_slot(slot, Ok(reply), &mut encode),
                        // Not run: it goes in the next request.
                        (None, Slot::Cluster(waiting)) => waiting.sent = false,
                        (None, _) => {}
                    }
                }
            }
            Err(ClerkError::Invalid { .. }) if sent > 1 => {
                for slot in in_flight {
                    if let Slot::Cluster(waiting) = slot {
                        (waiting.sent, waiting.alone) = (false, true);
                    }
                }
            }
            Ok(KvReply::Batch(replies)) if sent > 1 => {
                let reason =
                    format!("a batch of {sent} commands answered with {} replies", replies.len());
                let refused = Ok(KvReply::Refused { reason });
                in_flight.for_each(|slot| answer_slot(slot, refused.clone(), &mut encode));
            }
            result => in_flight.for_each(|slot| answer_slot(slot, result.clone(), &mut encode)),
        }
    }

    /// Answers every command waiting for the cluster, sent or not, with `answer` (encoded in
    /// each command's protocol): the session gives up on them.
    pub(crate) fn fail_all(&mut self, answer: impl Fn(u8) -> Vec<u8>) {
        self.in_flight = 0;
        for slot in &mut self.slots {
            if let Slot::Cluster(waiting) = slot {
                *slot = Slot::Ready(answer(waiting.protocol));
            }
        }
    }

    /// When the oldest command waiting for the cluster was received.
    pub(crate) fn oldest_cluster_wait(&self) -> Option<Instant> {
        self.slots.iter().find_map(|slot| match slot {
            Slot::Cluster(waiting) => Some(waiting.since),
            _ => None,
        })
    }

    /// Answers every `INFO` waiting, by protocol version and sections asked.
    pub(crate) fn answer_info(&mut self, encode: impl Fn(u8, &[String]) -> Vec<u8>) {
        for slot in &mut self.slots {
            if let Slot::Info { protocol, sections } = slot {
                *slot = Slot::Ready(encode(*protocol, sections));
            }
        }
    }

    /// Whether an `INFO` waits.
    pub(crate) fn waits_for_info(&self) -> bool {
        self.slots.iter().any(|slot| matches!(slot, Slot::Info { .. }))
    }

    /// The answer at the front, if it is ready: answers leave in the order of the commands.
    pub(crate) fn pop_ready(&mut self) -> Option<Vec<u8>> {
        match self.slots.front_mut() {
            Some(Slot::Ready(answer)) => {
                let answer = std::mem::take(answer);
                self.slots.pop_front();
                Some(answer)
            }
            _ => None,
        }
    }
}

/// Replaces a cluster slot by its answer.
fn answer_slot(
    slot: &mut Slot,
    result: Result<KvReply, ClerkError>,
    encode: &mut impl FnMut(Shape, u8, Result<KvReply, ClerkError>) -> Vec<u8>,
) {
    if let Slot::Cluster(waiting) = slot {
        *slot = Slot::Ready(encode(waiting.shape, waiting.protocol, result));
    }
}

#[cfg(test)]
mod tests {
    use raftkv_core::kv::KvStore;
    use raftkv_core::state_machine::StateMachine;

    use super::*;
    use crate::redis::commands::{self, Action, ConnectionState, Settings};
    use crate::redis::cursors::Cursors;
    use crate::redis::resp::Reply;

    const LIMITS: BatchLimits = BatchLimits { depth: 64, bytes: 1 << 20 };

    /// Queues the commands of `words` as the gateway does.
    fn pipelined(commands: &[&[&str]]) -> Pipeline {
        let mut pipeline = Pipeline::default();
        let mut state = ConnectionState { id: 1, protocol: 2, name: None, authenticated: true };
        let settings = Settings { password: None };
        for words in commands {
            let command = words.iter().map(|word| word.as_bytes().to_vec()).collect();
            match commands::dispatch(command, &mut state, &settings, &Cursors::new(4)) {
                Action::Cluster(command, shape) => pipeline.push_cluster(command, shape, 2),
                Action::Reply(reply) => pipeline.push_ready(encoded(&reply)),
                Action::Info(sections) => pipeline.push_info(2, sections),
                Action::Quit => panic!("no QUIT here"),
            }
        }
        pipeline
    }

    fn encoded(reply: &Reply) -> Vec<u8> {
        let mut out = Vec::new();
        reply.encode(2, &mut out);
        out
    }

    /// Runs `request` on `store` as the cluster would and hands the answer to `pipeline`.
    fn run_on(store: &mut KvStore, pipeline: &mut Pipeline, request: &KvCommand) {
        let reply = store.apply(request);
        answer(pipeline, Ok(reply));
    }

    fn answer(pipeline: &mut Pipeline, result: Result<KvReply, ClerkError>) {
        let mut cursors = Cursors::new(4);
        pipeline.answer(result, |shape, _, result| {
            encoded(&commands::answer(shape, result, &mut cursors))
        });
    }

    fn written(pipeline: &mut Pipeline) -> String {
        let mut out = Vec::new();
        while let Some(answer) = pipeline.pop_ready() {
            out.extend(answer);
        }
        String::from_utf8(out).expect("text")
    }

    #[test]
    fn a_pipelined_set_get_set_get_goes_as_one_batch_and_is_answered_in_order() {
        let mut pipeline = pipelined(&[
            &["SET", "k", "1"],
            &["GET", "k"],
            &["PING"],
            &["SET", "k", "2"],
            &["GET", "k"],
        ]);
        let request = pipeline.next_request(LIMITS).expect("a request");
        let KvCommand::Batch { commands } = &request else { panic!("one batch: {request:?}") };
        assert_eq!(commands.len(), 4, "every command for the cluster, PING answered here");
        assert_eq!(pipeline.next_request(LIMITS), None, "one request in flight at a time");
        assert_eq!(written(&mut pipeline), "", "nothing leaves before the first answer");
        run_on(&mut KvStore::default(), &mut pipeline, &request);
        assert_eq!(written(&mut pipeline), "+OK\r\n$1\r\n1\r\n+PONG\r\n+OK\r\n$1\r\n2\r\n");
        assert!(pipeline.is_empty());
    }

    #[test]
    fn answers_leave_in_order_even_when_later_commands_are_answered_first() {
        let mut pipeline = pipelined(&[&["GET", "k"], &["PING"], &["INFO", "server"]]);
        let request = pipeline.next_request(LIMITS).expect("a request");
        pipeline.answer_info(|_, _| b"+INFO\r\n".to_vec());
        assert!(!pipeline.waits_for_info());
        assert_eq!(written(&mut pipeline), "", "PING and INFO wait behind the GET");
        let mut store = KvStore::default();
        store.apply(&KvCommand::Put { key: b"k".to_vec(), value: b"v".to_vec() });
        run_on(&mut store, &mut pipeline, &request);
        assert_eq!(written(&mut pipeline), "$1\r\nv\r\n+PONG\r\n+INFO\r\n");
    }

    #[test]
    fn commands_that_arrive_while_a_request_is_in_flight_go_together_in_the_next() {
        let mut store = KvStore::default();
        let mut pipeline = pipelined(&[&["INCR", "n"]]);
        let first = pipeline.next_request(LIMITS).expect("a request");
        assert!(matches!(first, KvCommand::Increment { .. }), "a lone command goes as itself");
        for _ in 0..3 {
            pipeline.push_cluster(KvCommand::Get { key: b"n".to_vec() }, Shape::Value, 2);
            pipeline.push_cluster(
                KvCommand::Increment { key: b"n".to_vec(), delta: 1 },
                Shape::Integer,
                2,
            );
        }
        run_on(&mut store, &mut pipeline, &first);
        let second = pipeline.next_request(LIMITS).expect("a request");
        assert!(matches!(&second, KvCommand::Batch { commands } if commands.len() == 6));
        run_on(&mut store, &mut pipeline, &second);
        assert_eq!(
            written(&mut pipeline),
            ":1\r\n$1\r\n1\r\n:2\r\n$1\r\n2\r\n:3\r\n$1\r\n3\r\n:4\r\n",
            "every GET sees the INCR sent before it and none sent after"
        );
    }

    #[test]
    fn a_batch_is_bounded_by_the_depth_and_the_bytes_and_many_values_go_alone() {
        let mut pipeline = pipelined(&[
            &["GET", "a"],
            &["GET", "b"],
            &["GET", "c"],
            &["MGET", "a", "b"],
            &["SCAN", "0"],
            &["KEYS", "*"],
            &["SET", "d", "0123456789"],
            &["SET", "e", "0123456789"],
        ]);
        let limits = BatchLimits { depth: 2, bytes: 2 * (COMMAND_OVERHEAD + 11) - 1 };
        let mut sizes = Vec::new();
        while let Some(request) = pipeline.next_request(limits) {
            sizes.push(match &request {
                KvCommand::Batch { commands } => commands.len(),
                _ => 1,
            });
            run_on(&mut KvStore::default(), &mut pipeline, &request);
        }
        assert_eq!(
            sizes,
            [2, 1, 1, 1, 1, 1, 1],
            "depth 2; MGET, SCAN and KEYS alone; two SETs exceed the bytes"
        );
        // Two nils, a nil, an array of two nils, a pair of the cursor 0 and no keys, no keys,
        // two OKs: every command answered.
        assert_eq!(written(&mut pipeline).matches("\r\n").count(), 2 + 1 + 3 + 4 + 1 + 2);
    }

    #[test]
    fn what_a_batch_did_not_run_goes_again_and_an_invalid_batch_goes_one_by_one() {
        let mut pipeline = pipelined(&[&["GET", "a"], &["GET", "b"], &["GET", "c"]]);
        pipeline.next_request(LIMITS).expect("a request");
        answer(&mut pipeline, Ok(KvReply::Batch(vec![KvReply::Value(Some(b"1".to_vec()))])));
        let rest = pipeline.next_request(LIMITS).expect("the rest");
        assert!(matches!(&rest, KvCommand::Batch { commands } if commands.len() == 2));
        let invalid = ClerkError::Invalid { reason: "key too long".to_string() };
        answer(&mut pipeline, Err(invalid.clone()));
        assert_eq!(pipeline.next_request(LIMITS), Some(KvCommand::Get { key: b"b".to_vec() }));
        answer(&mut pipeline, Err(invalid));
        assert_eq!(pipeline.next_request(LIMITS), Some(KvCommand::Get { key: b"c".to_vec() }));
        answer(&mut pipeline, Ok(KvReply::Value(None)));
        assert_eq!(
            written(&mut pipeline),
            "$1\r\n1\r\n-ERR invalid request: key too long\r\n$-1\r\n",
        );
    }

    #[test]
    fn a_batch_that_may_have_run_is_not_sent_again_and_each_command_says_so() {
        let mut pipeline = pipelined(&[&["INCR", "n"], &["APPEND", "k", "v"]]);
        pipeline.next_request(LIMITS).expect("a request");
        answer(&mut pipeline, Err(ClerkError::Indeterminate));
        assert_eq!(pipeline.next_request(LIMITS), None, "nothing to send again");
        let answers = written(&mut pipeline);
        assert_eq!(answers.matches("-ERR refused after a retry").count(), 2, "{answers}");
        assert!(pipeline.is_empty());
    }

    #[test]
    fn a_batch_answered_with_too_many_replies_is_an_error_for_each_command() {
        let mut pipeline = pipelined(&[&["GET", "a"], &["GET", "b"]]);
        pipeline.next_request(LIMITS).expect("a request");
        answer(&mut pipeline, Ok(KvReply::Batch(vec![KvReply::Value(None); 3])));
        let answers = written(&mut pipeline);
        assert_eq!(
            answers.matches("-ERR a batch of 2 commands answered with 3 replies").count(),
            2
        );
        assert!(pipeline.is_empty() && pipeline.next_request(LIMITS).is_none());
    }

    #[test]
    fn failing_all_answers_the_commands_sent_and_those_not_yet_sent() {
        let mut pipeline = pipelined(&[&["GET", "a"]]);
        pipeline.next_request(LIMITS).expect("a request");
        pipeline.push_cluster(KvCommand::Get { key: b"b".to_vec() }, Shape::Value, 2);
        assert!(pipeline.oldest_cluster_wait().is_some());
        pipeline.fail_all(|_| b"-CLUSTERDOWN\r\n".to_vec());
        assert_eq!(pipeline.oldest_cluster_wait(), None);
        assert_eq!(written(&mut pipeline), "-CLUSTERDOWN\r\n-CLUSTERDOWN\r\n");
        assert_eq!(pipeline.next_request(LIMITS), None);
    }
}
