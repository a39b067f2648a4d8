//! Reading history files: good lines parse, a bad line is named by its number and field, a
//! missing file or folder is a one-line error.

use std::path::Path;

use super::super::{CheckError, check_file, read_history};
use super::*;

const GOOD: &str = r#"{"id":1,"worker":0,"kind":"update","key":"k","value":"a","invoke_us":0,"complete_us":10,"outcome":"ok","applied":true}"#;
const READ: &str = r#"{"id":2,"worker":1,"kind":"read","key":"k","returned":"a","invoke_us":20,"complete_us":30,"outcome":"ok"}"#;

/// Writes `lines` as a history file and reads it back.
fn read_lines(lines: &[&str]) -> (tempfile::TempDir, Result<Vec<HistoryRecord>, CheckError>) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.jsonl");
    std::fs::write(&path, lines.join("\n")).unwrap();
    let result = read_history(&path);
    (dir, result)
}

/// The line and problem of a malformed file.
#[track_caller]
fn malformed(lines: &[&str]) -> (usize, Option<String>, String, String) {
    match read_lines(lines).1 {
        Err(e @ CheckError::Malformed { .. }) => {
            let text = e.to_string();
            let CheckError::Malformed { line, problem, .. } = e else {
                unreachable!()
            };
            (line, problem.field, problem.message, text)
        }
        other => panic!("expected a malformed line, got {other:?}"),
    }
}

#[test]
fn records_of_the_loadgen_format_parse_and_blank_lines_are_skipped() {
    let (_dir, records) = read_lines(&[GOOD, "", READ, "  "]);
    let records = records.unwrap();
    assert_eq!(records.len(), 2);
    assert_eq!(records[1].returned.as_deref(), Some("a"));
    assert_eq!(check(&records).status, Status::Ok);
}

#[test]
fn an_unknown_outcome_names_its_line_and_field() {
    let bad = READ.replace(r#""outcome":"ok""#, r#""outcome":"okk""#);
    let lines: Vec<&str> = [GOOD; 16].into_iter().chain([bad.as_str()]).collect();
    let (line, field, message, text) = malformed(&lines);
    assert_eq!(line, 17);
    assert_eq!(field.as_deref(), Some("outcome"));
    assert!(message.contains("unknown variant \"okk\""), "{message}");
    assert!(
        text.ends_with(&format!("history.jsonl:17: field \"outcome\": {message}")),
        "{text}"
    );
    assert!(!text.contains('\n') && !text.contains("at line"), "{text}");
}

#[test]
fn a_missing_field_a_wrong_type_and_broken_json_are_named() {
    let no_key = GOOD.replace(r#""key":"k","#, "");
    let (line, field, message, _) = malformed(&[READ, &no_key]);
    assert_eq!(
        (line, field.as_deref(), message.as_str()),
        (2, Some("key"), "missing")
    );

    let text_time = GOOD.replace(r#""invoke_us":0"#, r#""invoke_us":"soon""#);
    let (line, field, _, _) = malformed(&[&text_time]);
    assert_eq!((line, field.as_deref()), (1, Some("invoke_us")));

    let (line, field, message, _) = malformed(&[GOOD, READ, r#"{"id":3,"#]);
    assert_eq!((line, field), (3, None));
    assert!(message.contains("not valid JSON"), "{message}");

    let (line, _, message, _) = malformed(&[&format!("{GOOD} {{}}")]);
    assert_eq!(line, 1);
    assert!(message.contains("after the record"), "{message}");
}

#[test]
fn records_that_break_the_contract_are_named() {
    let backwards = READ.replace(r#""complete_us":30"#, r#""complete_us":5"#);
    let (line, field, _, _) = malformed(&[GOOD, &backwards]);
    assert_eq!((line, field.as_deref()), (2, Some("complete_us")));

    let no_value = GOOD.replace(r#""value":"a","#, "");
    let (_, field, _, _) = malformed(&[&no_value]);
    assert_eq!(field.as_deref(), Some("value"));

    let rmw = r#"{"id":3,"worker":0,"kind":"rmw","key":"k","value":"b","expect":"a","invoke_us":0,"complete_us":10,"outcome":"ok"}"#;
    let (_, field, _, _) = malformed(&[rmw]);
    assert_eq!(field.as_deref(), Some("applied"));

    // Records handed in directly are judged the same way, by position.
    let mut bad = write(5, 0, "a", 10, 20);
    bad.complete_us = 1;
    let err = check_records(&[write(1, 0, "x", 0, 1), bad], &CheckOptions::default()).unwrap_err();
    assert!(
        matches!(
            err,
            CheckError::Record {
                index: 1,
                id: 5,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn missing_files_and_folders_without_a_history_are_one_line_errors() {
    let err = check_file(
        Path::new("/nonexistent/history.jsonl"),
        &CheckOptions::default(),
    )
    .unwrap_err();
    assert!(matches!(err, CheckError::Read { .. }), "{err:?}");
    assert!(
        err.to_string()
            .starts_with("/nonexistent/history.jsonl: cannot read")
    );

    let dir = tempfile::tempdir().unwrap();
    let err = check_file(dir.path(), &CheckOptions::default()).unwrap_err();
    assert!(matches!(err, CheckError::NoHistory { .. }), "{err:?}");
    assert!(!err.to_string().contains('\n'));
}

#[test]
fn a_run_folder_is_read_through_its_history_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.jsonl");
    std::fs::write(&path, format!("{GOOD}\n{READ}\n")).unwrap();
    let report = check_file(dir.path(), &CheckOptions::default()).unwrap();
    assert_eq!(report.status, Status::Ok);
    assert_eq!(report.history.as_deref(), Some(path.as_path()));
    assert_eq!((report.keys, report.ops), (1, 2));
}
