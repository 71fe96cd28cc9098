//! Our own history format: JSON Lines, one [`Operation`] a line, for example
//!
//! ```text
//! {"id":0,"client":1,"kind":"put","key":"x","value":"1","call":1000,"ret":2000}
//! {"id":1,"client":2,"kind":"get","key":"x","output":"1","call":1500,"ret":2500}
//! {"id":2,"client":3,"kind":"cas","key":"x","expected":"1","value":"2","call":1600,"ret":null}
//! ```
//!
//! `kind` is `get`, `put`, `append`, `delete` or `cas`. `value` is what a put or an append
//! writes and what a cas sets; `expected` is what a cas expects (`null`: the key is missing).
//! `output` is what a get read (`""` for a missing key) or whether a cas swapped (`"ok"` or
//! `"fail"`); it is there exactly when `ret` is not `null`. `call` and `ret` are times on one
//! clock shared by all clients; `ret` is `null` when the client never learned the outcome.
//! Ids are unique.

use std::collections::HashMap;
use std::io::{self, Write};

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::error::Category;

use crate::history::{Command, Operation};
use crate::parse::ParseError;

/// Reads a JSON Lines history. Blank lines are skipped; ids must be unique.
pub fn parse(text: &str) -> Result<Vec<Operation>, ParseError> {
    let mut history = Vec::new();
    let mut line_of_id = HashMap::new();
    for (index, line) in text.lines().enumerate() {
        let line_number = index + 1;
        if line.trim().is_empty() {
            continue;
        }
        let operation: Operation = serde_json::from_str(line)
            .map_err(|error| ParseError::new(line_number, json_message(&error)))?;
        if let Some(first) = line_of_id.insert(operation.id, line_number) {
            return Err(ParseError::new(
                line_number,
                format!("id {} is already used on line {first}", operation.id),
            ));
        }
        history.push(operation);
    }
    Ok(history)
}

/// Writes `history` in the format [`parse`] reads, one operation a line.
pub fn write(history: &[Operation], mut out: impl Write) -> io::Result<()> {
    for operation in history {
        serde_json::to_writer(&mut out, operation)?;
        out.write_all(b"\n")?;
    }
    Ok(())
}

/// serde_json appends the position within the parsed text, which is always line 1 here. The
/// column helps to find a syntax error; a data error (a missing field, a bad value) is about
/// the whole object.
fn json_message(error: &serde_json::Error) -> String {
    let message = error.to_string();
    let position = format!(" at line {} column {}", error.line(), error.column());
    let bare = message.strip_suffix(&position).unwrap_or(&message);
    match error.classify() {
        Category::Syntax | Category::Eof => {
            format!("invalid JSON at column {}: {bare}", error.column())
        }
        Category::Data | Category::Io => bare.to_owned(),
    }
}

/// An operation is serialized as the line it is read from.
impl Serialize for Operation {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        JsonLine::from(self.clone()).serialize(serializer)
    }
}

/// An operation is deserialized from a line, then validated.
impl<'de> Deserialize<'de> for Operation {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let line = JsonLine::deserialize(deserializer)?;
        Operation::try_from(line).map_err(serde::de::Error::custom)
    }
}

/// The flat shape of one line; [`Operation`] is its validated form.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonLine {
    id: u64,
    client: u64,
    kind: Kind,
    key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    value: Option<String>,
    /// Outer `None`: absent; `Some(None)`: `null` (a cas on a missing key).
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    expected: Option<Option<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    output: Option<String>,
    call: u64,
    /// Required, so that a forgotten `ret` is not mistaken for an unknown outcome.
    #[serde(default, deserialize_with = "present")]
    ret: Option<Option<u64>>,
}

#[derive(Clone, Copy, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Kind {
    Get,
    Put,
    Append,
    Delete,
    Cas,
}

/// Tells a field written as `null` (`Some(None)`) from an absent one (`None`, by `default`).
fn present<'de, T, D>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    T: Deserialize<'de>,
    D: Deserializer<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

const CAS_OK: &str = "ok";
const CAS_FAIL: &str = "fail";

impl TryFrom<JsonLine> for Operation {
    type Error = String;

    fn try_from(line: JsonLine) -> Result<Self, String> {
        let Some(ret) = line.ret else {
            return Err(
                "missing field `ret` (null if the client never learned the outcome)".to_owned()
            );
        };
        if let Some(ret) = ret {
            if ret < line.call {
                return Err(format!("ret {ret} is before call {}", line.call));
            }
        }
        let returned = ret.is_some();
        let kind = line.kind;
        let name = kind.name();
        let reject = |field: &str| Err(format!("{name} has no `{field}`"));
        let require = |field: &str| format!("{name} needs `{field}`");
        if !matches!(kind, Kind::Cas) && line.expected.is_some() {
            return reject("expected");
        }
        if matches!(kind, Kind::Get | Kind::Delete) && line.value.is_some() {
            return reject("value");
        }
        let has_output = matches!(kind, Kind::Get | Kind::Cas);
        match (&line.output, has_output, returned) {
            (Some(_), false, _) => return reject("output"),
            (Some(_), true, false) => {
                return Err(format!("{name} with `ret: null` has no `output`"));
            }
            (None, true, true) => return Err(require("output")),
            _ => {}
        }
        let command = match kind {
            Kind::Get => Command::Get { output: line.output },
            Kind::Put => Command::Put { value: line.value.ok_or_else(|| require("value"))? },
            Kind::Append => Command::Append { value: line.value.ok_or_else(|| require("value"))? },
            Kind::Delete => Command::Delete,
            Kind::Cas => Command::Cas {
                expected: line.expected.ok_or_else(|| {
                    format!("{} (null if the key must be missing)", require("expected"))
                })?,
                value: line.value.ok_or_else(|| require("value"))?,
                swapped: match line.output.as_deref() {
                    None => None,
                    Some(CAS_OK) => Some(true),
                    Some(CAS_FAIL) => Some(false),
                    Some(other) => {
                        return Err(format!("cas output is \"ok\" or \"fail\", not {other:?}"));
                    }
                },
            },
        };
        Ok(Operation {
            id: line.id,
            client: line.client,
            call: line.call,
            ret,
            key: line.key,
            command,
        })
    }
}

