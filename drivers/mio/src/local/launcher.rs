//! How `raftkv local` starts its nodes, and the command line that restarts one by hand.

use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use raftkv_core::NodeId;

use crate::certs;
use crate::failure::Failure;

/// What every node of the local cluster is started with.
pub(super) struct Launcher {
    pub(super) exe: PathBuf,
    pub(super) peers: String,
    pub(super) data: PathBuf,
    pub(super) certs_dir: PathBuf,
    pub(super) redis_base_port: u16,
    pub(super) metrics_base_port: u16,
    /// More arguments for every node's `raftkv serve` (`--serve-arg`), after those `local` sets.
    pub(super) extra_serve_args: Vec<OsString>,
}

impl Launcher {
    /// Starts node `id`, its standard error appended to its log.
    pub(super) fn spawn(&self, id: u16) -> Result<Child, Failure> {
        let log_path = self.log_path(id);
        let log: File = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(|e| format!("cannot open {}: {e}", log_path.display()))?;
        Command::new(&self.exe)
            .args(self.serve_args(id))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot start node {id}: {e}").into())
    }

    /// The command that starts node `id` from a shell, its log appended to its file.
    pub(super) fn command_line(&self, id: u16) -> String {
        let mut words = vec![shell_word(self.exe.as_os_str().to_owned())];
        words.extend(self.serve_args(id).into_iter().map(shell_word));
        format!("{} 2>>{}", words.join(" "), shell_word(self.log_path(id).into_os_string()))
    }

    pub(super) fn log_path(&self, id: u16) -> PathBuf {
        self.data.join(format!("n{id}.log"))
    }

    pub(super) fn data_dir(&self, id: u16) -> PathBuf {
        self.data.join(format!("n{id}"))
    }

    /// Where node `id` serves Redis clients, if the Redis base port is not 0.
    pub(super) fn redis_address(&self, id: u16) -> Option<String> {
        loopback(self.redis_base_port, id)
    }

    /// Where node `id` answers /metrics and /health, if the metrics base port is not 0.
    pub(super) fn metrics_address(&self, id: u16) -> Option<String> {
        loopback(self.metrics_base_port, id)
    }

    fn serve_args(&self, id: u16) -> Vec<OsString> {
        let (cert, key) = certs::node_paths(&self.certs_dir, NodeId(u64::from(id)));
        let mut args: Vec<OsString> = vec!["serve".into()];
        if let Some(redis) = self.redis_address(id) {
            args.extend(["--redis-listen".into(), redis.into()]);
        }
        if let Some(metrics) = self.metrics_address(id) {
            args.extend(["--metrics-listen".into(), metrics.into()]);
        }
        args.extend([
            "--id".into(),
            id.to_string().into(),
            "--peers".into(),
            self.peers.clone().into(),
            "--data".into(),
            self.data_dir(id).into(),
            "--tls-ca".into(),
            certs::ca_path(&self.certs_dir).into(),
            "--tls-cert".into(),
            cert.into(),
            "--tls-key".into(),
            key.into(),
        ]);
        args.extend(self.extra_serve_args.iter().cloned());
        args
    }
}

/// Node `id`'s address on 127.0.0.1 for a listener whose ports start at `base_port` (0: none).
fn loopback(base_port: u16, id: u16) -> Option<String> {
    let port = u32::from(base_port) + u32::from(id) - 1;
    (base_port != 0 && port <= u32::from(u16::MAX)).then(|| format!("127.0.0.1:{port}"))
}

/// `word` as a shell reads it back: quoted if it holds anything but plain characters.
pub(super) fn shell_word(word: OsString) -> String {
    let text = word.to_string_lossy().into_owned();
    let plain = !text.is_empty()
        && text.chars().all(|c| c.is_ascii_alphanumeric() || "-_./=:,@+".contains(c));
    if plain { text } else { format!("'{}'", text.replace('\'', r"'\''")) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extra_serve_arguments_follow_those_local_sets_in_the_restart_command() {
        let launcher = Launcher {
            exe: PathBuf::from("/opt/raftkv"),
            peers: "1=127.0.0.1:7001".to_string(),
            data: PathBuf::from("/tmp/local"),
            certs_dir: PathBuf::from("/tmp/local/certs"),
            redis_base_port: 0,
            metrics_base_port: 0,
            extra_serve_args: vec!["--read-lease".into(), "--max-clock-drift-ppm=50000".into()],
        };
        let line = launcher.command_line(1);
        let key = line.find("--tls-key").expect("local's own arguments");
        let lease =
            line.find(" --read-lease --max-clock-drift-ppm=50000 ").expect("the extra ones");
        assert!(key < lease, "{line}");
        assert!(!line.contains("--redis-listen"), "Redis base port 0: none");
    }

    #[test]
    fn words_a_shell_would_split_are_quoted() {
        assert_eq!(shell_word("1=127.0.0.1:7001,2=x:1".into()), "1=127.0.0.1:7001,2=x:1");
        assert_eq!(shell_word("/tmp/my dir".into()), "'/tmp/my dir'");
        assert_eq!(shell_word("it's".into()), r"'it'\''s'");
        assert_eq!(shell_word("".into()), "''");
    }
}
