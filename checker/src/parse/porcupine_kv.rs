//! Porcupine's key-value logs: one EDN map a line, in real-time order, without timestamps.
//!
//! ```text
//! {:process 9, :type :invoke, :f :append, :key "0", :value "x 9 0 y"}
//! {:process 9, :type :ok, :f :append, :key "0", :value "x 9 0 y"}
//! {:process 4, :type :invoke, :f :get, :key "3", :value nil}
//! {:process 4, :type :ok, :f :get, :key "3", :value ""}
//! ```
//!
//! Functions are `:get`, `:put` and `:append`; types `:invoke`, then `:ok`, `:fail` (a failed
//! put or append did not happen, a failed get returned nothing) or `:info` (unknown outcome). Times are line numbers; an invocation still open at the
//! end has an unknown outcome.

use std::collections::HashMap;

use crate::history::{Command, Operation};
use crate::parse::ParseError;

/// Reads a Porcupine key-value log. Blank lines are skipped.
pub fn parse(text: &str) -> Result<Vec<Operation>, ParseError> {
    let mut log = PorcupineLog::default();
    for (index, line) in text.lines().enumerate() {
        let number = index + 1;
        if line.trim().is_empty() {
            continue;
        }
        let event = Event::parse(line).map_err(|message| ParseError::new(number, message))?;
        // A line's number is its time: the log is in the order things happened.
        let time = number as u64;
        let read = if event.kind == "invoke" {
            log.invoke(event, time)
        } else {
            log.complete(event, time)
        };
        read.map_err(|message| ParseError::new(number, message))?;
    }
    Ok(log.into_operations())
}

/// The operations read so far, which of them took effect, and the invocations still open.
#[derive(Default)]
struct PorcupineLog {
    history: Vec<Operation>,
    /// Whether each operation may have taken effect (a failed write did not).
    happened: Vec<bool>,
    /// The open invocation of each process, by position in `history`.
    open: HashMap<u64, usize>,
}

impl PorcupineLog {
    fn invoke(&mut self, event: Event<'_>, time: u64) -> Result<(), String> {
        if let Some(&earlier) = self.open.get(&event.process) {
            return Err(format!(
                "process {} invokes while its invocation on line {} is still open",
                event.process, self.history[earlier].call
            ));
        }
        let command = match (event.function, event.value) {
            ("get", Value::Nil) => Command::Get { output: None },
            ("put", Value::Text(value)) => Command::Put { value },
            ("append", Value::Text(value)) => Command::Append { value },
            (function, _) => return Err(format!("an invocation of {function} with that :value")),
        };
        self.open.insert(event.process, self.history.len());
        self.happened.push(true);
        self.history.push(Operation {
            id: self.history.len() as u64,
            client: event.process,
            call: time,
            ret: None,
            key: event.key,
            command,
        });
        Ok(())
    }

    fn complete(&mut self, event: Event<'_>, time: u64) -> Result<(), String> {
        let Some(position) = self.open.remove(&event.process) else {
            return Err(format!("process {} has no open invocation to complete", event.process));
        };
        let operation = &mut self.history[position];
        let invoked = match operation.command {
            Command::Get { .. } => "get",
            Command::Put { .. } => "put",
            _ => "append",
        };
        if event.function != invoked {
            return Err(format!("{} completes an invocation of {invoked}", event.function));
        }
        if event.key != operation.key {
            return Err(format!(
                "completes an invocation on key {:?} with key {:?}",
                operation.key, event.key
            ));
        }
        match (event.kind, &mut operation.command, event.value) {
            ("info", _, _) => {}
            // A failed get did nothing, like a get whose output is unknown.
            ("fail", Command::Get { .. }, _) => operation.ret = Some(time),
            ("fail", _, _) => self.happened[position] = false,
            ("ok", Command::Get { output }, Value::Text(value)) => {
                *output = Some(value);
                operation.ret = Some(time);
            }
            ("ok", Command::Put { value } | Command::Append { value }, Value::Text(returned))
                if *value == returned =>
            {
                operation.ret = Some(time);
            }
            _ => {
                return Err(format!("does not complete the invocation on line {}", operation.call));
            }
        }
        Ok(())
    }

