//! The adapter against the fake gateway (encoding, each error mapping, failover) and, ignored
//! by default, against a real single-member etcd.

use std::time::Duration;

use raftdrill_wire::Consistency;

use super::EtcdCluster;
use super::fake::{Behaviour, member};
use crate::outcome::{ErrorClass, Outcome};
use crate::target::{CasResult, Target};
use crate::testkit;

const T: Duration = Duration::from_secs(2);

fn adapter(urls: &[&str]) -> EtcdCluster {
    let urls: Vec<String> = urls.iter().map(|u| u.to_string()).collect();
    EtcdCluster::new(&urls, T).unwrap()
}

#[tokio::test]
async fn put_get_and_cas_are_encoded_as_the_gateway_wants() {
    let m = member(Behaviour::Healthy).await;
    let c = adapter(&[&m.url]);
    assert_eq!(c.put(0, "a key/ü", "v1").await.unwrap(), Some(1));
    assert_eq!(
        c.get(0, "a key/ü", Consistency::Linearizable)
            .await
            .unwrap(),
        Some("v1".into())
    );
    assert_eq!(c.get(0, "nothing", Consistency::Stale).await.unwrap(), None);
    let swapped = c.cas(0, "a key/ü", Some("v1"), "v2").await.unwrap();
    assert_eq!(
        swapped,
        CasResult {
            swapped: true,
            current: Some("v2".into()),
            index: Some(2)
        }
    );
    let refused = c.cas(0, "a key/ü", Some("v1"), "v3").await.unwrap();
    assert_eq!(
        refused,
        CasResult {
            swapped: false,
            current: Some("v2".into()),
            index: Some(2)
        }
    );
    let created = c.cas(0, "new", None, "first").await.unwrap();
    assert!(created.swapped);
    let again = c.cas(0, "new", None, "second").await.unwrap();
    assert_eq!(
        (again.swapped, again.current),
        (false, Some("first".into()))
    );
    m.seen(|s| {
        assert_eq!(s.data["a key/ü"].0, "v2");
        assert_eq!(s.data["new"].0, "first");
        let reads: Vec<_> = s.requests.iter().filter(|(c, _)| c == "range").collect();
        assert_eq!(
            reads[0].1.get("serializable"),
            None,
            "linearizable is the default"
        );
        assert_eq!(
            reads[1].1["serializable"], true,
            "stale maps to serializable"
        );
    });
}

#[tokio::test]
async fn lease_reads_are_refused_without_asking_etcd() {
    assert!(EtcdCluster::supports(Consistency::Linearizable));
    assert!(EtcdCluster::supports(Consistency::Stale));
    assert!(!EtcdCluster::supports(Consistency::Lease));
    let m = member(Behaviour::Healthy).await;
    let e = adapter(&[&m.url])
        .get(0, "k", Consistency::Lease)
        .await
        .unwrap_err();
    assert_eq!((e.class, e.outcome), (ErrorClass::Http4xx, Outcome::Fail));
    m.seen(|s| assert!(s.requests.is_empty()));
}

#[tokio::test]
async fn a_member_without_a_leader_is_failed_over() {
    let bad = member(Behaviour::Failing(503, 14, "etcdserver: no leader")).await;
    let good = member(Behaviour::Healthy).await;
    let c = adapter(&[&bad.url, &good.url]);
    assert_eq!(c.put(0, "k", "v").await.unwrap(), Some(1));
    bad.seen(|s| assert_eq!(s.requests.len(), 1));
    // The member is skipped for its cool-down: the next operation goes straight elsewhere.
    c.put(0, "k", "w").await.unwrap();
    bad.seen(|s| assert_eq!(s.requests.len(), 1));
}

#[tokio::test]
async fn a_dropped_proposal_is_retried_elsewhere() {
    let bad = member(Behaviour::Failing(500, 2, "raft proposal dropped")).await;
    let good = member(Behaviour::Healthy).await;
    let c = adapter(&[&bad.url, &good.url]);
    assert!(c.cas(0, "k", None, "v").await.unwrap().swapped);
    good.seen(|s| assert_eq!(s.data["k"].0, "v"));
}

#[tokio::test]
async fn a_timed_out_write_is_unknown_and_not_retried() {
    let bad = member(Behaviour::Failing(503, 14, "etcdserver: request timed out")).await;
    let good = member(Behaviour::Healthy).await;
    let c = adapter(&[&bad.url, &good.url]);
    let e = c.put(0, "k", "v").await.unwrap_err();
    assert_eq!(
        (e.class, e.outcome),
        (ErrorClass::Http5xx, Outcome::Unknown)
    );
    let e = c.cas(0, "k", None, "v").await.unwrap_err();
    assert_eq!(e.outcome, Outcome::Unknown);
    good.seen(|s| assert!(s.requests.is_empty(), "an unknown outcome is never retried"));
}

#[tokio::test]
async fn a_read_interrupted_by_a_leader_change_is_retried() {
    let bad = member(Behaviour::Failing(503, 14, "etcdserver: leader changed")).await;
    let good = member(Behaviour::Healthy).await;
    let c = adapter(&[&bad.url, &good.url]);
    c.put(1, "k", "v").await.unwrap();
    let got = c.get(0, "k", Consistency::Linearizable).await.unwrap();
    assert_eq!(got, Some("v".into()));
    bad.seen(|s| assert_eq!(s.requests.len(), 1));
}

