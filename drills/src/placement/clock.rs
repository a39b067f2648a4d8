//! Clock faults through libfaketime: every node of a scenario with a `clock` fault starts with libfaketime preloaded and a control file of its own
//! (`FAKETIME_TIMESTAMP_FILE`, read at every clock call: `FAKETIME_NO_CACHE=1`), holding
//! `+<offset> x<rate>`. A fault rewrites the file while the node runs, so the change lands at
//! the node's next clock read, for its wall clock and its monotonic clock alike.
//!
//! libfaketime applies a rate from the moment the process started, not from when the rate
//! changed, so a rate change alone would also jump the clock. The offset written with it makes
//! up for that: at `e` seconds since the start, a clock at `offset + e·rate` keeps its reading
//! when it moves to rate `r` with offset `offset + e·(rate − r)`. The start is taken when the
//! node is spawned (libfaketime's own starts within milliseconds of it).
//!
//! [`ClockState`] keeps that arithmetic and [`NodeClock`] a strobe's task; where the control
//! file lives is a [`ClockFile`]: on this machine ([`Clocks`]), or on a node's host, written
//! over SSH (`crate::hosts`).
//!
//! The reference node reads its clock through libc. Go reads it through the vDSO without
//! libc, so this does not reach etcd, and the scenario is refused for etcd.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use target_cluster::typ::NodeId;

use crate::scenario::ClockChange;

/// Where Debian's `faketime` package and a source build put the library.
pub const LIBRARIES: [&str; 3] = [
    "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
    "/usr/lib/faketime/libfaketime.so.1",
    "/usr/local/lib/faketime/libfaketime.so.1",
];

/// libfaketime on this machine, or why a clock fault cannot run here.
pub fn libfaketime() -> Result<PathBuf, String> {
    LIBRARIES
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .ok_or_else(|| {
            "clock faults need libfaketime, which is not installed (Debian: apt-get install faketime)"
                .to_string()
        })
}

/// One node's clock as raftdrill set it: libfaketime's offset and rate, and when the node
/// started (the rate runs from there). Where the control file lives (here, or on a host) is
/// the placement's part; what it must hold is this.
#[derive(Debug, Clone, Copy)]
pub struct ClockState {
    started: Instant,
    offset: f64,
    rate: f64,
}

/// What a clock's control file must hold after a change.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ClockWrite {
    /// This offset and rate from now on.
    Set {
        /// Seconds added to the true clock, with `rate` applied since the start.
        offset: f64,
        /// How fast the clock runs.
        rate: f64,
    },
    /// `by` seconds ahead of `base` and back again, every `every`, until stopped.
    Strobe {
        /// The offset the clock returns to.
        base: f64,
        /// The size of the jump, in seconds.
        by: f64,
        /// How fast the clock runs meanwhile.
        rate: f64,
        /// How long between jumps.
        every: Duration,
    },
}

impl ClockState {
    /// A true clock for a node starting now.
    pub fn starting() -> Self {
        Self {
            started: Instant::now(),
            offset: 0.0,
            rate: 1.0,
        }
    }

    /// Applies `change` (`None`: true again) and says what the control file must hold.
    pub fn change(&mut self, change: Option<ClockChange>) -> ClockWrite {
        match change {
            // A true clock at a rate of 1 is offset 0, whatever the start.
            None => (self.offset, self.rate) = (0.0, 1.0),
            Some(ClockChange::Jump(by)) => self.offset += by,
            Some(ClockChange::Rate(to)) => {
                let e = self.started.elapsed().as_secs_f64();
                self.offset = continuous_offset(self.offset, self.rate, to, e);
                self.rate = to;
            }
            Some(ClockChange::Strobe { offset, every }) => {
                return ClockWrite::Strobe {
                    base: self.offset,
                    by: offset,
                    rate: self.rate,
                    every,
                };
            }
        }
        ClockWrite::Set {
            offset: self.offset,
            rate: self.rate,
        }
    }
}

/// The one write a clock change leaves to make, to await once no lock is held.
pub type Put = std::pin::Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;