    /// The operations that may have taken effect.
    fn into_operations(self) -> Vec<Operation> {
        let happened = self.history.into_iter().zip(self.happened);
        happened.filter(|&(_, happened)| happened).map(|(operation, _)| operation).collect()
    }
}

/// The fields of one line.
struct Event<'a> {
    process: u64,
    /// Without the colon: `invoke`, `ok`, `fail` or `info`.
    kind: &'a str,
    /// Without the colon: `get`, `put` or `append`.
    function: &'a str,
    key: String,
    value: Value,
}

enum Value {
    Nil,
    Text(String),
}

impl<'a> Event<'a> {
    fn parse(line: &'a str) -> Result<Self, String> {
        let mut tokens = Tokens::of_map(line)?;
        let (mut process, mut kind, mut function, mut key, mut value) =
            (None, None, None, None, None);
        while let Some(name) = tokens.keyword()? {
            match name {
                "process" => process = Some(tokens.integer()?),
                "type" => kind = Some(tokens.keyword_value(&["invoke", "ok", "fail", "info"])?),
                "f" => function = Some(tokens.keyword_value(&["get", "put", "append"])?),
                "key" => key = Some(tokens.string()?),
                "value" => value = Some(tokens.string_or_nil()?),
                other => return Err(format!("unknown field :{other}")),
            }
        }
        let missing = |field: &str| format!("missing field :{field}");
        Ok(Event {
            process: process.ok_or_else(|| missing("process"))?,
            kind: kind.ok_or_else(|| missing("type"))?,
            function: function.ok_or_else(|| missing("f"))?,
            key: key.ok_or_else(|| missing("key"))?,
            value: value.ok_or_else(|| missing("value"))?,
        })
    }
}

/// The inside of a one-line EDN map of keywords to integers, keywords, strings and nil. Commas
/// are whitespace in EDN.
struct Tokens<'a> {
    rest: &'a str,
}

impl<'a> Tokens<'a> {
    fn of_map(line: &'a str) -> Result<Self, String> {
        let inner = line
            .trim()
            .strip_prefix('{')
            .and_then(|inner| inner.strip_suffix('}'))
            .ok_or("expected a map: {...}")?;
        Ok(Tokens { rest: inner })
    }

    fn skip_separators(&mut self) {
        self.rest = self.rest.trim_start_matches(|c: char| c.is_whitespace() || c == ',');
    }

