//! Jepsen's etcd logs: one register event a line, in real-time order, without timestamps.
//!
//! ```text
//! INFO  jepsen.util - 3   :invoke :cas    [3 0]
//! INFO  jepsen.util - 3   :ok     :cas    [3 0]
//! ```
//!
//! Fields after the marker are separated by tabs or runs of spaces: process, type (`:invoke`,
//! `:ok`, `:fail`, `:info`), function (`:read`, `:write`, `:cas`) and value. Times are line
//! numbers. `:ok` and `:fail` close the process's open invocation: a failed cas did not swap, a
//! failed read returned nothing (its output is unknown), a failed write did not happen. `:info`
//! leaves the outcome unknown for good, and so does the end of the log for invocations still
//! open.

use std::collections::HashMap;

use crate::models::register::{ReadOutput, RegisterCommand, RegisterOperation};
use crate::parse::ParseError;

/// What precedes the fields of every event line.
pub(crate) const MARKER: &str = "jepsen.util - ";

/// Reads a Jepsen etcd log. Blank lines are skipped; any other line must be an event.
pub fn parse(text: &str) -> Result<Vec<RegisterOperation>, ParseError> {
    let mut history: Vec<RegisterOperation> = Vec::new();
    let mut open: HashMap<u64, usize> = HashMap::new();
    let mut happened = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let number = index + 1;
        if line.trim().is_empty() {
            continue;
        }
        let event = Event::parse(line).map_err(|message| ParseError::new(number, message))?;
        let time = number as u64;
        if event.kind == ":invoke" {
            if let Some(&earlier) = open.get(&event.process) {
                let message = format!(
                    "process {} invokes while its invocation on line {} is still open",
                    event.process, history[earlier].call
                );
                return Err(ParseError::new(number, message));
            }
            let command = event.invocation().map_err(|message| ParseError::new(number, message))?;
            open.insert(event.process, history.len());
            happened.push(true);
            history.push(RegisterOperation {
                id: history.len() as u64,
                process: event.process,
                call: time,
                ret: None,
                command,
            });
            continue;
        }
        let Some(position) = open.remove(&event.process) else {
            let message = format!("process {} has no open invocation to complete", event.process);
            return Err(ParseError::new(number, message));
        };
        let operation = &mut history[position];
        let completion = event
            .complete(operation.command)
            .map_err(|message| ParseError::new(number, message))?;
        match completion {
            Completion::Returned(command) => {
                operation.command = command;
                operation.ret = Some(time);
            }
            Completion::Unknown => {}
            Completion::DidNotHappen => happened[position] = false,
        }
    }
    let happened = history.into_iter().zip(happened).filter(|&(_, happened)| happened);
    Ok(happened.map(|(operation, _)| operation).collect())
}

/// The fields of one line.
struct Event<'a> {
    process: u64,
    kind: &'a str,
    function: &'a str,
    /// The value, with its inner spaces (a cas value is `[from to]`).
    value: Vec<&'a str>,
}

enum Completion {
    /// It took effect with this output.
    Returned(RegisterCommand),
    /// `:info`: it may or may not have taken effect.
    Unknown,
    /// A failed write: it did not take effect.
    DidNotHappen,
}

impl<'a> Event<'a> {
    fn parse(line: &'a str) -> Result<Self, String> {
        let Some((_, fields)) = line.split_once(MARKER) else {
            return Err(format!("not a Jepsen event: no {:?}", MARKER.trim_end()));
        };
        let mut fields = fields.split_whitespace();
        let (Some(process), Some(kind), Some(function)) =
            (fields.next(), fields.next(), fields.next())
        else {
            return Err("expected a process, a type and a function".to_owned());
        };
        let process =
            process.parse().map_err(|_| format!("the process is a number, not {process:?}"))?;
        if !matches!(kind, ":invoke" | ":ok" | ":fail" | ":info") {
            return Err(format!("unknown type {kind}: :invoke, :ok, :fail or :info"));
        }
        if !matches!(function, ":read" | ":write" | ":cas") {
            return Err(format!("unknown function {function}: :read, :write or :cas"));
        }
        Ok(Event { process, kind, function, value: fields.collect() })
    }

    fn invocation(&self) -> Result<RegisterCommand, String> {
        Ok(match self.function {
            ":read" => {
                self.expect_value(&["nil"])?;
                RegisterCommand::Read { output: ReadOutput::Unknown }
            }
            ":write" => RegisterCommand::Write { value: self.integer()? },
            _ => {
                let (from, to) = self.pair()?;
                RegisterCommand::Cas { from, to, swapped: None }
            }
        })
    }

