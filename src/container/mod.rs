//! The PARENT side: everything husk does in its own process. `create` clones the init (the child
//! side, crate::init) and plays its part of the setup; the rest acts on an existing container
//! through its state directory: start, kill, delete, pause/resume, update, ps, list.

pub mod create;
pub mod exec;
pub mod fields;
pub mod hooks;
pub mod namespaces;
pub mod start;
pub mod state;
pub mod sync;
pub mod tty;
pub mod wait;

pub use create::{create, CreateOptions};
pub use start::{poststart, start};

use crate::cgroups;
use crate::error::{Context, Error, Result};
use nix::sys::signal::Signal;
use state::{State, StateDir, Status};
use std::os::fd::AsFd;
use std::path::Path;

pub fn open_existing(root: &Path, id: &str) -> Result<(StateDir, State)> {
    let dir = StateDir::new(root, id).map_err(|_| Error::NotExist)?;
    let state = dir.load()?;
    Ok((dir, state))
}

pub fn kill(root: &Path, id: &str, sig: i32, all: bool) -> Result<()> {
    let (dir, state) = open_existing(root, id)?;
    match state.status(&dir) {
        // runc: signalling "all" processes of a stopped container is not an error.
        Status::Stopped => return if all { Ok(()) } else { Err(Error::NotRunning) },
        // The pid is that of the creating husk, not of the container.
        Status::Creating => return Err(Error::NotRunning),
        _ => {}
    }
    signal_all(&state, sig, all)
}

pub(crate) fn signal_all(state: &State, sig: i32, all: bool) -> Result<()> {
    let signal = Signal::try_from(sig).ctx("signal")?;
    if all {
        let cg = cgroups::from_paths(state.cgroup_paths.clone());
        for pid in cg.pids()? {
            match nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), signal) {
                Ok(()) | Err(nix::errno::Errno::ESRCH) => {}
                Err(e) => return Err(e).with_ctx(|| format!("kill {pid}")),
            }
        }
        return Ok(());
    }
    match nix::sys::signal::kill(nix::unistd::Pid::from_raw(state.pid), signal) {
        Ok(()) => Ok(()),
        Err(nix::errno::Errno::ESRCH) => Err(Error::NotRunning),
        Err(e) => Err(e).ctx("kill"),
    }
}

pub fn delete(root: &Path, id: &str, force: bool) -> Result<()> {
    let (dir, state) = match open_existing(root, id) {
        Ok(x) => x,
        // runc: `delete --force` of a container that does not exist succeeds, and removes the
        // directory of a create that died before it wrote its state.
        Err(Error::NotExist) if force => {
            return StateDir::new(root, id).map_or(Ok(()), |d| d.remove())
        }
        Err(e) => return Err(e),
    };
    let lock = dir.lock()?;
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
            return delete(root, id, force);
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
    destroy(&state, &dir)
}

/// SIGKILLs the container (all of its cgroup when it does not own its pid namespace) and waits
/// for the init to be gone, through a pidfd rather than by polling /proc.
fn stop_and_wait(state: &State) -> Result<()> {
    let pidfd = match crate::container::hooks::pidfd_open(state.pid) {
        Ok(fd) => Some(fd),
        Err(e) if e.errno() == Some(nix::errno::Errno::ESRCH) => None,
        Err(e) => return Err(e),
    };
    signal_all(state, libc::SIGKILL, state.shared_pidns).or_else(|e| match e {
        Error::NotRunning => Ok(()),
        e => Err(e),
    })?;
    if state.paused {
        // A frozen process cannot act on SIGKILL until thawed.
        cgroups::from_paths(state.cgroup_paths.clone()).freeze(false)?;
    }
    if let Some(fd) = pidfd {
        use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
        let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
        loop {
            match poll(&mut fds, PollTimeout::from(10_000u16)) {
                Ok(0) => {
                    return Err(Error::msg(format!(
                        "container init {} did not exit after SIGKILL",
                        state.pid
                    )))
                }
                Ok(_) => break,
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(e).ctx("poll pidfd"),
            }
        }
    }
    Ok(())
}

/// Removes everything a stopped container holds and runs its poststop hooks.
pub fn destroy(state: &State, dir: &StateDir) -> Result<()> {
    let cg = cgroups::from_paths(state.cgroup_paths.clone());
    if state.shared_pidns || state.creating {
        // Processes left in the cgroup of a container without its own pid namespace, or by a
        // create that died (its init may be waiting in the cgroup).
        for pid in cg.pids().unwrap_or_default() {
            // Already exiting processes are fine.
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), Signal::SIGKILL);
        }
    }
    cg.destroy()?;
    if let Some(h) = &state.hooks {
        let s = state.spec_state(Status::Stopped);
        // The spec: a failing poststop hook is logged, and the deletion goes on.
        if let Err(e) = crate::container::hooks::run_hooks(h.poststop().as_ref(), &s) {
            log::warn!("{e}");
        }
    }
    dir.remove()
}

/// Freezes (pause) or thaws (resume) the container; the state file remembers which, so that
/// `state` need not read the freezer.
pub fn set_paused(root: &Path, id: &str, paused: bool) -> Result<()> {
    let (dir, mut state) = open_existing(root, id)?;
    let _lock = dir.lock()?;
    match (state.status(&dir), paused) {
        (Status::Running | Status::Created, true) => {}
        (Status::Paused, false) => {}
        (Status::Stopped, _) => return Err(Error::NotRunning),
        (_, true) => return Err(Error::msg("container not running")),
        (_, false) => return Err(Error::msg("container not paused")),
    }
    cgroups::from_paths(state.cgroup_paths.clone()).freeze(paused)?;
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
    cgroups::from_paths(state.cgroup_paths.clone()).set(r)
}

/// The pids of the container's processes, as the host sees them.
pub fn pids(root: &Path, id: &str) -> Result<Vec<i32>> {
    let (dir, state) = open_existing(root, id)?;
    if state.status(&dir) == Status::Stopped {
        return Err(Error::NotRunning);
    }
    cgroups::from_paths(state.cgroup_paths.clone()).pids()
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
