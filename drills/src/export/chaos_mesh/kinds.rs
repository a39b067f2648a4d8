//! One fault as Chaos Mesh objects: which pods it picks ([`Pods`]) and what it does there
//! ([`Chaos`]). A fault with no equivalent is a reason ([`String`]), not an object.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Value, json};

use super::ChaosMeshOptions;
use crate::scenario::{Action, ClockChange, Direction, DiskOp, Selector};

/// The Chaos Mesh kinds an export writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// PodChaos: pod-kill, pod-failure.
    Pod,
    /// NetworkChaos: partition, delay, loss, bandwidth.
    Network,
    /// IOChaos: latency, fault.
    Io,
    /// TimeChaos: a clock offset.
    Time,
    /// StressChaos: CPU workers.
    Stress,
}

impl Kind {
    /// The kind's name, which is also a Workflow template's `templateType`.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Pod => "PodChaos",
            Kind::Network => "NetworkChaos",
            Kind::Io => "IOChaos",
            Kind::Time => "TimeChaos",
            Kind::Stress => "StressChaos",
        }
    }

    /// The field of a Workflow template that holds the kind's spec.
    pub fn field(self) -> &'static str {
        match self {
            Kind::Pod => "podChaos",
            Kind::Network => "networkChaos",
            Kind::Io => "ioChaos",
            Kind::Time => "timeChaos",
            Kind::Stress => "stressChaos",
        }
    }
}

/// One Chaos Mesh object: its kind and its `spec`.
#[derive(Debug, Clone, PartialEq)]
pub struct Chaos {
    /// Which kind.
    pub kind: Kind,
    /// The spec, with `selector`, `mode` and `duration` filled in.
    pub spec: Value,
}

/// The label of the pod a StatefulSet names `<set>-<ordinal>`, set by Kubernetes itself.
pub const POD_NAME_LABEL: &str = "statefulset.kubernetes.io/pod-name";

/// The pods one side of a fault picks: a selector and a Chaos Mesh mode.
#[derive(Debug, Clone, PartialEq)]
pub struct Pods {
    labels: BTreeMap<String, String>,
    /// Label expressions a pod must also meet (`expressionSelectors`).
    expressions: Vec<Value>,
    /// The expressions that pick the store's other pods, where labels can say it: `NotIn`
    /// the one label of the leader, or the pod's name.
    others: Option<Vec<Value>>,
    mode: &'static str,
    value: Option<String>,
}

/// A label expression: `key` `operator` (`In`, `NotIn`) `values`.
fn expression(key: &str, operator: &str, values: Vec<String>) -> Value {
    json!({ "key": key, "operator": operator, "values": values })
}

impl Pods {
    fn selector(&self, namespace: &str) -> Value {
        let mut s = json!({ "namespaces": [namespace], "labelSelectors": self.labels });
        if !self.expressions.is_empty() {
            s["expressionSelectors"] = json!(self.expressions);
        }
        s
    }

    /// `selector`, `mode` and `value` of a spec (or of a NetworkChaos `target`).
    fn fields(&self, namespace: &str) -> Value {
        let mut f = json!({ "selector": self.selector(namespace), "mode": self.mode });
        if let Some(v) = &self.value {
            f["value"] = json!(v);
        }
        f
    }
}

/// What an export knows beyond the fault: the options and the cluster's size.
pub struct Ctx<'a> {
    /// The user's options.
    pub opts: &'a ChaosMeshOptions,
    /// How many voters the scenario starts.
    pub nodes: u64,
}

/// Merges `extra` into `base` (later keys win).
fn with(base: &[(String, String)], extra: &[(String, String)]) -> BTreeMap<String, String> {
    base.iter().chain(extra).cloned().collect()
}

