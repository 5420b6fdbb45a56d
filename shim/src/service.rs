//! The task service: every container of one shim (a pod's, when grouped), their init and exec
//! processes, exits from the shim's reaper, and events to containerd in protocol order.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    sync::{Arc, Condvar, Mutex, MutexGuard},
};

use containerd_shim::{
    api::{self, Empty, Status},
    monitor::{Subject, Topic},
    protos::{
        events::task::{
            TaskCheckpointed, TaskCreate, TaskDelete, TaskExecAdded, TaskExecStarted, TaskExit,
            TaskIO, TaskPaused, TaskResumed, TaskStart,
        },
        protobuf::{
            well_known_types::{any::Any, timestamp::Timestamp},
            Message,
        },
        shim::oci::Options,
        ttrpc::{self, Code},
        types::task::ProcessInfo,
    },
    synchronous::monitor::monitor_subscribe,
    util::{timestamp, write_options},
    ExitSignal, Task, TtrpcContext, TtrpcResult,
};
use log::{error, warn};

use crate::{
    checkpoint::{self, Restore},
    events::{Events, PUBLISH_TIMEOUT},
    io::{self, ConsoleSocket, Paths},
    oom::Oom,
    runtime::{command_timeout, find_binary, Runtime, DEFAULT_BINARY, DEFAULT_ROOT},
    stats,
};

use crate::cri_options::{self, RUNC_OPTIONS};

/// Left in the bundle by a Delete whose runtime command removed the container: the binary's
/// `delete`, which containerd runs after the shim disconnects, then has no runtime command
/// to run.
pub const DELETED_MARK: &str = "husk-shim-deleted";

fn err(code: Code, msg: impl std::fmt::Display) -> ttrpc::Error {
    ttrpc::Error::RpcStatus(ttrpc::get_status(code, msg))
}

struct Process {
    pid: u32,
    status: Status,
    exit_status: u32,
    exited_at: Option<Timestamp>,
    paths: Paths,
    io: io::Io,
    /// Exec only: the process's spec, as containerd sent it (JSON).
    spec: Vec<u8>,
    /// Set once the start (or exec-started) event has gone, so that an exit that comes first
    /// waits for it.
    started: bool,
}

impl Process {
    fn new(paths: Paths) -> Self {
        Process {
            pid: 0,
            status: Status::CREATED,
            exit_status: 0,
            exited_at: None,
            paths,
            io: io::Io::default(),
            spec: Vec::new(),
            started: false,
        }
    }
}

struct Container {
    bundle: String,
    runtime: Runtime,
    rootfs_mounted: bool,
    /// Without a pid namespace of its own, the container's other processes outlive its init:
    /// the shim kills them when it exits, as the Go shim does.
    kill_all_on_exit: bool,
    /// runc's options' IoUid/IoGid: who owns the pipes of the container's processes.
    io_owner: Option<(u32, u32)>,
    /// Created from a checkpoint: Start restores it instead of starting it.
    restore: Option<Restore>,
    init: Process,
    execs: HashMap<String, Process>,
}

impl Container {
    fn process(&mut self, exec_id: &str) -> TtrpcResult<&mut Process> {
        if exec_id.is_empty() {
            return Ok(&mut self.init);
        }
        self.execs
            .get_mut(exec_id)
            .ok_or_else(|| err(Code::NOT_FOUND, format!("process {exec_id} does not exist")))
    }
}

#[derive(Default)]
struct Inner {
    containers: HashMap<String, Container>,
    /// Runtime creates and execs under way: until their process's pid is known, exits of
    /// unknown pids are kept here, and only then, so that a reused pid is never matched.
    in_flight: usize,
    early: HashMap<u32, u32>,
}

pub struct Service {
    inner: Arc<(Mutex<Inner>, Condvar)>,
    oom: Option<Arc<Oom>>,
    events: Events,
    exit: Arc<ExitSignal>,
    namespace: String,
}

impl Service {
    pub fn new(namespace: &str, exit: Arc<ExitSignal>) -> Self {
        let inner: Arc<(Mutex<Inner>, Condvar)> = Arc::default();
        let events = Events::start(namespace).expect("spawn the events thread");
        // Subscribed before any child exists, so that no exit is missed.
        let sub = monitor_subscribe(Topic::All).expect("subscribe to exits");
        let (reaped, tx2) = (inner.clone(), events.clone());
        std::thread::Builder::new()
            .name("exits".into())
            .stack_size(128 * 1024)
            .spawn(move || {
                for ev in sub.rx.iter() {
                    if let Subject::Pid(pid) = ev.subject {
                        on_exit(&reaped, &tx2, pid as u32, ev.exit_code as u32);
                    }
                }
            })
            .expect("spawn the exits thread");
        let oom = Oom::start(events.clone())
            .map_err(|e| warn!("oom watcher: {e}"))
            .ok();
        Service {
            inner,
            oom,
            events,
            exit,
            namespace: namespace.to_string(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.0.lock().unwrap()
    }

    fn send(&self, topic: &'static str, event: impl Message) {
        self.events.send(topic, &event);
    }

    fn container<'a>(inner: &'a mut Inner, id: &str) -> TtrpcResult<&'a mut Container> {
        inner
            .containers
            .get_mut(id)
            .ok_or_else(|| err(Code::NOT_FOUND, format!("container {id} does not exist")))
    }

    fn runtime_of(&self, id: &str) -> TtrpcResult<Runtime> {
        Ok(Self::container(&mut self.lock(), id)?.runtime.clone())
    }

