//! `raftdrill export`: parse, export, print; a scenario that cannot be exported as asked is a
//! usage error (exit 2).

use crate::cli::{ChaosMeshArgs, ExportArgs, ExportFormat};
use crate::cmd::CmdError;
use crate::exit::Exit;
use crate::export::chaos_mesh::{self, ChaosMeshOptions};
use crate::scenario::Scenario;

/// Runs `raftdrill export`.
pub fn run(args: ExportArgs) -> Result<Exit, CmdError> {
    match args.format {
        ExportFormat::ChaosMesh(a) => chaos_mesh(a),
    }
}

fn chaos_mesh(a: ChaosMeshArgs) -> Result<Exit, CmdError> {
    let scenario = Scenario::find(a.scenario.as_deref())?;
    let opts = ChaosMeshOptions {
        name: a.name,
        namespace: a.namespace,
        selector: a.selector,
        statefulset: a.statefulset,
        leader: a.leader_label,
        follower: a.follower_label,
        volume_path: a.volume_path,
        skip_unsupported: a.skip_unsupported,
    };
    let export =
        chaos_mesh::export(&scenario, &opts).map_err(|e| CmdError::Usage(e.to_string()))?;
    for s in &export.skipped {
        eprintln!("skipped: {} ({})", s.fault, s.reason);
    }
    for n in &export.notes {
        eprintln!("note: {n}");
    }
    let yaml = chaos_mesh::to_yaml(&export, &scenario)
        .map_err(|e| CmdError::CannotRun(format!("cannot write the YAML: {e}")))?;
    match &a.out {
        Some(path) => std::fs::write(path, yaml)
            .map_err(|e| CmdError::CannotRun(format!("{}: {e}", path.display())))?,
        None => crate::cmd::shell::print(yaml.as_bytes())
            .map_err(|e| CmdError::CannotRun(e.to_string()))?,
    }
    Ok(Exit::Pass)
}
