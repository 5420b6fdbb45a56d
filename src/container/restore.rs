//! `restore`: recreates a container from CRIU images, as runc does: a state directory and
//! cgroup are made as for `create`, CRIU is put in the cgroup and restores the process tree as
//! our child (a sibling of CRIU) into the bundle's rootfs, with the host mounts, joined
//! namespaces and stdio pipes it is told about. The result is a running husk container.
//! A failed restore leaves nothing behind: the undo kills what was restored and removes the
//! cgroup, the state directory and the rootfs bind.

use crate::cgroups::{self, CgroupManager};
use crate::container::checkpoint::{
    ext_mount, host_mounts, joined, ns_key, open_dir, work_dir, DESCRIPTORS,
};
use crate::container::criu::{self, ReqType, Swrk};
use crate::container::state::{ExecBase, State, StateDir, Status};
use crate::error::{Context, Error, Result};
use crate::namespaces::Plan;
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::CloneFlags;
use oci_spec::runtime::{LinuxNamespaceType, Spec};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

pub struct RestoreOptions<'a> {
    pub root: &'a Path,
    pub id: &'a str,
    pub bundle: &'a Path,
    pub criu: &'a Path,
    pub images: PathBuf,
    pub work: Option<PathBuf>,
    pub console_socket: Option<&'a Path>,
    pub pid_file: Option<&'a Path>,
    pub detach: bool,
    pub lsm_profile: Option<&'a str>,
    pub lsm_mount_context: Option<&'a str>,
    pub common: criu::Common,
}

pub struct Restored {
    pub state: State,
    pub dir: StateDir,
    /// A terminal's pty master, when no --console-socket took it: `restore` relays it.
    pub master: Option<OwnedFd>,
}

const RESTORE_LOG: &str = "restore.log";
/// Where the rootfs is bound for CRIU, in the state directory.
pub const CRIU_ROOT: &str = "criu-root";

/// Undoes a restore that failed part-way.
struct Undo<'a> {
    dir: &'a StateDir,
    cgroup: Option<Box<dyn CgroupManager>>,
    pid: Option<i32>,
    armed: bool,
}

impl Drop for Undo<'_> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        if let Some(pid) = self.pid {
            // Our child (a sibling of CRIU): killed and reaped, bounded by the pidfd wait.
            let pidfd = crate::util::pidfd::pidfd_open(pid);
            // Gone already is fine.
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
            if let Ok(true) = pidfd.and_then(|fd| crate::container::wait_exit(&fd, 1000)) {
                // It has exited: this does not block.
                let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None);
            }
        }
        if let Some(cg) = &self.cgroup {
            for pid in cg.pids().unwrap_or_default() {
                // Whatever CRIU left in the cgroup; exiting ones are fine.
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            if let Err(e) = cg.destroy() {
                log::warn!("cleanup: {e}");
            }
        }
        if let Err(e) = self.dir.remove() {
            log::warn!("cleanup: {e}");
        }
    }
}

/// The rootfs bound at <state>/criu-root: CRIU wants a mount point whose parent is not
/// overmounted. Unbound and removed when dropped.
struct RootBind(PathBuf);

impl RootBind {
    fn new(dir: &StateDir, rootfs: &Path) -> Result<RootBind> {
        let p = dir.path.join(CRIU_ROOT);
        std::fs::create_dir(&p).with_ctx(|| format!("mkdir {}", p.display()))?;
        let b = RootBind(p);
        mount(
            Some(rootfs),
            &b.0,
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None::<&str>,
        )
        .with_ctx(|| format!("bind {} to {}", rootfs.display(), b.0.display()))?;
        Ok(b)
    }
}

impl Drop for RootBind {
    fn drop(&mut self) {
        // Not mounted when the bind itself failed.
        let _ = umount2(&self.0, MntFlags::MNT_DETACH);
        if let Err(e) = std::fs::remove_dir(&self.0) {
            log::warn!("cleanup: remove {}: {e}", self.0.display());
        }
    }
}

