//! The Redis serialization protocol: commands in (arrays of bulk strings, or inline lines),
//! replies out, in RESP2 or RESP3.

use std::fmt;

/// A command: its name and arguments, as bytes.
pub(crate) type Command = Vec<Vec<u8>>;

/// Why the bytes received are not a command. The connection is answered and closed, as
/// Redis does: what follows cannot be trusted to start at a command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ProtocolError(pub(crate) String);

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Protocol error: {}", self.0)
    }
}

/// Parses the first command of `buffer`: `Ok(Some((command, bytes used)))`, `Ok(None)` if it
/// is not complete yet. A command longer than `max_bytes` is an error.
pub(crate) fn parse_command(
    buffer: &[u8],
    max_bytes: usize,
) -> Result<Option<(Command, usize)>, ProtocolError> {
    match buffer.first() {
        None => Ok(None),
        Some(b'*') => parse_array(buffer, max_bytes),
        Some(_) => parse_inline(buffer, max_bytes),
    }
}

fn parse_array(buffer: &[u8], max_bytes: usize) -> Result<Option<(Command, usize)>, ProtocolError> {
    let Some((count, mut at)) = header(buffer, 0, max_bytes)? else {
        return Ok(None);
    };
    // A count can promise far more than arrived: grow with what does, not with the promise.
    let mut command = Vec::with_capacity(count.min(64));
    for _ in 0..count {
        if buffer.get(at).is_none() {
            return Ok(None);
        }
        if buffer[at] != b'$' {
            let found = char::from(buffer[at]);
            return Err(ProtocolError(format!("expected '$', got '{found}'")));
        }
        let Some((length, start)) = header(buffer, at, max_bytes)? else {
            return Ok(None);
        };
        let end = start.checked_add(length).filter(|end| *end <= max_bytes);
        let Some(end) = end else {
            return Err(ProtocolError(format!("command longer than {max_bytes} bytes")));
        };
        if buffer.len() < end + 2 {
            return Ok(None);
        }
        if &buffer[end..end + 2] != b"\r\n" {
            return Err(ProtocolError("bulk string not followed by CRLF".to_string()));
        }
        command.push(buffer[start..end].to_vec());
        at = end + 2;
    }
    Ok(Some((command, at)))
}

/// The number after the type byte at `at` and the position after its line.
fn header(
    buffer: &[u8],
    at: usize,
    max_bytes: usize,
) -> Result<Option<(usize, usize)>, ProtocolError> {
    let Some(line_end) = find_crlf(buffer, at) else {
        if buffer.len() - at > 32 {
            return Err(ProtocolError("length line too long".to_string()));
        }
        return Ok(None);
    };
    let digits = std::str::from_utf8(&buffer[at + 1..line_end]).unwrap_or("");
    let number: usize =
        digits.parse().map_err(|_| ProtocolError(format!("invalid length {digits:?}")))?;
    if number > max_bytes {
        return Err(ProtocolError(format!("length {number} over the limit of {max_bytes}")));
    }
    Ok(Some((number, line_end + 2)))
}

/// An inline command: words separated by spaces, ended by a newline (what `telnet` sends).
fn parse_inline(
    buffer: &[u8],
    max_bytes: usize,
) -> Result<Option<(Command, usize)>, ProtocolError> {
    let Some(newline) = buffer.iter().position(|&byte| byte == b'\n') else {
        if buffer.len() > max_bytes {
            return Err(ProtocolError(format!("inline command longer than {max_bytes} bytes")));
        }
        return Ok(None);
    };
    let line = buffer[..newline].strip_suffix(b"\r").unwrap_or(&buffer[..newline]);
    let command = line.split(|byte| byte.is_ascii_whitespace()).filter(|word| !word.is_empty());
    Ok(Some((command.map(<[u8]>::to_vec).collect(), newline + 1)))
}

fn find_crlf(buffer: &[u8], from: usize) -> Option<usize> {
    buffer[from..].windows(2).position(|pair| pair == b"\r\n").map(|offset| from + offset)
}

/// A reply, before it is encoded for the connection's protocol version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Reply {
    /// `+OK` and the like.
    Simple(&'static str),
    /// `-CODE message`: the text after the dash, starting with its code (`ERR`, `TRYAGAIN`).
    Error(String),
    /// `:42`.
    Integer(i64),
    /// A binary-safe string.
    Bulk(Vec<u8>),
    /// No value (a missing key).
    Null,
    /// A sequence of replies.
    Array(Vec<Reply>),
    /// Pairs (RESP3 map; a flat array of keys and values in RESP2).
    Map(Vec<(Reply, Reply)>),
}

impl Reply {
    /// `-ERR message`.
    pub(crate) fn error(message: impl fmt::Display) -> Reply {
        Reply::Error(format!("ERR {message}"))
    }

    /// A bulk string of text.
    pub(crate) fn text(text: impl Into<String>) -> Reply {
        Reply::Bulk(text.into().into_bytes())
    }

