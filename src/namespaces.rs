//! Which namespaces a container creates and which it joins by path, and the clone that makes
//! its init. With nothing to join, one clone(2) with every flag makes the init directly; a
//! namespace joined by path (or a time namespace with offsets) needs a first child that joins
//! and unshares, then forks the init.

use crate::error::{Context, Error, Result};
use nix::sched::CloneFlags;
use oci_spec::runtime::{LinuxIdMapping, LinuxNamespace, LinuxNamespaceType};
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::path::PathBuf;

pub struct Plan {
    /// Namespaces to create; the cgroup namespace is made later, once the init is in its cgroup.
    pub new: CloneFlags,
    pub new_cgroup: bool,
    /// Namespaces to join: the user namespace first, the mount namespace last.
    pub join: Vec<(CloneFlags, PathBuf)>,
}

pub fn flag(t: LinuxNamespaceType) -> CloneFlags {
    match t {
        LinuxNamespaceType::Pid => CloneFlags::CLONE_NEWPID,
        LinuxNamespaceType::Network => CloneFlags::CLONE_NEWNET,
        LinuxNamespaceType::Mount => CloneFlags::CLONE_NEWNS,
        LinuxNamespaceType::Ipc => CloneFlags::CLONE_NEWIPC,
        LinuxNamespaceType::Uts => CloneFlags::CLONE_NEWUTS,
        LinuxNamespaceType::User => CloneFlags::CLONE_NEWUSER,
        LinuxNamespaceType::Cgroup => CloneFlags::CLONE_NEWCGROUP,
        LinuxNamespaceType::Time => CloneFlags::from_bits_retain(libc::CLONE_NEWTIME),
    }
}

impl Plan {
    pub fn new(namespaces: &[LinuxNamespace]) -> Result<Plan> {
        let mut new = CloneFlags::empty();
        let mut join = Vec::new();
        let mut seen = CloneFlags::empty();
        for ns in namespaces {
            let f = flag(ns.typ());
            if seen.contains(f) {
                return Err(Error::msg(format!(
                    "linux.namespaces: duplicate namespace {:?}",
                    ns.typ()
                )));
            }
            seen |= f;
            match ns.path() {
                Some(p) if !p.as_os_str().is_empty() => join.push((f, p.clone())),
                _ => new |= f,
            }
        }
        let order = |f: &CloneFlags| match *f {
            CloneFlags::CLONE_NEWUSER => 0,
            CloneFlags::CLONE_NEWNS => 2,
            _ => 1,
        };
        join.sort_by_key(|(f, _)| order(f));
        let new_cgroup = new.contains(CloneFlags::CLONE_NEWCGROUP);
        new.remove(CloneFlags::CLONE_NEWCGROUP);
        Ok(Plan {
            new,
            new_cgroup,
            join,
        })
    }

    pub fn creates(&self, f: CloneFlags) -> bool {
        self.new.contains(f)
    }

    pub fn has(&self, f: CloneFlags) -> bool {
        self.creates(f) || self.join.iter().any(|(j, _)| *j == f)
    }

    pub fn two_stage(&self) -> bool {
        !self.join.is_empty() || self.creates(CloneFlags::from_bits_retain(libc::CLONE_NEWTIME))
    }
}

/// fork(2) with namespace flags: the child gets a copy of our stack, as with fork, and starts in
/// the new namespaces. Returns 0 in the child.
pub fn clone(flags: CloneFlags) -> Result<i32> {
    // SAFETY: without CLONE_VM the child runs on a copy-on-write copy of our memory, exactly as
    // after fork(); husk is single-threaded, so no lock can be held by another thread.
    let r = unsafe {
        libc::syscall(
            libc::SYS_clone,
            (flags.bits() | libc::SIGCHLD) as libc::c_ulong,
            0usize,
            0usize,
            0usize,
            0usize,
        )
    };
    if r < 0 {
        return Err(nix::errno::Errno::last()).ctx("clone");
    }
    Ok(r as i32)
}

