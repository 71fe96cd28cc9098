//! The command line's key-value commands: `get`, `put`, `append`, `delete` and `cas`. Keys and
//! values are bytes: arguments are taken as the operating system gives them (not necessarily
//! UTF-8), a value may come from standard input or a file, and `get` writes the value's bytes
//! exactly.

use std::ffi::{OsStr, OsString};
use std::io::{IsTerminal, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use clap::Args;

use crate::cluster_args::ClusterArgs;
use crate::failure::Failure;
use crate::frame::MAX_FRAME_BYTES;

/// Options of `raftkv get`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  raftkv get greeting
  raftkv get photo > photo.jpg        the value's bytes exactly
  raftkv get greeting --json          {\"key\":\"greeting\",\"value\":\"hello\"}")]
pub(crate) struct GetArgs {
    /// The key.
    key: OsString,
    /// Print one JSON object, {"key": ..., "value": ...} (`value_hex` instead of `value` for a
    /// value that is not UTF-8); a missing key prints {"key": ..., "value": null}.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    cluster: ClusterArgs,
}

/// Options of `raftkv put` and `raftkv append`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  raftkv put greeting hello
  raftkv put config - < config.toml           the value from standard input
  raftkv put photo --value-file photo.jpg")]
pub(crate) struct WriteArgs {
    /// The key.
    key: OsString,
    /// The value; `-` reads it from standard input.
    #[arg(required_unless_present = "value_file", conflicts_with = "value_file")]
    value: Option<OsString>,
    /// Read the value from FILE, its bytes exactly.
    #[arg(long, value_name = "FILE")]
    value_file: Option<PathBuf>,
    #[command(flatten)]
    cluster: ClusterArgs,
}

/// Options of `raftkv delete`.
#[derive(Debug, Args)]
#[command(after_help = "Example:
  raftkv delete greeting")]
pub(crate) struct DeleteArgs {
    /// The key.
    key: OsString,
    #[command(flatten)]
    cluster: ClusterArgs,
}

/// Options of `raftkv cas`.
#[derive(Debug, Args)]
#[command(
    override_usage = "raftkv cas [OPTIONS] KEY EXPECTED NEW\n       raftkv cas [OPTIONS] --missing KEY NEW",
    after_help = "Examples:
  raftkv cas counter 41 42           set counter to 42 if it holds 41
  raftkv cas --missing lock me       take the lock if nobody holds it"
)]
pub(crate) struct CasArgs {
    /// Expect KEY to be missing: then give only KEY and NEW.
    #[arg(long)]
    missing: bool,
    /// The key.
    key: OsString,
    /// The value KEY must hold (with --missing: the new value).
    #[arg(value_name = "EXPECTED")]
    first: OsString,
    /// The new value (not with --missing).
    #[arg(value_name = "NEW", required_unless_present = "missing", conflicts_with = "missing")]
    second: Option<OsString>,
    #[command(flatten)]
    cluster: ClusterArgs,
}

/// What a write does with its value.
#[derive(Clone, Copy, Debug)]
pub(crate) enum WriteKind {
    Put,
    Append,
}

/// `raftkv get`: the value alone on standard output, its bytes exactly (with a newline after
/// it on a terminal, for the prompt's sake); exit status 3 if there is none.
pub(crate) fn get(args: &GetArgs) -> Result<(), Failure> {
    let key = args.key.as_bytes();
    let mut client = args.cluster.connect()?;
    let value = client.get(key)?;
    let mut out = std::io::stdout().lock();
    let written = if args.json {
        writeln!(out, "{}", json_of(key, value.as_deref()))
    } else if let Some(value) = &value {
        out.write_all(value).and_then(|()| {
            if std::io::stdout().is_terminal() { out.write_all(b"\n") } else { Ok(()) }
        })
    } else {
        Ok(())
    };
    written
        .and_then(|()| out.flush())
        .map_err(|e| Failure::Error(format!("cannot write the value: {e}")))?;
    if value.is_none() {
        if !args.json {
            eprintln!("raftkv: no such key: {}", args.key.to_string_lossy());
        }
        return Err(Failure::No);
    }
    Ok(())
}

