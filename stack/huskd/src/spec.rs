//! The OCI runtime spec of a container: the image's config (Entrypoint, Cmd, Env, WorkingDir,
//! User, StopSignal) under the create request's `Config`, Docker's defaults (capabilities,
//! masked and read-only paths, mounts), and the `HostConfig`'s binds, tmpfs, limits, network
//! mode, capabilities and privilege.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

/// A request the spec cannot be built from: the message names the field.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SpecError(pub String);

fn bad(msg: impl Into<String>) -> SpecError {
    SpecError(msg.into())
}

/// Docker's default capabilities (moby's oci/caps/defaults.go).
const DEFAULT_CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// Every capability this kernel line knows, in number order (0 to 40).
const ALL_CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

const MASKED: &[&str] = &[
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

const READONLY: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

fn strings(v: &Value) -> Option<Vec<String>> {
    v.as_array().map(|a| {
        a.iter()
            .filter_map(|s| s.as_str().map(str::to_string))
            .collect()
    })
}

fn cap_name(name: &str) -> Result<String, SpecError> {
    let upper = name.to_ascii_uppercase();
    if upper == "ALL" {
        return Ok(upper);
    }
    let full = if upper.starts_with("CAP_") {
        upper
    } else {
        format!("CAP_{upper}")
    };
    if ALL_CAPS.contains(&full.as_str()) {
        Ok(full)
    } else {
        Err(bad(format!("unknown capability: {name:?}")))
    }
}

/// Docker's rule: CapDrop first (ALL drops every default), then CapAdd (ALL adds every one).
fn capabilities(host: &Value) -> Result<Vec<String>, SpecError> {
    if host["Privileged"].as_bool() == Some(true) {
        return Ok(ALL_CAPS.iter().map(|s| s.to_string()).collect());
    }
    let add = strings(&host["CapAdd"]).unwrap_or_default();
    let drop = strings(&host["CapDrop"]).unwrap_or_default();
    let add: Vec<String> = add.iter().map(|c| cap_name(c)).collect::<Result<_, _>>()?;
    let drop: Vec<String> = drop.iter().map(|c| cap_name(c)).collect::<Result<_, _>>()?;
    let mut caps: Vec<String> = if drop.iter().any(|c| c == "ALL") {
        Vec::new()
    } else {
        DEFAULT_CAPS
            .iter()
            .filter(|c| !drop.iter().any(|d| d == *c))
            .map(|s| s.to_string())
            .collect()
    };
    if add.iter().any(|c| c == "ALL") {
        return Ok(ALL_CAPS.iter().map(|s| s.to_string()).collect());
    }
    for c in add {
        if !caps.contains(&c) {
            caps.push(c);
        }
    }
    Ok(caps)
}

/// `Binds` entries: `host:ctr[:opts]`, the host path absolute and existing.
pub fn binds(host: &Value) -> Result<Vec<Value>, SpecError> {
    let mut out = Vec::new();
    for b in strings(&host["Binds"]).unwrap_or_default() {
        let parts: Vec<&str> = b.split(':').collect();
        let (src, dst, opts) = match parts.as_slice() {
            [s, d] => (*s, *d, ""),
            [s, d, o] => (*s, *d, *o),
            _ => return Err(bad(format!("invalid volume specification: '{b}'"))),
        };
        if !src.starts_with('/') {
            return Err(bad(format!(
                "invalid volume specification: '{b}': the host path must be absolute (named volumes are not supported)"
            )));
        }
        if !dst.starts_with('/') || dst == "/" {
            return Err(bad(format!(
                "invalid volume specification: '{b}': the container path must be absolute and not /"
            )));
        }
        if !Path::new(src).exists() {
            return Err(bad(format!(
                "invalid mount config for type \"bind\": bind source path does not exist: {src}"
            )));
        }
        let mut options = vec!["rbind".to_string(), "rprivate".to_string()];
        for o in opts.split(',').filter(|o| !o.is_empty()) {
            match o {
                "ro" => options.push("ro".into()),
                "rw" | "z" | "Z" => {}
                "private" | "rprivate" | "shared" | "rshared" | "slave" | "rslave" => {
                    options[1] = o.to_string()
                }
                _ => {
                    return Err(bad(format!(
                        "invalid volume specification: '{b}': bad option {o:?}"
                    )))
                }
            }
        }
        out.push(json!({"destination": dst, "type": "bind", "source": src, "options": options}));
    }
    Ok(out)
}

fn tmpfs(host: &Value) -> Result<Vec<Value>, SpecError> {
    let mut out = Vec::new();
    if let Some(map) = host["Tmpfs"].as_object() {
        for (dst, opts) in map {
            if !dst.starts_with('/') || dst == "/" {
                return Err(bad(format!(
                    "invalid tmpfs mount: {dst:?} is not an absolute path"
                )));
            }
            let mut options: Vec<String> = ["noexec", "nosuid", "nodev"].map(String::from).into();
            options.extend(
                opts.as_str()
                    .unwrap_or_default()
                    .split(',')
                    .filter(|o| !o.is_empty())
                    .map(str::to_string),
            );
            out.push(
                json!({"destination": dst, "type": "tmpfs", "source": "tmpfs", "options": options}),
            );
        }
    }
    Ok(out)
}

/// The first of the image's layer directories (top first) that has `file`: enough to read
/// /etc/passwd before the rootfs is mounted.
fn image_file(layers: &[PathBuf], file: &str) -> String {
    layers
        .iter()
        .find_map(|l| std::fs::read_to_string(l.join(file)).ok())
        .unwrap_or_default()
}

/// `user`, `uid`, `user:group`, `uid:gid`, resolved against the image's passwd and group.
fn resolve_user(user: &str, layers: &[PathBuf]) -> Result<(u32, u32), SpecError> {
    if user.is_empty() {
        return Ok((0, 0));
    }
    let (u, g) = match user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (user, None),
    };
    let passwd = image_file(layers, "etc/passwd");
    let entry = passwd
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.len() >= 4 && (f[0] == u || (u.parse::<u32>().is_ok() && f[2] == u)));
    let uid = match (u.parse::<u32>(), &entry) {
        (Ok(n), _) => n,
        (Err(_), Some(f)) => f[2].parse().unwrap_or(0),
        (Err(_), None) => {
            return Err(bad(format!(
                "unable to find user {u}: no matching entries in passwd file"
            )))
        }
    };
    let gid = match g {
        None => entry.and_then(|f| f[3].parse().ok()).unwrap_or(0),
        Some(g) => match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => image_file(layers, "etc/group")
                .lines()
                .map(|l| l.split(':').collect::<Vec<_>>())
                .find(|f| f.len() >= 3 && f[0] == g)
                .and_then(|f| f[2].parse().ok())
                .ok_or_else(|| {
                    bad(format!(
                        "unable to find group {g}: no matching entries in group file"
                    ))
                })?,
        },
    };
    Ok((uid, gid))
}

