//! `start`: lets a created container's init run its program, then runs the poststart hooks.

use super::open_existing;
use super::state::{State, Status};
use crate::error::{Context, Error, Result};
use nix::sys::stat::SFlag;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

/// Lets a created container's init run its program, then runs the poststart hooks.
pub fn start(root: &Path, id: &str) -> Result<()> {
    let (dir, state) = open_existing(root, id)?;
    let _lock = dir.lock()?;
    match state.status(&dir) {
        Status::Created => {}
        Status::Stopped => return Err(Error::msg("cannot start a container that has stopped")),
        Status::Running => return Err(Error::msg("cannot start an already running container")),
        Status::Paused => return Err(Error::msg("cannot start a container in the paused state")),
        Status::Creating => {
            return Err(Error::msg("cannot start a container that is being created"))
        }
    }
    let fifo = dir.fifo();
    let fd = nix::fcntl::open(
        &fifo,
        nix::fcntl::OFlag::O_WRONLY | nix::fcntl::OFlag::O_NONBLOCK | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(|e| match e {
        nix::errno::Errno::ENXIO => Error::msg("cannot start a container that has stopped"),
        e => Error::Sys {
            ctx: format!("open {}", fifo.display()),
            errno: e,
        },
    })?;
    // Anything else in its place (a file, say) does not reach the init, nor tell when the
    // program runs.
    let mode = nix::sys::stat::fstat(&fd).ctx("stat exec fifo")?.st_mode;
    if SFlag::from_bits_truncate(mode) & SFlag::S_IFMT != SFlag::S_IFIFO {
        return Err(Error::msg(format!("{} is not a fifo", fifo.display())));
    }
    nix::unistd::write(&fd, b"0").ctx("write exec fifo")?;
    std::fs::remove_file(&fifo).with_ctx(|| format!("remove {}", fifo.display()))?;
    let has_poststart = state
        .hooks
        .as_ref()
        .and_then(|h| h.poststart().as_ref())
        .is_some_and(|v| !v.is_empty());
    if has_poststart {
        wait_for_exec(&fd, &state)?;
    }
    poststart(&state)
}

/// Waits until the init has exec'd the user's program: its fifo fd is close-on-exec, and our
/// write end reports POLLERR once no reader is left. An init that is stopped or frozen would
/// never get there.
fn wait_for_exec(fifo_writer: &OwnedFd, state: &State) -> Result<()> {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    loop {
        let mut fds = [PollFd::new(fifo_writer.as_fd(), PollFlags::empty())];
        match poll(&mut fds, PollTimeout::from(100u8)) {
            Ok(0) => {
                if let Some(why) = crate::sync::stuck(state.pid, &state.cgroup_paths) {
                    return Err(Error::msg(format!(
                        "the container's process does not start: {why}"
                    )));
                }
            }
            Ok(_) => return Ok(()),
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e).ctx("wait for the container process to start"),
        }
    }
}

/// Runs the poststart hooks in the bundle, where runc runs them (at the end of its `create`).
pub fn poststart(state: &State) -> Result<()> {
    let Some(h) = &state.hooks else { return Ok(()) };
    let s = state.spec_state(Status::Running);
    if let Err(e) = crate::hooks::run_hooks(h.poststart().as_ref(), &s, Some(&state.bundle)) {
        // A failed poststart hook stops the container, as runc does.
        if let Err(k) = super::signal_all(state, libc::SIGKILL, false) {
            log::warn!("kill after failed poststart hook: {k}");
        }
        return Err(e);
    }
    Ok(())
}
