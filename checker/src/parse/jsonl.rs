//! Our own history format: JSON Lines, one [`Operation`] a line, for example
//!
//! ```text
//! {"id":0,"client":1,"kind":"put","key":"x","value":"1","call":1000,"ret":2000}
//! {"id":1,"client":2,"kind":"get","key":"x","output":"1","call":1500,"ret":2500}
//! {"id":2,"client":3,"kind":"cas","key":"x","expected":"1","value":"2","call":1600,"ret":null}
//! ```
//!
//! `kind` is `get`, `put`, `append`, `delete` or `cas` on one `key`; `value` is what a put or
//! an append writes and what a cas sets; `expected` is what a cas expects (`null`: the key is
//! missing). `output` is what a get read (`""` for a missing key) or whether a cas swapped
//! (`"ok"` or `"fail"`); it is there exactly when `ret` is not `null`. `call` and `ret` are
//! times on one clock shared by all clients; `ret` is `null` when the client never learned the
//! outcome. Ids are unique. The kinds on several keys, a range or a counter (`get_many`,
//! `exists`, `put_many`, `delete_many`, `count`, `scan`, `increment`, `put_if`) are in the
//! crate's README.

use std::collections::HashMap;
use std::io::{self, Write};

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;
use serde_json::error::Category;

use crate::history::{Command, Operation, PutCondition, ScanOutput, ScanRange};
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
    /// Every kind on one key has it; those on several keys or a range do not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    keys: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pairs: Option<Vec<(String, String)>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    start: Option<String>,
    /// Outer `None`: absent; `Some(None)`: `null` (no end).
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    end: Option<Option<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    prefix: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    limit: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    delta: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    condition: Option<Condition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    value: Option<String>,
    /// Outer `None`: absent; `Some(None)`: `null` (a cas on a missing key).
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    expected: Option<Option<String>>,
    /// A string, a number, a list or an object, by kind.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    output: Option<serde_json::Value>,
    call: u64,
    /// Required, so that a forgotten `ret` is not mistaken for an unknown outcome.
    #[serde(default, deserialize_with = "present")]
    ret: Option<Option<u64>>,
}

#[derive(Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Kind {
    Get,
    Put,
    Append,
    Delete,
    Cas,
    GetMany,
    Exists,
    PutMany,
    DeleteMany,
    Count,
    Scan,
    Increment,
    PutIf,
}

#[derive(Clone, Copy, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Condition {
    Always,
    IfMissing,
    IfPresent,
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
const REFUSED: &str = "refused";

/// The fields each kind takes besides `id`, `client`, `kind`, `output`, `call` and `ret`.
fn fields_of(kind: Kind) -> &'static [&'static str] {
    match kind {
        Kind::Get | Kind::Delete => &["key"],
        Kind::Put | Kind::Append => &["key", "value"],
        Kind::Cas => &["key", "expected", "value"],
        Kind::GetMany | Kind::Exists | Kind::DeleteMany => &["keys"],
        Kind::PutMany => &["pairs"],
        Kind::Count => &[],
        Kind::Scan => &["start", "end", "prefix", "limit"],
        Kind::Increment => &["key", "delta"],
        Kind::PutIf => &["key", "value", "condition"],
    }
}

/// Whether the kind has an output once it returned.
fn has_output(kind: Kind) -> bool {
    !matches!(kind, Kind::Put | Kind::Append | Kind::Delete | Kind::PutMany)
}

impl JsonLine {
    /// The names of the optional fields present.
    fn fields_present(&self) -> Vec<&'static str> {
        let present = [
            ("key", self.key.is_some()),
            ("keys", self.keys.is_some()),
            ("pairs", self.pairs.is_some()),
            ("start", self.start.is_some()),
            ("end", self.end.is_some()),
            ("prefix", self.prefix.is_some()),
            ("limit", self.limit.is_some()),
            ("delta", self.delta.is_some()),
            ("condition", self.condition.is_some()),
            ("value", self.value.is_some()),
            ("expected", self.expected.is_some()),
        ];
        present.into_iter().filter(|(_, present)| *present).map(|(name, _)| name).collect()
    }
}

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
        let kind = line.kind;
        let name = kind.name();
        let takes = fields_of(kind);
        if let Some(extra) = line.fields_present().into_iter().find(|field| !takes.contains(field))
        {
            return Err(format!("{name} has no `{extra}`"));
        }
        match (&line.output, has_output(kind), ret.is_some()) {
            (Some(_), false, _) => return Err(format!("{name} has no `output`")),
            (Some(_), true, false) => {
                return Err(format!("{name} with `ret: null` has no `output`"));
            }
            (None, true, true) => return Err(format!("{name} needs `output`")),
            _ => {}
        }
        let (id, client, call) = (line.id, line.client, line.call);
        let (key, command) = command_of(line)?;
        Ok(Operation { id, client, call, ret, key, command })
    }
}

