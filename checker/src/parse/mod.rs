//! Reading history files: our JSON Lines, Porcupine's key-value logs and Jepsen's etcd logs.

pub mod jepsen_etcd;
pub mod jsonl;
pub mod porcupine_kv;

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use crate::history::Operation;
use crate::models::register::RegisterOperation;

/// A history file format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Tell the others apart by the first line that is not blank.
    Auto,
    /// Our key-value history, one JSON object a line ([`jsonl`]).
    Jsonl,
    /// Porcupine's key-value logs: one EDN map a line, time is the line order.
    PorcupineKv,
    /// Jepsen's etcd register logs: `INFO  jepsen.util - <process> <type> <f> <value>` lines.
    JepsenEtcd,
}

/// A history together with the model that judges it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ParsedHistory {
    /// Checked with [`crate::KvModel`].
    Kv(Vec<Operation>),
    /// Checked with [`crate::RegisterModel`].
    Register(Vec<RegisterOperation>),
}

/// A line that could not be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    /// 1-based.
    pub line: usize,
    /// What is wrong with it.
    pub message: String,
}

/// A history file that could not be read, with the line at fault when there is one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadError {
    /// The file.
    pub file: PathBuf,
    /// 1-based; `None` when the file itself could not be read.
    pub line: Option<usize>,
    /// What is wrong.
    pub message: String,
}

/// Parses `text` as `format`, telling the format apart first if it is [`Format::Auto`].
/// Returns the format it read.
pub fn parse(text: &str, format: Format) -> Result<(Format, ParsedHistory), ParseError> {
    let format = match format {
        Format::Auto => detect(text),
        known => known,
    };
    let history = match format {
        Format::Jsonl | Format::Auto => ParsedHistory::Kv(jsonl::parse(text)?),
        Format::PorcupineKv => ParsedHistory::Kv(porcupine_kv::parse(text)?),
        Format::JepsenEtcd => ParsedHistory::Register(jepsen_etcd::parse(text)?),
    };
    Ok((format, history))
}

/// Reads and parses the file at `path`.
pub fn read(path: &Path, format: Format) -> Result<(Format, ParsedHistory), ReadError> {
    let text = std::fs::read_to_string(path).map_err(|error| ReadError {
        file: path.to_owned(),
        line: None,
        message: error.to_string(),
    })?;
    parse(&text, format).map_err(|error| ReadError {
        file: path.to_owned(),
        line: Some(error.line),
        message: error.message,
    })
}

/// Decides by the first line that is not blank; an empty text is an empty JSON Lines history.
fn detect(text: &str) -> Format {
    let first = text.lines().map(str::trim_start).find(|line| !line.is_empty());
    match first {
        Some(line) if line.starts_with("{:") => Format::PorcupineKv,
        Some(line) if line.contains(jepsen_etcd::MARKER) => Format::JepsenEtcd,
        _ => Format::Jsonl,
    }
}

impl ParsedHistory {
    /// The number of operations.
    pub fn len(&self) -> usize {
        match self {
            ParsedHistory::Kv(history) => history.len(),
            ParsedHistory::Register(history) => history.len(),
        }
    }

    /// Whether it has no operation.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl ParseError {
    pub(crate) fn new(line: usize, message: impl Into<String>) -> Self {
        ParseError { line, message: message.into() }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for ParseError {}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{line}: {}", self.file.display(), self.message),
            None => write!(f, "{}: {}", self.file.display(), self.message),
        }
    }
}

impl std::error::Error for ReadError {}

impl Format {
    /// Every format, [`Format::Auto`] first.
    pub const ALL: [Format; 4] =
        [Format::Auto, Format::Jsonl, Format::PorcupineKv, Format::JepsenEtcd];

    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Format::Auto => "auto",
            Format::Jsonl => "jsonl",
            Format::PorcupineKv => "porcupine-kv",
            Format::JepsenEtcd => "jepsen-etcd",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Format {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, String> {
        Format::ALL.into_iter().find(|format| format.name() == name).ok_or_else(|| {
            format!("unknown format {name:?}: auto, jsonl, porcupine-kv or jepsen-etcd")
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_each_format_by_its_first_line() {
        let cases = [
            ("", Format::Jsonl),
            ("\n{\"id\":0}", Format::Jsonl),
            ("{:process 0, :type :invoke}", Format::PorcupineKv),
            ("INFO  jepsen.util - 0\t:invoke\t:read\tnil", Format::JepsenEtcd),
        ];
        for (text, format) in cases {
            assert_eq!(detect(text), format, "{text:?}");
        }
    }

    #[test]
    fn format_names_round_trip() {
        for format in Format::ALL {
            assert_eq!(format.name().parse::<Format>(), Ok(format));
        }
        assert!("edn".parse::<Format>().is_err());
    }
}
