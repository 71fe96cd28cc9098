//! A node that joins a running cluster (`--join`) and holds no membership yet asks the nodes
//! at the addresses it was given who the members are, as a client would: it then dials them,
//! so that it can answer the leader that adds it. Until then it never campaigns (it is no
//! voter of any membership it knows).

use std::time::{Duration, Instant};

use raftkv_core::NodeId;
use tracing::{info, warn};

use crate::client::pool::ClerkPool;
use crate::server::error::ServeError;
use crate::server::options::ServeOptions;

/// How long one attempt waits for an answer (less if `--join-timeout-ms` runs out first).
const ATTEMPT: Duration = Duration::from_secs(2);

/// The members of the cluster at `options.join` and their addresses, this node left out;
/// tried again until `options.join_timeout` has passed.
pub(super) fn discover_members(
    options: &ServeOptions,
) -> Result<Vec<(NodeId, String)>, ServeError> {
    let given = options.join.join(",");
    let deadline = Instant::now() + options.join_timeout;
    let left = || deadline.saturating_duration_since(Instant::now());
    loop {
        let mut pool =
            ClerkPool::new(&options.join, &options.cluster, options.join_tls.clone()).map_err(
                |error| ServeError::Join { addresses: given.clone(), problem: error.to_string() },
            )?;
        let problem = match pool.connect(ATTEMPT.min(left())) {
            Ok(true) => {
                let mut members = pool.members();
                members.retain(|(id, _)| *id != options.id);
                if !members.is_empty() {
                    info!(?members, "joining: the cluster named its members");
                    return Ok(members);
                }
                "no node there knows the cluster's members".to_string()
            }
            Ok(false) => pool.describe_links(),
            Err(error) => error.to_string(),
        };
        if Instant::now() >= deadline {
            return Err(ServeError::Join { addresses: given, problem });
        }
        warn!(addresses = %given, %problem, "joining: cannot learn the members yet, retrying");
        std::thread::sleep(ATTEMPT.min(left()));
    }
}
