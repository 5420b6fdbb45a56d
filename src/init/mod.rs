//! The container's init, from the clone to the execve of the user's program. It runs the husk
//! binary's code (no re-exec) in the container's namespaces, stays non-dumpable so nothing in the
//! container can reach it through /proc, and reports every failure to the parent in words.

pub mod exec;
pub mod process;
pub mod rootfs;
pub mod sched;
pub mod seccomp;

use crate::error::{Context, Error, Result};
use crate::namespaces::Plan;
use crate::oci_state::{sorted, OciState, Status};

use crate::sync::{Channel, Msg};
use nix::errno::Errno;
use nix::sched::CloneFlags;
use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
use oci_spec::runtime::Spec;
use rootfs::RootfsPlan;
use std::io::IoSlice;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, IntoRawFd, OwnedFd};
use std::path::PathBuf;

/// How the init waits for `start`.
pub enum Gate {
    /// `create`: a read on the exec fifo, which `husk start` writes to.
    Fifo(OwnedFd),
    /// `run`: the parent's go-ahead on the sync channel.
    Parent,
}

pub struct InitArgs<'a> {
    pub spec: &'a Spec,
    pub rootfs: PathBuf,
    pub bundle: PathBuf,
    pub plan: &'a Plan,
    pub cgroup_paths: Vec<PathBuf>,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    pub id: &'a str,
    /// fds after stdio that the container keeps ($LISTEN_FDS + --preserve-fds).
    pub keep_fds: u32,
    pub extra_env: Vec<String>,
    pub console: Option<OwnedFd>,
    pub gate: Gate,
    /// prestart/createRuntime hooks exist: stop for the parent to run them.
    pub parent_hooks: bool,
    /// Our stdio is a foreground `run`'s own (its terminal, its files): never chowned.
    pub callers_stdio: bool,
    /// Wait to be in our cgroup before the rootfs, whose cgroup mount needs the directories
    /// (CgroupManager::made_by_apply).
    pub cgroup_first: bool,
}

/// The first child when namespaces are joined by path: joins them, creates the user namespace
/// (the parent writes its maps), unshares the rest and forks the init. Never returns.
pub fn intermediate_main(args: InitArgs, chan: Channel) -> ! {
    let r = (|| -> Result<i32> {
        crate::namespaces::join(&args.plan.join)?;
        if args.plan.creates(CloneFlags::CLONE_NEWUSER) {
            nix::sched::unshare(CloneFlags::CLONE_NEWUSER).ctx("unshare user namespace")?;
            chan.send(&Msg::Maps(nix::unistd::getpid().as_raw()))?;
            chan.wait_go()?;
        }
        let rest = args.plan.new - CloneFlags::CLONE_NEWUSER;
        nix::sched::unshare(rest).ctx("unshare namespaces")?;
        if rest.contains(CloneFlags::from_bits_retain(libc::CLONE_NEWTIME)) {
            write_time_offsets(args.spec)?;
        }
        // CLONE_PARENT: the init is husk's own child, so `run` can wait for it even without
        // being a subreaper.
        crate::namespaces::clone(CloneFlags::CLONE_PARENT)
    })();
    match r {
        Ok(0) => init_main(args, chan),
        Ok(pid) => {
            let code = if chan.send(&Msg::Pid(pid)).is_ok() {
                0
            } else {
                1
            };
            // SAFETY: _exit ends this process without running the parent's atexit handlers.
            unsafe { libc::_exit(code) }
        }
        Err(e) => fail(&chan, e),
    }
}

/// A new time namespace takes its offsets before its first process (our fork) enters it.
fn write_time_offsets(spec: &Spec) -> Result<()> {
    let offsets = spec
        .linux()
        .as_ref()
        .and_then(|l| l.time_offsets().as_ref());
    let mut text = String::new();
    for (clock, o) in offsets.into_iter().flatten() {
        let id = match clock.as_str() {
            "monotonic" => libc::CLOCK_MONOTONIC,
            "boottime" => libc::CLOCK_BOOTTIME,
            other => {
                return Err(Error::msg(format!(
                    "linux.timeOffsets: unknown clock {other:?}"
                )))
            }
        };
        text.push_str(&format!(
            "{id} {} {}\n",
            o.secs().unwrap_or(0),
            o.nanosecs().unwrap_or(0)
        ));
    }
    if !text.is_empty() {
        std::fs::write("/proc/self/timens_offsets", text)
            .ctx("linux.timeOffsets: write /proc/self/timens_offsets")?;
    }
    Ok(())
}