pub fn restore(o: &RestoreOptions) -> Result<Restored> {
    let dir = StateDir::new(o.root, o.id)?;
    let bundle =
        std::fs::canonicalize(o.bundle).with_ctx(|| format!("chdir {}", o.bundle.display()))?;
    let spec = crate::container::create::load_spec(&bundle)?;
    let rootfs = rootfs_of(&spec, &bundle)?;
    crate::container::create::validate(&spec, &rootfs)?;
    // runc makes the image directory, even for a restore.
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o600)
        .create(&o.images)
        .with_ctx(|| format!("mkdir {}", o.images.display()))?;
    let linux = spec
        .linux()
        .as_ref()
        .ok_or_else(|| Error::msg("linux: missing"))?;
    let plan = Plan::new(linux.namespaces().as_deref().unwrap_or(&[]))?;
    let terminal = spec
        .process()
        .as_ref()
        .and_then(|p| p.terminal())
        .unwrap_or(false);
    // As runc: the id is taken before anything else is checked.
    dir.create(o.id)?;
    let mut undo = Undo {
        dir: &dir,
        cgroup: None,
        pid: None,
        armed: true,
    };
    let (console, relay) =
        crate::container::tty::console_ends(o.console_socket, terminal, !o.detach)?;
    // In the foreground without a socket, husk keeps the pty master itself.
    let console = if relay.is_some() { None } else { console };
    // Its own CRIU: the one that restores must be started with the fds it inherits.
    let (_, version) = Swrk::start(o.criu, criu::MIN_VERSION)?;
    for (flag, set) in [
        ("--lsm-profile", o.lsm_profile.is_some()),
        ("--lsm-mount-context", o.lsm_mount_context.is_some()),
    ] {
        if set && version < 31600 {
            return Err(Error::msg(format!("{flag} requires at least CRIU 3.16")));
        }
    }
    let images = open_dir(&o.images)?;
    let descriptors = read_descriptors(&o.images)?;

    let mut state = State {
        id: o.id.to_string(),
        pid: nix::unistd::getpid().as_raw(),
        pid_start: 0,
        bundle: bundle.clone(),
        rootfs: rootfs.clone(),
        created: crate::util::timefmt::rfc3339_now(),
        owner: String::new(),
        annotations: spec.annotations().clone().unwrap_or_default(),
        paused: false,
        cgroup_paths: vec![],
        freezer_paths: vec![],
        shared_pidns: !plan.creates(CloneFlags::CLONE_NEWPID),
        hooks: spec.hooks().clone(),
        ociversion: crate::oci_state::OCI_VERSION.to_owned(),
        creating: true,
    };
    state.pid_start = crate::container::state::process_start_time(state.pid).unwrap_or(0);
    let cg = cgroups::for_container(linux.cgroups_path().as_deref(), o.id)?;
    state.cgroup_paths = cg.paths();
    state.freezer_paths = cg.freezer_paths();
    // Saved before anything exists that a crash could leave behind, as `create` does.
    dir.save(&state)?;
    let cg = &**undo.cgroup.insert(cg);
    cg.create()?;
    let mut resources = linux.resources().clone().unwrap_or_default();
    if resources.devices().is_none() {
        resources.set_devices(Some(vec![]));
    }
    cg.set(&resources)?;

    let root_bind = RootBind::new(&dir, &rootfs)?;
    crate::util::fault::point("criu-root");
    let mut opts = criu::base_opts(&images, RESTORE_LOG);
    opts.set_evasive_devices(true);
    opts.set_rst_sibling(true);
    opts.set_root(root_bind.0.to_string_lossy().into_owned());
    o.common.apply(&mut opts);
    if let Some(p) = o.lsm_profile {
        opts.set_lsm_profile(p.into());
    }
    if let Some(c) = o.lsm_mount_context {
        opts.set_lsm_mount_context(c.into());
    }
    criu::config_file(&mut opts, &state.annotations);
    let (log_dir, work) = work_dir(&mut opts, &o.images, o.work.as_deref())?;
    let mut keep = vec![images.as_raw_fd()];
    keep.extend(work.iter().map(|w| w.as_raw_fd()));
    let ns_fds = namespaces(&spec, &mut opts, version)?;
    keep.extend(ns_fds.iter().map(|f| f.as_raw_fd()));
    make_mountpoints(&spec, &rootfs)?;
    let bind_source = |p: &Path| bundle.join(p);
    for (k, v) in host_mounts(&spec, &state.cgroup_paths, &bind_source) {
        opts.ext_mnt.push(ext_mount(k, v));
    }
    if linux.masked_paths().as_ref().is_some_and(|m| !m.is_empty()) {
        opts.ext_mnt
            .push(ext_mount("/dev/null".into(), "/dev/null".into()));
    }
    for (i, d) in descriptors.iter().enumerate() {
        if d.contains("pipe:") {
            let mut f = criu::rpc::Inherit_fd::new();
            f.set_key(d.clone());
            f.set_fd(i as i32);
            opts.inherit_fd.push(f);
        }
    }
    let mut req = criu::rpc::Criu_req::new();
    req.set_type(ReqType::RESTORE);

    let swrk = Swrk::spawn(o.criu, &keep, true)?;
    // CRIU restores the tree into the cgroup it is in, below these roots.
    cg.apply(swrk.pid())?;
    opts.cg_root = cgroup_roots(swrk.pid())?;
    req.opts = protobuf::MessageField::some(opts);
    let mut master = None;
    let mut restored = None;
    let res = swrk.call(&req, &mut |n, fd| {
        match n.script() {
            "setup-namespaces" => {
                if let Some(h) = &state.hooks {
                    let s = State {
                        pid: n.pid(),
                        ..state.clone()
                    }
                    .spec_state(Status::Creating);
                    let cwd = Some(bundle.as_path());
                    crate::hooks::run_hooks(h.prestart().as_ref(), &s, cwd)?;
                    crate::hooks::run_hooks(h.create_runtime().as_ref(), &s, cwd)?;
                }
            }
            "post-restore" => restored = Some(n.pid()),
            "orphan-pts-master" => {
                let fd = fd.ok_or_else(|| Error::msg("criu: orphan-pts-master without an fd"))?;
                match &console {
                    Some(sock) => send_master(sock, &fd)?,
                    None => master = Some(fd),
                }
            }
            _ => {}
        }
        Ok(())
    });
    undo.pid = restored;
    drop(root_bind);
    if let Err(e) = res {
        criu::quote_errors(&log_dir.join(RESTORE_LOG));
        return Err(e);
    }
    let pid = restored.ok_or_else(|| Error::msg("criu: no post-restore notification"))?;
    state.pid = pid;
    state.pid_start = crate::container::state::process_start_time(pid).unwrap_or(0);
    state.created = crate::util::timefmt::rfc3339_now();
    let process = spec
        .process()
        .clone()
        .ok_or_else(|| Error::msg("process: missing"))?;
    dir.save_exec_base(&ExecBase {
        process,
        seccomp: linux.seccomp().clone(),
        personality: linux.personality().clone(),
        memory_policy: linux.memory_policy().clone(),
    })?;
    state.creating = false;
    dir.save(&state)?;
    if let Some(p) = o.pid_file {
        crate::container::create::write_pid_file(p, pid)?;
    }
    undo.armed = false;
    drop(undo);
    Ok(Restored { state, dir, master })
}

