//! Go `time.Duration` text (`8760h0m0s`, `4m`, `1.5s`, `300ms`) as kubeadm writes and reads
//! it (`metav1.Duration`): a parser and a formatter matching Go's `ParseDuration` and
//! `Duration.String` for non-negative durations.

use super::error::ValueError;
use std::time::Duration;

/// Nanoseconds per unit, by Go's unit names.
fn unit_nanos(unit: &str) -> Option<u128> {
    Some(match unit {
        "ns" => 1,
        "us" | "µs" | "μs" => 1_000,
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "m" => 60 * 1_000_000_000,
        "h" => 3_600 * 1_000_000_000,
        _ => return None,
    })
}

/// What a valid duration looks like (used in error messages).
pub const DURATION_HELP: &str =
    "a Go duration such as 8760h0m0s, 4m or 90s (units ns, us, ms, s, m, h)";

/// Parses a Go duration string. Negative durations are rejected (nothing in the config may be
/// negative); the error text says what is wrong.
pub fn parse_go_duration(text: &str) -> Result<Duration, ValueError> {
    let mut s = text.trim();
    if s.is_empty() {
        return Err(ValueError::new("empty duration"));
    }
    if let Some(rest) = s.strip_prefix('+') {
        s = rest;
    } else if s.starts_with('-') {
        return Err(ValueError::new("negative durations are not allowed"));
    }
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    let mut total: u128 = 0;
    let mut rest = s;
    while !rest.is_empty() {
        // Number: digits, optionally a fraction.
        let int_len = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let int_part = &rest[..int_len];
        rest = &rest[int_len..];
        let mut frac_part = "";
        if let Some(after_dot) = rest.strip_prefix('.') {
            let frac_len = after_dot
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(after_dot.len());
            frac_part = &after_dot[..frac_len];
            rest = &after_dot[frac_len..];
        }
        if int_part.is_empty() && frac_part.is_empty() {
            return Err(ValueError::new(format!("expected a number at {rest:?}")));
        }
        // Unit: everything up to the next digit or dot.
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        if unit.is_empty() {
            return Err(ValueError::new("missing unit (ns, us, ms, s, m or h)"));
        }
        let per =
            unit_nanos(unit).ok_or_else(|| ValueError::new(format!("unknown unit {unit:?}")))?;
        let int_value: u128 = if int_part.is_empty() {
            0
        } else {
            int_part
                .parse()
                .map_err(|_| ValueError::new("number too large"))?
        };
        let mut value = int_value
            .checked_mul(per)
            .ok_or_else(|| ValueError::new("duration too large"))?;
        if !frac_part.is_empty() {
            // Keep at most 18 fractional digits; beyond that Go's precision is gone too.
            let digits = &frac_part[..frac_part.len().min(18)];
            let numerator: u128 = digits
                .parse()
                .map_err(|_| ValueError::new("bad fraction"))?;
            let scale = 10u128.pow(digits.len() as u32);
            value += numerator * per / scale;
        }
        total = total
            .checked_add(value)
            .ok_or_else(|| ValueError::new("duration too large"))?;
    }
    // Go durations are int64 nanoseconds.
    if total > i64::MAX as u128 {
        return Err(ValueError::new(
            "duration too large (the maximum is about 2562047h)",
        ));
    }
    Ok(Duration::from_nanos(total as u64))
}

/// `int.fraction` of `n / div` with trailing zeros trimmed (Go's `fmtFrac` + `fmtInt`).
fn with_fraction(n: u128, div: u128) -> String {
    let int = n / div;
    let rem = n % div;
    if rem == 0 {
        return int.to_string();
    }
    let width = div.to_string().len() - 1;
    let frac = format!("{rem:0width$}");
    format!("{int}.{}", frac.trim_end_matches('0'))
}

/// Formats like Go's `Duration.String`: `0s`, `300ms`, `1.5s`, `4m0s`, `8760h0m0s`.
pub fn format_go_duration(d: Duration) -> String {
    let ns = d.as_nanos();
    if ns == 0 {
        return "0s".into();
    }
    if ns < 1_000_000_000 {
        let (div, unit) = if ns < 1_000 {
            (1, "ns")
        } else if ns < 1_000_000 {
            (1_000, "µs")
        } else {
            (1_000_000, "ms")
        };
        return format!("{}{unit}", with_fraction(ns, div));
    }
    let secs = ns / 1_000_000_000;
    let sub = ns % 1_000_000_000;
    let hours = secs / 3600;
    let minutes = (secs / 60) % 60;
    let seconds = secs % 60;
    let mut out = String::new();
    if hours > 0 {
        out.push_str(&format!("{hours}h"));
    }
    if hours > 0 || minutes > 0 {
        out.push_str(&format!("{minutes}m"));
    }
    out.push_str(&with_fraction(seconds * 1_000_000_000 + sub, 1_000_000_000));
    out.push('s');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_go_forms() {
        let cases = [
            ("8760h0m0s", Duration::from_secs(8760 * 3600)),
            ("87600h", Duration::from_secs(87600 * 3600)),
            ("4m", Duration::from_secs(240)),
            ("4m0s", Duration::from_secs(240)),
            ("1h30m", Duration::from_secs(5400)),
            ("1.5h", Duration::from_secs(5400)),
            (".5s", Duration::from_millis(500)),
            ("5.s", Duration::from_secs(5)),
            ("300ms", Duration::from_millis(300)),
            ("10us", Duration::from_micros(10)),
            ("10µs", Duration::from_micros(10)),
            ("7ns", Duration::from_nanos(7)),
            ("0", Duration::ZERO),
            ("+2s", Duration::from_secs(2)),
            ("1m1.000000001s", Duration::new(61, 1)),
        ];
        for (text, want) in cases {
            assert_eq!(parse_go_duration(text), Ok(want), "{text}");
        }
    }

    #[test]
    fn rejects_bad_forms() {
        for bad in [
            "",
            "10",
            "h",
            "1x",
            "-1h",
            "1h-2m",
            ".s",
            "1..5s",
            "forever",
            "9999999999h",
        ] {
            assert!(parse_go_duration(bad).is_err(), "{bad:?} should fail");
        }
        assert!(parse_go_duration("1d")
            .unwrap_err()
            .reason
            .contains("unknown unit"));
        assert!(parse_go_duration("5")
            .unwrap_err()
            .reason
            .contains("missing unit"));
    }

    #[test]
    fn formats_like_go() {
        let cases = [
            (Duration::ZERO, "0s"),
            (Duration::from_nanos(7), "7ns"),
            (Duration::from_nanos(1500), "1.5µs"),
            (Duration::from_millis(300), "300ms"),
            (Duration::from_millis(1500), "1.5s"),
            (Duration::from_secs(90), "1m30s"),
            (Duration::from_secs(240), "4m0s"),
            (Duration::from_secs(3600), "1h0m0s"),
            (Duration::from_secs(8760 * 3600), "8760h0m0s"),
            (Duration::from_secs(87600 * 3600), "87600h0m0s"),
            (Duration::new(61, 1), "1m1.000000001s"),
        ];
        for (d, want) in cases {
            assert_eq!(format_go_duration(d), want, "{d:?}");
        }
    }

    #[test]
    fn round_trips() {
        for secs in [1u64, 59, 61, 3599, 3601, 86_400, 31_536_000] {
            let d = Duration::from_secs(secs);
            assert_eq!(parse_go_duration(&format_go_duration(d)), Ok(d));
        }
    }
}
