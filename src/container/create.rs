//! The container lifecycle as seen from husk's own process: create (validate, clone the init,
//! play our part of the setup, record state), start, kill and delete. A failed create leaves
//! nothing behind: the init is killed, its cgroup and state directory removed.

use crate::cgroups::{self, CgroupManager};
use crate::container::pidfd_socket;
use crate::container::state::{State, StateDir, Status};
use crate::error::{Context, Error, Result};
use crate::init::{self, Gate, InitArgs};
use crate::namespaces::{self, Plan};
use crate::sync::{self, Msg};
use nix::sched::CloneFlags;
use nix::sys::signal::Signal;
use oci_spec::runtime::{Linux, Spec};
use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

pub struct CreateOptions<'a> {
    pub root: &'a Path,
    pub id: &'a str,
    pub bundle: &'a Path,
    pub console_socket: Option<&'a Path>,
    pub pidfd_socket: Option<&'a Path>,
    pub pid_file: Option<&'a Path>,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    pub preserve_fds: u32,
    /// `run`: no exec fifo; the caller starts the init through the returned channel.
    pub for_run: bool,
    /// `run` without --detach: husk stays and relays the terminal.
    pub foreground: bool,
}

pub struct Created {
    pub state: State,
    pub dir: StateDir,
    /// For `run`: the channel on which the init waits for its go-ahead.
    pub chan: Option<sync::Channel>,
    /// For `run` with a terminal and no --console-socket: where the init sends the pty master.
    pub console: Option<OwnedFd>,
}

pub fn load_spec(bundle: &Path) -> Result<Spec> {
    let path = bundle.join("config.json");
    let data = crate::util::read_regular(&path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Error::msg("JSON specification file config.json not found"),
        _ => Error::Io {
            ctx: format!("open {}", path.display()),
            err: e,
        },
    })?;
    parse_spec(&data)
}

/// Parses config.json, warning about the keys that parsing drops (see container::fields).
pub fn parse_spec(data: &[u8]) -> Result<Spec> {
    let spec = parse_spec_fields(data)?;
    if let Ok(raw) = serde_json::from_slice::<serde_json::Value>(data) {
        crate::container::fields::warn_dropped("", &raw, &spec);
        crate::container::fields::warn_not_runtime_spec(&raw);
    }
    Ok(spec)
}

/// Parses config.json. Only when that fails is it looked at again: to skip capabilities this
/// build does not know (runc warns and goes on), to take an empty `linux.memoryPolicy` for none
/// (as runc 1.4 does), or to name the field at fault.
fn parse_spec_fields(data: &[u8]) -> Result<Spec> {
    let first = match serde_json::from_slice::<Spec>(data) {
        Ok(s) => return Ok(s),
        Err(e) => e,
    };
    if let Ok(mut value) = serde_json::from_slice::<serde_json::Value>(data) {
        let reset_on_fork = value
            .pointer_mut("/process/scheduler/flags")
            .is_some_and(spec_scheduler_flag_names);
        let empty_policy = value
            .pointer("/linux/memoryPolicy")
            .is_some_and(|p| p.as_object().is_some_and(|o| o.is_empty()));
        if empty_policy {
            if let Some(l) = value.get_mut("linux").and_then(|l| l.as_object_mut()) {
                l.remove("memoryPolicy");
            }
        }
        if drop_unknown_capabilities(&mut value) | reset_on_fork | empty_policy {
            // Through bytes again, so only one Spec deserializer is compiled in.
            if let Ok(s) = serde_json::to_vec(&value).map(|v| serde_json::from_slice::<Spec>(&v)) {
                return s.map_err(|e| Error::msg(format!("config.json: {}", spec_names(&e))));
            }
        }
    }
    let field = field_at(data, first.line(), first.column());
    let at = field.map(|f| format!("{f}: ")).unwrap_or_default();
    Err(Error::msg(format!(
        "config.json: {at}{}",
        spec_names(&first)
    )))
}

/// Scheduler flags that oci-spec 0.10 spells otherwise than the runtime-spec: (spec, oci-spec).
const SCHED_FLAG_NAMES: [(&str, &str); 2] = [
    ("SCHED_FLAG_RESET_ON_FORK", "SCHED_RESET_ON_FORK"),
    ("SCHED_FLAG_DL_OVERRUN", "SCHED_FLAG_D_L_OVERRUN"),
];

/// Renames the runtime-spec's scheduler flags in `flags` to oci-spec's; true if it did.
pub fn spec_scheduler_flag_names(flags: &mut serde_json::Value) -> bool {
    let mut renamed = false;
    for f in flags.as_array_mut().into_iter().flatten() {
        if let Some((_, oci)) = SCHED_FLAG_NAMES.iter().find(|(spec, _)| f == spec) {
            *f = (*oci).into();
            renamed = true;
        }
    }
    renamed
}

