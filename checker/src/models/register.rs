//! A single compare-and-set register holding an integer or nil, the model of Jepsen's etcd tests.

use crate::model::{Model, Partition, Recorded};
use crate::models::cas_outcome_word;

/// The register: reads, writes and compare-and-set on one value that starts as nil.
#[derive(Clone, Copy, Debug, Default)]
pub struct RegisterModel;

/// One register operation as a Jepsen process recorded it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegisterOperation {
    /// The order of its invocation in the log, from 0.
    pub id: u64,
    /// The Jepsen process.
    pub process: u64,
    /// When it was invoked.
    pub call: u64,
    /// `None`: the outcome is unknown (`:info`).
    pub ret: Option<u64>,
    /// What it asked for, with its output.
    pub command: RegisterCommand,
}

/// What a register operation asked for, with its output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegisterCommand {
    /// Reads the register.
    Read {
        /// What the read returned.
        output: ReadOutput,
    },
    /// Sets the register.
    Write {
        /// The value written.
        value: i64,
    },
    /// If the register holds `from`, it now holds `to`. `swapped: None` when unknown.
    Cas {
        /// The value it must hold.
        from: i64,
        /// The value it then holds.
        to: i64,
        /// Whether it swapped; `None` when unknown.
        swapped: Option<bool>,
    },
}

/// What a read returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadOutput {
    /// The outcome is unknown: any value may have been read.
    Unknown,
    /// The register held nothing.
    Nil,
    /// The register held this value.
    Value(i64),
}

impl Model for RegisterModel {
    type Operation = RegisterOperation;
    /// `None` is nil.
    type State = Option<i64>;

    fn init(&self) -> Option<i64> {
        None
    }

    fn step(&self, state: &Option<i64>, operation: &RegisterOperation) -> Option<Option<i64>> {
        let state = *state;
        match operation.command {
            RegisterCommand::Read { output } => {
                let allowed = match output {
                    ReadOutput::Unknown => true,
                    ReadOutput::Nil => state.is_none(),
                    ReadOutput::Value(value) => state == Some(value),
                };
                allowed.then_some(state)
            }
            RegisterCommand::Write { value } => Some(Some(value)),
            RegisterCommand::Cas { from, to, swapped } => {
                let holds_from = state == Some(from);
                if swapped.is_some_and(|swapped| swapped != holds_from) {
                    return None;
                }
                Some(if holds_from { Some(to) } else { state })
            }
        }
    }

    fn is_read_only(&self, operation: &RegisterOperation) -> bool {
        matches!(
            operation.command,
            RegisterCommand::Read { .. } | RegisterCommand::Cas { swapped: Some(false), .. }
        )
    }

    /// A read sees the value now, or the one that another write may leave.
    fn may_become_allowed<'a>(
        &self,
        state: &Option<i64>,
        read: &RegisterOperation,
        mut resets: impl Iterator<Item = &'a RegisterOperation>,
        _extensions: impl Iterator<Item = &'a RegisterOperation>,
    ) -> bool {
        let wanted = match read.command {
            RegisterCommand::Read { output: ReadOutput::Value(value) } => Some(value),
            RegisterCommand::Read { output: ReadOutput::Nil } => None,
            _ => return true,
        };
        *state == wanted
            || resets.any(|reset| match reset.command {
                RegisterCommand::Write { value } | RegisterCommand::Cas { to: value, .. } => {
                    wanted == Some(value)
                }
                RegisterCommand::Read { .. } => true,
            })
    }

    fn partition(&self, history: &[RegisterOperation]) -> Vec<Partition> {
        vec![Partition { name: "the register".to_owned(), ops: (0..history.len()).collect() }]
    }

    fn describe_operation(&self, operation: &RegisterOperation) -> String {
        match operation.command {
            RegisterCommand::Read { output } => match output {
                ReadOutput::Unknown => "read -> ?".to_owned(),
                ReadOutput::Nil => "read -> nil".to_owned(),
                ReadOutput::Value(value) => format!("read -> {value}"),
            },
            RegisterCommand::Write { value } => format!("write({value})"),
            RegisterCommand::Cas { from, to, swapped } => {
                format!("cas({from} -> {to}) -> {}", cas_outcome_word(swapped))
            }
        }
    }

    fn describe_state(&self, state: &Option<i64>) -> String {
        match state {
            None => "holds nil".to_owned(),
            Some(value) => format!("holds {value}"),
        }
    }
}

impl Recorded for RegisterOperation {
    fn id(&self) -> u64 {
        self.id
    }

    fn client(&self) -> u64 {
        self.process
    }

    fn call(&self) -> u64 {
        self.call
    }

    fn ret(&self) -> Option<u64> {
        self.ret
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(command: RegisterCommand) -> RegisterOperation {
        RegisterOperation { id: 0, process: 0, call: 0, ret: Some(1), command }
    }

    #[test]
    fn reads_see_the_value_or_nil() {
        let model = RegisterModel;
        let read = |output| op(RegisterCommand::Read { output });
        assert_eq!(model.step(&None, &read(ReadOutput::Nil)), Some(None));
        assert_eq!(model.step(&Some(0), &read(ReadOutput::Nil)), None);
        assert_eq!(model.step(&Some(3), &read(ReadOutput::Value(3))), Some(Some(3)));
        assert_eq!(model.step(&None, &read(ReadOutput::Value(3))), None);
        assert_eq!(model.step(&Some(7), &read(ReadOutput::Unknown)), Some(Some(7)));
    }

    #[test]
    fn cas_swaps_exactly_when_the_register_holds_from() {
        let model = RegisterModel;
        let cas = |swapped| op(RegisterCommand::Cas { from: 1, to: 2, swapped });
        assert_eq!(model.step(&Some(1), &cas(Some(true))), Some(Some(2)));
        assert_eq!(model.step(&Some(1), &cas(Some(false))), None);
        assert_eq!(model.step(&None, &cas(Some(true))), None);
        assert_eq!(model.step(&None, &cas(Some(false))), Some(None));
        assert_eq!(model.step(&Some(1), &cas(None)), Some(Some(2)));
        assert_eq!(model.step(&Some(5), &cas(None)), Some(Some(5)));
        assert_eq!(model.step(&None, &op(RegisterCommand::Write { value: 4 })), Some(Some(4)));
    }

    #[test]
    fn a_read_may_become_allowed_only_through_a_write_of_its_value() {
        let model = RegisterModel;
        let read = op(RegisterCommand::Read { output: ReadOutput::Value(2) });
        let writes = [
            op(RegisterCommand::Write { value: 1 }),
            op(RegisterCommand::Cas { from: 1, to: 2, swapped: None }),
        ];
        assert!(model.may_become_allowed(&Some(2), &read, [].iter(), [].iter()));
        assert!(!model.may_become_allowed(&Some(1), &read, writes[..1].iter(), [].iter()));
        assert!(model.may_become_allowed(&Some(1), &read, writes.iter(), [].iter()));
        let nil = op(RegisterCommand::Read { output: ReadOutput::Nil });
        assert!(!model.may_become_allowed(&Some(1), &nil, writes.iter(), [].iter()));
    }
}
