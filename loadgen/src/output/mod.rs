//! Files and text a run leaves behind: `timeline.csv`, `latency*.hgrm`, the summary.json
//! piece and the k6-like final text.

mod hgrm;
pub mod hlog;
mod summary;
mod timeline;

pub use hgrm::{percentile_distribution, write_hgrm_files};
pub use summary::{LatencyMs, LoadSummary, Totals, text_summary};
pub use timeline::{TimelineRow, TimelineWriter};
