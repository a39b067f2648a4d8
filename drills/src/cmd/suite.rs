//! `raftdrill suite`: every built-in scenario (or every scenario file of a folder), one after
//! another, each on a fresh cluster, in one folder with an index (`suite.md`, `suite.html`,
//! `suite.json`); the exit code is the worst of the runs.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use tokio_util::sync::CancellationToken;

use super::CmdError;
use crate::cli::SuiteArgs;
use crate::cmd::repeat::{self, RepeatOptions};
use crate::drill::{Drill, HostPlan, RunOptions, results_dir};
use crate::exit::Exit;
use crate::fault::support::refusals;
use crate::live::follow::follow;
use crate::placement::PlacementKind;
use crate::report::ReportError;
use crate::report::suite::{SuiteIndex, SuiteRow};
use crate::scenario::{BUILTIN, Scenario, builtin};

/// The scenarios of the library or of `dir`, every one parsed before anything runs.
pub fn library(dir: Option<&Path>) -> Result<Vec<Scenario>, CmdError> {
    let Some(dir) = dir else {
        return BUILTIN
            .iter()
            .map(|(name, _)| builtin(name).expect("listed").map_err(CmdError::from))
            .collect();
    };
    let entries = std::fs::read_dir(dir)
        .map_err(|e| CmdError::Usage(format!("{}: cannot read the folder: {e}", dir.display())))?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(CmdError::Usage(format!(
            "{}: no scenario files (*.toml)",
            dir.display()
        )));
    }
    let scenarios: Vec<Scenario> = files
        .iter()
        .map(|f| Scenario::from_file(f))
        .collect::<Result<_, _>>()?;
    for (i, s) in scenarios.iter().enumerate() {
        if s.hosts.is_some() || !s.load_from.is_empty() {
            return Err(CmdError::Usage(format!(
                "{}: {} has [[host]] tables or [load] from; a suite runs on this machine (run it with `raftdrill run`)",
                dir.display(),
                s.name
            )));
        }
        // Checked as `raftdrill run` checks it: what this machine cannot carry is refused
        // before anything runs.
        HostPlan::for_run(s, None, 0, false)
            .map_err(|e| CmdError::Usage(format!("{}: {e}", dir.display())))?;
        if scenarios[..i].iter().any(|o| o.name == s.name) {
            return Err(CmdError::Usage(format!(
                "{}: two scenario files are named {:?}; each needs its own folder in the suite",
                dir.display(),
                s.name
            )));
        }
    }
    Ok(scenarios)
}

/// The scenarios `--only` names, in library order; an unknown name is an error.
pub fn select(all: Vec<Scenario>, only: &[String]) -> Result<Vec<Scenario>, CmdError> {
    if let Some(unknown) = only.iter().find(|n| !all.iter().any(|s| &s.name == *n)) {
        let known: Vec<&str> = all.iter().map(|s| s.name.as_str()).collect();
        return Err(CmdError::Usage(format!(
            "--only: no scenario named {unknown:?} (known: {})",
            known.join(", ")
        )));
    }
    Ok(all
        .into_iter()
        .filter(|s| only.is_empty() || only.contains(&s.name))
        .collect())
}

/// Splits off the scenarios this machine cannot carry (packet loss needs hosts; a suite runs
/// here): named with `--only`, one is an error; otherwise each is left out, with why.
pub fn here_or_not(
    all: Vec<Scenario>,
    only: &[String],
) -> Result<(Vec<Scenario>, Vec<String>), CmdError> {
    let (mut here, mut left_out) = (Vec::new(), Vec::new());
    for s in all {
        match refusals(&s, PlacementKind::Local).into_iter().next() {
            None => here.push(s),
            Some(why) if only.contains(&s.name) => {
                return Err(CmdError::Usage(format!(
                    "{}: {why} (run it with `raftdrill run {} --hosts FILE`)",
                    s.name, s.name
                )));
            }
            Some(why) => left_out.push(format!("{}: {why}", s.name)),
        }
    }
    Ok((here, left_out))
}

