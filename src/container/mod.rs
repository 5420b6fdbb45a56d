//! The PARENT side: everything husk does in its own process. `create` clones the init (the child
//! side, crate::init) and plays its part of the setup; the rest acts on an existing container
//! through its state directory: start, kill, delete, pause/resume, update, ps, list.

pub mod checkpoint;
pub mod create;
pub mod criu;
pub mod exec;
pub mod fields;
pub mod mount_sources;
pub mod pidfd_socket;
pub mod restore;
pub mod start;
pub mod state;
pub mod tty;
pub mod wait;

pub use create::{create, CreateOptions};
pub use start::{poststart, start};

use crate::error::{Context, Error, Result};
use nix::sys::signal::Signal;
use state::{State, StateDir, Status};
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

/// A container's state; an id that cannot name one is refused as such, as runc does.
pub fn open_existing(root: &Path, id: &str) -> Result<(StateDir, State)> {
    let dir = StateDir::new(root, id)?;
    let state = dir.load()?;
    Ok((dir, state))
}

pub fn kill(root: &Path, id: &str, sig: i32, all: bool) -> Result<()> {
    let (dir, state) = open_existing(root, id)?;
    match state.status(&dir) {
        Status::Stopped if !all => return Err(Error::NotRunning),
        // runc: signalling "all" processes of a stopped container is not an error, and reaches
        // those still in its cgroup (without a pid namespace of its own they outlive init).
        Status::Stopped if !state.cgroup_paths.first().is_some_and(|d| d.exists()) => return Ok(()),
        // The pid is that of the creating husk, not of the container.
        Status::Creating => return Err(Error::NotRunning),
        _ => {}
    }
    signal_all(&state, sig, all)
}

pub(crate) fn signal_all(state: &State, sig: i32, all: bool) -> Result<()> {
    if all {
        let cg = crate::rootless::from_state(&state.cgroup_paths);
        for pid in cg.pids()? {
            match send_signal(pid, sig) {
                Ok(()) | Err(nix::errno::Errno::ESRCH) => {}
                Err(e) => return Err(e).with_ctx(|| format!("kill {pid}")),
            }
        }
        return Ok(());
    }
    match send_signal(state.pid, sig) {
        Ok(()) => Ok(()),
        Err(nix::errno::Errno::ESRCH) => Err(Error::NotRunning),
        Err(e) => Err(e).ctx("kill"),
    }
}

/// kill(2) with the number as given: nix's Signal cannot name the real-time signals, which runc
/// sends (`kill ID 40`, `kill ID RTMIN+3`); 0 only checks that the process exists.
fn send_signal(pid: i32, sig: i32) -> nix::Result<()> {
    // SAFETY: kill takes plain integers.
    nix::errno::Errno::result(unsafe { libc::kill(pid, sig) }).map(drop)
}

/// Deletes the container; its poststop hooks run in `hooks_cwd`, or in ours (see `run_hooks`).
pub fn delete(root: &Path, id: &str, force: bool, hooks_cwd: Option<&Path>) -> Result<()> {
    let (dir, state) = match open_existing(root, id) {
        Ok(x) => x,
        // runc: `delete --force` of a container that does not exist succeeds, and removes the
        // directory of a create that died before it wrote its state.
        Err(Error::NotExist) if force => {
            return StateDir::new(root, id).map_or(Ok(()), |d| d.remove())
        }
        Err(e) => return Err(e),
    };
    let lock = if force {
        // Forced, it goes on even past a command stuck with the lock (in a hook, say).
        let lock = dir.try_lock()?;
        if lock.is_none() {
            log::warn!(
                "{}: deleting without the lock another command holds",
                dir.path.display()
            );
        }
        lock
    } else {
        Some(dir.lock()?)
    };
    let status = state.status(&dir);
    match status {
        Status::Stopped => {}
        Status::Created => stop_and_wait(&state)?,
        Status::Creating if force => {
            // Stop the creating husk (its pid is in the state), then delete what it made.
            stop_and_wait(&State {
                shared_pidns: false,
                paused: false,
                ..state
            })?;
            drop(lock);
            return delete(root, id, force, hooks_cwd);
        }
        Status::Running | Status::Paused | Status::Creating => {
            if !force {
                return Err(Error::msg(format!(
                    "cannot delete container {id} that is not stopped: {}",
                    status.as_str()
                )));
            }
            stop_and_wait(&state)?;
        }
    }
    destroy(&state, &dir, hooks_cwd)
}

