//! A private huskd for one test: its own socket, root, state directory and namespace (so its
//! runtime root /run/containerd/husk/<ns> and cgroups /<ns>/… are its own). Dropping it removes
//! every container through the API, stops huskd, and sweeps whatever is left: shims, mounts,
//! the runtime root, cgroups, the directory. The API is driven with curl, and hijacked
//! connections (attach, exec) with a small client here.
//!
//! Binaries: $HUSKD_BIN, by default the workspace's debug build, with the shim and husk found
//! beside it (as huskd and the shim look for them), or $SHIM_BIN and $HUSK_BIN.

use std::{
    fs,
    io::{Read, Write},
    os::unix::net::UnixStream,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::Duration,
};

use serde_json::Value;

use crate::{become_subreaper, reap_all, remove_namespace_cgroups, unmount_under, wait_for};

pub fn huskd_bin() -> PathBuf {
    crate::target_bin("HUSKD_BIN", "huskd")
}

/// The husk this huskd's shims run: $HUSK_BIN (first on their $PATH), else the one beside the
/// shim ($SHIM_BIN, else beside huskd), where the shim looks next.
fn runtime_bin() -> PathBuf {
    if let Some(husk) = std::env::var_os("HUSK_BIN") {
        return PathBuf::from(husk);
    }
    let shim = std::env::var_os("SHIM_BIN").map_or_else(
        || crate::try_target_bin("HUSKD_BIN", "huskd").unwrap_or_default(),
        PathBuf::from,
    );
    shim.with_file_name("husk")
}

/// curl on the API at `sock` with `args` (the URL among them, host `d`); `None` when curl
/// fails (nothing listening, or a connection cut).
pub fn curl_at(sock: &Path, args: &[&str]) -> Option<Reply> {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "60", "--unix-socket"])
        .arg(sock)
        .args(["-w", "\n%{http_code}"])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let mut body = out.stdout;
    let nl = body.iter().rposition(|b| *b == b'\n')?;
    let status = String::from_utf8_lossy(&body[nl + 1..]).parse().ok()?;
    body.truncate(nl);
    Some(Reply { status, body })
}

pub struct Huskd {
    pub dir: PathBuf,
    pub sock: PathBuf,
    pub root: PathBuf,
    pub state: PathBuf,
    pub ns: String,
    child: Option<Child>,
    args: Vec<String>,
}

/// One answer: status and body.
pub struct Reply {
    pub status: u16,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    /// The `message` of an error answer.
    pub fn message(&self) -> String {
        self.json()["message"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }
}

/// Docker's multiplexed stream split into (stream, bytes) frames.
pub fn demux(mut b: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let mut out = Vec::new();
    while b.len() >= 8 {
        let n = u32::from_be_bytes([b[4], b[5], b[6], b[7]]) as usize;
        assert!(b.len() >= 8 + n, "truncated frame");
        out.push((b[0], b[8..8 + n].to_vec()));
        b = &b[8 + n..];
    }
    assert!(b.is_empty(), "trailing bytes: {b:?}");
    out
}

/// The bytes of one stream (1 stdout, 2 stderr) of a multiplexed body.
pub fn stream_of(body: &[u8], which: u8) -> String {
    demux(body)
        .into_iter()
        .filter(|(s, _)| *s == which)
        .map(|(_, d)| String::from_utf8_lossy(&d).into_owned())
        .collect()
}

/// Writes `stdin` into a hijacked connection, closes its write side, and reads what the
/// server sends until it closes.
pub fn hijack_finish(mut s: UnixStream, stdin: &[u8]) -> Vec<u8> {
    if !stdin.is_empty() {
        s.write_all(stdin).unwrap();
    }
    s.shutdown(std::net::Shutdown::Write).unwrap();
    let mut rest = Vec::new();
    s.read_to_end(&mut rest).unwrap();
    rest
}

impl Huskd {
    pub fn start(name: &str) -> Huskd {
        Self::start_with(name, &[])
    }

    /// With more flags for huskd (`--insecure-registry …`).
    pub fn start_with(name: &str, args: &[&str]) -> Huskd {
        Self::try_start_with(name, args).unwrap_or_else(|e| panic!("{e}"))
    }

