//! `husk exec`: a new process in a running container. husk forks once: the pid namespace is
//! entered for our children before the fork, the others by the child, which then sets up the
//! process exactly as the init does and execs. The child is non-dumpable from its first
//! instruction, so the container cannot reach the husk binary through /proc/<pid>/exe.

use crate::container::create::write_pid_file;
use crate::container::open_existing;
use crate::error::{Context, Error, Result};

use crate::container::state::Status;
use crate::container::sync::{self, Msg};
use nix::sched::CloneFlags;
use oci_spec::runtime::{Capability, Process};
use std::os::fd::OwnedFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

pub struct ExecOptions<'a> {
    pub root: &'a Path,
    pub id: &'a str,
    pub process: Process,
    /// The container's seccomp profile, which exec'd processes get too.
    pub seccomp: Option<oci_spec::runtime::LinuxSeccomp>,
    /// The container's linux.personality, likewise.
    pub personality: Option<oci_spec::runtime::LinuxPersonality>,
    /// The container's linux.memoryPolicy, likewise.
    pub memory_policy: Option<oci_spec::runtime::LinuxMemoryPolicy>,
    pub detach: bool,
    pub pid_file: Option<&'a Path>,
    pub console_socket: Option<&'a Path>,
    pub preserve_fds: u32,
    pub ignore_paused: bool,
    /// The capabilities of the container's own process.
    pub container_caps: Option<&'a oci_spec::runtime::LinuxCapabilities>,
}

/// What `exec` runs when no --process file is given: the container's own process, changed by
/// the command line's flags.
pub fn process_from_flags(base: &Process, flags: &crate::cli::Exec) -> Result<Process> {
    let args = &flags.command;
    if args.is_empty() {
        return Err(Error::msg("exec args cannot be empty"));
    }
    let mut p = base.clone();
    p.set_args(Some(args.to_vec()));
    let mut e = base.env().clone().unwrap_or_default();
    e.extend(flags.env.iter().cloned());
    p.set_env(Some(e));
    if let Some(c) = &flags.cwd {
        p.set_cwd(PathBuf::from(c));
    }
    p.set_terminal(Some(flags.tty));
    if flags.no_new_privs {
        p.set_no_new_privileges(Some(true));
    }
    // Empty means unset, as in runc.
    if let Some(a) = flags.apparmor.as_ref().filter(|a| !a.is_empty()) {
        p.set_apparmor_profile(Some(a.clone()));
    }
    if let Some(l) = flags.process_label.as_ref().filter(|l| !l.is_empty()) {
        p.set_selinux_label(Some(l.clone()));
    }
    let mut u = p.user().clone();
    if let Some(spec) = &flags.user {
        let (uid, gid) = match spec.split_once(':') {
            Some((u, g)) => (u, Some(g)),
            None => (spec.as_str(), None),
        };
        u.set_uid(
            uid.parse()
                .map_err(|_| Error::msg(format!("--user: parsing {uid} as int")))?,
        );
        if let Some(g) = gid {
            u.set_gid(
                g.parse()
                    .map_err(|_| Error::msg(format!("--user: parsing {g} as int")))?,
            );
        }
    }
    if !flags.additional_gids.is_empty() {
        u.set_additional_gids(Some(flags.additional_gids.clone()));
    }
    p.set_user(u);
    if !flags.cap.is_empty() {
        let mut c = p.capabilities().clone().unwrap_or_default();
        for name in &flags.cap {
            let cap = Capability::from_str(name.trim_start_matches("CAP_"))
                .map_err(|_| Error::msg(format!("--cap: unknown capability {name}")))?;
            // Bounding, effective and permitted only: an inheritable capability would survive
            // into programs the process execs (CVE-2022-29162).
            let mut b = c.bounding().clone().unwrap_or_default();
            b.insert(cap);
            c.set_bounding(Some(b));
            let mut e = c.effective().clone().unwrap_or_default();
            e.insert(cap);
            c.set_effective(Some(e));
            let mut pm = c.permitted().clone().unwrap_or_default();
            pm.insert(cap);
            c.set_permitted(Some(pm));
        }
        p.set_capabilities(Some(c));
    }
    Ok(p)
}