/// clone3's flag (Linux 5.7): the child starts in the cgroup v2 directory `clone_args.cgroup`.
/// Ours: libc's constant is a c_int that overflows.
const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// `clone`, with the child starting in the cgroup v2 directory `cgroup` (open, O_PATH will do)
/// rather than in ours: clone3 with CLONE_INTO_CGROUP. Returns 0 in the child. Fails with the
/// kernel's errno, and nothing done, where the kernel lacks clone3 or the flag (ENOSYS, E2BIG,
/// EINVAL), the cgroup cannot take a process (EBUSY: controllers enabled below it;
/// EOPNOTSUPP: a threaded one), we may not move a process there (EACCES, EPERM), or its pids
/// limit is reached (EAGAIN).
pub fn clone_into_cgroup(flags: CloneFlags, cgroup: BorrowedFd) -> nix::Result<i32> {
    let args = libc::clone_args {
        flags: u64::from(flags.bits() as u32) | CLONE_INTO_CGROUP,
        pidfd: 0,
        child_tid: 0,
        parent_tid: 0,
        exit_signal: libc::SIGCHLD as u64,
        // No stack of its own: the child runs on a copy of ours, as after fork.
        stack: 0,
        stack_size: 0,
        tls: 0,
        set_tid: 0,
        set_tid_size: 0,
        cgroup: cgroup.as_raw_fd() as u64,
    };
    // SAFETY: as in `clone`; the kernel reads `args`, which outlives the call.
    let r = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &args as *const libc::clone_args,
            std::mem::size_of::<libc::clone_args>(),
        )
    };
    if r < 0 {
        return Err(nix::errno::Errno::last());
    }
    Ok(r as i32)
}

pub fn join(joins: &[(CloneFlags, PathBuf)]) -> Result<()> {
    for (f, path) in joins {
        // Non-blocking: a fifo there must fail setns, not wait for a writer.
        let fd = nix::fcntl::open(
            path,
            nix::fcntl::OFlag::O_RDONLY
                | nix::fcntl::OFlag::O_NONBLOCK
                | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .with_ctx(|| format!("linux.namespaces: open {}", path.display()))?;
        nix::sched::setns(&fd, *f)
            .with_ctx(|| format!("linux.namespaces: setns {}", path.display()))?;
    }
    Ok(())
}

/// Writes uid_map and gid_map of a process in a new user namespace. As root outside, directly.
/// An unprivileged caller may write only its own ids, and gid_map only once setgroups is denied
/// (runc denies it when the gid map is the caller's gid alone); wider maps go through the setuid
/// newuidmap/newgidmap, which check them against /etc/subuid and /etc/subgid, as runc's do.
/// `field` names the spec's mappings in errors ("linux" or the mount).
pub fn write_id_maps(
    pid: i32,
    uids: &[LinuxIdMapping],
    gids: &[LinuxIdMapping],
    field: &str,
) -> Result<()> {
    let unprivileged = !nix::unistd::geteuid().is_root();
    if unprivileged && own_id_only(gids, nix::unistd::getegid().as_raw()) {
        std::fs::write(format!("/proc/{pid}/setgroups"), "deny")
            .with_ctx(|| format!("{field}.gidMappings: write setgroups"))?;
    }
    for (file, tool, maps, key) in [
        ("uid_map", "newuidmap", uids, "uidMappings"),
        ("gid_map", "newgidmap", gids, "gidMappings"),
    ] {
        let text = maps
            .iter()
            .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
            .collect::<String>();
        match std::fs::write(format!("/proc/{pid}/{file}"), text) {
            Ok(()) => {}
            Err(e)
                if unprivileged && matches!(e.raw_os_error(), Some(libc::EPERM | libc::EACCES)) =>
            {
                map_with_tool(tool, pid, maps).with_ctx(|| format!("{field}.{key}: {tool}"))?
            }
            Err(e) => return Err(e).with_ctx(|| format!("{field}.{key}: write {file}")),
        }
    }
    Ok(())
}

fn own_id_only(maps: &[LinuxIdMapping], id: u32) -> bool {
    matches!(maps, [m] if m.container_id() == 0 && m.host_id() == id && m.size() == 1)
}

/// Runs newuidmap or newgidmap (Debian's `uidmap`) for `pid`; its own words say what it refused.
fn map_with_tool(tool: &str, pid: i32, maps: &[LinuxIdMapping]) -> std::io::Result<()> {
    let mut cmd = std::process::Command::new(tool);
    cmd.arg(pid.to_string());
    for m in maps {
        cmd.args([m.container_id(), m.host_id(), m.size()].map(|n| n.to_string()));
    }
    let out = cmd
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => std::io::Error::other(format!(
                "{tool} not found: maps of more than the caller's own id need Debian's uidmap"
            )),
            _ => e,
        })?;
    if out.status.success() {
        return Ok(());
    }
    let err = String::from_utf8_lossy(&out.stderr);
    Err(std::io::Error::other(format!(
        "{} ({})",
        err.trim().replace('\n', "; "),
        out.status
    )))
}

