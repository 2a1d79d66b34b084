//! Scenario quantities beyond durations: rates (`"0.5/s"`), sizes
//! (`64`, `"32..256"`, `"1KiB"`), byte counts and `ws://` URLs.
//! Each parser returns a short reason on failure; `validate` adds the
//! location and the key.

use std::time::Duration;

use wire::units::parse_duration;

use super::plan::{SizeRange, WsUrl};

/// Parses `N/<unit>` or `N/<duration>` (`"0.5/s"`, `"30/m"`, `"1/10s"`)
/// into events per second. `"0"` is zero. A bare number other than zero
/// is rejected: its time unit would be a guess.
pub fn parse_rate(input: &str) -> Result<f64, String> {
    let s = input.trim();
    let hint = "write e.g. \"0.5/s\", \"30/m\", \"1/10s\" or 0";
    let Some((count, per)) = s.split_once('/') else {
        return match parse_number(s) {
            Some(0.0) => Ok(0.0),
            Some(_) => Err(format!("`{s}` has no time unit; {hint}")),
            None => Err(format!("`{s}` is not a rate; {hint}")),
        };
    };
    let count = parse_number(count.trim())
        .filter(|n| *n >= 0.0)
        .ok_or_else(|| {
            format!(
                "`{s}` is not a rate: `{}` is not a number ≥ 0; {hint}",
                count.trim()
            )
        })?;
    let per = per.trim();
    // `/s` means per one second; `/10s` per ten seconds.
    let window = if per.starts_with(|c: char| c.is_ascii_digit() || c == '.') {
        parse_duration(per)
    } else {
        parse_duration(&format!("1{per}"))
    }
    .map_err(|_| format!("`{s}` is not a rate: unknown time unit `{per}`; {hint}"))?;
    if window.is_zero() {
        return Err(format!(
            "`{s}` is not a rate: the time window is zero; {hint}"
        ));
    }
    Ok(count / window.as_secs_f64())
}

/// Parses a byte quantity with `wire::units::parse_bytes` (units: docs/units.md),
/// worded for scenario errors.
pub fn parse_bytes(input: &str) -> Result<f64, String> {
    let s = input.trim();
    wire::units::parse_bytes(s).map_err(|e| match e.unit {
        // Worded as before the units were unified (tests pin it); `K`, `M`
        // and `G` are accepted too, see docs/units.md.
        Some(unit) => {
            format!("`{s}` has an unknown size unit `{unit}` (use B, KB, MB, GB, KiB, MiB or GiB)")
        }
        None => format!("`{s}` is not a size in bytes"),
    })
}

/// Largest message body bench will generate; beyond this it is a typo.
const MAX_MESSAGE_SIZE: u32 = 16 * 1024 * 1024;

/// Parses a message size: `64`, `"64"`, `"1KiB"` or an inclusive range
/// `"32..256"`. Sizes are bytes of text, at least 1.
pub fn parse_size_range(input: &str) -> Result<SizeRange, String> {
    let s = input.trim();
    let one = |part: &str| -> Result<u32, String> {
        let bytes = parse_bytes(part)?;
        if bytes.fract() != 0.0 || bytes < 1.0 || bytes > f64::from(MAX_MESSAGE_SIZE) {
            return Err(format!(
                "`{}` must be a whole number of bytes from 1 to 16MiB",
                part.trim()
            ));
        }
        Ok(bytes as u32)
    };
    let (min, max) = match s.split_once("..") {
        Some((lo, hi)) => {
            let hi = hi.strip_prefix('=').unwrap_or(hi);
            (one(lo)?, one(hi)?)
        }
        None => {
            let v = one(s)?;
            (v, v)
        }
    };
    if min > max {
        return Err(format!(
            "the range `{s}` is empty: {min} is larger than {max}"
        ));
    }
    Ok(SizeRange { min, max })
}

/// A size given as a TOML integer.
pub fn size_from_int(n: i64) -> Result<SizeRange, String> {
    parse_size_range(&n.to_string())
}

/// Parses `ws://host[:port][/path][?query]` or `wss://...`.
pub fn parse_ws_url(input: &str) -> Result<WsUrl, String> {
    let s = input.trim();
    let (secure, rest) = if let Some(rest) = s.strip_prefix("ws://") {
        (false, rest)
    } else if let Some(rest) = s.strip_prefix("wss://") {
        (true, rest)
    } else {
        let scheme = s.split_once("://").map_or("", |(a, _)| a);
        return Err(match scheme {
            "http" | "https" => {
                format!("`{s}` is an HTTP URL; write ws:// or wss:// instead of {scheme}://")
            }
            "" => format!("`{s}` is not a URL; write e.g. \"ws://127.0.0.1:8080/ws\""),
            _ => format!("`{s}` has scheme `{scheme}`; only ws:// and wss:// are supported"),
        });
    };
    let split = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(split);
    if authority.contains('@') {
        return Err(format!(
            "`{s}`: credentials in the URL are not supported; use [target.auth]"
        ));
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (host, after) = v6
            .split_once(']')
            .ok_or_else(|| format!("`{s}`: unclosed `[` in the host"))?;
        (host.to_owned(), after.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h.to_owned(), Some(p)),
            None => (authority.to_owned(), None),
        }
    };
    if host.is_empty() {
        return Err(format!("`{s}` has no host"));
    }
    let port = match port {
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| format!("`{s}` has an invalid port `{p}`"))?,
        None if secure => 443,
        None => 80,
    };
    let path = match path {
        "" => "/".to_owned(),
        p if p.starts_with('?') => format!("/{p}"),
        p => p.to_owned(),
    };
    Ok(WsUrl {
        secure,
        host,
        port,
        path,
    })
}

