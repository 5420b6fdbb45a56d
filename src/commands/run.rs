//! `run`: create, start, and (unless detached) wait for the container, forwarding signals, then
//! delete it (unless --keep) and exit with its status.

use crate::cli::Run;
use crate::container::{self, tty, wait};
use crate::sync::Msg;
use anyhow::{Context as _, Result};
use std::path::Path;

pub fn run(root: &Path, r: &Run) -> Result<i32> {
    if !r.no_subreaper {
        // Orphans of the container (and a two-stage init) are reparented to us and reaped.
        nix::sys::prctl::set_child_subreaper(true).context("prctl subreaper")?;
    }
    let created = container::create(&super::create::options(
        root, &r.id, &r.opts, true, !r.detach,
    ))?;
    let chan = created
        .chan
        .as_ref()
        .context("run: no channel to the init")?;
    let sfd = if r.detach {
        None
    } else {
        Some(wait::block_signals()?)
    };
    // runc's run works in the bundle: hooks run from here on (poststart, poststop) run there.
    let bundle = Some(created.state.bundle.as_path());
    let go = chan
        .send(&Msg::Go)
        .and_then(|()| container::create::wait_exec(chan))
        .and_then(|()| container::poststart(&created.state));
    if let Err(e) = go {
        // Leave nothing behind: kill (done by poststart on hook failure) and delete.
        container::delete(root, &r.id, true, bundle).context("delete after failed start")?;
        return Err(e.into());
    }
    let Some(sfd) = sfd else { return Ok(0) };
    // The init sent the pty master before it reported ready.
    let master = created.console.as_ref().map(tty::recv_master).transpose()?;
    let raw = master.as_ref().map(|_| tty::RawMode::enter());
    let code = wait::wait_forwarding(&sfd, created.state.pid, master.as_ref());
    drop(raw);
    let code = code?;
    log::debug!("process exited pid={} status={code}", created.state.pid);
    if !r.keep {
        container::destroy(&created.state, &created.dir, bundle)?;
    }
    Ok(code)
}
