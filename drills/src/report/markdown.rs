//! `report.md`: summary.json for a person, with ✓ ⚠ ✗ marks and the timeline picture.

use std::fmt::Write as _;

use loadgen::thresholds::ThresholdResult;

use super::doc::RunDoc;

/// `1.23s`, or `–` for a figure that was not measured.
pub fn opt(v: Option<f64>, unit: &str) -> String {
    figure_or(v, unit, "–")
}

/// `1.23s`, or `none` for a figure that was not measured.
pub fn figure_or(v: Option<f64>, unit: &str, none: &str) -> String {
    v.map_or_else(|| none.into(), |v| format!("{v:.2}{unit}"))
}

/// ✓ ⚠ ✗ for a verdict.
pub fn verdict_mark(verdict: &str) -> &'static str {
    match verdict {
        "pass" => "✓",
        "warn" => "⚠",
        "inconclusive" => "?",
        _ => "✗",
    }
}

/// `open loop, 300 ops/s`.
pub fn load_text(s: &RunDoc) -> String {
    match (s.load.rate, s.load.users) {
        (Some(r), _) => format!("open loop, {r} ops/s"),
        (_, Some(u)) => format!("closed loop, {u} users"),
        _ => "-".into(),
    }
}

/// `3 nodes of reference (disk store, fsync always)`, or the endpoints of a load-only run.
pub fn cluster_text(s: &RunDoc) -> String {
    match (&s.cluster, &s.endpoints) {
        (_, Some(e)) => format!("endpoints {}", e.join(", ")),
        (Some(c), None) => match (&c.store, &c.fsync) {
            (Some(store), Some(fsync)) => format!(
                "{} nodes of {} ({store} store, fsync {fsync})",
                c.nodes, c.target
            ),
            _ => format!("{} nodes of {}", c.nodes, c.target),
        },
        (None, None) => "-".into(),
    }
}

/// The status of one fault: its recovery mark, or why it could not fire.
pub fn fault_status(s: &RunDoc, n: usize) -> String {
    let f = &s.faults[n];
    match (s.recovery.iter().find(|r| r.fault == n), &f.error) {
        (_, Some(e)) => format!("? did not fire: {e}"),
        (_, None) if f.heal_error.is_some() => {
            format!("✗ heal failed: {}", f.heal_error.as_deref().unwrap_or(""))
        }
        (Some(r), None) => r.status.mark().to_string(),
        (None, None) => "–".into(),
    }
}

/// A recovery figure: its time, "never" when it applied and never came, "–" when it does not
/// apply.
pub fn figure(r: Option<&super::doc::RecoveryDoc>, name: &str) -> String {
    match r {
        Some(r) if r.unrecovered.iter().any(|u| u == name) => "never".into(),
        Some(r) => opt(
            r.figures()
                .iter()
                .find(|(n, _)| *n == name)
                .and_then(|(_, v)| *v),
            "s",
        ),
        None => "–".into(),
    }
}

/// The consistency check's line, if the summary carries one.
pub fn linearizability_text(s: &RunDoc) -> Option<String> {
    let l = s.checks.linearizability.as_ref()?;
    let mut text = format!("linearizability: {}", l.status);
    if let (Some(k), Some(o)) = (l.keys, l.ops) {
        let _ = write!(text, " ({k} keys, {o} operations)");
    }
    if let Some(r) = &l.reason {
        let _ = write!(text, ": {r}");
    }
    Some(text)
}

/// A threshold's cells: metric, warn, break, observed (`none` where a level or a figure is
/// missing) and its mark, as every page and the terminal show them.
pub fn threshold_cells(t: &ThresholdResult, none: &str) -> [String; 5] {
    [
        t.metric.as_str().to_string(),
        figure_or(t.warn, "", none),
        figure_or(t.brk, "", none),
        figure_or(t.observed, "", none),
        t.status.mark().to_string(),
    ]
}

