//! Docker's `-p [hostip:]hostport:containerport[/tcp|/udp]`, split as Docker's nat package
//! splits it: the last field is the container port, the one before the host port, the rest
//! the host address, in brackets or not, an IPv6 one in brackets (`[::1]:8080:80`: Docker
//! 20.10 refuses `::1:8080:80`, later versions take it); the protocol in any case. Without a host address the port is published on 0.0.0.0, as Docker 20.10 does.
//! Not taken (Docker takes them): port ranges, a left-out host port (Docker picks one), sctp.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    Tcp,
    Udp,
}

impl Proto {
    pub fn as_str(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortSpec {
    pub host_ip: IpAddr,
    pub host_port: u16,
    pub container_port: u16,
    pub proto: Proto,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("-p {spec}: {why}")]
pub struct SpecError {
    pub spec: String,
    pub why: String,
}

impl fmt::Display for PortSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.host_ip {
            IpAddr::V6(ip) => write!(f, "[{ip}]")?,
            IpAddr::V4(ip) => write!(f, "{ip}")?,
        }
        let (h, c, p) = (self.host_port, self.container_port, self.proto.as_str());
        write!(f, ":{h}:{c}/{p}")
    }
}

fn port(which: &str, s: &str) -> Result<u16, String> {
    if s.is_empty() {
        return Err(format!("{which} port: missing"));
    }
    if s.contains('-') {
        return Err(format!("{which} port {s}: port ranges are not supported"));
    }
    if !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("{which} port {s:?}: not a number"));
    }
    match s.parse::<u32>() {
        Ok(p @ 1..=65535) => Ok(p as u16),
        _ => Err(format!("{which} port {s}: out of range (1-65535)")),
    }
}

impl FromStr for PortSpec {
    type Err = SpecError;

    fn from_str(spec: &str) -> Result<Self, SpecError> {
        let parse = || -> Result<PortSpec, String> {
            let (rest, proto) = match spec.rsplit_once('/') {
                Some((r, p)) if p.is_empty() || p.eq_ignore_ascii_case("tcp") => (r, Proto::Tcp),
                Some((r, p)) if p.eq_ignore_ascii_case("udp") => (r, Proto::Udp),
                Some((_, p)) => return Err(format!("protocol {p:?}: tcp or udp")),
                None => (spec, Proto::Tcp),
            };
            let shape = || "expected [hostip:]hostport:containerport[/udp]".to_string();
            let (front, container) = rest.rsplit_once(':').ok_or_else(shape)?;
            let (ip, host) = match front.rsplit_once(':') {
                Some((ip, host)) => (Some(ip), host),
                None => (None, front),
            };
            let host_ip = match ip {
                None | Some("") => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                Some(ip) => {
                    let bare = ip.strip_prefix('[').and_then(|i| i.strip_suffix(']'));
                    let bad = |why| format!("host address {ip:?}: {why}");
                    if bare.is_none() && ip.contains(':') {
                        return Err(bad("an IPv6 address goes in brackets"));
                    }
                    bare.unwrap_or(ip)
                        .parse::<IpAddr>()
                        .map_err(|_| bad("not an IP address"))?
                }
            };
            Ok(PortSpec {
                host_ip,
                host_port: port("host", host)?,
                container_port: port("container", container)?,
                proto,
            })
        };
        parse().map_err(|why| SpecError {
            spec: spec.to_string(),
            why,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_forms() {
        let p: PortSpec = "127.0.0.1:8080:80".parse().unwrap();
        assert_eq!(p.to_string(), "127.0.0.1:8080:80/tcp");
        assert_eq!(
            "8080:80/udp".parse::<PortSpec>().unwrap().to_string(),
            "0.0.0.0:8080:80/udp"
        );
        assert_eq!(
            "[::1]:53:5353/udp".parse::<PortSpec>().unwrap().to_string(),
            "[::1]:53:5353/udp"
        );
        assert_eq!(
            "1:65535/tcp".parse::<PortSpec>().unwrap().container_port,
            65535
        );
    }

    #[test]
    fn bad_specs() {
        let err = |s: &str| s.parse::<PortSpec>().unwrap_err().to_string();
        assert_eq!(
            err("70000:80"),
            "-p 70000:80: host port 70000: out of range (1-65535)"
        );
        assert_eq!(
            err("8080:0"),
            "-p 8080:0: container port 0: out of range (1-65535)"
        );
        assert_eq!(
            err("8080:99999999999"),
            "-p 8080:99999999999: container port 99999999999: out of range (1-65535)"
        );
        assert_eq!(
            err("80"),
            "-p 80: expected [hostip:]hostport:containerport[/udp]"
        );
        assert_eq!(
            err("8080:80/sctp"),
            "-p 8080:80/sctp: protocol \"sctp\": tcp or udp"
        );
        assert_eq!(
            err("1.2.3:8080:80"),
            "-p 1.2.3:8080:80: host address \"1.2.3\": not an IP address"
        );
        assert_eq!(
            err("[::1:8080:80"),
            "-p [::1:8080:80: host address \"[::1\": an IPv6 address goes in brackets"
        );
        assert_eq!(err("127.0.0.1::80"), "-p 127.0.0.1::80: host port: missing");
        assert_eq!(
            err("8000-8001:80"),
            "-p 8000-8001:80: host port 8000-8001: port ranges are not supported"
        );
        assert_eq!(err("+80:80"), "-p +80:80: host port \"+80\": not a number");
        assert_eq!(
            err(""),
            "-p : expected [hostip:]hostport:containerport[/udp]"
        );
    }
}
