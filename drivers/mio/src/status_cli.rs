//! `raftkv status`: every node's state, one line (or JSON object) each.

use clap::Args;

use crate::client::AddressStatus;
use crate::cluster_args::ClusterArgs;
use crate::failure::Failure;
use crate::wire::NodeStatus;

/// Options of `raftkv status`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  raftkv status
  raftkv status --json | jq .role

Exit status 1 unless a majority of the voters answered.")]
pub(crate) struct StatusArgs {
    /// One JSON object per node instead (`{"address": ..., "error": ...}` for a node that did
    /// not answer).
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    cluster: ClusterArgs,
}

/// `raftkv status`: prints every node's state, or why it did not answer; fails unless a
/// majority of the voters answered.
pub(crate) fn run(args: &StatusArgs) -> Result<(), Failure> {
    let (json, cluster) = (args.json, &args.cluster);
    let mut client = cluster.connect()?;
    let statuses = client.status()?;
    for (address, status) in &statuses {
        match status {
            Ok(status) => {
                if json {
                    let line = serde_json::json!({
                        "address": address,
                        "id": status.id.0,
                        "role": status.role,
                        "term": status.term.0,
                        "leader": status.leader.map(|l| l.0),
                        "commit": status.commit.0,
                        "applied": status.applied.0,
                        "last_log": status.last_log.0,
                        "snapshot_last": status.snapshot_last.0,
                        "log_entries": status.log_entries,
                        "wal_bytes": status.wal_bytes,
                        "keys": status.keys,
                        "damaged": status.damaged,
                        "connections": status.connections,
                        "standing": status.standing,
                        "voters": status.membership.voters.iter().map(|id| id.0).collect::<Vec<_>>(),
                        "learners": status.membership.learners.iter().map(|id| id.0).collect::<Vec<_>>(),
                    });
                    println!("{line}");
                } else {
                    let leader = status.leader.map_or("none".to_string(), |l| l.to_string());
                    println!(
                        "node {} {address} {} term={} leader={leader} commit={} applied={} \
                         log={} entries wal={} bytes snapshot={} keys={}{}",
                        status.id,
                        shown_role(status),
                        status.term,
                        status.commit,
                        status.applied,
                        status.log_entries,
                        status.wal_bytes,
                        status.snapshot_last,
                        status.keys,
                        if status.damaged {
                            " DAMAGED (out of elections until caught up)"
                        } else {
                            ""
                        }
                    );
                }
            }
            Err(error) if json => {
                println!("{}", serde_json::json!({ "address": address, "error": error }))
            }
            Err(error) => println!("node ? {address} unreachable: {error}"),
        }
    }
    majority_answered(&statuses)
}

/// Fails unless a majority of the voters answered: a cluster without one can neither write nor
/// read. The voters are those of the answering node with the highest term and commit.
fn majority_answered(statuses: &[AddressStatus]) -> Result<(), Failure> {
    let answered: Vec<&NodeStatus> =
        statuses.iter().filter_map(|(_, status)| status.as_ref().ok()).collect();
    let Some(latest) = answered.iter().max_by_key(|status| (status.term, status.commit)) else {
        return Err(Failure::Error("no node answered".to_string()));
    };
    let voters = &latest.membership.voters;
    let answering =
        voters.iter().filter(|voter| answered.iter().any(|status| status.id == **voter)).count();
    if !voters.is_empty() && answering.saturating_mul(2) <= voters.len() {
        return Err(Failure::Error(format!(
            "only {answering} of {} voters answered: without a majority the cluster can neither \
             read nor write",
            voters.len()
        )));
    }
    Ok(())
}

/// A node's role as `raftkv status` shows it: a follower that is a learner shows as `Learner`,
/// one the membership removed as `Removed`, one not added yet as `Joining`.
fn shown_role(status: &NodeStatus) -> &str {
    match (status.role.as_str(), status.standing.as_str()) {
        ("Follower", "learner") => "Learner",
        ("Follower", "removed") => "Removed",
        ("Follower", "not a member") => "Joining",
        (role, _) => role,
    }
}