fn rootfs_of(spec: &Spec, bundle: &Path) -> Result<PathBuf> {
    let p = spec
        .root()
        .as_ref()
        .map(|r| r.path().clone())
        .ok_or_else(|| Error::msg("root.path: missing from config.json"))?;
    Ok(crate::util::path::clean(&if p.is_absolute() {
        p
    } else {
        bundle.join(p)
    }))
}

/// The init's stdio at the dump, as `checkpoint` wrote it.
fn read_descriptors(images: &Path) -> Result<Vec<String>> {
    let path = images.join(DESCRIPTORS);
    let data = crate::util::read_regular(&path).with_ctx(|| format!("open {}", path.display()))?;
    serde_json::from_slice(&data).map_err(|e| Error::msg(format!("{}: {e}", path.display())))
}

/// Joined namespaces: a network or pid namespace is handed to CRIU as an inherited fd under
/// the key of the dump; the others CRIU joins by path. Returns the fds CRIU must inherit.
fn namespaces(spec: &Spec, opts: &mut criu::Opts, version: u32) -> Result<Vec<OwnedFd>> {
    let mut fds = Vec::new();
    let all = spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().clone())
        .unwrap_or_default();
    for ns in &all {
        let Some(path) = joined(spec, ns.typ()) else {
            continue;
        };
        let name = ns_name(ns.typ());
        match ns.typ() {
            LinuxNamespaceType::Network | LinuxNamespaceType::Pid => {
                let min = if ns.typ() == LinuxNamespaceType::Network {
                    31100
                } else {
                    31500
                };
                if version < min {
                    return Err(Error::msg(format!("criu lacks support for external {name} namespace during the restoration process (old criu version?)")));
                }
                let fd = nix::fcntl::open(
                    &path,
                    nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC,
                    nix::sys::stat::Mode::empty(),
                )
                .map_err(|_| {
                    Error::msg(format!(
                        "Requested network namespace {} does not exist",
                        path.display()
                    ))
                })?;
                let mut f = criu::rpc::Inherit_fd::new();
                f.set_key(ns_key(name));
                f.set_fd(fd.as_raw_fd());
                opts.inherit_fd.push(f);
                fds.push(fd);
            }
            LinuxNamespaceType::Cgroup => {
                return Err(Error::msg("Do not know how to handle namespace NEWCGROUP"))
            }
            _ => {
                let mut j = criu::rpc::Join_namespace::new();
                j.set_ns(name.into());
                j.set_ns_file(path.to_string_lossy().into_owned());
                opts.join_ns.push(j);
            }
        }
    }
    Ok(fds)
}