/// The image's config merged under the request's, as Docker does it: an Entrypoint given
/// drops the image's Cmd; Env adds to (and overrides) the image's.
pub fn merge_config(config: &mut Value, image: &husk_image::ImageConfig) {
    let given = |v: &Value| !v.is_null();
    if !given(&config["Entrypoint"]) {
        config["Entrypoint"] = json!(image.entrypoint);
        if !given(&config["Cmd"]) {
            config["Cmd"] = json!(image.cmd);
        }
    }
    let mut env: Vec<String> = image.env.clone();
    for e in strings(&config["Env"]).unwrap_or_default() {
        let key = e.split('=').next().unwrap_or_default().to_string();
        env.retain(|x| x.split('=').next() != Some(key.as_str()));
        env.push(e);
    }
    config["Env"] = json!(env);
    for (field, value) in [
        ("WorkingDir", &image.working_dir),
        ("User", &image.user),
        ("StopSignal", &image.stop_signal),
    ] {
        if config[field].as_str().is_none_or(str::is_empty) {
            config[field] = json!(value.clone().unwrap_or_default());
        }
    }
    if !config["Labels"].is_object() {
        config["Labels"] = json!(image.labels);
    }
}

/// The process's argv: Entrypoint then Cmd.
pub fn argv(config: &Value) -> Vec<String> {
    let mut args = strings(&config["Entrypoint"]).unwrap_or_default();
    args.extend(strings(&config["Cmd"]).unwrap_or_default());
    args
}

/// The project's init (tini's behaviour), found beside huskd or on $PATH.
pub const INIT: &str = "husk-init";
/// Where Docker mounts its init in the container.
const DOCKER_INIT: &str = "/sbin/docker-init";

/// Files a container gets bind-mounted, as Docker makes them: /etc/hostname, /etc/hosts,
/// /etc/resolv.conf.
pub struct EtcFiles<'a> {
    pub hostname: &'a Path,
    pub hosts: &'a Path,
    pub resolv: &'a Path,
}

pub struct Input<'a> {
    pub id: &'a str,
    pub namespace: &'a str,
    pub config: &'a Value,
    pub host: &'a Value,
    pub layers: &'a [PathBuf],
    pub hostname: &'a str,
    /// husk-init, for `HostConfig.Init`.
    pub init: Option<&'a Path>,
    pub etc: EtcFiles<'a>,
}

/// Whether the container joins the host's network namespace; refuses modes not supported.
pub fn host_network(host: &Value) -> Result<bool, SpecError> {
    match host["NetworkMode"].as_str().unwrap_or_default() {
        "host" => Ok(true),
        "" | "default" | "none" | "bridge" => Ok(false),
        other => Err(bad(format!(
            "network mode {other:?} is not supported (bridge, none and host are)"
        ))),
    }
}

