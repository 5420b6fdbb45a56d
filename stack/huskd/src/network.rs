//! Which containers go on the bridge, and with which published ports: `HostConfig`'s
//! NetworkMode and PortBindings read as dockerd reads them. The bridge itself, the veths, the
//! addresses and the proxies are husk_net's (notes/net.md).

use husk_net::ports::PortSpec;
use serde_json::{json, Value};

/// Whether the container goes on the bridge: `bridge`, and Docker's `default` (or nothing)
/// when huskd has a bridge. `bridge` on a huskd run with `--bridge none` is refused.
pub fn on_bridge(host: &Value, have_bridge: bool) -> Result<bool, String> {
    match host["NetworkMode"].as_str().unwrap_or_default() {
        "" | "default" => Ok(have_bridge),
        "bridge" if have_bridge => Ok(true),
        "bridge" => Err("network bridge: huskd runs without one (--bridge none)".into()),
        _ => Ok(false),
    }
}

/// `HostConfig.PortBindings` (`{"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8080"}]}`) as
/// husk-proxy's specs. Published ports need the bridge: with another network mode they are
/// refused, as dockerd refuses them with `none` (with `host` it drops them with a warning in
/// the client; huskd ignores no field).
pub fn ports(host: &Value, on_bridge: bool) -> Result<Vec<PortSpec>, String> {
    let bindings = match &host["PortBindings"] {
        Value::Null => return Ok(Vec::new()),
        Value::Object(m) => m,
        _ => return Err("HostConfig.PortBindings: not an object".into()),
    };
    let mut specs = Vec::new();
    for (port, list) in bindings {
        let (number, proto) = port.split_once('/').unwrap_or((port, "tcp"));
        let list = match list {
            Value::Null => continue,
            Value::Array(l) => l,
            _ => return Err(format!("HostConfig.PortBindings[{port:?}]: not a list")),
        };
        for b in list {
            let field = |k: &str| match &b[k] {
                Value::Null => Ok(""),
                Value::String(s) => Ok(s.as_str()),
                _ => Err(format!(
                    "HostConfig.PortBindings[{port:?}].{k}: not a string"
                )),
            };
            let (ip, host_port) = (field("HostIp")?, field("HostPort")?);
            if host_port.is_empty() {
                return Err(format!(
                    "-p {number}/{proto}: a host port is required (huskd does not pick one)"
                ));
            }
            let text = match ip {
                "" => format!("{host_port}:{number}/{proto}"),
                ip if ip.contains(':') => format!("[{ip}]:{host_port}:{number}/{proto}"),
                ip => format!("{ip}:{host_port}:{number}/{proto}"),
            };
            specs.push(text.parse::<PortSpec>().map_err(|e| e.to_string())?);
        }
    }
    if !specs.is_empty() && !on_bridge {
        let mode = host["NetworkMode"].as_str().unwrap_or_default();
        return Err(format!(
            "conflicting options: port publishing and the container type network mode {mode:?}"
        ));
    }
    Ok(specs)
}

/// Docker's `Ports` of GET /containers/json, for a running container's specs.
pub fn summary_ports(specs: &[PortSpec]) -> Value {
    specs
        .iter()
        .map(|s| {
            json!({"IP": s.host_ip.to_string(), "PrivatePort": s.container_port,
                   "PublicPort": s.host_port, "Type": s.proto.as_str()})
        })
        .collect()
}

/// Docker's `NetworkSettings` of inspect.
pub fn settings(address: &str, bridge: Option<&husk_net::Bridge>, specs: &[PortSpec]) -> Value {
    let mut ports = serde_json::Map::new();
    for s in specs {
        let key = format!("{}/{}", s.container_port, s.proto.as_str());
        let entry = ports.entry(key).or_insert_with(|| json!([]));
        if let Value::Array(a) = entry {
            a.push(json!({"HostIp": s.host_ip.to_string(), "HostPort": s.host_port.to_string()}));
        }
    }
    let (gateway, prefix) = match (address.is_empty(), bridge) {
        (false, Some(b)) => (b.gateway.to_string(), b.subnet.prefix_len()),
        _ => (String::new(), 0),
    };
    let endpoint = json!({"IPAddress": address, "IPPrefixLen": prefix, "Gateway": gateway});
    let mut v = endpoint.clone();
    v["Ports"] = Value::Object(ports);
    v["Bridge"] = json!(bridge.map(|b| b.name.clone()).unwrap_or_default());
    v["Networks"] = if address.is_empty() {
        json!({})
    } else {
        json!({ "bridge": endpoint })
    };
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_bindings_as_docker_sends_them() {
        let host = json!({"NetworkMode": "default", "PortBindings": {
            "80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8080"}],
            "53/udp": [{"HostIp": "", "HostPort": "5353"}]}});
        let specs = ports(&host, true).unwrap();
        let texts: Vec<String> = specs.iter().map(|s| s.to_string()).collect();
        assert_eq!(texts, ["0.0.0.0:5353:53/udp", "127.0.0.1:8080:80/tcp"]);
        assert_eq!(
            summary_ports(&specs[1..]),
            json!([{"IP": "127.0.0.1", "PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"}])
        );
    }

    #[test]
    fn bad_bindings_are_named() {
        let with = |b: Value, mode: &str| {
            ports(
                &json!({"NetworkMode": mode, "PortBindings": b}),
                mode != "none",
            )
            .unwrap_err()
        };
        assert_eq!(
            with(json!({"80/tcp": [{"HostPort": "70000"}]}), "default"),
            "-p 70000:80/tcp: host port 70000: out of range (1-65535)"
        );
        assert!(with(json!({"80/tcp": [{"HostPort": ""}]}), "default").contains("host port"));
        assert!(with(json!({"80/sctp": [{"HostPort": "1"}]}), "default").contains("sctp"));
        assert!(with(json!({"80/tcp": [{"HostPort": "81"}]}), "none").contains("conflicting"));
        assert!(with(json!([]), "default").contains("PortBindings"));
        assert!(ports(&json!({"PortBindings": {"80/tcp": null}}), false)
            .unwrap()
            .is_empty());
    }

    #[test]
    fn which_containers_go_on_the_bridge() {
        let mode = |m: &str, have| on_bridge(&json!({"NetworkMode": m}), have);
        assert_eq!(mode("default", true), Ok(true));
        assert_eq!(mode("", true), Ok(true));
        assert_eq!(mode("default", false), Ok(false));
        assert_eq!(mode("bridge", true), Ok(true));
        assert!(mode("bridge", false).unwrap_err().contains("--bridge none"));
        assert_eq!(mode("none", true), Ok(false));
        assert_eq!(mode("host", true), Ok(false));
    }
}