/// A --process file leaves out what the container's own process then provides, as in runc:
/// capabilities, rlimits, no_new_privileges, the LSM labels, scheduler, I/O priority, CPU
/// affinity and oom_score_adj.
pub fn inherit(mut p: Process, base: &Process) -> Process {
    if p.oom_score_adj().is_none() {
        p.set_oom_score_adj(base.oom_score_adj());
    }
    if p.apparmor_profile().as_ref().is_none_or(|a| a.is_empty()) {
        p.set_apparmor_profile(base.apparmor_profile().clone());
    }
    if p.selinux_label().as_ref().is_none_or(|l| l.is_empty()) {
        p.set_selinux_label(base.selinux_label().clone());
    }
    if p.scheduler().is_none() {
        p.set_scheduler(base.scheduler().clone());
    }
    if p.io_priority().is_none() {
        p.set_io_priority(*base.io_priority());
    }
    if p.exec_cpu_affinity().is_none() {
        p.set_exec_cpu_affinity(base.exec_cpu_affinity().clone());
    }
    if p.capabilities().is_none() {
        p.set_capabilities(base.capabilities().clone());
    }
    if p.rlimits().as_ref().is_none_or(|r| r.is_empty()) {
        p.set_rlimits(base.rlimits().clone());
    }
    if p.no_new_privileges().is_none() {
        p.set_no_new_privileges(base.no_new_privileges());
    }
    p
}

const NAMESPACES: &[(&str, CloneFlags)] = &[
    ("user", CloneFlags::CLONE_NEWUSER),
    ("ipc", CloneFlags::CLONE_NEWIPC),
    ("uts", CloneFlags::CLONE_NEWUTS),
    ("net", CloneFlags::CLONE_NEWNET),
    ("cgroup", CloneFlags::CLONE_NEWCGROUP),
    ("mnt", CloneFlags::CLONE_NEWNS),
];

