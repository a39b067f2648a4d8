//! A scenario's fault schedule in another tool's format, for teams whose store runs where
//! raftdrill does not: [`chaos_mesh`] writes a Chaos Mesh Workflow for a store in Kubernetes.
//! What has no equivalent there is named and refused, never written as something else.

pub mod chaos_mesh;