/// The key (empty for an operation on several keys or a range) and the command of a line
/// whose fields suit its kind.
fn command_of(line: JsonLine) -> Result<(String, Command), String> {
    let kind = line.kind;
    let name = kind.name();
    let require = |field: &str| format!("{name} needs `{field}`");
    let output = line.output;
    let needs_key = fields_of(kind).contains(&"key");
    let key = match line.key {
        Some(key) => key,
        None if needs_key => return Err(require("key")),
        None => String::new(),
    };
    let value = || line.value.clone().ok_or_else(|| require("value"));
    let keys = || line.keys.clone().ok_or_else(|| require("keys"));
    let command = match kind {
        Kind::Get => {
            Command::Get { output: output.map(|output| text_output(name, output)).transpose()? }
        }
        Kind::Put => Command::Put { value: value()? },
        Kind::Append => Command::Append { value: value()? },
        Kind::Delete => Command::Delete,
        Kind::Cas => Command::Cas {
            expected: line.expected.clone().ok_or_else(|| {
                format!("{} (null if the key must be missing)", require("expected"))
            })?,
            value: value()?,
            swapped: output.map(cas_output).transpose()?,
        },
        Kind::GetMany => {
            let keys = keys()?;
            let output = output.map(|output| values_output(&keys, output)).transpose()?;
            Command::GetMany { keys, output }
        }
        Kind::Exists => {
            Command::Exists { keys: keys()?, output: output.map(count_output).transpose()? }
        }
        Kind::DeleteMany => {
            Command::DeleteMany { keys: keys()?, output: output.map(count_output).transpose()? }
        }
        Kind::PutMany => Command::PutMany { pairs: line.pairs.ok_or_else(|| require("pairs"))? },
        Kind::Count => Command::Count { output: output.map(count_output).transpose()? },
        Kind::Scan => Command::Scan {
            range: ScanRange {
                start: line.start.unwrap_or_default(),
                end: line.end.flatten(),
                prefix: line.prefix.unwrap_or_default(),
                limit: line.limit.ok_or_else(|| require("limit"))?,
            },
            output: output.map(scan_output).transpose()?,
        },
        Kind::Increment => Command::Increment {
            delta: line.delta.ok_or_else(|| require("delta"))?,
            output: output.map(increment_output).transpose()?,
        },
        Kind::PutIf => Command::PutIf {
            value: value()?,
            condition: match line.condition.ok_or_else(|| require("condition"))? {
                Condition::Always => PutCondition::Always,
                Condition::IfMissing => PutCondition::IfMissing,
                Condition::IfPresent => PutCondition::IfPresent,
            },
            output: output.map(put_if_output).transpose()?,
        },
    };
    Ok((key, command))
}

fn text_output(name: &str, output: Value) -> Result<String, String> {
    match output {
        Value::String(text) => Ok(text),
        other => Err(format!("{name} output is a string, not {other}")),
    }
}

fn cas_output(output: Value) -> Result<bool, String> {
    match output.as_str() {
        Some(CAS_OK) => Ok(true),
        Some(CAS_FAIL) => Ok(false),
        _ => Err(format!("cas output is \"ok\" or \"fail\", not {output}")),
    }
}

fn count_output(output: Value) -> Result<u64, String> {
    output.as_u64().ok_or_else(|| format!("the output is a count, not {output}"))
}

