//! `raftdrill check PATH`: check a recorded history for linearizability, print one line per
//! failing or undecided key and a summary, and leave `linearizability.json` and the anomaly
//! pictures beside the history.

use std::path::{Path, PathBuf};

use crate::check::linear::{CheckError, CheckOptions, LinearReport, Status, check_file};
use crate::cli::CheckArgs;
use crate::exit::Exit;

/// Why `raftdrill check` could not give a verdict.
#[derive(Debug, thiserror::Error)]
pub enum CheckCmdError {
    /// The history is missing or malformed (exit 2).
    #[error(transparent)]
    Input(#[from] CheckError),
    /// The verdict could not be written beside the history (exit 4).
    #[error("cannot write the report into {}: {error}", dir.display())]
    Write {
        /// The folder.
        dir: PathBuf,
        /// Why.
        error: std::io::Error,
    },
}

impl CheckCmdError {
    /// The exit code.
    pub fn exit(&self) -> Exit {
        match self {
            CheckCmdError::Input(_) => Exit::Usage,
            CheckCmdError::Write { .. } => Exit::CannotRun,
        }
    }
}

/// The exit code of a verdict: 0 linearizable, 3 anomaly, 4 undecided.
pub fn exit_for(status: Status) -> Exit {
    match status {
        Status::Ok => Exit::Pass,
        Status::Anomaly => Exit::DataAnomaly,
        Status::Unknown => Exit::CannotRun,
    }
}

/// What the command prints: one line per failing key, one per undecided key, the summary.
pub fn lines(report: &LinearReport, dir: &Path) -> Vec<String> {
    let mut out = Vec::with_capacity(report.anomalies.len() + report.undecided.len() + 2);
    for a in &report.anomalies {
        out.push(format!(
            "anomaly  key {}: {}; picture: {}",
            a.key,
            a.explanation,
            dir.join(&a.file).display()
        ));
    }
    for u in &report.undecided {
        out.push(format!(
            "unknown  key {}: {} ({} ops)",
            u.key, u.reason, u.ops
        ));
    }
    out.push(report.headline());
    out
}

/// Runs the check on a run folder or a `history.jsonl` file.
pub fn run(args: CheckArgs) -> Result<Exit, CheckCmdError> {
    let opts = CheckOptions {
        time_limit: args.time_limit,
        threads: args.threads,
        ..CheckOptions::default()
    };
    let report = check_file(&args.path, &opts)?;
    let dir = report
        .history
        .as_deref()
        .and_then(Path::parent)
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    // `history.jsonl` given bare has an empty parent: the current folder.
    let dir = if dir.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        dir
    };
    let written = report
        .write_files(&dir)
        .map_err(|error| CheckCmdError::Write {
            dir: dir.clone(),
            error,
        })?;
    for line in lines(&report, &dir) {
        println!("{line}");
    }
    if let Some(json) = written.first() {
        println!("report: {}", json.display());
    }
    Ok(exit_for(report.status))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::check::linear::REPORT_FILE;

    const WRITE: &str = r#"{"id":1,"worker":0,"kind":"update","key":"k","value":"a","invoke_us":0,"complete_us":10,"outcome":"ok","applied":true}"#;
    const WRITE_B: &str = r#"{"id":2,"worker":0,"kind":"update","key":"k","value":"b","invoke_us":20,"complete_us":30,"outcome":"ok","applied":true}"#;
    const READ_A: &str = r#"{"id":3,"worker":1,"kind":"read","key":"k","returned":"a","invoke_us":40,"complete_us":50,"outcome":"ok"}"#;

    fn args(path: &Path) -> CheckArgs {
        CheckArgs {
            path: path.to_path_buf(),
            time_limit: Duration::from_secs(30),
            threads: 1,
        }
    }

    fn folder(lines: &[&str]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("history.jsonl"), lines.join("\n")).unwrap();
        dir
    }

    #[test]
    fn a_stale_read_exits_3_and_leaves_the_report_and_the_picture() {
        let dir = folder(&[WRITE, WRITE_B, READ_A]);
        assert_eq!(run(args(dir.path())).unwrap(), Exit::DataAnomaly);
        assert!(dir.path().join(REPORT_FILE).is_file());
        assert!(dir.path().join("anomaly-k.svg").is_file());
    }

    #[test]
    fn a_linearizable_history_exits_0_given_as_a_file() {
        let dir = folder(&[WRITE, WRITE_B]);
        let file = dir.path().join("history.jsonl");
        assert_eq!(run(args(&file)).unwrap(), Exit::Pass);
        let json = std::fs::read_to_string(dir.path().join(REPORT_FILE)).unwrap();
        assert!(json.contains(r#""status": "ok""#), "{json}");
    }

    #[test]
    fn an_undecided_history_exits_4() {
        let dir = folder(&[WRITE, WRITE_B, READ_A]);
        let mut a = args(dir.path());
        a.time_limit = Duration::ZERO;
        assert_eq!(run(a).unwrap(), Exit::CannotRun);
    }

    #[test]
    fn a_malformed_line_exits_2_naming_the_line_and_the_field() {
        let bad = READ_A.replace(r#""outcome":"ok""#, r#""outcome":"okk""#);
        let dir = folder(&[WRITE, &bad]);
        let err = run(args(dir.path())).unwrap_err();
        assert_eq!(err.exit(), Exit::Usage);
        let text = err.to_string();
        assert!(
            text.contains("history.jsonl:2: field \"outcome\""),
            "{text}"
        );
    }

    #[test]
    fn a_missing_path_exits_2_with_one_line() {
        let err = run(args(Path::new("/nonexistent/run"))).unwrap_err();
        assert_eq!(err.exit(), Exit::Usage);
        assert!(!err.to_string().contains('\n'));
    }

    #[test]
    fn the_printed_lines_name_each_failing_key_and_end_with_the_summary() {
        let dir = folder(&[WRITE, WRITE_B, READ_A]);
        let report = check_file(dir.path(), &CheckOptions::default()).unwrap();
        let out = lines(&report, dir.path());
        assert_eq!(out.len(), 2);
        assert!(
            out[0].starts_with("anomaly  key k: read of a (op 3"),
            "{}",
            out[0]
        );
        assert!(out[0].ends_with("anomaly-k.svg"), "{}", out[0]);
        assert!(
            out[1].contains("NOT linearizable: 1 keys, 3 operations"),
            "{}",
            out[1]
        );
    }
}
