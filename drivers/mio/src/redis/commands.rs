//! The commands a Redis client may send: what each asks of the cluster, or the answer it gets
//! at once, and how the cluster's answer reads as a Redis reply.

use raftkv_core::client::ClerkError;
use raftkv_core::kv::{KvCommand, KvReply, PutCondition, Scan};

use crate::redis::cursors::Cursors;
use crate::redis::resp::{Command, Reply};
use crate::redis::table::{self, REDIS_VERSION};

/// What the connection a command came on knows and may change.
#[derive(Debug)]
pub(crate) struct ConnectionState {
    /// Its id, for `CLIENT ID`.
    pub(crate) id: u64,
    /// RESP version of its replies: 2 until `HELLO 3`.
    pub(crate) protocol: u8,
    /// `CLIENT SETNAME`.
    pub(crate) name: Option<Vec<u8>>,
    /// Whether it gave the password (or none is required).
    pub(crate) authenticated: bool,
}

/// What to do with a command.
#[derive(Debug)]
pub(crate) enum Action {
    /// Answer this at once.
    Reply(Reply),
    /// Answer `+OK` and close the connection.
    Quit,
    /// Run a command on the cluster and answer as `Shape` says.
    Cluster(KvCommand, Shape),
    /// Answer with the node's `INFO`, of the sections named (lowercase; none: the default
    /// ones).
    Info(Vec<String>),
}

/// How the cluster's answer to a command reads as a Redis reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Shape {
    /// A value or null (`GET`).
    Value,
    /// The length of the value, 0 if missing (`STRLEN`).
    ValueLength,
    /// `+OK` (`MSET`).
    Ok,
    /// A count or length as an integer (`DEL`, `EXISTS`, `DBSIZE`, `APPEND`, `INCR`).
    Integer,
    /// Values or nulls (`MGET`).
    Values,
    /// `SET` with options: the value before if `get`, else `+OK` or null (not written).
    Set {
        /// `SET ... GET`.
        get: bool,
    },
    /// 1 if written, else 0 (`SETNX`).
    Written,
    /// The value before (`GETSET`).
    Previous,
    /// 1 if swapped, else 0 (`CAS`).
    Swapped,
    /// A cursor and keys (`SCAN`).
    ScanPage,
    /// All the keys, or an error if they are more than a page (`KEYS`).
    AllKeys,
}

/// Settings the commands see.
#[derive(Debug)]
pub(crate) struct Settings {
    /// The password clients must give (`AUTH`), if any.
    pub(crate) password: Option<Vec<u8>>,
}

/// Decides what `command` asks for.
pub(crate) fn dispatch(
    mut command: Command,
    state: &mut ConnectionState,
    settings: &Settings,
    cursors: &Cursors,
) -> Action {
    let Some((name, args)) = command.split_first_mut() else {
        return Action::Reply(Reply::error("empty command"));
    };
    let mut lowercase = [0; NAME_BUFFER_BYTES];
    let name = lowercase_name(name, &mut lowercase);
    let name: &str = &name;
    if !state.authenticated && !matches!(name, "auth" | "hello" | "quit") {
        return Action::Reply(Reply::Error("NOAUTH Authentication required.".to_string()));
    }
    let Some(entry) = table::find(name) else {
        return Action::Reply(unknown_command(name, args));
    };
    if !entry.arity_fits(args.len() + 1) {
        return Action::Reply(Reply::error(format!(
            "wrong number of arguments for '{name}' command"
        )));
    }
    match name {
        "ping" => {
            Action::Reply(args.first().map_or(Reply::Simple("PONG"), |m| Reply::Bulk(m.clone())))
        }
        "echo" => Action::Reply(Reply::Bulk(args[0].clone())),
        "quit" => Action::Quit,
        "hello" => Action::Reply(hello(args, state, settings)),
        "auth" => Action::Reply(auth(args, state, settings)),
        "select" => Action::Reply(match args[0].as_slice() {
            b"0" => Reply::Simple("OK"),
            _ => Reply::error("DB index is out of range (raftkv has database 0 only)"),
        }),
        "client" => Action::Reply(client(args, state)),
        "command" => Action::Reply(table::command_reply(args)),
        "config" => Action::Reply(config(args)),
        "info" => Action::Info(
            args.iter().map(|arg| String::from_utf8_lossy(arg).to_ascii_lowercase()).collect(),
        ),
        _ => data_command(name, args, cursors),
    }
}

