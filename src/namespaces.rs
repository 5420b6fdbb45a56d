//! Which namespaces a container creates and which it joins by path, and the clone that makes
//! its init. With nothing to join, one clone(2) with every flag makes the init directly; a
//! namespace joined by path (or a time namespace with offsets) needs a first child that joins
//! and unshares, then forks the init.

use crate::error::{Context, Error, Result};
use nix::sched::CloneFlags;
use oci_spec::runtime::{LinuxIdMapping, LinuxNamespace, LinuxNamespaceType};
use std::os::fd::OwnedFd;
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

/// Writes uid_map and gid_map of a process in a new user namespace (we are root outside).
/// `field` names the spec's mappings in errors ("linux" or the mount).
pub fn write_id_maps(
    pid: i32,
    uids: &[LinuxIdMapping],
    gids: &[LinuxIdMapping],
    field: &str,
) -> Result<()> {
    let fmt = |m: &[LinuxIdMapping]| {
        m.iter()
            .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
            .collect::<String>()
    };
    std::fs::write(format!("/proc/{pid}/uid_map"), fmt(uids))
        .with_ctx(|| format!("{field}.uidMappings: write uid_map"))?;
    std::fs::write(format!("/proc/{pid}/gid_map"), fmt(gids))
        .with_ctx(|| format!("{field}.gidMappings: write gid_map"))?;
    Ok(())
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
