//! Waiting for a foreground process (run, exec) while forwarding the signals husk receives to
//! it, as runc does. Signals are taken from a signalfd, so none is lost between checks. With a
//! pty master, its output and our input are relayed at the same time.

use crate::error::{Context, Result};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use std::os::fd::{AsFd, OwnedFd};

/// Blocks the signals to forward; call before the process is let go, so none arrives unseen.
pub fn block_signals() -> Result<SignalFd> {
    let mut set = SigSet::all();
    set.remove(Signal::SIGKILL);
    set.remove(Signal::SIGSTOP);
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&set), None).ctx("block signals")?;
    SignalFd::with_flags(&set, SfdFlags::SFD_CLOEXEC).ctx("signalfd")
}

/// The shell's exit code for a wait status: the exit status, or 128 + the killing signal.
pub fn exit_code(s: WaitStatus) -> Option<i32> {
    match s {
        WaitStatus::Exited(_, c) => Some(c),
        WaitStatus::Signaled(_, sig, _) => Some(128 + sig as i32),
        _ => None,
    }
}

/// Reaps every exited child; the target's exit code if it was among them.
fn reap(target: Pid) -> Result<Option<i32>> {
    loop {
        match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) | Err(nix::errno::Errno::ECHILD) => return Ok(None),
            Ok(s) if s.pid() == Some(target) => {
                if let Some(code) = exit_code(s) {
                    return Ok(Some(code));
                }
            }
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(e).ctx("waitpid"),
        }
    }
}

/// Waits for `pid`, reaping any other child (orphans reparented to us as subreaper) and
/// forwarding every other signal to `pid`; relays `master` to our stdio when given.
pub fn wait_forwarding(sfd: &SignalFd, pid: i32, master: Option<&OwnedFd>) -> Result<i32> {
    let target = Pid::from_raw(pid);
    let stdin = std::io::stdin();
    let stdout = std::io::stdout();
    let mut master_open = master.is_some();
    let mut stdin_open = master.is_some();
    if let Some(m) = master {
        crate::container::tty::copy_winsize(m.as_fd());
    }
    loop {
        if let Some(code) = reap(target)? {
            if let (Some(m), true) = (master, master_open) {
                // What the process wrote just before exiting is still in the pty.
                nix::fcntl::fcntl(
                    m,
                    nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
                )
                .ctx("fcntl")?;
                while crate::container::tty::pump(m.as_fd(), stdout.as_fd()) {
                    let mut fds = [PollFd::new(m.as_fd(), PollFlags::POLLIN)];
                    if poll(&mut fds, PollTimeout::ZERO).unwrap_or(0) == 0 {
                        break;
                    }
                }
            }
            return Ok(code);
        }
        let mut fds = vec![PollFd::new(sfd.as_fd(), PollFlags::POLLIN)];
        if let (Some(m), true) = (master, master_open) {
            fds.push(PollFd::new(m.as_fd(), PollFlags::POLLIN));
        }
        if let (Some(_), true) = (master, stdin_open) {
            fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
        }
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(e).ctx("poll"),
        }
        let ready = |i: usize| {
            fds.get(i)
                .and_then(|f| f.revents())
                .is_some_and(|r| !r.is_empty())
        };
        let (sig_ready, m_ready, in_ready) = (
            ready(0),
            master_open && ready(1),
            stdin_open && ready(if master_open { 2 } else { 1 }),
        );
        drop(fds);
        if let Some(m) = master {
            if m_ready {
                master_open = crate::container::tty::pump(m.as_fd(), stdout.as_fd());
            }
            if in_ready {
                stdin_open = crate::container::tty::pump(stdin.as_fd(), m.as_fd());
            }
        }
        if !sig_ready {
            continue;
        }
        let info = match sfd.read_signal() {
            Ok(Some(i)) => i,
            Ok(None) | Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e).ctx("read signalfd"),
        };
        let sig = info.ssi_signo as i32;
        match (sig, master) {
            (libc::SIGCHLD, _) => {}
            (libc::SIGWINCH, Some(m)) => crate::container::tty::copy_winsize(m.as_fd()),
            _ => {
                if let Ok(s) = Signal::try_from(sig) {
                    // The process may be exiting at this moment; its status comes with SIGCHLD.
                    let _ = nix::sys::signal::kill(target, s);
                }
            }
        }
    }
}