/// The JSON object `get --json` (and `list --json`) prints for a key.
pub(crate) fn json_of(key: &[u8], value: Option<&[u8]>) -> serde_json::Value {
    let key = String::from_utf8_lossy(key);
    match value.map(std::str::from_utf8) {
        None => serde_json::json!({ "key": key, "value": null }),
        Some(Ok(text)) => serde_json::json!({ "key": key, "value": text }),
        Some(Err(_)) => {
            let hex: String =
                value.unwrap_or_default().iter().map(|b| format!("{b:02x}")).collect();
            serde_json::json!({ "key": key, "value_hex": hex })
        }
    }
}

/// `raftkv put` and `raftkv append`.
pub(crate) fn write(kind: WriteKind, args: &WriteArgs) -> Result<(), Failure> {
    let value = match (&args.value_file, &args.value) {
        (Some(path), _) => {
            let file = std::fs::File::open(path)
                .map_err(|e| Failure::Usage(format!("cannot open {}: {e}", path.display())))?;
            read_value(file, &path.display().to_string())?
        }
        (None, Some(value)) if value == "-" => read_value(std::io::stdin(), "standard input")?,
        (None, Some(value)) => value.as_bytes().to_vec(),
        (None, None) => return Err(Failure::Usage("give VALUE or --value-file".to_string())),
    };
    let mut client = args.cluster.connect()?;
    let key = args.key.as_bytes();
    match kind {
        WriteKind::Put => client.put(key, value)?,
        WriteKind::Append => client.append(key, value)?,
    }
    Ok(())
}

/// Reads a whole value from `source`, refusing one larger than a frame can carry without
/// reading more than one byte past that.
fn read_value(source: impl Read, name: &str) -> Result<Vec<u8>, Failure> {
    let mut value = Vec::new();
    source
        .take(MAX_FRAME_BYTES as u64 + 1)
        .read_to_end(&mut value)
        .map_err(|e| Failure::Error(format!("cannot read the value from {name}: {e}")))?;
    if value.len() > MAX_FRAME_BYTES {
        return Err(Failure::Usage(format!(
            "the value in {name} is larger than the {MAX_FRAME_BYTES} bytes a request may carry"
        )));
    }
    Ok(value)
}

/// `raftkv delete`.
pub(crate) fn delete(args: &DeleteArgs) -> Result<(), Failure> {
    let mut client = args.cluster.connect()?;
    client.delete(args.key.as_bytes())?;
    Ok(())
}

/// `raftkv cas`: prints `ok` or `failed` and what the key held; exit status 3 if it did not
/// swap.
pub(crate) fn cas(args: &CasArgs) -> Result<(), Failure> {
    let (expected, new): (Option<&OsStr>, &OsStr) = match &args.second {
        Some(new) => (Some(&args.first), new),
        None => (None, &args.first),
    };
    let mut client = args.cluster.connect()?;
    let outcome = client.cas(args.key.as_bytes(), expected.map(OsStr::as_bytes), new.as_bytes())?;
    let previous = match &outcome.previous {
        Some(value) => format!("was {:?}", String::from_utf8_lossy(value)),
        None => "was missing".to_string(),
    };
    if outcome.swapped {
        println!("ok ({previous})");
        Ok(())
    } else {
        println!("failed ({previous})");
        Err(Failure::No)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn get_json_gives_text_as_text_and_other_bytes_in_hex() {
        assert_eq!(json_of(b"k", Some(b"hi")).to_string(), r#"{"key":"k","value":"hi"}"#);
        assert_eq!(
            json_of(b"k", Some(&[0xff, 0x00])).to_string(),
            r#"{"key":"k","value_hex":"ff00"}"#
        );
        assert_eq!(json_of(b"k", None).to_string(), r#"{"key":"k","value":null}"#);
    }

    #[test]
    fn a_value_larger_than_a_frame_is_refused_after_reading_one_byte_too_many() {
        let big = vec![b'x'; MAX_FRAME_BYTES + 10];
        let refused = read_value(&big[..], "test").unwrap_err();
        assert!(refused.is_usage(), "{refused}");
        assert_eq!(read_value(&big[..MAX_FRAME_BYTES], "test").unwrap().len(), MAX_FRAME_BYTES);
    }
}
