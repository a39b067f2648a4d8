//! A repeat: the same scenario run N times with seeds s, s+1, ..., each in its own subfolder
//! (`run-1/`, `run-2/`, ...). Its own `summary.json` ([`RepeatSummary`], schema
//! `results/repeat.schema.json`) has the median, min and max of every figure and the worst
//! verdict; `report.md` and `report.html` show the same.

use std::fmt::Write as _;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::doc::{ClusterDoc, LoadDoc, RunDoc};
use super::figures::{self, Figure};
use super::html::{esc, open_page, table};
use super::{ReportError, RunFolder, write, write_bytes};
use crate::exit::Exit;

/// `kind` of a repeat's summary.json, which tells it from a run's.
pub const KIND: &str = "repeat";

/// One run of a repeat.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RepeatRun {
    /// Its folder, relative to the repeat's.
    pub dir: String,
    /// Its seed.
    pub seed: Option<u64>,
    /// Its verdict.
    #[schemars(extend("enum" = ["pass", "warn", "fail", "inconclusive", "aborted"]))]
    pub verdict: String,
    /// Its exit code.
    #[schemars(extend("enum" = [0, 1, 3, 4, 5]))]
    pub exit_code: u8,
    /// Its linearizability status, when its summary has one.
    pub consistency: Option<String>,
}

/// `summary.json` of a repeat.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RepeatSummary {
    /// Always `repeat`.
    #[schemars(extend("const" = "repeat"))]
    pub kind: String,
    /// Scenario name.
    pub scenario: String,
    /// Scenario description.
    pub description: String,
    /// Length of each run.
    pub duration_s: f64,
    /// The cluster (of the first run).
    pub cluster: Option<ClusterDoc>,
    /// The load (of the first run).
    pub load: LoadDoc,
    /// Every run, in order.
    pub runs: Vec<RepeatRun>,
    /// Every figure: median, min and max over the runs that measured it.
    pub figures: Vec<Figure>,
    /// The worst linearizability status of the runs, when any has one.
    pub consistency: Option<String>,
    /// The verdict of the worst run.
    #[schemars(extend("enum" = ["pass", "warn", "fail", "inconclusive", "aborted"]))]
    pub verdict: String,
    /// The exit code of the worst run.
    #[schemars(extend("enum" = [0, 1, 3, 4, 5]))]
    pub exit_code: u8,
}

fn verdict_rank(v: &str) -> u8 {
    match v {
        "pass" => 0,
        "warn" => 1,
        _ => 2,
    }
}

/// The worst of several linearizability statuses (`anomaly` over `unknown` over `skipped`
/// over `ok`).
pub fn worst_consistency<'a>(all: impl Iterator<Item = &'a str>) -> Option<String> {
    let rank = |s: &str| match s {
        "ok" => 0,
        "skipped" => 1,
        "unknown" => 2,
        _ => 3,
    };
    all.max_by_key(|s| rank(s)).map(str::to_string)
}

impl RepeatSummary {
    /// The summary of runs already written, in seed order; `dirs` are relative to `root`.
    pub fn build(root: &Path, dirs: &[String]) -> Result<RepeatSummary, ReportError> {
        let docs: Vec<RunDoc> = dirs
            .iter()
            .map(|d| RunFolder::load(&root.join(d)).map(|f| f.summary))
            .collect::<Result<_, _>>()?;
        let first = docs.first().ok_or_else(|| ReportError::Parse {
            file: root.display().to_string(),
            message: "a repeat needs at least one run".into(),
        })?;
        let runs: Vec<RepeatRun> = dirs
            .iter()
            .zip(&docs)
            .map(|(dir, d)| RepeatRun {
                dir: dir.clone(),
                seed: d.seed,
                verdict: d.verdict.clone(),
                exit_code: d.exit_code,
                consistency: d.checks.linearizability.as_ref().map(|l| l.status.clone()),
            })
            .collect();
        let worst = runs
            .iter()
            .max_by_key(|r| (Exit::rank(r.exit_code), verdict_rank(&r.verdict)))
            .expect("at least one run");
        let per_run: Vec<Vec<Figure>> = docs.iter().map(figures::of_run).collect();
        Ok(RepeatSummary {
            kind: KIND.into(),
            scenario: first.scenario.clone(),
            description: first.description.clone(),
            duration_s: first.duration_s,
            cluster: first.cluster.clone(),
            load: first.load.clone(),
            consistency: worst_consistency(runs.iter().filter_map(|r| r.consistency.as_deref())),
            verdict: worst.verdict.clone(),
            exit_code: worst.exit_code,
            runs,
            figures: figures::aggregate(&per_run),
        })
    }