/// A parse error in the runtime-spec's names, not oci-spec's.
pub fn spec_names(e: &serde_json::Error) -> String {
    SCHED_FLAG_NAMES
        .iter()
        .fold(e.to_string(), |m, (spec, oci)| {
            m.replace(&format!("`{oci}`"), &format!("`{spec}`"))
        })
}

/// The JSON key whose value holds the given position: the last `"key":` before it.
fn field_at(data: &[u8], line: usize, column: usize) -> Option<String> {
    let text = std::str::from_utf8(data).ok()?;
    let offset: usize = text
        .split_inclusive('\n')
        .take(line.saturating_sub(1))
        .map(str::len)
        .sum::<usize>()
        + column;
    let before = text.get(..offset.min(text.len()))?;
    let colon = before.rfind("\":")?;
    let start = before[..colon].rfind('"')? + 1;
    Some(before[start..colon].to_string())
}

/// Removes unknown capability names; true if there were any.
fn drop_unknown_capabilities(spec: &mut serde_json::Value) -> bool {
    let mut dropped = false;
    let Some(sets) = spec
        .pointer_mut("/process/capabilities")
        .and_then(|c| c.as_object_mut())
    else {
        return false;
    };
    for (set, caps) in sets.iter_mut() {
        let Some(list) = caps.as_array_mut() else {
            continue;
        };
        list.retain(|c| {
            let known = c
                .as_str()
                .and_then(|n| n.strip_prefix("CAP_"))
                .is_some_and(|n| n.parse::<oci_spec::runtime::Capability>().is_ok());
            if !known {
                log::warn!("process.capabilities.{set}: ignoring unknown capability {c}");
                dropped = true;
            }
            known
        });
    }
    dropped
}

/// Rejects what would fail half-way through setup, naming the field. The rootfs is checked
/// after the process and before the linux section, in runc's order.
pub fn validate(spec: &Spec, rootfs: &Path) -> Result<()> {
    validate_process(spec)?;
    match std::fs::metadata(rootfs) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => {
            return Err(Error::msg(format!(
                "invalid rootfs: {} is not a directory",
                rootfs.display()
            )))
        }
        Err(e) => return Err(e).with_ctx(|| format!("invalid rootfs: stat {}", rootfs.display())),
    }
    validate_linux(spec)?;
    validate_host(spec)?;
    validate_hooks(spec)
}

/// The checks of `validate` that read nothing but the spec (the fuzzer runs these).
pub fn validate_spec(spec: &Spec) -> Result<()> {
    validate_process(spec)?;
    validate_linux(spec)?;
    validate_hooks(spec)
}

fn validate_hooks(spec: &Spec) -> Result<()> {
    spec.hooks().as_ref().map_or(Ok(()), crate::hooks::validate)
}

fn validate_process(spec: &Spec) -> Result<()> {
    let process = spec
        .process()
        .as_ref()
        .ok_or_else(|| Error::msg("process: missing from config.json"))?;
    if process.args().as_ref().is_none_or(|a| a.is_empty()) {
        return Err(Error::msg("process.args: args must not be empty"));
    }
    if !process.cwd().is_absolute() {
        return Err(Error::msg(format!(
            "process.cwd: {} is not an absolute path",
            process.cwd().display()
        )));
    }
    // The runtime-spec: "If rlimits contains duplicated entries with same type, the runtime
    // MUST generate an error" (runc applies them all, the last one winning).
    let rlimits = process.rlimits().as_deref().unwrap_or(&[]);
    for (i, rl) in rlimits.iter().enumerate() {
        if rlimits[..i].iter().any(|r| r.typ() == rl.typ()) {
            return Err(Error::msg(format!(
                "process.rlimits: {:?} is given more than once",
                rl.typ()
            )));
        }
    }
    crate::init::sched::validate(process)
}

