//! A private dockerd (Debian's docker.io) for one test, as the reference huskd is compared
//! with: its own data root, exec root and socket, no iptables, no bridge. Dropping it removes
//! its containers through the API, stops it, and sweeps its mounts and directory. It is driven
//! over its socket with curl, so that Docker's CLI is needed only by tests that use it.

use std::{
    fs,
    path::PathBuf,
    process::{Child, Command, Output, Stdio},
    time::Duration,
};

use serde_json::Value;

use crate::{become_subreaper, huskd::curl_at, reap_all, unmount_under, wait_for};

pub struct Dockerd {
    pub dir: PathBuf,
    pub sock: PathBuf,
    child: Child,
}

impl Dockerd {
    /// Starts dockerd in `dir` (made here; a stale one is swept first) and waits until it
    /// answers; `Err` says why it could not (not installed, exited, not serving in time), and
    /// nothing is left behind then.
    pub fn start(dir: PathBuf) -> Result<Dockerd, String> {
        become_subreaper();
        if dir.exists() {
            unmount_under(&dir);
            fs::remove_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let sock = dir.join("docker.sock");
        let log = dir.join("dockerd.log");
        let log = fs::File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
        let spawned = Command::new("dockerd")
            .arg("--data-root")
            .arg(dir.join("data"))
            .arg("--exec-root")
            .arg(dir.join("exec"))
            .arg("--pidfile")
            .arg(dir.join("dockerd.pid"))
            .arg("-H")
            .arg(format!("unix://{}", sock.display()))
            .args(["--iptables=false", "--ip6tables=false", "--bridge=none"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn();
        let child = match spawned {
            Ok(c) => c,
            Err(e) => {
                // Only the empty log is in it.
                let _ = fs::remove_dir_all(&dir);
                return Err(format!("dockerd: {e}"));
            }
        };
        let mut d = Dockerd { dir, sock, child };
        let mut exited = None;
        let serving = wait_for(Duration::from_secs(60), || {
            exited = d.child.try_wait().ok().flatten();
            exited.is_some()
                || curl_at(&d.sock, &["http://d/_ping"]).is_some_and(|r| r.status == 200)
        });
        match exited {
            Some(st) => Err(format!("dockerd exited ({st}): {}", d.log_tail())),
            None if !serving => Err(format!(
                "dockerd did not serve {} within 60 s: {}",
                d.sock.display(),
                d.log_tail()
            )),
            None => Ok(d),
        }
    }

    /// `unix://` and the socket, for $DOCKER_HOST.
    pub fn host(&self) -> String {
        format!("unix://{}", self.sock.display())
    }

    /// Docker's CLI against this dockerd.
    pub fn docker(&self, args: &[&str]) -> Output {
        docker_at(&self.host(), args)
    }

    /// The last lines of its log, on one line.
    fn log_tail(&self) -> String {
        let log = fs::read_to_string(self.dir.join("dockerd.log")).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(5).collect();
        tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
    }
}

/// Docker's CLI against the daemon at `host` (a `unix://` address), killed after 60 s.
pub fn docker_at(host: &str, args: &[&str]) -> Output {
    Command::new("timeout")
        .args(["-s", "KILL", "60", "docker"])
        .args(args)
        .env("DOCKER_HOST", host)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("docker {args:?}: {e}"))
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        // Removed rather than left to dockerd's shutdown, which waits out each one's stop
        // timeout. Not answering (it already exited) leaves nothing to remove this way.
        let list = curl_at(&self.sock, &["http://d/containers/json?all=1"]);
        let ids: Vec<String> = list
            .and_then(|r| serde_json::from_slice::<Value>(&r.body).ok())
            .and_then(|v| v.as_array().cloned())
            .unwrap_or_default()
            .iter()
            .filter_map(|c| c["Id"].as_str().map(str::to_string))
            .collect();
        for id in ids {
            let r = curl_at(
                &self.sock,
                &["-X", "DELETE", &format!("http://d/containers/{id}?force=1")],
            );
            if r.is_none_or(|r| r.status != 204) {
                eprintln!("dockerd: could not remove container {id}");
            }
        }
        // SIGTERM: dockerd stops its containerd before it exits.
        // SAFETY: plain kill of the dockerd we started.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let child = &mut self.child;
        if !wait_for(Duration::from_secs(30), || {
            child.try_wait().ok().flatten().is_some()
        }) {
            eprintln!("dockerd did not stop on SIGTERM in 30 s: killed");
            // Gone already is fine: the wait reaps it either way.
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        reap_all();
        unmount_under(&self.dir);
        if let Err(e) = fs::remove_dir_all(&self.dir) {
            eprintln!("{}: {e}", self.dir.display());
        }
    }
}
