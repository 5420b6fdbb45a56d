//! The daemons huskctl is tested against, each private to one test and stopped when dropped
//! even after a failed assertion: Debian's dockerd as the reference, huskd as the subject (both
//! the integration crate's harnesses); and huskctl run against them, piped or on a terminal.

use std::{
    fs,
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
    time::{Duration, Instant},
};

use integration::{dockerd::Dockerd, huskd::Huskd, wait_for};

pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// How long one huskctl command may take before `timeout` kills it.
const CMD_TIMEOUT: &str = "30";

pub fn huskctl_bin() -> &'static str {
    env!("CARGO_BIN_EXE_huskctl")
}

fn output(o: Output) -> Out {
    Out {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

/// Runs a client (`huskctl` or docker's) against `sock`, with `stdin` as its input.
pub fn client(bin: &str, sock: &Path, args: &[&str], stdin: Option<&[u8]>) -> Out {
    use std::io::Write;
    let mut cmd = Command::new("timeout");
    cmd.args(["-s", "KILL", CMD_TIMEOUT, bin])
        .args(args)
        .env("HUSK_HOST", format!("unix://{}", sock.display()))
        .env("DOCKER_HOST", format!("unix://{}", sock.display()))
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("{bin}: {e}"));
    if let Some(input) = stdin {
        let mut w = child.stdin.take().expect("piped");
        w.write_all(input).expect("write stdin");
    }
    output(child.wait_with_output().expect("wait"))
}

/// A daemon for one test.
pub struct Daemon {
    pub name: &'static str,
    pub sock: PathBuf,
    /// The harness that runs it ([`Dockerd`] or [`Huskd`]), held for its Drop: that removes
    /// the daemon's containers, stops it and sweeps what it left.
    _harness: Box<dyn std::any::Any>,
}

impl Daemon {
    /// Debian's dockerd; `Err` says why it could not start (the test then skips).
    /// (127.0.0.0/8 registries are plain HTTP to dockerd already: `_insecure` is not needed.)
    pub fn dockerd(_insecure: Option<&str>) -> Result<Daemon, String> {
        let dir = PathBuf::from(format!("/tmp/hctl-dockerd-{}", std::process::id()));
        let d = Dockerd::start(dir)?;
        Ok(Daemon {
            name: "dockerd",
            sock: d.sock.clone(),
            _harness: Box::new(d),
        })
    }

    /// huskd ($HUSKD_BIN, or the workspace's debug build, with the shim and husk beside it)
    /// with its own socket, root, state and namespace; `insecure` is the test registry.
    pub fn huskd(insecure: Option<&str>) -> Result<Daemon, String> {
        let args = insecure.map_or_else(Vec::new, |r| vec!["--insecure-registry", r]);
        let h = Huskd::try_start_with("hctl", &args)?;
        Ok(Daemon {
            name: "huskd",
            sock: h.sock.clone(),
            _harness: Box::new(h),
        })
    }

    pub fn huskctl(&self, args: &[&str]) -> Out {
        client(huskctl_bin(), &self.sock, args, None)
    }

    pub fn huskctl_stdin(&self, args: &[&str], input: &[u8]) -> Out {
        client(huskctl_bin(), &self.sock, args, Some(input))
    }

    /// huskctl that must succeed; its stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let o = self.huskctl(args);
        assert_eq!(o.code, 0, "huskctl {args:?}: {}{}", o.stdout, o.stderr);
        o.stdout
    }
}

