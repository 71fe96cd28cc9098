//! The clerk on its own: what it sends, where, and when, for each kind of answer.

use raftkv_core::client::{Clerk, ClerkConfig, ClerkError, ClerkInput, ClerkOutput};
use raftkv_core::protocol::{ClientReply, ClientRequest, Op, Outcome, Reject};
use raftkv_core::{ClientId, Instant, NodeId, RequestId};

type TestClerk = Clerk<&'static str, &'static str>;

fn clerk() -> TestClerk {
    Clerk::new(ClerkConfig::new(vec![NodeId(1), NodeId(2), NodeId(3)]))
}

/// The requests the clerk wants sent, as (replica, request).
fn sent(clerk: &mut TestClerk) -> Vec<(NodeId, ClientRequest<&'static str>)> {
    let mut sends = Vec::new();
    while let Some(output) = clerk.poll_output() {
        if let ClerkOutput::Send { to, request } = output {
            sends.push((to, request));
        }
    }
    sends
}

fn reply(
    clerk: &mut TestClerk,
    now: Instant,
    from: u64,
    request: RequestId,
    outcome: Outcome<&'static str>,
) {
    clerk.handle(
        now,
        ClerkInput::Reply { from: NodeId(from), reply: ClientReply { request, outcome } },
    );
}

/// A clerk with a session open at node 1, and the request it sent for `command`.
fn registered(command: &'static str) -> (TestClerk, ClientRequest<&'static str>) {
    let mut clerk = clerk();
    clerk.submit(Instant::ZERO, command);
    let (to, register) = sent(&mut clerk).remove(0);
    assert_eq!((to, &register.op), (NodeId(1), &Op::Register));
    reply(
        &mut clerk,
        Instant::ZERO,
        1,
        register.request,
        Outcome::Registered { client: ClientId(7) },
    );
    let (_, request) = sent(&mut clerk).remove(0);
    (clerk, request)
}

#[test]
fn the_first_operation_opens_a_session_then_runs_with_its_id() {
    let (mut clerk, request) = registered("put");
    assert_eq!(request.client, ClientId(7));
    assert_eq!(request.op, Op::Command("put"));
    reply(&mut clerk, Instant::ZERO, 1, request.request, Outcome::Done("ok"));
    assert_eq!(
        clerk.poll_output(),
        Some(ClerkOutput::Finished { request: request.request, result: Ok("ok") })
    );
    assert_eq!(clerk.pending(), 0);
    assert_eq!(clerk.poll_timeout(), None, "nothing to wait for");
}

#[test]
fn a_hint_is_followed_at_once_and_the_request_keeps_its_id() {
    let (mut clerk, request) = registered("put");
    let hint = Outcome::Rejected(Reject::NotLeader { hint: Some(NodeId(3)) });
    reply(&mut clerk, Instant::ZERO, 1, request.request, hint);
    let resent = sent(&mut clerk);
    assert_eq!(resent.len(), 1);
    assert_eq!(resent[0].0, NodeId(3));
    assert_eq!(resent[0].1, request, "same session, same request id");
}

/// A replica added to the cluster after the clerk was configured may lead: a hint naming it is
/// followed, and the clerk knows it from then on.
#[test]
fn a_hint_to_a_replica_the_clerk_did_not_know_is_followed() {
    let (mut clerk, request) = registered("put");
    let hint = Outcome::Rejected(Reject::NotLeader { hint: Some(NodeId(4)) });
    reply(&mut clerk, Instant::ZERO, 1, request.request, hint);
    let resent = sent(&mut clerk);
    assert_eq!(resent.iter().map(|(to, _)| *to).collect::<Vec<_>>(), [NodeId(4)]);
    reply(&mut clerk, Instant::ZERO, 4, request.request, Outcome::Done("ok"));
    assert_eq!(
        clerk.poll_output(),
        Some(ClerkOutput::Finished { request: request.request, result: Ok("ok") })
    );
    clerk.submit(Instant::ZERO, "next");
    assert_eq!(sent(&mut clerk)[0].0, NodeId(4), "the new leader is asked first");
}

#[test]
fn replicas_pointing_at_each_other_are_asked_again_only_after_a_backoff() {
    let (mut clerk, request) = registered("put");
    let mut now = Instant::ZERO;
    let mut immediate = 0;
    for round in 0..6 {
        let (from, to) = if round % 2 == 0 { (1, 2) } else { (2, 1) };
        let hint = Outcome::Rejected(Reject::NotLeader { hint: Some(NodeId(to)) });
        reply(&mut clerk, now, from, request.request, hint);
        if sent(&mut clerk).is_empty() {
            let wake = clerk.poll_timeout().expect("a backoff timer");
            assert!(wake > now);
            now = wake;
            clerk.handle(now, ClerkInput::Timeout);
            assert_eq!(sent(&mut clerk).len(), 1, "sent after the backoff");
        } else {
            immediate += 1;
        }
    }
    assert!(immediate <= 4, "{immediate} of 6 redirects were followed without waiting");
}

