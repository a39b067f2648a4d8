//! etcd as a store: the `etcd` binary with one member's flags, its status and member list as
//! the poller's status, and membership changes through the member API. etcd knows its members
//! by 64-bit ids; raftdrill by node numbers, so the store keeps the map between them (members
//! are named `m<id>`, see [`member_name`]).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use target_cluster::typ::NodeId;

use super::{Site, StartMode, StatusCall, StoreError, through_cluster};
use crate::etcd::api::{EtcdApi, Member};
use crate::etcd::launch::{EtcdOptions, member_name};
use crate::etcd::status::{IdMap, to_status};

/// How long one status call of the poller may take (a status and a member list).
pub const POLL_TIMEOUT: Duration = Duration::from_millis(500);
/// How long one membership call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a membership change may keep being retried (elections, a busy machine).
const MEMBERSHIP_DEADLINE: Duration = Duration::from_secs(30);
/// Pause between rounds of a membership change that was refused.
const MEMBERSHIP_PAUSE: Duration = Duration::from_millis(200);

/// etcd's side of a run.
#[derive(Clone)]
pub struct Etcd {
    binary: PathBuf,
    opts: EtcdOptions,
    /// `--initial-cluster-token`, unique per cluster so that concurrent clusters never merge.
    token: String,
    api: EtcdApi,
    /// Node number ↔ etcd member id, as last learned.
    ids: Arc<Mutex<IdMap>>,
}

impl Etcd {
    /// etcd from `binary` with `opts`' timings and flags, in the cluster named `token`.
    pub fn new(binary: PathBuf, opts: EtcdOptions, token: String) -> Self {
        Self {
            binary,
            opts,
            token,
            api: EtcdApi::new(),
            ids: Arc::new(Mutex::new(IdMap::default())),
        }
    }

    /// The binary on this machine (on hosts, `etcd` from their `PATH` runs instead).
    pub fn binary(&self) -> PathBuf {
        self.binary.clone()
    }

    fn id_map(&self) -> std::sync::MutexGuard<'_, IdMap> {
        self.ids.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Node number → etcd member id, as last learned.
    pub fn ids(&self) -> BTreeMap<NodeId, u64> {
        self.id_map().by_node().clone()
    }

    /// The etcd member id of node `id`, as last learned.
    pub fn member_id(&self, id: NodeId) -> Option<u64> {
        self.id_map().member(id)
    }

    /// The flags of member `site`: named `m<id>`, listening for clients at its client address
    /// and for peers at its peer listener, advertising its advertised peer address (a link
    /// proxy in front of the listener, here), and listing `peers` (the members it must know,
    /// at their advertised peer addresses, itself included) as `--initial-cluster`: a `new`
    /// cluster when bootstrapping, an `existing` one when it joins after being added.
    pub fn launch(
        &self,
        site: &Site,
        peers: &[(NodeId, SocketAddr)],
        mode: StartMode<'_>,
    ) -> Vec<String> {
        let initial: Vec<String> = peers
            .iter()
            .map(|(id, addr)| format!("{}=http://{addr}", member_name(*id)))
            .collect();
        let state = match mode {
            StartMode::Bootstrap(_) => "new",
            StartMode::Join => "existing",
        };
        let client = site.url();
        let mut args = vec![
            format!("--name={}", member_name(site.id)),
            format!("--data-dir={}", site.data_dir.display()),
            format!("--listen-client-urls={client}"),
            format!("--advertise-client-urls={client}"),
            format!("--listen-peer-urls=http://{}", site.peer_listen),
            format!(
                "--initial-advertise-peer-urls=http://{}",
                site.peer_advertised
            ),
            format!("--initial-cluster={}", initial.join(",")),
            format!("--initial-cluster-state={state}"),
            format!("--initial-cluster-token={}", self.token),
            // zap is 3.4's structured logger; the default (capnslog) is deprecated.
            "--logger=zap".into(),
            "--log-outputs=stderr".into(),
        ];
        if let Some(w) = &site.wal_dir {
            args.push(format!("--wal-dir={}", w.display()));
        }
        if let Some(h) = self.opts.heartbeat {
            args.push(format!("--heartbeat-interval={}", h.as_millis()));
        }
        if let Some(e) = self.opts.election_timeout {
            args.push(format!("--election-timeout={}", e.as_millis()));
        }
        args.extend(self.opts.extra_flags.iter().cloned());
        args
    }

    /// The status and member list at `url` as node `id`'s status; learns member ids from
    /// the members' names on the way.
    pub fn status_call(&self, id: NodeId, url: String, timeout: Duration) -> StatusCall {
        let this = self.clone();
        Box::pin(async move {
            let (status, members) = tokio::join!(
                this.api.status(&url, timeout),
                this.api.members(&url, timeout)
            );
            let members = members.ok()?;
            let ids = this.learn(&members);
            Some(to_status(id, &status.ok()?, &members, &ids))
        })
    }

    /// Records the member id of every named member in `members`; returns the whole map.
    fn learn(&self, members: &[Member]) -> IdMap {
        let mut ids = self.id_map();
        for m in members {
            let node = m
                .name
                .strip_prefix('m')
                .and_then(|n| n.parse::<NodeId>().ok());
            if let Some(node) = node
                && member_name(node) == m.name
            {
                ids.insert(node, m.id);
            }
        }
        ids.clone()
    }