    /// As [`Huskd::start_with`], but `Err` says why huskd could not start (not built, exited,
    /// not serving in time), for a caller that skips rather than fails; nothing is left behind.
    pub fn try_start_with(name: &str, args: &[&str]) -> Result<Huskd, String> {
        become_subreaper();
        let dir = PathBuf::from(format!("/tmp/huskd-test-{name}-{}", std::process::id()));
        if dir.exists() {
            unmount_under(&dir);
            fs::remove_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let mut h = Huskd {
            sock: dir.join("huskd.sock"),
            root: dir.join("root"),
            state: dir.join("state"),
            ns: format!("huskd-test-{name}-{}", std::process::id()),
            dir,
            child: None,
            args: args.iter().map(|a| a.to_string()).collect(),
        };
        // huskds of tests running at once would share the default bridge with stores of
        // their own, and give out the same addresses: a test that wants the bridge names one.
        if !args.contains(&"--bridge") {
            h.args.extend(["--bridge".into(), "none".into()]);
        }
        // On Err, dropping `h` stops whatever started and removes the directory.
        h.try_spawn()?;
        Ok(h)
    }

    fn spawn(&mut self) {
        if let Err(e) = self.try_spawn() {
            panic!("{e}");
        }
    }

    fn try_spawn(&mut self) -> Result<(), String> {
        let bin = crate::try_target_bin("HUSKD_BIN", "huskd")?;
        let log = self.dir.join("huskd.log");
        let log = fs::File::options()
            .create(true)
            .append(true)
            .open(&log)
            .map_err(|e| format!("{}: {e}", log.display()))?;
        let mut cmd = Command::new(&bin);
        cmd.arg("--socket")
            .arg(&self.sock)
            .arg("--root")
            .arg(&self.root)
            .arg("--state")
            .arg(&self.state)
            .args(["--namespace", &self.ns])
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        if let Some(shim) = std::env::var_os("SHIM_BIN") {
            cmd.arg("--shim").arg(shim);
        }
        // The shim looks for husk on $PATH, then beside itself.
        if let Some(husk) = std::env::var_os("HUSK_BIN") {
            let dir = Path::new(&husk).parent().unwrap().to_path_buf();
            let path = std::env::var_os("PATH").unwrap_or_default();
            let paths = std::iter::once(dir).chain(std::env::split_paths(&path));
            cmd.env("PATH", std::env::join_paths(paths).unwrap());
        }
        let child = self
            .child
            .insert(cmd.spawn().map_err(|e| format!("{}: {e}", bin.display()))?);
        let sock = &self.sock;
        let mut exited = None;
        let serving = wait_for(Duration::from_secs(20), || {
            exited = child.try_wait().ok().flatten();
            exited.is_some() || curl_at(sock, &["http://d/_ping"]).is_some_and(|r| r.status == 200)
        });
        if let Some(st) = exited {
            self.child = None;
            return Err(format!("huskd exited ({st}):\n{}", self.log()));
        }
        if !serving {
            return Err(format!(
                "huskd did not serve {} within 20 s:\n{}",
                self.sock.display(),
                self.log()
            ));
        }
        Ok(())
    }

    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.join("huskd.log")).unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    /// SIGKILL, then a new huskd on the same socket, root and state.
    pub fn kill9_and_restart(&mut self) {
        self.kill9();
        self.restart();
    }

    fn try_curl(&self, args: &[&str]) -> Option<Reply> {
        curl_at(&self.sock, args)
    }

    /// curl with `args` (the URL among them, host `d`).
    pub fn curl(&self, args: &[&str]) -> Reply {
        self.try_curl(args)
            .unwrap_or_else(|| panic!("curl {args:?} failed\n{}", self.log()))
    }

    pub fn get(&self, path: &str) -> Reply {
        self.curl(&[&format!("http://d{path}")])
    }

    pub fn post(&self, path: &str, json: &Value) -> Reply {
        self.curl(&[
            "-X",
            "POST",
            "-H",
            "Content-Type: application/json",
            "-d",
            &json.to_string(),
            &format!("http://d{path}"),
        ])
    }

    pub fn post_empty(&self, path: &str) -> Reply {
        self.curl(&["-X", "POST", &format!("http://d{path}")])
    }

    pub fn delete(&self, path: &str) -> Reply {
        self.curl(&["-X", "DELETE", &format!("http://d{path}")])
    }

    pub fn load(&self, archive: &Path) -> Reply {
        self.curl(&[
            "-X",
            "POST",
            "-H",
            "Content-Type: application/x-tar",
            "--data-binary",
            &format!("@{}", archive.display()),
            "http://d/images/load",
        ])
    }

    /// Creates a container; returns its id.
    #[track_caller]
    pub fn create(&self, name: &str, body: &Value) -> String {
        let r = self.post(&format!("/containers/create?name={name}"), body);
        assert_eq!(r.status, 201, "create: {}", r.text());
        r.json()["Id"].as_str().unwrap().to_string()
    }

    #[track_caller]
    pub fn start_ctr(&self, id: &str) {
        let r = self.post_empty(&format!("/containers/{id}/start"));
        assert_eq!(r.status, 204, "start: {}", r.text());
    }

    #[track_caller]
    pub fn wait_exit(&self, id: &str) -> i64 {
        let r = self.post_empty(&format!("/containers/{id}/wait"));
        assert_eq!(r.status, 200, "wait: {}", r.text());
        r.json()["StatusCode"].as_i64().unwrap()
    }

    pub fn inspect(&self, id: &str) -> Value {
        self.get(&format!("/containers/{id}/json")).json()
    }

