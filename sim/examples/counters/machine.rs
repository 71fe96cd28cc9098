//! A state machine of our own under simulation: named counters that clients add to, read,
//! and add to on a condition (only if the counter holds what the client last saw). Three
//! parts make it simulatable: the state machine (`Counters`), its sequential specification
//! for the linearizability checker (`CounterModel`), and the workload and its translation of
//! the history (`CounterMachine`, the simulator's `Machine`).

use std::collections::BTreeMap;
use std::io;

use raftkv_checker::{Model, Partition, Recorded as Checked};
use raftkv_core::Instant;
use raftkv_core::client::ClerkError;
use raftkv_core::prng::Prng;
use raftkv_core::state_machine::{InvalidCommand, RestoreError, StateMachine};
use raftkv_sim::{Machine, Recorded};
use serde::{Deserialize, Serialize};

/// The counters, by name; a counter never written holds 0.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Counters {
    values: BTreeMap<u8, u64>,
}

/// What a client asks of a counter.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum CounterCommand {
    /// The counter's value.
    Read { counter: u8 },
    /// Adds `amount`; answers the new value.
    Add { counter: u8, amount: u64 },
    /// Adds `amount` if the counter holds `expected`; answers the new value, or the value it
    /// holds instead.
    AddIf { counter: u8, expected: u64, amount: u64 },
}

/// A counter's answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum CounterReply {
    /// The value (after the addition, for an addition).
    Value(u64),
    /// The condition did not hold: nothing changed, and the counter holds `actual`.
    Unchanged { actual: u64 },
}

impl CounterCommand {
    fn counter(&self) -> u8 {
        match *self {
            CounterCommand::Read { counter }
            | CounterCommand::Add { counter, .. }
            | CounterCommand::AddIf { counter, .. } => counter,
        }
    }
}

/// Largest amount one command adds: sums stay far from overflowing.
const AMOUNT_MAX: u64 = 1 << 32;

impl StateMachine for Counters {
    type Command = CounterCommand;
    type Reply = CounterReply;
    /// A copy: there are few counters.
    type View = BTreeMap<u8, u64>;

    fn is_read_only(command: &CounterCommand) -> bool {
        matches!(command, CounterCommand::Read { .. })
    }

    fn validate(&self, command: &CounterCommand) -> Result<(), InvalidCommand> {
        match command {
            CounterCommand::Add { amount, .. } | CounterCommand::AddIf { amount, .. }
                if *amount > AMOUNT_MAX =>
            {
                Err(InvalidCommand { reason: format!("adds more than {AMOUNT_MAX}") })
            }
            _ => Ok(()),
        }
    }

    fn apply(&mut self, command: &CounterCommand) -> CounterReply {
        let value = self.values.entry(command.counter()).or_insert(0);
        match *command {
            CounterCommand::AddIf { expected, .. } if expected != *value => {
                CounterReply::Unchanged { actual: *value }
            }
            CounterCommand::Add { amount, .. } | CounterCommand::AddIf { amount, .. } => {
                *value = value.saturating_add(amount);
                CounterReply::Value(*value)
            }
            CounterCommand::Read { .. } => CounterReply::Value(*value),
        }
    }

    fn read(&self, command: &CounterCommand) -> CounterReply {
        CounterReply::Value(self.values.get(&command.counter()).copied().unwrap_or(0))
    }

    fn view(&self) -> BTreeMap<u8, u64> {
        self.values.clone()
    }

    /// The encoding: one byte of name and eight of value per counter.
    fn encoded_len(view: &BTreeMap<u8, u64>) -> u64 {
        view.len() as u64 * 9
    }

    fn encode_into(view: &BTreeMap<u8, u64>, out: &mut dyn io::Write) -> io::Result<()> {
        for (name, value) in view {
            out.write_all(&[*name])?;
            out.write_all(&value.to_le_bytes())?;
        }
        Ok(())
    }

    fn restore(&mut self, snapshot: &[u8]) -> Result<(), RestoreError> {
        let records = snapshot.chunks_exact(9);
        if !records.remainder().is_empty() {
            return Err(RestoreError { reason: format!("{} bytes", snapshot.len()) });
        }
        self.values = records
            .map(|record| {
                let value = u64::from_le_bytes(record[1..].try_into().expect("8 bytes"));
                (record[0], value)
            })
            .collect();
        Ok(())
    }
}

/// One operation as the checker takes it: the command, and its reply if the client got one.
#[derive(Clone, Debug)]
pub(crate) struct CounterOp {
    id: u64,
    client: u64,
    call: u64,
    ret: Option<u64>,
    command: CounterCommand,
    reply: Option<CounterReply>,
}

impl Checked for CounterOp {
    fn id(&self) -> u64 {
        self.id
    }
    fn client(&self) -> u64 {
        self.client
    }
    fn call(&self) -> u64 {
        self.call
    }
    fn ret(&self) -> Option<u64> {
        self.ret
    }
}