    fn complete(&self, invoked: RegisterCommand) -> Result<Completion, String> {
        let invoked_function = match invoked {
            RegisterCommand::Read { .. } => ":read",
            RegisterCommand::Write { .. } => ":write",
            RegisterCommand::Cas { .. } => ":cas",
        };
        if self.function != invoked_function {
            return Err(format!(
                "{} {} completes an invocation of {invoked_function}",
                self.kind, self.function
            ));
        }
        match (self.kind, invoked) {
            (":info", _) => Ok(Completion::Unknown),
            (":ok", RegisterCommand::Read { .. }) => {
                let output = match self.value.as_slice() {
                    ["nil"] => ReadOutput::Nil,
                    _ => ReadOutput::Value(self.integer()?),
                };
                Ok(Completion::Returned(RegisterCommand::Read { output }))
            }
            (":ok", RegisterCommand::Write { value }) => {
                self.expect_value(&[&value.to_string()])?;
                Ok(Completion::Returned(invoked))
            }
            (":ok" | ":fail", RegisterCommand::Cas { from, to, .. }) => {
                if self.pair()? != (from, to) {
                    return Err(format!("completes an invocation of [{from} {to}]"));
                }
                let swapped = Some(self.kind == ":ok");
                Ok(Completion::Returned(RegisterCommand::Cas { from, to, swapped }))
            }
            // A failed read did nothing, like a read whose output is unknown (as Porcupine has it).
            (_, RegisterCommand::Read { .. }) => Ok(Completion::Returned(invoked)),
            // `:fail :write`.
            _ => Ok(Completion::DidNotHappen),
        }
    }

    fn expect_value(&self, expected: &[&str]) -> Result<(), String> {
        if self.value == expected {
            Ok(())
        } else {
            Err(format!(
                "{} {} takes the value {}, not {:?}",
                self.kind,
                self.function,
                expected.join(" "),
                self.value.join(" ")
            ))
        }
    }

    fn integer(&self) -> Result<i64, String> {
        match self.value.as_slice() {
            [value] => value.parse().map_err(|_| format!("expected an integer, not {value:?}")),
            _ => Err(format!("expected an integer, not {:?}", self.value.join(" "))),
        }
    }

    fn pair(&self) -> Result<(i64, i64), String> {
        let value = self.value.join(" ");
        let pair = value
            .strip_prefix('[')
            .and_then(|inner| inner.strip_suffix(']'))
            .and_then(|inner| inner.split_once(' '))
            .and_then(|(from, to)| Some((from.parse().ok()?, to.parse().ok()?)));
        pair.ok_or_else(|| format!("expected [from to], not {value:?}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(process: u64, kind: &str, function: &str, value: &str) -> String {
        format!("INFO  jepsen.util - {process}\t{kind}\t{function}\t{value}\n")
    }

    #[test]
    fn reads_each_completion_as_porcupine_does() {
        let text = [
            line(0, ":invoke", ":read", "nil"),
            line(1, ":invoke", ":cas", "[1 2]"),
            line(2, ":invoke", ":write", "3"),
            line(0, ":ok", ":read", "nil"),
            line(1, ":fail", ":cas", "[1 2]"),
            line(2, ":info", ":write", ":timed-out"),
            // Runs of spaces separate fields too.
            "INFO  jepsen.util - 3   :invoke :read  nil\n".to_owned(),
            line(3, ":fail", ":read", ":timed-out"),
            line(4, ":invoke", ":write", "5"),
            line(4, ":fail", ":write", "5"),
        ]
        .concat();
        let history = parse(&text).unwrap();
        let shape: Vec<(u64, Option<u64>, RegisterCommand)> =
            history.iter().map(|op| (op.call, op.ret, op.command)).collect();
        assert_eq!(
            shape,
            [
                (1, Some(4), RegisterCommand::Read { output: ReadOutput::Nil }),
                (2, Some(5), RegisterCommand::Cas { from: 1, to: 2, swapped: Some(false) }),
                (3, None, RegisterCommand::Write { value: 3 }),
                (7, Some(8), RegisterCommand::Read { output: ReadOutput::Unknown }),
            ]
        );
    }

    #[test]
    fn an_invocation_still_open_at_the_end_has_an_unknown_outcome() {
        let history = parse(&line(4, ":invoke", ":read", "nil")).unwrap();
        assert_eq!(history[0].ret, None);
        assert_eq!(history[0].command, RegisterCommand::Read { output: ReadOutput::Unknown });
    }

    #[test]
    fn rejects_malformed_lines_with_their_number() {
        let first = line(0, ":invoke", ":write", "1");
        let cases = [
            ("something else\n".to_owned(), "not a Jepsen event"),
            (line(5, ":invoke", ":write", "x"), "expected an integer"),
            (line(5, ":invoke", ":cas", "[1]"), "expected [from to]"),
            (line(5, ":invoke", ":incr", "1"), "unknown function :incr"),
            (line(5, ":done", ":read", "nil"), "unknown type :done"),
            (line(5, ":invoke", ":read", "1"), "takes the value nil"),
            (line(1, ":ok", ":write", "1"), "no open invocation"),
            (line(0, ":invoke", ":read", "nil"), "still open"),
            (line(0, ":ok", ":read", "nil"), "completes an invocation of :write"),
            (line(0, ":ok", ":write", "2"), "takes the value 1"),
        ];
        for (second, reason) in cases {
            let text = format!("{first}\n{second}");
            let error = parse(&text).expect_err(&second);
            // The first line is fine; the blank one is skipped but counted.
            assert_eq!(error.line, 3, "{second}");
            assert!(error.message.contains(reason), "{second}: {error} lacks {reason:?}");
        }
    }
}