    fn runtime_for(&self, bundle: &str, options: &Options) -> Result<Runtime, String> {
        let (name, root) = binary_and_root(options);
        Ok(Runtime {
            binary: find_binary(name)?,
            root: Path::new(root).join(&self.namespace),
            log: Path::new(bundle).join("log.json"),
            systemd_cgroup: options.systemd_cgroup,
            criu: criu_path(options),
            timeout: command_timeout(),
        })
    }

    /// Runs a create or exec, reads its process's pid from `pid_file`, and hands it to
    /// `register` together with the process's exit status if it has exited already. Exits are
    /// attributed under the same lock as `register` runs, so each is either seen here (kept in
    /// `early`) or finds the registered process.
    fn run_with_pid(
        &self,
        rt: &Runtime,
        what: &str,
        args: &[&str],
        stdio: Option<[std::fs::File; 3]>,
        pid_file: &Path,
        register: impl FnOnce(&mut Inner, u32, Option<u32>) -> Result<(), String>,
    ) -> Result<u32, String> {
        self.lock().in_flight += 1;
        let res = rt.run(what, args, stdio).and_then(|_| {
            std::fs::read_to_string(pid_file)
                .ok()
                .and_then(|s| s.trim().parse::<u32>().ok())
                .ok_or_else(|| {
                    format!(
                        "OCI runtime {what} failed: no pid in {}",
                        pid_file.display()
                    )
                })
        });
        let mut inner = self.lock();
        inner.in_flight -= 1;
        let res = res.and_then(|pid| {
            let early = inner.early.remove(&pid);
            register(&mut inner, pid, early).map(|_| pid)
        });
        if inner.in_flight == 0 {
            inner.early.clear();
        }
        res
    }

    fn start_process(&self, id: &str, exec_id: &str) -> TtrpcResult<u32> {
        if exec_id.is_empty() {
            let rt = self.runtime_of(id)?;
            let restore = {
                let mut inner = self.lock();
                let c = Self::container(&mut inner, id)?;
                if c.init.status != Status::CREATED {
                    return Err(err(
                        Code::FAILED_PRECONDITION,
                        format!("container {id} is not created"),
                    ));
                }
                c.restore.take()
            };
            if let Some(r) = restore {
                return self.restore_init(id, r);
            }
            rt.run("start", &["start", id], None)
                .map_err(|e| err(Code::UNKNOWN, e))?;
            let mut inner = self.lock();
            let c = Self::container(&mut inner, id)?;
            let p = &mut c.init;
            if p.status == Status::CREATED {
                p.status = Status::RUNNING;
            }
            self.started(id, "", p);
            return Ok(p.pid);
        }
        let (rt, bundle, owner, paths, spec) = {
            let mut inner = self.lock();
            let c = Self::container(&mut inner, id)?;
            let (rt, bundle, owner) = (c.runtime.clone(), c.bundle.clone(), c.io_owner);
            let p = c.process(exec_id)?;
            if p.status != Status::CREATED {
                return Err(err(
                    Code::FAILED_PRECONDITION,
                    format!("process {exec_id} is not created"),
                ));
            }
            let paths = paths_of(
                &p.paths.stdin,
                &p.paths.stdout,
                &p.paths.stderr,
                p.paths.terminal,
            );
            (rt, bundle, owner, paths, p.spec.clone())
        };
        let dir = Path::new(&bundle);
        let process_json = dir.join(format!("{exec_id}.json"));
        let pid_file = dir.join(format!("{exec_id}.pid"));
        std::fs::write(&process_json, &spec)
            .map_err(|e| err(Code::UNKNOWN, format!("write process spec: {e}")))?;
        let res = self.exec_with_io(&rt, id, exec_id, (&paths, owner), &process_json, &pid_file);
        // Only the runtime reads them, during the exec.
        let _ = std::fs::remove_file(&process_json);
        let _ = std::fs::remove_file(&pid_file);
        let (pid, io) = res.map_err(|e| err(Code::UNKNOWN, e))?;
        let mut inner = self.lock();
        let p = Self::container(&mut inner, id)?.process(exec_id)?;
        p.io = io;
        self.started(id, exec_id, p);
        Ok(pid)
    }

    /// Sends the start (or exec-started) event, then the exit that came before it, if one did.
    fn started(&self, id: &str, exec_id: &str, p: &mut Process) {
        if exec_id.is_empty() {
            self.send(
                "/tasks/start",
                TaskStart {
                    container_id: id.into(),
                    pid: p.pid,
                    ..Default::default()
                },
            );
        } else {
            self.send(
                "/tasks/exec-started",
                TaskExecStarted {
                    container_id: id.into(),
                    exec_id: exec_id.into(),
                    pid: p.pid,
                    ..Default::default()
                },
            );
        }
        p.started = true;
        if p.status == Status::STOPPED {
            let pid_id = if exec_id.is_empty() { id } else { exec_id };
            self.send("/tasks/exit", exit_event(id, pid_id, p));
        }
    }

