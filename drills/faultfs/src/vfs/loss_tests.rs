//! What a power loss keeps of the unsynced writes (none, torn, reordered), and the lost fsync
//! of `drop_dirty`, on a plain temporary directory.

use raftdrill_rng::SplitMix64;

use super::tests::{contents, create, durable_file, fs, fsync_dir, on_disk, open, walk};
use super::{SetAttr, SyncFate, Vfs};
use crate::loss::{Keep, PowerLoss, SECTOR};
use crate::stats::PowerLossReport;

const S: usize = SECTOR as usize;

fn fill(byte: u8, len: usize) -> Vec<u8> {
    vec![byte; len]
}

/// Bytes as runs, `byte×count`, for readable failures.
fn runs(bytes: &[u8]) -> String {
    let mut out = Vec::new();
    for chunk in bytes.chunk_by(|a, b| a == b) {
        out.push(format!("{}×{}", chunk[0], chunk.len()));
    }
    out.join(" ")
}

/// A durable file `f` of two sectors of `a`, then three unsynced writes that share no sector:
/// `b` over sector 1 and into sector 2, `c` appended into sector 3, `d` over sectors 4 and 5
/// (past a gap). Returns the power loss's report and what `f` holds after it.
fn three_writes_then(loss: PowerLoss) -> (PowerLossReport, Vec<u8>) {
    let (_dir, v) = fs();
    durable_file(&v, "f", &fill(b'a', 2 * S));
    let fh = open(&v, "f");
    v.write(fh, S as u64, &fill(b'b', 2 * S), false).unwrap();
    v.write(fh, 3 * S as u64, &fill(b'c', 100), false).unwrap();
    v.write(fh, 4 * S as u64, &fill(b'd', 2 * S), false)
        .unwrap();
    v.release(fh);
    let report = v.power_loss(loss);
    (report, contents(&v, "f").unwrap())
}

fn loss(keep: Keep, seed: u64) -> PowerLoss {
    PowerLoss { keep, seed }
}

#[test]
fn none_keeps_only_the_synced_bytes() {
    let (report, got) = three_writes_then(loss(Keep::None, 1));
    assert_eq!(runs(&got), runs(&fill(b'a', 2 * S)));
    assert_eq!(
        (
            report.writes_kept,
            report.writes_torn,
            report.writes_dropped
        ),
        (0, 0, 3)
    );
    assert_eq!(
        (report.bytes_kept, report.bytes_dropped),
        (0, 4 * S as u64 + 100)
    );
}

#[test]
fn torn_keeps_the_writes_before_one_cut_at_a_sector_boundary() {
    // Seed 2 tears the third write after its first sector: the first two are kept whole.
    let (report, got) = three_writes_then(loss(Keep::Torn, 2));
    let want = [
        fill(b'a', S),
        fill(b'b', 2 * S),
        fill(b'c', 100),
        fill(0, S - 100),
        fill(b'd', S),
    ]
    .concat();
    assert_eq!(runs(&got), runs(&want));
    assert_eq!(
        (
            report.writes_kept,
            report.writes_torn,
            report.writes_dropped
        ),
        (2, 1, 0)
    );
    assert_eq!(
        (report.bytes_kept, report.bytes_dropped),
        (3 * S as u64 + 100, S as u64)
    );
    assert_eq!(
        (report.keep, report.seed, report.files_reverted),
        (Keep::Torn, 2, 1)
    );
    // Seed 0 tears the first write instead, at 1024: nothing after it survives.
    let (report, got) = three_writes_then(loss(Keep::Torn, 0));
    assert_eq!(runs(&got), runs(&[fill(b'a', S), fill(b'b', S)].concat()));
    assert_eq!(
        (
            report.writes_kept,
            report.writes_torn,
            report.writes_dropped
        ),
        (0, 1, 2)
    );
}

