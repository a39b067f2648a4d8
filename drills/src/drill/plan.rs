//! Nodes and load on hosts (`--hosts FILE`, `[[host]]`, `[load] from`), checked against the
//! scenario before anything starts.

use super::remote_load;
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
    /// Why `scenario` cannot run on these hosts, one line each (empty when it can).
    pub fn refusals(&self, scenario: &Scenario) -> Vec<String> {
        let mut out = support::refusals(scenario, PlacementKind::Hosts);
        match self.file.split(&scenario.load.from) {
            Err(e) => out.insert(0, e),
            Ok((nodes, load)) => {
                if let Some(Err(e)) = (!load.is_empty())
                    .then(|| remote_load::generator_flags(scenario, &[], 0, load.len(), 0))
                {
                    out.push(e);
                }
                let hosts = nodes.host.len() as u64;
                if scenario.cluster.nodes != hosts {
                    let load = if scenario.load.from.is_empty() {
                        String::new()
                    } else {
                        format!(
                            " that do not run the load ({})",
                            scenario.load.from.join(", ")
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