/// The init's namespaces that differ from ours, opened now (before the init could go away).
fn open_namespaces(pid: i32) -> Result<Vec<(OwnedFd, CloneFlags)>> {
    let mut out = Vec::new();
    for (name, flag) in NAMESPACES {
        let theirs = format!("/proc/{pid}/ns/{name}");
        let ino = |p: &str| std::fs::metadata(p).map(|m| (m.dev(), m.ino()));
        match (ino(&theirs), ino(&format!("/proc/self/ns/{name}"))) {
            (Ok(a), Ok(b)) if a == b => continue,
            (Err(e), _) if e.kind() == std::io::ErrorKind::NotFound => continue,
            _ => {}
        }
        let fd = nix::fcntl::open(
            theirs.as_str(),
            nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .with_ctx(|| format!("open {theirs}"))?;
        out.push((fd, *flag));
    }
    Ok(out)
}

pub fn exec(o: ExecOptions) -> Result<i32> {
    let (dir, state) = open_existing(o.root, o.id)?;
    match state.status(&dir) {
        Status::Running | Status::Created => {}
        Status::Paused if o.ignore_paused => {}
        Status::Paused => {
            return Err(Error::msg(
                "cannot exec in a paused container (use --ignore-paused to override)",
            ))
        }
        _ => return Err(Error::msg("cannot exec in a stopped container")),
    }
    let p = o.process;
    // What the child could only fail at, refused before it exists.
    let affinity = crate::security::lsm::check_process_label(p.selinux_label().as_deref())
        .and_then(|()| crate::init::sched::validate(&p))
        .and_then(|()| crate::init::sched::exec_affinity(&p))
        .map_err(|e| Error::msg(format!("exec failed: {e}")))?;
    let own_userns = std::fs::metadata(format!("/proc/{}/ns/user", state.pid))
        .map(|m| m.ino())
        .ok()
        != std::fs::metadata("/proc/self/ns/user")
            .map(|m| m.ino())
            .ok();
    if crate::security::sealed::exposed(o.container_caps, own_userns)
        || crate::security::sealed::exposed(p.capabilities().as_ref(), own_userns)
    {
        crate::security::sealed::reexec()?;
    }
    let tty = p.terminal().unwrap_or(false);
    let (console, console_parent) =
        crate::container::tty::console_ends(o.console_socket, tty, !o.detach)?;
    let namespaces = open_namespaces(state.pid)?;
    let pidns = format!("/proc/{}/ns/pid", state.pid);
    if std::fs::metadata(&pidns).map(|m| m.ino()).ok()
        != std::fs::metadata("/proc/self/ns/pid").map(|m| m.ino()).ok()
    {
        let fd = nix::fcntl::open(
            pidns.as_str(),
            nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .with_ctx(|| format!("open {pidns}"))?;
        // Affects only our children: the fork below lands in the container's pid namespace.
        nix::sched::setns(&fd, CloneFlags::CLONE_NEWPID).ctx("setns pid")?;
    }
    let setgroups = std::fs::read_to_string(format!("/proc/{}/setgroups", state.pid))
        .map(|s| s.trim() != "deny")
        .unwrap_or(true);
    let listen_fds: u32 = std::env::var("LISTEN_FDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let (parent, child) = sync::pair()?;
    let pid = crate::container::namespaces::clone(CloneFlags::empty())?;
    if pid == 0 {
        drop(parent);
        let e = match crate::init::exec::child_main(
            &p,
            &state.cgroup_paths,
            namespaces,
            console,
            setgroups,
            listen_fds + o.preserve_fds,
            o.seccomp.as_ref(),
            o.personality.as_ref(),
            o.memory_policy.as_ref(),
            &affinity,
            &child,
        ) {
            Ok(never) => match never {},
            Err(e) => e,
        };
        // If the parent is gone there is nobody to tell.
        let _ = child.send(&Msg::Fail(e.to_string()));
        // SAFETY: ends the forked child without running the parent's exit handlers.
        unsafe { libc::_exit(255) }
    }
    drop(child);
    drop(console);
    let sfd = if o.detach {
        None
    } else {
        Some(crate::container::wait::block_signals()?)
    };
    // The child's end closes on its successful execve.
    loop {
        match parent.recv()? {
            None => break,
            Some(Msg::Fail(m)) => {
                // Reap the failed child; its status adds nothing to the message.
                let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None);
                return Err(Error::msg(format!("exec failed: {m}")));
            }
            Some(Msg::Seccomp(fd)) => {
                let st = state.oci_state(Status::Running);
                let delivered = match &o.seccomp {
                    Some(s) => {
                        crate::init::seccomp::notify::deliver(s, Path::new("."), pid, fd, st)
                    }
                    None => Err(Error::msg("unexpected seccomp listener")),
                };
                if let Err(e) = delivered {
                    // The child waits for our go-ahead: it must not run without its agent.
                    let child = nix::unistd::Pid::from_raw(pid);
                    // Already dead is fine; reaping it is what matters.
                    let _ = nix::sys::signal::kill(child, nix::sys::signal::Signal::SIGKILL);
                    let _ = nix::sys::wait::waitpid(child, None);
                    return Err(Error::msg(format!(
                        "exec failed: unable to start container process: {e}"
                    )));
                }
                parent.send(&Msg::Go)?;
            }
            Some(other) => {
                return Err(Error::msg(format!(
                    "unexpected message from exec: {other:?}"
                )))
            }
        }
    }
    if let Some(pf) = o.pid_file {
        write_pid_file(pf, pid)?;
    }
    match sfd {
        None => Ok(0),
        Some(sfd) => {
            let master = console_parent
                .as_ref()
                .map(crate::container::tty::recv_master)
                .transpose()?;
            let raw = master
                .as_ref()
                .map(|_| crate::container::tty::RawMode::enter());
            let code = crate::container::wait::wait_forwarding(&sfd, pid, master.as_ref());
            drop(raw);
            code
        }
    }
}
