//! The closing lines printed on the terminal at the end of a run (`raftdrill run`, `load`) and
//! of a repeat: the figures, the thresholds, recovery per fault, the lost-write check and the
//! verdict. A run's come from its folder's `summary.json`, read as `report.md` reads it, and
//! share its threshold cells and figures (with `-` for a figure that is missing).

use std::fmt::Write as _;
use std::path::Path;

use super::doc::RunDoc;
use super::markdown::{figure_or, threshold_cells};
use super::read_json;
use super::repeat::RepeatSummary;

/// The closing lines of the run whose folder is `dir`.
pub fn run_text(dir: &Path) -> String {
    match read_json::<RunDoc>(&dir.join("summary.json")) {
        Ok(s) => run_lines(&s, dir),
        Err(e) => format!(
            "\nresults: {} (the summary could not be read: {e})\n",
            dir.display()
        ),
    }
}

fn run_lines(s: &RunDoc, dir: &Path) -> String {
    let mut o = String::new();
    let t = &s.totals;
    let l = &s.latency_ms.overall;
    let _ = writeln!(
        o,
        "\n{} — {} ops, {:.1} ops/s, {} errors",
        s.scenario, t.ops, t.tps, t.errors
    );
    let _ = writeln!(
        o,
        "latency ms: p50 {:.2}  p90 {:.2}  p99 {:.2}  p99.9 {:.2}  max {:.2}",
        l.p50, l.p90, l.p99, l.p999, l.max
    );
    let _ = writeln!(
        o,
        "\n  {:<14} {:>10} {:>10} {:>10}  status",
        "threshold", "warn", "break", "observed"
    );
    for th in &s.thresholds {
        let [metric, warn, brk, observed, mark] = threshold_cells(th, "-");
        let _ = writeln!(
            o,
            "  {metric:<14} {warn:>10} {brk:>10} {observed:>10}  {mark}"
        );
    }
    faults(&mut o, s);
    lost_writes(&mut o, s);
    for r in &s.reasons {
        let _ = writeln!(o, "  - {r}");
    }
    let _ = writeln!(
        o,
        "\nverdict: {} (exit {})  results: {}",
        s.verdict,
        s.exit_code,
        dir.display()
    );
    o
}

/// One line per fault: its mark, when, what, and its recovery figures.
fn faults(o: &mut String, s: &RunDoc) {
    if s.faults.is_empty() {
        return;
    }
    let _ = writeln!(o, "\n  faults:");
    for (n, f) in s.faults.iter().enumerate() {
        let r = s.recovery.iter().find(|r| r.fault == n);
        let fig = |v: Option<f64>| figure_or(v, "s", "-");
        let nodes: Vec<String> = f.resolved.iter().map(u64::to_string).collect();
        let never = r
            .filter(|r| !r.unrecovered.is_empty())
            .map(|r| format!(" (never recovered: {})", r.unrecovered.join(", ")))
            .unwrap_or_default();
        let _ = writeln!(
            o,
            "  {} t={:.1}s {} {} [{}]: new leader {}, first success {}, 90% tps {}, back after undo {}{never}{}{}",
            r.map_or("✗", |r| r.status.mark()),
            f.at_s,
            f.action,
            f.target,
            nodes.join(","),
            fig(r.and_then(|r| r.leader_elected_after_s)),
            fig(r.and_then(|r| r.first_success_after_s)),
            fig(r.and_then(|r| r.tps_90pct_after_s)),
            r.map_or_else(|| "-".into(), super::doc::RecoveryDoc::after_undo),
            f.error
                .as_deref()
                .map(|e| format!(" (could not fire: {e})"))
                .unwrap_or_default(),
            f.heal_error
                .as_deref()
                .map(|e| format!(" (heal failed: {e})"))
                .unwrap_or_default()
        );
        for c in &f.corruption {
            let _ = writeln!(o, "      {}", c.sentence());
        }
        if let Some(l) = r.and_then(|r| r.limp.as_ref()) {
            let _ = writeln!(o, "      {}", l.sentence(&nodes.join(",")));
        }
    }
}

/// The lost-write check's line.
fn lost_writes(o: &mut String, s: &RunDoc) {
    let Some(lw) = &s.checks.lost_writes else {
        let _ = writeln!(o, "\n  lost writes: not checked");
        return;
    };
    let mark = match lw.status.as_deref() {
        Some("ok") => "✓",
        Some("lost") => "✗",
        _ => "? unknown:",
    };
    let _ = writeln!(
        o,
        "\n  lost writes: {mark} {} (acked {}, keys {}, verified {}, unreadable {})",
        lw.lost, lw.acked, lw.keys_checked, lw.verified, lw.unreadable
    );
}

/// The closing lines of a repeat: the worst verdict and where the folder is.
pub fn repeat_text(s: &RepeatSummary, root: &Path) -> String {
    let get = |name: &str| {
        s.figures
            .iter()
            .find(|f| f.name == name)
            .and_then(|f| f.value)
            .map_or("–".to_string(), |v| {
                format!("{:.2} (min {:.2}, max {:.2})", v.median, v.min, v.max)
            })
    };
    format!(
        "\n{} × {}: tps {}, p99 ms {}\nworst verdict: {} (exit {})  results: {}\n",
        s.scenario,
        s.runs.len(),
        get("tps"),
        get("p99_ms"),
        s.verdict,
        s.exit_code,
        root.display()
    )
}