/// `report.md`.
pub fn render(s: &RunDoc, has_timeline_svg: bool) -> String {
    let mut o = String::new();
    head(&mut o, s, has_timeline_svg);
    let _ = writeln!(
        o,
        "## Thresholds\n\n| metric | warn | break | observed | status |\n|---|---|---|---|---|"
    );
    for t in &s.thresholds {
        let [metric, warn, brk, observed, mark] = threshold_cells(t, "–");
        let _ = writeln!(o, "| {metric} | {warn} | {brk} | {observed} | {mark} |");
    }
    load(&mut o, s);
    faults(&mut o, s);
    lost_writes(&mut o, s);
    checks(&mut o, s);
    o
}

/// The title, the verdict and its reasons, and what ran.
fn head(o: &mut String, s: &RunDoc, has_timeline_svg: bool) {
    let _ = writeln!(o, "# raftdrill: {}\n\n{}\n", s.scenario, s.description);
    let _ = writeln!(
        o,
        "**Verdict: {} {}** (exit code {})\n",
        verdict_mark(&s.verdict),
        s.verdict,
        s.exit_code
    );
    for r in &s.reasons {
        let _ = writeln!(o, "- {r}");
    }
    let _ = writeln!(
        o,
        "\nStarted {}; {:.0} s ({:.0} s warmup); {}; workload {}, {}{}.\n",
        s.started_at,
        s.duration_s,
        s.warmup_s,
        cluster_text(s),
        s.load.workload,
        load_text(s),
        s.seed.map(|n| format!("; seed {n}")).unwrap_or_default()
    );
    if has_timeline_svg {
        let _ = writeln!(o, "![timeline](timeline.svg)\n");
    }
}

/// Totals, latency, errors by class, elections, and the disk and log commit times.
fn load(o: &mut String, s: &RunDoc) {
    let tot = &s.totals;
    let l = &s.latency_ms.overall;
    let _ = writeln!(
        o,
        "\n## Load\n\n{} operations, {} ok, {} errors, {:.1} ops/s; late {}, dropped {}.\n\nLatency (ms, from the intended start): p50 {:.2}, p90 {:.2}, p99 {:.2}, p99.9 {:.2}, max {:.2}.",
        tot.ops,
        tot.ok,
        tot.errors,
        tot.tps,
        s.load.late,
        s.load.dropped,
        l.p50,
        l.p90,
        l.p99,
        l.p999,
        l.max
    );
    if let Some(c) = &s.counts {
        let e = &c.errors;
        let _ = writeln!(
            o,
            "\nErrors by class: timeout {}, connect {}, reset {}, no_leader {}, 5xx {}, 4xx {}.",
            e.timeout, e.connect, e.reset, e.no_leader, e.http_5xx, e.http_4xx
        );
    }
    if let Some(v) = &s.validity {
        let _ = writeln!(o, "\nValidity: {}.", v.line());
    }
    if let Some(n) = s.elections {
        let _ = writeln!(o, "\nElections (term changes) during the load: {n}.");
    }
    if let Some(d) = &s.disk {
        let _ = writeln!(
            o,
            "\nDisk under the nodes: 4 KiB fdatasync p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms ({} samples).",
            d.fdatasync_p50_ms, d.fdatasync_p99_ms, d.fdatasync_max_ms, d.samples
        );
    }
    for (id, c) in &s.log_commits {
        let _ = writeln!(
            o,
            "Node {id} log commits: {} ({} writes), p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms.",
            c.commits, c.jobs, c.p50_ms, c.p99_ms, c.max_ms
        );
    }
}