fn validate_linux(spec: &Spec) -> Result<()> {
    let linux = spec
        .linux()
        .as_ref()
        .ok_or_else(|| Error::msg("linux: missing from config.json"))?;
    let ns = linux.namespaces().as_deref().unwrap_or(&[]);
    let plan = Plan::new(ns)?;
    if !plan.has(CloneFlags::CLONE_NEWNS) {
        return Err(Error::msg(
            "linux.namespaces: a mount namespace is required",
        ));
    }
    let maps = linux.uid_mappings().as_ref().is_some_and(|m| !m.is_empty())
        && linux.gid_mappings().as_ref().is_some_and(|m| !m.is_empty());
    if plan.creates(CloneFlags::CLONE_NEWUSER) && !maps {
        return Err(Error::msg(
            "linux.uidMappings: a new user namespace needs uid and gid mappings",
        ));
    }
    // runc 1.2's validator: mappings or offsets for a namespace the container does not get.
    let any_maps = linux.uid_mappings().as_ref().is_some_and(|m| !m.is_empty())
        || linux.gid_mappings().as_ref().is_some_and(|m| !m.is_empty());
    if any_maps && !plan.has(CloneFlags::CLONE_NEWUSER) {
        return Err(Error::msg(
            "linux.uidMappings: user namespace mappings specified, but the user namespace isn't enabled in the config",
        ));
    }
    let timens = CloneFlags::from_bits_retain(libc::CLONE_NEWTIME);
    if linux.time_offsets().as_ref().is_some_and(|o| !o.is_empty()) && !plan.creates(timens) {
        return Err(Error::msg(
            "linux.timeOffsets: time namespace offsets specified, but a new time namespace isn't enabled in the config",
        ));
    }
    if let Some(s) = linux.seccomp() {
        crate::init::seccomp::notify::check(s)?;
    }
    crate::container::mount_sources::validate(spec, linux, &plan)?;
    for (field, value) in [
        ("hostname", spec.hostname()),
        ("domainname", spec.domainname()),
    ] {
        if value.as_ref().is_some_and(|v| !v.is_empty()) && !plan.has(CloneFlags::CLONE_NEWUTS) {
            return Err(Error::msg(format!(
                "{field}: unable to set {field} without a private UTS namespace"
            )));
        }
    }
    for key in linux.sysctl().iter().flat_map(|s| s.keys()) {
        validate_sysctl(key, spec, &plan)?;
    }
    if let Some(p) = linux.personality() {
        crate::init::sched::validate_personality(p)?;
    }
    if let Some(m) = linux.memory_policy() {
        crate::init::sched::memory_policy(m)?;
    }
    crate::container::fields::refuse_unsupported(spec)
}

/// What the host must have for the spec: SELinux for a process label, resctrl for intelRdt.
pub(crate) fn validate_host(spec: &Spec) -> Result<()> {
    let label = spec
        .process()
        .as_ref()
        .and_then(|p| p.selinux_label().as_deref());
    crate::security::lsm::check_process_label(label)?;
    if let Some(rdt) = spec.linux().as_ref().and_then(|l| l.intel_rdt().as_ref()) {
        return Err(intel_rdt_refusal(rdt, resctrl_mounted()));
    }
    Ok(())
}

/// husk does not implement Intel RDT. Where runc refuses too (a schema without resctrl), in
/// runc's words; otherwise runc would go on without it (no resctrl) or apply it.
fn intel_rdt_refusal(rdt: &oci_spec::runtime::LinuxIntelRdt, resctrl: bool) -> Error {
    if !resctrl && rdt.l3_cache_schema().is_some() {
        return Error::msg(
            "intelRdt.l3CacheSchema is specified in config, but Intel RDT/CAT is not enabled",
        );
    }
    if !resctrl && rdt.mem_bw_schema().is_some() {
        return Error::msg(
            "intelRdt.memBwSchema is specified in config, but Intel RDT/MBA is not enabled",
        );
    }
    Error::msg(if resctrl {
        "linux.intelRdt: Intel RDT is not supported by husk yet"
    } else {
        "linux.intelRdt is specified in config, but Intel RDT is not available (no resctrl filesystem mounted)"
    })
}

/// A resctrl filesystem where the kernel documentation puts it (runc searches mountinfo).
fn resctrl_mounted() -> bool {
    const RDTGROUP_SUPER_MAGIC: nix::sys::statfs::FsType = nix::sys::statfs::FsType(0x0765_5821);
    nix::sys::statfs::statfs("/sys/fs/resctrl")
        .is_ok_and(|s| s.filesystem_type() == RDTGROUP_SUPER_MAGIC)
}

/// runc's rule: a sysctl must belong to a namespace the container has of its own.
fn validate_sysctl(key: &str, spec: &Spec, plan: &Plan) -> Result<()> {
    const IPC: &[&str] = &[
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.sem",
        "kernel.shmall",
        "kernel.shmmax",
        "kernel.shmmni",
        "kernel.shm_rmid_forced",
    ];
    let own = |f: CloneFlags| plan.has(f);
    let (needs, field) = if IPC.contains(&key) || key.starts_with("fs.mqueue.") {
        (CloneFlags::CLONE_NEWIPC, None)
    } else if key.starts_with("net.") {
        (CloneFlags::CLONE_NEWNET, None)
    } else if key == "kernel.hostname" {
        (
            CloneFlags::CLONE_NEWUTS,
            spec.hostname().as_deref().map(|_| "hostname"),
        )
    } else if key == "kernel.domainname" {
        (
            CloneFlags::CLONE_NEWUTS,
            spec.domainname().as_deref().map(|_| "domainname"),
        )
    } else {
        return Err(Error::msg(format!(
            "linux.sysctl: sysctl {key:?} is not in a separate kernel namespace"
        )));
    };
    if let Some(f) = field {
        return Err(Error::msg(format!(
            "linux.sysctl: sysctl {key:?} is not allowed as it conflicts with the OCI {f:?} field"
        )));
    }
    if !own(needs) {
        return Err(Error::msg(format!(
            "linux.sysctl: sysctl {key:?} is not allowed in the host's namespace"
        )));
    }
    Ok(())
}