/// A duration string where `0` (or `"0"`) means "off".
pub fn parse_optional_duration(value: &toml::Value) -> Result<Option<Duration>, String> {
    let d = match value {
        toml::Value::Integer(0) => Duration::ZERO,
        toml::Value::Float(f) if *f == 0.0 => Duration::ZERO,
        toml::Value::String(s) => parse_duration(s).map_err(|e| e.to_string())?,
        toml::Value::Integer(_) | toml::Value::Float(_) => {
            return Err("a duration needs a unit; write e.g. \"30s\" (or 0 for never)".into())
        }
        other => {
            return Err(format!(
                "expected a duration like \"30s\" or 0, found {}",
                other.type_str()
            ))
        }
    };
    Ok((!d.is_zero()).then_some(d))
}

fn parse_number(s: &str) -> Option<f64> {
    let s = s.trim();
    if s.is_empty() || s.starts_with('+') {
        return None;
    }
    s.parse::<f64>().ok().filter(|v| v.is_finite())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates() {
        assert_eq!(parse_rate("0.5/s"), Ok(0.5));
        assert_eq!(parse_rate("30/m"), Ok(0.5));
        assert_eq!(parse_rate("1/10s"), Ok(0.1));
        assert_eq!(parse_rate("3600/h"), Ok(1.0));
        assert_eq!(parse_rate("0"), Ok(0.0));
        assert!(parse_rate("2").unwrap_err().contains("no time unit"));
        assert!(parse_rate("fast").unwrap_err().contains("is not a rate"));
        assert!(parse_rate("1/fortnight")
            .unwrap_err()
            .contains("unknown time unit"));
        assert!(parse_rate("-1/s").is_err());
        assert!(parse_rate("1/0s").unwrap_err().contains("zero"));
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size_range("64"), Ok(SizeRange { min: 64, max: 64 }));
        assert_eq!(
            parse_size_range("32..256"),
            Ok(SizeRange { min: 32, max: 256 })
        );
        assert_eq!(
            parse_size_range("32..=256"),
            Ok(SizeRange { min: 32, max: 256 })
        );
        assert_eq!(
            parse_size_range("1KiB"),
            Ok(SizeRange {
                min: 1024,
                max: 1024
            })
        );
        assert!(parse_size_range("256..32").unwrap_err().contains("empty"));
        assert!(parse_size_range("0").is_err());
        assert!(parse_size_range("1.5").is_err());
        assert!(parse_size_range("64 parsecs")
            .unwrap_err()
            .contains("unknown size unit"));
        assert_eq!(parse_bytes("2KiB"), Ok(2048.0));
        assert_eq!(parse_bytes("1.5MB"), Ok(1.5e6));
        // The one rule (docs/units.md): K = KiB = 1024, KB = 1000.
        assert_eq!(parse_bytes("64K"), Ok(65536.0));
        assert_eq!(parse_bytes("64KB"), Ok(64_000.0));
    }

    #[test]
    fn urls() {
        let u = parse_ws_url("ws://127.0.0.1:9000/ws?x=1").unwrap();
        assert_eq!(
            (u.secure, u.host.as_str(), u.port, u.path.as_str()),
            (false, "127.0.0.1", 9000, "/ws?x=1")
        );
        assert_eq!(parse_ws_url("wss://example.test").unwrap().port, 443);
        assert_eq!(parse_ws_url("ws://[::1]:81").unwrap().host, "::1");
        assert_eq!(parse_ws_url("ws://h?q").unwrap().path, "/?q");
        assert!(parse_ws_url("http://h/")
            .unwrap_err()
            .contains("instead of http://"));
        assert!(parse_ws_url("ws://h:99999")
            .unwrap_err()
            .contains("invalid port"));
        assert!(parse_ws_url("ws://:80").unwrap_err().contains("no host"));
        assert!(parse_ws_url("localhost:80")
            .unwrap_err()
            .contains("not a URL"));
    }

    #[test]
    fn optional_durations() {
        assert_eq!(parse_optional_duration(&toml::Value::Integer(0)), Ok(None));
        assert_eq!(
            parse_optional_duration(&toml::Value::String("30s".into())),
            Ok(Some(Duration::from_secs(30)))
        );
        assert!(parse_optional_duration(&toml::Value::Integer(5))
            .unwrap_err()
            .contains("needs a unit"));
    }
}