pub fn build(i: &Input) -> Result<Value, SpecError> {
    let (config, host) = (i.config, i.host);
    let mut args = argv(config);
    if args.is_empty() {
        return Err(bad("no command specified"));
    }
    let mut init_mount = None;
    if host["Init"].as_bool() == Some(true) {
        // Docker's way: its init at /sbin/docker-init, `--` so that the command's own flags
        // are not read as the init's.
        let Some(path) = i.init.filter(|p| p.is_file()) else {
            return Err(bad(format!(
                "HostConfig.Init: the init binary {} was not found (beside huskd, on $PATH, or --init-path)",
                i.init.unwrap_or(Path::new(INIT)).display()
            )));
        };
        args.splice(0..0, [DOCKER_INIT.to_string(), "--".to_string()]);
        init_mount = Some(
            json!({"destination": DOCKER_INIT, "type": "bind", "source": path, "options": ["rbind", "rprivate", "ro"]}),
        );
    }
    let privileged = host["Privileged"].as_bool() == Some(true);
    let (uid, gid) = resolve_user(config["User"].as_str().unwrap_or_default(), i.layers)?;
    let caps = capabilities(host)?;
    let cwd = config["WorkingDir"]
        .as_str()
        .filter(|s| !s.is_empty())
        .unwrap_or("/");
    if !cwd.starts_with('/') {
        return Err(bad(format!(
            "the working directory '{cwd}' is invalid, it needs to be an absolute path"
        )));
    }
    let mut env = strings(&config["Env"]).unwrap_or_default();
    if !env.iter().any(|e| e.starts_with("PATH=")) {
        env.insert(
            0,
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
        );
    }
    env.push(format!("HOSTNAME={}", i.hostname));
    let tty = config["Tty"].as_bool() == Some(true);
    if tty && !env.iter().any(|e| e.starts_with("TERM=")) {
        env.push("TERM=xterm".into());
    }
    let sys_opts = if privileged {
        json!(["nosuid", "noexec", "nodev", "rw"])
    } else {
        json!(["nosuid", "noexec", "nodev", "ro"])
    };
    let mut mounts = vec![
        json!({"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}),
        json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]}),
        json!({"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": sys_opts}),
        json!({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["ro", "nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=67108864"]}),
    ];
    for (dst, src) in [
        ("/etc/resolv.conf", i.etc.resolv),
        ("/etc/hostname", i.etc.hostname),
        ("/etc/hosts", i.etc.hosts),
    ] {
        mounts.push(json!({"destination": dst, "type": "bind", "source": src, "options": ["rbind", "rprivate"]}));
    }
    mounts.extend(init_mount);
    let user_mounts: Vec<Value> = binds(host)?.into_iter().chain(tmpfs(host)?).collect();
    // A user mount replaces a default one of the same destination, as in Docker.
    mounts.retain(|m| {
        !user_mounts
            .iter()
            .any(|u| u["destination"] == m["destination"])
    });
    mounts.extend(user_mounts);

    let mut namespaces = vec![
        json!({"type": "pid"}),
        json!({"type": "ipc"}),
        json!({"type": "uts"}),
        json!({"type": "mount"}),
    ];
    if !host_network(host)? {
        namespaces.push(json!({"type": "network"}));
    }
    let mut resources = json!({"devices": [{"allow": privileged, "access": "rwm"}]});
    let num = |k: &str| host[k].as_i64().filter(|n| *n > 0);
    if let Some(m) = num("Memory") {
        resources["memory"] = json!({"limit": m});
    }
    if let Some(n) = num("NanoCpus") {
        resources["cpu"] = json!({"period": 100_000u64, "quota": (n / 10_000).max(1_000)});
    }
    if let Some(p) = num("PidsLimit") {
        resources["pids"] = json!({"limit": p});
    }
    let mut linux = json!({
        "namespaces": namespaces,
        "resources": resources,
        "cgroupsPath": format!("/{}/{}", i.namespace, i.id),
    });
    if !privileged {
        linux["maskedPaths"] = json!(MASKED);
        linux["readonlyPaths"] = json!(READONLY);
    }
    if let Some(s) = crate::seccomp::for_container(host, &caps).map_err(|e| bad(e.to_string()))? {
        linux["seccomp"] = s;
    }
    let security = crate::security_opt::parse(host).map_err(|e| bad(e.to_string()))?;
    let mut spec = json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": tty,
            "user": {"uid": uid, "gid": gid},
            "args": args,
            "env": env,
            "cwd": cwd,
            "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
            "noNewPrivileges": security.no_new_privileges,
        },
        "root": {"path": "rootfs", "readonly": host["ReadonlyRootfs"].as_bool() == Some(true)},
        "hostname": i.hostname,
        "mounts": mounts,
        "linux": linux,
    });
    if let Some(profile) = security.apparmor {
        spec["process"]["apparmorProfile"] = json!(profile);
    }
    Ok(spec)
}