/// Undoes a create that failed part-way.
struct Undo<'a> {
    dir: &'a StateDir,
    cgroup: Option<Box<dyn CgroupManager>>,
    pids: Vec<i32>,
    armed: bool,
}

impl Drop for Undo<'_> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        for &pid in &self.pids {
            // The process may already be gone; reaping it is what matters.
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), Signal::SIGKILL);
        }
        // A frozen init (v1) dies of the SIGKILL only once thawed; one frozen by an ancestor
        // of its cgroup is not ours to thaw, and is left behind rather than waited for forever.
        if let Some(Err(e)) = self.cgroup.as_ref().map(|cg| cg.thaw_own()) {
            log::warn!("cleanup: {e}");
        }
        for &pid in &self.pids {
            let pidfd = crate::util::pidfd::pidfd_open(pid);
            if let Ok(false) = pidfd.and_then(|fd| crate::container::wait_exit(&fd, 1000)) {
                log::warn!("cleanup: process {pid} did not exit after SIGKILL");
                continue;
            }
            // Our child has exited (or was reaped already): this does not block.
            let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None);
        }
        if let Some(cg) = &self.cgroup {
            if let Err(e) = cg.destroy() {
                log::warn!("cleanup: {e}");
            }
        }
        if let Err(e) = self.dir.remove() {
            log::warn!("cleanup: {e}");
        }
    }
}

/// What `prepare` learnt from the bundle, before anything exists on the host.
struct Prepared {
    dir: StateDir,
    bundle: PathBuf,
    spec: Spec,
    rootfs: PathBuf,
    plan: Plan,
}

/// `create`, one phase a function: read and check the bundle; record the container and make its
/// cgroup; clone the init; write its id maps; put it in its cgroup; serve its setup (hooks,
/// seccomp listener) until it is ready; save the state as created. Until the end, the undo
/// removes whatever a failed phase leaves behind.
pub fn create(o: &CreateOptions) -> Result<Created> {
    let p = prepare(o)?;
    log::debug!(
        "create {}: bundle {}, rootfs {}",
        o.id,
        p.bundle.display(),
        p.rootfs.display()
    );
    let linux = p
        .spec
        .linux()
        .as_ref()
        .ok_or_else(|| Error::msg("linux: missing"))?;
    let terminal = p
        .spec
        .process()
        .as_ref()
        .and_then(|p| p.terminal())
        .unwrap_or(false);
    let (console, console_parent) =
        crate::container::tty::console_ends(o.console_socket, terminal, o.foreground)?;
    let pidfd_socket = o.pidfd_socket.map(pidfd_socket::connect).transpose()?;

    p.dir.create(o.id)?;
    let mut undo = Undo {
        dir: &p.dir,
        cgroup: None,
        pids: vec![],
        armed: true,
    };
    let (mut state, cgroup_paths) = save_creating(o, &p, linux, &mut undo)?;
    log::debug!("create {}: cgroup {cgroup_paths:?}", o.id);
    let gate = exec_gate(&p.dir, o.for_run)?;
    let mount_view = crate::rootless::mount_view(cgroup_paths, o.id)?;
    let cgroup_first = undo.cgroup.as_ref().is_some_and(|cg| cg.made_by_apply());
    let args = init_args(o, &p, mount_view, console, gate, cgroup_first)?;
    let (mut chan, first, in_cgroup) = clone_init(args, &p.plan, &mut undo)?;
    // Its messages need its progress: a stopped or frozen init fails the create.
    chan.watch(first, vec![]);
    let init_pid = init_pid(&chan, first, &p.plan, linux, &mut undo)?;
    chan.watch(init_pid, state.cgroup_paths.clone());
    send_mount_sources(&chan, &p, init_pid)?;
    join_cgroup(&chan, &undo, init_pid, in_cgroup)?;
    log::debug!(
        "create {}: init {init_pid} {} its cgroup",
        o.id,
        if in_cgroup { "started in" } else { "joined" }
    );

    state.pid = init_pid;
    state.pid_start = crate::container::state::process_start_time(init_pid).unwrap_or(0);
    state.hooks = p.spec.hooks().clone();
    serve_init(&chan, &p, linux, &state, init_pid)?;
    if let Some(s) = &pidfd_socket {
        pidfd_socket::send(s, init_pid, pidfd_socket::INIT)?;
    }
    log::debug!("create {}: init {init_pid} is ready", o.id);
    crate::util::fault::point("ready");
    save_created(o, &p, linux, &mut state)?;
    undo.armed = false;
    drop(undo);
    Ok(Created {
        state,
        dir: p.dir,
        chan: o.for_run.then_some(chan),
        console: console_parent,
    })
}

