//! Parsing of the human units used in plans and thresholds: durations and percentages.

use std::time::Duration;

/// Parse a duration such as `800ms`, `1.5s`, `2m`, `250us`, `1h`, or `1m30s`.
///
/// A bare number is refused: the caller decides what a unitless number means.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    let mut total = 0.0f64;
    let mut rest = text;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if num_len == 0 {
            return None;
        }
        let number: f64 = rest[..num_len].parse().ok()?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total += number * scale;
    }
    total.is_finite().then(|| Duration::from_secs_f64(total))
}

/// Parse a percentage such as `99.5%` into `99.5`. The `%` sign is required.
pub fn parse_percent(text: &str) -> Option<f64> {
    let number = text.trim().strip_suffix('%')?.trim();
    let value: f64 = number.parse().ok()?;
    (value.is_finite() && (0.0..=100.0).contains(&value)).then_some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("800ms"), Some(Duration::from_millis(800)));
        assert_eq!(parse_duration("1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_duration("1m30s"), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("250us"), Some(Duration::from_micros(250)));
        assert_eq!(parse_duration("10"), None);
        assert_eq!(parse_duration("10x"), None);
        assert_eq!(parse_duration(""), None);
        assert_eq!(parse_duration("ms"), None);
    }

    #[test]
    fn percents() {
        assert_eq!(parse_percent("99.5%"), Some(99.5));
        assert_eq!(parse_percent(" 95 %"), Some(95.0));
        assert_eq!(parse_percent("95"), None);
        assert_eq!(parse_percent("101%"), None);
    }
}