    fn exec_with_io(
        &self,
        rt: &Runtime,
        id: &str,
        exec_id: &str,
        (paths, owner): (&Paths, Option<(u32, u32)>),
        process_json: &Path,
        pid_file: &Path,
    ) -> Result<(u32, io::Io), String> {
        let process = process_json.to_string_lossy();
        let pid_path = pid_file.to_string_lossy();
        let mut args = vec![
            "exec",
            "--process",
            &process,
            "--detach",
            "--pid-file",
            &pid_path,
        ];
        let register = |inner: &mut Inner, pid: u32, early: Option<u32>| {
            let p = Self::container(inner, id)
                .and_then(|c| c.process(exec_id))
                .map_err(|_| format!("process {exec_id} was deleted during its start"))?;
            p.pid = pid;
            p.status = Status::RUNNING;
            if let Some(code) = early {
                set_exited(p, code);
                self.inner.1.notify_all();
            }
            Ok(())
        };
        if paths.terminal {
            let sock = ConsoleSocket::new().map_err(|e| format!("console socket: {e}"))?;
            let sock_path = sock.path.to_string_lossy().into_owned();
            args.extend(["--console-socket", &sock_path, id]);
            let pid = self.run_with_pid(rt, "exec", &args, None, pid_file, register)?;
            // The process runs: a failure here costs it its terminal, not its exit status.
            let io = sock.receive(paths).unwrap_or_else(|e| {
                error!("exec {exec_id}: console: {e}");
                io::Io::default()
            });
            Ok((pid, io))
        } else {
            let (stdio, io) = io::open_pipes(paths, id, &self.namespace, owner)
                .map_err(|e| format!("stdio: {e}"))?;
            args.push(id);
            let pid = self.run_with_pid(rt, "exec", &args, Some(stdio), pid_file, register)?;
            Ok((pid, io))
        }
    }
}

/// runc options' CriuPath (field 8), which containerd 1.6 and 1.7 still send and the protos this
/// shim is built with (containerd 2.0's) have dropped.
pub(crate) fn criu_path(options: &Options) -> String {
    use containerd_shim::protos::protobuf::UnknownValueRef;
    match options.special_fields.unknown_fields().get(8) {
        Some(UnknownValueRef::LengthDelimited(b)) => String::from_utf8_lossy(b).into_owned(),
        _ => String::new(),
    }
}

/// The runtime options containerd writes on `start`'s stdin (an Any), if any.
pub fn parse_start_options(data: &[u8]) -> Result<Option<Options>, String> {
    if data.is_empty() {
        return Ok(None);
    }
    let any = Any::parse_from_bytes(data).map_err(|e| format!("runtime options: {e}"))?;
    options_from(Some(&any)).map(Some)
}

/// runc's options from what containerd sent: runc's own type; the CRI plugin's, whose TOML
/// carries runc's options (cri_options.rs); or none.
fn options_from(any: Option<&Any>) -> Result<Options, String> {
    match any {
        // An empty Any is no options (a container restored by ctr carries one).
        None => Ok(Options::default()),
        Some(any) if any.type_url.is_empty() && any.value.is_empty() => Ok(Options::default()),
        Some(any) if any.type_url.ends_with(RUNC_OPTIONS) => {
            Options::parse_from_bytes(&any.value).map_err(|e| format!("runtime options: {e}"))
        }
        Some(any) if any.type_url.ends_with(cri_options::TYPE) => cri_options::parse(&any.value),
        Some(any) => Err(format!("unknown runtime options type {:?}", any.type_url)),
    }
}

impl Service {
    fn do_create(&self, req: &api::CreateTaskRequest) -> Result<u32, String> {
        let options = options_from(req.options.as_ref())?;
        let rt = self.runtime_for(&req.bundle, &options)?;
        let bundle = Path::new(&req.bundle);
        // What `delete` reads when this shim is gone.
        write_options(&req.bundle, &options).map_err(|e| format!("write options: {e}"))?;
        let rootfs = bundle.join("rootfs");
        let mut mounted = false;
        for m in &req.rootfs {
            std::fs::create_dir_all(&rootfs)
                .map_err(|e| format!("mkdir {}: {e}", rootfs.display()))?;
            if let Err(e) = containerd_shim::mount::mount_rootfs(
                Some(&m.type_),
                Some(&m.source),
                &m.options,
                &rootfs,
            ) {
                if mounted {
                    unmount_rootfs(&rootfs);
                }
                return Err(format!("mount rootfs: {e}"));
            }
            mounted = true;
        }
        let container = Container {
            bundle: req.bundle.clone(),
            runtime: rt.clone(),
            rootfs_mounted: mounted,
            kill_all_on_exit: shares_pid_namespace(bundle),
            io_owner: (options.io_uid != 0 || options.io_gid != 0)
                .then_some((options.io_uid, options.io_gid)),
            restore: (!req.checkpoint.is_empty()).then(|| Restore {
                image: req.checkpoint.clone(),
                parent: req.parent_checkpoint.clone(),
                work: options.criu_work_path.clone(),
                no_pivot: options.no_pivot_root,
            }),
            init: Process::new(paths_of(&req.stdin, &req.stdout, &req.stderr, req.terminal)),
            execs: HashMap::new(),
        };
        // As with the Go shim, the runtime first hears of a restored container at Start.
        let res = if container.restore.is_some() {
            self.lock().containers.insert(req.id.clone(), container);
            Ok(0)
        } else {
            self.create_with_io(req, &rt, bundle, &options, container)
        };
        match res {
            Ok(pid) => {
                if pid != 0 {
                    self.watch_oom(&req.id, pid);
                }
                self.send(
                    "/tasks/create",
                    TaskCreate {
                        container_id: req.id.clone(),
                        bundle: req.bundle.clone(),
                        rootfs: req.rootfs.clone(),
                        io: Some(TaskIO {
                            stdin: req.stdin.clone(),
                            stdout: req.stdout.clone(),
                            stderr: req.stderr.clone(),
                            terminal: req.terminal,
                            ..Default::default()
                        })
                        .into(),
                        checkpoint: req.checkpoint.clone(),
                        pid,
                        ..Default::default()
                    },
                );
                Ok(pid)
            }
            Err(e) => {
                self.lock().containers.remove(&req.id);
                // Whatever the runtime left of the container goes too.
                let _ = rt.run("delete", &["delete", "--force", &req.id], None);
                if mounted {
                    unmount_rootfs(&rootfs);
                }
                Err(e)
            }
        }
    }