/// Reads and checks the bundle; nothing exists on the host yet. Re-executes from a sealed copy
/// of husk when the container could reach our binary (CVE-2019-5736).
fn prepare(o: &CreateOptions) -> Result<Prepared> {
    let dir = StateDir::new(o.root, o.id)?;
    let bundle =
        std::fs::canonicalize(o.bundle).with_ctx(|| format!("chdir {}", o.bundle.display()))?;
    let spec = load_spec(&bundle)?;
    let root_path = spec
        .root()
        .as_ref()
        .map(|r| r.path().clone())
        .ok_or_else(|| Error::msg("root.path: missing from config.json"))?;
    let rootfs = if root_path.is_absolute() {
        root_path
    } else {
        bundle.join(root_path)
    };
    validate(&spec, &rootfs)?;
    let rootfs = crate::util::path::clean(&rootfs);
    if std::fs::canonicalize(&rootfs).ok().as_ref() != Some(&rootfs) {
        return Err(Error::msg(
            "invalid rootfs: not an absolute path, or a symlink",
        ));
    }
    let linux = spec
        .linux()
        .as_ref()
        .ok_or_else(|| Error::msg("linux: missing"))?;
    let plan = Plan::new(linux.namespaces().as_deref().unwrap_or(&[]))?;
    crate::rootless::check_spec(&spec, &plan)?;
    let caps = spec
        .process()
        .as_ref()
        .and_then(|p| p.capabilities().as_ref());
    if crate::security::sealed::exposed(caps, plan.creates(CloneFlags::CLONE_NEWUSER)) {
        crate::security::sealed::reexec()?;
    }
    Ok(Prepared {
        dir,
        bundle,
        spec,
        rootfs,
        plan,
    })
}

/// Records the container as "creating" and makes its cgroup with every limit set, before the
/// init exists. Returns the state and the cgroup's directories.
fn save_creating(
    o: &CreateOptions,
    p: &Prepared,
    linux: &Linux,
    undo: &mut Undo,
) -> Result<(State, Vec<PathBuf>)> {
    crate::util::fault::point("mkdir");
    let cg = cgroups::for_container(linux.cgroups_path().as_deref(), o.id)?;
    check_cgroup(&*cg)?;
    let cg = crate::rootless::cgroup_or_none(
        cg,
        linux.cgroups_path().as_deref(),
        linux.resources().as_ref(),
    )?;
    // Owned by the undo from here: a limit the kernel refuses must not leave the directories
    // behind. A cgroup refused above was not ours to remove.
    let cg = &**undo.cgroup.insert(cg);
    // Written before anything exists that a crash of this process could leave behind: a later
    // `delete` finds the cgroups through it, and `state` calls the container "creating" for as
    // long as this process lives.
    let me = nix::unistd::getpid().as_raw();
    let state = State {
        id: o.id.to_string(),
        pid: me,
        pid_start: crate::container::state::process_start_time(me).unwrap_or(0),
        bundle: p.bundle.clone(),
        rootfs: p.rootfs.clone(),
        created: crate::util::timefmt::rfc3339_now(),
        owner: String::new(),
        annotations: p.spec.annotations().clone().unwrap_or_default(),
        paused: false,
        cgroup_paths: cg.paths(),
        freezer_paths: cg.freezer_paths(),
        shared_pidns: !p.plan.creates(CloneFlags::CLONE_NEWPID),
        hooks: None,
        ociversion: crate::oci_state::OCI_VERSION.to_owned(),
        creating: true,
    };
    p.dir.save(&state)?;
    crate::util::fault::point("state");
    cg.create()?;
    // Limits and device rules are complete before the init joins: it may be creating device
    // nodes at that moment, and a half-written device list would refuse them.
    let mut resources = linux.resources().clone().unwrap_or_default();
    if resources.devices().is_none() {
        resources.set_devices(Some(vec![]));
    }
    cg.set(&resources)?;
    crate::util::fault::point("cgroup");
    Ok((state, cg.paths()))
}

