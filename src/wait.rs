//! Waiting for a foreground process (run, exec) while forwarding the signals husk receives to
//! it, as runc does. Signals are taken from a signalfd, so none is lost between checks.

use crate::error::{Context, Result};
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

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

/// Waits for `pid`, reaping any other child (orphans reparented to us as subreaper) and
/// forwarding every other signal to `pid`.
pub fn wait_forwarding(sfd: &SignalFd, pid: i32) -> Result<i32> {
    let target = Pid::from_raw(pid);
    loop {
        // Reap everything that has exited; our target's status ends the wait.
        loop {
            match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) | Err(nix::errno::Errno::ECHILD) => break,
                Ok(s) => {
                    if s.pid() == Some(target) {
                        if let Some(code) = exit_code(s) {
                            return Ok(code);
                        }
                    }
                }
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(e).ctx("waitpid"),
            }
        }
        let info = match sfd.read_signal() {
            Ok(Some(i)) => i,
            Ok(None) | Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e).ctx("read signalfd"),
        };
        let sig = info.ssi_signo as i32;
        if sig == libc::SIGCHLD {
            continue;
        }
        if let Ok(s) = Signal::try_from(sig) {
            // The process may be exiting at this moment; its status arrives with SIGCHLD.
            let _ = nix::sys::signal::kill(target, s);
        }
    }
}