/// SIGKILLs the container (all of its cgroup when it does not own its pid namespace) and waits
/// for the init to be gone, through a pidfd rather than by polling /proc.
fn stop_and_wait(state: &State) -> Result<()> {
    let pidfd = match crate::util::pidfd::pidfd_open(state.pid) {
        Ok(fd) => Some(fd),
        Err(e) if e.errno() == Some(nix::errno::Errno::ESRCH) => None,
        Err(e) => return Err(e),
    };
    signal_all(state, libc::SIGKILL, state.shared_pidns).or_else(|e| match e {
        Error::NotRunning => Ok(()),
        e => Err(e),
    })?;
    // Frozen by `pause` or behind our back, a process acts on SIGKILL only once thawed (v1).
    let held = crate::rootless::from_state(&state.cgroup_paths).thaw_own()?;
    if let Some(fd) = pidfd {
        if !wait_exit(&fd, 10_000)? {
            let why = held.map_or(String::new(), |p| format!(": {} is frozen", p.display()));
            return Err(Error::msg(format!(
                "container init {} did not exit after SIGKILL{why}",
                state.pid
            )));
        }
    }
    Ok(())
}

/// Waits at most `ms` milliseconds for the process of `pidfd` to exit; false if it has not.
pub(crate) fn wait_exit(pidfd: &OwnedFd, ms: u16) -> Result<bool> {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    let mut fds = [PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
    loop {
        match poll(&mut fds, PollTimeout::from(ms)) {
            Ok(n) => return Ok(n > 0),
            Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(e).ctx("poll pidfd"),
        }
    }
}

/// Removes everything a stopped container holds and runs its poststop hooks.
pub fn destroy(state: &State, dir: &StateDir, hooks_cwd: Option<&Path>) -> Result<()> {
    let cg = crate::rootless::from_state(&state.cgroup_paths);
    if state.shared_pidns || state.creating {
        // Processes left in the cgroup of a container without its own pid namespace, or by a
        // create that died (its init may be waiting in the cgroup).
        for pid in cg.pids().unwrap_or_default() {
            // Already exiting processes are fine.
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), Signal::SIGKILL);
        }
        cg.thaw_own()?;
    }
    cg.destroy()?;
    if let Some(h) = &state.hooks {
        let s = state.spec_state(Status::Stopped);
        // The spec: a failing poststop hook is logged, and the deletion goes on.
        if let Err(e) = crate::hooks::run_hooks(h.poststop().as_ref(), &s, hooks_cwd) {
            log::warn!("{e}");
        }
    }
    dir.remove()
}

/// Freezes (pause) or thaws (resume) the container, and remembers which in its state file.
pub fn set_paused(root: &Path, id: &str, paused: bool) -> Result<()> {
    let (dir, mut state) = open_existing(root, id)?;
    let _lock = dir.lock()?;
    match (state.status(&dir), paused) {
        (Status::Running | Status::Created, true) => {}
        (Status::Paused, false) => {}
        (Status::Stopped, _) => return Err(Error::NotRunning),
        (_, true) => return Err(Error::NotRunning),
        (_, false) => return Err(Error::NotPaused),
    }
    crate::rootless::from_state(&state.cgroup_paths).freeze(paused)?;
    state.paused = paused;
    dir.save(&state)
}

/// Applies new resource limits to a live container.
pub fn update(root: &Path, id: &str, r: &oci_spec::runtime::LinuxResources) -> Result<()> {
    let (dir, state) = open_existing(root, id)?;
    let _lock = dir.lock()?;
    if state.status(&dir) == Status::Stopped {
        return Err(Error::NotRunning);
    }
    crate::rootless::from_state(&state.cgroup_paths).set(r)
}

/// The pids of the container's processes, as the host sees them.
/// A stopped container's cgroup lives until `delete`: it lists what is left in it, as runc's
/// `ps` does (usually nothing).
pub fn pids(root: &Path, id: &str) -> Result<Vec<i32>> {
    let (_, state) = open_existing(root, id)?;
    crate::rootless::from_state(&state.cgroup_paths).pids()
}

/// The user who owns the container's state directory, by name, as `list` shows it.
pub fn owner(root: &Path, id: &str) -> String {
    use std::os::unix::fs::MetadataExt;
    let Ok(meta) = std::fs::metadata(root.join(id)) else {
        return String::new();
    };
    crate::util::passwd::lookup("/etc/passwd", meta.uid())
        .map_or_else(|| meta.uid().to_string(), |(name, _)| name)
}

pub fn list(root: &Path) -> Result<Vec<(State, Status)>> {
    let mut out = Vec::new();
    let entries = match std::fs::read_dir(root) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(e).with_ctx(|| format!("read {}", root.display())),
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(id) = name.to_str() else { continue };
        let Ok(dir) = StateDir::new(root, id) else {
            continue;
        };
        // A directory whose create is still under way has no state yet.
        let Ok(state) = dir.load() else { continue };
        let status = state.status(&dir);
        out.push((state, status));
    }
    out.sort_by(|a, b| a.0.id.cmp(&b.0.id));
    Ok(out)
}