/// runc's checks of a cgroup that exists already. A frozen one would freeze the init as it joins,
/// and `create` would wait for it forever: refused, and so is a cgroup below a frozen one (runc
/// 1.1 misses that case and hangs). Processes in it are only warned about, as runc 1.1 does.
fn check_cgroup(cg: &dyn CgroupManager) -> Result<()> {
    if let Some(why) = cg.frozen().refusal() {
        return Err(Error::msg(why));
    }
    let n = cg.pids().ctx("unable to get cgroup PIDs")?.len();
    if n > 0 {
        log::warn!("container's cgroup is not empty: {n} process(es) found");
    }
    Ok(())
}

/// How the init will wait for `start`: `run` releases it over the channel, `create` leaves it
/// reading the exec fifo.
fn exec_gate(dir: &StateDir, for_run: bool) -> Result<Gate> {
    if for_run {
        return Ok(Gate::Parent);
    }
    let fifo = dir.fifo();
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o622))
        .with_ctx(|| format!("mkfifo {}", fifo.display()))?;
    let fd = nix::fcntl::open(
        &fifo,
        nix::fcntl::OFlag::O_RDWR | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .with_ctx(|| format!("open {}", fifo.display()))?;
    Ok(Gate::Fifo(fd))
}

/// Everything the init takes with it across the clone.
fn init_args<'a>(
    o: &'a CreateOptions,
    p: &'a Prepared,
    cgroup_paths: Vec<PathBuf>,
    console: Option<OwnedFd>,
    gate: Gate,
    cgroup_first: bool,
) -> Result<InitArgs<'a>> {
    let listen_fds = crate::util::fds::listen_fds();
    let mut extra_env = Vec::new();
    if listen_fds > 0 {
        extra_env.push(format!("LISTEN_FDS={listen_fds}"));
        extra_env.push("LISTEN_PID=1".to_string());
    }
    let hooks = p.spec.hooks().as_ref();
    let parent_hooks = hooks.is_some_and(|h| {
        h.prestart().as_ref().is_some_and(|v| !v.is_empty())
            || h.create_runtime().as_ref().is_some_and(|v| !v.is_empty())
    });
    Ok(InitArgs {
        spec: &p.spec,
        rootfs: p.rootfs.clone(),
        bundle: p.bundle.clone(),
        plan: &p.plan,
        cgroup_paths,
        no_pivot: o.no_pivot,
        no_new_keyring: o.no_new_keyring,
        id: o.id,
        keep_fds: crate::util::fds::kept_fds(listen_fds, o.preserve_fds)?,
        extra_env,
        // A foreground run with a terminal gives the container the pty, not the caller's.
        callers_stdio: o.foreground && console.is_none(),
        console,
        gate,
        parent_hooks,
        cgroup_first,
    })
}

/// Clones the init, or, when namespaces are joined by path, the intermediate process that forks
/// it. In the child this never returns. Returns our end of the channel, the child's pid and
/// whether it started in its cgroup already.
fn clone_init(args: InitArgs, plan: &Plan, undo: &mut Undo) -> Result<(sync::Channel, i32, bool)> {
    let (parent, child) = sync::pair()?;
    let two_stage = plan.two_stage();
    let flags = if two_stage {
        CloneFlags::empty()
    } else {
        plan.new
    };
    // On cgroup v2 the init starts in its cgroup, whose limits are set already: moving it in
    // afterwards costs an RCU grace period. Not an intermediate process, which would count
    // against the container's pids limit beside the init it forks. Whatever the kernel refuses
    // goes the old way, which reports its errors as before.
    let target = undo.cgroup.as_ref().filter(|_| !two_stage);
    let mut in_cgroup = false;
    let mut first = None;
    if let Some(fd) = target.and_then(|cg| cg.clone_target()) {
        match namespaces::clone_into_cgroup(flags, fd.as_fd()) {
            Ok(pid) => {
                first = Some(pid);
                in_cgroup = true;
            }
            Err(e) => log::debug!("clone3 into the cgroup: {e}; the init will be moved in"),
        }
    }
    let first = match first {
        Some(pid) => pid,
        None => namespaces::clone(flags)?,
    };
    if first == 0 {
        drop(parent);
        if two_stage {
            init::intermediate_main(args, child)
        } else {
            init::init_main(args, child)
        }
    }
    drop(child);
    // The parent keeps none of the container's fds (fifo, console).
    drop(args);
    undo.pids.push(first);
    crate::util::fault::point("clone");
    Ok((parent, first, in_cgroup))
}

