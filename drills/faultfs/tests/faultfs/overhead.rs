//! What faultfs costs: small writes each followed by fdatasync, natively and through the mount
//! in pass mode, on the same disk. A measurement, not a test: it prints figures and asserts
//! nothing about them.
//!
//! ```sh
//! cargo test -p raftdrill-faultfs --release --test faultfs -- --ignored --nocapture overhead
//! ```
//! `FAULTFS_BENCH_DIR` picks the disk (default: /work where it exists, else the temp dir);
//! `FAULTFS_BENCH_N` the number of writes (default 2000).

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::support::{launch, require_fuse};
use raftdrill_faultfs::FaultFsProcess;

struct Figures {
    write: Vec<Duration>,
    sync: Vec<Duration>,
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn line(what: &str, d: &mut [Duration]) -> String {
    d.sort();
    format!(
        "{what:<22} p50 {:>9.1?}  p99 {:>9.1?}  max {:>9.1?}",
        pct(d, 0.5),
        pct(d, 0.99),
        pct(d, 1.0)
    )
}

/// Appends of 256 bytes to `file`, each followed by fdatasync, recorded into `out`.
fn run(file: &File, ops: std::ops::Range<usize>, out: &mut Figures) {
    let block = [0x5au8; 256];
    for i in ops {
        let t = Instant::now();
        file.write_all_at(&block, (i * block.len()) as u64).unwrap();
        let w = t.elapsed();
        file.sync_data().unwrap();
        out.write.push(w);
        out.sync.push(t.elapsed() - w);
    }
}

/// Native and faultfs runs alternate in rounds of this many operations, so that both see the
/// same disk weather.
const ROUND: usize = 100;

#[tokio::test]
#[ignore = "a measurement; run it by name with --ignored --nocapture"]
async fn overhead_of_write_and_fdatasync() {
    require_fuse();
    let base = std::env::var("FAULTFS_BENCH_DIR").unwrap_or_else(|_| {
        if Path::new("/work").is_dir() {
            "/work".into()
        } else {
            std::env::temp_dir().to_string_lossy().into_owned()
        }
    });
    let n: usize = std::env::var("FAULTFS_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let dir = tempfile::tempdir_in(&base).unwrap();
    let fs = FaultFsProcess::spawn(&launch(dir.path())).await.unwrap();
    let native_file = File::create(dir.path().join("native.dat")).unwrap();
    let fuse_file = File::create(fs.mount().join("faultfs.dat")).unwrap();
    let (mut native, mut fuse) = tokio::task::spawn_blocking(move || {
        let empty = || Figures {
            write: Vec::with_capacity(n),
            sync: Vec::with_capacity(n),
        };
        let (mut native, mut fuse) = (empty(), empty());
        // Warm both paths, then measure.
        run(&native_file, 0..ROUND, &mut empty());
        run(&fuse_file, 0..ROUND, &mut empty());
        for start in (ROUND..ROUND + n).step_by(ROUND) {
            let ops = start..(start + ROUND).min(ROUND + n);
            run(&native_file, ops.clone(), &mut native);
            run(&fuse_file, ops, &mut fuse);
        }
        (native, fuse)
    })
    .await
    .unwrap();
    println!("{n} x (256-byte write + fdatasync) under {base}:");
    println!("{}", line("native write", &mut native.write));
    println!("{}", line("faultfs write", &mut fuse.write));
    println!("{}", line("native fdatasync", &mut native.sync));
    println!("{}", line("faultfs fdatasync", &mut fuse.sync));
    drop(fs);
}
