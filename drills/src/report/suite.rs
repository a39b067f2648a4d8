//! The index of a suite: `suite.json`, `suite.md` and `suite.html`, one row per scenario with
//! its verdict, throughput, p99, slowest recovery, lost writes and consistency.

use std::fmt::Write as _;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::figures::{self, Figure};
use super::html::{esc, open_page, table};
use super::repeat::{self, RepeatSummary};
use super::{ReportError, RunFolder, read_json, write, write_bytes};
use crate::exit::Exit;

/// `suite.json`.
pub const INDEX_JSON: &str = "suite.json";

/// One scenario of a suite.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SuiteRow {
    /// Scenario name.
    pub scenario: String,
    /// Its folder (a run, or a repeat), relative to the suite's.
    pub dir: String,
    /// Its verdict (the worst, for a repeat); `not run` when it could not run.
    pub verdict: String,
    /// Its exit code.
    pub exit_code: u8,
    /// Throughput, ops/s (median of a repeat).
    pub tps: Option<f64>,
    /// p99 latency, ms (median of a repeat).
    pub p99_ms: Option<f64>,
    /// The slowest recovery figure of any fault, s (none without faults).
    pub recovery_s: Option<f64>,
    /// Lost writes (the most of any run of a repeat).
    pub lost_writes: Option<f64>,
    /// The linearizability status, or `–` when the summary has none.
    pub consistency: String,
    /// Why it could not run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl SuiteRow {
    /// The row of a scenario whose folder holds these figures.
    pub fn from_figures(
        scenario: &str,
        dir: &str,
        verdict: &str,
        exit_code: u8,
        figures: &[Figure],
        consistency: Option<String>,
    ) -> SuiteRow {
        let get = |name: &str| {
            figures
                .iter()
                .find(|f| f.name == name)
                .and_then(|f| f.value)
        };
        let recovery = figures
            .iter()
            .filter(|f| f.name.starts_with("recovery."))
            .map(|f| f.value.map_or(f64::INFINITY, |v| v.median))
            .reduce(f64::max);
        SuiteRow {
            scenario: scenario.into(),
            dir: dir.into(),
            verdict: verdict.into(),
            exit_code,
            tps: get("tps").map(|v| v.median),
            p99_ms: get("p99_ms").map(|v| v.median),
            // A recovery that never came is the slowest of all: shown as never.
            recovery_s: recovery,
            lost_writes: get("lost_writes").map(|v| v.max),
            consistency: consistency.unwrap_or_else(|| "–".into()),
            error: None,
        }
    }

    /// The row of the scenario whose run or repeat folder is `root/dir`.
    pub fn read(root: &Path, dir: &str) -> Result<SuiteRow, ReportError> {
        let path = root.join(dir);
        let probe: serde_json::Value = read_json(&path.join("summary.json"))?;
        if probe["kind"] == repeat::KIND {
            let r: RepeatSummary = read_json(&path.join("summary.json"))?;
            return Ok(SuiteRow::from_figures(
                &r.scenario,
                dir,
                &r.verdict,
                r.exit_code,
                &r.figures,
                r.consistency,
            ));
        }
        let s = RunFolder::load(&path)?.summary;
        Ok(SuiteRow::from_figures(
            &s.scenario,
            dir,
            &s.verdict,
            s.exit_code,
            &figures::of_run(&s),
            s.checks.linearizability.map(|l| l.status),
        ))
    }

    /// The row of a scenario that could not run.
    pub fn failed(scenario: &str, dir: &str, exit_code: u8, error: String) -> SuiteRow {
        SuiteRow {
            scenario: scenario.into(),
            dir: dir.into(),
            verdict: "not run".into(),
            exit_code,
            tps: None,
            p99_ms: None,
            recovery_s: None,
            lost_writes: None,
            consistency: "–".into(),
            error: Some(error),
        }
    }
}