/// Writes the id maps of a new user namespace (as root on the host) and learns the init's pid,
/// which the intermediate process sends before it exits.
fn init_pid(
    chan: &sync::Channel,
    first: i32,
    plan: &Plan,
    linux: &Linux,
    undo: &mut Undo,
) -> Result<i32> {
    let uids = linux.uid_mappings().as_deref().unwrap_or(&[]);
    let gids = linux.gid_mappings().as_deref().unwrap_or(&[]);
    if !plan.two_stage() {
        if plan.creates(CloneFlags::CLONE_NEWUSER) {
            namespaces::write_id_maps(first, uids, gids, "linux")?;
            tell(chan, &Msg::Go)?;
        }
        return Ok(first);
    }
    let init_pid = loop {
        match recv(chan)? {
            Msg::Maps(p) => {
                namespaces::write_id_maps(p, uids, gids, "linux")?;
                tell(chan, &Msg::Go)?;
            }
            Msg::Pid(p) => break p,
            other => {
                return Err(Error::Protocol {
                    from: "init",
                    msg: format!("{other:?}"),
                })
            }
        }
    };
    nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(first), None)
        .ctx("wait for intermediate process")?;
    undo.pids = vec![init_pid];
    Ok(init_pid)
}

/// Opens the bind sources the init cannot open itself (see mount_sources) and hands them over.
fn send_mount_sources(chan: &sync::Channel, p: &Prepared, init_pid: i32) -> Result<()> {
    let fds = crate::container::mount_sources::open(&p.spec, &p.plan, &p.bundle, init_pid)?;
    if fds.is_empty() {
        return Ok(());
    }
    // As in `tell`: if the init is gone, its last words say why.
    chan.send_fds(&fds).map_err(|e| match recv(chan) {
        Err(reason) => reason,
        Ok(_) => e,
    })
}

/// Puts the init in its cgroup, unless it started there. The init sets up its rootfs meanwhile,
/// and waits for this before anything that must happen inside the cgroup (cgroup namespace,
/// hooks, exec).
fn join_cgroup(chan: &sync::Channel, undo: &Undo, init_pid: i32, in_cgroup: bool) -> Result<()> {
    let cg = undo
        .cgroup
        .as_ref()
        .ok_or_else(|| Error::msg("cgroup manager missing"))?;
    if !in_cgroup {
        cg.apply(init_pid)?;
    }
    crate::util::fault::point("apply");
    tell(chan, &Msg::Go)
}

/// Serves the init until it is ready: the prestart and createRuntime hooks run here, in the
/// runtime's namespaces, and a seccomp listener goes to its agent.
fn serve_init(
    chan: &sync::Channel,
    p: &Prepared,
    linux: &Linux,
    state: &State,
    init_pid: i32,
) -> Result<()> {
    let hooks = p.spec.hooks().as_ref();
    loop {
        match recv(chan)? {
            Msg::Hooks => {
                crate::util::fault::point("hooks");
                log::debug!("running prestart and createRuntime hooks");
                let s = state.spec_state(Status::Creating);
                if let Some(h) = hooks {
                    let dir = Some(p.bundle.as_path());
                    crate::hooks::run_hooks(h.prestart().as_ref(), &s, dir)?;
                    crate::hooks::run_hooks(h.create_runtime().as_ref(), &s, dir)?;
                }
                tell(chan, &Msg::Go)?;
            }
            Msg::Seccomp(fd) => {
                let s = linux
                    .seccomp()
                    .as_ref()
                    .ok_or_else(|| Error::msg("unexpected seccomp listener from init"))?;
                let st = state.oci_state(Status::Creating);
                log::debug!("sending the seccomp listener to its agent");
                crate::init::seccomp::notify::deliver(s, &p.bundle, init_pid, fd, st)
                    .ctx("unable to start container process")?;
                tell(chan, &Msg::Go)?;
            }
            Msg::Ready => return Ok(()),
            other => {
                return Err(Error::Protocol {
                    from: "init",
                    msg: format!("{other:?}"),
                })
            }
        }
    }
}

/// Saves what `exec` needs and the state as created, then the --pid-file.
fn save_created(o: &CreateOptions, p: &Prepared, linux: &Linux, state: &mut State) -> Result<()> {
    let process = p
        .spec
        .process()
        .clone()
        .ok_or_else(|| Error::msg("process: missing"))?;
    p.dir.save_exec_base(&crate::container::state::ExecBase {
        process,
        seccomp: linux.seccomp().clone(),
        personality: linux.personality().clone(),
        memory_policy: linux.memory_policy().clone(),
    })?;
    state.creating = false;
    p.dir.save(state)?;
    crate::util::fault::point("saved");
    if let Some(path) = o.pid_file {
        write_pid_file(path, state.pid)?;
    }
    Ok(())
}