pub fn init_main(args: InitArgs, chan: Channel) -> ! {
    let e = match setup(args, &chan) {
        Ok(never) => match never {},
        Err(e) => e,
    };
    fail(&chan, e)
}

fn fail(chan: &Channel, e: Error) -> ! {
    // If the parent is gone there is nobody left to tell.
    let _ = chan.send(&Msg::Fail(e.to_string()));
    // SAFETY: see intermediate_main.
    unsafe { libc::_exit(1) }
}

/// The init's phases, top to bottom. The parent puts us in our cgroup while we build the rootfs;
/// a new cgroup namespace, the hooks and the execve wait for that.
fn setup(mut args: InitArgs, chan: &Channel) -> Result<std::convert::Infallible> {
    // An unprivileged parent may write our id maps, and `exec` read our /proc/PID/ns, only
    // while our /proc files are ours, as a dumpable process's are. runc's rule: non-dumpable
    // only when joining a namespace by path (whose processes could reach us), and then only
    // once the maps are written; a process of the user's own, joining nothing, stays dumpable.
    let by_user = crate::rootless::unprivileged();
    if !by_user {
        nix::sys::prctl::set_dumpable(false).ctx("prctl dumpable")?;
    }
    let sources = enter_namespaces(&args, chan)?;
    if by_user && !args.plan.join.is_empty() {
        nix::sys::prctl::set_dumpable(false).ctx("prctl dumpable")?;
    }
    // runc's in-container hooks report the init's pid as seen in its own pid namespace.
    let own_pid = nix::unistd::getpid().as_raw();
    let mut root = build_rootfs(&args, &sources)?;
    drop(sources);
    let readonly_later = std::mem::take(&mut root.readonly_later);
    if !args.plan.new_cgroup && !args.cgroup_first {
        chan.wait_go()?;
    }
    creation_hooks(&args, chan, own_pid)?;
    rootfs::enter(&root, args.no_pivot)?;
    drop(root);
    rootfs::reopen_dev_null()?;

    let spec = args.spec;
    let process = spec
        .process()
        .as_ref()
        .ok_or_else(|| Error::msg("process: missing"))?;
    container_settings(
        spec,
        args.plan,
        process,
        args.console.take(),
        &readonly_later,
    )?;
    let seccomp = spec.linux().as_ref().and_then(|l| l.seccomp().as_ref());
    let personality = spec.linux().as_ref().and_then(|l| l.personality().as_ref());
    let mempolicy = spec
        .linux()
        .as_ref()
        .and_then(|l| l.memory_policy().as_ref());
    let (exec, late_filter) = prepare_process(
        process,
        personality,
        mempolicy,
        &args.extra_env,
        seccomp,
        !args.callers_stdio,
        chan,
    )?;

    chan.send(&Msg::Ready)?;
    // The fifo stays open until execve closes it: `start` learns from that that the user's
    // program has started.
    let _fifo = wait_for_start(args.gate, chan)?;
    process::close_fds_on_exec(args.keep_fds)?;
    // The startContainer hooks run in the container, under its filter (runc).
    if let Some(s) = late_filter {
        crate::init::seccomp::load(s)?;
    }
    if let Some(hooks) = spec.hooks() {
        let state = hook_state(spec, args.id, &args.bundle, own_pid, Status::Created);
        crate::hooks::run_hooks(hooks.start_container().as_ref(), &state, None)?;
    }
    let e = process::execve(&exec);
    // The caller was told that the program started: like runc's init, say why it did not on
    // its stderr (a closed one cannot be helped), and exit 255.
    let _ = nix::unistd::write(std::io::stderr(), format!("{e}\n").as_bytes());
    // SAFETY: _exit ends this process without running the parent's atexit handlers.
    unsafe { libc::_exit(255) }
}

