//! `raftkv member list|add|promote|remove` and `raftkv transfer-leader`: changing a running
//! cluster's membership and leader from the command line.
//!
//! Exit status as for every command (see `cli`): 0 once the change is committed and settled
//! (or was already: a retry of a step that went through succeeds); 2 for a request that can
//! never succeed as given (a bad id or address, an unknown node, an id already a member at
//! another address, an address taken); 1 if the cluster did not carry it out in time.

use clap::{Args, Subcommand};
use raftkv_core::NodeId;

use crate::client::{self, Client, MemberList};
use crate::cluster_args::ClusterArgs;
use crate::failure::Failure;
use crate::server::check_address;
use crate::wire::MemberStep;

/// Options of `raftkv member`.
#[derive(Debug, Args)]
#[command(after_help = "Examples, growing a cluster of nodes 1, 2, 3 by node 4:
  raftkv serve --id 4 --listen 10.0.0.4:7001 --data /var/lib/raftkv --join 10.0.0.1:7001
  raftkv member add 4 10.0.0.4:7001 --learner
  raftkv member list
  raftkv member promote 4
  raftkv member remove 1")]
pub(crate) struct MemberArgs {
    #[command(subcommand)]
    command: MemberCommand,
}

#[derive(Debug, Subcommand)]
enum MemberCommand {
    /// Print the voters and learners as the leader sees them: id, role, address, how far each
    /// log reaches (match) and how many entries it is behind the leader's (lag), and whether a
    /// change is in progress.
    List {
        /// One JSON object instead.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        cluster: ClusterArgs,
    },
    /// Add node ID, reached by the others at ADDR (HOST:PORT). Start it first with
    /// `raftkv serve --id ID --listen ADDR --data DIR --join ...`. Without --learner it is
    /// added as a learner, then promoted to voter once it has caught up.
    Add {
        /// The new node's id: never used before in this cluster.
        id: u64,
        /// Where the other nodes reach it, HOST:PORT (its --listen, or what that is reached
        /// at).
        address: String,
        /// Leave it a learner: it receives the log but does not vote (promote it later).
        #[arg(long)]
        learner: bool,
        #[command(flatten)]
        cluster: ClusterArgs,
    },
    /// Make learner ID a voter, once it has caught up with the leader (waits for that).
    Promote {
        /// The learner.
        id: u64,
        #[command(flatten)]
        cluster: ClusterArgs,
    },
    /// Remove member ID, voter or learner; stop its process afterwards. Its id is retired:
    /// the cluster refuses to add it again.
    Remove {
        /// The member.
        id: u64,
        #[command(flatten)]
        cluster: ClusterArgs,
    },
}

/// Runs `raftkv member`.
pub(crate) fn run(args: &MemberArgs) -> Result<(), Failure> {
    match &args.command {
        MemberCommand::List { json, cluster } => {
            let list = cluster.connect()?.members()?;
            if *json {
                println!("{}", list_json(&list));
            } else {
                print!("{}", list_text(&list));
            }
            Ok(())
        }
        MemberCommand::Add { id, address, learner, cluster } => {
            let id = node_id(*id)?;
            check_address(address).map_err(Failure::Usage)?;
            let mut client = cluster.connect()?;
            let address = address.clone();
            let mut list = change(&mut client, MemberStep::AddLearner { id, address })?;
            if !learner {
                list = change(&mut client, MemberStep::Promote { id })?;
            }
            println!("{}", summary(&list));
            Ok(())
        }
        MemberCommand::Promote { id, cluster } => {
            let step = MemberStep::Promote { id: node_id(*id)? };
            println!("{}", summary(&change(&mut cluster.connect()?, step)?));
            Ok(())
        }
        MemberCommand::Remove { id, cluster } => {
            let step = MemberStep::Remove { id: node_id(*id)? };
            println!("{}", summary(&change(&mut cluster.connect()?, step)?));
            Ok(())
        }
    }
}

/// Runs `raftkv transfer-leader ID`.
pub(crate) fn transfer_leader(id: u64, cluster: &ClusterArgs) -> Result<(), Failure> {
    let id = node_id(id)?;
    cluster.connect()?.transfer_leader(id).map_err(refusal_is_usage)?;
    println!("node {id} leads");
    Ok(())
}

