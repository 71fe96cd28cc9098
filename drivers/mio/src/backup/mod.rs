//! `raftkv snapshot save` and `raftkv snapshot restore`: backups of a cluster's state, taken
//! through the leader, and new clusters started from them.

mod file;
mod restore;

use std::path::PathBuf;

use clap::{Args, Subcommand};
use raftkv_core::NodeId;

use crate::backup::file::BackupFile;
pub use crate::backup::file::BackupWriter;
use crate::cluster_args::ClusterArgs;
use crate::failure::Failure;
use crate::peers_arg::parse_peers;

/// Options of `raftkv snapshot`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  raftkv snapshot save backup.rkv
  raftkv snapshot restore backup.rkv --data /var/lib/raftkv --id 1 --peers 1=10.0.1.1:7001,...")]
pub(crate) struct SnapshotArgs {
    #[command(subcommand)]
    command: SnapshotCommand,
}

#[derive(Debug, Subcommand)]
enum SnapshotCommand {
    /// Write a snapshot of the cluster's state to FILE: taken by the leader, covering every
    /// write acknowledged before the command started, with its index, term and membership and
    /// a checksum.
    #[command(after_help = "Example:
  raftkv snapshot save backup-2026-01-31.rkv --cluster 10.0.0.1:7001,10.0.0.2:7001")]
    Save {
        /// The backup file to write (replaced once the copy is complete).
        file: PathBuf,
        #[command(flatten)]
        cluster: ClusterArgs,
    },
    /// Seed an empty data directory with a backup, as one node of a new cluster; restore the
    /// same backup for every node of --peers, then start each with `raftkv serve` and the same
    /// --id, --peers and --data.
    #[command(after_help = "Example, a new cluster of three from one backup:
  raftkv snapshot restore backup.rkv --data /var/lib/raftkv --id 1 \\
      --peers 1=10.0.1.1:7001,2=10.0.1.2:7001,3=10.0.1.3:7001
  (the same on the other machines with --id 2 and --id 3), then on each:
  raftkv serve --id 1 --peers 1=10.0.1.1:7001,2=10.0.1.2:7001,3=10.0.1.3:7001 --data /var/lib/raftkv")]
    Restore(RestoreArgs),
}

/// Options of `raftkv snapshot restore`.
#[derive(Debug, Args)]
struct RestoreArgs {
    /// The backup file (`raftkv snapshot save`).
    file: PathBuf,
    /// The new node's data directory: missing or empty.
    #[arg(long, value_name = "DIR")]
    data: PathBuf,
    /// The new node's id, one of --peers.
    #[arg(long)]
    id: u64,
    /// Every node of the new cluster, as `raftkv serve` takes them: they replace the
    /// membership the backup recorded.
    #[arg(long, value_name = "ID=HOST:PORT,...")]
    peers: String,
    /// The new cluster's name, as `raftkv serve --cluster-name` will give it.
    #[arg(long, env = "RAFTKV_CLUSTER_NAME", default_value = "raftkv")]
    cluster_name: String,
}

/// Runs `raftkv snapshot ...`.
pub(crate) fn run(args: &SnapshotArgs) -> Result<(), Failure> {
    match &args.command {
        SnapshotCommand::Save { file, cluster } => save(file, cluster),
        SnapshotCommand::Restore(args) => restore(args),
    }
}

fn save(path: &std::path::Path, cluster: &ClusterArgs) -> Result<(), Failure> {
    let mut client = cluster.connect()?;
    let mut writer = BackupWriter::new(path);
    let header = client.backup(&mut writer)?;
    writer.finish().map_err(|e| Failure::Error(format!("cannot write {}: {e}", path.display())))?;
    println!(
        "saved the snapshot at index {} (term {}, {} bytes of data, voters {:?}) to {}",
        header.last.index,
        header.last.term,
        header.data_bytes,
        header.membership.voters().iter().map(|id| id.0).collect::<Vec<_>>(),
        path.display()
    );
    Ok(())
}

fn restore(args: &RestoreArgs) -> Result<(), Failure> {
    let peers = parse_peers(&args.peers).map_err(Failure::Usage)?;
    let id = NodeId(args.id);
    if !peers.iter().any(|(peer, _)| *peer == id) {
        return Err(Failure::Usage(format!("--peers does not list this node (--id {id})")));
    }
    let backup = BackupFile::open(&args.file).map_err(Failure::Error)?;
    restore::seed(&backup, &args.data, id, &peers, &args.cluster_name)?;
    println!(
        "restored the snapshot at index {} (term {}) into {} as node {id}; start it with\n  \
         raftkv serve --id {id} --peers {} --data {}",
        backup.header.last.index,
        backup.header.last.term,
        args.data.display(),
        args.peers,
        args.data.display()
    );
    Ok(())
}
