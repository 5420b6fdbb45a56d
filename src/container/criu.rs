//! CRIU through its RPC interface, as runc drives it: husk starts `criu swrk <fd>` and exchanges
//! protobuf messages (the rust-criu crate's `rpc` types) with it over a SOCK_SEQPACKET pair,
//! answering its notifications until the final reply.
//!
//! Every wait is tied to the CRIU process: we keep no copy of its end of the socket, so when it
//! exits (or crashes) our receive returns end-of-file, and we then reap it. A CRIU that itself
//! hangs (on a task stuck in the kernel, say) holds husk with it, as it holds runc: a dump's
//! length grows with the container's memory, so no fixed bound fits; the caller can kill husk,
//! which leaves the container as it was (CRIU thaws or kills its tasks as it ends).

use crate::error::{Context, Error, Result};
use nix::sys::socket::{
    recvmsg, send, socketpair, AddressFamily, ControlMessageOwned, MsgFlags, SockFlag, SockType,
};
use protobuf::Message;
pub use rust_criu::rust_criu_protobuf::rpc;
use std::io::IoSliceMut;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};

pub use rpc::{Criu_notify as Notify, Criu_opts as Opts, Criu_req_type as ReqType};

/// The CRIU settings `checkpoint` and `restore` both take from their common flags.
#[derive(Debug, Clone, Copy)]
pub struct Common {
    pub tcp_established: bool,
    pub ext_unix_sk: bool,
    pub shell_job: bool,
    pub file_locks: bool,
    pub auto_dedup: bool,
    pub lazy_pages: bool,
    pub cgroup_mode: rpc::Criu_cg_mode,
    pub empty_ns: u32,
}

impl Common {
    pub fn apply(&self, opts: &mut Opts) {
        opts.set_tcp_established(self.tcp_established);
        opts.set_ext_unix_sk(self.ext_unix_sk);
        opts.set_shell_job(self.shell_job);
        opts.set_file_locks(self.file_locks);
        opts.set_auto_dedup(self.auto_dedup);
        opts.set_lazy_pages(self.lazy_pages);
        opts.set_manage_cgroups_mode(self.cgroup_mode);
        opts.set_empty_ns(self.empty_ns);
    }
}

/// The oldest CRIU runc works with: the first with the VERSION request.
pub const MIN_VERSION: u32 = 30000;

/// A running `criu swrk`.
pub struct Swrk {
    sock: OwnedFd,
    child: Child,
}