/// Becomes root of a new user namespace (once the parent has written our id maps), takes the
/// mount sources the parent opened for us, makes the cgroup namespace (once the parent has put
/// us in our cgroup) and joins a session keyring. Returns the sources, one slot per mount.
fn enter_namespaces(args: &InitArgs, chan: &Channel) -> Result<Vec<Option<OwnedFd>>> {
    let plan = args.plan;
    if plan.creates(CloneFlags::CLONE_NEWUSER) && !plan.two_stage() {
        // The parent writes our id maps.
        chan.wait_go()?;
    }
    if plan.has(CloneFlags::CLONE_NEWUSER) {
        let root_gid = nix::unistd::Gid::from_raw(0);
        let root_uid = nix::unistd::Uid::from_raw(0);
        nix::unistd::setresgid(root_gid, root_gid, root_gid).ctx("setgid 0 in user namespace")?;
        nix::unistd::setresuid(root_uid, root_uid, root_uid).ctx("setuid 0 in user namespace")?;
    }
    let mounts = args.spec.mounts().as_deref().unwrap_or(&[]);
    let wanted = |m| crate::init::rootfs::source_from_parent(m, plan);
    let count = mounts.iter().filter(|m| wanted(m)).count();
    let mut fds = if count > 0 {
        chan.recv_fds(count)?
    } else {
        Vec::new()
    }
    .into_iter();
    let sources = mounts
        .iter()
        .map(|m| if wanted(m) { fds.next() } else { None })
        .collect();
    // A new cgroup namespace is rooted where we are when we make it, so then we wait first.
    if plan.new_cgroup || args.cgroup_first {
        chan.wait_go()?;
    }
    if plan.new_cgroup {
        nix::sched::unshare(CloneFlags::CLONE_NEWCGROUP).ctx("unshare cgroup namespace")?;
    }
    if !args.no_new_keyring {
        // Through the host's /proc: ours is not mounted yet.
        let label = args
            .spec
            .process()
            .as_ref()
            .and_then(|p| p.selinux_label().as_deref());
        crate::security::lsm::set_key_label(label)?;
        join_session_keyring(args.id);
    }
    Ok(sources)
}

/// Mounts, devices and the process's cwd under the rootfs, not yet pivoted into.
fn build_rootfs(args: &InitArgs, sources: &[Option<OwnedFd>]) -> Result<rootfs::Root> {
    let spec = args.spec;
    let linux = spec.linux().as_ref();
    let propagation = linux
        .and_then(|l| l.rootfs_propagation().as_deref())
        .map(|p| {
            rootfs::propagation_flag(p)
                .ok_or_else(|| Error::msg(format!("linux.rootfsPropagation: unknown value {p:?}")))
        })
        .transpose()?
        .unwrap_or(nix::mount::MsFlags::MS_SLAVE | nix::mount::MsFlags::MS_REC);
    let mounts = spec.mounts().as_deref().unwrap_or(&[]);
    let devices = linux.and_then(|l| l.devices().as_deref()).unwrap_or(&[]);
    // Through the host's /proc, before the container's can stand in for it.
    if let Some(p) = spec.process() {
        process::set_oom_score_adj(p)?;
    }
    let root = rootfs::prepare(
        &args.rootfs,
        &RootfsPlan {
            mounts,
            bundle: &args.bundle,
            propagation,
            cgroup_paths: &args.cgroup_paths,
            cgroupns: args.plan.has(CloneFlags::CLONE_NEWCGROUP),
            // runc's rule: inside a user namespace, ours or the caller's (podman's rootless
            // one), device nodes are bound from the host, since mknod is refused.
            userns: args.plan.has(CloneFlags::CLONE_NEWUSER)
                || crate::rootless::in_user_namespace(),
            devices,
            mount_label: linux.and_then(|l| l.mount_label().as_deref()),
            sources,
        },
    )?;
    // runc makes a missing cwd, as root, before the pivot.
    if let Some(p) = spec.process() {
        root.mkdir_all(p.cwd(), false)?;
    }
    Ok(root)
}

/// The prestart and createRuntime hooks (run by the parent, at our request), then the
/// createContainer hooks, here, before the pivot.
fn creation_hooks(args: &InitArgs, chan: &Channel, own_pid: i32) -> Result<()> {
    if args.parent_hooks {
        chan.send(&Msg::Hooks)?;
        chan.wait_go()?;
    }
    if let Some(hooks) = args.spec.hooks() {
        let state = hook_state(args.spec, args.id, &args.bundle, own_pid, Status::Creating);
        let rootfs = Some(args.rootfs.as_path());
        crate::hooks::run_hooks(hooks.create_container().as_ref(), &state, rootfs)?;
    }
    Ok(())
}