/// Longest command name lowercased without an allocation: longer ones are no command.
const NAME_BUFFER_BYTES: usize = 24;

/// `name` in lowercase, in `buffer` when it fits (every command's name does).
fn lowercase_name<'a>(
    name: &[u8],
    buffer: &'a mut [u8; NAME_BUFFER_BYTES],
) -> std::borrow::Cow<'a, str> {
    if let Some(lowered) = buffer.get_mut(..name.len()) {
        lowered.copy_from_slice(name);
        lowered.make_ascii_lowercase();
        if let Ok(text) = std::str::from_utf8(lowered) {
            return std::borrow::Cow::Borrowed(text);
        }
    }
    std::borrow::Cow::Owned(String::from_utf8_lossy(name).to_ascii_lowercase())
}

/// Argument `at`, moved out of the command (which is dropped once decided on).
fn take(args: &mut [Vec<u8>], at: usize) -> Vec<u8> {
    std::mem::take(&mut args[at])
}

/// The commands on keys.
fn data_command(name: &str, args: &mut [Vec<u8>], cursors: &Cursors) -> Action {
    let cluster = |command, shape| Action::Cluster(command, shape);
    let all = |args: &mut [Vec<u8>]| args.iter_mut().map(std::mem::take).collect();
    match name {
        "get" => cluster(KvCommand::Get { key: take(args, 0) }, Shape::Value),
        "strlen" => cluster(KvCommand::Get { key: take(args, 0) }, Shape::ValueLength),
        "set" => set(args),
        "setnx" => cluster(put_if(args, PutCondition::IfMissing), Shape::Written),
        "getset" => cluster(put_if(args, PutCondition::Always), Shape::Previous),
        "append" => {
            let (key, value) = (take(args, 0), take(args, 1));
            cluster(KvCommand::Append { key, value }, Shape::Integer)
        }
        "del" | "unlink" => cluster(KvCommand::DeleteMany { keys: all(args) }, Shape::Integer),
        "exists" => cluster(KvCommand::Exists { keys: all(args) }, Shape::Integer),
        "mget" => cluster(KvCommand::GetMany { keys: all(args) }, Shape::Values),
        "mset" if args.len() % 2 == 1 => {
            Action::Reply(Reply::error("wrong number of arguments for 'mset' command"))
        }
        "mset" => {
            let pairs = args.chunks_mut(2).map(|pair| (take(pair, 0), take(pair, 1))).collect();
            cluster(KvCommand::PutMany { pairs }, Shape::Ok)
        }
        "dbsize" => cluster(KvCommand::Count, Shape::Integer),
        "incr" => increment(take(args, 0), Ok(1)),
        "decr" => increment(take(args, 0), Ok(-1)),
        "incrby" => increment(take(args, 0), integer(&args[1])),
        "decrby" => increment(take(args, 0), integer(&args[1]).and_then(negated)),
        "cas" => {
            let command = KvCommand::Cas {
                key: take(args, 0),
                expected: Some(take(args, 1)),
                new: take(args, 2),
            };
            cluster(command, Shape::Swapped)
        }
        "scan" => scan(args, cursors),
        "keys" => match prefix_of(&args[0]) {
            Ok(prefix) => {
                let all = Scan {
                    start: Vec::new(),
                    end: None,
                    prefix,
                    limit: u32::MAX,
                    with_values: false,
                };
                cluster(KvCommand::Scan(all), Shape::AllKeys)
            }
            Err(reply) => Action::Reply(reply),
        },
        other => Action::Reply(unknown_command(other, args)),
    }
}

