//! The last steps before the user's program runs, shared by the container's init and `exec`:
//! rlimits, user and groups, capabilities, no_new_privs, cwd, the fds it keeps, and execve.

use crate::error::{Context, Error, Result};
use crate::sync::Channel;
use nix::sys::resource::Resource;
use oci_spec::runtime::{Capabilities, LinuxSeccomp, PosixRlimitType, Process};
use std::ffi::CString;
use std::os::fd::RawFd;
use std::path::{Path, PathBuf};

/// Everything execve needs, prepared while errors can still be reported.
pub struct Exec {
    pub path: CString,
    pub argv: Vec<CString>,
    pub envp: Vec<CString>,
}

/// The process's own setup, the same for the init and `exec`, in runc's order: rlimits, cwd,
/// the program looked up with `env`, then user and capabilities and no_new_privs. Without
/// no_new_privs, loading the seccomp filter needs CAP_SYS_ADMIN, so it is loaded here before
/// the capabilities go; with it, the caller loads the filter as late as it can.
/// `chown_stdio`: stdio is ours to give to the user (not a foreground caller's own files).
#[allow(clippy::too_many_arguments)]
pub fn setup(
    p: &Process,
    mut env: Vec<String>,
    personality: Option<&oci_spec::runtime::LinuxPersonality>,
    mempolicy: Option<&oci_spec::runtime::LinuxMemoryPolicy>,
    seccomp: Option<&LinuxSeccomp>,
    setgroups_allowed: bool,
    chown_stdio: bool,
    chan: &Channel,
) -> Result<Exec> {
    set_rlimits(p)?;
    add_home(&mut env, p.user().uid());
    enter_cwd(p.cwd())?;
    let exec = prepare_exec(p.args().as_deref().unwrap_or(&[]), &env)?;
    set_scheduling_and_labels(p)?;
    crate::init::sched::set_memory_policy(mempolicy)?;
    if let (Some(s), false) = (seccomp, p.no_new_privileges().unwrap_or(false)) {
        crate::init::seccomp::notify::load(s, chan)?;
    }
    if chown_stdio {
        crate::init::give_stdio_to(p.user().uid())?;
    }
    set_user_and_caps(p, setgroups_allowed)?;
    set_no_new_privs(p)?;
    crate::init::sched::set_personality(personality)?;
    Ok(exec)
}

/// Finds args[0] the way Go's exec.LookPath does with the container's PATH, so the error text
/// is the one runc's callers know. Only the process's own PATH counts (the last one, as runc
/// sets them in order): without one, a bare name is not found, as in runc.
pub fn prepare_exec(args: &[String], env: &[String]) -> Result<Exec> {
    let name = args
        .first()
        .ok_or_else(|| Error::msg("process.args: args must not be empty"))?;
    let path = if name.contains('/') {
        let p = PathBuf::from(name);
        let meta = std::fs::metadata(&p).map_err(|e| {
            Error::msg(format!(
                "exec: {name:?}: stat {name}: {}",
                e.raw_os_error()
                    .map_or(e.to_string(), |n| crate::error::errno_text(
                        nix::errno::Errno::from_raw(n)
                    ))
            ))
        })?;
        if meta.is_dir() || !crate::init::rootfs::is_executable(&p) {
            return Err(Error::msg(format!("exec: {name:?}: permission denied")));
        }
        p
    } else {
        let path_var = env
            .iter()
            .rev()
            .find_map(|kv| kv.strip_prefix("PATH="))
            .unwrap_or("");
        // Go's filepath.SplitList: an empty PATH has no entries; an empty entry is ".".
        path_var
            .split(':')
            .filter(|_| !path_var.is_empty())
            .map(|d| Path::new(if d.is_empty() { "." } else { d }).join(name))
            .find(|p| crate::init::rootfs::is_executable(p))
            .ok_or_else(|| {
                Error::msg(format!(
                    "exec: {name:?}: executable file not found in $PATH"
                ))
            })?
    };
    let cstr = |s: &str, what: &str| {
        CString::new(s).map_err(|_| Error::msg(format!("{what} contains a NUL byte: {s:?}")))
    };
    Ok(Exec {
        path: cstr(&path.to_string_lossy(), "process.args")?,
        argv: args
            .iter()
            .map(|a| cstr(a, "process.args"))
            .collect::<Result<_>>()?,
        envp: env
            .iter()
            .map(|e| cstr(e, "process.env"))
            .collect::<Result<_>>()?,
    })
}

/// runc's rule: without HOME in the environment, the user's home from the container's
/// /etc/passwd, or "/" for a user it does not list.
pub fn add_home(env: &mut Vec<String>, uid: u32) {
    if env.iter().any(|e| e.starts_with("HOME=")) {
        return;
    }
    let home = crate::util::passwd::lookup("/etc/passwd", uid).map_or("/".to_string(), |(_, h)| h);
    env.push(format!("HOME={home}"));
}

