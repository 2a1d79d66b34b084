//! Validation of `[run] source_addresses` (and its older spelling
//! `source_addrs`): single addresses or CIDR blocks, expanded to the list
//! of source IPs clients spread their sockets over, each checked to be an
//! address of this machine.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::*;

/// The most addresses a scenario may list or a CIDR block may expand to.
pub const MAX_SOURCES: usize = 65_536;

impl Validator<'_> {
    /// The source addresses and the key they were given under.
    pub(super) fn source_addresses(
        &self,
        r: &RawRun,
        endpoint: &Endpoint,
    ) -> Result<(Vec<IpAddr>, &'static str)> {
        let target_ip: Option<IpAddr> = match endpoint {
            // The bundled server listens on 127.0.0.1.
            Endpoint::Bundled { .. } => Some(IpAddr::from([127, 0, 0, 1])),
            Endpoint::Url(url) | Endpoint::Command { url, .. } => url.host.parse().ok(),
        };
        let (key, items): (&'static str, Vec<(String, String)>) =
            match (&r.source_addresses, &r.source_addrs) {
                (Some(_), Some(_)) => {
                    return Err(self.bad(
                        "run.source_addrs",
                        "give either `source_addresses` or its old name `source_addrs`, not both",
                    ))
                }
                (Some(toml::Value::String(s)), None) => (
                    "source_addresses",
                    vec![("run.source_addresses".into(), s.clone())],
                ),
                (Some(toml::Value::Array(a)), None) => {
                    let mut items = Vec::new();
                    for (i, v) in a.iter().enumerate() {
                        let at = format!("run.source_addresses[{i}]");
                        let Some(s) = v.as_str() else {
                            return Err(self.bad(&at, "expected an address or CIDR string"));
                        };
                        items.push((at, s.to_owned()));
                    }
                    ("source_addresses", items)
                }
                (Some(other), None) => {
                    return Err(self.bad(
                        "run.source_addresses",
                        format!(
                    "expected an address, a CIDR like \"127.0.0.0/24\" or a list of them, found {}",
                    other.type_str()
                ),
                    ))
                }
                (None, Some(list)) => (
                    "source_addrs",
                    list.iter()
                        .enumerate()
                        .map(|(i, s)| (format!("run.source_addrs[{i}]"), s.clone()))
                        .collect(),
                ),
                (None, None) => ("source_addresses", Vec::new()),
            };
        let mut out: Vec<IpAddr> = Vec::new();
        for (at, text) in items {
            let ips = expand(text.trim()).map_err(|why| self.bad(&at, why))?;
            for ip in ips {
                if ip.is_unspecified() || ip.is_multicast() {
                    return Err(self.bad(&at, format!("{ip} cannot be a source address")));
                }
                if out.contains(&ip) && !text.contains('/') {
                    return Err(self.bad(&at, format!("{ip} is listed twice")));
                }
                if let Some(why) = target_ip.and_then(|t| unreachable(ip, t)) {
                    return Err(self.bad(&at, why));
                }
                if !is_local(ip) {
                    return Err(self.bad(
                        &at,
                        format!("{ip} is not an address of this machine (binding to it fails)"),
                    ));
                }
                out.push(ip);
                if out.len() > MAX_SOURCES {
                    return Err(self.bad(&at, format!("more than {MAX_SOURCES} source addresses")));
                }
            }
        }
        out.dedup();
        Ok((out, key))
    }
}

/// A socket bound to an IPv6 source cannot connect to an IPv4 target, nor
/// a non-loopback source to a loopback target (and the reverses): caught
/// now rather than as connect failures.
fn unreachable(source: IpAddr, target: IpAddr) -> Option<String> {
    let why = if source.is_ipv4() != target.is_ipv4() {
        "the address families differ"
    } else if source.is_loopback() != target.is_loopback() {
        "one is a loopback address and the other is not"
    } else {
        return None;
    };
    Some(format!("{source} cannot reach the target {target}: {why}"))
}

/// Loopback addresses are always local on Linux (all of 127.0.0.0/8);
/// others must be bindable. Binding a UDP socket to port 0 sends nothing:
/// it only asks the kernel whether the address is ours.
fn is_local(ip: IpAddr) -> bool {
    if ip.is_loopback() && ip.is_ipv4() {
        return true;
    }
    std::net::UdpSocket::bind((ip, 0)).is_ok()
}