#[test]
fn a_silent_replica_is_given_up_for_the_next_with_growing_backoff() {
    let (mut clerk, _) = registered("put");
    let mut targets = Vec::new();
    let mut waits_ms = Vec::new();
    for _ in 0..5 {
        let now = clerk.poll_timeout().expect("waiting for an answer");
        clerk.handle(now, ClerkInput::Timeout);
        let resend_at = clerk.poll_timeout().expect("backing off");
        waits_ms.push((resend_at - now).as_millis());
        clerk.handle(resend_at, ClerkInput::Timeout);
        targets.push(sent(&mut clerk)[0].0);
    }
    assert_eq!(targets, [NodeId(2), NodeId(3), NodeId(1), NodeId(2), NodeId(3)]);
    assert!(waits_ms.windows(2).all(|w| w[1] >= w[0]), "backoff grows: {waits_ms:?}");
    assert!(waits_ms[4] > waits_ms[0]);
}

#[test]
fn an_expired_session_on_a_first_try_reopens_and_runs_the_command_again() {
    let (mut clerk, request) = registered("put");
    reply(&mut clerk, Instant::ZERO, 1, request.request, Outcome::Rejected(Reject::SessionExpired));
    let (_, register) = sent(&mut clerk).remove(0);
    assert_eq!(register.op, Op::Register);
    reply(
        &mut clerk,
        Instant::ZERO,
        1,
        register.request,
        Outcome::Registered { client: ClientId(9) },
    );
    let (_, again) = sent(&mut clerk).remove(0);
    assert_eq!((again.client, again.op), (ClientId(9), Op::Command("put")));
    assert!(again.request > register.request, "a new id, above every id sent before");
    reply(&mut clerk, Instant::ZERO, 1, again.request, Outcome::Done("ok"));
    assert_eq!(
        clerk.poll_output(),
        Some(ClerkOutput::Finished { request: request.request, result: Ok("ok") }),
        "finished under the id submit returned"
    );
}

/// Found by the simulator (`raftkv-sim run --seed 1308 --nodes 5 --clients 3 --ops 219 --faults
/// net,crash,partition,pause,clock --snapshot-bytes 700`): a duplicate of the first try, sent
/// in the expired session, was answered "session expired" after the command had run in the
/// new session; the clerk opened a third session and ran the command a second time.
#[test]
fn a_late_expiry_of_the_old_session_does_not_run_the_command_again() {
    let (mut clerk, request) = registered("append");
    reply(&mut clerk, Instant::ZERO, 1, request.request, Outcome::Rejected(Reject::SessionExpired));
    let (_, register) = sent(&mut clerk).remove(0);
    reply(
        &mut clerk,
        Instant::ZERO,
        1,
        register.request,
        Outcome::Registered { client: ClientId(9) },
    );
    let (_, again) = sent(&mut clerk).remove(0);
    // The duplicate of the first try meets the expired session once more.
    reply(&mut clerk, Instant::ZERO, 1, request.request, Outcome::Rejected(Reject::SessionExpired));
    assert!(sent(&mut clerk).is_empty(), "no new session, no new try");
    reply(&mut clerk, Instant::ZERO, 1, again.request, Outcome::Done("ok"));
    assert_eq!(
        clerk.poll_output(),
        Some(ClerkOutput::Finished { request: request.request, result: Ok("ok") })
    );
}

#[test]
fn an_expired_session_after_a_retry_leaves_the_outcome_unknown() {
    let (mut clerk, request) = registered("put");
    let deadline = clerk.poll_timeout().expect("waiting");
    clerk.handle(deadline, ClerkInput::Timeout);
    let resend_at = clerk.poll_timeout().expect("backing off");
    clerk.handle(resend_at, ClerkInput::Timeout);
    let (to, _) = sent(&mut clerk).remove(0);
    reply(&mut clerk, resend_at, to.0, request.request, Outcome::Rejected(Reject::SessionExpired));
    let outputs: Vec<_> = std::iter::from_fn(|| clerk.poll_output()).collect();
    assert!(outputs.contains(&ClerkOutput::Finished {
        request: request.request,
        result: Err(ClerkError::Indeterminate)
    }));
}

#[test]
fn an_invalid_answer_to_a_first_try_is_final() {
    let (mut clerk, request) = registered("append");
    let reason = "append would grow the value past the limit".to_owned();
    let invalid = Outcome::Rejected(Reject::Invalid { reason: reason.clone() });
    reply(&mut clerk, Instant::ZERO, 1, request.request, invalid);
    assert_eq!(
        clerk.poll_output(),
        Some(ClerkOutput::Finished {
            request: request.request,
            result: Err(ClerkError::Invalid { reason })
        })
    );
}