pub fn set_rlimits(p: &Process) -> Result<()> {
    for rl in p.rlimits().iter().flatten() {
        nix::sys::resource::setrlimit(rlimit_resource(rl.typ()), rl.soft(), rl.hard())
            .with_ctx(|| format!("process.rlimits: set {:?}", rl.typ()))?;
    }
    Ok(())
}

fn rlimit_resource(t: PosixRlimitType) -> Resource {
    use PosixRlimitType::*;
    match t {
        RlimitCpu => Resource::RLIMIT_CPU,
        RlimitFsize => Resource::RLIMIT_FSIZE,
        RlimitData => Resource::RLIMIT_DATA,
        RlimitStack => Resource::RLIMIT_STACK,
        RlimitCore => Resource::RLIMIT_CORE,
        RlimitRss => Resource::RLIMIT_RSS,
        RlimitNproc => Resource::RLIMIT_NPROC,
        RlimitNofile => Resource::RLIMIT_NOFILE,
        RlimitMemlock => Resource::RLIMIT_MEMLOCK,
        RlimitAs => Resource::RLIMIT_AS,
        RlimitLocks => Resource::RLIMIT_LOCKS,
        RlimitSigpending => Resource::RLIMIT_SIGPENDING,
        RlimitMsgqueue => Resource::RLIMIT_MSGQUEUE,
        RlimitNice => Resource::RLIMIT_NICE,
        RlimitRtprio => Resource::RLIMIT_RTPRIO,
        RlimitRttime => Resource::RLIMIT_RTTIME,
    }
}

pub fn set_oom_score_adj(p: &Process) -> Result<()> {
    if let Some(adj) = p.oom_score_adj() {
        std::fs::write("/proc/self/oom_score_adj", adj.to_string())
            .ctx("process.oomScoreAdj: write /proc/self/oom_score_adj")?;
    }
    Ok(())
}

fn cap_mask(set: Option<&Capabilities>) -> Result<u64> {
    let mut mask = 0u64;
    for c in set.into_iter().flatten() {
        let name = format!("CAP_{c}");
        match name.parse::<caps::Capability>() {
            Ok(cap) => mask |= 1u64 << cap.index(),
            // A capability this kernel does not know is skipped, as runc does.
            Err(_) => log::warn!("process.capabilities: unknown capability {name}"),
        }
    }
    Ok(mask)
}

/// Whether the process `pid` ("self" or a number) may call setgroups: not for an unprivileged
/// husk (runc's rule, even where newgidmap left setgroups allowed), nor in a user namespace
/// whose /proc/PID/setgroups says "deny".
pub fn setgroups_allowed(pid: &str) -> bool {
    !crate::rootless::unprivileged()
        && std::fs::read_to_string(format!("/proc/{pid}/setgroups"))
            .map_or(true, |s| s.trim() != "deny")
}

/// Switches to the process's user and leaves it exactly the capabilities of its spec.
/// The bounding set is cut while we still have CAP_SETPCAP; keepcaps carries the permitted set
/// across the uid change; one capset then sets effective, permitted and inheritable together.
pub fn set_user_and_caps(p: &Process, setgroups_allowed: bool) -> Result<()> {
    let caps = p.capabilities().as_ref();
    let bounding = cap_mask(caps.and_then(|c| c.bounding().as_ref()))?;
    let last = caps::runtime::thread_all_supported();
    for cap in last.iter() {
        if bounding & (1u64 << cap.index()) == 0 {
            caps::drop(None, caps::CapSet::Bounding, *cap)
                .with_ctx(|| format!("drop {cap} from bounding set"))?;
        }
    }
    nix::sys::prctl::set_keepcaps(true).ctx("prctl keepcaps")?;
    let user = p.user();
    let gid = nix::unistd::Gid::from_raw(user.gid());
    let uid = nix::unistd::Uid::from_raw(user.uid());
    let additional = user
        .additional_gids()
        .as_ref()
        .is_some_and(|g| !g.is_empty());
    if !setgroups_allowed && additional {
        // runc's words; it refuses rather than run the process without the groups asked for.
        return Err(Error::msg(
            "process.user.additionalGids: cannot specify additional groups in rootless container",
        ));
    }
    if setgroups_allowed {
        let groups: Vec<nix::unistd::Gid> = user
            .additional_gids()
            .iter()
            .flatten()
            .map(|g| nix::unistd::Gid::from_raw(*g))
            .collect();
        nix::unistd::setgroups(&groups).ctx("process.user.additionalGids: setgroups")?;
    }
    nix::unistd::setresgid(gid, gid, gid).with_ctx(|| format!("process.user.gid: setgid {gid}"))?;
    nix::unistd::setresuid(uid, uid, uid).with_ctx(|| format!("process.user.uid: setuid {uid}"))?;
    nix::sys::prctl::set_keepcaps(false).ctx("prctl keepcaps")?;

    let effective = cap_mask(caps.and_then(|c| c.effective().as_ref()))?;
    let permitted = cap_mask(caps.and_then(|c| c.permitted().as_ref()))?;
    let inheritable = cap_mask(caps.and_then(|c| c.inheritable().as_ref()))?;
    capset(effective, permitted, inheritable)?;
    for c in caps
        .and_then(|c| c.ambient().as_ref())
        .into_iter()
        .flatten()
    {
        if let Ok(cap) = format!("CAP_{c}").parse::<caps::Capability>() {
            // An ambient capability needs to be permitted and inheritable too; runc's default
            // spec lists ambient ones without inheritable, and runc goes on without them.
            if let Err(e) = caps::raise(None, caps::CapSet::Ambient, cap) {
                log::debug!("process.capabilities.ambient: cannot raise {cap}: {e}");
            }
        }
    }
    if let Some(umask) = user.umask() {
        nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(umask));
    }
    Ok(())
}