#[tokio::test]
async fn invalid_arguments_fail_as_4xx() {
    let m = member(Behaviour::Failing(
        400,
        3,
        "etcdserver: key is not provided",
    ))
    .await;
    let e = adapter(&[&m.url]).put(0, "", "v").await.unwrap_err();
    assert_eq!((e.class, e.outcome), (ErrorClass::Http4xx, Outcome::Fail));
    assert!(e.detail.contains("key is not provided"), "{}", e.detail);
}

#[tokio::test]
async fn transport_errors_are_classified_as_for_the_reference_cluster() {
    let refusing = testkit::refusing_url().await;
    let e = adapter(&[&refusing]).put(0, "k", "v").await.unwrap_err();
    assert_eq!((e.class, e.outcome), (ErrorClass::Connect, Outcome::Fail));

    let resetting = testkit::resetting_server().await;
    let e = adapter(&[&resetting]).put(0, "k", "v").await.unwrap_err();
    assert_eq!((e.class, e.outcome), (ErrorClass::Reset, Outcome::Unknown));

    let slow = testkit::slow_server(Duration::from_secs(30)).await;
    let c = EtcdCluster::new(&[slow], Duration::from_millis(200)).unwrap();
    let e = c.put(0, "k", "v").await.unwrap_err();
    assert_eq!(
        (e.class, e.outcome),
        (ErrorClass::Timeout, Outcome::Unknown)
    );
}

#[tokio::test]
async fn a_refused_member_is_skipped_for_a_live_one() {
    let refusing = testkit::refusing_url().await;
    let good = member(Behaviour::Healthy).await;
    let c = adapter(&[&refusing, &good.url]);
    assert_eq!(c.put(0, "k", "v").await.unwrap(), Some(1));
}

/// etcd on PATH, or a failure that says how to get it.
fn etcd_binary() -> std::path::PathBuf {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join("etcd"))
            .find(|p| p.is_file())
    });
    found.expect("etcd is not on PATH: install Debian's etcd-server (apt-get install etcd-server)")
}

/// A free port on 127.0.0.1 (etcd binds it a moment later).
fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// A single-member etcd in a temporary folder, killed on drop.
struct SingleEtcd {
    child: std::process::Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl Drop for SingleEtcd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_etcd() -> SingleEtcd {
    let dir = tempfile::tempdir().unwrap();
    let (client, peer) = (free_port(), free_port());
    let url = format!("http://127.0.0.1:{client}");
    let peer_url = format!("http://127.0.0.1:{peer}");
    let log = std::fs::File::create(dir.path().join("etcd.log")).unwrap();
    let child = std::process::Command::new(etcd_binary())
        .args(["--name", "m1", "--data-dir"])
        .arg(dir.path().join("data"))
        .args([
            "--listen-client-urls",
            &url,
            "--advertise-client-urls",
            &url,
        ])
        .args(["--listen-peer-urls", &peer_url])
        .args(["--initial-advertise-peer-urls", &peer_url])
        .args(["--initial-cluster", &format!("m1={peer_url}")])
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    SingleEtcd {
        child,
        url,
        _dir: dir,
    }
}

#[tokio::test]
#[ignore = "needs the etcd binary (Debian: etcd-server)"]
async fn against_a_real_etcd_member() {
    let etcd = start_etcd();
    let c = adapter(&[&etcd.url]);
    // Wait for the member to serve: the first write succeeds once it has elected itself.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let first = loop {
        match c.put(0, "k", "v1").await {
            Ok(rev) => break rev.expect("a revision"),
            Err(e) if tokio::time::Instant::now() < deadline => {
                tracing::debug!(error = %e, "etcd not ready yet");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("etcd did not serve within 30 s: {e}"),
        }
    };
    assert_eq!(
        c.get(0, "k", Consistency::Linearizable).await.unwrap(),
        Some("v1".into())
    );
    assert_eq!(
        c.get(0, "k", Consistency::Stale).await.unwrap(),
        Some("v1".into())
    );
    assert_eq!(
        c.get(0, "missing", Consistency::Linearizable)
            .await
            .unwrap(),
        None
    );
    let second = c.put(0, "k", "v2").await.unwrap().unwrap();
    assert!(second > first, "revisions grow: {first} then {second}");

    let swapped = c.cas(0, "k", Some("v2"), "v3").await.unwrap();
    assert!(swapped.swapped);
    assert_eq!(swapped.current.as_deref(), Some("v3"));
    assert!(swapped.index.unwrap() > second);
    let refused = c.cas(0, "k", Some("v2"), "v4").await.unwrap();
    assert_eq!(
        (refused.swapped, refused.current.as_deref()),
        (false, Some("v3"))
    );

    let created = c.cas(0, "fresh", None, "one").await.unwrap();
    assert_eq!(
        (created.swapped, created.current.as_deref()),
        (true, Some("one"))
    );
    let exists = c.cas(0, "fresh", None, "two").await.unwrap();
    assert_eq!(
        (exists.swapped, exists.current.as_deref()),
        (false, Some("one"))
    );
    let empty = c.put(0, "empty", "").await.unwrap();
    assert!(empty.is_some());
    assert_eq!(
        c.get(0, "empty", Consistency::Linearizable).await.unwrap(),
        Some(String::new()),
        "an empty value is not a missing key"
    );
    // A key etcd refuses (empty) is a definite failure, as etcd says InvalidArgument.
    let e = c.put(0, "", "x").await.unwrap_err();
    assert_eq!((e.class, e.outcome), (ErrorClass::Http4xx, Outcome::Fail));
}