/// The first try may have been applied, and a replica checks the retry against the state it
/// changed: an append valid once may be invalid twice. That is no proof it never ran.
#[test]
fn an_invalid_answer_after_a_retry_leaves_the_outcome_unknown() {
    let (mut clerk, request) = registered("append");
    let deadline = clerk.poll_timeout().expect("waiting");
    clerk.handle(deadline, ClerkInput::Timeout);
    let resend_at = clerk.poll_timeout().expect("backing off");
    clerk.handle(resend_at, ClerkInput::Timeout);
    let (to, again) = sent(&mut clerk).remove(0);
    assert_eq!(again.request, request.request, "the same request, at the next replica");
    let invalid = Outcome::Rejected(Reject::Invalid { reason: "too large".to_owned() });
    reply(&mut clerk, resend_at, to.0, request.request, invalid);
    let outputs: Vec<_> = std::iter::from_fn(|| clerk.poll_output()).collect();
    assert_eq!(
        outputs,
        [ClerkOutput::Finished {
            request: request.request,
            result: Err(ClerkError::Indeterminate)
        }]
    );
}

#[test]
fn an_answer_from_a_replica_given_up_on_still_counts_and_stale_answers_do_not() {
    let (mut clerk, request) = registered("put");
    let deadline = clerk.poll_timeout().expect("waiting");
    clerk.handle(deadline, ClerkInput::Timeout); // Gives up on node 1, backs off.
    reply(&mut clerk, deadline, 1, RequestId(999), Outcome::Done("stale"));
    assert_eq!(clerk.poll_output(), None, "an answer to another request is ignored");
    reply(&mut clerk, deadline, 1, request.request, Outcome::Done("late"));
    assert_eq!(
        clerk.poll_output(),
        Some(ClerkOutput::Finished { request: request.request, result: Ok("late") })
    );
}

#[test]
fn operations_run_one_at_a_time_in_submission_order() {
    let (mut clerk, first) = registered("one");
    let second_id = clerk.submit(Instant::ZERO, "two");
    assert!(sent(&mut clerk).is_empty(), "the second waits for the first");
    reply(&mut clerk, Instant::ZERO, 1, first.request, Outcome::Done("1"));
    let (_, second) = sent(&mut clerk).remove(0);
    assert_eq!((second.request, second.op), (second_id, Op::Command("two")));
    assert!(second_id > first.request);
}

#[test]
fn a_busy_answer_is_retried_at_the_same_replica_after_a_backoff_and_completes() {
    let (mut clerk, request) = registered("put");
    reply(&mut clerk, Instant::ZERO, 1, request.request, Outcome::Rejected(Reject::Busy));
    assert!(sent(&mut clerk).is_empty(), "not sent again before the backoff");
    assert!(clerk.last_answer_busy());
    let resend_at = clerk.poll_timeout().expect("backing off");
    assert!(resend_at > Instant::ZERO, "a backoff, not an immediate resend");
    clerk.handle(resend_at, ClerkInput::Timeout);
    let resent = sent(&mut clerk);
    assert_eq!(resent.len(), 1);
    assert_eq!(resent[0].0, NodeId(1), "the same replica: it is busy, not wrong");
    assert_eq!(resent[0].1, request, "the same request, id included");
    assert!(clerk.last_answer_busy(), "still known busy while the resend is out");
    reply(&mut clerk, resend_at, 1, request.request, Outcome::Done("ok"));
    assert_eq!(
        clerk.poll_output(),
        Some(ClerkOutput::Finished { request: request.request, result: Ok("ok") })
    );
    assert!(!clerk.last_answer_busy());
}

#[test]
fn busy_answers_back_off_longer_each_time_up_to_the_cap() {
    let (mut clerk, request) = registered("put");
    let mut now = Instant::ZERO;
    let mut waits = Vec::new();
    for _ in 0..12 {
        reply(&mut clerk, now, 1, request.request, Outcome::Rejected(Reject::Busy));
        let resend_at = clerk.poll_timeout().expect("backing off");
        waits.push((resend_at - now).as_millis());
        now = resend_at;
        clerk.handle(now, ClerkInput::Timeout);
        assert_eq!(sent(&mut clerk).len(), 1);
    }
    assert!(waits[0] <= 5, "starts at the minimum backoff: {waits:?}");
    assert!(waits[6] > waits[0] * 4, "grows: {waits:?}");
    assert!(waits.iter().all(|&wait| wait <= 500), "never past the cap: {waits:?}");
}

#[test]
fn a_busy_answer_is_not_a_failure_an_expired_session_then_runs_the_command_again() {
    let (mut clerk, request) = registered("put");
    reply(&mut clerk, Instant::ZERO, 1, request.request, Outcome::Rejected(Reject::Busy));
    let resend_at = clerk.poll_timeout().expect("backing off");
    clerk.handle(resend_at, ClerkInput::Timeout);
    let _ = sent(&mut clerk);
    // Busy means never handed to consensus: the command cannot have taken effect.
    reply(&mut clerk, resend_at, 1, request.request, Outcome::Rejected(Reject::SessionExpired));
    let outputs: Vec<_> = std::iter::from_fn(|| clerk.poll_output()).collect();
    assert!(
        outputs.iter().all(|output| !matches!(output, ClerkOutput::Finished { .. })),
        "not indeterminate: {outputs:?}"
    );
    assert!(
        outputs.iter().any(
            |output| matches!(output, ClerkOutput::Send { request, .. } if request.op == Op::Register)
        ),
        "a new session is opened to run it again: {outputs:?}"
    );
}
