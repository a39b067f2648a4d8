//! The engines that drive workers: goose users (the default) or plain tokio tasks.
//!
//! Goose has neither an open-loop mode nor a per-request hook, so it is used as the worker
//! pool: it starts `pool` users at once and each user's single transaction calls
//! [`Driver::step`], which waits for the next slot, runs it and records it into our own
//! histograms. When goose's report is asked for (or goose prints to the console), each
//! operation is also handed to goose with `record_custom_request_duration`, under method `KV`
//! and the kind's name, so the report shows the same latencies; otherwise goose keeps no
//! metrics at all. Goose batches those records per user, so with the report the goose engine
//! costs about 1 µs of CPU per operation more than plain tasks (about 12.5 against 11.3;
//! `results/baselines/loadgen.md`). The users share one HTTP client: goose would build one per
//! user (reading the system's root certificates each time), and none of them sends a request.
//!
//! Goose keeps process-wide state: a killswitch that stops "the" attack, and a Ctrl-C handler
//! whose second press calls `process::exit`. So only one goose attack runs at a time here
//! (a static lock), the run stops goose through the killswitch, and a program that wants
//! Ctrl-C for itself calls [`claim_ctrl_c`] before any attack: goose installs its handler
//! through `ctrlc::set_handler`, which installs at most one handler per process, so goose's
//! later attempt fails harmlessly and Ctrl-C stays with the caller.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use goose::client::GooseClientBuilder;
use goose::config::GooseConfiguration;
use goose::prelude::*;
use serde::{Deserialize, Serialize};
use tokio::task::JoinSet;

use crate::driver::{Driver, Step};
use crate::outcome::Outcome;
use crate::target::Target;

/// Which engine runs the workers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Engine {
    /// Goose users; can write goose's HTML report.
    #[default]
    Goose,
    /// Plain tokio tasks with the same scheduling and metrics; no goose report.
    Tasks,
}

impl Engine {
    /// The name on the command line and in scenario files.
    pub fn as_str(self) -> &'static str {
        match self {
            Engine::Goose => "goose",
            Engine::Tasks => "tasks",
        }
    }
}

impl std::str::FromStr for Engine {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "goose" => Ok(Engine::Goose),
            "tasks" => Ok(Engine::Tasks),
            other => Err(format!(
                "unknown engine {other:?} (expected goose or tasks)"
            )),
        }
    }
}

/// Goose could not run.
#[derive(Debug, thiserror::Error)]
#[error("goose failed: {0}")]
pub struct EngineError(String);

/// Only one goose attack may run in a process at a time.
static GOOSE_LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// How long a user whose work is done waits before goose looks at it again.
const IDLE_PARK: Duration = Duration::from_millis(50);

/// Run `pool` tokio tasks until every one is finished.
pub(crate) async fn run_tasks<T: Target>(driver: Arc<Driver<T>>, pool: usize) {
    let mut set = JoinSet::new();
    for worker in 0..pool {
        let d = driver.clone();
        set.spawn(async move { while let Step::Done { .. } = d.step(worker).await {} });
    }
    while let Some(joined) = set.join_next().await {
        if let Err(e) = joined {
            tracing::error!(error = %e, "a load worker panicked");
        }
    }
}

/// Run `pool` goose users until the driver's stop token fires.
pub(crate) async fn run_goose<T: Target>(
    driver: Arc<Driver<T>>,
    pool: usize,
    host: String,
    report: Option<PathBuf>,
    quiet: bool,
) -> Result<(), EngineError> {
    let _only_attack = GOOSE_LOCK.lock().await;
    // Someone reads goose's metrics only in its report or on the console.
    let record = report.is_some() || !quiet;
    let config = goose_config(pool, host, report, quiet, record);
    let attack = GooseAttack::initialize_with_config(config)
        .map_err(|e| EngineError(e.to_string()))?
        .set_client_builder_without_cookies(GooseClientBuilder::new().without_cookies())
        .map_err(|e| EngineError(e.to_string()))?
        .register_scenario(user_scenario(driver.clone(), record));

    // Goose stops on its killswitch only; keep pulling it once our run is stopped, since goose
    // clears it when an attack starts.
    let stop = driver.stop.clone();
    let killer = tokio::spawn(async move {
        stop.cancelled().await;
        loop {
            goose::trigger_killswitch("raftdrill: load finished");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    let result = attack.execute().await;
    killer.abort();
    goose::reset_killswitch();
    result.map(|_| ()).map_err(|e| EngineError(e.to_string()))
}

/// Goose's configuration for a pool of `pool` users; goose keeps metrics only when they
/// are to be `record`ed.
fn goose_config(
    pool: usize,
    host: String,
    report: Option<PathBuf>,
    quiet: bool,
    record: bool,
) -> GooseConfiguration {
    let mut config = GooseConfiguration::default();
    config.host = Some(host);
    config.users = Some(pool);
    // Start every user within about 10 ms: they are a pool, not a ramp.
    config.increase_rate = Some((pool.max(1) * 100).to_string());
    config.no_telnet = true;
    config.quiet = u8::from(quiet);
    config.no_print_metrics = quiet;
    config.no_transaction_metrics = true;
    config.no_scenario_metrics = true;
    config.no_metrics = !record;
    config.report_file = report
        .map(|p| vec![p.to_string_lossy().into_owned()])
        .unwrap_or_default();
    config
}

/// The one scenario of every user: a transaction that runs one [`Driver::step`] and, when
/// goose `record`s, hands goose the operation's latency.
fn user_scenario<T: Target>(d: Arc<Driver<T>>, record: bool) -> Scenario {
    let step: TransactionFunction = Arc::new(move |user| {
        let d = d.clone();
        Box::pin(async move {
            match d.step(user.weighted_users_index).await {
                Step::Done {
                    kind,
                    latency,
                    outcome,
                } if record => {
                    let ok = outcome == Outcome::Ok;
                    let error = (!ok).then_some(if outcome == Outcome::Fail {
                        "fail"
                    } else {
                        "unknown"
                    });
                    user.record_custom_request_duration(
                        "KV",
                        kind.as_str(),
                        latency,
                        ok,
                        None,
                        error,
                    )
                    .await?;
                }
                Step::Done { .. } => {}
                Step::Finished => {
                    tokio::select! {
                        _ = tokio::time::sleep(IDLE_PARK) => {}
                        _ = d.stop.cancelled() => tokio::time::sleep(IDLE_PARK).await,
                    }
                }
            }
            Ok(())
        })
    });
    scenario!("raftdrill").register_transaction(Transaction::new(step).set_name("op"))
}

/// Claims Ctrl-C (SIGINT) for `on_ctrl_c` before goose can: call it once, early, in a program
/// that runs goose attacks and wants a clean stop of its own (goose's handler would stop the
/// attack on the first press and `process::exit` on the second). `on_ctrl_c` runs on a thread
/// of its own at every press.
pub fn claim_ctrl_c(on_ctrl_c: impl FnMut() + Send + 'static) -> Result<(), String> {
    ctrlc::set_handler(on_ctrl_c).map_err(|e| e.to_string())
}