/// An exec's process: the container's env and user unless the request overrides them.
pub fn exec_process(
    container: &Value,
    exec: &Value,
    layers: &[PathBuf],
) -> Result<Value, SpecError> {
    let args = strings(&exec["Cmd"]).unwrap_or_default();
    if args.is_empty() {
        return Err(bad("no exec command specified"));
    }
    let user = exec["User"]
        .as_str()
        .filter(|s| !s.is_empty())
        .or(container["Config"]["User"].as_str())
        .unwrap_or_default();
    let (uid, gid) = resolve_user(user, layers)?;
    let mut env: BTreeMap<String, String> = BTreeMap::new();
    let mut order = Vec::new();
    for e in strings(&container["Config"]["Env"])
        .unwrap_or_default()
        .into_iter()
        .chain(strings(&exec["Env"]).unwrap_or_default())
    {
        let (k, v) = e.split_once('=').unwrap_or((&e, ""));
        if env.insert(k.to_string(), v.to_string()).is_none() {
            order.push(k.to_string());
        }
    }
    let env: Vec<String> = order.iter().map(|k| format!("{k}={}", env[k])).collect();
    let caps = capabilities(&container["HostConfig"])?;
    let cwd = exec["WorkingDir"]
        .as_str()
        .filter(|s| !s.is_empty())
        .or(container["Config"]["WorkingDir"]
            .as_str()
            .filter(|s| !s.is_empty()))
        .unwrap_or("/");
    let mut process = json!({
        "terminal": exec["Tty"].as_bool() == Some(true),
        "user": {"uid": uid, "gid": gid},
        "args": args,
        "env": env,
        "cwd": cwd,
        "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
    });
    // An exec runs as confined as the container's process, as moby's exec does.
    let security =
        crate::security_opt::parse(&container["HostConfig"]).map_err(|e| bad(e.to_string()))?;
    process["noNewPrivileges"] = json!(security.no_new_privileges);
    if let Some(profile) = security.apparmor {
        process["apparmorProfile"] = json!(profile);
    }
    Ok(process)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_add_drop() {
        let h = json!({"CapDrop": ["ALL"], "CapAdd": ["net_admin", "CAP_KILL"]});
        assert_eq!(capabilities(&h).unwrap(), ["CAP_NET_ADMIN", "CAP_KILL"]);
        let h = json!({"CapDrop": ["chown"]});
        assert!(!capabilities(&h).unwrap().contains(&"CAP_CHOWN".to_string()));
        assert!(capabilities(&json!({"CapAdd": ["nope"]})).is_err());
    }

    fn build_with(host: &Value, init: Option<&Path>) -> Result<Value, SpecError> {
        let etc = Path::new("/etc/hosts");
        build(&Input {
            id: "x",
            namespace: "ns",
            config: &json!({"Cmd": ["sh", "-c", "exit 3"]}),
            host,
            layers: &[],
            hostname: "x",
            init,
            etc: EtcFiles {
                hostname: etc,
                hosts: etc,
                resolv: etc,
            },
        })
    }

    #[test]
    fn init_wraps_the_command() {
        let host = json!({"Init": true});
        let s = build_with(&host, Some(Path::new("/bin/sh"))).unwrap();
        assert_eq!(
            s["process"]["args"],
            json!(["/sbin/docker-init", "--", "sh", "-c", "exit 3"])
        );
        let m = s["mounts"].as_array().unwrap();
        let m = m.iter().find(|m| m["destination"] == DOCKER_INIT).unwrap();
        assert_eq!(m["source"], "/bin/sh");
        assert!(m["options"].as_array().unwrap().contains(&json!("ro")));
        let e = build_with(&host, Some(Path::new("/nonexistent/husk-init"))).unwrap_err();
        assert!(e.0.contains("/nonexistent/husk-init"), "{e}");
        assert!(build_with(&host, None).unwrap_err().0.contains(INIT));
        let s = build_with(&json!({}), None).unwrap();
        assert_eq!(s["process"]["args"][0], "sh");
    }

    #[test]
    fn bind_forms() {
        let b = binds(&json!({"Binds": ["/tmp:/x:ro"]})).unwrap();
        assert_eq!(b[0]["options"], json!(["rbind", "rprivate", "ro"]));
        for bad in [
            "rel:/x",
            "/tmp:x",
            "/nonexistent-huskd:/x",
            "/tmp:/x:bogus",
            "/tmp",
        ] {
            assert!(binds(&json!({"Binds": [bad]})).is_err(), "{bad}");
        }
    }
}
