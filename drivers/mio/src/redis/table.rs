//! The commands raftkv answers, with their arity and key positions as `COMMAND` reports them.

use crate::redis::resp::Reply;

/// The Redis version whose commands and replies raftkv follows, for `HELLO` and `INFO`.
pub(crate) const REDIS_VERSION: &str = "7.0.0";

/// One command.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Entry {
    name: &'static str,
    /// Arguments with the name; negative: at least that many.
    arity: i64,
    flags: &'static [&'static str],
    first_key: i64,
    last_key: i64,
    step: i64,
}

impl Entry {
    /// Whether a command of `words` words (the name included) has a number it accepts.
    pub(crate) fn arity_fits(&self, words: usize) -> bool {
        let words = i64::try_from(words).unwrap_or(i64::MAX);
        if self.arity >= 0 { words == self.arity } else { words >= -self.arity }
    }

    fn reply(&self) -> Reply {
        let flags = self.flags.iter().map(|flag| Reply::Simple(flag)).collect();
        Reply::Array(vec![
            Reply::text(self.name),
            Reply::Integer(self.arity),
            Reply::Array(flags),
            Reply::Integer(self.first_key),
            Reply::Integer(self.last_key),
            Reply::Integer(self.step),
            Reply::Array(Vec::new()),
            Reply::Array(Vec::new()),
            Reply::Array(Vec::new()),
            Reply::Array(Vec::new()),
        ])
    }
}

const fn entry(
    name: &'static str,
    arity: i64,
    flags: &'static [&'static str],
    keys: (i64, i64, i64),
) -> Entry {
    Entry { name, arity, flags, first_key: keys.0, last_key: keys.1, step: keys.2 }
}

const NO_KEYS: (i64, i64, i64) = (0, 0, 0);
const ONE_KEY: (i64, i64, i64) = (1, 1, 1);
const ALL_KEYS: (i64, i64, i64) = (1, -1, 1);
const READ: &[&str] = &["readonly", "fast"];
const WRITE: &[&str] = &["write", "denyoom", "fast"];
const CONNECTION: &[&str] = &["fast", "loading", "stale"];

/// Every command, by name.
const TABLE: &[Entry] = &[
    entry("append", 3, WRITE, ONE_KEY),
    entry("auth", -2, &["noscript", "loading", "stale", "fast", "no_auth"], NO_KEYS),
    entry("cas", 4, WRITE, ONE_KEY),
    entry("client", -2, &["noscript", "loading", "stale"], NO_KEYS),
    entry("command", -1, &["loading", "stale"], NO_KEYS),
    entry("config", -2, &["admin", "noscript", "loading", "stale"], NO_KEYS),
    entry("dbsize", 1, READ, NO_KEYS),
    entry("decr", 2, WRITE, ONE_KEY),
    entry("decrby", 3, WRITE, ONE_KEY),
    entry("del", -2, &["write"], ALL_KEYS),
    entry("echo", 2, CONNECTION, NO_KEYS),
    entry("exists", -2, READ, ALL_KEYS),
    entry("get", 2, READ, ONE_KEY),
    entry("getset", 3, WRITE, ONE_KEY),
    entry("hello", -1, &["noscript", "loading", "stale", "fast", "no_auth"], NO_KEYS),
    entry("incr", 2, WRITE, ONE_KEY),
    entry("incrby", 3, WRITE, ONE_KEY),
    entry("info", -1, &["loading", "stale"], NO_KEYS),
    entry("keys", 2, &["readonly"], NO_KEYS),
    entry("mget", -2, READ, ALL_KEYS),
    entry("mset", -3, &["write", "denyoom"], (1, -1, 2)),
    entry("ping", -1, CONNECTION, NO_KEYS),
    entry("quit", -1, &["noscript", "loading", "stale", "fast", "no_auth"], NO_KEYS),
    entry("scan", -2, &["readonly"], NO_KEYS),
    entry("select", 2, CONNECTION, NO_KEYS),
    entry("set", -3, &["write", "denyoom"], ONE_KEY),
    entry("setnx", 3, WRITE, ONE_KEY),
    entry("strlen", 2, READ, ONE_KEY),
    entry("unlink", -2, &["write", "fast"], ALL_KEYS),
];

/// The command named `name` (lower case).
pub(crate) fn find(name: &str) -> Option<&'static Entry> {
    TABLE.iter().find(|entry| entry.name == name)
}

/// `COMMAND`, `COMMAND COUNT`, `COMMAND INFO name...`, `COMMAND DOCS` (no documents: clients
/// fall back to their own help), `COMMAND LIST`.
pub(crate) fn command_reply(args: &[Vec<u8>]) -> Reply {
    let Some(subcommand) = args.first() else {
        return Reply::Array(TABLE.iter().map(Entry::reply).collect());
    };
    let names = || args[1..].iter().map(|name| String::from_utf8_lossy(name).to_ascii_lowercase());
    match String::from_utf8_lossy(subcommand).to_ascii_uppercase().as_str() {
        "COUNT" => Reply::Integer(TABLE.len() as i64),
        "INFO" => Reply::Array(
            names().map(|name| find(&name).map_or(Reply::Null, Entry::reply)).collect(),
        ),
        "DOCS" => Reply::Map(Vec::new()),
        "LIST" => Reply::Array(TABLE.iter().map(|entry| Reply::text(entry.name)).collect()),
        other => Reply::error(format!(
            "unknown subcommand '{other}'. Try COMMAND, COMMAND COUNT, COMMAND INFO, COMMAND LIST."
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arities_count_the_name_and_negative_ones_are_minimums() {
        let get = find("get").expect("listed");
        assert!(get.arity_fits(2) && !get.arity_fits(1) && !get.arity_fits(3));
        let del = find("del").expect("listed");
        assert!(!del.arity_fits(1) && del.arity_fits(2) && del.arity_fits(10));
        assert!(find("flushall").is_none());
        let names: Vec<&str> = TABLE.iter().map(|entry| entry.name).collect();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(names, sorted, "sorted, each once");
    }
}