/// Puts control lines in place, one at a time: each call replaces the whole file.
pub trait ClockFile: Clone + Send + Sync + 'static {
    /// Replaces the file's content with `line`.
    fn put(&self, line: String) -> Put;
}

/// A node's clock and the strobe running on it, if one is.
pub struct NodeClock<F: ClockFile> {
    file: F,
    state: ClockState,
    strobe: Option<tokio::task::JoinHandle<()>>,
}

impl<F: ClockFile> NodeClock<F> {
    /// A true clock for a node starting now, its control file `file` (already holding a
    /// true clock).
    pub fn starting(file: F) -> Self {
        Self {
            file,
            state: ClockState::starting(),
            strobe: None,
        }
    }

    /// Changes the clock (`None`: true again); a running strobe stops first. Returns the
    /// write to await (a strobe runs as a task of its own).
    pub fn change(&mut self, change: Option<ClockChange>) -> Put {
        self.stop_strobe();
        match self.state.change(change) {
            ClockWrite::Set { offset, rate } => self.file.put(spec(offset, rate)),
            ClockWrite::Strobe {
                base,
                by,
                rate,
                every,
            } => {
                let file = self.file.clone();
                self.strobe = Some(tokio::spawn(strobe(file, base, by, rate, every)));
                Box::pin(std::future::ready(Ok(())))
            }
        }
    }

    /// Ends a strobe running on this clock, if one is.
    pub fn stop_strobe(&mut self) {
        if let Some(s) = self.strobe.take() {
            s.abort();
        }
    }
}

impl<F: ClockFile> Drop for NodeClock<F> {
    fn drop(&mut self) {
        self.stop_strobe();
    }
}

/// The environment that starts a process with libfaketime at `library`, its clock read from
/// the control file `file` at every call.
pub fn preload_env(library: &str, file: &str) -> Vec<(String, String)> {
    vec![
        ("LD_PRELOAD".into(), library.into()),
        ("FAKETIME_TIMESTAMP_FILE".into(), file.into()),
        ("FAKETIME_NO_CACHE".into(), "1".into()),
    ]
}

/// The control line libfaketime reads.
pub fn spec(offset: f64, rate: f64) -> String {
    format!("{offset:+.6} x{rate}\n")
}

/// A control file on this machine.
#[derive(Clone)]
pub struct LocalClockFile(PathBuf);

impl ClockFile for LocalClockFile {
    /// Replaces the file at once (a rename), so a clock read never sees half a line.
    fn put(&self, line: String) -> Put {
        let path = self.0.clone();
        Box::pin(async move {
            let tmp = path.with_extension("tmp");
            std::fs::write(&tmp, line)
                .and_then(|()| std::fs::rename(&tmp, &path))
                .map_err(|e| format!("{}: {e}", path.display()))
        })
    }
}

/// The offset that keeps a clock's reading when its rate moves from `rate` to `to`, `e`
/// seconds after its start.
fn continuous_offset(offset: f64, rate: f64, to: f64, e: f64) -> f64 {
    offset + e * (rate - to)
}

/// The clocks of the local nodes.
pub struct Clocks {
    library: PathBuf,
    dir: PathBuf,
    nodes: BTreeMap<NodeId, NodeClock<LocalClockFile>>,
}

impl Clocks {
    /// Clocks with control files in `dir`, through `library`.
    pub fn new(library: PathBuf, dir: PathBuf) -> Self {
        Self {
            library,
            dir,
            nodes: BTreeMap::new(),
        }
    }

    fn file(&self, id: NodeId) -> PathBuf {
        self.dir.join(format!("node-{id}.faketime"))
    }

    /// The environment node `id` starts with; its clock is true at the start.
    pub fn env(&self, id: NodeId) -> Vec<(String, String)> {
        let file = self.file(id).display().to_string();
        preload_env(&self.library.display().to_string(), &file)
    }