/// A user namespace with these mappings, for an id-mapped mount. A child is cloned into a new
/// user namespace, we write its maps and keep a handle on the namespace; the child only reads a
/// pipe until we drop our end (or die), so its exit, which we wait for, cannot be delayed.
pub fn user_namespace(
    uids: &[LinuxIdMapping],
    gids: &[LinuxIdMapping],
    field: &str,
) -> Result<OwnedFd> {
    let (hold, release) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).ctx("pipe")?;
    let pid =
        clone(CloneFlags::CLONE_NEWUSER).with_ctx(|| format!("{field}: new user namespace"))?;
    if pid == 0 {
        drop(release);
        let mut b = [0u8; 1];
        while nix::unistd::read(&hold, &mut b) == Err(nix::errno::Errno::EINTR) {}
        // SAFETY: ends this copy of husk without running anything of the parent's.
        unsafe { libc::_exit(0) }
    }
    drop(hold);
    let ns = write_id_maps(pid, uids, gids, field).and_then(|()| {
        nix::fcntl::open(
            format!("/proc/{pid}/ns/user").as_str(),
            nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .with_ctx(|| format!("{field}: open user namespace"))
    });
    drop(release);
    nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None)
        .with_ctx(|| format!("{field}: wait for the user namespace's process"))?;
    ns
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::LinuxNamespaceBuilder;

    fn ns(t: LinuxNamespaceType, path: Option<&str>) -> LinuxNamespace {
        let b = LinuxNamespaceBuilder::default().typ(t);
        match path {
            Some(p) => b.path(p).build().unwrap(),
            None => b.build().unwrap(),
        }
    }

    #[test]
    fn joins_user_first_and_mount_last() {
        let p = Plan::new(&[
            ns(LinuxNamespaceType::Mount, Some("/m")),
            ns(LinuxNamespaceType::Network, Some("/n")),
            ns(LinuxNamespaceType::User, Some("/u")),
            ns(LinuxNamespaceType::Pid, None),
            ns(LinuxNamespaceType::Cgroup, None),
        ])
        .unwrap();
        let order: Vec<_> = p.join.iter().map(|(_, p)| p.to_str().unwrap()).collect();
        assert_eq!(order, ["/u", "/n", "/m"]);
        assert_eq!(p.new, CloneFlags::CLONE_NEWPID);
        assert!(p.new_cgroup);
        assert!(p.two_stage());
    }

    #[test]
    fn duplicate_namespaces_are_refused() {
        assert!(Plan::new(&[
            ns(LinuxNamespaceType::Pid, None),
            ns(LinuxNamespaceType::Pid, None)
        ])
        .is_err());
    }
}