    /// A bulk string, or null for `None`.
    pub(crate) fn optional(value: Option<Vec<u8>>) -> Reply {
        value.map_or(Reply::Null, Reply::Bulk)
    }

    /// Appends the encoding of the reply for protocol version `protocol` (2 or 3) to `out`.
    pub(crate) fn encode(&self, protocol: u8, out: &mut Vec<u8>) {
        match self {
            Reply::Simple(text) => line(out, b'+', text),
            // An error's text is one line: a line break would end the reply early.
            Reply::Error(text) => line(out, b'-', &text.replace(['\r', '\n'], " ")),
            Reply::Integer(value) => line(out, b':', &value.to_string()),
            Reply::Bulk(bytes) => {
                line(out, b'$', &bytes.len().to_string());
                out.extend_from_slice(bytes);
                out.extend_from_slice(b"\r\n");
            }
            Reply::Null if protocol >= 3 => out.extend_from_slice(b"_\r\n"),
            Reply::Null => out.extend_from_slice(b"$-1\r\n"),
            Reply::Array(items) => {
                line(out, b'*', &items.len().to_string());
                for item in items {
                    item.encode(protocol, out);
                }
            }
            Reply::Map(pairs) => {
                if protocol >= 3 {
                    line(out, b'%', &pairs.len().to_string());
                } else {
                    line(out, b'*', &(pairs.len() * 2).to_string());
                }
                for (key, value) in pairs {
                    key.encode(protocol, out);
                    value.encode(protocol, out);
                }
            }
        }
    }
}

fn line(out: &mut Vec<u8>, kind: u8, text: &str) {
    out.push(kind);
    out.extend_from_slice(text.as_bytes());
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(command: &[&str]) -> Command {
        command.iter().map(|word| word.as_bytes().to_vec()).collect()
    }

    #[test]
    fn arrays_of_bulk_strings_parse_once_complete_and_are_binary_safe() {
        let bytes = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$4\r\na\r\n\0\r\n*1\r\n$4\r\nPING\r\n";
        let (command, used) = parse_command(bytes, 1024).unwrap().unwrap();
        assert_eq!(command, vec![b"SET".to_vec(), b"k".to_vec(), b"a\r\n\0".to_vec()]);
        let (next, rest) = parse_command(&bytes[used..], 1024).unwrap().unwrap();
        assert_eq!(next, words(&["PING"]));
        assert_eq!(used + rest, bytes.len());
        for cut in 0..used {
            assert_eq!(parse_command(&bytes[..cut], 1024), Ok(None), "cut at {cut}");
        }
    }

    #[test]
    fn inline_commands_split_on_spaces() {
        let (command, used) = parse_command(b"get  key\r\nrest", 1024).unwrap().unwrap();
        assert_eq!(command, words(&["get", "key"]));
        assert_eq!(used, 10);
        assert_eq!(parse_command(b"get key", 1024), Ok(None));
    }

    #[test]
    fn malformed_and_oversized_commands_are_protocol_errors() {
        assert!(parse_command(b"*1\r\n+PING\r\n", 1024).is_err());
        assert!(parse_command(b"*x\r\n", 1024).is_err());
        assert!(parse_command(b"*1\r\n$2000\r\n", 1024).is_err(), "over the limit");
        assert!(parse_command(b"*1\r\n$1\r\nab\r\n", 1024).is_err(), "no CRLF after the bulk");
        assert!(parse_command(b"*999999999999999999999999\r\n", 1024).is_err());
        assert!(parse_command(&[b'x'; 2000], 1024).is_err(), "inline without end");
        // A huge count allocates nothing up front.
        assert_eq!(parse_command(b"*1000\r\n", 1 << 20), Ok(None));
    }

    #[test]
    fn replies_encode_for_each_protocol_version() {
        let encode = |reply: &Reply, protocol| {
            let mut out = Vec::new();
            reply.encode(protocol, &mut out);
            String::from_utf8(out).unwrap()
        };
        assert_eq!(encode(&Reply::Null, 2), "$-1\r\n");
        assert_eq!(encode(&Reply::Null, 3), "_\r\n");
        let map = Reply::Map(vec![(Reply::text("proto"), Reply::Integer(3))]);
        assert_eq!(encode(&map, 3), "%1\r\n$5\r\nproto\r\n:3\r\n");
        assert_eq!(encode(&map, 2), "*2\r\n$5\r\nproto\r\n:3\r\n");
        let array = Reply::Array(vec![Reply::Simple("OK"), Reply::Bulk(b"a\r\nb".to_vec())]);
        assert_eq!(encode(&array, 2), "*2\r\n+OK\r\n$4\r\na\r\nb\r\n");
        assert_eq!(encode(&Reply::error("bad\r\nthing"), 2), "-ERR bad  thing\r\n");
    }
}