/// `suite.json`.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SuiteIndex {
    /// Always `suite`.
    pub kind: String,
    /// UTC start, RFC 3339.
    pub started_at: String,
    /// Runs per scenario.
    pub repeat: u32,
    /// Every scenario's duration, when `--duration` shortened them.
    pub duration_s: Option<f64>,
    /// One row per scenario, in the order they ran.
    pub rows: Vec<SuiteRow>,
    /// The worst exit code of the rows.
    pub exit_code: u8,
}

impl SuiteIndex {
    /// The index of these rows.
    pub fn new(
        started_at: String,
        repeat: u32,
        duration_s: Option<f64>,
        rows: Vec<SuiteRow>,
    ) -> Self {
        let exit_code = rows
            .iter()
            .map(|r| r.exit_code)
            .max_by_key(|c| Exit::rank(*c))
            .unwrap_or(0);
        SuiteIndex {
            kind: "suite".into(),
            started_at,
            repeat,
            duration_s,
            rows,
            exit_code,
        }
    }

    /// The rows as text: scenario, verdict, TPS, p99, recovery, lost writes, consistency.
    pub fn cells(&self) -> Vec<[String; 7]> {
        let f = |v: Option<f64>, d: usize| match v {
            None => "–".to_string(),
            Some(v) if v.is_infinite() => "never".to_string(),
            Some(v) => format!("{v:.d$}"),
        };
        self.rows
            .iter()
            .map(|r| {
                [
                    r.scenario.clone(),
                    match &r.error {
                        Some(e) => format!("{} ({e})", r.verdict),
                        None => format!("{} (exit {})", r.verdict, r.exit_code),
                    },
                    f(r.tps, 1),
                    f(r.p99_ms, 2),
                    f(r.recovery_s, 2),
                    f(r.lost_writes, 0),
                    r.consistency.clone(),
                ]
            })
            .collect()
    }

    /// Writes `suite.json`, `suite.md` and `suite.html` into `dir`.
    pub fn write(&self, dir: &Path) -> Result<(), ReportError> {
        let json = crate::versioned::to_json(self, crate::versioned::schema::SUITE);
        write_bytes(&dir.join(INDEX_JSON), &json)?;
        const HEAD: [&str; 7] = [
            "scenario",
            "verdict",
            "TPS",
            "p99 ms",
            "recovery s",
            "lost writes",
            "consistency",
        ];
        let title = format!(
            "raftdrill suite: {} scenarios{}",
            self.rows.len(),
            if self.repeat > 1 {
                format!(" × {} runs", self.repeat)
            } else {
                String::new()
            }
        );
        let mut md = format!(
            "# {title}\n\nStarted {}; exit code {}.\n\n| {} |\n|{}\n",
            self.started_at,
            self.exit_code,
            HEAD.join(" | "),
            "---|".repeat(HEAD.len())
        );
        for (row, cells) in self.rows.iter().zip(self.cells()) {
            let mut cells = cells;
            cells[0] = format!("[{}]({}/report.md)", cells[0], row.dir);
            let _ = writeln!(md, "| {} |", cells.join(" | "));
        }
        write(&dir.join("suite.md"), &md)?;

        let mut html = String::new();
        open_page(&mut html, &title);
        let _ = writeln!(
            html,
            "<h1>{}</h1>\n<p>Started {}; exit code <span id=\"exit\">{}</span>.</p>",
            esc(&title),
            esc(&self.started_at),
            self.exit_code
        );
        let rows: Vec<Vec<String>> = self
            .rows
            .iter()
            .zip(self.cells())
            .map(|(row, cells)| {
                let mut out: Vec<String> = cells.iter().map(|c| esc(c)).collect();
                out[0] = format!(
                    "<a href=\"{}/report.html\">{}</a>",
                    esc(&row.dir),
                    esc(&row.scenario)
                );
                out
            })
            .collect();
        table(&mut html, "scenarios", &HEAD, &rows);
        html.push_str("</body></html>\n");
        write(&dir.join("suite.html"), &html)
    }
}
