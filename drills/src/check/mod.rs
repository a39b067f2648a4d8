//! The checks that judge a run's data and its recovery: pure logic over what the run recorded,
//! so `raftdrill check` can run them again on a recorded run.

pub mod linear;
pub mod lost_writes;
pub mod recovery;
pub mod session;

pub use linear::{CheckOptions, LinearReport, LinearSummary, check_file, check_records};
pub use lost_writes::{CheckStatus, LossKind, LostWrite, LostWriteReport, WriteTracker};
pub use recovery::{Observations, Recovery, after_undo, measure};
pub use session::{SessionSummary, SessionViolation, check_sessions};