/// A value (a string) or `null` (missing) per key.
fn values_output(keys: &[String], output: Value) -> Result<Vec<Option<String>>, String> {
    let problem = || format!("get_many output is a string or null per key, not {output}");
    let Value::Array(items) = &output else {
        return Err(problem());
    };
    if items.len() != keys.len() {
        return Err(format!("get_many output has {} values for {} keys", items.len(), keys.len()));
    }
    items
        .iter()
        .map(|item| match item {
            Value::Null => Ok(None),
            Value::String(text) => Ok(Some(text.clone())),
            _ => Err(problem()),
        })
        .collect()
}

/// `{"pairs": [[key, value], ...], "more": bool}`.
fn scan_output(output: Value) -> Result<ScanOutput, String> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Page {
        pairs: Vec<(String, String)>,
        more: bool,
    }
    let page: Page = serde_json::from_value(output).map_err(|error| {
        format!("scan output is {{\"pairs\": [[key, value], ...], \"more\": bool}}: {error}")
    })?;
    Ok(ScanOutput { pairs: page.pairs, more: page.more })
}

/// The sum, or `"refused"`.
fn increment_output(output: Value) -> Result<Result<i64, ()>, String> {
    match (&output, output.as_i64()) {
        (_, Some(sum)) => Ok(Ok(sum)),
        (Value::String(text), None) if text == REFUSED => Ok(Err(())),
        _ => Err(format!("increment output is an integer or \"refused\", not {output}")),
    }
}

/// `{"written": bool, "previous": string or null}`.
fn put_if_output(output: Value) -> Result<(bool, Option<String>), String> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Outcome {
        written: bool,
        previous: Option<String>,
    }
    let outcome: Outcome = serde_json::from_value(output).map_err(|error| {
        format!("put_if output is {{\"written\": bool, \"previous\": string or null}}: {error}")
    })?;
    Ok((outcome.written, outcome.previous))
}

impl From<Operation> for JsonLine {
    fn from(operation: Operation) -> Self {
        let mut line = JsonLine {
            id: operation.id,
            client: operation.client,
            kind: Kind::Get,
            key: None,
            keys: None,
            pairs: None,
            start: None,
            end: None,
            prefix: None,
            limit: None,
            delta: None,
            condition: None,
            value: None,
            expected: None,
            output: None,
            call: operation.call,
            ret: Some(operation.ret),
        };
        let (kind, output) = fill_command(&mut line, operation.command);
        line.kind = kind;
        if fields_of(kind).contains(&"key") {
            line.key = Some(operation.key);
        }
        line.output = output;
        line
    }
}

