//! `husk exec`: a new process in a running container. husk forks once: the pid namespace is
//! entered for our children before the fork, the others by the child, which then sets up the
//! process exactly as the init does and execs. The child is non-dumpable from its first
//! instruction, so the container cannot reach the husk binary through /proc/<pid>/exe.

use crate::container::create::write_pid_file;
use crate::container::open_existing;
use crate::error::{Context, Error, Result};

use crate::container::pidfd_socket;
use crate::container::state::Status;
use crate::sync::{self, Msg};
use nix::sched::CloneFlags;
use oci_spec::runtime::{Capability, Process};
use std::os::fd::OwnedFd;
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
    pub pidfd_socket: Option<&'a Path>,
    pub preserve_fds: u32,
    pub ignore_paused: bool,
    /// exec's --cgroup arguments.
    pub sub_cgroups: &'a [String],
    /// The capabilities of the container's own process.
    pub container_caps: Option<&'a oci_spec::runtime::LinuxCapabilities>,
}

/// What `exec` runs when no --process file is given: the container's own process, changed by
/// the command line's flags.
pub fn process_from_flags(base: &Process, flags: &crate::cli::Exec) -> Result<Process> {
    let args = &flags.command;
    if args.is_empty() {
        return Err(Error::msg("process args cannot be empty"));
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
            // Never inheritable: it would survive into programs the process execs
            // (CVE-2022-29162). Ambient too when the spec has inheritable capabilities (runc
            // 1.2): the kernel raises it only for one of those.
            let mut b = c.bounding().clone().unwrap_or_default();
            b.insert(cap);
            c.set_bounding(Some(b));
            let mut e = c.effective().clone().unwrap_or_default();
            e.insert(cap);
            c.set_effective(Some(e));
            let mut pm = c.permitted().clone().unwrap_or_default();
            pm.insert(cap);
            c.set_permitted(Some(pm));
            if c.inheritable().is_some() {
                let mut a = c.ambient().clone().unwrap_or_default();
                a.insert(cap);
                c.set_ambient(Some(a));
            }
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

/// The namespaces of the init and ours, by name (`user`, `mnt`, ...).
struct Namespaces {
    theirs: procfs::process::Namespaces,
    ours: procfs::process::Namespaces,
}

impl Namespaces {
    fn of(pid: i32) -> Result<Namespaces> {
        use procfs::process::Process;
        Ok(Namespaces {
            theirs: Process::new(pid)
                .and_then(|p| p.namespaces())
                .with_ctx(|| format!("read /proc/{pid}/ns"))?,
            ours: Process::myself()
                .and_then(|p| p.namespaces())
                .ctx("read /proc/self/ns")?,
        })
    }

    /// The init's namespace `name` when it is not ours (None also when the kernel lacks it).
    fn other(&self, name: &str) -> Option<&Path> {
        let name = std::ffi::OsStr::new(name);
        let theirs = self.theirs.0.get(name)?;
        let same =
            self.ours.0.get(name).is_some_and(|o| {
                (o.device_id, o.identifier) == (theirs.device_id, theirs.identifier)
            });
        (!same).then_some(theirs.path.as_path())
    }

    /// The init's namespaces that differ from ours, opened now (before the init could go away).
    fn open(&self, kinds: &[(&str, CloneFlags)]) -> Result<Vec<(OwnedFd, CloneFlags)>> {
        let mut out = Vec::new();
        for (name, flag) in kinds {
            let Some(path) = self.other(name) else {
                continue;
            };
            let fd = nix::fcntl::open(
                path,
                nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC,
                nix::sys::stat::Mode::empty(),
            )
            .with_ctx(|| format!("open {}", path.display()))?;
            out.push((fd, *flag));
        }
        Ok(out)
    }
}

pub fn exec(o: ExecOptions) -> Result<i32> {
    let sub_cgroups = crate::cgroups::SubCgroups::parse(o.sub_cgroups)
        .map_err(|e| Error::msg(format!("exec failed: {e}")))?;
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
    let cgroup_dirs = sub_cgroups.apply(&state.cgroup_paths).map_err(|e| {
        Error::msg(format!(
            "exec failed: unable to create new parent process: {e}"
        ))
    })?;
    let p = o.process;
    // What the child could only fail at, refused before it exists.
    let affinity = crate::security::lsm::check_process_label(p.selinux_label().as_deref())
        .and_then(|()| crate::init::sched::validate(&p))
        .and_then(|()| crate::init::sched::exec_affinity(&p))
        .map_err(|e| Error::msg(format!("exec failed: {e}")))?;
    let ns = Namespaces::of(state.pid)?;
    let own_userns = ns.other("user").is_some();
    if crate::security::sealed::exposed(o.container_caps, own_userns)
        || crate::security::sealed::exposed(p.capabilities().as_ref(), own_userns)
    {
        crate::security::sealed::reexec()?;
    }
    let tty = p.terminal().unwrap_or(false);
    let (console, console_parent) =
        crate::container::tty::console_ends(o.console_socket, tty, !o.detach)?;
    let pidfd_socket = o.pidfd_socket.map(pidfd_socket::connect).transpose()?;
    let mut namespaces = ns.open(NAMESPACES)?;
    if crate::rootless::unprivileged() {
        // Only as root of the container's user namespace may we join its pid namespace; the
        // child, a copy of us, starts there too. husk is single-threaded, as setns requires.
        if let Some(i) = namespaces
            .iter()
            .position(|(_, f)| *f == CloneFlags::CLONE_NEWUSER)
        {
            let (fd, _) = namespaces.remove(i);
            nix::sched::setns(&fd, CloneFlags::CLONE_NEWUSER).ctx("setns user")?;
        }
    }
    log::debug!(
        "exec {}: joining {} namespaces of init {}",
        o.id,
        namespaces.len(),
        state.pid
    );
    for (fd, _) in ns.open(&[("pid", CloneFlags::CLONE_NEWPID)])? {
        // Affects only our children: the fork below lands in the container's pid namespace.
        nix::sched::setns(&fd, CloneFlags::CLONE_NEWPID).ctx("setns pid")?;
    }
    let setgroups = crate::init::process::setgroups_allowed(&state.pid.to_string());
    // runc's exec passes on only --preserve-fds; socket activation is for the init.
    let keep_fds = crate::util::fds::kept_fds(0, o.preserve_fds)?;
    // A foreground exec without a terminal passes on the caller's own stdio: never chowned.
    let chown_stdio = o.detach || console.is_some();
    let (mut parent, child) = sync::pair()?;
    let pid = crate::namespaces::clone(CloneFlags::empty())?;
    if pid == 0 {
        drop(parent);
        let e = match crate::init::exec::child_main(
            &p,
            &cgroup_dirs,
            namespaces,
            console,
            chown_stdio,
            setgroups,
            keep_fds,
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
    // A child stopped, or frozen as it joins the cgroup, would never report; with
    // --ignore-paused, it was asked to join a frozen one, and waits for the thaw.
    let watched_cgroups = if o.ignore_paused {
        vec![]
    } else {
        state.cgroup_paths.clone()
    };
    parent.watch(pid, watched_cgroups);
    if let Some(s) = &pidfd_socket {
        if let Err(e) = pidfd_socket::send(s, pid, pidfd_socket::EXEC) {
            kill_child(pid);
            return Err(e);
        }
    }
    let sfd = if o.detach {
        None
    } else {
        Some(crate::container::wait::block_signals()?)
    };
    // The child's end closes on its successful execve.
    loop {
        let msg = parent.recv().inspect_err(|_| {
            // It cannot be left to run; reaped by whoever inherits it, once it can die.
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        });
        match msg? {
            None => break,
            Some(Msg::Fail(m)) => {
                // Reap the failed child; its status adds nothing to the message.
                let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None);
                return Err(Error::msg(format!(
                    "exec failed: unable to start container process: {m}"
                )));
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
                    kill_child(pid);
                    return Err(Error::msg(format!(
                        "exec failed: unable to start container process: {e}"
                    )));
                }
                parent.send(&Msg::Go)?;
            }
            Some(other) => {
                return Err(Error::Protocol {
                    from: "exec",
                    msg: format!("{other:?}"),
                })
            }
        }
    }
    log::debug!("exec {}: process {pid} started", o.id);
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

fn kill_child(pid: i32) {
    let child = nix::unistd::Pid::from_raw(pid);
    // Already dead is fine; reaping it is what matters.
    let _ = nix::sys::signal::kill(child, nix::sys::signal::Signal::SIGKILL);
    let _ = nix::sys::wait::waitpid(child, None);
}