#[test]
fn reordered_keeps_a_subset_and_a_later_append_leaves_zeros_where_an_earlier_one_was() {
    // Seed 1 keeps the third write only: the file grows over the lost ones, which read zeros.
    let (report, got) = three_writes_then(loss(Keep::Reordered, 1));
    let want = [fill(b'a', 2 * S), fill(0, 2 * S), fill(b'd', 2 * S)].concat();
    assert_eq!(runs(&got), runs(&want));
    assert_eq!(
        (
            report.writes_kept,
            report.writes_torn,
            report.writes_dropped
        ),
        (1, 0, 2)
    );
    assert_eq!(report.bytes_kept, 2 * S as u64);
    // Seed 5 keeps the first and the third: the second's sector reads zeros.
    let (report, got) = three_writes_then(loss(Keep::Reordered, 5));
    let want = [
        fill(b'a', S),
        fill(b'b', 2 * S),
        fill(0, S),
        fill(b'd', 2 * S),
    ]
    .concat();
    assert_eq!(runs(&got), runs(&want));
    assert_eq!((report.writes_kept, report.writes_dropped), (2, 1));
}

#[test]
fn a_kept_write_of_a_file_whose_create_is_undone_goes_with_it() {
    let (dir, v) = fs();
    let fh = create(&v, "new");
    v.write(fh, 0, b"data", false).unwrap();
    v.release(fh);
    let report = v.power_loss(loss(Keep::Reordered, 0));
    assert_eq!(report.changes_undone, 1);
    assert_eq!((report.writes_kept, report.writes_dropped), (0, 1));
    assert!(walk(&v, "new").is_err());
    assert!(on_disk(dir.path(), "new").is_none());
}

/// One unsynced change, as the reference model applies it.
#[derive(Clone)]
enum Op {
    Write(u64, Vec<u8>),
    SetLen(u64),
}

impl std::fmt::Debug for Op {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Op::Write(at, data) => write!(f, "write {}×{} at {at}", data[0], data.len()),
            Op::SetLen(len) => write!(f, "set-len {len}"),
        }
    }
}

fn apply(file: &mut Vec<u8>, op: &Op, head: Option<usize>) {
    match op {
        Op::Write(at, data) => {
            let data = &data[..head.unwrap_or(data.len())];
            let (at, end) = (*at as usize, *at as usize + data.len());
            if file.len() < end {
                file.resize(end, 0);
            }
            file[at..end].copy_from_slice(data);
        }
        Op::SetLen(len) => file.resize(*len as usize, 0),
    }
}

fn run(v: &Vfs, fh: u64, op: &Op) {
    match op {
        Op::Write(at, data) => {
            v.write(fh, *at, data, false).unwrap();
        }
        Op::SetLen(len) => {
            let attr = SetAttr {
                size: Some(*len),
                ..SetAttr::default()
            };
            v.setattr(walk(v, "f").unwrap(), Some(fh), attr).unwrap();
        }
    }
}

/// Random changes; write `i` fills its bytes with `first + i`, so every byte says who wrote it.
fn random_ops(rng: &mut SplitMix64, n: usize, first: u8, resizes: bool) -> Vec<Op> {
    (0..n)
        .map(|i| {
            if resizes && rng.chance(0.2) {
                Op::SetLen(rng.below(4 * SECTOR))
            } else {
                let len = 1 + rng.below(3 * SECTOR) as usize;
                Op::Write(rng.below(4 * SECTOR), vec![first + i as u8; len])
            }
        })
        .collect()
}

/// Byte `i` of `file`, zero past its end (a hole).
fn byte(file: &[u8], i: usize) -> u8 {
    file.get(i).copied().unwrap_or(0)
}

/// The states a torn power loss may leave: a prefix of whole changes, or one with the next
/// write cut at one of its inner sector boundaries.
fn torn_states(durable: &[u8], ops: &[Op]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut state = durable.to_vec();
    for op in ops {
        out.push(state.clone());
        if let Op::Write(at, data) = op {
            let end = *at as usize + data.len();
            let first = (*at as usize / S + 1) * S;
            for cut in (first..end).step_by(S) {
                let mut torn = state.clone();
                apply(&mut torn, op, Some(cut - *at as usize));
                out.push(torn);
            }
        }
        apply(&mut state, op, None);
    }
    out.push(state);
    out
}