fn unknown_command(name: &str, args: &[Vec<u8>]) -> Reply {
    let shown: String =
        args.iter().take(8).map(|arg| format!("'{}' ", String::from_utf8_lossy(arg))).collect();
    Reply::error(format!("unknown command '{name}', with args beginning with: {shown}"))
}

fn put_if(args: &mut [Vec<u8>], condition: PutCondition) -> KvCommand {
    KvCommand::PutIf { key: take(args, 0), value: take(args, 1), condition }
}

/// `SET key value [NX|XX] [GET]`; expiry options are refused until raftkv has expiry.
fn set(args: &mut [Vec<u8>]) -> Action {
    let (key, value) = (take(args, 0), take(args, 1));
    let mut condition = PutCondition::Always;
    let mut get = false;
    for option in &args[2..] {
        match String::from_utf8_lossy(option).to_ascii_uppercase().as_str() {
            "NX" if condition == PutCondition::Always => condition = PutCondition::IfMissing,
            "XX" if condition == PutCondition::Always => condition = PutCondition::IfPresent,
            "GET" => get = true,
            "EX" | "PX" | "EXAT" | "PXAT" | "KEEPTTL" => {
                return Action::Reply(Reply::error(
                    "raftkv keys do not expire: SET with EX, PX, EXAT, PXAT or KEEPTTL is not supported",
                ));
            }
            _ => return Action::Reply(Reply::error("syntax error")),
        }
    }
    if condition == PutCondition::Always && !get {
        return Action::Cluster(KvCommand::Put { key, value }, Shape::Ok);
    }
    Action::Cluster(KvCommand::PutIf { key, value, condition }, Shape::Set { get })
}

fn increment(key: Vec<u8>, delta: Result<i64, Reply>) -> Action {
    match delta {
        Ok(delta) => Action::Cluster(KvCommand::Increment { key, delta }, Shape::Integer),
        Err(reply) => Action::Reply(reply),
    }
}

fn integer(arg: &[u8]) -> Result<i64, Reply> {
    std::str::from_utf8(arg)
        .ok()
        .and_then(|text| text.parse().ok())
        .ok_or_else(|| Reply::error("value is not an integer or out of range"))
}

fn negated(value: i64) -> Result<i64, Reply> {
    value.checked_neg().ok_or_else(|| Reply::error("decrement would overflow"))
}

/// The prefix of a `prefix*` pattern: the only patterns an ordered scan serves exactly.
fn prefix_of(pattern: &[u8]) -> Result<Vec<u8>, Reply> {
    let prefix = pattern.strip_suffix(b"*").unwrap_or(b"\\");
    if prefix.iter().any(|byte| matches!(byte, b'*' | b'?' | b'[' | b'\\')) {
        return Err(Reply::error(
            "raftkv matches patterns of the form prefix* only (a prefix without *, ?, [ or \\)",
        ));
    }
    Ok(prefix.to_vec())
}

/// `SCAN cursor [MATCH prefix*] [COUNT n]`.
fn scan(args: &[Vec<u8>], cursors: &Cursors) -> Action {
    let Some(start) = cursors.start_of(&args[0]) else {
        return Action::Reply(Reply::error("invalid cursor"));
    };
    let mut request = Scan { start, end: None, prefix: Vec::new(), limit: 10, with_values: false };
    let mut options = args[1..].chunks(2);
    for option in options.by_ref() {
        let [name, value] = option else {
            return Action::Reply(Reply::error("syntax error"));
        };
        match String::from_utf8_lossy(name).to_ascii_uppercase().as_str() {
            "MATCH" => match prefix_of(value) {
                Ok(prefix) => request.prefix = prefix,
                Err(reply) => return Action::Reply(reply),
            },
            "COUNT" => match integer(value) {
                Ok(count) if count >= 1 => request.limit = u32::try_from(count).unwrap_or(u32::MAX),
                Ok(_) => return Action::Reply(Reply::error("syntax error")),
                Err(reply) => return Action::Reply(reply),
            },
            "TYPE" if value.eq_ignore_ascii_case(b"string") => {}
            "TYPE" => request.limit = 0,
            _ => return Action::Reply(Reply::error("syntax error")),
        }
    }
    if request.limit == 0 {
        // Every raftkv value is a string: a scan for another type finds nothing.
        return Action::Reply(Reply::Array(vec![Reply::text("0"), Reply::Array(Vec::new())]));
    }
    Action::Cluster(KvCommand::Scan(request), Shape::ScanPage)
}