/// One counter, sequentially: the specification the history is checked against. Counters
/// are independent, so each is checked apart.
pub(crate) struct CounterModel;

impl Model for CounterModel {
    type Operation = CounterOp;
    type State = u64;

    fn init(&self) -> u64 {
        0
    }

    fn step(&self, state: &u64, op: &CounterOp) -> Option<u64> {
        // The specification is the state machine itself, on this one counter.
        let mut counters = Counters::default();
        counters.values.insert(op.command.counter(), *state);
        let reply = counters.apply(&op.command);
        let allowed = op.reply.as_ref().is_none_or(|recorded| *recorded == reply);
        allowed.then(|| counters.values[&op.command.counter()])
    }

    fn is_read_only(&self, op: &CounterOp) -> bool {
        matches!(
            (&op.command, &op.reply),
            (CounterCommand::Read { .. }, _) | (_, Some(CounterReply::Unchanged { .. }))
        )
    }

    fn partition(&self, history: &[CounterOp]) -> Vec<Partition> {
        let mut by_counter: BTreeMap<u8, Vec<usize>> = BTreeMap::new();
        for (index, op) in history.iter().enumerate() {
            by_counter.entry(op.command.counter()).or_default().push(index);
        }
        let part = |(counter, ops)| Partition { name: format!("counter {counter}"), ops };
        by_counter.into_iter().map(part).collect()
    }

    fn describe_operation(&self, op: &CounterOp) -> String {
        match &op.reply {
            Some(reply) => format!("{:?} -> {reply:?}", op.command),
            None => format!("{:?} -> ?", op.command),
        }
    }

    fn describe_state(&self, state: &u64) -> String {
        format!("holds {state}")
    }
}

/// Counters as the simulator runs them: a random workload of reads, additions and conditional
/// additions on a few counters.
#[derive(Default)]
pub(crate) struct CounterMachine {
    /// By client: the value it last saw of each counter, which its conditional additions
    /// expect.
    seen: Vec<BTreeMap<u8, u64>>,
}

/// Counters the workload uses: few, so that clients contend.
const COUNTERS: u8 = 3;

impl CounterMachine {
    fn seen(&mut self, client: usize) -> &mut BTreeMap<u8, u64> {
        if self.seen.len() <= client {
            self.seen.resize_with(client + 1, BTreeMap::new);
        }
        &mut self.seen[client]
    }
}

impl Machine for CounterMachine {
    type State = Counters;
    type Model = CounterModel;

    fn new_state(&self) -> Counters {
        Counters::default()
    }

    fn next_command(&mut self, rng: &mut Prng, client: usize) -> CounterCommand {
        let counter = rng.range_inclusive(0, u64::from(COUNTERS) - 1) as u8;
        let amount = rng.range_inclusive(1, 9);
        match rng.range_inclusive(0, 2) {
            0 => CounterCommand::Read { counter },
            1 => CounterCommand::Add { counter, amount },
            _ => {
                let expected = self.seen(client).get(&counter).copied().unwrap_or(0);
                CounterCommand::AddIf { counter, expected, amount }
            }
        }
    }

    fn observe(&mut self, client: usize, command: &CounterCommand, reply: &CounterReply) {
        let (CounterReply::Value(value) | CounterReply::Unchanged { actual: value }) = *reply;
        self.seen(client).insert(command.counter(), value);
    }

    fn final_reads(&self) -> Vec<CounterCommand> {
        (0..COUNTERS).map(|counter| CounterCommand::Read { counter }).collect()
    }

    fn reply_fits(command: &CounterCommand, reply: &CounterReply) -> bool {
        matches!(
            (command, reply),
            (_, CounterReply::Value(_))
                | (CounterCommand::AddIf { .. }, CounterReply::Unchanged { .. })
        )
    }

    /// Adds one to counter 0.
    fn hand_command(_value: &str) -> CounterCommand {
        CounterCommand::Add { counter: 0, amount: 1 }
    }

    fn model(&self) -> CounterModel {
        CounterModel
    }

    fn to_checker(history: &[Recorded<CounterCommand, CounterReply>]) -> Vec<CounterOp> {
        let nanos = |at: Instant| (at - Instant::ZERO).as_nanos();
        let op = |(id, recorded): (usize, &Recorded<CounterCommand, CounterReply>)| {
            // A reply is known only if the client got one; otherwise it may have taken
            // effect or not.
            let reply = match &recorded.ret {
                Some((at, Ok(reply))) => Some((nanos(*at), reply.clone())),
                Some((_, Err(ClerkError::Indeterminate | ClerkError::Invalid { .. }))) | None => {
                    None
                }
            };
            CounterOp {
                id: id as u64,
                client: recorded.client as u64,
                call: nanos(recorded.call),
                ret: reply.as_ref().map(|(at, _)| *at),
                command: recorded.command.clone(),
                reply: reply.map(|(_, reply)| reply),
            }
        };
        history.iter().enumerate().map(op).collect()
    }
}
