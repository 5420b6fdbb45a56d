//! `husk features`: the runtime-spec "features" document (runtime-spec features.md), in the shape
//! runc 1.2 prints it, but true to what husk actually implements.
//!
//! runc 1.2 builds a `specs-go/features.Features` and writes it with a `json.Encoder` indented by
//! four spaces. Field order is the Go struct order; pointers that are nil and empty slices/maps are
//! omitted (`omitempty`), while a `*bool` pointing at `false` is printed. Annotations are a Go map,
//! so their keys come out sorted (we use a `BTreeMap`). The Encoder appends "\n": callers print the
//! returned string with `println!` (it carries no trailing newline itself).
//!
//! runc 1.2 vs husk (see notes/runc-behaviour.md): runc omits `linux.seccomp` entirely when built
//! without libseccomp; husk prints `"seccomp": {"enabled": false}` instead (valid per features.md:
//! "enabled: whether seccomp support is compiled in"). runc 1.2 claims systemd/systemdUser/
//! apparmor/selinux/intelRdt/idmap all true; husk says what it supports.

use std::collections::BTreeMap;

use serde::Serialize;

/// Lowest runtime-spec version accepted (runc: "1.0.0").
pub const OCI_VERSION_MIN: &str = "1.0.0";
/// Highest runtime-spec version understood (runc 1.2: specs.Version = "1.2.0").
pub const OCI_VERSION_MAX: &str = crate::oci_state::OCI_VERSION;

/// Hook names, in runc's `configs.KnownHookNames()` order.
pub const HOOKS: [&str; 6] = [
    "prestart",
    "createRuntime",
    "createContainer",
    "startContainer",
    "poststart",
    "poststop",
];

/// runc 1.2's `specconv.KnownMountOptions()`, sorted: mount(2) flags, propagation flags,
/// recursive (mount_setattr) flags and `tmpcopyup`. (runc 1.1.x also listed "acl" and "noacl";
/// 1.2 dropped them, PR #3739. "idmap"/"ridmap" are accepted by 1.2 but not listed.)
pub const MOUNT_OPTIONS: [&str; 60] = [
    "async",
    "atime",
    "bind",
    "defaults",
    "dev",
    "diratime",
    "dirsync",
    "exec",
    "iversion",
    "lazytime",
    "loud",
    "mand",
    "noatime",
    "nodev",
    "nodiratime",
    "noexec",
    "noiversion",
    "nolazytime",
    "nomand",
    "norelatime",
    "nostrictatime",
    "nosuid",
    "nosymfollow",
    "private",
    "ratime",
    "rbind",
    "rdev",
    "rdiratime",
    "relatime",
    "remount",
    "rexec",
    "rnoatime",
    "rnodev",
    "rnodiratime",
    "rnoexec",
    "rnorelatime",
    "rnostrictatime",
    "rnosuid",
    "rnosymfollow",
    "ro",
    "rprivate",
    "rrelatime",
    "rro",
    "rrw",
    "rshared",
    "rslave",
    "rstrictatime",
    "rsuid",
    "rsymfollow",
    "runbindable",
    "rw",
    "shared",
    "silent",
    "slave",
    "strictatime",
    "suid",
    "symfollow",
    "sync",
    "tmpcopyup",
    "unbindable",
];

/// Namespaces husk can create or join, sorted as runc prints them.
pub const NAMESPACES: [&str; 8] = [
    "cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts",
];