/// Checks that `got` is a state a sector-writing disk could be left in: every sector as of
/// the durable state or right after one of the changes, every byte durable or written there.
fn assert_disk_could_hold(got: &[u8], durable: &[u8], ops: &[Op], what: &str) {
    let mut versions = vec![durable.to_vec()];
    for op in ops {
        let mut next = versions.last().unwrap().clone();
        apply(&mut next, op, None);
        versions.push(next);
    }
    let longest = versions.iter().map(Vec::len).max().unwrap();
    assert!(got.len() <= longest, "{what}: longer than any state");
    for (s, sector) in got.chunks(S).enumerate() {
        let from = s * S;
        let seen = versions
            .iter()
            .any(|v| (0..sector.len()).all(|i| byte(v, from + i) == sector[i]));
        assert!(
            seen,
            "{what}: sector {s} holds what no state held: {}",
            runs(sector)
        );
    }
    for (i, b) in got.iter().enumerate() {
        // Written there, or zero in a range a truncate cut and something extended again.
        let written = ops.iter().any(|op| match op {
            Op::Write(at, data) => {
                (*at as usize..*at as usize + data.len()).contains(&i) && data[0] == *b
            }
            Op::SetLen(len) => *len as usize <= i && *b == 0,
        });
        assert!(
            written || byte(durable, i) == *b,
            "{what}: byte {i} = {b} was never there"
        );
    }
    if ops.iter().all(|op| matches!(op, Op::Write(..))) {
        assert!(got.len() >= durable.len(), "{what}: synced bytes cut");
    }
}

/// One file with synced and then unsynced random changes, lost with `keep` and `seed`.
/// Returns the durable bytes, the unsynced changes, what the file holds after, the report.
fn random_file(keep: Keep, seed: u64) -> (Vec<u8>, Vec<Op>, Vec<u8>, PowerLossReport) {
    let mut rng = SplitMix64::new(seed);
    let (_dir, v) = fs();
    let fh = create(&v, "f");
    fsync_dir(&v, "/");
    let n = 1 + rng.below(3) as usize;
    let synced = random_ops(&mut rng, n, 200, false);
    let mut durable = Vec::new();
    for op in &synced {
        run(&v, fh, op);
        apply(&mut durable, op, None);
    }
    v.fsync(fh, false).unwrap();
    let (n, resizes) = (1 + rng.below(7) as usize, rng.chance(0.5));
    let ops = random_ops(&mut rng, n, 1, resizes);
    for op in &ops {
        run(&v, fh, op);
    }
    v.release(fh);
    let report = v.power_loss(loss(keep, seed));
    (durable, ops, contents(&v, "f").unwrap(), report)
}

#[test]
fn every_choice_leaves_a_state_a_disk_could_be_left_in() {
    let (mut tore, mut reordered) = (0, 0);
    for seed in 0..300 {
        for keep in [Keep::None, Keep::Torn, Keep::Reordered] {
            let (durable, ops, got, report) = random_file(keep, seed);
            let what = format!("{keep:?} seed {seed}: {ops:?} over {}", runs(&durable));
            assert_disk_could_hold(&got, &durable, &ops, &what);
            let writes = ops.iter().filter(|op| matches!(op, Op::Write(..))).count();
            let counted = report.writes_kept + report.writes_torn + report.writes_dropped;
            assert_eq!(counted, writes as u64, "{what}: {report:?}");
            let prefixes = torn_states(&durable, &ops);
            match keep {
                Keep::None => assert_eq!(runs(&got), runs(&durable), "{what}"),
                Keep::Torn => {
                    assert!(prefixes.contains(&got), "{what}: not a torn prefix");
                    tore += report.writes_torn;
                }
                Keep::Reordered => reordered += u64::from(!prefixes.contains(&got)),
            }
        }
    }
    assert!(tore > 100, "torn tears: {tore}");
    assert!(
        reordered > 30,
        "reordered keeps more than prefixes: {reordered}"
    );
}

