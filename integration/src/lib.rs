//! A private containerd for one test: its own config, socket, root and state directory, a bin
//! directory (first on its PATH) with the shim and husk, and a busybox image built here and
//! imported. Dropping it stops everything it started, even after a failed assertion: tasks,
//! containerd, shims, mounts, directories. Every wait is bounded.
//!
//! Binaries: $SHIM_BIN and $HUSK_BIN, by default the workspace's debug builds;
//! $CONTAINERD_BIN, by default Debian's `containerd` on $PATH (with the `ctr` beside it, when
//! there is one, as the client).

pub mod dockerd;
pub mod grpc;
pub mod huskd;

use std::{
    fs,
    io::Write,
    os::unix::process::CommandExt,
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
    time::{Duration, Instant},
};

pub const IMAGE: &str = "husk.test/busybox:latest";
/// The CRI plugin's sandbox image: busybox whose entrypoint blocks until it is signalled, as
/// the pause binary does.
pub const PAUSE_IMAGE: &str = "husk.test/pause:latest";
/// The containerd namespace the CRI plugin always works in.
pub const CRI_NAMESPACE: &str = "k8s.io";
/// The CRI runtime handler that [`Options::cri`] registers for our shim.
pub const CRI_HANDLER: &str = "husk";
pub const RUNTIME: &str = "io.containerd.husk.v2";
/// How long one ctr command may take before `timeout` kills it.
const CTR_TIMEOUT: &str = "60";

pub(crate) fn target_bin(env: &str, name: &str) -> PathBuf {
    try_target_bin(env, name).unwrap_or_else(|e| panic!("{e}"))
}

/// `$env`, or the workspace's debug build of `name`; `Err` when that build is missing.
pub(crate) fn try_target_bin(env: &str, name: &str) -> Result<PathBuf, String> {
    if let Some(p) = std::env::var_os(env) {
        return Ok(PathBuf::from(p));
    }
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../target/x86_64-unknown-linux-gnu/debug")
        .join(name);
    if !p.exists() {
        return Err(format!("{} missing: build it, or set ${env}", p.display()));
    }
    Ok(p)
}

pub fn shim_bin() -> PathBuf {
    target_bin("SHIM_BIN", "containerd-shim-husk-v2")
}

pub fn husk_bin() -> PathBuf {
    target_bin("HUSK_BIN", "husk")
}

fn openpty() -> (fs::File, fs::File) {
    let (mut master, mut slave) = (0, 0);
    // SAFETY: openpty writes two descriptors, which are then owned here.
    let r = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
        )
    };
    assert_eq!(r, 0, "openpty: {}", std::io::Error::last_os_error());
    // SAFETY: both descriptors were just opened by openpty and nothing else owns them.
    unsafe {
        use std::os::fd::FromRawFd;
        (fs::File::from_raw_fd(master), fs::File::from_raw_fd(slave))
    }
}

fn containerd_bin() -> PathBuf {
    std::env::var_os("CONTAINERD_BIN")
        .filter(|p| !p.is_empty())
        .map_or_else(|| PathBuf::from("containerd"), PathBuf::from)
}

/// Adopts orphans (the shims a daemon starts) so that they are reaped here, not left as
/// zombies by this machine's PID 1.
pub fn become_subreaper() {
    // SAFETY: plain prctl with integer arguments.
    let r = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    assert_eq!(
        r,
        0,
        "PR_SET_CHILD_SUBREAPER: {}",
        std::io::Error::last_os_error()
    );
}

/// Polls `cond` until it holds or `timeout` passes.
/// One value of `ctr task metrics`' table (`key    value`).
pub fn metric(metrics: &str, key: &str) -> Option<String> {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(char::is_whitespace))
        .map(|v| v.trim().to_string())
}

pub fn wait_for(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn run(cmd: &mut Command) -> Output {
    cmd.stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e}"))
}

fn sha256(path: &Path) -> String {
    let out = run(Command::new("sha256sum").arg(path));
    assert!(out.status.success(), "sha256sum {}", path.display());
    String::from_utf8_lossy(&out.stdout)[..64].to_string()
}