/// `HELLO [protover [AUTH user pass] [SETNAME name]]`.
fn hello(args: &[Vec<u8>], state: &mut ConnectionState, settings: &Settings) -> Reply {
    let mut protocol = state.protocol;
    if let Some(version) = args.first() {
        match version.as_slice() {
            b"2" => protocol = 2,
            b"3" => protocol = 3,
            _ => return Reply::Error("NOPROTO unsupported protocol version".to_string()),
        }
    }
    let mut options = args.iter().skip(1);
    while let Some(option) = options.next() {
        match String::from_utf8_lossy(option).to_ascii_uppercase().as_str() {
            "AUTH" => {
                let (Some(user), Some(password)) = (options.next(), options.next()) else {
                    return Reply::error("syntax error in HELLO option 'auth'");
                };
                let reply = auth(&[user.clone(), password.clone()], state, settings);
                if reply != Reply::Simple("OK") {
                    return reply;
                }
            }
            "SETNAME" => match options.next() {
                Some(name) => state.name = Some(name.clone()),
                None => return Reply::error("syntax error in HELLO option 'setname'"),
            },
            _ => return Reply::error("syntax error in HELLO"),
        }
    }
    if !state.authenticated {
        return Reply::Error("NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time".to_string());
    }
    state.protocol = protocol;
    Reply::Map(vec![
        (Reply::text("server"), Reply::text("raftkv")),
        (Reply::text("version"), Reply::text(REDIS_VERSION)),
        (Reply::text("proto"), Reply::Integer(i64::from(protocol))),
        (Reply::text("id"), Reply::Integer(i64::try_from(state.id).unwrap_or(i64::MAX))),
        (Reply::text("mode"), Reply::text("standalone")),
        (Reply::text("role"), Reply::text("master")),
        (Reply::text("modules"), Reply::Array(Vec::new())),
    ])
}

/// `AUTH [user] password`: the user, if given, must be `default`.
fn auth(args: &[Vec<u8>], state: &mut ConnectionState, settings: &Settings) -> Reply {
    let Some(expected) = &settings.password else {
        return Reply::error(
            "AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?",
        );
    };
    let (user, password) = match args {
        [password] => (&b"default"[..], password),
        [user, password] => (user.as_slice(), password),
        _ => return Reply::error("syntax error"),
    };
    if user == b"default" && constant_time_eq(password, expected) {
        state.authenticated = true;
        return Reply::Simple("OK");
    }
    Reply::Error("WRONGPASS invalid username-password pair or user is disabled.".to_string())
}

/// Equality whose time does not depend on where the first difference is.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |diff, (x, y)| diff | (x ^ y)) == 0
}

/// `CLIENT ID | SETNAME name | GETNAME | SETINFO ...`.
fn client(args: &[Vec<u8>], state: &mut ConnectionState) -> Reply {
    let subcommand = String::from_utf8_lossy(&args[0]).to_ascii_uppercase();
    match (subcommand.as_str(), &args[1..]) {
        ("ID", []) => Reply::Integer(i64::try_from(state.id).unwrap_or(i64::MAX)),
        ("GETNAME", []) => Reply::optional(state.name.clone()),
        ("SETNAME", [name]) if name.iter().any(|byte| *byte <= b' ' || *byte > b'~') => {
            Reply::error("Client names cannot contain spaces, newlines or special characters.")
        }
        ("SETNAME", [name]) => {
            state.name = (!name.is_empty()).then(|| name.clone());
            Reply::Simple("OK")
        }
        // Library names and versions: accepted, not kept.
        ("SETINFO", [_, _]) => Reply::Simple("OK"),
        _ => Reply::error(format!(
            "unknown subcommand or wrong number of arguments for 'CLIENT|{subcommand}'"
        )),
    }
}