    /// Runs the runtime's create or restore of a container's init, with its stdio (a console
    /// socket or pipes) after `args` and the id last.
    #[allow(clippy::too_many_arguments)]
    fn run_init(
        &self,
        rt: &Runtime,
        what: &str,
        mut args: Vec<String>,
        id: &str,
        paths: &Paths,
        owner: Option<(u32, u32)>,
        pid_file: &Path,
        register: impl FnOnce(&mut Inner, u32, Option<u32>) -> Result<(), String>,
    ) -> Result<(u32, io::Io), String> {
        if paths.terminal {
            let sock = ConsoleSocket::new().map_err(|e| format!("console socket: {e}"))?;
            args.extend([
                "--console-socket".into(),
                sock.path.display().to_string(),
                id.into(),
            ]);
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let pid = self.run_with_pid(rt, what, &args, None, pid_file, register)?;
            let io = sock.receive(paths).map_err(|e| format!("console: {e}"))?;
            Ok((pid, io))
        } else {
            let (stdio, io) = io::open_pipes(paths, id, &self.namespace, owner)
                .map_err(|e| format!("stdio: {e}"))?;
            args.push(id.into());
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let pid = self.run_with_pid(rt, what, &args, Some(stdio), pid_file, register)?;
            Ok((pid, io))
        }
    }

    /// Start of a container created from a checkpoint: the runtime restores it, running.
    fn restore_init(&self, id: &str, r: Restore) -> TtrpcResult<u32> {
        let (rt, bundle, owner, paths) = {
            let mut inner = self.lock();
            let c = Self::container(&mut inner, id)?;
            let p = &c.init.paths;
            let paths = paths_of(&p.stdin, &p.stdout, &p.stderr, p.terminal);
            (c.runtime.clone(), c.bundle.clone(), c.io_owner, paths)
        };
        let bundle = PathBuf::from(bundle);
        let pid_file = bundle.join("init.pid");
        let register = |inner: &mut Inner, pid: u32, early: Option<u32>| {
            let p = &mut Self::container(inner, id)
                .map_err(|_| format!("container {id} was deleted during its restore"))?
                .init;
            p.pid = pid;
            p.status = Status::RUNNING;
            if let Some(code) = early {
                set_exited(p, code);
            }
            Ok(())
        };
        let args = r.args(&bundle, &pid_file);
        let (pid, io) = self
            .run_init(&rt, "restore", args, id, &paths, owner, &pid_file, register)
            .map_err(|e| {
                // Whatever the runtime left of a restore that failed goes.
                let _ = rt.run("delete", &["delete", "--force", id], None);
                err(Code::UNKNOWN, e)
            })?;
        self.watch_oom(id, pid);
        let mut inner = self.lock();
        let c = Self::container(&mut inner, id)?;
        c.init.io = io;
        self.started(id, "", &mut c.init);
        Ok(pid)
    }

    /// cgroup v2: the cgroup of the container's init, read as containerd's Go shim reads it.
    fn stats_v2(&self, id: &str) -> TtrpcResult<api::StatsResponse> {
        let (pid, status) = {
            let mut inner = self.lock();
            let init = &Self::container(&mut inner, id)?.init;
            (init.pid, init.status)
        };
        // A stopped init's pid may be another process's by now; runc's `events` refuses too.
        let dir = (pid != 0 && status != Status::STOPPED)
            .then(|| stats::cgroup2_dir(pid))
            .flatten()
            .ok_or_else(|| {
                err(
                    Code::NOT_FOUND,
                    format!("stats: container {id} has no running process"),
                )
            })?;
        let metrics = stats::v2_metrics(&dir)
            .map_err(|e| err(Code::NOT_FOUND, format!("stats: {}: {e}", dir.display())))?;
        let any = Any {
            type_url: stats::V2_METRICS.to_string(),
            value: metrics
                .write_to_bytes()
                .map_err(|e| err(Code::UNKNOWN, format!("stats: {e}")))?,
            ..Default::default()
        };
        Ok(api::StatsResponse {
            stats: Some(any).into(),
            ..Default::default()
        })
    }

    fn watch_oom(&self, id: &str, pid: u32) {
        if let Some(oom) = &self.oom {
            if let Err(e) = oom.watch(id, pid) {
                warn!("watch {id} for oom: {e}");
            }
        }
    }