impl Ctx<'_> {
    fn pod_name(&self, id: u64) -> Result<String, String> {
        match &self.opts.statefulset {
            Some(set) => Ok(format!("{set}-{}", id - 1)),
            None => Err(format!(
                "node {id} has no pod name: give --statefulset NAME (node N is pod NAME-(N-1))"
            )),
        }
    }

    /// The store's pods, `mode` of them.
    fn store(&self, mode: &'static str, value: Option<u64>) -> Pods {
        Pods {
            labels: with(&self.opts.selector, &[]),
            expressions: Vec::new(),
            others: None,
            mode,
            value: value.map(|v| v.to_string()),
        }
    }

    /// The pods `target` picks, or why Chaos Mesh cannot pick them.
    pub fn pods(&self, target: &Selector) -> Result<Pods, String> {
        let o = self.opts;
        let role = |labels: &[(String, String)], flag: &str, role: &str| {
            if labels.is_empty() {
                Err(format!(
                    "Chaos Mesh picks pods by label, not by Raft role: give {flag} KEY=VALUE if \
                     your operator labels the {role}"
                ))
            } else {
                Ok(with(&o.selector, labels))
            }
        };
        Ok(match target {
            Selector::All => self.store("all", None),
            Selector::Any => self.store("one", None),
            Selector::Leader => Pods {
                labels: role(&o.leader, "--leader-label", "leader")?,
                // NOT (a AND b) is no conjunction of label expressions: one label only.
                others: match o.leader.as_slice() {
                    [(k, v)] => Some(vec![expression(k, "NotIn", vec![v.clone()])]),
                    _ => None,
                },
                ..self.store("one", None)
            },
            Selector::Follower => Pods {
                labels: role(&o.follower, "--follower-label", "followers")?,
                ..self.store("one", None)
            },
            Selector::Minority => Pods {
                labels: role(&o.follower, "--follower-label", "followers")?,
                ..self.store("fixed", Some((self.nodes - 1) / 2))
            },
            Selector::Node(id) => {
                let name = self.pod_name(*id)?;
                Pods {
                    expressions: vec![expression(POD_NAME_LABEL, "In", vec![name.clone()])],
                    others: Some(vec![expression(POD_NAME_LABEL, "NotIn", vec![name])]),
                    ..self.store("all", None)
                }
            }
            Selector::NthFollower(_) => {
                return Err("Chaos Mesh cannot tell one follower from another".into());
            }
            Selector::Majority => {
                return Err("no one label picks the leader and some of the followers".into());
            }
        })
    }

    /// The pods of explicit node ids.
    fn group(&self, ids: &[u64]) -> Result<Pods, String> {
        let names = ids
            .iter()
            .map(|id| self.pod_name(*id))
            .collect::<Result<_, _>>()?;
        Ok(Pods {
            expressions: vec![expression(POD_NAME_LABEL, "In", names)],
            ..self.store("all", None)
        })
    }

    /// The other side of a link fault on `pods`: the store's other pods where labels can say
    /// which; else every pod of the store.
    fn rest(&self, pods: &Pods) -> Pods {
        Pods {
            expressions: pods.others.clone().unwrap_or_default(),
            ..self.store("all", None)
        }
    }

    fn spec(&self, pods: &Pods, length: Duration, body: Value) -> Value {
        let mut spec = pods.fields(&self.opts.namespace);
        spec["duration"] = json!(go_duration(length));
        for (k, v) in body.as_object().into_iter().flatten() {
            spec[k] = v.clone();
        }
        spec
    }

    /// `action` on `target` for `length`, as Chaos Mesh objects, with notes on what differs.
    pub fn chaos(
        &self,
        action: &Action,
        target: &Selector,
        length: Duration,
    ) -> Result<Mapped, String> {
        match action {
            Action::Kill | Action::Stop => self.process(action, target, length),
            Action::Isolate
            | Action::Blackhole { .. }
            | Action::Partition { .. }
            | Action::Delay { .. }
            | Action::Loss { .. }
            | Action::Bandwidth { .. } => self.network(action, target, length),
            Action::DiskDelay { .. }
            | Action::DiskStall
            | Action::DiskError { .. }
            | Action::DiskFull => self.io(action, target, length),
            Action::Clock { change } => self.clock(*change, target, length),
            Action::CpuLimit { share } => self.stress(*share, target, length),
            other => Err(refusal(other).into()),
        }
    }

    fn process(
        &self,
        action: &Action,
        target: &Selector,
        length: Duration,
    ) -> Result<Mapped, String> {
        let pods = self.pods(target)?;
        // `for` holds the node down: pod-failure keeps the pod's containers stopped for the
        // duration; without `for` raftdrill leaves it down, which a controller never does.
        let body = json!({ "action": "pod-failure" });
        let mut m = Mapped::one(Kind::Pod, self.spec(&pods, length, body));
        m.notes.push(format!(
            "pod-failure stops the pod's containers for {} and starts them again; it is not a \
             {} of the process",
            go_duration(length),
            if matches!(action, Action::Kill) {
                "SIGKILL"
            } else {
                "SIGTERM"
            }
        ));
        Ok(m)
    }

    fn network(
        &self,
        action: &Action,
        target: &Selector,
        length: Duration,
    ) -> Result<Mapped, String> {
        let ns = &self.opts.namespace;
        let cut = |from: &Pods, to: &Pods| Chaos {
            kind: Kind::Network,
            spec: self.spec(
                from,
                length,
                json!({ "action": "partition", "direction": "both", "target": to.fields(ns) }),
            ),
        };
        if let Action::Partition {
            groups: Some(groups),
        } = action
        {
            // Every pair of groups is cut, each pair one object.
            let mut m = Mapped::default();
            for (i, a) in groups.iter().enumerate() {
                for b in &groups[i + 1..] {
                    m.objects.push(cut(&self.group(a)?, &self.group(b)?));
                }
            }
            return Ok(m);
        }
        both_ways(action)?;
        let from = self.pods(target)?;
        let (to, mut m) = (self.rest(&from), Mapped::default());
        if to.expressions.is_empty() {
            m.notes
                .push("the other side is every pod of the store, the target's own included".into());
        }
        let body = match action {
            Action::Isolate | Action::Partition { .. } | Action::Blackhole { .. } => {
                m.objects.push(cut(&from, &to));
                return Ok(m);
            }
            Action::Delay {
                latency, jitter, ..
            } => json!({ "action": "delay", "delay": {
                "latency": go_duration(*latency), "jitter": go_duration(*jitter), "correlation": "0" } }),
            Action::Loss { probability, .. } => json!({ "action": "loss", "loss": {
                "loss": percent(*probability), "correlation": "0" } }),
            Action::Bandwidth { bytes_per_sec, .. } => {
                m.notes.push(
                    "Chaos Mesh caps the pod's egress as a whole (its links and its clients \
                     together), not each link in each direction"
                        .into(),
                );
                let rate = *bytes_per_sec;
                // tbf's queue (limit) holds one second of traffic; its bucket (buffer) a tenth.
                let body = json!({ "action": "bandwidth", "bandwidth": {
                    "rate": format!("{rate}bps"),
                    "limit": rate.clamp(1500, i32::MAX as u64),
                    "buffer": (rate / 10).clamp(1500, i32::MAX as u64) } });
                m.objects.push(Chaos {
                    kind: Kind::Network,
                    spec: self.spec(&from, length, body),
                });
                return Ok(m);
            }
            _ => unreachable!("network() takes link faults only"),
        };
        let mut body = body;
        body["direction"] = json!("both");
        body["target"] = to.fields(ns);
        m.objects.push(Chaos {
            kind: Kind::Network,
            spec: self.spec(&from, length, body),
        });
        Ok(m)
    }

    fn io(&self, action: &Action, target: &Selector, length: Duration) -> Result<Mapped, String> {
        let Some(volume) = &self.opts.volume_path else {
            return Err(
                "a disk fault needs the data volume's mount path: give --volume-path PATH".into(),
            );
        };
        let pods = self.pods(target)?;
        let mut m = Mapped::default();
        let mut body = match action {
            Action::DiskDelay {
                latency,
                jitter,
                ops,
            } => {
                if !jitter.is_zero() {
                    return Err(
                        "IOChaos latency has no jitter: set jitter = \"0ms\" to export it".into(),
                    );
                }
                json!({ "action": "latency", "delay": go_duration(*latency), "methods": methods(ops) })
            }
            Action::DiskStall => {
                m.notes.push(format!(
                    "every I/O waits {} (IOChaos latency), not only until the stall ends",
                    go_duration(length)
                ));
                json!({ "action": "latency", "delay": go_duration(length) })
            }
            Action::DiskError {
                probability,
                on,
                drop_dirty,
            } => {
                if *drop_dirty {
                    return Err(
                        "IOChaos cannot drop a file's unsynced data at a failed fsync (drop_dirty)"
                            .into(),
                    );
                }
                let ops: &[DiskOp] = match on {
                    raftdrill_faultfs::ErrorOn::Write => &[DiskOp::Write],
                    raftdrill_faultfs::ErrorOn::Fsync => &[DiskOp::Fsync],
                    raftdrill_faultfs::ErrorOn::WriteOrFsync => &[DiskOp::Write, DiskOp::Fsync],
                };
                let pct = (probability * 100.0).round();
                if (pct - probability * 100.0).abs() > 1e-9 || pct < 1.0 {
                    return Err(format!(
                        "IOChaos takes a whole percent, not {}",
                        probability * 100.0
                    ));
                }
                json!({ "action": "fault", "errno": libc::EIO, "percent": pct as i64, "methods": methods(ops) })
            }
            Action::DiskFull => {
                m.notes
                    .push("every write fails with ENOSPC, not only those that need space".into());
                json!({ "action": "fault", "errno": libc::ENOSPC, "methods": ["write"] })
            }
            _ => unreachable!("io() takes disk faults only"),
        };
        body["volumePath"] = json!(volume);
        m.objects.push(Chaos {
            kind: Kind::Io,
            spec: self.spec(&pods, length, body),
        });
        Ok(m)
    }

    fn clock(
        &self,
        change: ClockChange,
        target: &Selector,
        length: Duration,
    ) -> Result<Mapped, String> {
        let ClockChange::Jump(seconds) = change else {
            return Err("TimeChaos shifts a clock by an offset; it cannot change its rate".into());
        };
        let body = json!({ "timeOffset": format!("{}ms", (seconds * 1000.0).round() as i64) });
        Ok(Mapped::one(
            Kind::Time,
            self.spec(&self.pods(target)?, length, body),
        ))
    }

    fn stress(&self, share: f64, target: &Selector, length: Duration) -> Result<Mapped, String> {
        // A fair scheduler gives the node 1/(1+w) of a core that w busy workers share with it.
        let workers = ((1.0 / share).ceil() as i64 - 1).clamp(1, 32);
        let body = json!({ "stressors": { "cpu": { "workers": workers, "load": 100 } } });
        let mut m = Mapped::one(Kind::Stress, self.spec(&self.pods(target)?, length, body));
        m.notes.push(format!(
            "StressChaos runs {workers} busy workers beside the node (about {:.0} % of \
             one core left to it when they share it); it competes for the CPU, it caps nothing",
            100.0 / (1.0 + workers as f64)
        ));
        Ok(m)
    }
}