/// `CONFIG GET parameter...`: the few parameters whose Redis meaning holds for raftkv.
fn config(args: &[Vec<u8>]) -> Reply {
    if !args[0].eq_ignore_ascii_case(b"get") || args.len() < 2 {
        return Reply::error("raftkv answers CONFIG GET only");
    }
    let known: [(&str, &str); 4] =
        [("save", ""), ("appendonly", "yes"), ("appendfsync", "always"), ("databases", "1")];
    let pairs = known
        .iter()
        .filter(|(name, _)| {
            args[1..].iter().any(|asked| asked.eq_ignore_ascii_case(name.as_bytes()))
        })
        .map(|(name, value)| (Reply::text(*name), Reply::text(*value)))
        .collect();
    Reply::Map(pairs)
}

/// The reply to a command run on the cluster.
pub(crate) fn answer(
    shape: Shape,
    result: Result<KvReply, ClerkError>,
    cursors: &mut Cursors,
) -> Reply {
    let reply = match result {
        Ok(reply) => reply,
        Err(ClerkError::Invalid { reason }) => {
            return Reply::error(format!("invalid request: {reason}"));
        }
        Err(ClerkError::Indeterminate) => {
            return Reply::error(
                "refused after a retry (session expired, or invalid after an earlier try): the \
                 write may or may not have taken effect",
            );
        }
    };
    match (shape, reply) {
        (_, KvReply::Refused { reason }) => Reply::error(reason),
        (Shape::Value, KvReply::Value(value)) => Reply::optional(value),
        (Shape::ValueLength, KvReply::Value(value)) => {
            Reply::Integer(value.map_or(0, |value| value.len() as i64))
        }
        (Shape::Ok, KvReply::Done) => Reply::Simple("OK"),
        (Shape::Integer, KvReply::Count(count) | KvReply::Length(count)) => {
            Reply::Integer(i64::try_from(count).unwrap_or(i64::MAX))
        }
        (Shape::Integer, KvReply::Integer(value)) => Reply::Integer(value),
        (Shape::Values, KvReply::Values(values)) => {
            Reply::Array(values.into_iter().map(Reply::optional).collect())
        }
        (Shape::Set { get: true }, KvReply::PutIf { previous, .. })
        | (Shape::Previous, KvReply::PutIf { previous, .. }) => Reply::optional(previous),
        (Shape::Set { get: false }, KvReply::PutIf { written: true, .. }) => Reply::Simple("OK"),
        (Shape::Set { get: false }, KvReply::PutIf { written: false, .. }) => Reply::Null,
        (Shape::Written, KvReply::PutIf { written, .. }) => Reply::Integer(i64::from(written)),
        (Shape::Swapped, KvReply::Cas { swapped, .. }) => Reply::Integer(i64::from(swapped)),
        (Shape::ScanPage, KvReply::Page(page)) => {
            let cursor = page.next.map_or_else(|| "0".to_string(), |next| cursors.insert(next));
            let keys = page.keys.into_iter().map(Reply::Bulk).collect();
            Reply::Array(vec![Reply::text(cursor), Reply::Array(keys)])
        }
        (Shape::AllKeys, KvReply::Page(page)) if page.next.is_some() => {
            Reply::error("KEYS would answer more than one page (4 MiB of keys): use SCAN")
        }
        (Shape::AllKeys, KvReply::Page(page)) => {
            Reply::Array(page.keys.into_iter().map(Reply::Bulk).collect())
        }
        (shape, reply) => {
            Reply::error(format!("unexpected answer {reply:?} to a {shape:?} command"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> ConnectionState {
        ConnectionState { id: 7, protocol: 2, name: None, authenticated: true }
    }

    fn run_in(state: &mut ConnectionState, password: Option<&str>, words: &[&str]) -> Action {
        let command: Command = words.iter().map(|word| word.as_bytes().to_vec()).collect();
        let settings = Settings { password: password.map(|p| p.as_bytes().to_vec()) };
        dispatch(command, state, &settings, &Cursors::new(16))
    }

    fn run(words: &[&str]) -> Action {
        run_in(&mut state(), None, words)
    }

    /// The error text of an immediate error answer.
    fn error_of(action: Action) -> String {
        match action {
            Action::Reply(Reply::Error(text)) => text,
            other => panic!("not an error: {other:?}"),
        }
    }

    fn cluster(action: Action) -> (KvCommand, Shape) {
        match action {
            Action::Cluster(command, shape) => (command, shape),
            other => panic!("not for the cluster: {other:?}"),
        }
    }

    fn bytes(text: &str) -> Vec<u8> {
        text.as_bytes().to_vec()
    }

    #[test]
    fn unknown_commands_get_redis_text_with_their_first_arguments() {
        let text = error_of(run(&["FLUSHALL", "ASYNC"]));
        assert_eq!(text, "ERR unknown command 'flushall', with args beginning with: 'ASYNC' ");
        assert_eq!(error_of(run(&[])), "ERR empty command");
    }

    #[test]
    fn a_wrong_number_of_arguments_is_refused_before_anything_runs() {
        for words in
            [&["GET"][..], &["GET", "a", "b"], &["SET", "k"], &["CAS", "k", "v"], &["ECHO"]]
        {
            let text = error_of(run(words));
            let name = words[0].to_ascii_lowercase();
            assert_eq!(text, format!("ERR wrong number of arguments for '{name}' command"));
        }
        assert!(error_of(run(&["MSET", "a", "1", "b"])).contains("wrong number of arguments"));
    }

    #[test]
    fn set_options_pick_the_command_and_the_shape_of_its_answer() {
        let plain = cluster(run(&["SET", "k", "v"]));
        assert_eq!(plain, (KvCommand::Put { key: bytes("k"), value: bytes("v") }, Shape::Ok));
        let put_if = |condition| KvCommand::PutIf { key: bytes("k"), value: bytes("v"), condition };
        assert_eq!(
            cluster(run(&["SET", "k", "v", "nx"])),
            (put_if(PutCondition::IfMissing), Shape::Set { get: false })
        );
        assert_eq!(
            cluster(run(&["SET", "k", "v", "XX", "GET"])),
            (put_if(PutCondition::IfPresent), Shape::Set { get: true })
        );
        assert_eq!(
            cluster(run(&["SET", "k", "v", "GET"])),
            (put_if(PutCondition::Always), Shape::Set { get: true })
        );
        assert_eq!(error_of(run(&["SET", "k", "v", "NX", "XX"])), "ERR syntax error");
        assert_eq!(error_of(run(&["SET", "k", "v", "SOON"])), "ERR syntax error");
    }

    #[test]
    fn expiry_options_are_refused_with_a_reason() {
        for option in ["EX", "px", "EXAT", "PXAT", "KEEPTTL"] {
            let text = error_of(run(&["SET", "k", "v", option, "10"]));
            assert!(text.contains("raftkv keys do not expire"), "{option}: {text}");
        }
    }

    #[test]
    fn counters_take_integers_only() {
        let increment = |delta| KvCommand::Increment { key: bytes("n"), delta };
        assert_eq!(cluster(run(&["INCR", "n"])), (increment(1), Shape::Integer));
        assert_eq!(cluster(run(&["DECRBY", "n", "5"])), (increment(-5), Shape::Integer));
        let text = error_of(run(&["INCRBY", "n", "ten"]));
        assert_eq!(text, "ERR value is not an integer or out of range");
        let minimum = i64::MIN.to_string();
        assert_eq!(error_of(run(&["DECRBY", "n", &minimum])), "ERR decrement would overflow");
    }

    #[test]
    fn scan_and_keys_take_prefix_patterns_and_known_options_only() {
        let (command, shape) = cluster(run(&["SCAN", "0", "MATCH", "user:*", "COUNT", "3"]));
        let KvCommand::Scan(scan) = command else { panic!("{command:?}") };
        assert_eq!((scan.prefix, scan.limit, shape), (bytes("user:"), 3, Shape::ScanPage));
        assert!(error_of(run(&["SCAN", "0", "MATCH", "a*b*"])).contains("prefix* only"));
        assert_eq!(error_of(run(&["SCAN", "0", "COUNT", "0"])), "ERR syntax error");
        assert_eq!(error_of(run(&["SCAN", "0", "COUNT"])), "ERR syntax error");
        assert_eq!(error_of(run(&["SCAN", "99"])), "ERR invalid cursor");
        assert!(error_of(run(&["KEYS", "?x"])).contains("prefix* only"));
        let Action::Reply(none) = run(&["SCAN", "0", "TYPE", "hash"]) else { panic!() };
        assert_eq!(none, Reply::Array(vec![Reply::text("0"), Reply::Array(Vec::new())]));
    }

    #[test]
    fn info_names_the_sections_asked_in_lowercase() {
        let Action::Info(sections) = run(&["INFO", "Replication", "KEYSPACE"]) else { panic!() };
        assert_eq!(sections, ["replication", "keyspace"]);
        let Action::Info(sections) = run(&["info"]) else { panic!() };
        assert!(sections.is_empty());
    }

    #[test]
    fn without_the_password_only_auth_hello_and_quit_run() {
        let mut locked = ConnectionState { authenticated: false, ..state() };
        let text = error_of(run_in(&mut locked, Some("pw"), &["GET", "k"]));
        assert_eq!(text, "NOAUTH Authentication required.");
        let wrong = error_of(run_in(&mut locked, Some("pw"), &["AUTH", "nope"]));
        assert!(wrong.starts_with("WRONGPASS"), "{wrong}");
        assert!(!locked.authenticated);
        let Action::Reply(ok) = run_in(&mut locked, Some("pw"), &["AUTH", "default", "pw"]) else {
            panic!()
        };
        assert_eq!((ok, locked.authenticated), (Reply::Simple("OK"), true));
        assert!(matches!(run_in(&mut locked, Some("pw"), &["GET", "k"]), Action::Cluster(..)));
    }

    #[test]
    fn select_hello_and_client_change_the_connection_only_as_asked() {
        assert!(error_of(run(&["SELECT", "1"])).contains("database 0 only"));
        let mut connection = state();
        let Action::Reply(Reply::Map(_)) = run_in(&mut connection, None, &["HELLO", "3"]) else {
            panic!()
        };
        assert_eq!(connection.protocol, 3);
        let refused = error_of(run_in(&mut connection, None, &["HELLO", "4"]));
        assert_eq!(
            (refused.as_str(), connection.protocol),
            ("NOPROTO unsupported protocol version", 3)
        );
        let spaced = error_of(run_in(&mut connection, None, &["CLIENT", "SETNAME", "a b"]));
        assert!(spaced.contains("cannot contain spaces"), "{spaced}");
        run_in(&mut connection, None, &["CLIENT", "SETNAME", "worker"]);
        assert_eq!(connection.name, Some(bytes("worker")));
    }

    #[test]
    fn cluster_answers_read_as_redis_replies() {
        let mut cursors = Cursors::new(4);
        let mut answer_to = |shape, reply| answer(shape, Ok(reply), &mut cursors);
        assert_eq!(answer_to(Shape::Value, KvReply::Value(None)), Reply::Null);
        assert_eq!(
            answer_to(Shape::ValueLength, KvReply::Value(Some(bytes("abc")))),
            Reply::Integer(3)
        );
        let not_written = KvReply::PutIf { written: false, previous: Some(bytes("old")) };
        assert_eq!(answer_to(Shape::Set { get: false }, not_written.clone()), Reply::Null);
        assert_eq!(answer_to(Shape::Set { get: true }, not_written), Reply::Bulk(bytes("old")));
        let refused = answer_to(Shape::Integer, KvReply::Refused { reason: "too big".to_owned() });
        assert_eq!(refused, Reply::error("too big"));
        let invalid = answer(
            Shape::Ok,
            Err(ClerkError::Invalid { reason: "key too long".to_owned() }),
            &mut cursors,
        );
        assert_eq!(invalid, Reply::error("invalid request: key too long"));
    }
}
