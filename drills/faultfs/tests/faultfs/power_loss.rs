//! Power loss through the kernel: what was durable stays, everything else goes.

use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::fs::FileExt;

use raftdrill_faultfs::{Keep, PowerLoss, PowerLossReport};

use crate::support::{Mounted, durable, fsync_dir, open_rw};

fn read(path: &std::path::Path) -> Vec<u8> {
    let mut out = Vec::new();
    File::open(path).unwrap().read_to_end(&mut out).unwrap();
    out
}

#[tokio::test]
async fn unsynced_writes_are_read_back_then_lost() {
    let mut m = Mounted::new().await;
    let f = m.path("f");
    durable(&f, b"v1");
    {
        let mut w = open_rw(&f);
        w.write_all_at(b"v2, longer", 0).unwrap();
        w.flush().unwrap();
        // A second descriptor sees the writes (read-your-writes), and the size too.
        assert_eq!(read(&f), b"v2, longer");
        assert_eq!(std::fs::metadata(&f).unwrap().len(), 10);
    }
    assert_eq!(
        std::fs::read(m.backing("f")).unwrap(),
        b"v1",
        "the backing directory holds only durable bytes"
    );
    let s = m.stats().await;
    assert_eq!((s.files_unsynced, s.bytes_unsynced), (1, 10));
    let report = m.client.power_loss(PowerLoss::default()).await.unwrap();
    assert_eq!((report.files_reverted, report.bytes_dropped), (1, 10));
    assert_eq!(read(&f), b"v1");
    assert_eq!(std::fs::metadata(&f).unwrap().len(), 2);
}

/// A durable `f` of 1024 `a`s, then three unsynced writes in sectors of their own (`b` over
/// 512..1536, `c` over 1536..1636, `d` over 2048..3072), lost with `keep` and `seed`. Checks
/// the report records the request and that what reads show is what the backing file holds.
async fn three_writes_then(keep: Keep, seed: u64) -> (PowerLossReport, Vec<u8>) {
    let mut m = Mounted::new().await;
    let f = m.path("f");
    durable(&f, &[b'a'; 1024]);
    let w = open_rw(&f);
    w.write_all_at(&[b'b'; 1024], 512).unwrap();
    w.write_all_at(&[b'c'; 100], 1536).unwrap();
    w.write_all_at(&[b'd'; 1024], 2048).unwrap();
    drop(w);
    let report = m.client.power_loss(PowerLoss { keep, seed }).await.unwrap();
    assert_eq!((report.keep, report.seed), (keep, seed));
    let got = read(&f);
    assert_eq!(
        std::fs::read(m.backing("f")).unwrap(),
        got,
        "what was kept is durable"
    );
    (report, got)
}

#[tokio::test]
async fn a_torn_power_loss_keeps_a_prefix_cut_at_a_sector_boundary() {
    let (report, got) = three_writes_then(Keep::Torn, 2).await;
    // Seed 2 tears the last write after its first sector; the two before it are kept.
    assert_eq!(
        (
            report.writes_kept,
            report.writes_torn,
            report.writes_dropped
        ),
        (2, 1, 0),
        "{report:?}"
    );
    let want = [
        &[b'a'; 512][..],
        &[b'b'; 1024],
        &[b'c'; 100],
        &[0; 412],
        &[b'd'; 512],
    ]
    .concat();
    assert_eq!(got, want);
}

#[tokio::test]
async fn a_reordered_power_loss_keeps_a_subset_that_is_not_a_prefix() {
    let (report, got) = three_writes_then(Keep::Reordered, 1).await;
    // Seed 1 keeps the last write only: the file grows over the two lost ones, read as zeros.
    assert_eq!(
        (
            report.writes_kept,
            report.writes_torn,
            report.writes_dropped
        ),
        (1, 0, 2),
        "{report:?}"
    );
    let want = [&[b'a'; 1024][..], &[0; 1024], &[b'd'; 1024]].concat();
    assert_eq!(got, want);
}

