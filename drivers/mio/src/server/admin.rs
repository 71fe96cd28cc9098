//! Operators' requests to the leader (`raftkv member`, `raftkv transfer-leader`, and the steps
//! of `raftkv snapshot save`, which `backup` answers): checked here
//! (an address must be `HOST:PORT` and no other member's), then handed to the replica, which
//! refuses what Raft cannot do, with the reason.

use raftkv_core::kv::KvStore;
use raftkv_core::raft::{ChangeRefused, MemberChange, TransferError};
use raftkv_core::server::Replica;
use raftkv_core::{Instant, NodeId};
use tracing::info;

use crate::server::backup::BackupSource;
use crate::wire::{AdminAnswer, AdminRequest, MemberStep};

/// Carries out `request` on `replica`; the answer says whether it started.
pub(super) fn carry_out(
    replica: &mut Replica<KvStore>,
    backups: &mut BackupSource,
    request: AdminRequest,
    now: Instant,
) -> AdminAnswer {
    match request {
        AdminRequest::Backup(step) => backups.answer(replica, step),
        AdminRequest::ChangeMembership(step) => change_membership(replica, step, now),
        AdminRequest::TransferLeader(target) => match replica.transfer_leadership(now, target) {
            Ok(()) => {
                info!(%target, "transferring leadership, as an operator asked");
                AdminAnswer::Started
            }
            Err(TransferError::NotLeader { hint }) => AdminAnswer::NotLeader { hint },
            Err(error @ TransferError::UnknownNode(_)) => refused(error.to_string(), false),
        },
    }
}

fn change_membership(
    replica: &mut Replica<KvStore>,
    step: MemberStep,
    now: Instant,
) -> AdminAnswer {
    let change = match step {
        MemberStep::AddLearner { id, address } => {
            if let Err(reason) = check_new_member(replica, id, &address) {
                return refused(reason, false);
            }
            MemberChange::AddLearner { id, address: address.into_bytes() }
        }
        MemberStep::Promote { id } => MemberChange::Promote { id },
        MemberStep::Remove { id } => MemberChange::Remove { id },
    };
    match replica.propose_membership_change(now, std::slice::from_ref(&change)) {
        Ok(entry) => {
            info!(?change, at = %entry.index, "membership change started, as an operator asked");
            AdminAnswer::Started
        }
        Err(ChangeRefused::NotLeader { hint }) => AdminAnswer::NotLeader { hint },
        Err(refusal) => {
            let retry = matches!(
                refusal,
                ChangeRefused::NotCommittedInTerm
                    | ChangeRefused::ChangeInProgress { .. }
                    | ChangeRefused::LearnerBehind { .. }
                    | ChangeRefused::LearnerSilent(_)
            );
            refused(refusal.to_string(), retry)
        }
    }
}

/// A new member needs a positive id and an address of the form `HOST:PORT` that no member
/// has (two members at one address would each be dialed as the other).
fn check_new_member(replica: &Replica<KvStore>, id: NodeId, address: &str) -> Result<(), String> {
    if id.0 == 0 {
        return Err("node ids are positive".to_string());
    }
    check_address(address)?;
    let membership = replica.raft().membership();
    let taken = membership
        .members()
        .into_iter()
        .find(|&member| member != id && membership.address(member) == Some(address.as_bytes()));
    match taken {
        Some(member) => Err(format!("address {address} is node {member}'s already")),
        None => Ok(()),
    }
}

/// Whether `address` has the form `HOST:PORT` (it is resolved by whoever dials it).
pub(crate) fn check_address(address: &str) -> Result<(), String> {
    let bad = || format!("address {address:?} is not HOST:PORT");
    let (host, port) = address.rsplit_once(':').ok_or_else(bad)?;
    match port.parse::<u16>() {
        Ok(port) if port > 0 && !host.is_empty() && !host.contains(char::is_whitespace) => Ok(()),
        _ => Err(bad()),
    }
}

fn refused(reason: String, retry: bool) -> AdminAnswer {
    AdminAnswer::Refused { reason, retry }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_must_be_host_and_port() {
        for good in ["127.0.0.1:7004", "node-4.example:7000", "[::1]:7004"] {
            assert_eq!(check_address(good), Ok(()), "{good}");
        }
        for bad in ["127.0.0.1", ":7004", "host:0", "host:99999", "host:x", "a b:1", ""] {
            assert!(check_address(bad).is_err(), "{bad}");
        }
    }
}
