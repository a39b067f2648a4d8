//! `report.html`: one self-contained page (no script, no network: styles inline, pictures as
//! inline SVG) with the verdict, the threshold table, the timeline, recovery per fault, the
//! checks and every node's CPU and memory.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::doc::RunDoc;
use super::markdown::{
    cluster_text, fault_status, linearizability_text, load_text, opt, threshold_cells,
};
use super::series::NodeSample;

/// Escapes text for HTML content and attribute values.
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

/// The page's style sheet: inline, so the file needs nothing else.
pub const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1060px;color:#222}\
table{border-collapse:collapse;margin:.5em 0 1.5em}th,td{border:1px solid #ccc;padding:.25em .6em;text-align:right}\
th:first-child,td:first-child{text-align:left}th{background:#f3f3f3}\
#recovery td:nth-child(2),#scenarios td:nth-child(2),#lost-keys td,#runs td{text-align:left}\
.verdict{display:inline-block;padding:.3em .8em;border-radius:4px;font-weight:bold;color:#fff}\
.pass{background:#2e7d32}.warn{background:#e69500}.fail,.aborted{background:#c62828}\
.ok{color:#2e7d32}.bad{color:#c62828}svg{max-width:100%;height:auto}";

/// Opens a page: doctype, head with the title and style, body.
pub fn open_page(o: &mut String, title: &str) {
    let _ = write!(
        o,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title><style>{STYLE}</style></head><body>\n",
        esc(title)
    );
}

/// A table: a header row and body rows whose cells are already HTML.
pub fn table(o: &mut String, id: &str, head: &[&str], rows: &[Vec<String>]) {
    let _ = write!(o, "<table id=\"{id}\"><thead><tr>");
    for h in head {
        let _ = write!(o, "<th>{}</th>", esc(h));
    }
    o.push_str("</tr></thead><tbody>\n");
    for r in rows {
        o.push_str("<tr>");
        for c in r {
            let _ = write!(o, "<td>{c}</td>");
        }
        o.push_str("</tr>\n");
    }
    o.push_str("</tbody></table>\n");
}

/// `report.html` of one run. `timeline` and `nodes` are the SVG texts, when drawn.
pub fn render(
    s: &RunDoc,
    timeline: Option<&str>,
    nodes_svg: Option<&str>,
    nodes: &[NodeSample],
) -> String {
    let mut o = String::new();
    open_page(&mut o, &format!("raftdrill: {}", s.scenario));
    head(&mut o, s);
    o.push_str("<h2>Thresholds</h2>\n");
    let rows: Vec<Vec<String>> = s
        .thresholds
        .iter()
        .map(|t| {
            let mut cells = threshold_cells(t, "–");
            cells[0] = esc(&cells[0]);
            cells.to_vec()
        })
        .collect();
    table(
        &mut o,
        "thresholds",
        &["metric", "warn", "break", "observed", "status"],
        &rows,
    );

    o.push_str("<h2>Timeline</h2>\n");
    match timeline {
        Some(svg) => o.push_str(svg),
        None => o.push_str("<p>No timeline was recorded.</p>"),
    }
    load(&mut o, s);
    faults(&mut o, s);
    checks(&mut o, s);

    o.push_str("<h2>Nodes</h2>\n");
    match nodes_svg {
        Some(svg) => {
            o.push_str(svg);
            node_table(&mut o, nodes);
        }
        None => o.push_str("<p>raftdrill watched no nodes in this run.</p>"),
    }
    o.push_str("\n</body></html>\n");
    o
}

/// The title, the verdict and its reasons, and what ran.
fn head(o: &mut String, s: &RunDoc) {
    let _ = write!(
        o,
        "<h1>raftdrill: {}</h1>\n<p>{}</p>\n<p><span class=\"verdict {}\" id=\"verdict\">{}</span> exit code {}</p>\n",
        esc(&s.scenario),
        esc(&s.description),
        esc(&s.verdict),
        esc(&s.verdict),
        s.exit_code
    );
    if !s.reasons.is_empty() {
        o.push_str("<ul id=\"reasons\">");
        for r in &s.reasons {
            let _ = write!(o, "<li>{}</li>", esc(r));
        }
        o.push_str("</ul>\n");
    }
    let _ = writeln!(
        o,
        "<p>Started {}; {:.0} s ({:.0} s warmup); {}; workload {}, {}{}.</p>",
        esc(&s.started_at),
        s.duration_s,
        s.warmup_s,
        esc(&cluster_text(s)),
        esc(&s.load.workload),
        esc(&load_text(s)),
        s.seed.map(|n| format!("; seed {n}")).unwrap_or_default()
    );
}

/// Totals, and the latency of all operations and of each kind.
fn load(o: &mut String, s: &RunDoc) {
    let tot = &s.totals;
    let _ = write!(
        o,
        "\n<h2>Load</h2>\n<p>{} operations, {} ok, {} errors, {:.1} ops/s; late {}, dropped {}.</p>\n",
        tot.ops, tot.ok, tot.errors, tot.tps, s.load.late, s.load.dropped
    );
    let lat = |name: &str, l: &loadgen::output::LatencyMs| {
        vec![
            esc(name),
            format!("{:.2}", l.p50),
            format!("{:.2}", l.p90),
            format!("{:.2}", l.p99),
            format!("{:.2}", l.p999),
            format!("{:.2}", l.max),
        ]
    };
    let mut rows = vec![lat("all", &s.latency_ms.overall)];
    rows.extend(s.latency_ms.per_op.iter().map(|(k, l)| lat(k, l)));
    table(
        o,
        "latency",
        &[
            "operation",
            "p50 ms",
            "p90 ms",
            "p99 ms",
            "p99.9 ms",
            "max ms",
        ],
        &rows,
    );
}

/// One row per fault: when, what, healed, and its recovery against the limit.
fn faults(o: &mut String, s: &RunDoc) {
    o.push_str("<h2>Faults and recovery</h2>\n");
    if s.faults.is_empty() {
        o.push_str("<p>No faults.</p>\n");
        return;
    }
    let rows: Vec<Vec<String>> = s
        .faults
        .iter()
        .enumerate()
        .map(|(n, f)| {
            let r = s.recovery.iter().find(|r| r.fault == n);
            vec![
                format!("{:.1}s", f.at_s),
                esc(&f.label()),
                opt(f.healed_at_s, "s"),
                opt(r.and_then(|r| r.leader_elected_after_s), "s"),
                opt(r.and_then(|r| r.first_success_after_s), "s"),
                opt(r.and_then(|r| r.tps_90pct_after_s), "s"),
                r.map_or_else(|| "–".into(), super::doc::RecoveryDoc::after_undo),
                opt(r.and_then(|r| r.after_undo_within_s.or(r.within_s)), "s"),
                esc(&fault_status(s, n)),
            ]
        })
        .collect();
    table(
        o,
        "recovery",
        &[
            "at",
            "fault",
            "healed",
            "new leader",
            "first success",
            "90 % TPS",
            "back after undo",
            "limit",
            "status",
        ],
        &rows,
    );
}

/// The data checks in a list, and the lost keys in a table.
fn checks(o: &mut String, s: &RunDoc) {
    o.push_str("<h2>Checks</h2>\n<ul id=\"checks\">");
    match &s.checks.lost_writes {
        None => o.push_str("<li>lost writes: not checked</li>"),
        Some(lw) => {
            let _ = write!(
                o,
                "<li class=\"{}\">lost writes: {} lost of {} acknowledged ({} unknown) over {} keys; {} verified, {} unreadable</li>",
                if lw.lost == 0 { "ok" } else { "bad" },
                lw.lost,
                lw.acked,
                lw.unknown,
                lw.keys_checked,
                lw.verified,
                lw.unreadable
            );
        }
    }
    match linearizability_text(s) {
        Some(l) => {
            let _ = write!(o, "<li>{}</li>", esc(&l));
        }
        None => o.push_str("<li>linearizability: –</li>"),
    }
    if let Some(session) = &s.checks.session {
        let _ = write!(o, "<li>{}</li>", esc(&session.line()));
    }
    if let Some(n) = s.elections {
        let _ = write!(o, "<li>elections during the load: {n}</li>");
    }
    o.push_str("</ul>\n");
    let Some(lw) = s
        .checks
        .lost_writes
        .as_ref()
        .filter(|l| !l.lost_keys.is_empty())
    else {
        return;
    };
    let rows: Vec<Vec<String>> = lw
        .lost_keys
        .iter()
        .map(|k| {
            vec![
                esc(&k.key),
                esc(&k.kind),
                esc(k.expected.as_deref().unwrap_or("–")),
                k.expected_index.map_or("–".into(), |i| i.to_string()),
                esc(k.found.as_deref().unwrap_or("–")),
            ]
        })
        .collect();
    table(
        o,
        "lost-keys",
        &["key", "kind", "expected", "index", "found"],
        &rows,
    );
}

/// Mean and peak CPU and peak RSS per node.
fn node_table(o: &mut String, nodes: &[NodeSample]) {
    let mut by: BTreeMap<u64, (f64, u32, f64, u64)> = BTreeMap::new();
    for s in nodes {
        let e = by.entry(s.node).or_default();
        if let Some(c) = s.cpu_pct {
            e.0 += c;
            e.1 += 1;
            e.2 = e.2.max(c);
        }
        e.3 = e.3.max(s.rss_bytes.unwrap_or(0));
    }
    let rows: Vec<Vec<String>> = by
        .iter()
        .map(|(id, (sum, n, peak, rss))| {
            vec![
                format!("node {id}"),
                if *n > 0 {
                    format!("{:.1}", sum / f64::from(*n))
                } else {
                    "–".into()
                },
                format!("{peak:.1}"),
                format!("{:.1}", *rss as f64 / (1024.0 * 1024.0)),
            ]
        })
        .collect();
    table(
        o,
        "nodes",
        &["node", "mean CPU %", "peak CPU %", "peak RSS MiB"],
        &rows,
    );
}
