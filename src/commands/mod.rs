//! One module per runc command, named as the command. Each reads its flags, calls into the
//! parent side (crate::container) or the cgroup manager (crate::cgroups), and prints.

pub mod create;
pub mod delete;
pub mod events;
pub mod exec;
pub mod features;
pub mod kill;
pub mod list;
pub mod output;
pub mod pause;
pub mod ps;
pub mod run;
pub mod spec;
pub mod start;
pub mod state;
pub mod update;

use crate::cli::{Cli, Command};

/// Closes every fd we inherited beyond stdio and those the caller asked to pass on
/// (--preserve-fds, $LISTEN_FDS), before husk opens anything: a leaked host directory fd could
/// otherwise be reached from the container as /proc/self/fd/N (CVE-2024-21626).
pub fn close_inherited_fds(cli: &Cli) {
    let preserve = match &cli.command {
        Some(Command::Create(c)) => c.opts.preserve_fds,
        Some(Command::Run(r)) => r.opts.preserve_fds,
        Some(Command::Exec(e)) => e.preserve_fds,
        _ => 0,
    };
    let listen = crate::util::fds::listen_fds();
    // SAFETY: nothing in this process owns an fd above stdio yet.
    // A kernel without close_range leaves them to close-on-exec in the container's setup.
    let _ = unsafe { libc::close_range(3 + preserve + listen, u32::MAX, 0) };
}