/// What the container sets up inside its rootfs: its session and console, hostname and
/// domainname, sysctls, then masked and read-only paths.
fn container_settings(
    spec: &Spec,
    plan: &Plan,
    process: &oci_spec::runtime::Process,
    console: Option<OwnedFd>,
    readonly_later: &[(PathBuf, nix::mount::MsFlags)],
) -> Result<()> {
    let linux = spec.linux().as_ref();
    nix::unistd::setsid().ctx("setsid")?;
    if process.terminal().unwrap_or(false) {
        if let Some(sock) = &console {
            setup_console(
                sock,
                process.console_size().map(|b| (b.height(), b.width())),
                true,
                process.user().uid(),
            )?;
        }
    }
    drop(console);
    if plan.has(CloneFlags::CLONE_NEWUTS) {
        if let Some(h) = spec.hostname() {
            nix::unistd::sethostname(h).with_ctx(|| format!("hostname: sethostname {h}"))?;
        }
        if let Some(d) = spec.domainname() {
            set_domainname(d)?;
        }
    }
    for (k, v) in linux
        .and_then(|l| l.sysctl().as_ref())
        .into_iter()
        .flatten()
    {
        crate::security::procfs::write(&format!("sys/{}", k.replace('.', "/")), v)
            .with_ctx(|| format!("linux.sysctl: write {k}"))?;
    }
    let empty = Vec::new();
    rootfs::finish(
        readonly_later,
        linux
            .and_then(|l| l.masked_paths().as_ref())
            .unwrap_or(&empty),
        linux
            .and_then(|l| l.readonly_paths().as_ref())
            .unwrap_or(&empty),
        spec.root()
            .as_ref()
            .and_then(|r| r.readonly())
            .unwrap_or(false),
        linux.and_then(|l| l.mount_label().as_deref()),
    )?;
    Ok(())
}

/// The process: rlimits, environment, cwd, the program found, scheduling, memory policy, LSM
/// labels, user and capabilities, execution domain, and the seccomp filter where it must come.
/// Returns the program and the filter still to load, which comes as late as possible (after the
/// start, before the startContainer hooks) so that the profile has fewer of our syscalls to
/// allow.
fn prepare_process<'a>(
    process: &oci_spec::runtime::Process,
    personality: Option<&oci_spec::runtime::LinuxPersonality>,
    mempolicy: Option<&oci_spec::runtime::LinuxMemoryPolicy>,
    extra_env: &[String],
    seccomp: Option<&'a oci_spec::runtime::LinuxSeccomp>,
    chown_stdio: bool,
    chan: &Channel,
) -> Result<(process::Exec, Option<&'a oci_spec::runtime::LinuxSeccomp>)> {
    let mut env: Vec<String> = process.env().clone().unwrap_or_default();
    env.extend(extra_env.iter().cloned());
    // Denied when an unprivileged husk wrote the maps itself (see namespaces::write_id_maps).
    let exec = process::setup(
        process,
        env,
        personality,
        mempolicy,
        seccomp,
        process::setgroups_allowed("self"),
        chown_stdio,
        chan,
    )?;
    let nnp = process.no_new_privileges().unwrap_or(false);
    // A listener must reach `create` before it returns at Ready.
    let notify = seccomp.filter(|s| nnp && crate::init::seccomp::notify::used(s));
    if let Some(s) = notify {
        crate::init::seccomp::notify::load(s, chan)?;
    }
    let late = seccomp.filter(|_| nnp && notify.is_none());
    Ok((exec, late))
}

/// Waits for `start`: on the exec fifo (`create`) or for the parent's go-ahead (`run`).
fn wait_for_start(gate: Gate, chan: &Channel) -> Result<Option<OwnedFd>> {
    match gate {
        Gate::Fifo(fd) => {
            wait_fifo(&fd)?;
            Ok(Some(fd))
        }
        Gate::Parent => {
            chan.wait_go()?;
            Ok(None)
        }
    }
}