/// What one fault became: its objects and what differs from raftdrill's fault.
#[derive(Debug, Default)]
pub struct Mapped {
    /// One object, or one per pair of a partition's groups.
    pub objects: Vec<Chaos>,
    /// What differs, for the user.
    pub notes: Vec<String>,
}

impl Mapped {
    fn one(kind: Kind, spec: Value) -> Self {
        Mapped {
            objects: vec![Chaos { kind, spec }],
            notes: Vec::new(),
        }
    }
}

/// Why an action has no Chaos Mesh equivalent.
fn refusal(action: &Action) -> &'static str {
    match action {
        Action::Pause => "Chaos Mesh cannot SIGSTOP a process",
        Action::Restart => "Chaos Mesh ends a fault when its duration ends; it has no restart",
        Action::Reset { .. } => "Chaos Mesh has no TCP reset",
        Action::PowerLoss { .. } => "Chaos Mesh cannot drop what a disk had not synced",
        Action::Corrupt { .. } => {
            "corrupt damages files at rest while the node is stopped; IOChaos mistake corrupts I/O as it happens"
        }
        Action::Wipe | Action::WipeInPlace => {
            "deleting a member's data is an operator's action, not a chaos kind"
        }
        Action::AddNode | Action::RemoveNode => {
            "a membership change is an operator's action, not a chaos kind"
        }
        _ => "no Chaos Mesh kind does this",
    }
}