    /// The next bare word (up to a separator).
    fn word(&mut self) -> &'a str {
        self.skip_separators();
        let end =
            self.rest.find(|c: char| c.is_whitespace() || c == ',').unwrap_or(self.rest.len());
        let (word, rest) = self.rest.split_at(end);
        self.rest = rest;
        word
    }

    /// The next keyword without its colon, or `None` at the end of the map.
    fn keyword(&mut self) -> Result<Option<&'a str>, String> {
        self.skip_separators();
        if self.rest.is_empty() {
            return Ok(None);
        }
        let word = self.word();
        match word.strip_prefix(':') {
            Some(name) if !name.is_empty() => Ok(Some(name)),
            _ => Err(format!("expected a keyword, not {word:?}")),
        }
    }

    fn keyword_value(&mut self, allowed: &[&'static str]) -> Result<&'a str, String> {
        match self.keyword()? {
            Some(name) if allowed.contains(&name) => Ok(name),
            found => Err(format!(
                "expected one of :{}, not {}",
                allowed.join(", :"),
                found.map_or_else(|| "the end".to_owned(), |name| format!(":{name}"))
            )),
        }
    }

    fn integer(&mut self) -> Result<u64, String> {
        let word = self.word();
        word.parse().map_err(|_| format!("expected a number, not {word:?}"))
    }

    fn string_or_nil(&mut self) -> Result<Value, String> {
        self.skip_separators();
        if self.rest.starts_with('"') {
            return self.string().map(Value::Text);
        }
        match self.word() {
            "nil" => Ok(Value::Nil),
            word => Err(format!("expected a string or nil, not {word:?}")),
        }
    }

    fn string(&mut self) -> Result<String, String> {
        self.skip_separators();
        let mut chars = self
            .rest
            .strip_prefix('"')
            .ok_or_else(|| format!("expected a string at {:?}", self.rest))?
            .char_indices();
        let body = &self.rest[1..];
        let mut text = String::new();
        while let Some((at, c)) = chars.next() {
            match c {
                '"' => {
                    self.rest = &body[at + 1..];
                    return Ok(text);
                }
                '\\' => match chars.next() {
                    Some((_, '"')) => text.push('"'),
                    Some((_, '\\')) => text.push('\\'),
                    Some((_, 'n')) => text.push('\n'),
                    Some((_, 't')) => text.push('\t'),
                    other => {
                        return Err(format!("unknown escape \\{}", other.map_or(' ', |(_, c)| c)));
                    }
                },
                c => text.push(c),
            }
        }
        Err("unterminated string".to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_invocations_and_completions_by_line_order() {
        let text = r#"{:process 0, :type :invoke, :f :put, :key "1", :value "a \"b\""}
{:process 1, :type :invoke, :f :get, :key "1", :value nil}
{:process 0, :type :ok, :f :put, :key "1", :value "a \"b\""}
{:process 1, :type :ok, :f :get, :key "1", :value ""}
{:process 2, :type :invoke, :f :append, :key "2", :value "x"}
{:process 3, :type :invoke, :f :append, :key "2", :value "y"}
{:process 3, :type :fail, :f :append, :key "2", :value "y"}
"#;
        let history = parse(text).unwrap();
        let shape: Vec<(u64, u64, Option<u64>, &str, &Command)> = history
            .iter()
            .map(|op| (op.client, op.call, op.ret, op.key.as_str(), &op.command))
            .collect();
        let put = Command::Put { value: "a \"b\"".to_owned() };
        let get = Command::Get { output: Some(String::new()) };
        let append = Command::Append { value: "x".to_owned() };
        assert_eq!(
            shape,
            [(0, 1, Some(3), "1", &put), (1, 2, Some(4), "1", &get), (2, 5, None, "2", &append),]
        );
    }

    #[test]
    fn rejects_malformed_lines_with_their_number() {
        let first = r#"{:process 0, :type :invoke, :f :get, :key "1", :value nil}"#;
        let cases = [
            (r#":process 1"#, "expected a map"),
            (r#"{:process x, :type :invoke, :f :get, :key "1", :value nil}"#, "expected a number"),
            (
                r#"{:process 1, :type :invoke, :f :cas, :key "1", :value nil}"#,
                "expected one of :get, :put, :append",
            ),
            (r#"{:process 1, :type :invoke, :f :get, :key "1"}"#, "missing field :value"),
            (
                r#"{:process 1, :type :invoke, :f :get, :key "1", :value nil, :time 3}"#,
                "unknown field :time",
            ),
            (r#"{:process 1, :type :invoke, :f :put, :key "1", :value "a}"#, "unterminated string"),
            (
                r#"{:process 1, :type :invoke, :f :put, :key "1", :value nil}"#,
                "an invocation of put",
            ),
            (r#"{:process 1, :type :ok, :f :get, :key "1", :value ""}"#, "no open invocation"),
            (r#"{:process 0, :type :invoke, :f :get, :key "1", :value nil}"#, "still open"),
            (
                r#"{:process 0, :type :ok, :f :get, :key "2", :value ""}"#,
                "on key \"1\" with key \"2\"",
            ),
            (
                r#"{:process 0, :type :ok, :f :put, :key "1", :value ""}"#,
                "put completes an invocation of get",
            ),
            (
                r#"{:process 0, :type :ok, :f :get, :key "1", :value nil}"#,
                "does not complete the invocation on line 1",
            ),
        ];
        for (second, reason) in cases {
            let error = parse(&format!("{first}\n{second}\n")).expect_err(second);
            assert_eq!(error.line, 2, "{second}");
            assert!(error.message.contains(reason), "{second}: {error} lacks {reason:?}");
        }
    }
}
