//! Validation of `[[clients]]`: populations, their rates, sizes,
//! reconnect behaviour and backoff.

use std::collections::HashSet;

use super::*;

impl Validator<'_> {
    pub(super) fn populations(&self, raw: Option<Vec<RawClient>>) -> Result<Vec<Population>> {
        let example = "e.g.\n  [[clients]]\n  chat_rate = \"0.5/s\"";
        let raw = self.required_tables(raw, "clients", "at least one population", example)?;
        let mut names = HashSet::new();
        let mut pops = Vec::with_capacity(raw.len());
        for (i, c) in raw.into_iter().enumerate() {
            let at = |key: &str| format!("clients[{i}].{key}");
            let name = c.name.unwrap_or_else(|| format!("clients-{}", i + 1));
            if name.trim().is_empty() {
                return Err(self.bad(&at("name"), "the name is empty"));
            }
            if !names.insert(name.clone()) {
                return Err(self.bad(
                    &at("name"),
                    format!("another [[clients]] is already named \"{name}\""),
                ));
            }
            let weight = c.weight.unwrap_or(defaults::WEIGHT);
            if !(weight.is_finite() && weight > 0.0) {
                return Err(self.bad(
                    &at("weight"),
                    format!("{weight} is not greater than 0 (remove a population you do not want)"),
                ));
            }
            let chat_rate = match &c.chat_rate {
                None => 0.0,
                Some(toml::Value::String(s)) => {
                    parse_rate(s).map_err(|why| self.bad(&at("chat_rate"), why))?
                }
                Some(toml::Value::Integer(0)) => 0.0,
                Some(toml::Value::Float(f)) if *f == 0.0 => 0.0,
                Some(toml::Value::Integer(_) | toml::Value::Float(_)) => return Err(self.bad(
                    &at("chat_rate"),
                    "a rate needs a time unit; write e.g. \"0.5/s\" or \"30/m\" (0 for a lurker)",
                )),
                Some(other) => {
                    return Err(self.bad(
                        &at("chat_rate"),
                        format!("expected a rate like \"0.5/s\", found {}", other.type_str()),
                    ))
                }
            };
            let message_size = match &c.message_size {
                None => Ok(SizeRange {
                    min: defaults::MESSAGE_SIZE,
                    max: defaults::MESSAGE_SIZE,
                }),
                Some(toml::Value::Integer(n)) => size_from_int(*n),
                Some(toml::Value::String(s)) => parse_size_range(s),
                Some(other) => Err(format!(
                    "expected a size like 64 or \"32..256\", found {}",
                    other.type_str()
                )),
            }
            .map_err(|why| self.bad(&at("message_size"), why))?;
            let opt_duration = |key: &str,
                                v: Option<&toml::Value>,
                                default: Option<&str>|
             -> Result<Option<Duration>> {
                match (v, default) {
                    (Some(v), _) => {
                        parse_optional_duration(v).map_err(|why| self.bad(&at(key), why))
                    }
                    (None, Some(d)) => Ok(parse_duration(d).ok()),
                    (None, None) => Ok(None),
                }
            };
            let reconnect_every =
                opt_duration("reconnect_every", c.reconnect_every.as_ref(), None)?;
            let ping_interval = opt_duration(
                "ping_interval",
                c.ping_interval.as_ref(),
                Some(defaults::PING_INTERVAL),
            )?;
            let reconnect_backoff = self.backoff(i, c.reconnect_backoff.unwrap_or_default())?;
            pops.push(Population {
                name,
                share: weight,
                chat_rate,
                message_size,
                typing: c.typing.unwrap_or(false),
                reconnect_every,
                reconnect_backoff,
                resume: c.resume.unwrap_or(false),
                ping_interval,
            });
        }
        let total: f64 = pops.iter().map(|p| p.share).sum();
        for p in &mut pops {
            p.share /= total;
        }
        Ok(pops)
    }

    fn backoff(&self, i: usize, b: RawBackoff) -> Result<Backoff> {
        let at = |key: &str| format!("clients[{i}].reconnect_backoff.{key}");
        let initial = self.duration(
            &at("initial"),
            b.initial.as_ref(),
            defaults::BACKOFF_INITIAL,
        )?;
        let max = self.duration(&at("max"), b.max.as_ref(), defaults::BACKOFF_MAX)?;
        if initial.is_zero() {
            return Err(self.bad(
                &at("initial"),
                "must be longer than 0 (a zero backoff hammers a failing server)",
            ));
        }
        if max < initial {
            return Err(self.bad(
                &at("max"),
                format!(
                    "{} is shorter than `initial` ({})",
                    wire::units::format_duration(max),
                    wire::units::format_duration(initial)
                ),
            ));
        }
        let jitter = b.jitter.unwrap_or(defaults::BACKOFF_JITTER);
        if !(0.0..=1.0).contains(&jitter) {
            return Err(self.bad(
                &at("jitter"),
                format!("{jitter} is not a fraction from 0 to 1"),
            ));
        }
        Ok(Backoff {
            initial,
            max,
            jitter,
        })
    }
}