/// Writes `data` as a blob of an OCI layout; returns its descriptor's digest and size.
fn blob(layout: &Path, data: &[u8]) -> (String, usize) {
    let tmp = layout.join("blob.tmp");
    fs::write(&tmp, data).unwrap();
    let d = sha256(&tmp);
    fs::rename(&tmp, layout.join("blobs/sha256").join(&d)).unwrap();
    (format!("sha256:{d}"), data.len())
}

/// An OCI image archive of /bin/busybox and its applets, uncompressed, made with tar and
/// sha256sum only; with `pause`, the same layer also as [`PAUSE_IMAGE`].
fn build_image(dir: &Path, pause: bool) -> PathBuf {
    let rootfs = dir.join("image-rootfs");
    fs::create_dir_all(rootfs.join("bin")).unwrap();
    fs::copy("/bin/busybox", rootfs.join("bin/busybox"))
        .expect("copy /bin/busybox (busybox-static)");
    for a in [
        "sh", "echo", "sleep", "cat", "true", "ps", "tty", "stty", "ls", "seq", "kill",
    ] {
        std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(a)).unwrap();
    }
    let layout = dir.join("image");
    fs::create_dir_all(layout.join("blobs/sha256")).unwrap();
    let layer = dir.join("layer.tar");
    let out = run(Command::new("tar")
        .args(["--numeric-owner", "--owner=0", "--group=0", "-C"])
        .arg(&rootfs)
        .arg("-cf")
        .arg(&layer)
        .arg("."));
    assert!(
        out.status.success(),
        "tar: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (layer_digest, layer_size) = blob(&layout, &fs::read(&layer).unwrap());
    let mut images = vec![(
        IMAGE,
        serde_json::json!({"Env": ["PATH=/bin"], "Cmd": ["/bin/sh"]}),
    )];
    if pause {
        // Ends on SIGTERM or SIGINT like pause; as pid 1 it would ignore them untrapped.
        let entrypoint = [
            "/bin/sh",
            "-c",
            "trap 'exit 0' TERM INT; sleep 2147483647 & wait",
        ];
        images.push((
            PAUSE_IMAGE,
            serde_json::json!({"Env": ["PATH=/bin"], "Entrypoint": entrypoint}),
        ));
    }
    let mut manifests = Vec::new();
    for (name, image_config) in images {
        let config = serde_json::json!({
            "architecture": "amd64", "os": "linux",
            "config": image_config,
            "rootfs": {"type": "layers", "diff_ids": [&layer_digest]},
        });
        let (config_digest, config_size) = blob(&layout, config.to_string().as_bytes());
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                       "digest": config_digest, "size": config_size},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                        "digest": &layer_digest, "size": layer_size}],
        });
        let (manifest_digest, manifest_size) = blob(&layout, manifest.to_string().as_bytes());
        manifests.push(serde_json::json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": manifest_digest, "size": manifest_size,
            "annotations": {"io.containerd.image.name": name,
                            "org.opencontainers.image.ref.name": "latest"},
        }));
    }
    let index = serde_json::json!({"schemaVersion": 2, "manifests": manifests});
    fs::write(layout.join("index.json"), index.to_string()).unwrap();
    fs::write(
        layout.join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    let archive = dir.join("busybox.tar");
    let out = run(Command::new("tar")
        .arg("-C")
        .arg(&layout)
        .arg("-cf")
        .arg(&archive)
        .arg("."));
    assert!(
        out.status.success(),
        "tar: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    archive
}

/// Why this host cannot run a test that needs systemd's cgroup driver (a pure cgroup v2 host
/// with systemd as PID 1, such as the guest of scripts/v2vm/containerd-systemd.sh), if it
/// cannot.
pub fn systemd_skip_reason() -> Option<&'static str> {
    match systemd_cgroups() {
        Ok(SystemdCgroups::V2) => None,
        Ok(SystemdCgroups::V1) => Some("systemd manages cgroup v1 here; the test checks v2 paths"),
        Err(why) => Some(why),
    }
}

