//! redb on top of faultfs, as the reference node uses it: commits with
//! `Durability::Immediate` survive a SIGKILL plus power loss, commits with `Durability::None`
//! do not, and the database opens cleanly afterwards.
//!
//! The writer runs in a child process (this test binary, running the ignored helper below) so
//! it can be SIGKILLed like a node: closing a redb database would make its last commits durable.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use raftdrill_faultfs::PowerLoss;
use redb::{Database, Durability, ReadableDatabase, TableDefinition};

use crate::support::{ChildGuard, Mounted, fsync_dir};

const TABLE: TableDefinition<u64, &[u8]> = TableDefinition::new("log");
const DIR_ENV: &str = "FAULTFS_REDB_TEST_DIR";
const WRITTEN: &str = "redb-writer: all commits done";

/// Entries big enough that redb writes pages to the file rather than keeping them in its cache.
fn value(key: u64) -> Vec<u8> {
    vec![key as u8; 16 * 1024]
}

/// One transaction writing keys `keys`.
fn commit(db: &Database, keys: std::ops::Range<u64>, durability: Durability) {
    let mut tx = db.begin_write().unwrap();
    tx.set_durability(durability).unwrap();
    {
        let mut t = tx.open_table(TABLE).unwrap();
        for key in keys {
            t.insert(key, value(key).as_slice()).unwrap();
        }
    }
    tx.commit().unwrap();
}

/// Run in a child process by the test below; without its environment it does nothing.
#[test]
#[ignore = "helper of redb_keeps_exactly_its_durable_commits_across_a_power_loss"]
fn redb_writer_child() {
    let Ok(dir) = std::env::var(DIR_ENV) else {
        return;
    };
    let dir = Path::new(&dir);
    // A small cache makes redb write the pages of non-durable commits to the file, unsynced.
    let db = Database::builder()
        .set_cache_size(64 * 1024)
        .create(dir.join("raft.redb"))
        .unwrap();
    // A new file's directory entry is durable only after an fsync of its directory.
    fsync_dir(dir);
    for i in 0..3 {
        commit(&db, i * 10..i * 10 + 10, Durability::Immediate);
    }
    for i in 3..6 {
        commit(&db, i * 10..i * 10 + 10, Durability::None);
    }
    println!("{WRITTEN}");
    // Wait for the SIGKILL with the database open, as a node would.
    loop {
        std::thread::park();
    }
}

#[tokio::test]
async fn redb_keeps_exactly_its_durable_commits_across_a_power_loss() {
    let mut m = Mounted::new().await;
    let dir = m.path("");
    let mut child = ChildGuard(
        Command::new(std::env::current_exe().unwrap())
            .args([
                "redb::redb_writer_child",
                "--exact",
                "--ignored",
                "--nocapture",
            ])
            .env(DIR_ENV, &dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let stdout = child.0.stdout.take().unwrap();
    let done = tokio::task::spawn_blocking(move || {
        BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .any(|l| l.contains(WRITTEN))
    })
    .await
    .unwrap();
    assert!(done, "the writer did not finish its commits");
    child.kill();
    let before = m.stats().await;
    assert!(
        before.bytes_unsynced > 0,
        "the Durability::None commits must be held unsynced: {before:?}"
    );
    let report = m.client.power_loss(PowerLoss::default()).await.unwrap();
    eprintln!("before the power loss: {before:?}\npower loss: {report:?}");
    assert!(report.bytes_dropped > 0, "{report:?}");

    let db = Database::create(dir.join("raft.redb")).expect("redb opens after a power loss");
    let tx = db.begin_read().unwrap();
    let table = tx.open_table(TABLE).unwrap();
    for key in 0..30 {
        assert_eq!(
            table.get(key).unwrap().map(|v| v.value().to_vec()),
            Some(value(key)),
            "durable key {key} lost"
        );
    }
    for key in 30..60 {
        assert!(
            table.get(key).unwrap().is_none(),
            "non-durable key {key} survived the power loss"
        );
    }
}
