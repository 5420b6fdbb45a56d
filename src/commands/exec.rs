//! `exec`: run a new process in a running container, described by --process or by the flags.

use crate::cli::Exec;
use crate::container::{self, exec};
use anyhow::{Context as _, Result};
use std::path::Path;

pub fn run(root: &Path, e: &Exec) -> Result<i32> {
    let (dir, _) = container::open_existing(root, &e.id)?;
    let base = dir.load_exec_base()?;
    let process = match &e.process {
        Some(path) => {
            let data = std::fs::read(path)
                .with_context(|| format!("--process: read {}", path.display()))?;
            let p = parse_process(&data)
                .with_context(|| format!("--process: parse {}", path.display()))?;
            exec::inherit(p, &base.process)
        }
        None => exec::process_from_flags(&base.process, e)?,
    };
    Ok(exec::exec(exec::ExecOptions {
        root,
        id: &e.id,
        process,
        seccomp: base.seccomp,
        personality: base.personality,
        memory_policy: base.memory_policy,
        container_caps: base.process.capabilities().as_ref(),
        detach: e.detach,
        pid_file: e.pid_file.as_deref(),
        console_socket: e.console_socket.as_deref(),
        pidfd_socket: e.pidfd_socket.as_deref(),
        preserve_fds: e.preserve_fds,
        ignore_paused: e.ignore_paused,
        sub_cgroups: &e.cgroup,
    })?)
}

/// A process description, warning about the keys that parsing drops.
fn parse_process(data: &[u8]) -> Result<oci_spec::runtime::Process> {
    let p = parse_process_fields(data)?;
    if let Ok(raw) = serde_json::from_slice(data) {
        crate::container::fields::warn_dropped("--process: ", &raw, &p);
    }
    Ok(p)
}

/// A process description, in the runtime-spec's names (see `spec_scheduler_flag_names`).
fn parse_process_fields(data: &[u8]) -> Result<oci_spec::runtime::Process> {
    let first = match serde_json::from_slice(data) {
        Ok(p) => return Ok(p),
        Err(e) => e,
    };
    if let Ok(mut v) = serde_json::from_slice::<serde_json::Value>(data) {
        if v.pointer_mut("/scheduler/flags")
            .is_some_and(container::create::spec_scheduler_flag_names)
        {
            let fixed = serde_json::to_vec(&v)?;
            return serde_json::from_slice(&fixed)
                .map_err(|e| anyhow::anyhow!(container::create::spec_names(&e)));
        }
    }
    Err(anyhow::anyhow!(container::create::spec_names(&first)))
}