    /// Learns the member ids from the member list of the first of `urls` that answers.
    pub async fn learn_ids(&self, urls: &[String]) {
        for url in urls {
            if let Ok(list) = self.api.members(url, POLL_TIMEOUT).await {
                self.learn(&list);
                return;
            }
        }
    }

    /// Adds `site` through the member API (it gets a new member id) before it starts.
    pub async fn add_member(&self, urls: &[String], site: &Site) -> Result<(), StoreError> {
        let peer_urls = vec![format!("http://{}", site.peer_advertised)];
        let peer_urls = &peer_urls;
        let added = through_cluster(urls, MEMBERSHIP_DEADLINE, MEMBERSHIP_PAUSE, |url| {
            let api = self.api.clone();
            async move { api.add_member(&url, peer_urls, CALL_TIMEOUT).await }
        })
        .await?;
        self.id_map().insert(site.id, added.id);
        Ok(())
    }

    /// Removes node `id`'s member through the member API and forgets its id.
    pub async fn remove_member(&self, urls: &[String], id: NodeId) -> Result<(), StoreError> {
        self.learn_ids(urls).await;
        let member = self
            .member_id(id)
            .ok_or_else(|| StoreError::Refused(format!("etcd lists no member for node {id}")))?;
        through_cluster(urls, MEMBERSHIP_DEADLINE, MEMBERSHIP_PAUSE, |url| {
            let api = self.api.clone();
            async move { api.remove_member(&url, member, CALL_TIMEOUT).await }
        })
        .await?;
        self.id_map().remove(id);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn site() -> Site {
        Site {
            id: 2,
            client: "127.0.0.1:2002".parse().unwrap(),
            peer_listen: "127.0.0.1:3002".parse().unwrap(),
            peer_advertised: "127.0.0.1:4002".parse().unwrap(),
            data_dir: "/d/member-2".into(),
            wal_dir: None,
            log: "/d/logs/2.log".into(),
            token_file: None,
        }
    }

    fn etcd(opts: EtcdOptions) -> Etcd {
        Etcd::new("etcd".into(), opts, "t".into())
    }

    #[test]
    fn flags_advertise_the_proxy_and_listen_behind_it() {
        let peers = [(2, "127.0.0.1:4002".parse().unwrap())];
        let members = [2];
        let args =
            etcd(EtcdOptions::default()).launch(&site(), &peers, StartMode::Bootstrap(&members));
        for want in [
            "--name=m2",
            "--listen-peer-urls=http://127.0.0.1:3002",
            "--initial-advertise-peer-urls=http://127.0.0.1:4002",
            "--advertise-client-urls=http://127.0.0.1:2002",
            "--initial-cluster=m2=http://127.0.0.1:4002",
            "--initial-cluster-state=new",
            "--initial-cluster-token=t",
        ] {
            assert!(
                args.iter().any(|a| a == want),
                "{want} missing from {args:?}"
            );
        }
        assert!(!args.iter().any(|a| a.starts_with("--heartbeat-interval")));
    }

    #[test]
    fn timings_are_passed_in_milliseconds_only_when_set() {
        let opts = EtcdOptions {
            heartbeat: Some(Duration::from_millis(50)),
            election_timeout: Some(Duration::from_millis(500)),
            extra_flags: vec!["--snapshot-count=100".into()],
        };
        let args = etcd(opts).launch(&site(), &[], StartMode::Join);
        assert!(args.contains(&"--heartbeat-interval=50".to_string()));
        assert!(args.contains(&"--election-timeout=500".to_string()));
        assert!(args.contains(&"--initial-cluster-state=existing".to_string()));
        assert_eq!(args.last().unwrap(), "--snapshot-count=100");
    }

    /// On hosts, members listen on their hosts' addresses, peers on the node port + 1, and
    /// name each other in `--initial-cluster`.
    #[test]
    fn members_on_hosts_name_each_other_and_listen_on_their_hosts() {
        let on_host = |id: u64, ip: &str| Site {
            id,
            client: format!("{ip}:7001").parse().unwrap(),
            peer_listen: format!("{ip}:7002").parse().unwrap(),
            peer_advertised: format!("{ip}:7002").parse().unwrap(),
            data_dir: "/srv/rd/data".into(),
            wal_dir: None,
            log: "/srv/rd/node.log".into(),
            token_file: Some("/srv/rd/token".into()),
        };
        let (one, two) = (on_host(1, "198.18.0.11"), on_host(2, "198.18.0.12"));
        let peers = [(1, one.peer_advertised), (2, two.peer_advertised)];
        let opts = EtcdOptions {
            heartbeat: Some(Duration::from_millis(100)),
            ..EtcdOptions::default()
        };
        let args = etcd(opts).launch(&two, &peers, StartMode::Bootstrap(&[1, 2]));
        for want in [
            "--name=m2",
            "--data-dir=/srv/rd/data",
            "--listen-client-urls=http://198.18.0.12:7001",
            "--listen-peer-urls=http://198.18.0.12:7002",
            "--initial-cluster=m1=http://198.18.0.11:7002,m2=http://198.18.0.12:7002",
            "--heartbeat-interval=100",
        ] {
            assert!(args.iter().any(|a| a == want), "{want} in {args:?}");
        }
    }
}
