//! OCI bundles: a busybox rootfs and a config.json built from a `runc spec`-like template.

use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::tmp::TempDir;

/// Debian's busybox-static; statically linked, so the rootfs needs nothing else.
pub const BUSYBOX: &str = "/bin/busybox";

/// Applet symlinks made in rootfs/bin (`ulimit`, `umask`, `trap` are shell builtins).
const APPLETS: &[&str] = &[
    "sh", "cat", "ls", "echo", "sleep", "id", "hostname", "grep", "mount", "true", "false",
    "mkdir", "ps", "kill", "env", "pwd", "readlink", "stat", "touch", "wc", "head", "sed", "tail",
    "tty", "stty", "test", "[", "printf", "tr", "cut", "sort", "mkfifo", "ip", "sysctl", "rm",
    "ln", "chmod", "uname", "dd", "od", "nproc", "find", "tee", "expr", "seq", "mknod",
];

/// A hook running the host's /bin/sh with `script`.
pub fn sh_hook(script: &str) -> Value {
    json!({"path": "/bin/sh", "args": ["sh", "-c", script]})
}

/// The base config: what `runc spec` prints on this machine (runc 1.1.5), with
/// `terminal: false` so that tests can capture output without a pty.
pub fn base_config() -> Value {
    let caps = json!(["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]);
    json!({
        "ociVersion": "1.0.2-dev",
        "process": {
            "terminal": false,
            "user": {"uid": 0, "gid": 0},
            "args": ["sh"],
            "env": [
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "TERM=xterm"
            ],
            "cwd": "/",
            "capabilities": {
                "bounding": caps,
                "effective": caps,
                "permitted": caps,
                "ambient": caps
            },
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": true
        },
        "root": {"path": "rootfs", "readonly": true},
        "hostname": "runc",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
             "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs",
             "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
             "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}
        ],
        "linux": {
            "resources": {"devices": [{"allow": false, "access": "rwm"}]},
            "namespaces": [
                {"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"},
                {"type": "mount"}
            ],
            "maskedPaths": [
                "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
                "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware",
                "/proc/scsi"
            ],
            "readonlyPaths": [
                "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"
            ]
        }
    })
}

/// A bundle directory (removed on drop) with a busybox rootfs and a mutable config.
pub struct Bundle {
    dir: TempDir,
    /// Written to config.json by [`Bundle::write_config`]; tests tweak it freely.
    pub config: Value,
}

impl Default for Bundle {
    fn default() -> Self {
        Self::new()
    }
}

impl Bundle {
    pub fn new() -> Bundle {
        let dir = TempDir::new("bundle");
        // mkdtemp makes it 0700; a container in a user namespace must be able to reach its
        // rootfs as a mapped (non-root) uid.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
            .expect("chmod bundle");
        make_rootfs(&dir.path().join("rootfs"));
        Bundle {
            dir,
            config: base_config(),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn rootfs(&self) -> PathBuf {
        self.path().join("rootfs")
    }

    pub fn config_path(&self) -> PathBuf {
        self.path().join("config.json")
    }

    pub fn write_config(&self) {
        let text = serde_json::to_vec_pretty(&self.config).expect("serialize config");
        std::fs::write(self.config_path(), text).expect("write config.json");
    }

    /// Sets process.args.
    pub fn set_args(&mut self, args: &[&str]) {
        self.config["process"]["args"] = json!(args);
    }

    /// Sets process.args to `sh -c <script>`.
    pub fn set_script(&mut self, script: &str) {
        self.set_args(&["sh", "-c", script]);
    }

    /// Adds a read-write bind mount of a fresh host directory (`<bundle>/shared`) at /shared
    /// in the container, for files and fifos shared with the host; returns the host path.
    pub fn shared_dir(&mut self) -> PathBuf {
        let host = self.path().join("shared");
        if !host.exists() {
            std::fs::create_dir(&host).expect("mkdir shared");
            std::fs::set_permissions(&host, std::fs::Permissions::from_mode(0o777))
                .expect("chmod shared");
            self.add_mount(json!({
                "destination": "/shared",
                "type": "bind",
                "source": host,
                "options": ["rbind", "rw"]
            }));
        }
        host
    }

    /// Sets `hooks` to one [`sh_hook`] of every kind, each running `script(kind, dir)` with `dir`
    /// the [`Bundle::shared_dir`] as that hook sees it: the host path for the hooks run in the
    /// runtime's mount namespace and for createContainer (before pivot_root), /shared for
    /// startContainer (in the container, after pivot_root). Returns the host path.
    pub fn hook_every_kind(&mut self, script: impl Fn(&str, &str) -> String) -> PathBuf {
        let shared = self.shared_dir();
        let host = shared.to_str().expect("bundle path is UTF-8");
        let mut hooks = serde_json::Map::new();
        for kind in [
            "prestart",
            "createRuntime",
            "createContainer",
            "poststart",
            "poststop",
        ] {
            hooks.insert(kind.into(), json!([sh_hook(&script(kind, host))]));
        }
        let kind = "startContainer";
        hooks.insert(kind.into(), json!([sh_hook(&script(kind, "/shared"))]));
        self.config["hooks"] = Value::Object(hooks);
        shared
    }

    /// Adds a user namespace that maps the container's ids 0..65536 to the host's uids from
    /// `uid` and gids from `gid`.
    pub fn add_user_namespace(&mut self, uid: u32, gid: u32) {
        self.add_namespace(json!({"type": "user"}));
        self.config["linux"]["uidMappings"] =
            json!([{"containerID": 0, "hostID": uid, "size": 65536}]);
        self.config["linux"]["gidMappings"] =
            json!([{"containerID": 0, "hostID": gid, "size": 65536}]);
    }

    /// Appends to `mounts`.
    pub fn add_mount(&mut self, m: Value) {
        self.config["mounts"]
            .as_array_mut()
            .expect("mounts is an array")
            .push(m);
    }

    /// Appends to `linux.namespaces`.
    pub fn add_namespace(&mut self, ns: Value) {
        self.config["linux"]["namespaces"]
            .as_array_mut()
            .expect("namespaces is an array")
            .push(ns);
    }
}

/// rootfs/bin/busybox plus applet symlinks, empty mount points, /etc/passwd and /etc/group.
fn make_rootfs(rootfs: &Path) {
    for d in ["bin", "proc", "sys", "dev", "tmp", "etc", "root", "shared"] {
        std::fs::create_dir_all(rootfs.join(d)).expect("mkdir in rootfs");
    }
    std::fs::set_permissions(rootfs.join("tmp"), std::fs::Permissions::from_mode(0o1777))
        .expect("chmod tmp");
    std::fs::copy(BUSYBOX, rootfs.join("bin/busybox"))
        .unwrap_or_else(|e| panic!("copy {BUSYBOX} (apt-get install busybox-static): {e}"));
    for a in APPLETS {
        symlink("busybox", rootfs.join("bin").join(a)).expect("applet symlink");
    }
    std::fs::write(
        rootfs.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\n\
         alice:x:1000:1000:alice:/home/alice:/bin/sh\n\
         nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
    )
    .expect("write passwd");
    std::fs::write(
        rootfs.join("etc/group"),
        "root:x:0:\ntty:x:5:\nalice:x:1000:\nnogroup:x:65534:\n",
    )
    .expect("write group");
}
