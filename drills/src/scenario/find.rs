//! Finding a scenario by what a user typed: a file, or the name of a built-in one; and
//! putting it on the store `--target` names.

use std::path::Path;

use super::{DEFAULT, Scenario, ScenarioError, TargetKind, builtin};

impl Scenario {
    /// The scenario `arg` names: a file if one exists at that path (or it ends in `.toml`),
    /// else a built-in name; the default drill without one.
    pub fn find(arg: Option<&str>) -> Result<Scenario, ScenarioError> {
        let name = arg.unwrap_or(DEFAULT);
        if Path::new(name).exists() || name.ends_with(".toml") {
            return Scenario::from_file(Path::new(name));
        }
        builtin(name).unwrap_or_else(|| {
            Err(ScenarioError {
                origin: name.to_string(),
                place: "0:0".into(),
                message:
                    "no such file, and no built-in scenario of that name (see `raftdrill scenarios`)"
                        .into(),
            })
        })
    }

    /// The scenario on `target` when `--target` gives one, checked for what that store can do.
    pub fn on_target(mut self, target: Option<TargetKind>) -> Result<Scenario, ScenarioError> {
        if let Some(t) = target {
            self.cluster.target = t;
        }
        self.check_target().map_err(|message| ScenarioError {
            origin: self.name.clone(),
            place: "--target".into(),
            message,
        })?;
        Ok(self)
    }
}
