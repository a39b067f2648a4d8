//! raftdrill's reference node as a store: `raftdrill node` with its flags, `/status`, and
//! membership changes through the admin API (`crate::admin`).

use std::net::SocketAddr;
use std::time::Duration;

use raftdrill_wire::AddMember;
use target_cluster::typ::NodeId;

use super::{Site, StartMode, StatusCall, StoreError, through_cluster};
use crate::admin::AdminClient;

/// How long one status call of the poller may take: a paused node must not stall it.
pub const POLL_TIMEOUT: Duration = Duration::from_millis(120);
/// How long a membership change may take.
const ADMIN_DEADLINE: Duration = Duration::from_secs(30);
/// Pause between rounds of a membership change that was refused.
const ADMIN_PAUSE: Duration = Duration::from_millis(200);

/// The reference node's side of a run.
#[derive(Clone)]
pub struct Reference {
    /// Flags of every node beyond its identity (`--store memory`, `--fsync never`, ...).
    node_flags: Vec<String>,
    /// The admin client (sends the run's token where the nodes check one).
    admin: AdminClient,
}

impl Reference {
    /// The reference node with `node_flags`, called through `admin`.
    pub fn new(node_flags: Vec<String>, admin: AdminClient) -> Self {
        Self { node_flags, admin }
    }

    /// The same node, called through `admin`.
    pub fn with_admin(self, admin: AdminClient) -> Self {
        Self { admin, ..self }
    }

    /// The admin client.
    pub fn admin(&self) -> &AdminClient {
        &self.admin
    }

    /// `--id`, `--listen`, `--data-dir`, a `--peer` per peer at the address this node dials
    /// for it, the run's token file, `--initial-members` when bootstrapping, and the flags.
    pub fn launch(
        &self,
        site: &Site,
        peers: &[(NodeId, SocketAddr)],
        mode: StartMode<'_>,
    ) -> Vec<String> {
        let mut args = vec![
            "--id".into(),
            site.id.to_string(),
            "--listen".into(),
            site.client.to_string(),
            "--data-dir".into(),
            site.data_dir.display().to_string(),
        ];
        for (peer, addr) in peers.iter().filter(|(p, _)| *p != site.id) {
            args.extend(["--peer".into(), format!("{peer}={addr}")]);
        }
        if let Some(t) = &site.token_file {
            args.extend(["--token-file".into(), t.display().to_string()]);
        }
        if let StartMode::Bootstrap(members) = mode {
            let members: Vec<String> = members.iter().map(NodeId::to_string).collect();
            args.extend(["--initial-members".into(), members.join(",")]);
        }
        args.extend(self.node_flags.iter().cloned());
        args
    }

    /// `GET /status` at `url`.
    pub fn status_call(&self, url: String, timeout: Duration) -> StatusCall {
        let admin = self.admin.clone();
        Box::pin(async move { admin.status(&url, timeout).await.ok() })
    }

    /// Adds `site` as a learner and promotes it to voter, at its client address.
    pub async fn add_member(&self, urls: &[String], site: &Site) -> Result<(), StoreError> {
        let member = AddMember {
            id: site.id,
            addr: site.client.to_string(),
            voter: true,
        };
        let member = &member;
        through_cluster(urls, ADMIN_DEADLINE, ADMIN_PAUSE, |url| async move {
            self.admin
                .add_member(&url, member, ADMIN_DEADLINE)
                .await
                .map(|_| ())
        })
        .await
    }

    /// Takes node `id` out of the membership.
    pub async fn remove_member(&self, urls: &[String], id: NodeId) -> Result<(), StoreError> {
        through_cluster(urls, ADMIN_DEADLINE, ADMIN_PAUSE, |url| async move {
            self.admin
                .remove_member(&url, id, ADMIN_DEADLINE)
                .await
                .map(|_| ())
        })
        .await
    }
}