/// The direction of a link fault that has one.
fn direction(action: &Action) -> Option<Direction> {
    match action {
        Action::Delay { direction, .. }
        | Action::Bandwidth { direction, .. }
        | Action::Blackhole { direction }
        | Action::Reset { direction }
        | Action::Loss { direction, .. } => Some(*direction),
        _ => None,
    }
}

/// Refuses a one-way link fault.
fn both_ways(action: &Action) -> Result<(), String> {
    match direction(action) {
        Some(d) if d != Direction::Both => Err(format!(
            "direction = \"{}\" picks connections by who opened them; Chaos Mesh's direction \
             picks packets, and dropping one way of a TCP connection's packets cuts both",
            if d == Direction::In { "in" } else { "out" }
        )),
        _ => Ok(()),
    }
}

fn methods(ops: &[DiskOp]) -> Vec<&'static str> {
    let mut m = Vec::new();
    for op in ops {
        match op {
            DiskOp::Write => m.push("write"),
            DiskOp::Read => m.push("read"),
            DiskOp::Fsync => m.extend(["fsync", "fsyncdir"]),
        }
    }
    m
}

/// A probability as the percent string NetworkChaos takes (`0.3` → `"30"`).
fn percent(p: f64) -> String {
    let pct = (p * 100.0 * 1000.0).round() / 1000.0;
    format!("{pct}")
}

/// A duration in Go's syntax, which Chaos Mesh parses: `5s`, `250ms`, `1500us`.
pub fn go_duration(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        format!("{}s", d.as_secs())
    } else if d.as_nanos().is_multiple_of(1_000_000) {
        format!("{}ms", d.as_millis())
    } else if d.as_nanos().is_multiple_of(1_000) {
        format!("{}us", d.as_micros())
    } else {
        format!("{}ns", d.as_nanos())
    }
}
