//! The command line as docker-proxy parses it: Go's `flag` package, whose long flags take one
//! dash or two, a value after `=` or as the next argument, stop at the first non-flag argument
//! or after `--`, and whose integers take Go's base prefixes (0x, 0o, 0b, a leading 0).

use std::net::{IpAddr, SocketAddr};

pub const USAGE: &str = "Usage of husk-proxy:
  -container-ip string
    \tcontainer ip
  -container-port int
    \tcontainer port (default -1)
  -host-ip string
    \thost ip
  -host-port int
    \thost port (default -1)
  -proto string
    \tproxy protocol (default \"tcp\")
";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    Tcp,
    Udp,
}

#[derive(Debug, PartialEq, Eq)]
pub struct Config {
    pub proto: Proto,
    pub host: SocketAddr,
    pub container: SocketAddr,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Error {
    /// `-h` or `-help`: the usage, exit 0 (as Go's flag.ErrHelp).
    Help,
    /// The command line does not parse: exit 2, as Go's flag package.
    Usage(String),
    /// It parses but a value is unusable: exit 1.
    Invalid(String),
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Help => f.write_str("help requested"),
            Error::Usage(m) | Error::Invalid(m) => f.write_str(m),
        }
    }
}

#[derive(Default)]
struct Raw {
    proto: Option<String>,
    host_ip: Option<String>,
    host_port: Option<i64>,
    container_ip: Option<String>,
    container_port: Option<i64>,
}

pub fn parse<I: IntoIterator<Item = String>>(args: I) -> Result<Config, Error> {
    let raw = parse_raw(args)?;
    let proto = match raw.proto.as_deref().unwrap_or("tcp") {
        "tcp" => Proto::Tcp,
        "udp" => Proto::Udp,
        p => {
            return Err(Error::Invalid(format!(
                "-proto {p:?}: unsupported protocol (tcp or udp)"
            )))
        }
    };
    let host_ip = ip("-host-ip", raw.host_ip)?;
    let host_port = port("-host-port", raw.host_port, 0)?;
    let container_ip = ip("-container-ip", raw.container_ip)?;
    let container_port = port("-container-port", raw.container_port, 1)?;
    Ok(Config {
        proto,
        host: SocketAddr::new(host_ip, host_port),
        container: SocketAddr::new(container_ip, container_port),
    })
}

fn parse_raw<I: IntoIterator<Item = String>>(args: I) -> Result<Raw, Error> {
    let mut raw = Raw::default();
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        // Go stops at the first non-flag argument; docker-proxy ignores the rest.
        if arg.len() < 2 || !arg.starts_with('-') {
            break;
        }
        let body = match arg.strip_prefix("--") {
            Some("") => break,
            Some(b) => b,
            None => &arg[1..],
        };
        if body.is_empty() || body.starts_with('-') || body.starts_with('=') {
            return Err(Error::Usage(format!("bad flag syntax: {arg}")));
        }
        let (name, inline) = match body.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (body, None),
        };
        if !matches!(
            name,
            "proto" | "host-ip" | "host-port" | "container-ip" | "container-port"
        ) {
            if name == "h" || name == "help" {
                return Err(Error::Help);
            }
            return Err(Error::Usage(format!(
                "flag provided but not defined: -{name}"
            )));
        }
        let value = match inline {
            Some(v) => v,
            None => args
                .next()
                .ok_or_else(|| Error::Usage(format!("flag needs an argument: -{name}")))?,
        };
        match name {
            "proto" => raw.proto = Some(value),
            "host-ip" => raw.host_ip = Some(value),
            "container-ip" => raw.container_ip = Some(value),
            "host-port" => raw.host_port = Some(go_int(name, &value)?),
            _ => raw.container_port = Some(go_int(name, &value)?),
        }
    }
    Ok(raw)
}

