//! The HdrHistogram percentile-distribution text (`outputPercentileDistribution`, as wrk2
//! prints it), in milliseconds.

use std::fmt::Write as _;
use std::path::Path;

use hdrhistogram::Histogram;

use crate::metrics::Accumulator;

/// Render `h` (microseconds) as a percentile distribution in milliseconds, five ticks per
/// half distance, ending with the mean/max footer.
pub fn percentile_distribution(h: &Histogram<u64>) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:>12} {:>14} {:>10} {:>14}\n",
        "Value", "Percentile", "TotalCount", "1/(1-Percentile)"
    );
    let mut total = 0u64;
    for v in h.iter_quantiles(5) {
        total += v.count_since_last_iteration();
        let value = v.value_iterated_to() as f64 / 1000.0;
        let q = v.quantile_iterated_to();
        if q < 1.0 {
            let _ = writeln!(
                out,
                "{value:12.3} {q:2.12} {total:10} {:14.2}",
                1.0 / (1.0 - q)
            );
        } else {
            let _ = writeln!(out, "{value:12.3} {q:2.12} {total:10}");
        }
    }
    let sub_buckets = 2u64.pow((2.0 * 10f64.powi(h.sigfig() as i32)).log2().ceil() as u32);
    let _ = writeln!(
        out,
        "#[Mean    = {:12.3}, StdDeviation   = {:12.3}]",
        h.mean() / 1000.0,
        h.stdev() / 1000.0
    );
    let _ = writeln!(
        out,
        "#[Max     = {:12.3}, Total count    = {:12}]",
        h.max() as f64 / 1000.0,
        h.len()
    );
    let _ = writeln!(
        out,
        "#[Buckets = {:12}, SubBuckets     = {:12}]",
        h.buckets(),
        sub_buckets
    );
    out
}

/// Write `latency.hgrm` (every operation) and `latency-<kind>.hgrm` into `dir`.
pub fn write_hgrm_files(dir: &Path, totals: &Accumulator) -> std::io::Result<()> {
    std::fs::write(
        dir.join("latency.hgrm"),
        percentile_distribution(&totals.latency),
    )?;
    for (kind, h) in &totals.latency_per_kind {
        if !h.is_empty() {
            std::fs::write(
                dir.join(format!("latency-{}.hgrm", kind.as_str())),
                percentile_distribution(h),
            )?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::new_histogram;

    #[test]
    fn renders_the_hdr_format() {
        let mut h = new_histogram::<u64>();
        for us in 1..=10_000u64 {
            h.record(us * 100).unwrap();
        }
        let text = percentile_distribution(&h);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].contains("Value") && lines[0].contains("1/(1-Percentile)"));
        assert!(
            lines[2].trim_start().starts_with("0.100 0.000000000000"),
            "{}",
            lines[2]
        );
        let last_row = lines.iter().rev().find(|l| !l.starts_with('#')).unwrap();
        assert!(
            last_row.contains("1.000000000000") && last_row.contains("10000"),
            "{last_row}"
        );
        assert!(text.contains("#[Max     =     1000."), "{text}");
        assert!(text.contains("Total count    =        10000]"));
        assert!(text.contains("SubBuckets     =         2048]"));
    }
}
