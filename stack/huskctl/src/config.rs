//! `run`/`create` flags turned into Docker's container-create body (Config, HostConfig,
//! NetworkingConfig), with docker's checks and messages for malformed values.

use std::collections::BTreeMap;

use anyhow::{bail, Context};
use serde_json::{json, Value};

use crate::cli::ContainerOpts;

/// docker's RAMInBytes: `512m`, `1.5g`, `100k`, `1024`; binary units.
pub fn parse_memory(s: &str) -> Result<i64, String> {
    let t = s.trim();
    let digits_end = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(digits_end);
    let n: f64 = num.parse().map_err(|_| format!("invalid size: '{s}'"))?;
    let unit = unit.trim().to_ascii_lowercase();
    let unit = unit.strip_suffix('b').unwrap_or(&unit);
    let unit = unit.strip_suffix('i').unwrap_or(unit);
    let mult: f64 = match unit {
        "" => 1.0,
        "k" => 1024.0,
        "m" => 1024.0 * 1024.0,
        "g" => 1024.0 * 1024.0 * 1024.0,
        "t" => 1024f64.powi(4),
        "p" => 1024f64.powi(5),
        _ => return Err(format!("invalid size: '{s}'")),
    };
    Ok((n * mult) as i64)
}

/// `--cpus 1.5` as Docker's NanoCpus.
pub fn parse_cpus(s: &str) -> Result<i64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok((v * 1e9) as i64),
        _ => Err(format!("failed to parse {s} as a rational number")),
    }
}

/// `no`, `always`, `unless-stopped`, `on-failure[:N]`.
pub fn parse_restart(s: &str) -> Result<(String, i64), String> {
    let (name, count) = match s.split_once(':') {
        Some((n, c)) => (
            n,
            c.parse::<i64>()
                .map_err(|_| format!("maximum retry count must be an integer: '{c}'"))?,
        ),
        None => (s, 0),
    };
    match name {
        "no" | "always" | "unless-stopped" if count == 0 => Ok((name.to_string(), 0)),
        "on-failure" if count >= 0 => Ok((name.to_string(), count)),
        "no" | "always" | "unless-stopped" => Err(format!(
            "maximum retry count cannot be used with restart policy '{name}'"
        )),
        _ => Err(format!("invalid restart policy '{s}'")),
    }
}

/// `KEY=value` as given; a bare `KEY` takes its value from our environment when set there.
fn env_entry(e: &str) -> String {
    if e.contains('=') {
        return e.to_string();
    }
    match std::env::var(e) {
        Ok(v) => format!("{e}={v}"),
        Err(_) => e.to_string(),
    }
}

fn env_file(path: &str) -> anyhow::Result<Vec<String>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("--env-file: {path}"))?;
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let name = line.split('=').next().unwrap_or_default();
        if name.is_empty() || name.contains(char::is_whitespace) {
            bail!(
                "--env-file: {path}:{}: variable '{name}' contains whitespaces or is empty",
                n + 1
            );
        }
        out.push(env_entry(line));
    }
    Ok(out)
}

/// `-v host:ctr[:opts]`, checked as docker's CLI does before it reaches the daemon.
fn bind(v: &str) -> anyhow::Result<String> {
    let parts: Vec<&str> = v.split(':').collect();
    let (ctr, mode) = match parts.as_slice() {
        [_, ctr] => (*ctr, None),
        [_, ctr, mode] => (*ctr, Some(*mode)),
        _ => bail!("invalid volume specification: '{v}'"),
    };
    if parts[0].is_empty() || !ctr.starts_with('/') {
        bail!("invalid volume specification: '{v}': the container path must be absolute");
    }
    if let Some(mode) = mode {
        for m in mode.split(',') {
            if !matches!(
                m,
                "ro" | "rw"
                    | "z"
                    | "Z"
                    | "shared"
                    | "slave"
                    | "private"
                    | "rshared"
                    | "rslave"
                    | "rprivate"
                    | "nocopy"
            ) {
                bail!("invalid volume specification: '{v}': invalid mode: {m}");
            }
        }
    }
    Ok(v.to_string())
}