    /// A hijacked request (attach, exec start): everything the server sent after its headers,
    /// until it closed the connection, and the status line.
    pub fn hijack(&self, path: &str, body: &str, stdin: &[u8]) -> (String, Vec<u8>) {
        let (status, s) = self.hijack_open(path, body);
        (status, hijack_finish(s, stdin))
    }

    /// Sends a hijacking request and reads the answer's headers; returns the status line and
    /// the connection.
    pub fn hijack_open(&self, path: &str, body: &str) -> (String, UnixStream) {
        let mut s = UnixStream::connect(&self.sock).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        write!(
            s,
            "POST {path} HTTP/1.1\r\nHost: d\r\nContent-Type: application/json\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            assert_eq!(
                s.read(&mut byte).unwrap(),
                1,
                "connection closed in the headers"
            );
            head.push(byte[0]);
        }
        let status = String::from_utf8_lossy(&head)
            .lines()
            .next()
            .unwrap_or_default()
            .to_string();
        (status, s)
    }

    /// SIGKILL of huskd; its containers and shims keep running.
    pub fn kill9(&mut self) {
        let mut c = self.child.take().unwrap();
        c.kill().unwrap();
        c.wait().unwrap();
    }

    /// A new huskd on the same socket, root and state.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "huskd still runs");
        self.spawn();
    }

    /// Pids of shims serving this huskd (their -address is our socket).
    pub fn shims(&self) -> Vec<i32> {
        crate::shims_serving(&self.sock)
    }

    /// The runtime's root for our namespace.
    pub fn runtime_root(&self) -> PathBuf {
        PathBuf::from("/run/containerd/husk").join(&self.ns)
    }

    /// Nothing of any container is left but what `keep` (container ids) names: no shim, no
    /// mount below our directory, no runtime state, no bundle, no container directory, no
    /// cgroup.
    #[track_caller]
    pub fn assert_nothing_left(&self, keep: &[&str]) {
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
        let names = |d: &Path| -> Vec<String> {
            fs::read_dir(d)
                .into_iter()
                .flatten()
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| !keep.contains(&n.as_str()))
                .collect()
        };
        assert_eq!(
            names(&self.runtime_root()),
            Vec::<String>::new(),
            "runtime state left"
        );
        assert_eq!(
            names(&self.root.join("containers")),
            Vec::<String>::new(),
            "container dirs left"
        );
        let bundles: Vec<String> = names(&self.state)
            .into_iter()
            .filter(|n| n != "events.sock")
            .collect();
        assert_eq!(bundles, Vec::<String>::new(), "bundles left");
        for ctl in ["memory", "pids", "cpu"] {
            let d = Path::new("/sys/fs/cgroup").join(ctl).join(&self.ns);
            assert_eq!(
                names(&d).into_iter().filter(|n| n.len() == 64).count(),
                0,
                "cgroups left in {}",
                d.display()
            );
        }
    }

    fn cleanup(&mut self) {
        if self.child.is_some() {
            if let Some(list) = self.try_curl(&["http://d/containers/json?all=1"]) {
                for c in serde_json::from_slice::<Value>(&list.body)
                    .ok()
                    .and_then(|v| v.as_array().cloned())
                    .unwrap_or_default()
                {
                    if let Some(id) = c["Id"].as_str() {
                        self.try_curl(&[
                            "-X",
                            "DELETE",
                            &format!("http://d/containers/{id}?force=1"),
                        ]);
                    }
                }
            }
        }
        if let Some(mut c) = self.child.take() {
            // SAFETY: plain kill of the huskd we started.
            unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
            if !wait_for(Duration::from_secs(10), || {
                c.try_wait().ok().flatten().is_some()
            }) {
                // Gone already is fine.
                let _ = c.kill();
                let _ = c.wait();
            }
        }
        for pid in self.shims() {
            // SAFETY: plain kill of a shim of our huskd.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        wait_for(Duration::from_secs(10), || {
            reap_all();
            self.shims().is_empty()
        });
        let husk = runtime_bin();
        for e in fs::read_dir(self.runtime_root())
            .into_iter()
            .flatten()
            .flatten()
        {
            // Whatever the runtime still knows of; its status does not matter here.
            let _ = Command::new(&husk)
                .arg("--root")
                .arg(self.runtime_root())
                .args(["delete", "--force"])
                .arg(e.file_name())
                .output();
        }
        // Gone already, or busy (reported by the test that checks): either way, not ours to fix.
        let _ = fs::remove_dir_all(self.runtime_root());
        unmount_under(&self.dir);
        let _ = fs::remove_dir_all(&self.dir);
        remove_namespace_cgroups(&self.ns);
    }
}

impl Drop for Huskd {
    fn drop(&mut self) {
        let log = std::thread::panicking().then(|| self.log());
        self.cleanup();
        if let Some(log) = log {
            crate::print_log_tail("huskd", &log);
        }
    }
}