/// One address, or every usable host of a CIDR block (the network and
/// broadcast addresses of IPv4 blocks up to /30 are left out).
pub fn expand(text: &str) -> std::result::Result<Vec<IpAddr>, String> {
    let Some((addr, bits)) = text.split_once('/') else {
        return text
            .parse::<IpAddr>()
            .map(|ip| vec![ip])
            .map_err(|_| format!("\"{text}\" is not an IP address (e.g. \"127.0.0.2\")"));
    };
    let ip: IpAddr = addr
        .trim()
        .parse()
        .map_err(|_| format!("\"{addr}\" in \"{text}\" is not an IP address"))?;
    let width: u32 = if ip.is_ipv4() { 32 } else { 128 };
    let bits: u32 = bits
        .trim()
        .parse()
        .ok()
        .filter(|b| *b <= width)
        .ok_or_else(|| format!("\"{text}\": the prefix length must be 0..={width}"))?;
    let host_bits = width - bits;
    if host_bits > 16 {
        return Err(format!(
            "\"{text}\" has 2^{host_bits} addresses; at most {MAX_SOURCES} (a /{} or longer)",
            width - 16
        ));
    }
    let base: u128 = match ip {
        IpAddr::V4(v) => u128::from(u32::from(v)),
        IpAddr::V6(v) => u128::from(v),
    } & !((1u128 << host_bits) - 1);
    let n = 1u128 << host_bits;
    let (first, last) = if ip.is_ipv4() && host_bits >= 2 {
        (1, n - 2)
    } else {
        (0, n - 1)
    };
    Ok((first..=last)
        .map(|k| match ip {
            IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::from((base + k) as u32)),
            IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::from(base + k)),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::expand;
    use crate::scenario::{parse, PlanOverrides};

    fn plan_with(run: &str) -> anyhow::Result<crate::scenario::Plan> {
        let text = format!(
            "[[stages]]\nduration = \"1s\"\ntarget = 2\n[[clients]]\nchat_rate = 0\n[run]\n{run}\n"
        );
        parse(&text, "t.toml", None, &PlanOverrides::default())
    }

    #[test]
    fn source_addresses_take_cidrs_lists_and_the_old_name() {
        let p = plan_with("source_addresses = \"127.0.0.0/30\"").unwrap();
        let got: Vec<String> = p.run.source_addrs.iter().map(|a| a.to_string()).collect();
        assert_eq!(got, ["127.0.0.1", "127.0.0.2"]);
        let p = plan_with("source_addresses = [\"127.0.0.9\", \"127.0.1.0/31\"]").unwrap();
        assert_eq!(p.run.source_addrs.len(), 3);
        let p = plan_with("source_addrs = [\"127.0.0.2\"]").unwrap();
        assert_eq!(p.run.source_addrs.len(), 1);
        let e = plan_with("source_addrs = [\"127.0.0.2\"]\nsource_addresses = \"127.0.0.3\"")
            .unwrap_err()
            .to_string();
        assert!(e.contains("not both"), "{e}");
        let e = plan_with("source_addresses = 5").unwrap_err().to_string();
        assert!(e.contains("CIDR"), "{e}");
        let e = plan_with("processes = 0").unwrap_err().to_string();
        assert!(e.contains("at least 1 process"), "{e}");
        assert_eq!(plan_with("processes = 3").unwrap().run.processes, Some(3));
    }

    #[test]
    fn cidr_blocks_expand_to_their_hosts() {
        let v = expand("127.0.0.0/24").unwrap();
        assert_eq!(v.len(), 254);
        assert_eq!(v[0].to_string(), "127.0.0.1");
        assert_eq!(v[253].to_string(), "127.0.0.254");
        assert_eq!(expand("127.0.0.9/32").unwrap().len(), 1);
        assert_eq!(expand("127.0.1.7/31").unwrap().len(), 2);
        assert!(expand("127.0.0.0/8").unwrap_err().contains("at most"));
        assert!(expand("127.0.0.0/33").is_err());
        assert!(expand("nope").is_err());
        assert_eq!(expand("::1").unwrap()[0].to_string(), "::1");
    }
}