/// Sets the fields of `line` that `command` names; returns its kind and its output, if any.
fn fill_command(line: &mut JsonLine, command: Command) -> (Kind, Option<Value>) {
    let text = |text: String| Value::String(text);
    let count = |count: u64| Value::from(count);
    match command {
        Command::Get { output } => (Kind::Get, output.map(text)),
        Command::Put { value } => {
            line.value = Some(value);
            (Kind::Put, None)
        }
        Command::Append { value } => {
            line.value = Some(value);
            (Kind::Append, None)
        }
        Command::Delete => (Kind::Delete, None),
        Command::Cas { expected, value, swapped } => {
            line.expected = Some(expected);
            line.value = Some(value);
            let word = |swapped: bool| text(if swapped { CAS_OK } else { CAS_FAIL }.to_owned());
            (Kind::Cas, swapped.map(word))
        }
        Command::GetMany { keys, output } => {
            line.keys = Some(keys);
            let values = |values: Vec<Option<String>>| {
                Value::Array(values.into_iter().map(|v| v.map_or(Value::Null, text)).collect())
            };
            (Kind::GetMany, output.map(values))
        }
        Command::Exists { keys, output } => {
            line.keys = Some(keys);
            (Kind::Exists, output.map(count))
        }
        Command::DeleteMany { keys, output } => {
            line.keys = Some(keys);
            (Kind::DeleteMany, output.map(count))
        }
        Command::PutMany { pairs } => {
            line.pairs = Some(pairs);
            (Kind::PutMany, None)
        }
        Command::Count { output } => (Kind::Count, output.map(count)),
        Command::Scan { range, output } => {
            line.start = Some(range.start);
            line.end = Some(range.end);
            line.prefix = Some(range.prefix);
            line.limit = Some(range.limit);
            let page =
                |page: ScanOutput| serde_json::json!({ "pairs": page.pairs, "more": page.more });
            (Kind::Scan, output.map(page))
        }
        Command::Increment { delta, output } => {
            line.delta = Some(delta);
            let sum = |sum: Result<i64, ()>| match sum {
                Ok(sum) => Value::from(sum),
                Err(()) => text(REFUSED.to_owned()),
            };
            (Kind::Increment, output.map(sum))
        }
        Command::PutIf { value, condition, output } => {
            line.value = Some(value);
            line.condition = Some(match condition {
                PutCondition::Always => Condition::Always,
                PutCondition::IfMissing => Condition::IfMissing,
                PutCondition::IfPresent => Condition::IfPresent,
            });
            let outcome = |(written, previous): (bool, Option<String>)| serde_json::json!({ "written": written, "previous": previous });
            (Kind::PutIf, output.map(outcome))
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
            Kind::GetMany => "get_many",
            Kind::Exists => "exists",
            Kind::PutMany => "put_many",
            Kind::DeleteMany => "delete_many",
            Kind::Count => "count",
            Kind::Scan => "scan",
            Kind::Increment => "increment",
            Kind::PutIf => "put_if",
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

    /// One line of each kind on several keys, a range or a counter, in the order of fields
    /// that `write` uses.
    const MULTI: &str = r#"{"id":0,"client":1,"kind":"put_many","pairs":[["a","1"],["b","2"]],"call":1,"ret":2}
{"id":1,"client":1,"kind":"get_many","keys":["a","c"],"output":["1",null],"call":3,"ret":4}
{"id":2,"client":2,"kind":"exists","keys":["a","a","c"],"output":2,"call":3,"ret":4}
{"id":3,"client":2,"kind":"count","output":2,"call":5,"ret":6}
{"id":4,"client":3,"kind":"scan","start":"a","end":null,"prefix":"","limit":1,"output":{"more":true,"pairs":[["a","1"]]},"call":5,"ret":6}
{"id":5,"client":3,"kind":"increment","key":"n","delta":-2,"output":-2,"call":7,"ret":8}
{"id":6,"client":3,"kind":"increment","key":"a","delta":1,"output":"refused","call":9,"ret":10}
{"id":7,"client":1,"kind":"put_if","key":"a","condition":"if_missing","value":"9","output":{"previous":"1","written":false},"call":9,"ret":10}
{"id":8,"client":1,"kind":"delete_many","keys":["a","b"],"output":2,"call":11,"ret":12}
{"id":9,"client":2,"kind":"scan","start":"","end":"z","prefix":"a","limit":5,"call":11,"ret":null}
"#;

    #[test]
    fn reads_the_kinds_on_several_keys_and_writes_them_back_identically() {
        let history = parse(MULTI).unwrap();
        assert_eq!(history.len(), 10);
        assert_eq!(
            history[1].command,
            Command::GetMany {
                keys: vec!["a".to_owned(), "c".to_owned()],
                output: Some(vec![Some("1".to_owned()), None])
            }
        );
        assert_eq!(history[1].key, "");
        assert_eq!(history[6].command, Command::Increment { delta: 1, output: Some(Err(())) });
        let mut written = Vec::new();
        write(&history, &mut written).unwrap();
        assert_eq!(String::from_utf8(written).unwrap(), MULTI);
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
                r#"{"id":0,"client":1,"kind":"incr","key":"x","call":1,"ret":2}"#,
                "unknown variant `incr`",
            ),
            (
                r#"{"id":0,"client":1,"kind":"scan","key":"x","limit":1,"output":{"pairs":[],"more":false},"call":1,"ret":2}"#,
                "scan has no `key`",
            ),
            (
                r#"{"id":0,"client":1,"kind":"get_many","keys":["a","b"],"output":["1"],"call":1,"ret":2}"#,
                "1 values for 2 keys",
            ),
            (
                r#"{"id":0,"client":1,"kind":"increment","key":"x","delta":1,"output":"lots","call":1,"ret":2}"#,
                "an integer or \"refused\"",
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