    /// Node `id` is about to start: its clock is true (a running strobe stops).
    pub fn starting(&mut self, id: NodeId) -> std::io::Result<()> {
        let path = self.file(id);
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, spec(0.0, 1.0))?;
        std::fs::rename(&tmp, &path)?;
        self.nodes
            .insert(id, NodeClock::starting(LocalClockFile(path)));
        Ok(())
    }

    /// Node `id`'s clock, to change (see [`NodeClock::change`]); `None` for a node that
    /// never started with one.
    pub fn node(&mut self, id: NodeId) -> Option<&mut NodeClock<LocalClockFile>> {
        self.nodes.get_mut(&id)
    }
}

/// Jumps a clock by `by` and back again every `every` (at `rate`, from `base`), until aborted
/// or a write fails.
async fn strobe<F: ClockFile>(file: F, base: f64, by: f64, rate: f64, every: Duration) {
    let mut ahead = false;
    loop {
        ahead = !ahead;
        let offset = if ahead { base + by } else { base };
        if let Err(e) = file.put(spec(offset, rate)).await {
            tracing::warn!(error = %e, "clock strobe stopped");
            return;
        }
        tokio::time::sleep(every).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rate_change_keeps_the_clocks_reading() {
        // 10 s after the start at rate 1, offset 0: the clock reads 10.
        let o = continuous_offset(0.0, 1.0, 0.1, 10.0);
        assert!((o + 10.0 * 0.1 - 10.0).abs() < 1e-9, "{o}");
        // Then 5 s later (it reads 10.5), back to rate 1.
        let o2 = continuous_offset(o, 0.1, 1.0, 15.0);
        assert!((o2 + 15.0 - 10.5).abs() < 1e-9, "{o2}");
        assert_eq!(spec(-4.5, 0.1), "-4.500000 x0.1\n");
    }

    #[tokio::test]
    async fn the_control_file_follows_each_change_and_a_reset() {
        let dir = tempfile::tempdir().unwrap();
        let mut clocks = Clocks::new("/lib/none.so".into(), dir.path().to_path_buf());
        clocks.starting(2).unwrap();
        let file = dir.path().join("node-2.faketime");
        let read = || std::fs::read_to_string(&file).unwrap();
        assert_eq!(read(), "+0.000000 x1\n");
        let mut change = |c| clocks.node(2).unwrap().change(c);
        change(Some(ClockChange::Jump(-5.0))).await.unwrap();
        assert_eq!(read(), "-5.000000 x1\n");
        change(Some(ClockChange::Rate(0.1))).await.unwrap();
        let text = read();
        assert!(text.ends_with(" x0.1\n") && text.starts_with('-'), "{text}");
        change(None).await.unwrap();
        assert_eq!(read(), "+0.000000 x1\n");
        let env = clocks.env(2);
        assert!(
            env.iter()
                .any(|(k, v)| k == "FAKETIME_TIMESTAMP_FILE" && v.ends_with("node-2.faketime"))
        );
        assert!(clocks.node(9).is_none(), "an unknown node");
    }

    #[tokio::test]
    async fn a_strobe_jumps_and_returns_until_the_next_change() {
        let dir = tempfile::tempdir().unwrap();
        let mut clocks = Clocks::new("/lib/none.so".into(), dir.path().to_path_buf());
        clocks.starting(1).unwrap();
        let file = dir.path().join("node-1.faketime");
        let every = Duration::from_millis(20);
        let strobe = ClockChange::Strobe { offset: 3.0, every };
        clocks.node(1).unwrap().change(Some(strobe)).await.unwrap();
        // Both offsets show up within a bounded wait.
        let mut seen = std::collections::BTreeSet::new();
        let deadline = Instant::now() + Duration::from_secs(10);
        while seen.len() < 2 && Instant::now() < deadline {
            if let Ok(text) = std::fs::read_to_string(&file) {
                seen.insert(text);
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let want = ["+0.000000 x1\n", "+3.000000 x1\n"].map(String::from);
        assert_eq!(seen, want.into_iter().collect(), "{seen:?}");
        // A reset stops it: the file stays true.
        clocks.node(1).unwrap().change(None).await.unwrap();
        tokio::time::sleep(every * 3).await;
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "+0.000000 x1\n");
    }
}