impl From<Operation> for JsonLine {
    fn from(operation: Operation) -> Self {
        let (kind, value, expected, output) = match operation.command {
            Command::Get { output } => (Kind::Get, None, None, output),
            Command::Put { value } => (Kind::Put, Some(value), None, None),
            Command::Append { value } => (Kind::Append, Some(value), None, None),
            Command::Delete => (Kind::Delete, None, None, None),
            Command::Cas { expected, value, swapped } => (
                Kind::Cas,
                Some(value),
                Some(expected),
                swapped.map(|swapped| if swapped { CAS_OK } else { CAS_FAIL }.to_owned()),
            ),
        };
        JsonLine {
            id: operation.id,
            client: operation.client,
            kind,
            key: operation.key,
            value,
            expected,
            output,
            call: operation.call,
            ret: Some(operation.ret),
        }
    }
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Get => "get",
            Kind::Put => "put",
            Kind::Append => "append",
            Kind::Delete => "delete",
            Kind::Cas => "cas",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"{"id":0,"client":1,"kind":"put","key":"x","value":"1","call":1000,"ret":2000}
{"id":1,"client":2,"kind":"get","key":"x","output":"1","call":1500,"ret":2500}

{"id":2,"client":3,"kind":"append","key":"x","value":"2","call":1600,"ret":null}
{"id":3,"client":3,"kind":"cas","key":"y","value":"a","expected":null,"output":"ok","call":1700,"ret":1800}
{"id":4,"client":4,"kind":"delete","key":"y","call":1900,"ret":null}
"#;

    #[test]
    fn reads_every_kind_and_writes_it_back_identically() {
        let history = parse(GOOD).unwrap();
        assert_eq!(history.len(), 5);
        assert_eq!(history[2].ret, None);
        assert_eq!(
            history[3].command,
            Command::Cas { expected: None, value: "a".to_owned(), swapped: Some(true) }
        );
        let mut written = Vec::new();
        write(&history, &mut written).unwrap();
        let expected: String =
            GOOD.lines().filter(|line| !line.is_empty()).map(|line| format!("{line}\n")).collect();
        assert_eq!(String::from_utf8(written).unwrap(), expected);
    }

    fn error_of(text: &str) -> ParseError {
        parse(text).expect_err("the text is malformed")
    }

    #[test]
    fn reports_the_line_of_the_first_bad_line() {
        let text = format!(
            "{GOOD}{{\"id\":9,\"client\":1,\"kind\":\"get\",\"key\":\"x\",\"call\":1,\"ret\":2}}\n"
        );
        let error = error_of(&text);
        assert_eq!(error.line, 7);
        assert!(error.message.contains("get needs `output`"), "{error}");
    }

    #[test]
    fn rejects_malformed_lines_with_a_reason() {
        let cases = [
            (
                r#"{"id":0,"client":1,"kind":"put","key":"x","value":"1","call":1}"#,
                "missing field `ret`",
            ),
            (
                r#"{"id":0,"client":1,"kind":"cas","key":"x","value":"1","output":"ok","call":1,"ret":2}"#,
                "cas needs `expected`",
            ),
            (
                r#"{"id":0,"client":1,"kind":"cas","key":"x","expected":"0","value":"1","output":"yes","call":1,"ret":2}"#,
                "\"ok\" or \"fail\"",
            ),
            (
                r#"{"id":0,"client":1,"kind":"get","key":"x","output":"1","call":1,"ret":null}"#,
                "has no `output`",
            ),
            (r#"{"id":0,"client":1,"kind":"put","key":"x","call":1,"ret":2}"#, "put needs `value`"),
            (
                r#"{"id":0,"client":1,"kind":"delete","key":"x","value":"1","call":1,"ret":2}"#,
                "delete has no `value`",
            ),
            (
                r#"{"id":0,"client":1,"kind":"put","key":"x","value":"1","call":5,"ret":2}"#,
                "before call",
            ),
            (
                r#"{"id":0,"client":1,"kind":"scan","key":"x","call":1,"ret":2}"#,
                "unknown variant `scan`",
            ),
            (
                r#"{"id":0,"client":1,"kind":"get","key":"x","output":"","call":1,"ret":2,"extra":1}"#,
                "unknown field `extra`",
            ),
            (
                r#"{"id":0,"client":1,"kind":"get""#,
                "invalid JSON at column 31: EOF while parsing an object",
            ),
        ];
        for (line, reason) in cases {
            let error = error_of(line);
            assert_eq!(error.line, 1, "{line}");
            assert!(error.message.contains(reason), "{line}: {error} lacks {reason:?}");
        }
    }

    #[test]
    fn rejects_a_reused_id() {
        let text =
            "{\"id\":3,\"client\":1,\"kind\":\"delete\",\"key\":\"x\",\"call\":1,\"ret\":2}\n"
                .repeat(2);
        let error = error_of(&text);
        assert_eq!((error.line, error.message.as_str()), (2, "id 3 is already used on line 1"));
    }
}