/// `-p [ip:][hostPort:]containerPort[/proto]` into ExposedPorts and PortBindings.
fn ports(specs: &[String]) -> anyhow::Result<(Value, Value)> {
    let mut exposed = serde_json::Map::new();
    let mut bindings: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for spec in specs {
        let (addr, proto) = spec.rsplit_once('/').unwrap_or((spec, "tcp"));
        if !matches!(proto, "tcp" | "udp" | "sctp") {
            bail!("invalid proto: {proto} in port specification: '{spec}'");
        }
        // An IPv6 host address is written in brackets: [::1]:8080:80.
        let (ip, rest) = match addr.strip_prefix('[') {
            Some(r) => {
                let (ip, rest) = r
                    .split_once("]:")
                    .with_context(|| format!("invalid port specification: '{spec}'"))?;
                (ip.to_string(), rest.to_string())
            }
            None => (String::new(), addr.to_string()),
        };
        let fields: Vec<&str> = rest.split(':').collect();
        let (ip, host, ctr) = match (ip.is_empty(), fields.as_slice()) {
            (true, [c]) => (String::new(), "", *c),
            (true, [h, c]) => (String::new(), *h, *c),
            (true, [i, h, c]) => (i.to_string(), *h, *c),
            (false, [h, c]) => (ip, *h, *c),
            _ => bail!("invalid port specification: '{spec}'"),
        };
        let valid = |p: &str| p.parse::<u16>().is_ok_and(|n| n > 0);
        if !valid(ctr) || !(host.is_empty() || valid(host)) {
            bail!("invalid port specification: '{spec}'");
        }
        let key = format!("{ctr}/{proto}");
        exposed.insert(key.clone(), json!({}));
        bindings
            .entry(key)
            .or_default()
            .push(json!({"HostIp": ip, "HostPort": host}));
    }
    Ok((Value::Object(exposed), json!(bindings)))
}

/// `--security-opt` as docker's CLI sends it: a seccomp profile named by its file goes as the
/// file's JSON.
fn security_opts(opts: &[String]) -> anyhow::Result<Vec<String>> {
    opts.iter()
        .map(|opt| {
            let (k, v) = opt
                .split_once('=')
                .or_else(|| opt.split_once(':'))
                .unwrap_or((opt, ""));
            if v.is_empty() && k != "no-new-privileges" {
                bail!("invalid --security-opt: {opt:?}");
            }
            if k != "seccomp" || v == "unconfined" || v == "builtin" {
                return Ok(opt.clone());
            }
            let text = std::fs::read_to_string(v)
                .map_err(|e| anyhow::anyhow!("--security-opt: seccomp profile {v}: {e}"))?;
            let profile: Value = serde_json::from_str(&text)
                .map_err(|e| anyhow::anyhow!("--security-opt: seccomp profile {v}: {e}"))?;
            Ok(format!("seccomp={profile}"))
        })
        .collect()
}