/// The name CRIU (and /proc/<pid>/ns) gives a namespace type.
fn ns_name(t: LinuxNamespaceType) -> &'static str {
    match t {
        LinuxNamespaceType::Network => "net",
        LinuxNamespaceType::Pid => "pid",
        LinuxNamespaceType::Mount => "mnt",
        LinuxNamespaceType::Ipc => "ipc",
        LinuxNamespaceType::Uts => "uts",
        LinuxNamespaceType::User => "user",
        LinuxNamespaceType::Cgroup => "cgroup",
        LinuxNamespaceType::Time => "time",
    }
}

/// Mount points that `create` would have made in the rootfs, which CRIU expects to find; not
/// those on a tmpfs, whose content CRIU restores itself.
fn make_mountpoints(spec: &Spec, rootfs: &Path) -> Result<()> {
    let mounts = spec.mounts().as_deref().unwrap_or(&[]);
    let tmpfs: Vec<&Path> = mounts
        .iter()
        .filter(|m| m.typ().as_deref() == Some("tmpfs"))
        .map(|m| m.destination().as_path())
        .collect();
    for m in mounts {
        let dest = m.destination();
        if tmpfs.iter().any(|t| dest.starts_with(t) && dest != *t)
            || matches!(m.typ().as_deref(), Some("cgroup" | "cgroup2"))
        {
            continue;
        }
        let inside = rootfs.join(crate::util::path::below_root(dest));
        if inside.symlink_metadata().is_ok() {
            continue;
        }
        let file = m
            .source()
            .as_ref()
            .is_some_and(|s| std::fs::metadata(s).is_ok_and(|md| !md.is_dir()));
        let made = if file {
            inside
                .parent()
                .map_or(Ok(()), std::fs::create_dir_all)
                .and_then(|()| std::fs::File::create(&inside).map(drop))
        } else {
            std::fs::create_dir_all(&inside)
        };
        made.with_ctx(|| {
            format!(
                "create criu restore mountpoint for {} mount",
                dest.display()
            )
        })?;
    }
    Ok(())
}

/// CRIU's process's cgroups, one root per controller (and "" for the unified hierarchy).
fn cgroup_roots(pid: i32) -> Result<Vec<criu::rpc::Cgroup_root>> {
    let path = format!("/proc/{pid}/cgroup");
    let text = std::fs::read_to_string(&path).with_ctx(|| format!("read {path}"))?;
    let mut out = Vec::new();
    for line in text.lines() {
        let mut parts = line.splitn(3, ':');
        let (_, ctrls, p) = (parts.next(), parts.next(), parts.next());
        let (Some(ctrls), Some(p)) = (ctrls, p) else {
            continue;
        };
        for c in ctrls.split(',') {
            let mut r = criu::rpc::Cgroup_root::new();
            r.set_ctrl(c.into());
            r.set_path(p.into());
            out.push(r);
        }
    }
    Ok(out)
}

/// Hands the restored terminal to the --console-socket, as `create` hands a new one.
fn send_master(sock: &OwnedFd, master: &OwnedFd) -> Result<()> {
    use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
    let fds = [master.as_raw_fd()];
    sendmsg::<()>(
        sock.as_raw_fd(),
        &[std::io::IoSlice::new(b"orphan-pts-master")],
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::empty(),
        None,
    )
    .ctx("send console to --console-socket")?;
    Ok(())
}