    fn create_with_io(
        &self,
        req: &api::CreateTaskRequest,
        rt: &Runtime,
        bundle: &Path,
        options: &Options,
        container: Container,
    ) -> Result<u32, String> {
        let pid_file = bundle.join("init.pid");
        let owner = container.io_owner;
        let (b, p) = (bundle.to_string_lossy(), pid_file.to_string_lossy());
        let mut args: Vec<String> = ["create", "--bundle", &b, "--pid-file", &p]
            .map(String::from)
            .into();
        if options.no_pivot_root {
            args.push("--no-pivot".into());
        }
        if options.no_new_keyring {
            args.push("--no-new-keyring".into());
        }
        let register = |inner: &mut Inner, pid: u32, early: Option<u32>| {
            let mut c = container;
            c.init.pid = pid;
            if let Some(code) = early {
                set_exited(&mut c.init, code);
            }
            inner.containers.insert(req.id.clone(), c);
            Ok(())
        };
        let (pid, io) = self.run_init(
            rt,
            "create",
            args,
            &req.id,
            &c_paths(req),
            owner,
            &pid_file,
            register,
        )?;
        let mut inner = self.lock();
        if let Some(c) = inner.containers.get_mut(&req.id) {
            c.init.io = io;
        }
        Ok(pid)
    }
}

fn c_paths(req: &api::CreateTaskRequest) -> Paths {
    paths_of(&req.stdin, &req.stdout, &req.stderr, req.terminal)
}

fn paths_of(stdin: &str, stdout: &str, stderr: &str, terminal: bool) -> Paths {
    Paths {
        stdin: stdin.into(),
        stdout: stdout.into(),
        stderr: stderr.into(),
        terminal,
    }
}

fn now() -> Timestamp {
    timestamp().unwrap_or_default()
}

fn set_exited(p: &mut Process, code: u32) {
    p.status = Status::STOPPED;
    p.exit_status = code;
    p.exited_at = Some(now());
}

fn exit_event(container_id: &str, id: &str, p: &Process) -> TaskExit {
    TaskExit {
        container_id: container_id.into(),
        id: id.into(),
        pid: p.pid,
        exit_status: p.exit_status,
        exited_at: p.exited_at.clone().into(),
        ..Default::default()
    }
}

fn unmount_rootfs(rootfs: &Path) {
    if let Err(e) = containerd_shim::mount::umount_recursive(rootfs.to_str(), libc::MNT_DETACH) {
        error!("unmount {}: {e}", rootfs.display());
    }
}

/// One reaped child: a container's init or exec process, a process of a create or exec that
/// has not told its pid yet, or anything else (a runtime command, an orphan), which is dropped.
/// `kill --all` of a container whose init has exited; not on the exits thread, which the
/// command's own exit goes through.
fn kill_all_of(rt: Runtime, id: String) {
    let spawned = std::thread::Builder::new()
        .name("kill-all".into())
        .stack_size(64 * 1024)
        .spawn(move || {
            if let Err(e) = rt.run("kill", &["kill", "--all", &id, "9"], None) {
                warn!("{id}: kill the processes left after init's exit: {e}");
            }
        });
    if let Err(e) = spawned {
        warn!("{e}");
    }
}

