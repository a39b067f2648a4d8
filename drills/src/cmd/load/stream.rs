//! `raftdrill load --stream`: a load generator for a controller on another machine
//! (`[load] from`). Its stdin brings the load's [`LoadSpec`] as one JSON line (this
//! generator's share, see [`LoadSpec::share`]), and its closing is the stop; its stdout
//! carries [`loadgen::stream::Line`]s: the clock's origin, then every completed operation and
//! each second's histograms as they come, then the end report. The run-local context comes
//! as flags: `--endpoints`, `--target`, `--seed`, `--start-at-unix-us`, `--out`.

use loadgen::stream::{EndWire, IntervalWire, Line, OpWire};
use loadgen::{LoadConfig, LoadRun, LoadSpec};
use tokio::io::{
    AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, BufWriter, Stdin, Stdout,
};
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use super::LoadCmdError;
use crate::cli::LoadArgs;
use crate::exit::Exit;

/// Runs the load stdin's first line describes; it stops early when stdin closes (the
/// controller is done, or gone) or on `stop`. The results folder keeps `latency.hlog` (and
/// `history.jsonl` when the spec keeps a history); the verdict is the controller's.
pub async fn run(args: &LoadArgs, stop: CancellationToken) -> Result<Exit, LoadCmdError> {
    let mut stdin = BufReader::new(tokio::io::stdin());
    let spec = read_spec(&mut stdin).await?;
    let mut load = LoadRun::new(config(args, spec)?).map_err(|e| match e {
        loadgen::LoadError::Config(m) => LoadCmdError::Usage(m),
        other => LoadCmdError::Run(other.to_string()),
    })?;
    let (end_tx, end_rx) = oneshot::channel::<EndWire>();
    let writer = spawn_writer(&mut load, end_rx);
    // Stdin closing is the controller's stop.
    let hangup = stop.child_token();
    let watcher = tokio::spawn(cancel_at_eof(stdin, hangup.clone()));
    let report = load.run(hangup).await;
    watcher.abort();
    let report = report.map_err(|e| LoadCmdError::Run(e.to_string()))?;
    let _ = end_tx.send(EndWire::from(&report));
    match writer.await {
        Ok(Ok(())) => Ok(Exit::Pass),
        Ok(Err(e)) => Err(LoadCmdError::Run(format!("the stream broke: {e}"))),
        Err(e) => Err(LoadCmdError::Run(format!("the stream writer failed: {e}"))),
    }
}

/// The spec on stdin's first line.
async fn read_spec(stdin: &mut BufReader<Stdin>) -> Result<LoadSpec, LoadCmdError> {
    let mut line = String::new();
    stdin
        .read_line(&mut line)
        .await
        .map_err(|e| LoadCmdError::Run(format!("cannot read the load's spec on stdin: {e}")))?;
    serde_json::from_str(&line)
        .map_err(|e| LoadCmdError::Usage(format!("the load's spec on stdin: {e}")))
}

/// `spec` run here: against the flags' endpoints, with their seed and start moment, its files
/// in the results folder (no goose report: nobody reads it on a load host).
fn config(args: &LoadArgs, spec: LoadSpec) -> Result<LoadConfig, LoadCmdError> {
    let dir = crate::drill::results_dir(args.out.as_deref(), "load", std::time::SystemTime::now());
    std::fs::create_dir_all(&dir)
        .map_err(|e| LoadCmdError::Run(format!("cannot create {}: {e}", dir.display())))?;
    let mut config = LoadConfig::new(spec, args.endpoints.clone());
    config.target = args.target;
    config.seed = args.seed;
    config.stream_ops = true;
    config.history_path = Some(dir.join("history.jsonl"));
    config.hlog_path = Some(dir.join("latency.hlog"));
    config.start_at = args
        .start_at_unix_us
        .map(|us| std::time::UNIX_EPOCH + std::time::Duration::from_micros(us));
    Ok(config)
}

/// Reads stdin to its end, then cancels `hangup`.
async fn cancel_at_eof(mut stdin: BufReader<Stdin>, hangup: CancellationToken) {
    let mut buf = [0u8; 64];
    while matches!(stdin.read(&mut buf).await, Ok(n) if n > 0) {}
    hangup.cancel();
}

/// Starts the one writer of stdout, so lines never interleave: the origin once the clock
/// starts, every operation and second of `load` as they come, then the `end` report.
fn spawn_writer(
    load: &mut LoadRun,
    end: oneshot::Receiver<EndWire>,
) -> tokio::task::JoinHandle<std::io::Result<()>> {
    let clock = load.clock();
    let mut ops = load.take_ops().expect("the config streams ops");
    let mut intervals = load.take_intervals();
    tokio::spawn(async move {
        let mut out = BufWriter::new(tokio::io::stdout());
        let origin = tokio::select! {
            _ = clock.started() => clock.origin_unix_us(),
            _ = intervals.recv() => None,
        };
        if let Some(unix_us) = origin {
            put(&mut out, Line::Origin { unix_us }).await?;
            out.flush().await?;
        }
        let (mut ops_open, mut secs_open, mut n) = (true, true, 0u32);
        while ops_open || secs_open {
            tokio::select! {
                op = ops.recv(), if ops_open => match op {
                    Some(op) => put(&mut out, Line::Op(OpWire::from(&op))).await?,
                    None => ops_open = false,
                },
                sec = intervals.recv(), if secs_open => match sec {
                    Some(sec) => {
                        n += 1;
                        let wire = IntervalWire::new(n, &sec)
                            .map_err(|e| std::io::Error::other(e.to_string()))?;
                        put(&mut out, Line::Interval(wire)).await?;
                        out.flush().await?;
                    }
                    None => secs_open = false,
                },
            }
        }
        if let Ok(end) = end.await {
            put(&mut out, Line::End(end)).await?;
        }
        out.flush().await
    })
}

async fn put(out: &mut BufWriter<Stdout>, line: Line) -> std::io::Result<()> {
    out.write_all(line.to_json_line().as_bytes()).await
}
