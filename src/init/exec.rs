//! The CHILD side of `husk exec`: the forked process joins the container's cgroups and
//! namespaces, sets itself up as the init does, and execs. It never returns.

use crate::error::{Context, Result};
use crate::init::process;
use crate::init::sched::{self, ExecAffinity};
use crate::sync;
use nix::sched::CloneFlags;
use oci_spec::runtime::Process;
use std::os::fd::OwnedFd;
use std::path::PathBuf;

#[allow(clippy::too_many_arguments)]
pub fn child_main(
    p: &Process,
    cgroup_paths: &[PathBuf],
    namespaces: Vec<(OwnedFd, CloneFlags)>,
    console: Option<OwnedFd>,
    chown_stdio: bool,
    setgroups: bool,
    keep_fds: u32,
    seccomp: Option<&oci_spec::runtime::LinuxSeccomp>,
    personality: Option<&oci_spec::runtime::LinuxPersonality>,
    mempolicy: Option<&oci_spec::runtime::LinuxMemoryPolicy>,
    affinity: &ExecAffinity,
    chan: &sync::Channel,
) -> Result<std::convert::Infallible> {
    nix::sys::prctl::set_dumpable(false).ctx("prctl dumpable")?;
    // Through the host's /proc, before the container's mount namespace hides it.
    process::set_oom_score_adj(p)?;
    // Before the cgroups: a CPU outside the container's cpuset can be chosen here only.
    if let Some(set) = &affinity.initial {
        sched::set_affinity(set, "initial")?;
    }
    for dir in cgroup_paths {
        crate::cgroups::write_file(&dir.join("cgroup.procs"), "0")?;
    }
    for (fd, flag) in &namespaces {
        nix::sched::setns(fd, *flag).with_ctx(|| format!("setns {flag:?}"))?;
    }
    drop(namespaces);
    if let Some(sock) = &console {
        nix::unistd::setsid().ctx("setsid")?;
        crate::init::setup_console(
            sock,
            p.console_size().map(|b| (b.height(), b.width())),
            false,
            p.user().uid(),
        )?;
    }
    drop(console);
    let env = p.env().clone().unwrap_or_default();
    let exec = process::setup(
        p,
        env,
        personality,
        mempolicy,
        seccomp,
        setgroups,
        chown_stdio,
        chan,
    )?;
    // Last, but before a filter that may not allow it.
    if let Some(set) = &affinity.last {
        sched::set_affinity(set, "final")?;
    }
    process::close_fds_on_exec(keep_fds)?;
    if let (Some(s), true) = (seccomp, p.no_new_privileges().unwrap_or(false)) {
        crate::init::seccomp::notify::load(s, chan)?;
    }
    Err(process::execve(&exec))
}