/// True when the spec at `bundle` asks for no new pid namespace (it joins one or shares the
/// shim's); false also when the spec cannot be read, so that nothing is killed by mistake.
fn shares_pid_namespace(bundle: &Path) -> bool {
    let spec = std::fs::read(bundle.join("config.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok());
    let Some(spec) = spec else {
        return false;
    };
    !spec["linux"]["namespaces"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|ns| ns["type"] == "pid" && ns["path"].as_str().unwrap_or("").is_empty())
}

fn on_exit(inner: &Arc<(Mutex<Inner>, Condvar)>, events: &Events, pid: u32, code: u32) {
    let mut guard = inner.0.lock().unwrap();
    let g = &mut *guard;
    for (cid, c) in g.containers.iter_mut() {
        let is_init = c.init.pid == pid && c.init.status != Status::STOPPED;
        let kill_all = (is_init && c.kill_all_on_exit).then(|| c.runtime.clone());
        let found = if is_init {
            Some((cid.as_str(), &mut c.init))
        } else {
            c.execs
                .iter_mut()
                .find(|(_, p)| p.pid == pid && p.status != Status::STOPPED)
                .map(|(eid, p)| (eid.as_str(), p))
        };
        if let Some((id, p)) = found {
            // A terminal's last output may still be in the pty when its process exits. The exit
            // (event and Wait) waits until the copy has put it in the client's FIFO: reported
            // before, ctr run -t lost a short-lived container's output (the copy got EPIPE).
            // Not on this thread, which serves every exit.
            let terminal_done = p.paths.terminal.then(|| p.io.output_done.take()).flatten();
            if let Some(done) = terminal_done {
                let (inner, events) = (inner.clone(), events.clone());
                let fifos = p.io.output_fifos.clone();
                let waiter = std::thread::Builder::new()
                    .name("exit-output".into())
                    .stack_size(64 * 1024)
                    .spawn(move || {
                        io::Io::wait_output(Some(done), &fifos);
                        // The copy is over: this time the exit is published at once.
                        on_exit(&inner, &events, pid, code);
                    });
                if waiter.is_ok() {
                    return;
                }
                // No thread: the exit goes now, the output perhaps after it.
            }
            set_exited(p, code);
            // Before its start event, the exit waits for it (see Service::started).
            if p.started {
                events.send("/tasks/exit", &exit_event(cid, id, p));
            }
            inner.1.notify_all();
            if let Some(rt) = kill_all {
                kill_all_of(rt, cid.clone());
            }
            return;
        }
    }
    if g.in_flight > 0 {
        g.early.insert(pid, code);
    }
}

impl Task for Service {
    fn create(
        &self,
        _: &TtrpcContext,
        req: api::CreateTaskRequest,
    ) -> TtrpcResult<api::CreateTaskResponse> {
        if self.lock().containers.contains_key(&req.id) {
            return Err(err(
                Code::ALREADY_EXISTS,
                format!("container {} already exists", req.id),
            ));
        }
        // A bundle left from an earlier task of this id must not skip a cleanup for this one.
        match std::fs::remove_file(Path::new(&req.bundle).join(DELETED_MARK)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(err(
                    Code::UNKNOWN,
                    format!("remove {}/{DELETED_MARK}: {e}", req.bundle),
                ))
            }
            _ => {}
        }
        let pid = self.do_create(&req).map_err(|e| err(Code::UNKNOWN, e))?;
        Ok(api::CreateTaskResponse {
            pid,
            ..Default::default()
        })
    }

    fn start(&self, _: &TtrpcContext, req: api::StartRequest) -> TtrpcResult<api::StartResponse> {
        let pid = self.start_process(&req.id, &req.exec_id)?;
        Ok(api::StartResponse {
            pid,
            ..Default::default()
        })
    }

    fn state(&self, _: &TtrpcContext, req: api::StateRequest) -> TtrpcResult<api::StateResponse> {
        let mut inner = self.lock();
        let c = Self::container(&mut inner, &req.id)?;
        let bundle = c.bundle.clone();
        let p = c.process(&req.exec_id)?;
        Ok(api::StateResponse {
            id: if req.exec_id.is_empty() {
                req.id.clone()
            } else {
                req.exec_id.clone()
            },
            bundle,
            pid: p.pid,
            status: p.status.into(),
            stdin: p.paths.stdin.clone(),
            stdout: p.paths.stdout.clone(),
            stderr: p.paths.stderr.clone(),
            terminal: p.paths.terminal,
            exit_status: p.exit_status,
            exited_at: p.exited_at.clone().into(),
            exec_id: req.exec_id.clone(),
            ..Default::default()
        })
    }

    fn wait(&self, _: &TtrpcContext, req: api::WaitRequest) -> TtrpcResult<api::WaitResponse> {
        let mut inner = self.lock();
        loop {
            let p = Self::container(&mut inner, &req.id)?.process(&req.exec_id)?;
            if p.status == Status::STOPPED {
                return Ok(api::WaitResponse {
                    exit_status: p.exit_status,
                    exited_at: p.exited_at.clone().into(),
                    ..Default::default()
                });
            }
            inner = self.inner.1.wait(inner).unwrap();
        }
    }

    fn kill(&self, _: &TtrpcContext, req: api::KillRequest) -> TtrpcResult<Empty> {
        let (rt, pid, stopped) = {
            let mut inner = self.lock();
            let c = Self::container(&mut inner, &req.id)?;
            let rt = c.runtime.clone();
            let p = c.process(&req.exec_id)?;
            (rt, p.pid, p.status == Status::STOPPED)
        };
        if stopped {
            return Err(err(Code::NOT_FOUND, "process already finished"));
        }
        if req.exec_id.is_empty() {
            let sig = req.signal.to_string();
            let mut args = vec!["kill"];
            if req.all {
                args.push("--all");
            }
            args.extend([req.id.as_str(), &sig]);
            rt.run("kill", &args, None)
                .map_err(|e| err(Code::UNKNOWN, e))?;
        } else {
            let sig = nix::sys::signal::Signal::try_from(req.signal as i32).map_err(|_| {
                err(
                    Code::INVALID_ARGUMENT,
                    format!("invalid signal {}", req.signal),
                )
            })?;
            nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), sig)
                .map_err(|e| err(Code::NOT_FOUND, format!("kill process {pid}: {e}")))?;
        }
        Ok(Empty::new())
    }

    fn delete(
        &self,
        _: &TtrpcContext,
        req: api::DeleteRequest,
    ) -> TtrpcResult<api::DeleteResponse> {
        if !req.exec_id.is_empty() {
            let mut inner = self.lock();
            let c = Self::container(&mut inner, &req.id)?;
            let p = c.process(&req.exec_id)?;
            if p.status == Status::RUNNING {
                return Err(err(
                    Code::FAILED_PRECONDITION,
                    format!("process {} is running", req.exec_id),
                ));
            }
            let mut p = c.execs.remove(&req.exec_id).expect("looked up above");
            p.io.close_stdin();
            drop(inner);
            io::Io::finish_output(p.io.output_done.take(), &p.io.output_fifos);
            return Ok(api::DeleteResponse {
                pid: p.pid,
                exit_status: p.exit_status,
                exited_at: p.exited_at.into(),
                ..Default::default()
            });
        }
        let (rt, status, bundle) = {
            let mut inner = self.lock();
            let c = Self::container(&mut inner, &req.id)?;
            (c.runtime.clone(), c.init.status, c.bundle.clone())
        };
        if status == Status::RUNNING || status == Status::PAUSED {
            return Err(err(
                Code::FAILED_PRECONDITION,
                format!("container {} is running", req.id),
            ));
        }
        // Before the runtime removes the cgroup, whose removal would look like an OOM.
        if let Some(oom) = &self.oom {
            oom.unwatch(&req.id);
        }
        let args: &[&str] = if status == Status::STOPPED {
            &["delete", &req.id]
        } else {
            &["delete", "--force", &req.id]
        };
        rt.run("delete", args, None)
            .map_err(|e| err(Code::UNKNOWN, e))?;
        if let Err(e) = std::fs::write(Path::new(&bundle).join(DELETED_MARK), b"") {
            // The binary's `delete` then runs the runtime's once more, which finds nothing.
            warn!("write {bundle}/{DELETED_MARK}: {e}");
        }
        let mut inner = self.lock();
        let mut c = inner.containers.remove(&req.id).ok_or_else(|| {
            err(
                Code::NOT_FOUND,
                format!("container {} does not exist", req.id),
            )
        })?;
        if c.init.status != Status::STOPPED {
            // Never started: it was killed by the forced delete.
            set_exited(&mut c.init, 128 + libc::SIGKILL as u32);
        }
        c.init.io.close_stdin();
        for p in c.execs.values_mut() {
            p.io.close_stdin();
        }
        drop(inner);
        io::Io::finish_output(c.init.io.output_done.take(), &c.init.io.output_fifos);
        if c.rootfs_mounted {
            unmount_rootfs(&PathBuf::from(&bundle).join("rootfs"));
        }
        let p = &c.init;
        self.send(
            "/tasks/delete",
            TaskDelete {
                container_id: req.id.clone(),
                pid: p.pid,
                exit_status: p.exit_status,
                exited_at: p.exited_at.clone().into(),
                id: req.id.clone(),
                ..Default::default()
            },
        );
        Ok(api::DeleteResponse {
            pid: p.pid,
            exit_status: p.exit_status,
            exited_at: p.exited_at.clone().into(),
            ..Default::default()
        })
    }

    fn pids(&self, _: &TtrpcContext, req: api::PidsRequest) -> TtrpcResult<api::PidsResponse> {
        let rt = self.runtime_of(&req.id)?;
        let pids = rt.pids(&req.id).map_err(|e| err(Code::UNKNOWN, e))?;
        Ok(api::PidsResponse {
            processes: pids
                .into_iter()
                .map(|pid| ProcessInfo {
                    pid,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        })
    }

    fn pause(&self, _: &TtrpcContext, req: api::PauseRequest) -> TtrpcResult<Empty> {
        let rt = self.runtime_of(&req.id)?;
        rt.run("pause", &["pause", &req.id], None)
            .map_err(|e| err(Code::UNKNOWN, e))?;
        let mut inner = self.lock();
        let c = Self::container(&mut inner, &req.id)?;
        if c.init.status == Status::RUNNING {
            c.init.status = Status::PAUSED;
        }
        self.send(
            "/tasks/paused",
            TaskPaused {
                container_id: req.id.clone(),
                ..Default::default()
            },
        );
        Ok(Empty::new())
    }

    fn resume(&self, _: &TtrpcContext, req: api::ResumeRequest) -> TtrpcResult<Empty> {
        let rt = self.runtime_of(&req.id)?;
        rt.run("resume", &["resume", &req.id], None)
            .map_err(|e| err(Code::UNKNOWN, e))?;
        let mut inner = self.lock();
        let c = Self::container(&mut inner, &req.id)?;
        if c.init.status == Status::PAUSED {
            c.init.status = Status::RUNNING;
        }
        self.send(
            "/tasks/resumed",
            TaskResumed {
                container_id: req.id.clone(),
                ..Default::default()
            },
        );
        Ok(Empty::new())
    }

    fn exec(&self, _: &TtrpcContext, req: api::ExecProcessRequest) -> TtrpcResult<Empty> {
        let mut inner = self.lock();
        let c = Self::container(&mut inner, &req.id)?;
        if c.execs.contains_key(&req.exec_id) {
            return Err(err(
                Code::ALREADY_EXISTS,
                format!("id {} already exists", req.exec_id),
            ));
        }
        if c.init.status == Status::STOPPED {
            return Err(err(
                Code::FAILED_PRECONDITION,
                format!("container {} is stopped", req.id),
            ));
        }
        let mut p = Process::new(paths_of(&req.stdin, &req.stdout, &req.stderr, req.terminal));
        p.spec = req
            .spec
            .as_ref()
            .map(|s| s.value.clone())
            .unwrap_or_default();
        c.execs.insert(req.exec_id.clone(), p);
        self.send(
            "/tasks/exec-added",
            TaskExecAdded {
                container_id: req.id.clone(),
                exec_id: req.exec_id.clone(),
                ..Default::default()
            },
        );
        Ok(Empty::new())
    }

    fn resize_pty(&self, _: &TtrpcContext, req: api::ResizePtyRequest) -> TtrpcResult<Empty> {
        let mut inner = self.lock();
        let p = Self::container(&mut inner, &req.id)?.process(&req.exec_id)?;
        let console =
            p.io.console
                .as_ref()
                .ok_or_else(|| err(Code::FAILED_PRECONDITION, "the process has no terminal"))?;
        let ws = libc::winsize {
            ws_row: req.height as u16,
            ws_col: req.width as u16,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCSWINSZ reads one winsize from the pointer, which outlives the call.
        if unsafe {
            libc::ioctl(
                std::os::fd::AsRawFd::as_raw_fd(console),
                libc::TIOCSWINSZ,
                &ws,
            )
        } < 0
        {
            return Err(err(
                Code::UNKNOWN,
                format!("resize pty: {}", std::io::Error::last_os_error()),
            ));
        }
        Ok(Empty::new())
    }

    fn close_io(&self, _: &TtrpcContext, req: api::CloseIORequest) -> TtrpcResult<Empty> {
        let mut inner = self.lock();
        let p = Self::container(&mut inner, &req.id)?.process(&req.exec_id)?;
        if req.stdin {
            p.io.close_stdin();
        }
        Ok(Empty::new())
    }

    fn connect(
        &self,
        _: &TtrpcContext,
        req: api::ConnectRequest,
    ) -> TtrpcResult<api::ConnectResponse> {
        let mut inner = self.lock();
        let task_pid = inner
            .containers
            .get_mut(&req.id)
            .map(|c| c.init.pid)
            .unwrap_or(0);
        Ok(api::ConnectResponse {
            shim_pid: std::process::id(),
            task_pid,
            version: env!("CARGO_PKG_VERSION").into(),
            ..Default::default()
        })
    }

    fn shutdown(&self, _: &TtrpcContext, _: api::ShutdownRequest) -> TtrpcResult<Empty> {
        if self.lock().containers.is_empty() {
            // A few events at most are queued: Delete's, an exit's.
            self.events.flush(4 * PUBLISH_TIMEOUT);
            self.exit.signal();
        }
        Ok(Empty::new())
    }

    fn checkpoint(&self, _: &TtrpcContext, req: api::CheckpointTaskRequest) -> TtrpcResult<Empty> {
        let (rt, bundle) = {
            let mut inner = self.lock();
            let c = Self::container(&mut inner, &req.id)?;
            if !matches!(c.init.status, Status::RUNNING | Status::PAUSED) {
                return Err(err(
                    Code::FAILED_PRECONDITION,
                    format!("container {} is not running", req.id),
                ));
            }
            (c.runtime.clone(), PathBuf::from(&c.bundle))
        };
        let cp = checkpoint::checkpoint(&req.id, &bundle, &req.path, req.options.as_ref())
            .map_err(|e| err(Code::INVALID_ARGUMENT, e))?;
        let args: Vec<&str> = cp.args.iter().map(String::as_str).collect();
        rt.run("checkpoint", &args, None)
            .map_err(|e| err(Code::UNKNOWN, cp.failed(&bundle, e)))?;
        self.send(
            "/tasks/checkpointed",
            TaskCheckpointed {
                container_id: req.id.clone(),
                checkpoint: req.path.clone(),
                ..Default::default()
            },
        );
        Ok(Empty::new())
    }

    /// The resources come as containerd marshals a runtime-spec LinuxResources: JSON in an
    /// Any, which is what the runtime's `update --resources` reads.
    fn update(&self, _: &TtrpcContext, req: api::UpdateTaskRequest) -> TtrpcResult<Empty> {
        let (rt, bundle) = {
            let mut inner = self.lock();
            let c = Self::container(&mut inner, &req.id)?;
            (c.runtime.clone(), c.bundle.clone())
        };
        let resources = req
            .resources
            .as_ref()
            .ok_or_else(|| err(Code::INVALID_ARGUMENT, "update: no resources"))?;
        let file = Path::new(&bundle).join("update-resources.json");
        std::fs::write(&file, &resources.value)
            .map_err(|e| err(Code::UNKNOWN, format!("update: {e}")))?;
        let res = rt.run(
            "update",
            &["update", "--resources", &file.to_string_lossy(), &req.id],
            None,
        );
        // Only the runtime reads it, during the update.
        let _ = std::fs::remove_file(&file);
        res.map_err(|e| err(Code::UNKNOWN, e))?;
        Ok(Empty::new())
    }

    fn stats(&self, _: &TtrpcContext, req: api::StatsRequest) -> TtrpcResult<api::StatsResponse> {
        if stats::is_v2() {
            return self.stats_v2(&req.id);
        }
        let rt = self.runtime_of(&req.id)?;
        let out = rt
            .run("events", &["events", "--stats", &req.id], None)
            .map_err(|e| err(Code::UNKNOWN, e))?;
        let line: serde_json::Value = serde_json::from_str(out.trim()).map_err(|e| {
            err(
                Code::UNKNOWN,
                format!("OCI runtime events failed: bad output {out:?}: {e}"),
            )
        })?;
        // Named by hand, as events are (events.rs): the library's convert_to_any would name it
        // through protobuf's reflection.
        let any = Any {
            type_url: stats::V1_METRICS.to_string(),
            value: stats::v1_metrics(&line["data"])
                .write_to_bytes()
                .map_err(|e| err(Code::UNKNOWN, format!("stats: {e}")))?,
            ..Default::default()
        };
        Ok(api::StatsResponse {
            stats: Some(any).into(),
            ..Default::default()
        })
    }
}

/// The runtime binary's name and its --root parent from runc's options, with husk's defaults
/// where containerd left them empty.
pub fn binary_and_root(options: &Options) -> (&str, &str) {
    fn or<'a>(v: &'a str, default: &'static str) -> &'a str {
        if v.is_empty() {
            default
        } else {
            v
        }
    }
    (
        or(&options.binary_name, DEFAULT_BINARY),
        or(&options.root, DEFAULT_ROOT),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn criu_path_is_read_from_field_8() {
        // binary_name (6) "runc", criu_path (8) "/x/criu", as containerd 1.6 encodes them.
        let mut bytes = vec![0x32, 4];
        bytes.extend(b"runc");
        bytes.extend([0x42, 7]);
        bytes.extend(b"/x/criu");
        let o = Options::parse_from_bytes(&bytes).unwrap();
        assert_eq!(o.binary_name, "runc");
        assert_eq!(criu_path(&o), "/x/criu");
        assert_eq!(criu_path(&Options::default()), "");
    }
}