/// Waits for the released init to exec the user's program: the channel is close-on-exec, so
/// its end of file means the program runs; a message instead says why it does not.
pub fn wait_exec(chan: &sync::Channel) -> Result<()> {
    match chan.recv()? {
        None => Ok(()),
        Some(Msg::Fail(m)) => Err(Error::StartFailed(m)),
        Some(other) => Err(Error::Protocol {
            from: "init",
            msg: format!("{other:?}"),
        }),
    }
}

/// Sends to the init; if it has already died, its last words explain why better than EPIPE.
fn tell(chan: &sync::Channel, msg: &Msg) -> Result<()> {
    match chan.send(msg) {
        Ok(()) => Ok(()),
        Err(e) => match recv(chan) {
            Err(reason) => Err(reason),
            Ok(_) => Err(e),
        },
    }
}

/// The next message from the init; its exit without a word is an error too.
fn recv(chan: &sync::Channel) -> Result<Msg> {
    match chan.recv()? {
        Some(Msg::Fail(m)) => Err(Error::StartFailed(m)),
        Some(m) => Ok(m),
        None => Err(Error::StartFailed(
            "container init exited unexpectedly".into(),
        )),
    }
}

/// Written via a temporary file and rename, so a reader never sees a partial pid.
pub fn write_pid_file(path: &Path, pid: i32) -> Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    // runc's temporary name.
    let tmp = dir.join(format!(".{name}"));
    crate::util::create_file(&tmp)
        .and_then(|mut f| f.write_all(pid.to_string().as_bytes()))
        .with_ctx(|| format!("--pid-file: write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_ctx(|| format!("--pid-file: rename to {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: &str = r#"{"ociVersion":"1.0.2","root":{"path":"rootfs"},"process":{"cwd":"/","user":{"uid":0,"gid":0},"args":ARGS,"capabilities":{"bounding":CAPS}}}"#;

    fn spec(args: &str, caps: &str) -> String {
        MIN.replace("ARGS", args).replace("CAPS", caps)
    }

    #[test]
    fn a_bad_field_is_named() {
        let e = parse_spec(spec(r#""notalist""#, r#"["CAP_KILL"]"#).as_bytes()).unwrap_err();
        assert!(
            e.to_string().starts_with("config.json: args: invalid type"),
            "{e}"
        );
    }

    #[test]
    fn unknown_capabilities_are_dropped() {
        let s = parse_spec(spec(r#"["sh"]"#, r#"["CAP_KILL","CAP_BOGUS"]"#).as_bytes()).unwrap();
        let b = s
            .process()
            .as_ref()
            .unwrap()
            .capabilities()
            .as_ref()
            .unwrap()
            .bounding()
            .clone()
            .unwrap();
        assert_eq!(b.len(), 1);
    }

    #[test]
    fn scheduler_flags_in_the_runtime_specs_names() {
        use oci_spec::runtime::LinuxSchedulerFlag::*;
        let text = spec(r#"["sh"]"#, "[]").replace(
            r#""cwd":"/""#,
            r#""cwd":"/","scheduler":{"policy":"SCHED_OTHER","flags":["SCHED_FLAG_RESET_ON_FORK","SCHED_FLAG_DL_OVERRUN","SCHED_FLAG_KEEP_POLICY"]}"#,
        );
        let s = parse_spec(text.as_bytes()).unwrap();
        let p = s.process().as_ref().unwrap();
        let flags = p.scheduler().as_ref().unwrap().flags().clone().unwrap();
        assert_eq!(
            flags,
            [SchedResetOnFork, SchedFlagDLOverrun, SchedFlagKeepPolicy]
        );
        let bad = text.replace("SCHED_FLAG_KEEP_POLICY", "SCHED_FLAG_NOPE");
        let e = parse_spec(bad.as_bytes()).unwrap_err().to_string();
        assert!(
            e.contains("`SCHED_FLAG_RESET_ON_FORK`") && e.contains("`SCHED_FLAG_DL_OVERRUN`"),
            "{e}"
        );
    }

    #[test]
    fn intel_rdt_refusals() {
        let rdt = |v: serde_json::Value| -> oci_spec::runtime::LinuxIntelRdt {
            serde_json::from_value(v).unwrap()
        };
        let schema = rdt(serde_json::json!({"l3CacheSchema": "L3:0=f"}));
        assert!(intel_rdt_refusal(&schema, false)
            .to_string()
            .starts_with("intelRdt.l3CacheSchema is specified in config"));
        let clos = rdt(serde_json::json!({"closID": "gold"}));
        for resctrl in [false, true] {
            assert!(intel_rdt_refusal(&clos, resctrl)
                .to_string()
                .contains("intelRdt"));
            assert!(intel_rdt_refusal(&schema, true)
                .to_string()
                .contains("not supported by husk"));
        }
    }
}