/// The cgroup layout that systemd, as PID 1, manages here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SystemdCgroups {
    /// Pure cgroup v2.
    V2,
    /// cgroup v1 hierarchies (hybrid or legacy): runc's legacy systemd manager.
    V1,
}

/// [`SystemdCgroups`] of this host, or why the tests that need systemd skip.
pub fn systemd_cgroups() -> Result<SystemdCgroups, &'static str> {
    if !Path::new("/run/systemd/system").exists() {
        return Err("systemd is not PID 1 here (no /run/systemd/system)");
    }
    if Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        return Ok(SystemdCgroups::V2);
    }
    if Path::new("/sys/fs/cgroup/memory/memory.limit_in_bytes").exists() {
        return Ok(SystemdCgroups::V1);
    }
    Err("neither a cgroup v2 root nor a v1 memory hierarchy at /sys/fs/cgroup")
}

/// The busybox image of [`IMAGE`] as an OCI archive in `dir` (for huskd's tests).
pub fn busybox_archive(dir: &Path) -> PathBuf {
    build_image(dir, false)
}

#[derive(Default)]
pub struct Options {
    /// Environment for containerd, and so for the shims it starts.
    pub env: Vec<(&'static str, &'static str)>,
    /// Serve `io.containerd.runc.v2` with our shim too, so that ctr's `--runc-binary` and
    /// `--runc-root` (which ctr only sends to that runtime name) reach it as runc's options.
    pub runc_v2_is_husk_shim: bool,
    /// Enable the CRI plugin, with a runtime handler [`CRI_HANDLER`] of our runtime type, no
    /// CNI configuration (pods use the host's network) and the images in [`CRI_NAMESPACE`],
    /// which becomes this containerd's `ns`.
    pub cri: bool,
    /// With `cri`: the body of the handler's `options` table (TOML lines), which the CRI
    /// plugin sends our shim as runtimeoptions.v1.Options.
    pub cri_options: Option<String>,
    /// The containerd binary, instead of $CONTAINERD_BIN or Debian's.
    pub containerd: Option<PathBuf>,
}

pub struct Containerd {
    pub dir: PathBuf,
    pub sock: PathBuf,
    pub ns: String,
    pid: i32,
    events: Option<Child>,
    env: Vec<(&'static str, &'static str)>,
    containerd: PathBuf,
    /// The `ctr` of the same containerd when it has one beside it, else the one on $PATH.
    pub ctr: PathBuf,
}

impl Containerd {
    pub fn start(name: &str) -> Containerd {
        Self::start_with(
            name,
            Options {
                runc_v2_is_husk_shim: true,
                ..Options::default()
            },
        )
    }

    /// The directory [`Containerd::start_with`] gives containerd `name`: a test can name a file
    /// in it in the options before containerd starts.
    pub fn dir_of(name: &str) -> PathBuf {
        PathBuf::from(format!("/run/husk-it-{}-{name}", std::process::id()))
    }

    pub fn start_with(name: &str, opts: Options) -> Containerd {
        become_subreaper();
        let dir = Self::dir_of(name);
        // A previous run's leftovers under the same pid would only confuse.
        let _ = fs::remove_dir_all(&dir);
        let bin = dir.join("bin");
        fs::create_dir_all(&bin).unwrap();
        std::os::unix::fs::symlink(shim_bin(), bin.join("containerd-shim-husk-v2")).unwrap();
        if opts.runc_v2_is_husk_shim {
            std::os::unix::fs::symlink(shim_bin(), bin.join("containerd-shim-runc-v2")).unwrap();
        }
        std::os::unix::fs::symlink(husk_bin(), bin.join("husk")).unwrap();
        let sock = dir.join("c.sock");
        let containerd = opts.containerd.unwrap_or_else(containerd_bin);
        let ctr = containerd.with_file_name("ctr");
        let ctr = if containerd.is_absolute() && ctr.exists() {
            ctr
        } else {
            PathBuf::from("ctr")
        };
        // Top-level keys come before the first table.
        let disabled = if opts.cri {
            ""
        } else {
            "disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n"
        };
        let mut config = format!(
            "version = 2\nroot = \"{d}/root\"\nstate = \"{d}/state\"\n{disabled}\
             [grpc]\n  address = \"{s}\"\n[debug]\n  level = \"debug\"\n",
            d = dir.display(),
            s = sock.display()
        );
        if opts.cri {
            config += &cri_config(&dir, opts.cri_options.as_deref());
        }
        fs::write(dir.join("config.toml"), config).unwrap();
        let ns = if opts.cri {
            CRI_NAMESPACE.to_string()
        } else {
            format!("it-{}-{name}", std::process::id())
        };
        let mut c = Containerd {
            dir: dir.clone(),
            sock,
            ns,
            pid: 0,
            events: None,
            env: opts.env,
            containerd,
            ctr,
        };
        c.spawn();
        let archive = build_image(&dir, opts.cri);
        c.ctr_ok(&["image", "import", archive.to_str().unwrap()]);
        c
    }