/// Blocks until `husk start` writes to the exec fifo. The init holds the fifo open for reading
/// and writing, so the read waits for data and never sees end-of-file.
fn wait_fifo(fd: &OwnedFd) -> Result<()> {
    // Until exec, pid 1 of a pid namespace would ignore `husk kill`'s SIGTERM (no handler);
    // these handlers end the waiting init like the default action would.
    extern "C" fn die(sig: libc::c_int) {
        // SAFETY: _exit is async-signal-safe.
        unsafe { libc::_exit(128 + sig) }
    }
    for sig in [
        libc::SIGTERM,
        libc::SIGINT,
        libc::SIGHUP,
        libc::SIGQUIT,
        libc::SIGUSR1,
        libc::SIGUSR2,
    ] {
        // SAFETY: installs an async-signal-safe handler; execve resets it to the default.
        unsafe { libc::signal(sig, die as *const () as libc::sighandler_t) };
    }
    let mut b = [0u8; 1];
    loop {
        match nix::unistd::read(fd, &mut b) {
            Err(nix::errno::Errno::EINTR) => continue,
            r => {
                r.ctx("read exec fifo")?;
                return Ok(());
            }
        }
    }
}

/// The state the in-container hooks receive: the container's own, before it is saved.
fn hook_state(spec: &Spec, id: &str, bundle: &std::path::Path, pid: i32, status: Status) -> String {
    let empty = std::collections::HashMap::new();
    let state = OciState {
        oci_version: crate::oci_state::OCI_VERSION,
        id,
        status,
        pid: Some(pid),
        bundle,
        annotations: sorted(spec.annotations().as_ref().unwrap_or(&empty)),
    };
    // Fails only for a bundle path that is not UTF-8.
    serde_json::to_string(&state).unwrap_or_default()
}

fn join_session_keyring(id: &str) {
    const KEYCTL_JOIN_SESSION_KEYRING: libc::c_long = 1;
    let name = std::ffi::CString::new(format!("_ses.{id}")).unwrap_or_default();
    // SAFETY: keyctl reads the NUL-terminated name.
    let r = unsafe { libc::syscall(libc::SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, name.as_ptr()) };
    if r < 0 {
        // Keyrings may be unavailable (ENOSYS) or not permitted; runc carries on too.
        log::debug!("join session keyring: {}", nix::errno::Errno::last());
    }
}

fn set_domainname(d: &str) -> Result<()> {
    // SAFETY: setdomainname reads len bytes of the string.
    let r = unsafe { libc::setdomainname(d.as_ptr().cast(), d.len()) };
    if r != 0 {
        return Err(nix::errno::Errno::last())
            .with_ctx(|| format!("domainname: setdomainname {d}"));
    }
    Ok(())
}

/// Makes a pty in the container's devpts, sends its master to the console socket (the caller
/// owns the terminal from then on), and makes the slave our controlling terminal, our stdio and
/// /dev/console.
/// /dev/console to bind the terminal onto: a file or device in the container's /dev, created
/// if missing, never a symlink, so that the bind cannot land on another file (CVE-2025-52565).
fn console_target() -> Result<OwnedFd> {
    use nix::fcntl::OFlag;
    let dev =
        rootfs::Root::open(std::path::Path::new("/"))?.resolve(std::path::Path::new("/dev"))?;
    let open = |flags| {
        nix::fcntl::openat(
            &dev,
            "console",
            flags | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::from_bits_truncate(0o600),
        )
    };
    // O_PATH opens a symlink itself rather than failing; the type check below refuses it.
    let fd = match open(OFlag::O_PATH) {
        Err(nix::errno::Errno::ENOENT) => open(OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_WRONLY),
        r => r,
    }
    .ctx("open /dev/console")?;
    let kind = nix::sys::stat::SFlag::from_bits_truncate(
        nix::sys::stat::fstat(&fd).ctx("stat /dev/console")?.st_mode,
    ) & nix::sys::stat::SFlag::S_IFMT;
    if kind != nix::sys::stat::SFlag::S_IFREG && kind != nix::sys::stat::SFlag::S_IFCHR {
        return Err(Error::msg(
            "/dev/console is neither a file nor a device (a symlink?)",
        ));
    }
    Ok(fd)
}

