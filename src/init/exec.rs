//! The CHILD side of `husk exec`: the forked process joins the container's cgroups and
//! namespaces, sets itself up as the init does, and execs. It never returns.

use crate::container::sync;
use crate::error::{Context, Result};
use crate::init::process;
use crate::init::sched::{self, ExecAffinity};
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
        )?;
    }
    drop(console);
    process::set_rlimits(p)?;
    let mut env = p.env().clone().unwrap_or_default();
    process::add_home(&mut env, p.user().uid());
    process::enter_cwd(p.cwd())?;
    let exec = process::prepare_exec(p.args().as_deref().unwrap_or(&[]), &env)?;
    process::set_scheduling_and_labels(p)?;
    sched::set_memory_policy(mempolicy)?;
    let nnp = p.no_new_privileges().unwrap_or(false);
    if let (Some(s), false) = (seccomp, nnp) {
        crate::init::seccomp::notify::load(s, chan)?;
    }
    process::set_user_and_caps(p, setgroups)?;
    process::set_no_new_privs(p)?;
    sched::set_personality(personality)?;
    // Last, but before a filter that may not allow it.
    if let Some(set) = &affinity.last {
        sched::set_affinity(set, "final")?;
    }
    process::close_fds_on_exec(keep_fds)?;
    if let (Some(s), true) = (seccomp, nnp) {
        crate::init::seccomp::notify::load(s, chan)?;
    }
    Err(process::execve(&exec))
}