#[tokio::test]
async fn fsync_and_fdatasync_survive() {
    let mut m = Mounted::new().await;
    let (a, b) = (m.path("a"), m.path("b"));
    durable(&a, b"");
    durable(&b, b"");
    let w = open_rw(&a);
    w.write_all_at(b"fsynced", 0).unwrap();
    w.sync_all().unwrap();
    let w = open_rw(&b);
    w.write_all_at(b"fdatasynced", 0).unwrap();
    w.sync_data().unwrap();
    w.write_all_at(b"+lost", 11).unwrap();
    m.client.power_loss(PowerLoss::default()).await.unwrap();
    assert_eq!(read(&a), b"fsynced");
    assert_eq!(read(&b), b"fdatasynced");
}

#[tokio::test]
async fn a_new_file_needs_its_directory_fsynced() {
    let mut m = Mounted::new().await;
    let f = m.path("new");
    let mut w = File::create(&f).unwrap();
    w.write_all(b"data").unwrap();
    w.sync_all().unwrap();
    drop(w);
    let report = m.client.power_loss(PowerLoss::default()).await.unwrap();
    assert_eq!(report.changes_undone, 1);
    assert!(
        !f.exists(),
        "fsync of the file alone keeps no directory entry"
    );

    let mut w = File::create(&f).unwrap();
    w.write_all(b"data").unwrap();
    w.sync_all().unwrap();
    fsync_dir(&m.path(""));
    m.client.power_loss(PowerLoss::default()).await.unwrap();
    assert_eq!(read(&f), b"data");
}

#[tokio::test]
async fn renames_and_unlinks_are_undone_unless_the_directory_was_fsynced() {
    let mut m = Mounted::new().await;
    let (a, b, c) = (m.path("a"), m.path("b"), m.path("c"));
    durable(&a, b"A");
    durable(&c, b"C");
    std::fs::rename(&a, &b).unwrap();
    std::fs::remove_file(&c).unwrap();
    assert!(!a.exists() && !c.exists());
    let report = m.client.power_loss(PowerLoss::default()).await.unwrap();
    assert_eq!(report.changes_undone, 2, "{report:?}");
    assert_eq!(read(&a), b"A", "the rename is undone");
    assert!(!b.exists());
    assert_eq!(read(&c), b"C", "the unlinked file is back");
    let mut listing: Vec<_> = std::fs::read_dir(m.path(""))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    listing.sort();
    assert_eq!(listing, ["a", "c"], "and the trash stays hidden");

    std::fs::rename(&a, &b).unwrap();
    std::fs::remove_file(&c).unwrap();
    fsync_dir(&m.path(""));
    m.client.power_loss(PowerLoss::default()).await.unwrap();
    assert_eq!(read(&b), b"A");
    assert!(!a.exists() && !c.exists());
}

#[tokio::test]
async fn unsynced_truncate_and_extend_are_undone() {
    let mut m = Mounted::new().await;
    let f = m.path("f");
    durable(&f, b"0123456789");
    let w = open_rw(&f);
    w.set_len(4).unwrap();
    w.set_len(6).unwrap();
    assert_eq!(read(&f), b"0123\0\0");
    m.client.power_loss(PowerLoss::default()).await.unwrap();
    assert_eq!(read(&f), b"0123456789");
    w.set_len(20).unwrap();
    assert_eq!(std::fs::metadata(&f).unwrap().len(), 20);
    m.client.power_loss(PowerLoss::default()).await.unwrap();
    assert_eq!(std::fs::metadata(&f).unwrap().len(), 10);
}

#[tokio::test]
async fn the_snapshot_pattern_of_the_reference_node_is_durable() {
    // Write a temporary file, fsync it, rename it over the old one, fsync the directory
    // (target-cluster's `write_durably`): after a power loss the new contents are there.
    let mut m = Mounted::new().await;
    let dir = m.path("");
    durable(&dir.join("snapshot.bin"), b"old");
    let tmp = dir.join("snapshot.bin.tmp");
    let mut w = File::create(&tmp).unwrap();
    w.write_all(b"new").unwrap();
    w.sync_all().unwrap();
    std::fs::rename(&tmp, dir.join("snapshot.bin")).unwrap();
    fsync_dir(&dir);
    m.client.power_loss(PowerLoss::default()).await.unwrap();
    assert_eq!(read(&dir.join("snapshot.bin")), b"new");
    assert!(!tmp.exists());
}