/// Every capability the kernel headers define, CAP_CHOWN (0) .. CAP_CHECKPOINT_RESTORE (40), in
/// numeric order (runc: `capabilities.KnownCapabilities()`).
pub const CAPABILITIES: [&str; 41] = [
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

/// Seccomp actions runc 1.2 recognises (sorted).
pub const SECCOMP_ACTIONS: [&str; 9] = [
    "SCMP_ACT_ALLOW",
    "SCMP_ACT_ERRNO",
    "SCMP_ACT_KILL",
    "SCMP_ACT_KILL_PROCESS",
    "SCMP_ACT_KILL_THREAD",
    "SCMP_ACT_LOG",
    "SCMP_ACT_NOTIFY",
    "SCMP_ACT_TRACE",
    "SCMP_ACT_TRAP",
];

/// Seccomp argument operators runc 1.2 recognises (sorted).
pub const SECCOMP_OPERATORS: [&str; 7] = [
    "SCMP_CMP_EQ",
    "SCMP_CMP_GE",
    "SCMP_CMP_GT",
    "SCMP_CMP_LE",
    "SCMP_CMP_LT",
    "SCMP_CMP_MASKED_EQ",
    "SCMP_CMP_NE",
];

/// Seccomp architectures runc 1.2 recognises (sorted; 1.1.5 lacked RISCV64, 1.4.1+ adds LOONGARCH64).
pub const SECCOMP_ARCHS: [&str; 17] = [
    "SCMP_ARCH_AARCH64",
    "SCMP_ARCH_ARM",
    "SCMP_ARCH_MIPS",
    "SCMP_ARCH_MIPS64",
    "SCMP_ARCH_MIPS64N32",
    "SCMP_ARCH_MIPSEL",
    "SCMP_ARCH_MIPSEL64",
    "SCMP_ARCH_MIPSEL64N32",
    "SCMP_ARCH_PPC",
    "SCMP_ARCH_PPC64",
    "SCMP_ARCH_PPC64LE",
    "SCMP_ARCH_RISCV64",
    "SCMP_ARCH_S390",
    "SCMP_ARCH_S390X",
    "SCMP_ARCH_X32",
    "SCMP_ARCH_X86",
    "SCMP_ARCH_X86_64",
];

/// Seccomp filter flags runc 1.2 knows, in its (unsorted) order. TSYNC is accepted and ignored.
pub const SECCOMP_KNOWN_FLAGS: [&str; 3] = [
    "SECCOMP_FILTER_FLAG_TSYNC",
    "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
    "SECCOMP_FILTER_FLAG_LOG",
];

/// `linux.memoryPolicy` modes and mode flags husk applies (runc 1.4: `KnownMemoryPolicyModes`,
/// `KnownMemoryPolicyFlags`, sorted).
pub const MEMORY_POLICY_MODES: [&str; 7] = [
    "MPOL_BIND",
    "MPOL_DEFAULT",
    "MPOL_INTERLEAVE",
    "MPOL_LOCAL",
    "MPOL_PREFERRED",
    "MPOL_PREFERRED_MANY",
    "MPOL_WEIGHTED_INTERLEAVE",
];
pub const MEMORY_POLICY_FLAGS: [&str; 3] = [
    "MPOL_F_NUMA_BALANCING",
    "MPOL_F_RELATIVE_NODES",
    "MPOL_F_STATIC_NODES",
];

/// Annotation key carrying husk's version.
pub const ANNOTATION_HUSK_VERSION: &str = "org.husk.version";
/// Annotation key runc sets to "true" when CRIU checkpoint/restore is available (husk: only when it is).
pub const ANNOTATION_CHECKPOINT_ENABLED: &str = "org.opencontainers.runc.checkpoint.enabled";
/// Annotation key runc sets to the libseccomp version when seccomp is compiled in.
pub const ANNOTATION_LIBSECCOMP_VERSION: &str = "io.github.seccomp.libseccomp.version";

/// What husk supports. Every field maps onto one entry of the features document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Supported {
    pub cgroup_v1: bool,
    pub cgroup_v2: bool,
    pub systemd: bool,
    pub systemd_user: bool,
    /// RDMA cgroup controller (`linux.resources.rdma`).
    pub rdma: bool,
    /// Seccomp filters. When true, actions/operators/archs/knownFlags are printed too.
    pub seccomp: bool,
    /// The flags this kernel accepts (runc probes them); `None` = same as [`SECCOMP_KNOWN_FLAGS`].
    pub seccomp_supported_flags: Option<Vec<String>>,
    /// libseccomp version for the annotation, if husk links one.
    pub libseccomp_version: Option<String>,
    pub apparmor: bool,
    pub selinux: bool,
    pub intel_rdt: bool,
    /// idmapped bind mounts (`mounts[].uidMappings`, `idmap`/`ridmap` options).
    pub idmap_mounts: bool,
    /// CRIU checkpoint/restore.
    pub checkpoint: bool,
}

