//! Which faults a (placement, store) pair can carry, checked before anything starts: every
//! combination either works or is refused here, with its reason, so a run never finds out
//! half-way that a fault cannot fire.

use crate::links::mode_of;
use crate::placement::PlacementKind;
use crate::proxy::LinkMode;
use crate::scenario::{Action, Scenario};
use crate::store::TargetKind;

/// Why `action` cannot run on `store` placed at `placement`; `None` when it can.
pub fn refusal(
    action: &Action,
    store: TargetKind,
    placement: PlacementKind,
) -> Option<&'static str> {
    use PlacementKind::{Hosts, Local};
    use TargetKind::{Etcd, Reference};
    match (action, store, placement) {
        (
            Action::Kill
            | Action::Stop
            | Action::Pause
            | Action::Restart
            | Action::Isolate
            | Action::Partition { .. }
            | Action::Blackhole { .. }
            | Action::Delay { .. }
            | Action::Bandwidth { .. }
            | Action::Heal
            | Action::CpuLimit { .. }
            | Action::Corrupt { .. },
            _,
            _,
        ) => None,
        (Action::Reset { .. }, _, _) => None,
        (Action::Clock { .. }, Etcd, _) => Some(
            "etcd is Go, which reads the clock through the vDSO without libc: libfaketime cannot \
             reach it (and raftdrill does not set a host's own clock)",
        ),
        (Action::Clock { .. }, Reference, _) => None,
        (Action::Loss { .. }, _, Local) => Some(crate::placement::LOSS_LOCALLY),
        (Action::Loss { .. }, _, Hosts) => None,
        (Action::Wipe | Action::RemoveNode, Etcd, Hosts) => {
            Some("wipes and member removals on hosts are made for the reference store only")
        }
        (Action::Wipe | Action::RemoveNode, _, _) => None,
        (Action::WipeInPlace, Etcd, _) => {
            Some("etcd cannot restart a member empty under its old identity")
        }
        (Action::WipeInPlace, Reference, _) => None,
        (Action::AddNode, _, Hosts) => {
            Some("hosts run one node each: a new node has no host of its own")
        }
        (Action::AddNode, _, Local) => None,
        (Action::PowerLoss { .. }, Etcd, _) => Some(
            // A power loss of the WAL alone would leave the database ahead of it, a state no
            // real power loss makes.
            "only etcd's WAL can sit on the fault-injecting disk (its database is memory-mapped)",
        ),
        (
            Action::DiskDelay { .. }
            | Action::DiskStall
            | Action::DiskError { .. }
            | Action::DiskFull
            | Action::PowerLoss { .. },
            _,
            Hosts,
        ) => {
            Some("disk faults need the fault-injecting filesystem, which runs only on this machine")
        }
        (
            Action::DiskDelay { .. }
            | Action::DiskStall
            | Action::DiskError { .. }
            | Action::DiskFull
            | Action::PowerLoss { .. },
            _,
            Local,
        ) => None,
    }
}

/// The faults of `scenario` that cannot run on its store at `placement`, one line each:
/// `fault N (action): why`.
pub fn refusals(scenario: &Scenario, placement: PlacementKind) -> Vec<String> {
    scenario
        .faults
        .iter()
        .enumerate()
        .filter_map(|(i, f)| {
            let why = refusal(&f.action, scenario.cluster.target, placement)?;
            Some(format!("fault {} ({}): {why}", i + 1, f.action.name()))
        })
        .collect()
}

/// The link modes `scenario` puts links in beyond cuts (delays, bandwidth caps, resets): on
/// hosts, tc makes them where it can and link proxies elsewhere, so hosts are probed for them.
pub fn link_modes(scenario: &Scenario) -> Vec<LinkMode> {
    let mut modes: Vec<LinkMode> = Vec::new();
    for f in &scenario.faults {
        if let Some((m, _)) = mode_of(&f.action)
            && m != LinkMode::Blackhole
            && !modes.contains(&m)
        {
            modes.push(m);
        }
    }
    modes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::builtin;

    #[test]
    fn every_action_on_every_pair_is_decided_and_disk_faults_stay_on_this_machine() {
        let s = builtin("disk-stall-leader").unwrap().unwrap();
        assert!(refusals(&s, PlacementKind::Local).is_empty());
        let on_hosts = refusals(&s, PlacementKind::Hosts);
        assert_eq!(on_hosts.len(), 1, "{on_hosts:?}");
        assert!(
            on_hosts[0].starts_with("fault 1 (disk-stall): "),
            "{on_hosts:?}"
        );
        let mut etcd = builtin("power-loss-all").unwrap().unwrap();
        etcd.cluster.target = TargetKind::Etcd;
        let why = refusals(&etcd, PlacementKind::Local);
        assert!(why.iter().all(|w| w.contains("WAL")), "{why:?}");
        assert!(!why.is_empty());
        assert!(
            refusal(
                &Action::WipeInPlace,
                TargetKind::Reference,
                PlacementKind::Hosts
            )
            .is_none()
        );
        assert!(refusal(&Action::WipeInPlace, TargetKind::Etcd, PlacementKind::Local).is_some());
        assert!(refusal(&Action::AddNode, TargetKind::Etcd, PlacementKind::Local).is_none());
        assert!(
            refusal(
                &Action::AddNode,
                TargetKind::Reference,
                PlacementKind::Hosts
            )
            .is_some()
        );
    }

    #[test]
    fn clock_faults_run_on_reference_nodes_only_and_say_why_for_etcd() {
        let mut s = builtin("slow-clock-leader").unwrap().unwrap();
        assert!(refusals(&s, PlacementKind::Local).is_empty());
        assert!(refusals(&s, PlacementKind::Hosts).is_empty());
        s.cluster.target = TargetKind::Etcd;
        for at in [PlacementKind::Local, PlacementKind::Hosts] {
            let etcd = refusals(&s, at);
            assert!(etcd[0].starts_with("fault 1 (clock): "), "{etcd:?}");
            assert!(etcd[0].contains("vDSO"), "{etcd:?}");
        }
        let corrupt = builtin("corrupt-follower-log").unwrap().unwrap();
        assert!(refusals(&corrupt, PlacementKind::Hosts).is_empty());
    }
}