/// A docker-save archive (manifest.json, config, one layer) of /bin/busybox and its applets,
/// tagged `tag`, made with tar and sha256sum only; `created` fixed so that `images` is stable.
pub fn busybox_archive(dir: &Path, tag: &str) -> PathBuf {
    let run = |cmd: &mut Command| {
        let o = cmd.stdin(Stdio::null()).output().expect("run");
        assert!(
            o.status.success(),
            "{cmd:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let sha = |p: &Path| run(Command::new("sha256sum").arg(p))[..64].to_string();
    let rootfs = dir.join("rootfs");
    fs::create_dir_all(rootfs.join("bin")).unwrap();
    fs::copy("/bin/busybox", rootfs.join("bin/busybox")).expect("/bin/busybox (busybox-static)");
    for a in [
        "sh", "echo", "sleep", "cat", "true", "ls", "id", "pwd", "tty", "env", "grep", "hostname",
        "touch",
    ] {
        std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(a)).unwrap();
    }
    let out = dir.join("archive");
    let layer = dir.join("layer.tar");
    run(Command::new("tar")
        .args(["--numeric-owner", "--owner=0", "--group=0", "-C"])
        .arg(&rootfs)
        .arg("-cf")
        .arg(&layer)
        .arg("."));
    let layer_id = sha(&layer);
    fs::create_dir_all(out.join(&layer_id)).unwrap();
    fs::rename(&layer, out.join(&layer_id).join("layer.tar")).unwrap();
    let config = serde_json::json!({
        "architecture": "amd64", "os": "linux", "created": "2025-01-01T00:00:00Z",
        "config": {"Env": ["PATH=/bin"], "Cmd": ["sh"]},
        "rootfs": {"type": "layers", "diff_ids": [format!("sha256:{layer_id}")]},
    });
    let cfg = dir.join("config.json");
    fs::write(&cfg, config.to_string()).unwrap();
    let cfg_id = sha(&cfg);
    fs::rename(&cfg, out.join(format!("{cfg_id}.json"))).unwrap();
    let manifest = serde_json::json!([{
        "Config": format!("{cfg_id}.json"),
        "RepoTags": [tag],
        "Layers": [format!("{layer_id}/layer.tar")],
    }]);
    fs::write(out.join("manifest.json"), manifest.to_string()).unwrap();
    let archive = dir.join("busybox.tar");
    run(Command::new("tar")
        .arg("-C")
        .arg(&out)
        .arg("-cf")
        .arg(&archive)
        .arg("."));
    archive
}

/// Debian's docker-registry on a loopback port, its storage in `dir`, with `archive` pushed to
/// it by skopeo as `hctl/busybox:1` and `:2`. `Err` says why it could not be set up.
pub struct Registry {
    pub addr: String,
    child: Child,
}

impl Registry {
    pub fn start(dir: &Path, archive: &Path) -> Result<Registry, String> {
        for tool in ["docker-registry", "skopeo"] {
            if Command::new(tool)
                .arg("--version")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_err()
            {
                return Err(format!("{tool} is not installed"));
            }
        }
        // A free port: bound, then released for the registry (loopback only).
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| e.to_string())?
            .port();
        let addr = format!("127.0.0.1:{port}");
        let config = dir.join("registry.yml");
        fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {addr}\n",
                dir.join("registry").display()
            ),
        )
        .map_err(|e| e.to_string())?;
        let log = fs::File::create(dir.join("registry.log")).map_err(|e| e.to_string())?;
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log)
            .spawn()
            .map_err(|e| format!("docker-registry: {e}"))?;
        let r = Registry { addr, child };
        if !wait_for(Duration::from_secs(20), || {
            std::net::TcpStream::connect(&r.addr).is_ok()
        }) {
            return Err(format!(
                "docker-registry not listening on {} in 20s",
                r.addr
            ));
        }
        for tag in ["1", "2"] {
            let o = Command::new("timeout")
                .args([
                    "-s",
                    "KILL",
                    "60",
                    "skopeo",
                    "copy",
                    "--quiet",
                    "--dest-tls-verify=false",
                ])
                .arg(format!("docker-archive:{}", archive.display()))
                .arg(format!("docker://{}/hctl/busybox:{tag}", r.addr))
                .stdin(Stdio::null())
                .output()
                .map_err(|e| format!("skopeo: {e}"))?;
            if !o.status.success() {
                return Err(format!(
                    "skopeo copy: {}",
                    String::from_utf8_lossy(&o.stderr)
                ));
            }
        }
        Ok(r)
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        // Killing an already-ended child fails harmlessly.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// huskctl on a pseudo-terminal of its own (its controlling terminal, so that a size change
/// sends it SIGWINCH), as a user at a terminal runs it.
pub struct Pty {
    master: fs::File,
    child: Child,
    rx: std::sync::mpsc::Receiver<Vec<u8>>,
    pub seen: String,
}

