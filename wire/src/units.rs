//! Human-written quantities shared by server flags and scenario files:
//! durations like `30s`, `250ms`, `1.5m`, `5us`, and byte sizes like `64KiB`.
//! One parser each, so a quantity means the same thing everywhere; the
//! units are documented once, in `docs/units.md`.

use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid duration `{input}`: {why} (write e.g. `30s`, `250ms`, `2m`, `1h`)")]
pub struct DurationError {
    pub input: String,
    pub why: &'static str,
}

/// Parses `<number><unit>` with unit one of `us`, `ms`, `s`, `m`, `h`.
/// A bare `0` is accepted as zero; any other bare number is rejected
/// because its unit would be a guess.
pub fn parse_duration(input: &str) -> Result<Duration, DurationError> {
    let s = input.trim();
    let err = |why| DurationError {
        input: input.to_owned(),
        why,
    };
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .ok_or_else(|| err("missing unit"))?;
    let (num, unit) = s.split_at(split);
    let value: f64 = num.parse().map_err(|_| err("not a number"))?;
    let seconds_per_unit = match unit.trim() {
        "us" | "µs" => 1e-6,
        "ms" => 1e-3,
        "s" => 1.0,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        _ => return Err(err("unknown unit")),
    };
    let secs = value * seconds_per_unit;
    if !secs.is_finite() || secs > 1e9 {
        return Err(err("out of range"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// The shortest exact rendering of a duration in the units above.
pub fn format_duration(d: Duration) -> String {
    let us = d.as_micros();
    if us == 0 {
        "0".into()
    } else if us % 3_600_000_000 == 0 {
        format!("{}h", us / 3_600_000_000)
    } else if us % 60_000_000 == 0 {
        format!("{}m", us / 60_000_000)
    } else if us % 1_000_000 == 0 {
        format!("{}s", us / 1_000_000)
    } else if us % 1_000 == 0 {
        format!("{}ms", us / 1_000)
    } else {
        format!("{us}us")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid size `{input}`: {why} (write e.g. `65536`, `64KiB`, `64KB`, `1MiB`)")]
pub struct SizeError {
    pub input: String,
    pub why: &'static str,
    /// The unit as written, when it was the problem.
    pub unit: Option<String>,
}

/// Parses a byte quantity, `<number>[unit]`, possibly fractional (`1.5KB`
/// = 1500): `B`; `K`, `KiB` = 1024; `KB` = 1000; likewise `M`/`MiB`/`MB` and
/// `G`/`GiB`/`GB`. Lower-case `k`, `kib`, `kB`, `mib`, `gib` are accepted.
pub fn parse_bytes(input: &str) -> Result<f64, SizeError> {
    let s = input.trim();
    let err = |why, unit: Option<&str>| SizeError {
        input: input.to_owned(),
        why,
        unit: unit.map(str::to_owned),
    };
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let value: f64 = num
        .parse()
        .ok()
        .filter(|v: &f64| v.is_finite())
        .ok_or_else(|| err("not a number", None))?;
    const KIB: f64 = 1024.0;
    let multiplier = match unit.trim() {
        "" | "B" => 1.0,
        "K" | "KiB" | "k" | "kib" => KIB,
        "M" | "MiB" | "mib" => KIB * KIB,
        "G" | "GiB" | "gib" => KIB * KIB * KIB,
        "KB" | "kB" => 1e3,
        "MB" => 1e6,
        "GB" => 1e9,
        other => return Err(err("unknown unit", Some(other))),
    };
    Ok(value * multiplier)
}

/// Parses a whole byte count (flags such as `--max-message-size`) with the
/// units of [`parse_bytes`].
pub fn parse_size(input: &str) -> Result<u64, SizeError> {
    let bytes = parse_bytes(input)?;
    if bytes > 1e15 || bytes.fract() != 0.0 {
        return Err(SizeError {
            input: input.to_owned(),
            why: "out of range or not a whole number of bytes",
            unit: None,
        });
    }
    Ok(bytes as u64)
}

/// The shortest exact rendering of a byte count in the units above.
pub fn format_size(bytes: u64) -> String {
    const KIB: u64 = 1024;
    if bytes >= KIB * KIB && bytes % (KIB * KIB) == 0 {
        format!("{}MiB", bytes / (KIB * KIB))
    } else if bytes >= KIB && bytes % KIB == 0 {
        format!("{}KiB", bytes / KIB)
    } else {
        bytes.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units_and_rejects_bare_numbers() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("1.5m"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("5us"), Ok(Duration::from_micros(5)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("10").unwrap_err().why, "missing unit");
        assert_eq!(
            parse_duration("10 parsecs").unwrap_err().why,
            "unknown unit"
        );
        assert_eq!(parse_duration("x1s").unwrap_err().why, "not a number");
    }

    #[test]
    fn sizes_parse_and_format() {
        assert_eq!(parse_size("65536"), Ok(65536));
        assert_eq!(parse_size("64KiB"), Ok(65536));
        assert_eq!(parse_size("1.5KiB"), Ok(1536));
        assert_eq!(parse_size("1MiB"), Ok(1 << 20));
        assert_eq!(parse_size("3 parsecs").unwrap_err().why, "unknown unit");
        // One meaning everywhere: binary K/KiB, decimal KB.
        assert_eq!(parse_size("64K"), Ok(65536));
        assert_eq!(parse_size("64KB"), Ok(64_000));
        assert_eq!(parse_size("64kB"), Ok(64_000));
        assert_eq!(parse_size("2MB"), Ok(2_000_000));
        assert_eq!(parse_size("2M"), Ok(2 << 20));
        assert_eq!(parse_size("1GB"), Ok(1_000_000_000));
        assert_eq!(parse_bytes("1.5KB"), Ok(1500.0));
        assert_eq!(parse_size("64kb").unwrap_err().unit.as_deref(), Some("kb"));
        assert_eq!(
            parse_size("0.5").unwrap_err().why,
            "out of range or not a whole number of bytes"
        );
        for s in ["0", "100", "64KiB", "1MiB"] {
            assert_eq!(format_size(parse_size(s).unwrap()), s);
        }
    }

    #[test]
    fn format_roundtrips() {
        for s in ["0", "5us", "250ms", "30s", "2m", "1h", "1500ms"] {
            assert_eq!(format_duration(parse_duration(s).unwrap()), s);
        }
    }
}
