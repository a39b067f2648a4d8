//! The one parser of each human unit raftdrill reads: durations (and their ranges),
//! percentages and byte sizes.
//! The command line, scenario files, threshold tables and SLO expressions all call these, so a
//! value that parses in one place parses in every other.

use std::time::Duration;

/// Parse a duration: anything humantime takes (`800ms`, `2s`, `1min`, `1m30s`, `1h`), and a
/// decimal number with one unit (`1.5s`, `0.25ms`), which humantime does not take.
///
/// A bare number is refused: the caller decides what a unitless number means.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    if let Ok(d) = humantime::parse_duration(t) {
        return Ok(d);
    }
    decimal_duration(t).ok_or_else(|| {
        format!("bad duration {text:?}: expected a number with a unit, such as 800ms, 1.5s or 2m")
    })
}

fn decimal_duration(t: &str) -> Option<Duration> {
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
    let (num, unit) = t.split_at(split);
    let n: f64 = num.parse().ok()?;
    let scale = match unit.trim() {
        "ns" => 1e-9,
        "us" | "µs" => 1e-6,
        "ms" => 1e-3,
        "s" | "sec" | "secs" => 1.0,
        "m" | "min" | "mins" => 60.0,
        "h" | "hr" | "hour" | "hours" => 3600.0,
        _ => return None,
    };
    let secs = n * scale;
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs))
}

/// Parse a percentage, `99.5%` or `99.5` (both mean 99.5 %), between 0 and 100.
pub fn parse_percent(text: &str) -> Result<f64, String> {
    percent_value(text)
        .filter(|v| (0.0..=100.0).contains(v))
        .ok_or_else(|| {
            format!("bad percentage {text:?}: expected a number from 0 to 100, such as 99.5%")
        })
}

/// The number of a percentage, `10%` or `10`, whatever its range: for limits that are not
/// shares of a whole (an increase may pass 100 %). `None` when it is not a finite number.
pub fn percent_value(text: &str) -> Option<f64> {
    let t = text.trim();
    let v = t
        .strip_suffix('%')
        .unwrap_or(t)
        .trim()
        .parse::<f64>()
        .ok()?;
    v.is_finite().then_some(v)
}

/// Why a `MIN..MAX` range did not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RangeError {
    /// No `..` between two bounds.
    Shape,
    /// A bound did not parse: its parser's message.
    Bound(String),
    /// Not 0 < MIN < MAX.
    Order,
}

/// Parse a duration range `MIN..MAX` with 0 < MIN < MAX, each bound read by `bound` (the
/// caller decides whether a bare number means something); the caller words the errors.
pub fn parse_duration_range(
    text: &str,
    bound: impl Fn(&str) -> Result<Duration, String>,
) -> Result<(Duration, Duration), RangeError> {
    let (a, b) = text.split_once("..").ok_or(RangeError::Shape)?;
    let (a, b) = (
        bound(a).map_err(RangeError::Bound)?,
        bound(b).map_err(RangeError::Bound)?,
    );
    if a.is_zero() || a >= b {
        return Err(RangeError::Order);
    }
    Ok((a, b))
}

/// Parse a size in bytes: `65536`, `512 B`, `64KiB`, `1.5MB`, `2GiB`.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("bad size {text:?}: expected a number of bytes such as 64KiB"))?;
    let mult = match unit.trim() {
        "" | "B" => 1.0,
        "KB" | "kB" => 1e3,
        "KiB" => 1024.0,
        "MB" => 1e6,
        "MiB" => 1024.0 * 1024.0,
        "GB" => 1e9,
        "GiB" => 1024.0 * 1024.0 * 1024.0,
        other => {
            return Err(format!(
                "bad size {text:?}: unknown unit {other:?}; use B, KB, KiB, MB, MiB, GB or GiB"
            ));
        }
    };
    let v = n * mult;
    if !(v.is_finite() && v >= 0.0) {
        return Err(format!("bad size {text:?}"));
    }
    Ok(v as u64)
}

/// Parse a byte rate: a size per second, `64KiB/s` (the `/s` may be left out), at least 1 B/s.
pub fn parse_bytes_per_sec(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let size = parse_size(t.strip_suffix("/s").unwrap_or(t))?;
    if size == 0 {
        return Err(format!("byte rate {text:?} must be at least 1 B/s"));
    }
    Ok(size)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_take_humantime_forms_and_decimals() {
        let ms = Duration::from_millis;
        assert_eq!(parse_duration("800ms"), Ok(ms(800)));
        assert_eq!(parse_duration("1.5s"), Ok(ms(1500)));
        assert_eq!(parse_duration("1m30s"), Ok(ms(90_000)));
        assert_eq!(parse_duration("1min"), Ok(ms(60_000)));
        assert_eq!(parse_duration(" 250us "), Ok(Duration::from_micros(250)));
        assert_eq!(parse_duration("0.5ms"), Ok(Duration::from_micros(500)));
        for bad in ["10", "10x", "", "ms", "-1s", "1.5.5s"] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn percents_take_the_sign_or_not() {
        assert_eq!(parse_percent("99.5%"), Ok(99.5));
        assert_eq!(parse_percent(" 95 %"), Ok(95.0));
        assert_eq!(parse_percent("95"), Ok(95.0));
        assert!(parse_percent("101%").is_err());
        assert!(parse_percent("-1").is_err());
        assert!(parse_percent("lots").is_err());
    }

    #[test]
    fn percent_values_have_no_range_and_ranges_are_ordered() {
        assert_eq!(percent_value("150%"), Some(150.0));
        assert_eq!(percent_value(" -1 "), Some(-1.0));
        assert_eq!(percent_value("inf"), None);
        let ms = Duration::from_millis;
        let range = |t| parse_duration_range(t, parse_duration);
        assert_eq!(range("150ms..1s"), Ok((ms(150), ms(1000))));
        assert_eq!(range("300ms"), Err(RangeError::Shape));
        assert_eq!(range("300ms..150ms"), Err(RangeError::Order));
        assert_eq!(range("0s..1s"), Err(RangeError::Order));
        assert!(matches!(range("150..300"), Err(RangeError::Bound(_))));
    }

    #[test]
    fn sizes_and_byte_rates_take_units() {
        assert_eq!(parse_size("65536"), Ok(65536));
        assert_eq!(parse_size("64KiB"), Ok(65536));
        assert_eq!(parse_size("1.5 MB"), Ok(1_500_000));
        assert_eq!(parse_bytes_per_sec("64KiB/s"), Ok(65536));
        assert_eq!(parse_bytes_per_sec("512 B/s"), Ok(512));
        assert!(parse_bytes_per_sec("-5KiB/s").is_err());
        assert!(parse_bytes_per_sec("0/s").is_err());
        assert!(parse_size("5 parsecs").is_err());
    }
}
