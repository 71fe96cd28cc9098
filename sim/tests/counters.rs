//! A state machine of our own under the simulator, as `examples/counters` runs it: every
//! seed passes, with its faults and a linearizability verdict of the counters' own model.

#[path = "../examples/counters/machine.rs"]
mod machine;

use machine::CounterMachine;
use raftkv_checker::Verdict;
use raftkv_sim::{Options, Shape, TraceOutput};

#[test]
fn counters_pass_100_seeds_with_their_faults_and_a_linearizability_verdict() {
    let mut crashed = 0;
    for seed in 0..100 {
        let options = Options::draw(seed, Shape::draw(seed));
        let report =
            raftkv_sim::run_machine(CounterMachine::default(), options, TraceOutput::Hidden);
        report.assert_passed();
        assert_eq!(report.linearizability, Some(Verdict::Linearizable), "seed {seed}");
        assert!(report.ops_ok > 0, "seed {seed} did no work");
        crashed += u32::from(report.stats.crashes > 0);
    }
    assert!(crashed > 10, "crashes struck in {crashed} of 100 runs");
}

#[test]
fn the_counters_model_refuses_a_read_that_misses_an_addition_that_returned_before_it() {
    use machine::{CounterCommand, CounterReply};
    use raftkv_core::Instant;
    use raftkv_sim::{Machine, Recorded};

    let at = Instant::from_millis;
    let op = |client, call, ret, command, reply| Recorded {
        client,
        command,
        call: at(call),
        ret: Some((at(ret), Ok(reply))),
    };
    let add = CounterCommand::Add { counter: 1, amount: 5 };
    let read = CounterCommand::Read { counter: 1 };
    let stale = [
        op(0, 0, 10, add.clone(), CounterReply::Value(5)),
        op(1, 20, 30, read.clone(), CounterReply::Value(0)),
    ];
    let overlapping =
        [op(0, 0, 10, add, CounterReply::Value(5)), op(1, 5, 30, read, CounterReply::Value(0))];
    let verdict = |history: &[Recorded<CounterCommand, CounterReply>]| {
        let operations = CounterMachine::to_checker(history);
        let limit = Some(std::time::Duration::from_secs(5));
        raftkv_checker::check(&operations, &CounterMachine::default().model(), limit).verdict
    };
    assert_eq!(verdict(&stale), Verdict::NotLinearizable);
    assert_eq!(verdict(&overlapping), Verdict::Linearizable);
}