    /// Writes `summary.json`, `report.md` and `report.html` into `root`.
    pub fn write(&self, root: &Path) -> Result<(), ReportError> {
        let json = crate::versioned::to_json(self, crate::versioned::schema::REPEAT);
        write_bytes(&root.join("summary.json"), &json)?;
        write(&root.join("report.md"), &self.markdown())?;
        write(&root.join("report.html"), &self.html())
    }

    fn figure_rows(&self) -> Vec<[String; 5]> {
        self.figures
            .iter()
            .map(|f| {
                let v = |x: fn(&figures::Spread) -> f64| {
                    f.value.map_or("–".into(), |s| format!("{:.2}", x(&s)))
                };
                [
                    format!("{}{}", f.name, unit(&f.unit)),
                    v(|s| s.median),
                    v(|s| s.min),
                    v(|s| s.max),
                    format!("{}/{}", f.value.map_or(0, |s| s.n), self.runs.len()),
                ]
            })
            .collect()
    }

    fn markdown(&self) -> String {
        let mut o = String::new();
        let _ = writeln!(
            o,
            "# raftdrill: {} × {}\n\n{}\n\n**Worst verdict: {}** (exit code {})\n",
            self.scenario,
            self.runs.len(),
            self.description,
            self.verdict,
            self.exit_code
        );
        let _ = writeln!(o, "| run | seed | verdict | exit |\n|---|---|---|---|");
        for r in &self.runs {
            let _ = writeln!(
                o,
                "| [{}]({}/report.md) | {} | {} | {} |",
                r.dir,
                r.dir,
                r.seed.map_or("–".into(), |s| s.to_string()),
                r.verdict,
                r.exit_code
            );
        }
        let _ = writeln!(
            o,
            "\n| figure | median | min | max | runs |\n|---|---|---|---|---|"
        );
        for row in self.figure_rows() {
            let _ = writeln!(o, "| {} |", row.join(" | "));
        }
        o
    }

    fn html(&self) -> String {
        let mut o = String::new();
        open_page(
            &mut o,
            &format!("raftdrill: {} × {}", self.scenario, self.runs.len()),
        );
        let _ = write!(
            o,
            "<h1>raftdrill: {} × {}</h1>\n<p>{}</p>\n<p><span class=\"verdict {}\" id=\"verdict\">{}</span> worst of {} runs, exit code {}</p>\n",
            esc(&self.scenario),
            self.runs.len(),
            esc(&self.description),
            esc(&self.verdict),
            esc(&self.verdict),
            self.runs.len(),
            self.exit_code
        );
        let runs: Vec<Vec<String>> = self
            .runs
            .iter()
            .map(|r| {
                vec![
                    format!("<a href=\"{0}/report.html\">{0}</a>", esc(&r.dir)),
                    r.seed.map_or("–".into(), |s| s.to_string()),
                    esc(&r.verdict),
                    r.exit_code.to_string(),
                ]
            })
            .collect();
        table(&mut o, "runs", &["run", "seed", "verdict", "exit"], &runs);
        let rows: Vec<Vec<String>> = self
            .figure_rows()
            .into_iter()
            .map(|r| r.iter().map(|c| esc(c)).collect())
            .collect();
        table(
            &mut o,
            "figures",
            &["figure", "median", "min", "max", "runs"],
            &rows,
        );
        o.push_str("</body></html>\n");
        o
    }
}

/// ` (ms)` after a figure's name, or nothing for a count.
pub fn unit(u: &str) -> String {
    if u.is_empty() {
        String::new()
    } else {
        format!(" ({u})")
    }
}
