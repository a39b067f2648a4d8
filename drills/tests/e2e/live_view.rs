//! The live view as a user sees it: `raftdrill run` in a real pseudo-terminal, read back
//! through a vt100 parser. While the drill runs the panels show live numbers; `q` stops the
//! drill (verdict `aborted`), no node is left, and the terminal is restored.

use std::io::{Read, Write};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use portable_pty::{Child, CommandBuilder, PtySize, native_pty_system};

use crate::harness::{eventually, exe, none_left_by, serial};

const ROWS: u16 = 40;
const COLS: u16 = 120;
/// Leave the alternate screen / enter it / show the cursor.
const LEAVE_ALT: &[u8] = b"\x1b[?1049l";
const ENTER_ALT: &[u8] = b"\x1b[?1049h";
const SHOW_CURSOR: &[u8] = b"\x1b[?25h";

/// What the pty has shown: the parsed screen and every raw byte.
struct Output {
    parser: vt100::Parser,
    raw: Vec<u8>,
}

/// Kills raftdrill if the test ends early (its nodes die with it: parent-death signal).
struct Kill(Box<dyn Child + Send + Sync>);

impl Drop for Kill {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
        }
    }
}

/// Pids whose parent is `pid`.
fn children_of(pid: u32) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_string_lossy().parse::<u32>().ok())
        .filter(|child| {
            std::fs::read_to_string(format!("/proc/{child}/stat"))
                .ok()
                .and_then(|stat| {
                    let rest = stat.rsplit_once(')')?.1.to_string();
                    rest.split_whitespace().nth(1)?.parse::<u32>().ok()
                })
                == Some(pid)
        })
        .collect()
}

/// Whether `pid` is a live (not zombie) process.
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rsplit_once(')')
            .and_then(|(_, r)| r.trim_start().chars().next())
            != Some('Z')
    })
}

/// The first whole number after `label ` on the screen.
fn number_after(screen: &str, label: &str) -> Option<f64> {
    let at = screen.find(label)? + label.len();
    let digits: String = screen[at..]
        .chars()
        .skip_while(|c| *c == ' ')
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    digits.parse().ok()
}

fn nonzero(n: u16) -> std::num::NonZeroU16 {
    std::num::NonZeroU16::new(n).expect("a size")
}

/// The last position of `needle` in `hay`.
fn rfind(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).rposition(|w| w == needle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_view_shows_the_drill_and_q_stops_it() {
    let _serial = serial().await;
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");

    let pty = native_pty_system()
        .openpty(PtySize {
            rows: ROWS,
            cols: COLS,
            pixel_width: 0,
            pixel_height: 0,
        })
        .unwrap();
    let mut cmd = CommandBuilder::new(exe());
    // Far longer than the test waits: only `q` can end it in time.
    cmd.args(["run", "leader-kill", "--duration", "120s", "--out"]);
    cmd.arg(&out);
    cmd.cwd(tmp.path());
    cmd.env("TERM", "xterm-256color");
    let child = pty.slave.spawn_command(cmd).unwrap();
    drop(pty.slave);
    let mut child = Kill(child);
    let pid = child.0.process_id().expect("a pid");

    let output = Arc::new(Mutex::new(Output {
        parser: vt100::Parser::new(nonzero(ROWS), nonzero(COLS), 0),
        raw: Vec::new(),
    }));
    let mut reader = pty.master.try_clone_reader().unwrap();
    let sink = output.clone();
    // Reads until the pty closes (EOF or EIO once raftdrill and its children are gone).
    let reader_thread = std::thread::spawn(move || {
        let mut buf = [0u8; 8192];
        while let Ok(n) = reader.read(&mut buf) {
            if n == 0 {
                break;
            }
            let mut o = sink.lock().unwrap();
            o.parser.process(&buf[..n]);
            o.raw.extend_from_slice(&buf[..n]);
        }
    });
    let mut writer = pty.master.take_writer().unwrap();

    // While the drill runs: every panel, with live numbers. Node pids are collected meanwhile.
    let nodes = Arc::new(Mutex::new(Vec::<u32>::new()));
    let screen = {
        let (output, nodes) = (output.clone(), nodes.clone());
        eventually(
            Duration::from_secs(30),
            "the live view with live numbers",
            move || {
                let (output, nodes) = (output.clone(), nodes.clone());
                async move {
                    let mut seen = nodes.lock().unwrap();
                    for c in children_of(pid) {
                        if !seen.contains(&c) {
                            seen.push(c);
                        }
                    }
                    let screen = output.lock().unwrap().parser.screen().contents();
                    let rows_ok = (1..=3).all(|id| {
                        screen.lines().any(|l| {
                            let mut cells = l.split_whitespace();
                            cells.next() == Some(&id.to_string())
                                && cells.next().is_some_and(|s| s == "up" || s == "killed")
                        })
                    });
                    let ready = screen.contains("leader-kill")
                        && number_after(&screen, "TPS").is_some_and(|tps| tps > 0.0)
                        && screen.contains("thresholds")
                        && screen.contains("worst 1s")
                        && screen.contains("p99 ·")
                        && screen.contains("cluster · leader")
                        && screen.contains("faults")
                        && screen.contains("events")
                        && rows_ok;
                    ready.then_some(screen)
                }
            },
        )
        .await
    };
    assert!(screen.contains("success"), "{screen}");
    assert!(!nodes.lock().unwrap().is_empty(), "node processes seen");

    writer.write_all(b"q").unwrap();
    writer.flush().unwrap();
    let status = eventually(Duration::from_secs(60), "raftdrill to exit after q", || {
        let status = child.0.try_wait().unwrap();
        async move { status }
    })
    .await;

    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    let verdict = summary["verdict"].as_str().unwrap().to_string();
    assert_eq!(
        u64::from(status.exit_code()),
        summary["exit_code"].as_u64().unwrap(),
        "exit code is the verdict's ({verdict})"
    );
    // A drill that ignored q would run its 120 s and end with pass, warn or fail.
    assert_eq!(verdict, "aborted", "q stopped the drill");
    assert_eq!(status.exit_code(), 4);
    let window = summary["totals"]["window_s"].as_f64().unwrap();
    assert!(window < 120.0, "the judged window was cut short: {window}");

    let nodes = nodes.lock().unwrap().clone();
    none_left_by(pid).await;
    eventually(
        Duration::from_secs(10),
        "every node process to exit",
        || {
            let nodes = nodes.clone();
            async move { nodes.iter().all(|p| !alive(*p)).then_some(()) }
        },
    )
    .await;

    drop(writer);
    drop(pty.master);
    let _ = reader_thread.join();
    let raw = output.lock().unwrap().raw.clone();
    let entered = rfind(&raw, ENTER_ALT).expect("the view entered the alternate screen");
    let left = rfind(&raw, LEAVE_ALT).expect("the view left the alternate screen");
    let shown = rfind(&raw, SHOW_CURSOR).expect("the cursor was shown again");
    assert!(
        left > entered,
        "left the alternate screen after the last enter"
    );
    assert!(shown > entered, "showed the cursor after the last enter");
}