fn winsize(rows: u16, cols: u16) -> libc::winsize {
    libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    }
}

impl Pty {
    pub fn spawn(sock: &Path, args: &[&str], rows: u16, cols: u16) -> Pty {
        use std::os::{fd::FromRawFd, unix::process::CommandExt};
        let (mut m, mut s) = (0, 0);
        let ws = winsize(rows, cols);
        // SAFETY: openpty writes two descriptors, which are then owned here.
        let r =
            unsafe { libc::openpty(&mut m, &mut s, std::ptr::null_mut(), std::ptr::null(), &ws) };
        assert_eq!(r, 0, "openpty: {}", std::io::Error::last_os_error());
        // SAFETY: both descriptors were just opened by openpty and nothing else owns them.
        let (master, slave) = unsafe { (fs::File::from_raw_fd(m), fs::File::from_raw_fd(s)) };
        let mut cmd = Command::new(huskctl_bin());
        cmd.args(args)
            .env("HUSK_HOST", format!("unix://{}", sock.display()))
            .stdin(slave.try_clone().unwrap())
            .stdout(slave.try_clone().unwrap())
            .stderr(slave);
        // SAFETY: setsid and ioctl are async-signal-safe; they make the pty the child's
        // controlling terminal.
        unsafe {
            cmd.pre_exec(|| {
                if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().expect("huskctl on a pty");
        let (tx, rx) = std::sync::mpsc::channel();
        let mut reader = master.try_clone().unwrap();
        std::thread::spawn(move || {
            use std::io::Read;
            let mut buf = [0u8; 4096];
            // Ends with EIO once the last holder of the terminal's other side is gone.
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        Pty {
            master,
            child,
            rx,
            seen: String::new(),
        }
    }

    pub fn write(&mut self, s: &str) {
        use std::io::Write;
        self.master
            .write_all(s.as_bytes())
            .expect("write to the pty");
    }

    /// Waits (bounded) until `needle` has been printed since the last call that found one.
    pub fn expect(&mut self, needle: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(i) = self.seen.find(needle) {
                self.seen.drain(..i + needle.len());
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(b) => self.seen.push_str(&String::from_utf8_lossy(&b)),
                Err(_) => return false,
            }
        }
    }

    /// Whether the terminal is back in canonical mode with echo (huskctl restored it).
    pub fn canonical(&self) -> bool {
        use std::os::fd::AsRawFd;
        // SAFETY: tcgetattr writes into the termios given.
        let mut t: libc::termios = unsafe { std::mem::zeroed() };
        let r = unsafe { libc::tcgetattr(self.master.as_raw_fd(), &mut t) };
        r == 0
            && t.c_lflag & (libc::ICANON | libc::ECHO | libc::ISIG)
                == (libc::ICANON | libc::ECHO | libc::ISIG)
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    pub fn resize(&self, rows: u16, cols: u16) {
        use std::os::fd::AsRawFd;
        let ws = winsize(rows, cols);
        // SAFETY: TIOCSWINSZ reads the winsize given; the kernel then signals SIGWINCH.
        let r = unsafe { libc::ioctl(self.master.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
        assert_eq!(r, 0, "TIOCSWINSZ: {}", std::io::Error::last_os_error());
    }

    /// The exit code, waiting at most `timeout`; the process is killed past it.
    pub fn wait(&mut self, timeout: Duration) -> Option<i32> {
        let mut code = None;
        let child = &mut self.child;
        wait_for(timeout, || match child.try_wait() {
            Ok(Some(st)) => {
                code = st.code();
                true
            }
            _ => false,
        });
        code
    }
}

impl Drop for Pty {
    fn drop(&mut self) {
        // Killing an already-ended child fails harmlessly.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
