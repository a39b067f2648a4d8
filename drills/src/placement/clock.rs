//! Clock faults for local nodes, through libfaketime: every node of a scenario with a `clock`
//! fault starts with libfaketime preloaded and a control file of its own
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
//! The reference node reads its clock through libc. Go reads it through the vDSO without
//! libc, so this does not reach etcd, and the scenario is refused for etcd.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use target_cluster::typ::NodeId;

use crate::scenario::ClockChange;

/// Where Debian's `faketime` package and a source build put the library.
const LIBRARIES: [&str; 3] = [
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

/// One node's clock.
struct NodeClock {
    file: PathBuf,
    started: Instant,
    offset: f64,
    rate: f64,
    strobe: Option<tokio::task::JoinHandle<()>>,
}

impl NodeClock {
    /// Ends a strobe running on this clock, if one is.
    fn stop_strobe(&mut self) {
        if let Some(s) = self.strobe.take() {
            s.abort();
        }
    }

    fn write(&self) -> std::io::Result<()> {
        write_spec(&self.file, self.offset, self.rate)
    }
}

/// The control line libfaketime reads.
fn spec(offset: f64, rate: f64) -> String {
    format!("{offset:+.6} x{rate}\n")
}

/// Replaces the control file at once (a rename), so a clock read never sees half a line.
fn write_spec(file: &Path, offset: f64, rate: f64) -> std::io::Result<()> {
    let tmp = file.with_extension("tmp");
    std::fs::write(&tmp, spec(offset, rate))?;
    std::fs::rename(&tmp, file)
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
    nodes: BTreeMap<NodeId, NodeClock>,
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
        vec![
            ("LD_PRELOAD".into(), self.library.display().to_string()),
            (
                "FAKETIME_TIMESTAMP_FILE".into(),
                self.file(id).display().to_string(),
            ),
            ("FAKETIME_NO_CACHE".into(), "1".into()),
        ]
    }

    /// Node `id` is about to start: its clock is true (a running strobe stops).
    pub fn starting(&mut self, id: NodeId) -> std::io::Result<()> {
        let clock = NodeClock {
            file: self.file(id),
            started: Instant::now(),
            offset: 0.0,
            rate: 1.0,
            strobe: None,
        };
        clock.write()?;
        if let Some(mut old) = self.nodes.insert(id, clock) {
            old.stop_strobe();
        }
        Ok(())
    }

    /// Changes node `id`'s clock.
    pub fn change(&mut self, id: NodeId, change: ClockChange) -> std::io::Result<()> {
        let c = self.nodes.get_mut(&id).ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::NotFound, "the node has no clock file")
        })?;
        c.stop_strobe();
        match change {
            ClockChange::Jump(by) => c.offset += by,
            ClockChange::Rate(to) => {
                let e = c.started.elapsed().as_secs_f64();
                c.offset = continuous_offset(c.offset, c.rate, to, e);
                c.rate = to;
            }
            ClockChange::Strobe { offset, every } => {
                let (file, base, rate) = (c.file.clone(), c.offset, c.rate);
                c.strobe = Some(tokio::spawn(strobe(file, base, offset, rate, every)));
                return Ok(());
            }
        }
        c.write()
    }

    /// Node `id`'s clock is true again.
    pub fn reset(&mut self, id: NodeId) -> std::io::Result<()> {
        let Some(c) = self.nodes.get_mut(&id) else {
            return Ok(());
        };
        c.stop_strobe();
        // A true clock at a rate of 1 is offset 0, whatever the start.
        c.offset = 0.0;
        c.rate = 1.0;
        c.write()
    }
}

impl Drop for Clocks {
    fn drop(&mut self) {
        self.nodes.values_mut().for_each(NodeClock::stop_strobe);
    }
}

/// Jumps a clock by `by` and back again every `every`, until aborted.
async fn strobe(file: PathBuf, base: f64, by: f64, rate: f64, every: Duration) {
    let mut ahead = false;
    loop {
        ahead = !ahead;
        let offset = if ahead { base + by } else { base };
        if let Err(e) = write_spec(&file, offset, rate) {
            tracing::warn!(error = %e, file = %file.display(), "clock strobe stopped");
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
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "+0.000000 x1\n");
        clocks.change(2, ClockChange::Jump(-5.0)).unwrap();
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "-5.000000 x1\n");
        clocks.change(2, ClockChange::Rate(0.1)).unwrap();
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(text.ends_with(" x0.1\n") && text.starts_with('-'), "{text}");
        clocks.reset(2).unwrap();
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "+0.000000 x1\n");
        let env = clocks.env(2);
        assert!(
            env.iter()
                .any(|(k, v)| k == "FAKETIME_TIMESTAMP_FILE" && v.ends_with("node-2.faketime"))
        );
        assert!(
            clocks.change(9, ClockChange::Jump(1.0)).is_err(),
            "an unknown node"
        );
    }
}