#[test]
fn the_same_seed_keeps_the_same_and_the_seed_matters() {
    for keep in [Keep::Torn, Keep::Reordered] {
        let mut outcomes = std::collections::BTreeSet::new();
        for seed in 0..20 {
            let (report, got) = three_writes_then(loss(keep, seed));
            assert_eq!((report.keep, report.seed), (keep, seed), "recorded");
            let again = three_writes_then(loss(keep, seed));
            assert_eq!(
                (&report, &got),
                (&again.0, &again.1),
                "{keep:?} seed {seed}"
            );
            outcomes.insert(got);
        }
        // Torn: two writes can tear, at one boundary each; reordered: any of 8 subsets.
        assert!(
            outcomes.len() >= 2,
            "{keep:?}: only {} outcomes",
            outcomes.len()
        );
    }
}

#[test]
fn what_a_file_keeps_does_not_depend_on_other_files() {
    let kept_of_f = |other_dirty: bool, seed: u64| {
        let (_dir, v) = fs();
        durable_file(&v, "f", &fill(b'a', S));
        durable_file(&v, "g", &fill(b'a', S));
        fsync_dir(&v, "/");
        if other_dirty {
            let fh = open(&v, "g");
            v.write(fh, 0, &fill(b'x', 3 * S), false).unwrap();
            v.release(fh);
        }
        let fh = open(&v, "f");
        for (i, byte) in [b'b', b'c', b'd', b'e'].into_iter().enumerate() {
            v.write(fh, (i * S + 100) as u64, &fill(byte, S), false)
                .unwrap();
        }
        v.release(fh);
        v.power_loss(loss(Keep::Reordered, seed));
        contents(&v, "f").unwrap()
    };
    // Each run has a map of files of its own, so `g` comes before `f` in some of them.
    for seed in 0..16 {
        let (alone, beside) = (kept_of_f(false, seed), kept_of_f(true, seed));
        assert_eq!(runs(&beside), runs(&alone), "seed {seed}");
    }
}

#[test]
fn a_failed_fsync_with_drop_dirty_loses_the_writes_and_the_next_one_succeeds() {
    let (dir, v) = fs();
    durable_file(&v, "f", b"old");
    let fh = open(&v, "f");
    v.write(fh, 0, b"new data", false).unwrap();
    assert_eq!(
        v.fsync_dropping_dirty(fh, false).unwrap(),
        SyncFate::Dropped(8)
    );
    assert_eq!(contents(&v, "f").unwrap(), b"old", "the dirty data is gone");
    v.release(fh);
    // Closed and reopened, the file still remembers the reported error.
    let fh = open(&v, "f");
    assert_eq!(v.fsync_dropping_dirty(fh, true).unwrap(), SyncFate::Synced);
    assert_eq!(contents(&v, "f").unwrap(), b"old");
    // The error is behind it: the next failing fsync drops again, what was written since.
    v.write(fh, 3, b"+more", false).unwrap();
    assert_eq!(
        v.fsync_dropping_dirty(fh, false).unwrap(),
        SyncFate::Dropped(5)
    );
    // What a failed fsync dropped is gone: not even a power loss that keeps writes brings it
    // back.
    v.power_loss(loss(Keep::Reordered, 1));
    assert_eq!(contents(&v, "f").unwrap(), b"old");
    assert_eq!(on_disk(dir.path(), "f").unwrap(), b"old");
    // A power loss forgets the reported error too, though the file stayed open across it.
    v.write(fh, 0, b"x", false).unwrap();
    assert_eq!(
        v.fsync_dropping_dirty(fh, false).unwrap(),
        SyncFate::Dropped(1)
    );
    v.release(fh);
}

#[test]
fn the_fsync_after_a_reported_failure_persists_what_was_written_since() {
    let (_dir, v) = fs();
    durable_file(&v, "f", b"old");
    let fh = open(&v, "f");
    v.write(fh, 0, b"lost", false).unwrap();
    assert!(matches!(
        v.fsync_dropping_dirty(fh, false),
        Ok(SyncFate::Dropped(_))
    ));
    v.write(fh, 3, b"!", false).unwrap();
    assert_eq!(v.fsync_dropping_dirty(fh, false).unwrap(), SyncFate::Synced);
    v.release(fh);
    v.power_loss(PowerLoss::default());
    assert_eq!(contents(&v, "f").unwrap(), b"old!");
}