/// The pty's slave belongs to `uid` (its group stays devpts' choice), so that a process that is
/// not root can use its terminal.
pub fn setup_console(
    sock: &OwnedFd,
    size: Option<(u64, u64)>,
    bind_console: bool,
    uid: u32,
) -> Result<()> {
    use nix::fcntl::OFlag;
    let master = nix::pty::posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC)
        .ctx("open /dev/ptmx")?;
    nix::pty::grantpt(&master).ctx("grantpt")?;
    nix::pty::unlockpt(&master).ctx("unlockpt")?;
    let name = nix::pty::ptsname_r(&master).ctx("ptsname")?;
    if let Some((rows, cols)) = size {
        let ws = libc::winsize {
            ws_row: rows as u16,
            ws_col: cols as u16,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCSWINSZ reads a winsize struct.
        unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
    }
    let fds = [master.as_raw_fd()];
    let cmsg = [ControlMessage::ScmRights(&fds)];
    sendmsg::<()>(
        sock.as_raw_fd(),
        &[IoSlice::new(name.as_bytes())],
        &cmsg,
        MsgFlags::empty(),
        None,
    )
    .ctx("send console to --console-socket")?;
    // The peer of our master, not whatever the path /dev/pts/N names by now (CVE-2025-52565).
    // SAFETY: TIOCGPTPEER takes open flags and returns a new fd, owned below.
    let peer = unsafe {
        libc::ioctl(
            master.as_raw_fd(),
            libc::TIOCGPTPEER,
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
        )
    };
    if peer < 0 {
        return Err(nix::errno::Errno::last()).with_ctx(|| format!("open {name}"));
    }
    // SAFETY: peer is a fresh fd nothing else owns.
    let slave = unsafe { std::os::fd::FromRawFd::from_raw_fd(peer) };
    let slave: OwnedFd = slave;
    give_to(&slave, uid)?;
    if bind_console {
        let console = console_target()?;
        nix::mount::mount(
            Some(format!("/proc/self/fd/{}", slave.as_raw_fd()).as_str()),
            format!("/proc/self/fd/{}", console.as_raw_fd()).as_str(),
            None::<&str>,
            nix::mount::MsFlags::MS_BIND,
            None::<&str>,
        )
        .ctx("bind /dev/console")?;
    }
    for fd in 0..3 {
        // SAFETY: replacing stdio with the terminal is the point; nothing else owns 0-2 here.
        // The returned OwnedFd would close the new stdio fd when dropped; it must stay open.
        let _stdio = unsafe { nix::unistd::dup2_raw(slave.as_fd(), fd) }
            .ctx("dup console to stdio")?
            .into_raw_fd();
    }
    // SAFETY: TIOCSCTTY on our new session's terminal.
    if unsafe { libc::ioctl(0, libc::TIOCSCTTY, 0) } != 0 {
        return Err(nix::errno::Errno::last()).ctx("set controlling terminal");
    }
    Ok(())
}

/// Gives stdio to `uid` before it drops root, as runc's fixStdioPermissions does, so that the
/// user can reopen /proc/self/fd/N (containerd's fifos); /dev/null (by device number) is left
/// alone, the host's may be bound in.
pub fn give_stdio_to(uid: u32) -> Result<()> {
    let null = nix::sys::stat::stat("/dev/null").ctx("stat /dev/null")?;
    for fd in 0..3 {
        // SAFETY: the borrow ends in this iteration and reaches only fstat and fchown, which
        // report a closed fd as EBADF.
        let fd = unsafe { BorrowedFd::borrow_raw(fd) };
        let st = match nix::sys::stat::fstat(fd) {
            // A caller that closed it: nothing to give (runc could not even start its init).
            Err(Errno::EBADF) => continue,
            r => r.with_ctx(|| format!("fstat stdio fd {}", fd.as_raw_fd()))?,
        };
        if st.st_rdev != null.st_rdev {
            give_to(fd, uid)?;
        }
    }
    Ok(())
}

/// Makes `uid` the owner of the terminal, as runc's fixStdioPermissions does: an unmapped id
/// (EINVAL), an owner we may not change (EPERM) or a read-only /dev (EROFS) leave it as it is.
fn give_to(tty: impl AsFd, uid: u32) -> Result<()> {
    let st = nix::sys::stat::fstat(&tty).ctx("stat the console")?;
    if st.st_uid == uid {
        return Ok(());
    }
    match nix::unistd::fchown(&tty, Some(nix::unistd::Uid::from_raw(uid)), None) {
        Ok(()) | Err(Errno::EINVAL | Errno::EPERM | Errno::EROFS) => Ok(()),
        Err(e) => Err(e).with_ctx(|| format!("process.user.uid: chown the console to {uid}")),
    }
}