/// One row per fault: when, what, healed, and its recovery.
fn faults(o: &mut String, s: &RunDoc) {
    let _ = writeln!(o, "\n## Faults and recovery\n");
    if s.faults.is_empty() {
        let _ = writeln!(o, "No faults.");
        return;
    }
    let _ = writeln!(
        o,
        "| at | action | target | nodes | healed | new leader | first success | 90 % TPS | back after undo | status |\n|---|---|---|---|---|---|---|---|---|---|"
    );
    for (n, f) in s.faults.iter().enumerate() {
        let r = s.recovery.iter().find(|r| r.fault == n);
        let nodes: Vec<String> = f.resolved.iter().map(u64::to_string).collect();
        let _ = writeln!(
            o,
            "| {:.1}s | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            f.at_s,
            f.action,
            f.target,
            nodes.join(","),
            opt(f.healed_at_s, "s"),
            figure(r, "leader_elected_after_s"),
            figure(r, "first_success_after_s"),
            figure(r, "tps_90pct_after_s"),
            r.map_or_else(|| "–".into(), super::doc::RecoveryDoc::after_undo),
            fault_status(s, n)
        );
    }
    for r in &s.recovery {
        if let Some(l) = &r.limp {
            let nodes: Vec<String> = s.faults[r.fault]
                .resolved
                .iter()
                .map(u64::to_string)
                .collect();
            let _ = writeln!(o, "\n{}", l.sentence(&nodes.join(", ")));
        }
    }
    for c in s.faults.iter().flat_map(|f| &f.corruption) {
        let _ = writeln!(o, "\nCorrupted: {}.", c.sentence());
    }
    if let Some(limit) = s.checks.recovery_after_undo_within_s {
        let whose = if s.checks.recovery_within_s.is_some() {
            "the scenario's recovery_within"
        } else {
            "the default; set [checks] recovery_within to change it"
        };
        let _ = writeln!(
            o,
            "\nA fault undone during the load must be back within {limit:.0} s of its undo \
             (a leader, and a first acknowledged write invoked after the undo): {whose}."
        );
    }
    node_exits(o, s);
}

/// The nodes that exited on their own, with the end of their logs.
fn node_exits(o: &mut String, s: &RunDoc) {
    if s.node_exits.is_empty() {
        return;
    }
    let _ = writeln!(o, "\n## Nodes that exited on their own\n");
    for e in &s.node_exits {
        let _ = writeln!(
            o,
            "- node {} at {:.1}s: {}\n\n  ```\n{}\n  ```",
            e.node,
            e.at_s,
            e.status,
            e.log_tail.trim_end().replace('\n', "\n  ")
        );
    }
}

/// The lost-write check and the keys it found lost.
fn lost_writes(o: &mut String, s: &RunDoc) {
    let _ = writeln!(o, "\n## Lost writes\n");
    let Some(lw) = &s.checks.lost_writes else {
        let _ = writeln!(o, "Not checked.");
        return;
    };
    let status = match lw.status.as_deref() {
        Some("ok") => "✓ no acknowledged write lost. ",
        Some("lost") => "✗ **acknowledged writes lost.** ",
        Some("unknown") => "? **not established: keys could not be read back.** ",
        _ => "",
    };
    let _ = writeln!(
        o,
        "{status}{} acknowledged writes ({} unknown) over {} keys: {} verified, {} lost, {} unreadable.",
        lw.acked, lw.unknown, lw.keys_checked, lw.verified, lw.lost, lw.unreadable
    );
    for k in &lw.lost_keys {
        let _ = writeln!(
            o,
            "- `{}`: {}; expected {:?} (index {:?}), found {:?}",
            k.key, k.kind, k.expected, k.expected_index, k.found
        );
    }
}

/// The linearizability check with its pictures, and the session check with its examples.
fn checks(o: &mut String, s: &RunDoc) {
    if let Some(line) = linearizability_text(s) {
        let _ = writeln!(o, "\n## Consistency\n\n{line}.");
        if let Some(l) = &s.checks.linearizability {
            if !l.anomalies.is_empty() {
                let _ = writeln!(
                    o,
                    "\nEach picture shows one lane per worker; the operation that cannot be placed is red.\n"
                );
            }
            for a in &l.anomalies {
                let _ = writeln!(
                    o,
                    "- `{}`: operations {:?} — [{}]({})",
                    a.key, a.op_ids, a.file, a.file
                );
            }
        }
    }
    if let Some(session) = &s.checks.session {
        let _ = writeln!(o, "\n{}.", session.line());
        for v in &session.examples {
            let _ = writeln!(o, "- {}", v.describe());
        }
    }
}