fn capset(effective: u64, permitted: u64, inheritable: u64) -> Result<()> {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Clone, Copy)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    const VERSION_3: u32 = 0x2008_0522;
    let hdr = Header {
        version: VERSION_3,
        pid: 0,
    };
    let split = |m: u64| (m as u32, (m >> 32) as u32);
    let (e0, e1) = split(effective);
    let (p0, p1) = split(permitted);
    let (i0, i1) = split(inheritable);
    let data = [
        Data {
            effective: e0,
            permitted: p0,
            inheritable: i0,
        },
        Data {
            effective: e1,
            permitted: p1,
            inheritable: i1,
        },
    ];
    // SAFETY: capset reads a v3 header and two data words, which is what we pass.
    let r = unsafe { libc::syscall(libc::SYS_capset, &hdr as *const Header, data.as_ptr()) };
    if r != 0 {
        return Err(nix::errno::Errno::last()).ctx("process.capabilities: capset");
    }
    Ok(())
}

/// What must be set while we are still root with every capability, and affects the process
/// only from its execve on or is inherited by it: its scheduler and I/O priority (raising
/// either needs CAP_SYS_NICE or CAP_SYS_ADMIN), and the AppArmor profile and SELinux label its
/// execve takes on. runc sets these at the same point, before the user and capabilities change.
pub fn set_scheduling_and_labels(p: &Process) -> Result<()> {
    crate::init::sched::set_scheduler(p)?;
    crate::init::sched::set_io_priority(p)?;
    crate::security::lsm::set_exec_labels(
        p.apparmor_profile().as_deref(),
        p.selinux_label().as_deref(),
    )
}

pub fn set_no_new_privs(p: &Process) -> Result<()> {
    if p.no_new_privileges().unwrap_or(false) {
        nix::sys::prctl::set_no_new_privs().ctx("process.noNewPrivileges: prctl")?;
    }
    Ok(())
}

/// Changes to process.cwd and makes sure it is inside the container's root: a cwd reached
/// through a leaked host fd would show as "(unreachable)" (CVE-2024-21626).
pub fn enter_cwd(cwd: &Path) -> Result<()> {
    nix::unistd::chdir(cwd).with_ctx(|| format!("process.cwd: chdir to {}", cwd.display()))?;
    let now = nix::unistd::getcwd().ctx("getcwd")?;
    if !now.is_absolute() || now.starts_with("(unreachable)") {
        return Err(Error::msg(format!(
            "process.cwd: {} is outside the container",
            cwd.display()
        )));
    }
    Ok(())
}

/// Marks every fd from 3 on close-on-exec, except the `keep` fds right after stdio that the
/// caller asked to pass in (--preserve-fds, $LISTEN_FDS), as counted by [`crate::util::fds::kept_fds`].
pub fn close_fds_on_exec(keep: u32) -> Result<()> {
    let first = 3 + keep;
    // SAFETY: close_range only changes fd flags.
    if unsafe { libc::close_range(first, u32::MAX, libc::CLOSE_RANGE_CLOEXEC as i32) } != 0 {
        return Err(nix::errno::Errno::last()).ctx("close_range");
    }
    for fd in 3..first {
        // An fd the caller did not actually open is simply absent (EBADF).
        let _ = nix::fcntl::fcntl(
            // SAFETY: only the fd's flags are changed; a closed fd number is harmless here.
            unsafe { std::os::fd::BorrowedFd::borrow_raw(fd as RawFd) },
            nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::empty()),
        );
    }
    Ok(())
}

pub fn execve(e: &Exec) -> Error {
    match nix::unistd::execve(&e.path, &e.argv, &e.envp) {
        Err(err) => Error::Sys {
            ctx: format!("exec {}", e.path.to_string_lossy()),
            errno: err,
        },
        Ok(never) => match never {},
    }
}