fn node_id(id: u64) -> Result<NodeId, Failure> {
    match id {
        0 => Err(Failure::Usage("node ids are positive".to_string())),
        id => Ok(NodeId(id)),
    }
}

fn change(client: &mut Client, step: MemberStep) -> Result<MemberList, Failure> {
    client.change_membership(step).map_err(refusal_is_usage)
}

/// A request the cluster refuses for good was given wrong: a usage error. One not done in
/// time says why, and where to look.
fn refusal_is_usage(error: client::Error) -> Failure {
    match error {
        client::Error::Invalid { reason } => Failure::Usage(format!("refused: {reason}")),
        client::Error::Timeout { after, detail } => Failure::Error(format!(
            "not done within {after:?}: {detail} (`raftkv member list` shows where the cluster \
             stands; --timeout-ms gives more time)"
        )),
        error => Failure::Client(error),
    }
}

/// The membership in one line, e.g. `membership at 42: voters=1,2,3 learners=4`.
fn summary(list: &MemberList) -> String {
    let ids = |ids: &[NodeId]| ids.iter().map(ToString::to_string).collect::<Vec<_>>().join(",");
    let membership = &list.membership;
    let mut line =
        format!("membership at {}: voters={}", membership.index, ids(&membership.voters));
    if !membership.outgoing.is_empty() {
        line.push_str(&format!(" outgoing={}", ids(&membership.outgoing)));
    }
    if !membership.learners.is_empty() {
        line.push_str(&format!(" learners={}", ids(&membership.learners)));
    }
    if !membership.retired.is_empty() {
        line.push_str(&format!(" retired={}", ids(&membership.retired)));
    }
    line
}

/// A member's role: `voter`, `learner`, or during a joint change `voter (joining)` or
/// `voter (leaving)`.
fn role(list: &MemberList, id: NodeId) -> &'static str {
    let membership = &list.membership;
    let (incoming, outgoing) = (membership.voters.contains(&id), membership.outgoing.contains(&id));
    match (incoming, outgoing) {
        (true, false) if membership.outgoing.is_empty() => "voter",
        (true, true) => "voter",
        (true, false) => "voter (joining)",
        (false, true) => "voter (leaving)",
        (false, false) => "learner",
    }
}

fn list_text(list: &MemberList) -> String {
    let state = if list.changing() { "change in progress" } else { "settled" };
    let mut text = format!(
        "leader {} term {} commit {}; {} ({state})\n",
        list.leader,
        list.term,
        list.commit,
        summary(list)
    );
    text.push_str(&format!(
        "{:<6} {:<16} {:<24} {:>10} {:>8}\n",
        "ID", "ROLE", "ADDRESS", "MATCH", "LAG"
    ));
    for id in list.membership.members() {
        let address = list.membership.address(id).unwrap_or("?");
        let matched = list.match_index(id).map_or("?".to_string(), |index| index.to_string());
        let lag = list.lag(id).map_or("?".to_string(), |lag| lag.to_string());
        text.push_str(&format!(
            "{:<6} {:<16} {address:<24} {matched:>10} {lag:>8}\n",
            id.to_string(),
            role(list, id)
        ));
    }
    text
}

fn list_json(list: &MemberList) -> serde_json::Value {
    let members: Vec<serde_json::Value> = list
        .membership
        .members()
        .into_iter()
        .map(|id| {
            serde_json::json!({
                "id": id.0,
                "role": if list.membership.learners.contains(&id) { "learner" } else { "voter" },
                "joining": role(list, id) == "voter (joining)",
                "leaving": role(list, id) == "voter (leaving)",
                "address": list.membership.address(id),
                "match": list.match_index(id).map(|index| index.0),
                "lag": list.lag(id),
            })
        })
        .collect();
    serde_json::json!({
        "leader": list.leader.0,
        "term": list.term.0,
        "commit": list.commit.0,
        "last_log": list.last_log.0,
        "membership_index": list.membership.index.0,
        "changing": list.changing(),
        "joint": !list.membership.outgoing.is_empty(),
        "voters": list.membership.voters.iter().map(|id| id.0).collect::<Vec<_>>(),
        "learners": list.membership.learners.iter().map(|id| id.0).collect::<Vec<_>>(),
        "retired": list.membership.retired.iter().map(|id| id.0).collect::<Vec<_>>(),
        "members": members,
    })
}
