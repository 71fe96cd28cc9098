//! The `--peers` a data directory's cluster was started with, kept in `DIR/peers`, so that a
//! restart with another peer set (a typo, another cluster's command line, `raftkv local
//! --nodes 5` over a cluster of three) is refused rather than run with a membership that the
//! log contradicts. Once the cluster runs, its membership lives in its log: a restart gives the
//! same `--peers` as the first start, or none.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use raftkv_core::NodeId;

use crate::server::error::ServeError;

/// The file's name in the data directory.
const FILE: &str = "peers";

/// Refuses `peers` if `dir` recorded others; records them if it recorded none.
pub(super) fn check_or_record(dir: &Path, peers: &[(NodeId, String)]) -> Result<(), ServeError> {
    if peers.is_empty() {
        return Ok(());
    }
    let path = dir.join(FILE);
    let given = canonical(peers);
    match fs::read_to_string(&path) {
        Ok(recorded) if recorded.trim() == given => Ok(()),
        Ok(recorded) => Err(ServeError::PeersChanged {
            dir: dir.to_path_buf(),
            recorded: recorded.trim().to_string(),
            given,
        }),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => record(dir, peers),
        Err(source) => Err(ServeError::PeerRecord { path, source }),
    }
}

/// Records `peers` as the peer set of `dir`'s cluster, durably, replacing any record.
pub(crate) fn record(dir: &Path, peers: &[(NodeId, String)]) -> Result<(), ServeError> {
    let path = dir.join(FILE);
    let failed = |source| ServeError::PeerRecord { path: path.clone(), source };
    let temporary: PathBuf = dir.join(format!("{FILE}.tmp"));
    let mut file = fs::File::create(&temporary).map_err(failed)?;
    writeln!(file, "{}", canonical(peers)).and_then(|()| file.sync_all()).map_err(failed)?;
    fs::rename(&temporary, &path).map_err(failed)?;
    fs::File::open(dir).and_then(|dir| dir.sync_all()).map_err(failed)
}

/// `peers` in the order of their ids, so that the order they were given in does not matter.
fn canonical(peers: &[(NodeId, String)]) -> String {
    let mut sorted = peers.to_vec();
    sorted.sort();
    sorted.iter().map(|(id, address)| format!("{id}={address}")).collect::<Vec<_>>().join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_peers_are_recorded_and_others_refused() {
        let dir = std::env::temp_dir().join(format!("raftkv-peer-record-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let peers = |text: &str| -> Vec<(NodeId, String)> {
            let pair = |item: &str| {
                let (id, address) = item.split_once('=').unwrap();
                (NodeId(id.parse().unwrap()), address.to_string())
            };
            text.split(',').map(pair).collect()
        };
        check_or_record(&dir, &peers("1=a:1,2=b:1")).unwrap();
        check_or_record(&dir, &peers("2=b:1,1=a:1")).unwrap();
        check_or_record(&dir, &[]).unwrap();
        let refused = check_or_record(&dir, &peers("1=a:1,2=c:1")).unwrap_err().to_string();
        assert!(refused.contains("1=a:1,2=b:1") && refused.contains("2=c:1"), "{refused}");
        fs::remove_dir_all(&dir).unwrap();
    }
}