impl Supported {
    /// What husk implements today.
    pub fn current() -> Self {
        Supported {
            cgroup_v1: true,
            cgroup_v2: true,
            // --systemd-cgroup on cgroup v2 (src/cgroups/systemd.rs); not for a user's manager.
            systemd: true,
            systemd_user: false,
            // rdma.max is written on v1 and v2 (where the host has the controller).
            rdma: true,
            seccomp: true,
            // husk hands the flags to seccomp(2) itself: those this kernel takes.
            seccomp_supported_flags: Some(
                SECCOMP_KNOWN_FLAGS
                    .iter()
                    .filter(|f| crate::init::seccomp::flag_supported(f))
                    .map(|f| f.to_string())
                    .collect(),
            ),
            libseccomp_version: crate::init::seccomp::library_version(),
            // Applied when the host's LSM is on (security::lsm); "compiled in", as runc means it.
            apparmor: true,
            selinux: true,
            intel_rdt: false,
            idmap_mounts: true,
            checkpoint: false,
        }
    }
}

impl Default for Supported {
    fn default() -> Self {
        Self::current()
    }
}

// ---- runtime-spec specs-go/features types, Go field order ----

#[derive(Serialize)]
struct Features {
    #[serde(rename = "ociVersionMin")]
    oci_version_min: &'static str,
    #[serde(rename = "ociVersionMax")]
    oci_version_max: &'static str,
    hooks: Vec<&'static str>,
    #[serde(rename = "mountOptions")]
    mount_options: Vec<&'static str>,
    linux: Linux,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    annotations: BTreeMap<String, String>,
}

#[derive(Serialize)]
struct Linux {
    namespaces: Vec<&'static str>,
    capabilities: Vec<&'static str>,
    cgroup: Cgroup,
    seccomp: Seccomp,
    apparmor: Enabled,
    selinux: Enabled,
    #[serde(rename = "intelRdt")]
    intel_rdt: Enabled,
    #[serde(rename = "memoryPolicy")]
    memory_policy: MemoryPolicy,
    #[serde(rename = "mountExtensions")]
    mount_extensions: MountExtensions,
    /// `linux.netDevices` is refused (container::fields).
    #[serde(rename = "netDevices")]
    net_devices: Enabled,
}

#[derive(Serialize)]
struct MemoryPolicy {
    modes: Vec<&'static str>,
    flags: Vec<&'static str>,
}

#[derive(Serialize)]
struct Cgroup {
    v1: bool,
    v2: bool,
    systemd: bool,
    #[serde(rename = "systemdUser")]
    systemd_user: bool,
    rdma: bool,
}

#[derive(Serialize)]
struct Seccomp {
    enabled: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    actions: Vec<&'static str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    operators: Vec<&'static str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    archs: Vec<&'static str>,
    #[serde(rename = "knownFlags", skip_serializing_if = "Vec::is_empty")]
    known_flags: Vec<&'static str>,
    #[serde(rename = "supportedFlags", skip_serializing_if = "Vec::is_empty")]
    supported_flags: Vec<String>,
}

#[derive(Serialize)]
struct Enabled {
    enabled: bool,
}

#[derive(Serialize)]
struct MountExtensions {
    idmap: Enabled,
}

pub fn run() -> anyhow::Result<i32> {
    println!("{}", features_json(&Supported::current()));
    Ok(0)
}