/// Runs the suite; `stop` (Ctrl-C) ends it after the scenario in progress.
pub async fn run(args: SuiteArgs, exe: PathBuf, stop: CancellationToken) -> Result<Exit, CmdError> {
    let (scenarios, left_out) = here_or_not(
        select(library(args.dir.as_deref())?, &args.only)?,
        &args.only,
    )?;
    for l in &left_out {
        eprintln!("raftdrill suite: left out (it needs hosts) {l}");
    }
    let scenarios: Vec<Scenario> = match args.duration {
        Some(d) if d.is_zero() => {
            return Err(CmdError::Usage("--duration must be more than 0".into()));
        }
        Some(d) => scenarios.into_iter().map(|s| s.fit_to(d)).collect(),
        None => scenarios,
    };
    let started = std::time::SystemTime::now();
    let root = results_dir(args.out.as_deref(), "suite", started);
    std::fs::create_dir_all(&root).map_err(|source| ReportError::Io {
        path: root.clone(),
        source,
    })?;
    let started_at = humantime::format_rfc3339_seconds(started).to_string();
    let mut rows = Vec::new();
    let mut index = SuiteIndex::new(started_at.clone(), args.repeat, None, Vec::new());
    for (i, s) in scenarios.iter().enumerate() {
        if stop.is_cancelled() {
            break;
        }
        eprintln!(
            "raftdrill suite: {}/{} {} ({}s{})",
            i + 1,
            scenarios.len(),
            s.name,
            s.load.duration.as_secs_f64(),
            if args.repeat > 1 {
                format!(" × {}", args.repeat)
            } else {
                String::new()
            }
        );
        let dir = s.name.clone();
        let outcome = one(s, &root.join(&dir), &args, &exe, stop.clone()).await;
        let row = match outcome {
            Ok(()) => SuiteRow::read(&root, &dir)?,
            Err(e) => SuiteRow::failed(&s.name, &dir, e.exit() as u8, e.to_string()),
        };
        rows.push(row);
        // After every scenario, so a suite cut short still leaves its index.
        index = SuiteIndex::new(
            started_at.clone(),
            args.repeat,
            args.duration.map(|d| d.as_secs_f64()),
            rows.clone(),
        );
        index.write(&root)?;
    }
    print!("{}", final_text(&index, &root));
    for l in &left_out {
        println!("left out (it needs hosts): {l}");
    }
    Ok(if stop.is_cancelled() {
        Exit::CannotRun
    } else {
        Exit::from_code(index.exit_code)
    })
}

/// One scenario of the suite: a run, or a repeat, in `dir`.
async fn one(
    s: &Scenario,
    dir: &Path,
    args: &SuiteArgs,
    exe: &Path,
    stop: CancellationToken,
) -> Result<(), CmdError> {
    if args.repeat > 1 {
        let opts = RepeatOptions {
            root: dir.to_path_buf(),
            times: args.repeat,
            seed: args.seed,
            duration: None,
            exe: exe.to_path_buf(),
            tui: false,
            etcd_bin: None,
            hosts: None,
            metrics: None,
        };
        return repeat::run(s, &opts, stop).await.map(|_| ());
    }
    let opts = RunOptions {
        out: Some(dir.to_path_buf()),
        seed: args.seed,
        duration: None,
        exe: exe.to_path_buf(),
        direct_links: false,
        progress: true,
        etcd_bin: None,
        hosts: None,
    };
    let drill = tokio::select! {
        d = Drill::prepare(s.clone(), opts) => d?,
        _ = stop.cancelled() => return Err(CmdError::Stopped),
    };
    follow(drill, false, None, stop).await?;
    Ok(())
}

/// The index as printed at the end.
fn final_text(index: &SuiteIndex, root: &Path) -> String {
    let mut o = String::from("\n");
    let _ = writeln!(
        o,
        "{:<20} {:<14} {:>9} {:>9} {:>10} {:>5}  consistency",
        "scenario", "verdict", "tps", "p99 ms", "recovery s", "lost"
    );
    for [name, verdict, tps, p99, recovery, lost, consistency] in index.cells() {
        let _ = writeln!(
            o,
            "{name:<20} {verdict:<14} {tps:>9} {p99:>9} {recovery:>10} {lost:>5}  {consistency}"
        );
    }
    let _ = writeln!(
        o,
        "\nsuite: exit {}  results: {}",
        index.exit_code,
        root.display()
    );
    o
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn only_names_known_scenarios() {
        let all = library(None).unwrap();
        assert_eq!(all.len(), BUILTIN.len());
        let two = select(all.clone(), &["leader-kill".into(), "baseline".into()]).unwrap();
        let names: Vec<&str> = two.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["baseline", "leader-kill"], "library order");
        let err = select(all.clone(), &["baseline".into(), "nope".into()]).unwrap_err();
        assert_eq!(err.exit(), Exit::Usage);
        assert!(err.to_string().contains("\"nope\""), "{err}");
        // The one that needs hosts is left out, with why; asked for by name, it is an error.
        let (here, left_out) = here_or_not(all.clone(), &[]).unwrap();
        assert_eq!(here.len(), BUILTIN.len() - 1);
        assert_eq!(left_out.len(), 1);
        assert!(
            left_out[0].starts_with("lossy-follower: fault 1 (loss)"),
            "{left_out:?}"
        );
        let only = ["lossy-follower".to_string()];
        let err = here_or_not(select(all, &only).unwrap(), &only).unwrap_err();
        assert_eq!(err.exit(), Exit::Usage);
        assert!(err.to_string().contains("--hosts FILE"), "{err}");
    }

    #[test]
    fn a_shortened_scenario_keeps_its_faults_inside_the_run() {
        let s = builtin("leader-kill").unwrap().unwrap();
        assert_eq!(s.load.duration, Duration::from_secs(40));
        let short = s.fit_to(Duration::from_secs(10));
        assert_eq!(short.load.duration, Duration::from_secs(10));
        let f = &short.faults[0];
        assert_eq!(
            f.at,
            Duration::from_millis(3750),
            "15 s of 40 is 3.75 s of 10"
        );
        assert_eq!(f.undo_after, Some(Duration::from_millis(2500)));
        assert_eq!(short.load.warmup, Duration::from_millis(750));
        assert_eq!(
            short.checks.recovery_within,
            Some(Duration::from_secs(3)),
            "an election is as slow in a short run"
        );
    }
}
