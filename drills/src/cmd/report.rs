//! `raftdrill report DIR`: render a folder's pages and pictures again from its files: a run's
//! report.md, report.html and SVGs; a repeat's runs and its aggregate; a suite's scenarios and
//! its index; a capacity search's timeline.

use std::path::Path;

use crate::report::repeat::{self, RepeatSummary};
use crate::report::suite::{self, SuiteIndex, SuiteRow};
use crate::report::{ReportError, read_json, render_run};

/// What was rendered, one line per folder.
pub fn run(dir: &Path) -> Result<Vec<String>, ReportError> {
    let mut done = Vec::new();
    render(dir, &mut done)?;
    Ok(done)
}

fn render(dir: &Path, done: &mut Vec<String>) -> Result<(), ReportError> {
    use crate::versioned::{note_for, schema};
    let note =
        |file: &str, current: u32| note_for(&dir.join(file), current).map(|n| format!("note: {n}"));
    if dir.join(suite::INDEX_JSON).exists() {
        done.extend(note(suite::INDEX_JSON, schema::SUITE));
        let index: SuiteIndex = read_json(&dir.join(suite::INDEX_JSON))?;
        let mut rows = Vec::new();
        for row in index.rows {
            if row.error.is_some() {
                rows.push(row);
                continue;
            }
            render(&dir.join(&row.dir), done)?;
            rows.push(SuiteRow::read(dir, &row.dir)?);
        }
        SuiteIndex::new(index.started_at, index.repeat, index.duration_s, rows).write(dir)?;
        done.push(format!(
            "{}: suite.md, suite.html, suite.json",
            dir.display()
        ));
    } else if dir.join("capacity.json").exists() {
        done.extend(note("capacity.json", schema::CAPACITY));
        crate::capacity::timeline::render(dir)?;
        done.push(format!("{}: timeline.svg", dir.display()));
    } else {
        let probe: serde_json::Value = read_json(&dir.join("summary.json"))?;
        if probe["kind"] == repeat::KIND {
            done.extend(note("summary.json", schema::REPEAT));
            let old: RepeatSummary = read_json(&dir.join("summary.json"))?;
            let dirs: Vec<String> = old.runs.into_iter().map(|r| r.dir).collect();
            for d in &dirs {
                render(&dir.join(d), done)?;
            }
            RepeatSummary::build(dir, &dirs)?.write(dir)?;
            done.push(format!(
                "{}: summary.json, report.md, report.html",
                dir.display()
            ));
        } else {
            done.extend(note("summary.json", schema::SUMMARY));
            render_run(dir)?;
            done.push(format!(
                "{}: report.md, report.html, timeline.svg{}",
                dir.display(),
                if dir.join("nodes.csv").exists() {
                    ", nodes.svg"
                } else {
                    ""
                }
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A run folder of a raftdrill before versioned outputs renders again, with a note.
    #[test]
    fn an_unversioned_run_renders_again_with_a_note() {
        let tmp = tempfile::tempdir().unwrap();
        crate::report::tests::write_folder(tmp.path());
        let lines = run(tmp.path()).unwrap();
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(
            lines[0].starts_with("note: ") && lines[0].contains("older than versioned outputs"),
            "{lines:?}"
        );
        assert!(tmp.path().join("report.html").exists());
    }
}