impl Swrk {
    /// Starts `criu swrk`. `keep` are fds (numbers named in the request) that CRIU inherits;
    /// with `stdio`, it also gets ours, which a restore hands on to the restored process.
    pub fn spawn(criu: &Path, keep: &[RawFd], stdio: bool) -> Result<Swrk> {
        let (ours, theirs) = socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .ctx("socketpair for criu")?;
        let mut inherit: Vec<RawFd> = keep.to_vec();
        inherit.push(theirs.as_raw_fd());
        let mut cmd = Command::new(criu);
        cmd.arg("swrk").arg(theirs.as_raw_fd().to_string());
        if !stdio {
            cmd.stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
        }
        // SAFETY: between fork and exec only fcntl(2), which is async-signal-safe, runs.
        unsafe {
            cmd.pre_exec(move || {
                for &fd in &inherit {
                    if libc::fcntl(fd, libc::F_SETFD, 0) < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                Ok(())
            });
        }
        let child = cmd.spawn().map_err(|e| spawn_error(criu, &e))?;
        drop(theirs);
        Ok(Swrk { sock: ours, child })
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Sends `req` and serves CRIU's notifications with `notify` (each with the fd that came
    /// with it) until the reply to `req`, which is returned once CRIU has exited.
    pub fn call(
        mut self,
        req: &rpc::Criu_req,
        notify: &mut dyn FnMut(&Notify, Option<OwnedFd>) -> Result<()>,
    ) -> Result<rpc::Criu_resp> {
        let want = req.type_();
        let res = self.exchange(req, notify);
        // Done (or failed): CRIU reads end-of-file and exits; a pre-dump's CRIU waits for
        // more until then.
        // SAFETY: shutdown(2) on a socket we own.
        unsafe { libc::shutdown(self.sock.as_raw_fd(), libc::SHUT_WR) };
        let status = self.child.wait().ctx("wait for criu");
        let resp = res?;
        let status = status?;
        if !status.success() && want != ReqType::PRE_DUMP {
            return Err(Error::msg(format!("criu failed: {status}")));
        }
        Ok(resp)
    }

    fn exchange(
        &mut self,
        req: &rpc::Criu_req,
        notify: &mut dyn FnMut(&Notify, Option<OwnedFd>) -> Result<()>,
    ) -> Result<rpc::Criu_resp> {
        self.send(req)?;
        loop {
            let (resp, fd) = self.recv()?;
            let t = resp.type_();
            if !resp.success() {
                return Err(Error::msg(format!(
                    "criu failed: type {t:?} errno {}",
                    resp.cr_errno()
                )));
            }
            if t != ReqType::NOTIFY {
                if t != req.type_() {
                    return Err(Error::msg(format!("unable to parse the response {t:?}")));
                }
                return Ok(resp);
            }
            let n = resp
                .notify
                .as_ref()
                .ok_or_else(|| Error::msg("criu: notification without its body"))?;
            log::debug!("notify: {}", n.script());
            notify(n, fd)?;
            let mut ack = rpc::Criu_req::new();
            ack.set_type(ReqType::NOTIFY);
            ack.set_notify_success(true);
            self.send(&ack)?;
        }
    }

    fn send(&self, req: &rpc::Criu_req) -> Result<()> {
        let data = req
            .write_to_bytes()
            .map_err(|e| Error::msg(format!("encode criu request: {e}")))?;
        send(self.sock.as_raw_fd(), &data, MsgFlags::MSG_NOSIGNAL).ctx("send to criu")?;
        Ok(())
    }

    /// One message, and the fd CRIU passed with it (the orphaned pty master).
    fn recv(&self) -> Result<(rpc::Criu_resp, Option<OwnedFd>)> {
        let mut buf = vec![0u8; 10 * 4096];
        let mut iov = [IoSliceMut::new(&mut buf)];
        let mut space = nix::cmsg_space!([RawFd; 1]);
        let msg = loop {
            match recvmsg::<()>(
                self.sock.as_raw_fd(),
                &mut iov,
                Some(&mut space),
                MsgFlags::MSG_CMSG_CLOEXEC,
            ) {
                Err(nix::errno::Errno::EINTR) => continue,
                r => break r.ctx("receive from criu")?,
            }
        };
        let mut fd = None;
        for c in msg.cmsgs().ctx("receive from criu")? {
            if let ControlMessageOwned::ScmRights(fds) = c {
                for f in fds {
                    // SAFETY: the kernel just installed these fds for us.
                    let f = unsafe { OwnedFd::from_raw_fd(f) };
                    fd.get_or_insert(f);
                }
            }
        }
        let n = msg.bytes;
        if n == 0 {
            return Err(Error::msg("unexpected EOF"));
        }
        if n == buf.len() {
            return Err(Error::msg("buffer is too small"));
        }
        let resp = rpc::Criu_resp::parse_from_bytes(&buf[..n])
            .map_err(|e| Error::msg(format!("decode criu response: {e}")))?;
        Ok((resp, fd))
    }
}

/// A CRIU that husk stops talking to before `call` (an error while the request is built) reads
/// end-of-file and exits: it is reaped here, and killed if it has not gone within a second.
impl Drop for Swrk {
    fn drop(&mut self) {
        if !matches!(self.child.try_wait(), Ok(None)) {
            return;
        }
        // SAFETY: shutdown(2) on a socket we own.
        unsafe { libc::shutdown(self.sock.as_raw_fd(), libc::SHUT_WR) };
        let gone = crate::util::pidfd::pidfd_open(self.pid())
            .and_then(|fd| crate::container::wait_exit(&fd, 1000))
            .unwrap_or(false);
        if !gone {
            // It may have exited since: the wait below reaps it either way.
            let _ = self.child.kill();
        }
        if let Err(e) = self.child.wait() {
            log::warn!("wait for criu: {e}");
        }
    }
}

/// Why CRIU could not be started, in Go's words: a bare name is looked up on $PATH.
fn spawn_error(criu: &Path, e: &std::io::Error) -> Error {
    let bare = !criu.as_os_str().as_encoded_bytes().contains(&b'/');
    Error::msg(if bare && e.kind() == std::io::ErrorKind::NotFound {
        format!(
            "exec: {:?}: executable file not found in $PATH",
            criu.display().to_string()
        )
    } else {
        format!("fork/exec {}: {}", criu.display(), crate::error::io_text(e))
    })
}

fn version_error(e: Error) -> Error {
    Error::msg(format!("CRIU version check failed: {e}"))
}

impl Swrk {
    /// A `criu swrk` whose version is checked first, over a connection it keeps open for the
    /// request that follows: one CRIU process instead of runc's two. The version is counted as
    /// runc counts it (major*10000 + minor*100 + sublevel; a git build counts as the next minor
    /// release), and refused below `min`.
    pub fn start(criu: &Path, min: u32) -> Result<(Swrk, u32)> {
        let mut s = Swrk::spawn(criu, &[], false).map_err(version_error)?;
        let v = s.check_version(min)?;
        Ok((s, v))
    }

    fn check_version(&mut self, min: u32) -> Result<u32> {
        let mut req = rpc::Criu_req::new();
        req.set_type(ReqType::VERSION);
        req.set_keep_open(true);
        let resp = self
            .exchange(&req, &mut |_, _| Ok(()))
            .map_err(version_error)?;
        let v = resp
            .version
            .as_ref()
            .ok_or_else(|| version_error(Error::msg("no version in the reply")))?;
        let v = count_version(
            v.major_number(),
            v.minor_number(),
            v.sublevel(),
            v.has_gitid(),
        );
        if v < min {
            return Err(Error::msg(format!(
                "CRIU version {v} must be {min} or higher"
            )));
        }
        log::debug!("Using CRIU {v}");
        Ok(v)
    }

    /// Asks CRIU whether it has the features a pre-dump (memory tracking) or lazy pages need.
    pub fn check_features(&mut self, mem_track: bool, lazy_pages: bool) -> Result<()> {
        let mut f = rpc::Criu_features::new();
        if mem_track {
            f.set_mem_track(true);
        }
        if lazy_pages {
            f.set_lazy_pages(true);
        }
        let mut req = rpc::Criu_req::new();
        req.set_type(ReqType::FEATURE_CHECK);
        req.set_keep_open(true);
        req.features = protobuf::MessageField::some(f);
        let resp = self
            .exchange(&req, &mut |_, _| Ok(()))
            .map_err(|e| Error::msg(format!("CRIU feature check failed: {e}")))?;
        let got = resp.features.as_ref();
        let mut missing = Vec::new();
        if mem_track && got.is_some_and(|g| g.has_mem_track() && !g.mem_track()) {
            missing.push("MemTrack");
        }
        if lazy_pages && got.is_some_and(|g| g.has_lazy_pages() && !g.lazy_pages()) {
            missing.push("LazyPages");
        }
        if missing.is_empty() {
            Ok(())
        } else {
            Err(Error::msg(format!(
                "criu is missing features: [{}]",
                missing.join(" ")
            )))
        }
    }
}

fn count_version(major: i32, minor: i32, sublevel: i32, git: bool) -> u32 {
    let v = (major.max(0) * 10000 + minor.max(0) * 100 + sublevel.max(0)) as u32;
    if git {
        v - v % 100 + 100
    } else {
        v
    }
}

/// The --manage-cgroups-mode value, in runc 1.2's words when it is none of them.
pub fn cgroup_mode(mode: Option<&str>) -> Result<rpc::Criu_cg_mode> {
    Ok(match mode.unwrap_or("") {
        "" => rpc::Criu_cg_mode::DEFAULT,
        "soft" => rpc::Criu_cg_mode::SOFT,
        "full" => rpc::Criu_cg_mode::FULL,
        "strict" => rpc::Criu_cg_mode::STRICT,
        "ignore" => rpc::Criu_cg_mode::IGNORE,
        _ => return Err(Error::msg("Invalid manage-cgroups-mode value")),
    })
}

/// The --empty-ns mask: the network namespace always (husk, like runc, does not manage network
/// devices), and only it may be named.
pub fn empty_ns(names: &[String]) -> Result<u32> {
    for n in names {
        if n != "network" {
            return Err(Error::msg(format!("namespace {n:?} is not supported")));
        }
    }
    Ok(libc::CLONE_NEWNET as u32)
}

/// The options every request carries, as runc sets them.
pub fn base_opts(images: &OwnedFd, log_file: &str) -> Opts {
    let mut o = Opts::new();
    o.set_images_dir_fd(images.as_raw_fd());
    o.set_log_level(4);
    o.set_log_file(log_file.into());
    o.set_manage_cgroups(true);
    o.set_notify_scripts(true);
    o.set_orphan_pts_master(true);
    // Settings in it override the request's; runc names this one unless the container's
    // org.criu.config annotation names another (or, empty, none).
    o.set_config_file("/etc/criu/runc.conf".into());
    o
}

/// The container's own CRIU configuration file, from its org.criu.config annotation.
pub fn config_file(o: &mut Opts, annotations: &std::collections::HashMap<String, String>) {
    match annotations.get("org.criu.config").map(String::as_str) {
        Some("") => o.config_file = None,
        Some(f) => o.set_config_file(f.into()),
        None => {}
    }
}

/// After a failure, the lines of CRIU's log around each error, as runc quotes them.
pub fn quote_errors(log: &Path) {
    let Ok(text) = std::fs::read_to_string(log) else {
        log::warn!("open {}: cannot read the criu log", log.display());
        return;
    };
    let lines: Vec<&str> = text.lines().collect();
    let mut printed = 0;
    for (i, l) in lines.iter().enumerate() {
        if !l.contains("Error") {
            continue;
        }
        if printed == 0 {
            log::warn!("--- Quoting {:?}", log.display().to_string());
        } else if i.saturating_sub(5) > printed {
            log::warn!("...");
        }
        for (j, l) in lines
            .iter()
            .enumerate()
            .take(i + 1)
            .skip(i.saturating_sub(5))
        {
            if j + 1 > printed && !l.is_empty() {
                log::warn!("{}:{l}", j + 1);
                printed = j + 1;
            }
        }
    }
    if printed != 0 {
        log::warn!("---");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_count_as_runc_counts_them() {
        assert_eq!(count_version(4, 1, 1, false), 40101);
        assert_eq!(count_version(3, 17, 1, true), 31800);
        assert_eq!(count_version(2, 12, 0, false), 21200);
    }

    #[test]
    fn cgroup_modes_and_empty_namespaces() {
        assert_eq!(cgroup_mode(None).unwrap(), rpc::Criu_cg_mode::DEFAULT);
        assert_eq!(cgroup_mode(Some("full")).unwrap(), rpc::Criu_cg_mode::FULL);
        assert!(cgroup_mode(Some("nope")).is_err());
        assert_eq!(empty_ns(&[]).unwrap(), libc::CLONE_NEWNET as u32);
        assert_eq!(
            empty_ns(&["ipc".into()]).unwrap_err().to_string(),
            "namespace \"ipc\" is not supported"
        );
    }

    #[test]
    fn a_missing_criu_is_named() {
        let Err(e) = Swrk::start(Path::new("/nonexistent/criu"), MIN_VERSION) else {
            panic!("a missing CRIU started");
        };
        assert_eq!(
            e.to_string(),
            "CRIU version check failed: fork/exec /nonexistent/criu: no such file or directory"
        );
    }
}