/// strconv.ParseInt(s, 0, 64), without the underscores Go allows between digits.
fn go_int(name: &str, s: &str) -> Result<i64, Error> {
    let invalid = |why: &str| Error::Usage(format!("invalid value {s:?} for flag -{name}: {why}"));
    let (neg, digits) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let lower = digits.to_ascii_lowercase();
    let (radix, digits) = if let Some(d) = lower.strip_prefix("0x") {
        (16, d)
    } else if let Some(d) = lower.strip_prefix("0o") {
        (8, d)
    } else if let Some(d) = lower.strip_prefix("0b") {
        (2, d)
    } else if lower.len() > 1 && lower.starts_with('0') {
        (8, &lower[1..])
    } else {
        (10, lower.as_str())
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return Err(invalid("parse error"));
    }
    let magnitude =
        u64::from_str_radix(digits, radix).map_err(|_| invalid("value out of range"))?;
    let v = if neg {
        0i64.checked_sub_unsigned(magnitude)
    } else {
        i64::try_from(magnitude).ok()
    };
    v.ok_or_else(|| invalid("value out of range"))
}

fn ip(flag: &str, v: Option<String>) -> Result<IpAddr, Error> {
    let v = v.ok_or_else(|| Error::Invalid(format!("{flag}: missing")))?;
    let ip: IpAddr = v
        .parse()
        .map_err(|_| Error::Invalid(format!("{flag} {v:?}: not an IP address")))?;
    // Go treats an IPv4-mapped IPv6 address as IPv4 (a tcp4 socket).
    Ok(match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    })
}

fn port(flag: &str, v: Option<i64>, min: i64) -> Result<u16, Error> {
    let v = v.ok_or_else(|| Error::Invalid(format!("{flag}: missing")))?;
    if v < min || v > 65535 {
        return Err(Error::Invalid(format!(
            "{flag} {v}: out of range ({min}-65535)"
        )));
    }
    Ok(v as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn docker_daemon_command_line() {
        let c = parse(args(
            "-proto udp -host-ip 127.0.0.1 -host-port 8080 -container-ip 172.17.0.2 -container-port 80",
        ))
        .unwrap();
        assert_eq!(c.proto, Proto::Udp);
        assert_eq!(c.host, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(c.container, "172.17.0.2:80".parse().unwrap());
    }

    #[test]
    fn go_flag_syntax() {
        let c = parse(args(
            "--host-ip=::1 -host-port=0x50 --container-ip ::ffff:10.0.0.1 -container-port 010 -- -bogus",
        ))
        .unwrap();
        assert_eq!(c.proto, Proto::Tcp);
        assert_eq!(c.host, "[::1]:80".parse().unwrap());
        assert_eq!(c.container, "10.0.0.1:8".parse().unwrap());
        // Parsing stops at the first non-flag argument.
        assert!(parse(args(
            "-host-ip 1.2.3.4 -host-port 1 -container-ip 1.2.3.4 -container-port 2 x -bogus"
        ))
        .is_ok());
    }

    #[test]
    fn bad_command_lines() {
        let base = "-host-ip 127.0.0.1 -container-ip 127.0.0.1 -container-port 80";
        let err = |s: &str| parse(args(&format!("{base} {s}"))).unwrap_err();
        assert_eq!(
            err("-host-port abc"),
            Error::Usage("invalid value \"abc\" for flag -host-port: parse error".into())
        );
        assert_eq!(
            err("-host-port 99999999999999999999"),
            Error::Usage(
                "invalid value \"99999999999999999999\" for flag -host-port: value out of range"
                    .into()
            )
        );
        assert_eq!(
            err("-host-port 70000"),
            Error::Invalid("-host-port 70000: out of range (0-65535)".into())
        );
        assert_eq!(
            err("-host-port -1"),
            Error::Invalid("-host-port -1: out of range (0-65535)".into())
        );
        assert_eq!(
            err("-host-port 1 -container-port 0"),
            Error::Invalid("-container-port 0: out of range (1-65535)".into())
        );
        assert_eq!(
            err("-host-port 1 -host-ip 1.2.3"),
            Error::Invalid("-host-ip \"1.2.3\": not an IP address".into())
        );
        assert_eq!(
            err("-host-port 1 -proto sctp"),
            Error::Invalid("-proto \"sctp\": unsupported protocol (tcp or udp)".into())
        );
        assert_eq!(
            err("-bogus"),
            Error::Usage("flag provided but not defined: -bogus".into())
        );
        assert_eq!(
            err("-host-port"),
            Error::Usage("flag needs an argument: -host-port".into())
        );
        assert_eq!(err("---x"), Error::Usage("bad flag syntax: ---x".into()));
        assert_eq!(err("-h"), Error::Help);
        assert_eq!(
            parse(args("-host-port 1")).unwrap_err(),
            Error::Invalid("-host-ip: missing".into())
        );
    }
}