/// The `features` JSON document (4-space indent, no trailing newline: print it with `println!`).
pub fn features_json(s: &Supported) -> String {
    let mut annotations = BTreeMap::new();
    annotations.insert(
        ANNOTATION_HUSK_VERSION.to_string(),
        env!("CARGO_PKG_VERSION").to_string(),
    );
    if s.checkpoint {
        annotations.insert(
            ANNOTATION_CHECKPOINT_ENABLED.to_string(),
            "true".to_string(),
        );
    }
    let seccomp = if s.seccomp {
        if let Some(v) = &s.libseccomp_version {
            annotations.insert(ANNOTATION_LIBSECCOMP_VERSION.to_string(), v.clone());
        }
        Seccomp {
            enabled: true,
            actions: SECCOMP_ACTIONS.to_vec(),
            operators: SECCOMP_OPERATORS.to_vec(),
            archs: SECCOMP_ARCHS.to_vec(),
            known_flags: SECCOMP_KNOWN_FLAGS.to_vec(),
            supported_flags: match &s.seccomp_supported_flags {
                Some(f) => f.clone(),
                None => SECCOMP_KNOWN_FLAGS.iter().map(|f| f.to_string()).collect(),
            },
        }
    } else {
        Seccomp {
            enabled: false,
            actions: vec![],
            operators: vec![],
            archs: vec![],
            known_flags: vec![],
            supported_flags: vec![],
        }
    };
    let doc = Features {
        oci_version_min: OCI_VERSION_MIN,
        oci_version_max: OCI_VERSION_MAX,
        hooks: HOOKS.to_vec(),
        mount_options: MOUNT_OPTIONS.to_vec(),
        linux: Linux {
            namespaces: NAMESPACES.to_vec(),
            capabilities: CAPABILITIES.to_vec(),
            cgroup: Cgroup {
                v1: s.cgroup_v1,
                v2: s.cgroup_v2,
                systemd: s.systemd,
                systemd_user: s.systemd_user,
                rdma: s.rdma,
            },
            seccomp,
            apparmor: Enabled {
                enabled: s.apparmor,
            },
            selinux: Enabled { enabled: s.selinux },
            intel_rdt: Enabled {
                enabled: s.intel_rdt,
            },
            memory_policy: MemoryPolicy {
                modes: MEMORY_POLICY_MODES.to_vec(),
                flags: MEMORY_POLICY_FLAGS.to_vec(),
            },
            mount_extensions: MountExtensions {
                idmap: Enabled {
                    enabled: s.idmap_mounts,
                },
            },
            net_devices: Enabled { enabled: false },
        },
        annotations,
    };
    super::output::marshal_indent(&doc, b"    ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn parsed(s: &Supported) -> (String, Value) {
        let text = features_json(s);
        let v: Value = serde_json::from_str(&text).expect("features output is JSON");
        (text, v)
    }

    #[test]
    fn output_parses_and_has_the_keys_in_runc_order() {
        let (text, v) = parsed(&Supported::current());
        let top: Vec<&str> = [
            "ociVersionMin",
            "ociVersionMax",
            "hooks",
            "mountOptions",
            "linux",
            "annotations",
        ]
        .into();
        for k in &top {
            assert!(v.get(k).is_some(), "missing {k}");
        }
        // Go struct order, not alphabetical.
        let pos = |k: &str| text.find(&format!("\"{k}\":")).unwrap();
        assert!(top.windows(2).all(|w| pos(w[0]) < pos(w[1])));
        let linux = [
            "namespaces",
            "capabilities",
            "cgroup",
            "seccomp",
            "apparmor",
            "selinux",
            "intelRdt",
            "memoryPolicy",
            "mountExtensions",
            "netDevices",
        ];
        for k in linux {
            assert!(v["linux"].get(k).is_some(), "missing linux.{k}");
        }
        assert!(linux.windows(2).all(|w| pos(w[0]) < pos(w[1])));
        for k in ["v1", "v2", "systemd", "systemdUser", "rdma"] {
            assert!(v["linux"]["cgroup"][k].is_boolean(), "cgroup.{k}");
        }
        assert_eq!(v["linux"]["mountExtensions"]["idmap"]["enabled"], true);
        assert_eq!(v["ociVersionMin"], "1.0.0");
        assert_eq!(v["ociVersionMax"], "1.2.0");
    }

    #[test]
    fn current_support_is_what_husk_implements() {
        let (_, v) = parsed(&Supported::current());
        let l = &v["linux"];
        assert_eq!(
            l["cgroup"],
            serde_json::json!({"v1": true, "v2": true, "systemd": true, "systemdUser": false, "rdma": true})
        );
        assert_eq!(l["seccomp"]["enabled"], true);
        assert!(l["seccomp"]["actions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a == "SCMP_ACT_NOTIFY"));
        assert_eq!(l["apparmor"]["enabled"], true);
        assert_eq!(l["selinux"]["enabled"], true);
        assert_eq!(l["intelRdt"]["enabled"], false);
        assert_eq!(l["memoryPolicy"]["modes"].as_array().unwrap().len(), 7);
        assert_eq!(l["memoryPolicy"]["flags"][2], "MPOL_F_STATIC_NODES");
        assert_eq!(l["netDevices"]["enabled"], false);
        assert_eq!(v["hooks"], serde_json::json!(HOOKS));
        assert!(v["annotations"]
            .get(ANNOTATION_CHECKPOINT_ENABLED)
            .is_none());
    }

    /// Every list checked against a source other than this file: the runtime-spec's types
    /// (oci-spec), the running kernel, and the libraries that implement the feature.
    #[test]
    fn lists_are_what_the_spec_the_kernel_and_libseccomp_know() {
        use std::str::FromStr;
        let s = Supported {
            seccomp: true,
            ..Supported::current()
        };
        let (_, v) = parsed(&s);
        let strings = |v: &Value| -> Vec<String> {
            v.as_array()
                .unwrap()
                .iter()
                .map(|s| s.as_str().unwrap().to_string())
                .collect()
        };
        // Hooks: the keys of the spec's hooks object, in its order.
        let all = oci_spec::runtime::HooksBuilder::default()
            .prestart(vec![])
            .create_runtime(vec![])
            .create_container(vec![])
            .start_container(vec![])
            .poststart(vec![])
            .poststop(vec![])
            .build()
            .unwrap();
        let keys: Vec<String> = match serde_json::to_value(all).unwrap() {
            Value::Object(m) => m.keys().cloned().collect(),
            other => panic!("hooks serialize as {other}"),
        };
        let mut hooks = strings(&v["hooks"]);
        let mut sorted = keys.clone();
        hooks.sort();
        sorted.sort();
        assert_eq!(hooks, sorted, "spec hooks {keys:?}");
        // Namespaces: spec types, covering every kind this kernel has.
        let namespaces = strings(&v["linux"]["namespaces"]);
        for n in &namespaces {
            serde_json::from_value::<oci_spec::runtime::LinuxNamespaceType>(Value::from(
                n.as_str(),
            ))
            .unwrap_or_else(|e| panic!("namespace {n}: {e}"));
        }
        for e in std::fs::read_dir("/proc/self/ns").unwrap() {
            let kernel = e.unwrap().file_name().into_string().unwrap();
            let oci = match kernel.as_str() {
                k if k.ends_with("_for_children") => continue,
                "mnt" => "mount",
                "net" => "network",
                k => k,
            };
            assert!(namespaces.iter().any(|n| n == oci), "{kernel} missing");
        }
        // Capabilities: every one the caps crate knows, in kernel number order.
        let mut known: Vec<caps::Capability> = caps::all().into_iter().collect();
        known.sort_by_key(|c| c.index());
        let known: Vec<String> = known.iter().map(|c| c.to_string()).collect();
        assert_eq!(strings(&v["linux"]["capabilities"]), known);
        // Seccomp: names the spec's types parse and libseccomp implements.
        let sc = &v["linux"]["seccomp"];
        for a in strings(&sc["actions"]) {
            serde_json::from_value::<oci_spec::runtime::LinuxSeccompAction>(Value::from(
                a.as_str(),
            ))
            .unwrap_or_else(|e| panic!("action {a}: {e}"));
            libseccomp::ScmpAction::from_str(&a, Some(1)).unwrap_or_else(|e| panic!("{a}: {e}"));
        }
        for o in strings(&sc["operators"]) {
            serde_json::from_value::<oci_spec::runtime::LinuxSeccompOperator>(Value::from(
                o.as_str(),
            ))
            .unwrap_or_else(|e| panic!("operator {o}: {e}"));
            libseccomp::ScmpCompareOp::from_str(&o).unwrap_or_else(|e| panic!("{o}: {e}"));
        }
        for a in strings(&sc["archs"]) {
            serde_json::from_value::<oci_spec::runtime::Arch>(Value::from(a.as_str()))
                .unwrap_or_else(|e| panic!("arch {a}: {e}"));
            libseccomp::ScmpArch::from_str(&a).unwrap_or_else(|e| panic!("{a}: {e}"));
        }
        for f in strings(&sc["knownFlags"]) {
            serde_json::from_value::<oci_spec::runtime::LinuxSeccompFilterFlag>(Value::from(
                f.as_str(),
            ))
            .unwrap_or_else(|e| panic!("flag {f}: {e}"));
        }
    }

    #[test]
    fn indentation_is_four_spaces() {
        let text = features_json(&Supported::current());
        assert!(text.starts_with("{\n    \"ociVersionMin\": \"1.0.0\",\n"));
        assert!(text
            .contains("\n    \"linux\": {\n        \"namespaces\": [\n            \"cgroup\",\n"));
        assert!(!text.contains('\t'));
        assert!(
            text.ends_with("\n}"),
            "no trailing newline; println! adds it"
        );
        for line in text.lines() {
            let indent = line.len() - line.trim_start_matches(' ').len();
            assert_eq!(indent % 4, 0, "{line:?}");
        }
    }

    #[test]
    fn seccomp_enabled_lists_runc_1_2_tables() {
        let s = Supported {
            seccomp: true,
            seccomp_supported_flags: Some(vec!["SECCOMP_FILTER_FLAG_LOG".into()]),
            libseccomp_version: Some("2.5.4".into()),
            ..Supported::current()
        };
        let (text, v) = parsed(&s);
        let sc = &v["linux"]["seccomp"];
        assert_eq!(sc["enabled"], true);
        // runc 1.2's table sizes; what each entry means is checked by lists_are_what_the_spec_
        // the_kernel_and_libseccomp_know.
        for (k, n) in [
            ("actions", 9),
            ("operators", 7),
            ("archs", 17),
            ("knownFlags", 3),
        ] {
            assert_eq!(sc[k].as_array().unwrap().len(), n, "{k}");
        }
        assert_eq!(
            sc["supportedFlags"],
            serde_json::json!(["SECCOMP_FILTER_FLAG_LOG"])
        );
        assert_eq!(v["annotations"][ANNOTATION_LIBSECCOMP_VERSION], "2.5.4");
        let order = [
            "\"enabled\"",
            "\"actions\"",
            "\"operators\"",
            "\"archs\"",
            "\"knownFlags\"",
            "\"supportedFlags\"",
        ];
        let pos: Vec<usize> = order.iter().map(|k| text.find(k).unwrap()).collect();
        assert!(pos.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn tables_are_sorted_like_runc() {
        let mut m = MOUNT_OPTIONS.to_vec();
        m.sort();
        assert_eq!(m, MOUNT_OPTIONS.to_vec());
        let mut n = NAMESPACES.to_vec();
        n.sort();
        assert_eq!(n, NAMESPACES.to_vec());
        for t in [
            &SECCOMP_ACTIONS[..],
            &SECCOMP_OPERATORS[..],
            &SECCOMP_ARCHS[..],
            &MEMORY_POLICY_MODES[..],
            &MEMORY_POLICY_FLAGS[..],
        ] {
            let mut s = t.to_vec();
            s.sort();
            assert_eq!(s, t.to_vec());
        }
        // Annotations are a Go map: sorted keys.
        let s = Supported {
            checkpoint: true,
            ..Supported::current()
        };
        let text = features_json(&s);
        assert!(
            text.find(ANNOTATION_HUSK_VERSION).unwrap()
                < text.find(ANNOTATION_CHECKPOINT_ENABLED).unwrap()
        );
    }
}