    /// Starts containerd (again) on this directory and waits until it answers.
    fn spawn(&mut self) {
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("containerd.log"))
            .unwrap();
        // runc (BinaryName=runc) is in /usr/sbin, which a CI's PATH may lack.
        let path = format!(
            "{}:{}:/usr/local/sbin:/usr/sbin:/sbin",
            self.dir.join("bin").display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let child = Command::new(&self.containerd)
            .arg("--config")
            .arg(self.dir.join("config.toml"))
            .env("PATH", path)
            .envs(self.env.iter().copied())
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", self.containerd.display()));
        self.pid = child.id() as i32;
        // Reaped by our own waitpid, not by Child.
        std::mem::forget(child);
        assert!(
            wait_for(Duration::from_secs(30), || self
                .ctr(&["version"])
                .status
                .success()),
            "containerd did not come up; its log:\n{}",
            self.log()
        );
    }

    /// Kills containerd with SIGKILL, as a crash would, and starts it again.
    pub fn kill9_and_restart(&mut self) {
        // SAFETY: plain kill of the containerd we started.
        unsafe { libc::kill(self.pid, libc::SIGKILL) };
        let pid = self.pid;
        assert!(
            wait_for(Duration::from_secs(10), || reaped(pid)),
            "containerd survived SIGKILL"
        );
        self.spawn();
    }

    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.join("containerd.log")).unwrap_or_default()
    }

    /// `ctr` against this containerd and namespace, killed after CTR_TIMEOUT seconds.
    pub fn ctr(&self, args: &[&str]) -> Output {
        run(Command::new("timeout")
            .args(["-k", "5", CTR_TIMEOUT])
            .arg(&self.ctr)
            .arg("-a")
            .arg(&self.sock)
            .args(["-n", &self.ns])
            .args(self.with_fifo_dir(args)))
    }

    /// `args` with `--fifo-dir` in our directory for the commands that make IO FIFOs: ctr
    /// leaves those of a detached task in /run/containerd/fifo otherwise.
    pub fn with_fifo_dir(&self, args: &[&str]) -> Vec<String> {
        let mut v: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        let at = match args {
            ["run", ..] => 1,
            ["task" | "t" | "tasks", "exec" | "start", ..] => 2,
            _ => return v,
        };
        let dir = self.dir.join("fifo").to_string_lossy().into_owned();
        v.splice(at..at, ["--fifo-dir".to_string(), dir]);
        v
    }

    /// `ctr` with `input` on its stdin.
    pub fn ctr_stdin(&self, args: &[&str], input: &[u8]) -> Output {
        let mut child = Command::new("timeout")
            .args(["-k", "5", CTR_TIMEOUT])
            .arg(&self.ctr)
            .arg("-a")
            .arg(&self.sock)
            .args(["-n", &self.ns])
            .args(self.with_fifo_dir(args))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("ctr");
        // ctr reads all of it before the container's exit; a short write shows in the output.
        let _ = child.stdin.take().unwrap().write_all(input);
        child.wait_with_output().expect("ctr")
    }

    /// Creates container `id` running `args`, as `ctr container create --runtime RUNTIME` would,
    /// but with runc's options (`containerd.runc.v1.Options`: BinaryName, Root), which ctr
    /// sends only to the runtime named io.containerd.runc.v2.
    pub fn create_with_runc_options(&self, id: &str, binary: &str, root: &str, args: &[&str]) {
        let mut options = Vec::new();
        grpc::field(&mut options, 6, binary.as_bytes());
        grpc::field(&mut options, 7, root.as_bytes());
        self.create_with_options(id, &options, |spec| {
            spec["process"]["args"] = serde_json::json!(args)
        });
    }

    /// Creates container `id` with `options` (an encoded `containerd.runc.v1.Options`) and the
    /// spec ctr would make, changed by `edit`. ctr makes a template container, whose spec and
    /// snapshot `id` takes through containerd's Containers API.
    pub fn create_with_options(
        &self,
        id: &str,
        options: &[u8],
        edit: impl FnOnce(&mut serde_json::Value),
    ) {
        let template = format!("{id}-template");
        self.ctr_ok(&[
            "container",
            "create",
            "--runtime",
            RUNTIME,
            IMAGE,
            &template,
        ]);
        // The arguments go into the spec here: ctr's `container create` takes a `-c` among them
        // for its own --config (1.6), or passes a `--` on (1.7).
        let mut spec: serde_json::Value =
            serde_json::from_str(&self.ctr_ok(&["container", "info", "--spec", &template]))
                .expect("ctr container info --spec");
        edit(&mut spec);
        let mut runtime = Vec::new();
        grpc::field(&mut runtime, 1, RUNTIME.as_bytes());
        let options = grpc::any("containerd.runc.v1.Options", options);
        grpc::field(&mut runtime, 2, &options);
        let mut container = Vec::new();
        grpc::field(&mut container, 1, id.as_bytes());
        grpc::field(&mut container, 3, IMAGE.as_bytes());
        grpc::field(&mut container, 4, &runtime);
        let spec = grpc::any(
            "types.containerd.io/opencontainers/runtime-spec/1/Spec",
            spec.to_string().as_bytes(),
        );
        grpc::field(&mut container, 5, &spec);
        grpc::field(&mut container, 6, b"overlayfs");
        grpc::field(&mut container, 7, template.as_bytes());
        let mut request = Vec::new();
        grpc::field(&mut request, 1, &container);
        grpc::call(
            &self.sock,
            &self.ns,
            "/containerd.services.containers.v1.Containers/Create",
            &request,
        )
        .unwrap_or_else(|e| panic!("create container {id}: {e}"));
        // The snapshot is the new container's now: removing it goes with `id`.
        self.ctr_ok(&["container", "delete", "--keep-snapshot", &template]);
    }

    /// `ctr run -d` of `sleep 1000` as container `id` through our shim.
    pub fn run_sleep(&self, id: &str) {
        self.ctr_ok(&[
            "run",
            "-d",
            "--runtime",
            RUNTIME,
            IMAGE,
            id,
            "sleep",
            "1000",
        ]);
    }

    /// Runs ctr, asserts it succeeded, returns its stdout.
    pub fn ctr_ok(&self, args: &[&str]) -> String {
        let out = self.ctr(args);
        assert!(
            out.status.success(),
            "ctr {args:?}: {:?}\nstdout: {}\nstderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The STATUS column of `ctr task ls` for `id`.
    pub fn task_status(&self, id: &str) -> Option<String> {
        self.ctr_ok(&["task", "ls"]).lines().find_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.first() == Some(&id)).then(|| f.get(2).unwrap_or(&"").to_string())
        })
    }

    pub fn wait_task_status(&self, id: &str, status: &str) {
        assert!(
            wait_for(Duration::from_secs(20), || self.task_status(id).as_deref()
                == Some(status)),
            "task {id} never became {status}; it is {:?}",
            self.task_status(id)
        );
    }

    /// Starts `ctr events`, to be read with [`Containerd::events`].
    pub fn watch_events(&mut self) {
        let out = fs::File::create(self.dir.join("events.txt")).unwrap();
        let child = Command::new(&self.ctr)
            .arg("-a")
            .arg(&self.sock)
            .arg("events")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(Stdio::null())
            .spawn()
            .expect("ctr events");
        self.events = Some(child);
        // `ctr events` subscribes before it prints anything; a first event proves it listens.
        assert!(
            wait_for(Duration::from_secs(10), || {
                self.ctr_ok(&["namespace", "label", &self.ns, "husk.test/probe=1"]);
                fs::read_to_string(self.dir.join("events.txt")).is_ok_and(|s| !s.is_empty())
            }),
            "ctr events printed nothing"
        );
    }

    /// The task topics (`/tasks/...`) seen so far for container `id`, in order.
    pub fn task_events(&self, id: &str) -> Vec<String> {
        let needle = format!("\"container_id\":\"{id}\"");
        fs::read_to_string(self.dir.join("events.txt"))
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains(&needle))
            .filter_map(|l| l.split_whitespace().find(|w| w.starts_with("/tasks/")))
            .map(str::to_string)
            .collect()
    }

    /// `ctr ARGS` with a new pty as its controlling terminal and stdio (ctr -t wants one); the
    /// output is what ctr wrote to the pty. Nothing is typed into it. A ctr still running after
    /// 60 s gets SIGQUIT first, so that its goroutines' stacks land in the output, then SIGKILL.
    pub fn ctr_in_terminal(&self, args: &[&str]) -> Output {
        let (master, slave) = openpty();
        let mut cmd = Command::new(&self.ctr);
        cmd.arg("-a")
            .arg(&self.sock)
            .args(["-n", &self.ns])
            .args(args);
        for fd in 0..3 {
            let f = slave.try_clone().unwrap();
            match fd {
                0 => cmd.stdin(f),
                1 => cmd.stdout(f),
                _ => cmd.stderr(f),
            };
        }
        // SAFETY: setsid and ioctl are async-signal-safe; the child makes stdin (the pty's
        // slave) its controlling terminal.
        unsafe {
            cmd.pre_exec(|| {
                if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let mut child = cmd.spawn().expect("spawn ctr");
        // The reader sees EIO only once no copy of the slave is left here.
        drop((cmd, slave));
        let (tx, rx) = std::sync::mpsc::channel();
        let mut reader = master;
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            // EIO once every process holding the slave is gone.
            while let Ok(n @ 1..) = std::io::Read::read(&mut reader, &mut buf) {
                if tx.send(buf[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        let mut status = None;
        let done = wait_for(Duration::from_secs(60), || {
            status = child.try_wait().unwrap();
            status.is_some()
        });
        if !done {
            // SAFETY: kill of our own child's pid.
            unsafe { libc::kill(child.id() as i32, libc::SIGQUIT) };
            if !wait_for(Duration::from_secs(5), || {
                status = child.try_wait().unwrap();
                status.is_some()
            }) {
                child.kill().unwrap();
                status = Some(child.wait().unwrap());
            }
        }
        let mut stdout = Vec::new();
        while let Ok(chunk) = rx.recv_timeout(Duration::from_secs(5)) {
            stdout.extend(chunk);
        }
        Output {
            status: status.unwrap(),
            stdout,
            stderr: if done {
                Vec::new()
            } else {
                b"ctr did not exit within 60 s".to_vec()
            },
        }
    }

    /// After a refused task: no shim of ours is left (within 10 s: the shim's own `delete`
    /// runs after containerd gives up) and nothing is mounted below our directory.
    #[track_caller]
    pub fn assert_no_shim_or_mount_left(&self) {
        assert!(
            wait_for(Duration::from_secs(10), || self.shims().is_empty()),
            "shims left: {:?}",
            self.shims()
        );
        let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap();
        assert!(
            !mounts.contains(self.dir.to_str().unwrap()),
            "mounts left: {mounts}"
        );
    }

    /// Pids of shim processes serving this containerd (their -address is our socket).
    pub fn shims(&self) -> Vec<i32> {
        shims_serving(&self.sock)
    }

    /// Resident set size of a process, in KiB.
    pub fn rss_kib(pid: i32) -> u64 {
        fs::read_to_string(format!("/proc/{pid}/status"))
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    }

    fn cleanup(&mut self) {
        if let Some(mut e) = self.events.take() {
            // Gone already is fine.
            let _ = e.kill();
            let _ = e.wait();
        }
        // Tasks first, through containerd, so that shims end their containers and exit.
        let tasks = self.ctr(&["task", "ls", "-q"]);
        for id in String::from_utf8_lossy(&tasks.stdout).split_whitespace() {
            self.ctr(&["task", "kill", "-a", "-s", "KILL", id]);
            self.ctr(&["task", "delete", "-f", id]);
        }
        let containers = self.ctr(&["container", "ls", "-q"]);
        let ours: Vec<String> = String::from_utf8_lossy(&containers.stdout)
            .split_whitespace()
            .map(str::to_string)
            .collect();
        for id in &ours {
            self.ctr(&["container", "rm", id]);
        }
        // The CRI namespace's runtime root is not ours alone: only our containers go.
        let private = self.ns != CRI_NAMESPACE;
        // Whatever a runtime still knows of (containerd gone wrong): force-deleted.
        for (bin, root) in [
            (
                husk_bin(),
                PathBuf::from("/run/containerd/husk").join(&self.ns),
            ),
            (
                PathBuf::from("runc"),
                self.dir.join("runc-root").join(&self.ns),
            ),
            (
                PathBuf::from("crun"),
                self.dir.join("crun-root").join(&self.ns),
            ),
        ] {
            for e in fs::read_dir(&root).into_iter().flatten().flatten() {
                if !private && !ours.iter().any(|id| e.file_name() == id.as_str()) {
                    continue;
                }
                run(Command::new(&bin)
                    .arg("--root")
                    .arg(&root)
                    .args(["delete", "--force"])
                    .arg(e.file_name()));
            }
            // An empty shared root may go too; another user's entries keep it.
            let _ = if private {
                fs::remove_dir_all(&root)
            } else {
                fs::remove_dir(&root)
            };
        }
        // containerd-shim-runc-v2's root for this namespace (the RSS measurement runs it).
        let _ = fs::remove_dir(PathBuf::from("/run/containerd/runc").join(&self.ns));
        // No pid when containerd never started: kill(0) would signal our own process group.
        let pid = self.pid;
        // SAFETY: plain kill of the containerd we started.
        if pid > 0
            && unsafe { libc::kill(pid, libc::SIGTERM) } == 0
            && !wait_for(Duration::from_secs(10), || reaped(pid))
        {
            // SAFETY: as above.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            wait_for(Duration::from_secs(10), || reaped(pid));
        }
        // Shims whose Shutdown never came.
        for pid in self.shims() {
            if let Ok(cmdline) = fs::read(format!("/proc/{pid}/cmdline")) {
                let args: Vec<String> = cmdline
                    .split(|b| *b == 0)
                    .map(|a| String::from_utf8_lossy(a).into_owned())
                    .collect();
                if let Some(w) = args.windows(2).find(|w| w[0] == "-socket") {
                    let _ = fs::remove_file(w[1].trim_start_matches("unix://"));
                }
            }
            // SAFETY: plain kill of a shim of our containerd.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        wait_for(Duration::from_secs(10), || {
            reap_all();
            self.shims().is_empty()
        });
        unmount_under(&self.dir);
        let _ = fs::remove_dir_all(&self.dir);
        remove_namespace_cgroups(&self.ns);
    }
}

/// The CRI plugin's section of the config: our shim as runtime handler [`CRI_HANDLER`] (and the
/// default, so that nothing reaches another runtime), the sandbox image built here, and CNI
/// directories of our own that stay empty: containerd 1.6 then logs that it found no network
/// config and reports NetworkReady false, which matters only to pods not on the host network.
/// The plugin gives a sandbox oom_score_adj -998, which only CAP_SYS_RESOURCE may set and the
/// bounding set here lacks (runc 1.1 fails on it as husk does); `restrict_oom_score_adj` keeps
/// every container's at or above containerd's own, as for a containerd without that capability.
fn cri_config(dir: &Path, options: Option<&str>) -> String {
    let cri = "plugins.\"io.containerd.grpc.v1.cri\"";
    let d = dir.display();
    for sub in ["cni/bin", "cni/net.d"] {
        fs::create_dir_all(dir.join(sub)).unwrap();
    }
    let mut config = format!(
        "[{cri}]\n  sandbox_image = \"{PAUSE_IMAGE}\"\n  restrict_oom_score_adj = true\n\
         [{cri}.cni]\n  bin_dir = \"{d}/cni/bin\"\n  conf_dir = \"{d}/cni/net.d\"\n\
         [{cri}.containerd]\n  default_runtime_name = \"{CRI_HANDLER}\"\n\
         [{cri}.containerd.runtimes.{CRI_HANDLER}]\n  runtime_type = \"{RUNTIME}\"\n"
    );
    if let Some(o) = options {
        config += &format!("[{cri}.containerd.runtimes.{CRI_HANDLER}.options]\n{o}\n");
    }
    config
}

/// True once `pid`, our child, has exited and been reaped.
fn reaped(pid: i32) -> bool {
    let mut status = 0;
    // SAFETY: waitpid on our own child, WNOHANG.
    let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
    r == pid || r < 0
}

/// Reaps every exited child: as a subreaper we inherit the shims once their starter exits.
pub fn reap_all() {
    loop {
        let mut status = 0;
        // SAFETY: waitpid for any child, WNOHANG.
        if unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) } <= 0 {
            return;
        }
    }
}

/// The runtime leaves the parent cgroup `/<ns>` that containerd's default spec puts each
/// container under (`/<ns>/<id>`). rmdir removes it only once empty, so a shared namespace's
/// (the CRI one) goes only when nobody else uses it.
pub(crate) fn remove_namespace_cgroups(ns: &str) {
    for e in fs::read_dir("/sys/fs/cgroup")
        .into_iter()
        .flatten()
        .flatten()
    {
        // Busy or absent is fine: see above.
        let _ = fs::remove_dir(e.path().join(ns));
    }
    // A pure cgroup v2 host's.
    let _ = fs::remove_dir(Path::new("/sys/fs/cgroup").join(ns));
}

pub(crate) fn unmount_under(dir: &Path) {
    let prefix = dir.to_string_lossy().into_owned();
    let mut points: Vec<String> = fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split(' ').nth(4).map(str::to_string))
        .filter(|m| m.starts_with(&prefix))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for p in points {
        let c = std::ffi::CString::new(p).unwrap();
        // SAFETY: umount2 of a path; failure leaves it for remove_dir_all to report nothing.
        unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        // The log goes with the directory; keep its tail in a failed test's output.
        let log = std::thread::panicking().then(|| self.log());
        self.cleanup();
        if let Some(log) = log {
            print_log_tail("containerd", &log);
        }
    }
}

/// The last 40 lines of a daemon's log, for a failed test's output. (Errors writing to stderr
/// are ignored: there is nowhere left to report them.)
pub(crate) fn print_log_tail(daemon: &str, log: &str) {
    let tail: Vec<&str> = log.lines().rev().take(40).collect();
    let mut err = std::io::stderr();
    let _ = writeln!(err, "{daemon} log (last lines):");
    for l in tail.iter().rev() {
        let _ = writeln!(err, "{l}");
    }
}

/// Pids of containerd shims whose `-address` is `sock`: those of one containerd or one huskd.
pub(crate) fn shims_serving(sock: &Path) -> Vec<i32> {
    let needle = sock.to_string_lossy().into_owned();
    let mut out = Vec::new();
    for e in fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        let Ok(cmdline) = fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        let args: Vec<String> = cmdline
            .split(|b| *b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        let is_shim = args.first().is_some_and(|a| a.contains("containerd-shim"));
        if is_shim
            && args
                .windows(2)
                .any(|w| w[0] == "-address" && w[1] == needle)
        {
            out.push(pid);
        }
    }
    out
}
