//! Nodes and load on hosts (`--hosts FILE`, `[[host]]`, `[load] from`), checked against the
//! scenario before anything starts.

use crate::fault::support;
use crate::placement::PlacementKind;
use crate::scenario::Scenario;

/// Nodes on hosts: the hosts file and the port every node listens on.
#[derive(Debug, Clone)]
pub struct HostPlan {
    /// The hosts.
    pub file: crate::hosts::HostsFile,
    /// The node port at each host's address.
    pub port: u16,
}

impl HostPlan {
    /// The hosts a run of `scenario` uses (`--hosts FILE` over the scenario's own `[[host]]`
    /// tables), or none for this machine; either way checked against what the scenario asks
    /// of that placement (`without_faults`: its faults will not run, as in a capacity search
    /// without `--with-faults`). `[load] from` without hosts is an error. Each error is one
    /// line, for exit 2: nothing has started.
    pub fn for_run(
        scenario: &Scenario,
        file: Option<&std::path::Path>,
        port: u16,
        without_faults: bool,
    ) -> Result<Option<HostPlan>, String> {
        let hosts = match file {
            Some(path) => Some((
                crate::hosts::HostsFile::load(path).map_err(|e| e.to_string())?,
                path.display().to_string(),
            )),
            None => scenario
                .hosts
                .clone()
                .map(|f| (f, "the scenario's [[host]] tables".to_string())),
        };
        let mut checked = scenario.clone();
        if without_faults {
            checked.faults.clear();
        }
        let Some((file, origin)) = hosts else {
            let refused = support::refusals(&checked, PlacementKind::Local);
            if !refused.is_empty() {
                return Err(format!(
                    "{} cannot run on this machine: {}",
                    scenario.name,
                    refused.join("; ")
                ));
            }
            if !scenario.load_from.is_empty() {
                return Err(format!(
                    "{}: [load] from names hosts ({}); give them with --hosts FILE or [[host]] tables",
                    scenario.name,
                    scenario.load_from.join(", ")
                ));
            }
            return Ok(None);
        };
        let plan = HostPlan { file, port };
        let refused = plan.refusals(&checked);
        if !refused.is_empty() {
            return Err(format!(
                "{} cannot run on the hosts of {origin}: {}",
                scenario.name,
                refused.join("; ")
            ));
        }
        Ok(Some(plan))
    }

    /// Why `scenario` cannot run on these hosts, one line each (empty when it can).
    pub fn refusals(&self, scenario: &Scenario) -> Vec<String> {
        let mut out = support::refusals(scenario, PlacementKind::Hosts);
        match self.file.split(&scenario.load_from) {
            Err(e) => out.insert(0, e),
            Ok((nodes, load)) => {
                if let Some(Err(e)) = (!load.is_empty()).then(|| scenario.load.share(0, load.len()))
                {
                    out.push(e.to_string());
                }
                let hosts = nodes.host.len() as u64;
                if scenario.cluster.nodes != hosts {
                    let load = if scenario.load_from.is_empty() {
                        String::new()
                    } else {
                        format!(
                            " that do not run the load ({})",
                            scenario.load_from.join(", ")
                        )
                    };
                    out.insert(
                        0,
                        format!(
                            "the scenario has {} nodes and the hosts file {hosts} hosts{load} (one node per host)",
                            scenario.cluster.nodes
                        ),
                    );
                }
            }
        }
        out
    }
}
