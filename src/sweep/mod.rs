//! Sweeps: a plan of runs (one per configuration and seed), run in order or
//! side by side and resumable (finished runs are verified and reused), their
//! summaries, tables and figures, and the comparison with the report.

mod plan;
mod summary;

pub use plan::{Job, JobResult, PlanEvent, format_duration, run_plan};
pub use summary::{
    ACCURACY_NOTE, ConfigSummary, EpochSpread, REPORT_CNN, REPORT_MLP, comparison_table, format_accuracy,
    summarise, write_sweep_outputs,
};