/// The body of `POST /containers/create`. `attach` says whether the client attaches (run
/// without -d): Docker records that in the config.
pub fn create_body(o: &ContainerOpts, attach: bool) -> anyhow::Result<Value> {
    if o.rm && o.restart.as_ref().is_some_and(|(n, _)| n != "no") {
        bail!("conflicting options: --restart and --rm");
    }
    let mut env = Vec::new();
    for f in &o.env_file {
        env.extend(env_file(f)?);
    }
    env.extend(o.process.env.iter().map(|e| env_entry(e)));
    let binds = o
        .volume
        .iter()
        .map(|v| bind(v))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut tmpfs = serde_json::Map::new();
    for t in &o.tmpfs {
        let (path, opts) = t.split_once(':').unwrap_or((t, ""));
        if !path.starts_with('/') {
            bail!("--tmpfs: invalid mount path '{path}': it must be absolute");
        }
        tmpfs.insert(path.to_string(), json!(opts));
    }
    let (exposed, port_bindings) = ports(&o.publish)?;
    let entrypoint = o.entrypoint.as_ref().map(|e| {
        // `--entrypoint ""` resets the image's entrypoint, as docker sends it.
        json!([e])
    });
    let cmd = (!o.command.is_empty()).then(|| json!(o.command));
    let restart = o
        .restart
        .as_ref()
        .map(|(name, n)| json!({"Name": name, "MaximumRetryCount": n}))
        .unwrap_or_else(|| json!({"Name": "no", "MaximumRetryCount": 0}));
    let mut host = json!({
        "Binds": binds,
        "NetworkMode": o.network.clone().unwrap_or_else(|| "default".into()),
        "PortBindings": port_bindings,
        "RestartPolicy": restart,
        "AutoRemove": o.rm,
        "CapAdd": o.cap_add,
        "CapDrop": o.cap_drop,
        "Privileged": o.privileged,
        "SecurityOpt": security_opts(&o.security_opt)?,
        "ReadonlyRootfs": o.read_only,
        "Tmpfs": tmpfs,
    });
    let h = host.as_object_mut().expect("an object");
    if let Some(m) = o.memory {
        h.insert("Memory".into(), json!(m));
    }
    if let Some(c) = o.cpus {
        h.insert("NanoCpus".into(), json!(c));
    }
    if let Some(p) = o.pids_limit {
        h.insert("PidsLimit".into(), json!(p));
    }
    if o.init {
        h.insert("Init".into(), json!(true));
    }
    let mut body = json!({
        "Hostname": o.hostname.clone().unwrap_or_default(),
        "User": o.process.user.clone().unwrap_or_default(),
        "AttachStdin": attach && o.process.interactive,
        "AttachStdout": attach,
        "AttachStderr": attach,
        "ExposedPorts": exposed,
        "Tty": o.process.tty,
        "OpenStdin": o.process.interactive,
        "StdinOnce": attach && o.process.interactive,
        "Env": env,
        "Cmd": cmd,
        "Image": o.image,
        "WorkingDir": o.process.workdir.clone().unwrap_or_default(),
        "Entrypoint": entrypoint,
        "HostConfig": host,
        "NetworkingConfig": {"EndpointsConfig": {}},
    });
    let b = body.as_object_mut().expect("an object");
    if let Some(s) = &o.stop_signal {
        b.insert("StopSignal".into(), json!(s));
    }
    if let Some(t) = o.stop_timeout {
        b.insert("StopTimeout".into(), json!(t));
    }
    Ok(body)
}

/// An image reference split as Docker's client sends it to pull and tag: the name, and the
/// tag (`latest` when none; the digest when pinned by one).
pub fn split_ref(r: &str) -> (String, String) {
    if let Some((name, digest)) = r.split_once('@') {
        return (name.to_string(), digest.to_string());
    }
    match r.rsplit_once(':') {
        Some((name, tag)) if !tag.contains('/') => (name.to_string(), tag.to_string()),
        _ => (r.to_string(), "latest".to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_as_docker_parses_them() {
        assert_eq!(parse_memory("64m"), Ok(64 << 20));
        assert_eq!(parse_memory("1g"), Ok(1 << 30));
        assert_eq!(parse_memory("1.5k"), Ok(1536));
        assert_eq!(parse_memory("100"), Ok(100));
        assert!(parse_memory("lots").is_err());
        assert_eq!(parse_cpus("1.5"), Ok(1_500_000_000));
        assert_eq!(parse_restart("on-failure:3"), Ok(("on-failure".into(), 3)));
        assert!(parse_restart("sometimes").is_err());
        assert_eq!(split_ref("busybox"), ("busybox".into(), "latest".into()));
        assert_eq!(
            split_ref("localhost:5000/busybox"),
            ("localhost:5000/busybox".into(), "latest".into())
        );
        assert_eq!(
            split_ref("localhost:5000/busybox:1"),
            ("localhost:5000/busybox".into(), "1".into())
        );
    }

    #[test]
    fn ports_as_docker_sends_them() {
        let (e, b) = ports(&["127.0.0.1:8080:80".into(), "53/udp".into()]).unwrap();
        assert_eq!(e, json!({"80/tcp": {}, "53/udp": {}}));
        assert_eq!(
            b,
            json!({"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8080"}],
                   "53/udp": [{"HostIp": "", "HostPort": ""}]})
        );
        assert!(ports(&["x:80".into()]).is_err());
        assert!(bind("relative:/x:ro").is_ok());
        assert!(bind("/a:rel").is_err());
    }
}
