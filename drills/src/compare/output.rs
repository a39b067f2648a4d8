//! A comparison as text: the printed table, `compare.md`, and `compare.json`.

use std::fmt::Write as _;
use std::path::Path;

use super::rules::Class;
use super::{Comparison, Row};
use crate::report::figures::Spread;
use crate::report::{ReportError, write, write_bytes};

/// `12.34`, or `12.34 [10.10–14.00]` for a figure measured more than once; counts (no unit)
/// without decimals.
fn value(v: Option<Spread>, unit: &str) -> String {
    let d = if unit.is_empty() { 0 } else { 2 };
    match v {
        None => "–".into(),
        Some(s) if s.n > 1 => format!("{:.d$} [{:.d$}–{:.d$}]", s.median, s.min, s.max),
        Some(s) => format!("{:.d$}", s.median),
    }
}

fn change(c: Option<f64>) -> String {
    match c {
        None => "–".into(),
        Some(c) if c.is_infinite() => "new".into(),
        // No "-0.0%" for a change that rounds to nothing.
        Some(c) if c.abs() < 0.05 => "0.0%".into(),
        Some(c) => format!("{c:+.1}%"),
    }
}

fn mark(r: &Row) -> String {
    let sign = match r.class {
        Class::Better | Class::New => "+",
        Class::Worse | Class::Missing => "-",
        Class::WithinNoise => "=",
    };
    let word = r.class.word();
    if r.saturated {
        let unchecked = if r.limit_pct.is_some() {
            " ? unchecked"
        } else {
            ""
        };
        format!("{sign} {word} (at the request timeout in both: cannot show a change){unchecked}")
    } else if r.crossed {
        format!("{sign} {word} ✗ past its limit")
    } else {
        format!("{sign} {word}")
    }
}

/// The cells of every row: scenario, figure, base, new, change, verdict.
fn cells(c: &Comparison) -> Vec<[String; 6]> {
    c.rows
        .iter()
        .map(|r| {
            let unit = if r.unit.is_empty() {
                String::new()
            } else {
                format!(" ({})", r.unit)
            };
            [
                r.scenario.clone(),
                format!("{}{unit}", r.figure),
                value(r.base, &r.unit),
                value(r.new, &r.unit),
                change(r.change_pct),
                mark(r),
            ]
        })
        .collect()
}

fn verdict_line(c: &Comparison) -> String {
    let mut parts = Vec::new();
    if c.crossed.is_empty() {
        parts.push("No limit crossed.".to_string());
    } else {
        parts.push(format!("Past its limit: {}.", c.crossed.join(", ")));
    }
    if !c.unchecked.is_empty() {
        parts.push(format!(
            "Unchecked: {} (held at the request timeout in both: gate a figure below it, \
             such as p50 or p90, with --limit).",
            c.unchecked.join(", ")
        ));
    }
    parts.join(" ")
}

fn limits_line(c: &Comparison) -> String {
    let mut given = String::new();
    if !c.limits.figures.is_empty() {
        let all: Vec<String> = c.limits.figures.iter().map(ToString::to_string).collect();
        given = format!(", and {} over them", all.join(", "));
    }
    format!(
        "Limits: p99 +{}%, tps −{}%, recovery +{}%{given}. Within noise: the min–max ranges overlap (repeats), or a change within 5 % or the unit's resolution (single runs).",
        c.limits.max_p99_increase_pct,
        c.limits.max_tps_drop_pct,
        c.limits.max_recovery_increase_pct
    )
}

/// The table printed on stdout.
pub fn text(c: &Comparison) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "compare {} (BASE) with {} (NEW): {}",
        c.base.display(),
        c.new.display(),
        c.kind.article().trim_start_matches("a ")
    );
    for n in &c.notes {
        let _ = writeln!(o, "note: {n}");
    }
    let head = ["scenario", "figure", "BASE", "NEW", "change", ""];
    let rows = cells(c);
    let mut width = head.map(|h| h.chars().count());
    for r in &rows {
        for (w, cell) in width.iter_mut().zip(r) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: [&str; 6]| {
        let mut l = String::new();
        for (i, (cell, w)) in cells.iter().zip(width).enumerate() {
            let pad = w.saturating_sub(cell.chars().count());
            if (2..=4).contains(&i) {
                let _ = write!(l, "{}{cell}  ", " ".repeat(pad));
            } else {
                let _ = write!(l, "{cell}{}  ", " ".repeat(pad));
            }
        }
        l.trim_end().to_string()
    };
    let _ = writeln!(o, "\n{}", line(head));
    for r in &rows {
        let _ = writeln!(o, "{}", line([&r[0], &r[1], &r[2], &r[3], &r[4], &r[5]]));
    }
    let _ = writeln!(o, "\n{}\n{}", limits_line(c), verdict_line(c));
    o
}

/// `compare.md`.
pub fn markdown(c: &Comparison) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "# raftdrill compare\n\nBASE `{}`, NEW `{}` ({}).\n",
        c.base.display(),
        c.new.display(),
        c.kind.article().trim_start_matches("a ")
    );
    for n in &c.notes {
        let _ = writeln!(o, "- {n}");
    }
    let _ = writeln!(
        o,
        "\n| scenario | figure | BASE | NEW | change | |\n|---|---|---|---|---|---|"
    );
    for r in cells(c) {
        let _ = writeln!(o, "| {} |", r.join(" | "));
    }
    let _ = writeln!(o, "\n{}\n\n**{}**", limits_line(c), verdict_line(c));
    o
}

/// Writes `compare.md` and `compare.json` into `dir`.
pub fn write_files(dir: &Path, c: &Comparison) -> Result<(), ReportError> {
    write(&dir.join("compare.md"), &markdown(c))?;
    let json = crate::versioned::to_json(c, crate::versioned::schema::COMPARE);
    write_bytes(&dir.join("compare.json"), &json)
}
