//! The containers: records in redb, tasks in shims, output in json-files, and what happens on
//! each exit (the restart policy, AutoRemove). Every change of a container's state goes
//! through its `op` lock, so a start, a stop, an exit and a removal never interleave.

use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use containerd_shim_protos::api;
use serde_json::{json, Value};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::db::{Db, Record, State};
use crate::events::Exit;
use crate::logs::{self, LogFile, Stream};
use crate::network;
use crate::shim::{Launch, Shim, Stdio3};
use crate::spec;

/// An error with the HTTP status Docker gives it.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    pub status: u16,
    pub message: String,
}

pub fn api_err(status: u16, message: impl Into<String>) -> ApiError {
    ApiError {
        status,
        message: message.into(),
    }
}

fn internal(e: impl std::fmt::Display) -> ApiError {
    api_err(500, e.to_string())
}

pub type ApiResult<T> = Result<T, ApiError>;

pub struct Paths {
    pub root: PathBuf,
    pub state: PathBuf,
    pub socket: PathBuf,
    pub events: PathBuf,
    pub namespace: String,
    pub shim: PathBuf,
    /// The init `HostConfig.Init` mounts at /sbin/docker-init, if one was found.
    pub init: Option<PathBuf>,
}

/// One container in memory: its record, and what lives only while huskd runs.
pub struct Ctr {
    pub id: String,
    pub rec: Mutex<Record>,
    pub op: tokio::sync::Mutex<()>,
    shim: Mutex<Option<Shim>>,
    pub log: Arc<LogFile>,
    copiers: Mutex<Vec<JoinHandle<()>>>,
    /// Bumped on every change of state; waiters and followers watch it.
    pub changed: watch::Sender<u64>,
    /// How many times it has exited, for `wait?condition=next-exit`.
    pub exits: AtomicU64,
    pub removed: std::sync::atomic::AtomicBool,
}

impl Ctr {
    /// A container as huskd holds it, from its record and its log file: no task yet.
    fn new(rec: Record, log: Arc<LogFile>) -> Arc<Ctr> {
        Arc::new(Ctr {
            id: rec.id.clone(),
            rec: Mutex::new(rec),
            op: tokio::sync::Mutex::new(()),
            shim: Mutex::new(None),
            log,
            copiers: Mutex::new(Vec::new()),
            changed: watch::channel(0).0,
            exits: AtomicU64::new(0),
            removed: Default::default(),
        })
    }

    pub fn record(&self) -> Record {
        self.rec.lock().unwrap().clone()
    }
    pub fn running(&self) -> bool {
        self.rec.lock().unwrap().state.running
    }
    pub fn tty(&self) -> bool {
        self.rec.lock().unwrap().config["Tty"].as_bool() == Some(true)
    }
    fn bump(&self) {
        self.changed.send_modify(|n| *n += 1);
    }
    pub fn shim(&self) -> Option<Shim> {
        self.shim.lock().unwrap().clone()
    }
}

pub struct ExecState {
    pub id: String,
    pub container: String,
    pub config: Value,
    pub running: bool,
    pub exit_code: Option<i64>,
    pub pid: u32,
}

pub struct Exec {
    pub state: Mutex<ExecState>,
    pub changed: watch::Sender<u64>,
}

pub struct Daemon {
    pub paths: Paths,
    pub images: Mutex<husk_image::Store>,
    pub insecure: Vec<String>,
    db: Db,
    containers: Mutex<HashMap<String, Arc<Ctr>>>,
    pub execs: Mutex<HashMap<String, Arc<Exec>>>,
    /// The bridge, unless huskd runs with `--bridge none`.
    pub net: Option<husk_net::Network>,
}

pub fn now() -> String {
    logs::now_rfc3339nano()
}

/// 64 hex characters from the kernel's random pool, as Docker's ids.
pub fn random_id() -> String {
    let mut buf = [0u8; 32];
    // SAFETY: getrandom writes at most buf.len() bytes into buf.
    let n = unsafe { libc::getrandom(buf.as_mut_ptr().cast(), buf.len(), 0) };
    assert_eq!(n, 32, "getrandom");
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
}

fn generated_name(id: &str) -> String {
    const A: &[&str] = &[
        "brave", "calm", "eager", "fond", "keen", "lucid", "quiet", "sharp", "tidy", "wise",
    ];
    const B: &[&str] = &[
        "husk", "seed", "grain", "shell", "kernel", "pod", "chaff", "sheaf", "stalk", "ear",
    ];
    let n = u64::from_str_radix(&id[..8], 16).unwrap_or(0) as usize;
    format!("{}_{}_{}", A[n % A.len()], B[(n / 10) % B.len()], &id[..4])
}

fn signal_number(s: &str) -> Option<u32> {
    if let Ok(n) = s.parse::<u32>() {
        return (1..=64).contains(&n).then_some(n);
    }
    let upper = s.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    name.parse::<nix::sys::signal::Signal>()
        .ok()
        .map(|s| s as u32)
}

fn mkfifo(path: &Path) -> std::io::Result<()> {
    match nix::unistd::mkfifo(path, nix::sys::stat::Mode::from_bits_truncate(0o600)) {
        Ok(()) => Ok(()),
        Err(nix::errno::Errno::EEXIST) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

fn remove_dir(path: &Path) {
    match fs::remove_dir_all(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => log::warn!("remove {}: {e}", path.display()),
    }
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> ApiResult<T> {
    tokio::task::spawn_blocking(f).await.map_err(internal)
}

impl Daemon {
    pub fn open(
        paths: Paths,
        insecure: Vec<String>,
        net: Option<husk_net::Network>,
    ) -> anyhow::Result<Arc<Daemon>> {
        use anyhow::Context;
        let mut dirs = fs::DirBuilder::new();
        dirs.recursive(true).mode(0o700);
        for d in [paths.root.join("containers"), paths.state.clone()] {
            dirs.create(&d)
                .with_context(|| format!("mkdir {}", d.display()))?;
        }
        let images =
            husk_image::Store::open(paths.root.join("images")).context("open the image store")?;
        let db = Db::open(&paths.root.join("containers.redb"))?;
        let mut containers = HashMap::new();
        for rec in db.all()? {
            let log = LogFile::open(&log_path(&paths.root, &rec.id))
                .with_context(|| format!("log of {}", rec.id))?;
            containers.insert(rec.id.clone(), Ctr::new(rec, log));
        }
        Ok(Arc::new(Daemon {
            paths,
            images: Mutex::new(images),
            insecure,
            db,
            containers: Mutex::new(containers),
            execs: Mutex::default(),
            net,
        }))
    }

    fn launch(&self) -> Launch<'_> {
        Launch {
            binary: &self.paths.shim,
            namespace: &self.paths.namespace,
            address: self.paths.socket.to_str().unwrap_or_default(),
            ttrpc_address: self.paths.events.to_str().unwrap_or_default(),
        }
    }

    fn bundle(&self, id: &str) -> PathBuf {
        self.paths.state.join(id)
    }

    fn dir(&self, id: &str) -> PathBuf {
        self.paths.root.join("containers").join(id)
    }

    fn save(&self, c: &Ctr) -> ApiResult<()> {
        let rec = c.record();
        self.db.put(&rec).map_err(internal)?;
        c.bump();
        Ok(())
    }

    pub fn list(&self) -> Vec<Arc<Ctr>> {
        self.containers.lock().unwrap().values().cloned().collect()
    }

    /// A container by full id, name, or unique id prefix, as Docker resolves them.
    pub fn get(&self, key: &str) -> ApiResult<Arc<Ctr>> {
        let map = self.containers.lock().unwrap();
        if let Some(c) = map.get(key) {
            return Ok(c.clone());
        }
        let name = key.strip_prefix('/').unwrap_or(key);
        if let Some(c) = map.values().find(|c| c.rec.lock().unwrap().name == name) {
            return Ok(c.clone());
        }
        let matches: Vec<_> = if key.is_empty() {
            Vec::new()
        } else {
            map.values().filter(|c| c.id.starts_with(key)).collect()
        };
        match matches.as_slice() {
            [c] => Ok((*c).clone()),
            [] => Err(api_err(404, format!("No such container: {key}"))),
            _ => Err(api_err(
                400,
                format!("multiple IDs found with provided prefix: {key}"),
            )),
        }
    }

    /// The image's unpacked layers (top first) and config.
    fn image(&self, reference: &str) -> ApiResult<husk_image::ImageInspect> {
        self.images
            .lock()
            .unwrap()
            .inspect(reference)
            .map_err(|e| match e {
                husk_image::Error::NotFound(_) => {
                    api_err(404, format!("No such image: {reference}"))
                }
                husk_image::Error::Reference(_) => {
                    api_err(400, format!("invalid reference format: {reference}"))
                }
                e => internal(e),
            })
    }

    pub fn image_in_use(&self, image_id: &str) -> Option<String> {
        self.list()
            .into_iter()
            .find(|c| c.rec.lock().unwrap().image == image_id)
            .map(|c| c.id.clone())
    }

    /// POST /containers/create
    pub fn create(&self, name: Option<&str>, body: Value) -> ApiResult<String> {
        let mut config = body.clone();
        let host = match &body["HostConfig"] {
            Value::Null => json!({}),
            h if h.is_object() => h.clone(),
            _ => return Err(api_err(400, "HostConfig: not an object")),
        };
        if let Some(o) = config.as_object_mut() {
            o.remove("HostConfig");
            o.remove("NetworkingConfig");
        }
        let image_ref = config["Image"].as_str().unwrap_or_default().to_string();
        if image_ref.is_empty() {
            return Err(api_err(400, "Config.Image: no image specified"));
        }
        let image = self.image(&image_ref)?;
        spec::merge_config(&mut config, &image.config);
        let id = random_id();
        let hostname = config["Hostname"]
            .as_str()
            .filter(|h| !h.is_empty())
            .map(str::to_string)
            .unwrap_or_else(|| id[..12].to_string());
        config["Hostname"] = json!(hostname);
        // Everything a start will need is checked now: no container is made of a bad request.
        let dir = self.dir(&id);
        spec::build(&spec::Input {
            id: &id,
            namespace: &self.paths.namespace,
            config: &config,
            host: &host,
            layers: &image.layer_dirs,
            hostname: &hostname,
            init: self.paths.init.as_deref(),
            etc: spec::EtcFiles {
                hostname: &dir.join("hostname"),
                hosts: &dir.join("hosts"),
                resolv: &dir.join("resolv.conf"),
            },
        })
        .map_err(|e| api_err(400, e.to_string()))?;
        network::on_bridge(&host, self.net.is_some())
            .and_then(|b| network::ports(&host, b))
            .map_err(|e| api_err(400, e))?;
        let restart = host["RestartPolicy"]["Name"].as_str().unwrap_or_default();
        if !["", "no", "always", "on-failure", "unless-stopped"].contains(&restart) {
            return Err(api_err(400, format!("invalid restart policy '{restart}'")));
        }
        if !restart.is_empty() && restart != "no" && host["AutoRemove"].as_bool() == Some(true) {
            return Err(api_err(
                400,
                "can't create 'AutoRemove' container with restart policy",
            ));
        }
        let mut map = self.containers.lock().unwrap();
        let name = match name.map(|n| n.strip_prefix('/').unwrap_or(n)) {
            Some(n) if !n.is_empty() => {
                if !valid_name(n) {
                    return Err(api_err(
                        400,
                        format!("Invalid container name ({n}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"),
                    ));
                }
                if let Some(other) = map.values().find(|c| c.rec.lock().unwrap().name == n) {
                    return Err(api_err(409, format!(
                        "Conflict. The container name \"/{n}\" is already in use by container \"{}\". You have to remove (or rename) that container to be able to reuse that name.",
                        other.id
                    )));
                }
                n.to_string()
            }
            _ => generated_name(&id),
        };
        let rec = Record {
            id: id.clone(),
            name,
            created: now(),
            image: image.id.clone(),
            config,
            host_config: host,
            state: State::default(),
            address: String::new(),
            restart_count: 0,
            stopped_by_user: false,
            ip_address: String::new(),
            proxies: Vec::new(),
        };
        let made = (|| -> std::io::Result<Arc<LogFile>> {
            fs::DirBuilder::new().mode(0o700).create(&dir)?;
            fs::write(dir.join("hostname"), format!("{hostname}\n"))?;
            fs::write(
                dir.join("hosts"),
                format!("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\t{hostname}\n"),
            )?;
            let resolv = fs::read("/etc/resolv.conf").unwrap_or_default();
            fs::write(dir.join("resolv.conf"), resolv)?;
            for f in ["hostname", "hosts", "resolv.conf"] {
                fs::set_permissions(dir.join(f), fs::Permissions::from_mode(0o644))?;
            }
            LogFile::open(&log_path(&self.paths.root, &id))
        })();
        let log = match made {
            Ok(l) => l,
            Err(e) => {
                remove_dir(&dir);
                return Err(internal(format!("{}: {e}", dir.display())));
            }
        };
        if let Err(e) = self.db.put(&rec) {
            remove_dir(&dir);
            return Err(internal(e));
        }
        map.insert(id.clone(), Ctr::new(rec, log));
        Ok(id)
    }

    /// POST /containers/{id}/start
    pub async fn start(self: &Arc<Self>, c: &Arc<Ctr>) -> ApiResult<bool> {
        let _op = c.op.lock().await;
        if c.removed.load(Ordering::SeqCst) {
            return Err(api_err(404, format!("No such container: {}", c.id)));
        }
        if c.running() {
            return Ok(false);
        }
        c.rec.lock().unwrap().stopped_by_user = false;
        let started = self.start_locked(c).await;
        // As dockerd: a container to be removed at its exit is removed when it cannot start.
        if started.is_err() && c.record().host_config["AutoRemove"].as_bool() == Some(true) {
            self.remove_locked(c);
        }
        started.map(|()| true)
    }

    async fn start_locked(self: &Arc<Self>, c: &Arc<Ctr>) -> ApiResult<()> {
        let rec = c.record();
        let image = self.image(&rec.image)?;
        let id = c.id.clone();
        let dir = self.dir(&id);
        let bundle = self.bundle(&id);
        let spec = spec::build(&spec::Input {
            id: &id,
            namespace: &self.paths.namespace,
            config: &rec.config,
            host: &rec.host_config,
            layers: &image.layer_dirs,
            hostname: rec.config["Hostname"].as_str().unwrap_or_default(),
            init: self.paths.init.as_deref(),
            etc: spec::EtcFiles {
                hostname: &dir.join("hostname"),
                hosts: &dir.join("hosts"),
                resolv: &dir.join("resolv.conf"),
            },
        })
        .map_err(|e| api_err(400, e.to_string()))?;
        let tty = rec.config["Tty"].as_bool() == Some(true);
        let stdin = rec.config["OpenStdin"].as_bool() == Some(true);
        let io = Stdio3 {
            stdin: if stdin {
                bundle.join("stdin").display().to_string()
            } else {
                String::new()
            },
            stdout: bundle.join("stdout").display().to_string(),
            stderr: if tty {
                String::new()
            } else {
                bundle.join("stderr").display().to_string()
            },
            terminal: tty,
        };
        let this = self.clone();
        let (id2, bundle2, dir2) = (id.clone(), bundle.clone(), dir.clone());
        let started =
            blocking(move || this.start_task(&id2, &bundle2, &dir2, &spec, &image, &io)).await?;
        match started {
            Ok((shim, pid)) => {
                if let Err(e) = self.connect(c, pid).await {
                    *c.shim.lock().unwrap() = Some(shim);
                    self.fail_start(c, e.clone()).await;
                    return Err(internal(e));
                }
                let copiers = match self.copiers(c, &bundle, tty) {
                    Ok(v) => v,
                    Err(e) => {
                        *c.shim.lock().unwrap() = Some(shim);
                        self.fail_start(c, e.clone()).await;
                        return Err(internal(e));
                    }
                };
                *c.copiers.lock().unwrap() = copiers;
                *c.shim.lock().unwrap() = Some(shim.clone());
                c.rec.lock().unwrap().address = shim.address.clone();
                self.save(c)?;
                let id2 = id.clone();
                let res = blocking(move || shim.start(&id2, "")).await?;
                match res {
                    Ok(pid) => {
                        {
                            let mut r = c.rec.lock().unwrap();
                            r.state = State {
                                status: "running".into(),
                                running: true,
                                pid,
                                started_at: now(),
                                finished_at: r.state.finished_at.clone(),
                                ..State::default()
                            };
                        }
                        self.save(c)
                    }
                    Err(e) => {
                        self.fail_start(c, e.to_string()).await;
                        Err(start_error(&e.to_string()))
                    }
                }
            }
            Err(e) => {
                {
                    let mut r = c.rec.lock().unwrap();
                    r.state.error = e.clone();
                    r.state.exit_code = exit_code_of(&e);
                }
                // The error is what the caller must see; saving it is best effort.
                let _ = self.save(c);
                Err(start_error(&e))
            }
        }
    }

    /// Bundle, shim, task: everything before Start. On failure nothing of it is left.
    fn start_task(
        &self,
        id: &str,
        bundle: &Path,
        dir: &Path,
        spec: &Value,
        image: &husk_image::ImageInspect,
        io: &Stdio3,
    ) -> Result<(Shim, u32), String> {
        remove_dir(bundle);
        let res = (|| {
            fs::DirBuilder::new()
                .mode(0o700)
                .create(bundle)
                .map_err(|e| format!("{}: {e}", bundle.display()))?;
            let write = |name: &str, data: &[u8]| {
                fs::write(bundle.join(name), data)
                    .map_err(|e| format!("{}: {e}", bundle.join(name).display()))
            };
            write("config.json", spec.to_string().as_bytes())?;
            // The shim logs into `log` of its bundle (containerd's is a FIFO; a file keeps it).
            write("log", b"")?;
            for p in [&io.stdin, &io.stdout, &io.stderr] {
                if !p.is_empty() {
                    mkfifo(Path::new(p)).map_err(|e| format!("mkfifo {p}: {e}"))?;
                }
            }
            for d in ["upper", "work"] {
                fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o755)
                    .create(dir.join(d))
                    .map_err(|e| format!("{}: {e}", dir.join(d).display()))?;
            }
            let address = self.launch().start(id, bundle).map_err(|e| e.to_string())?;
            let shim = Shim::connect(&address).map_err(|e| e.to_string())?;
            let lower: Vec<String> = image
                .layer_dirs
                .iter()
                .map(|d| d.display().to_string())
                .collect();
            let mount = api::Mount {
                type_: "overlay".into(),
                source: "overlay".into(),
                options: vec![
                    format!("lowerdir={}", lower.join(":")),
                    format!("upperdir={}", dir.join("upper").display()),
                    format!("workdir={}", dir.join("work").display()),
                ],
                ..Default::default()
            };
            match shim.create(id, bundle, mount, io) {
                Ok(pid) => Ok((shim, pid)),
                Err(e) => {
                    if let Err(e2) = shim.shutdown(id) {
                        log::warn!("{id}: shutdown shim: {e2}");
                    }
                    Err(e.to_string())
                }
            }
        })();
        if res.is_err() {
            remove_dir(bundle);
        }
        res
    }

    /// A task whose Start failed: deleted, its shim gone, the container back to created.
    async fn fail_start(&self, c: &Arc<Ctr>, error: String) {
        let shim = c.shim.lock().unwrap().take();
        if let Some(shim) = shim {
            let id = c.id.clone();
            // Each step logs its own failure; a panic of the closure has nothing to undo.
            let _ = blocking(move || {
                if let Err(e) = shim.delete(&id, "") {
                    log::warn!("{id}: delete task: {e}");
                }
                if let Err(e) = shim.shutdown(&id) {
                    log::warn!("{id}: shutdown shim: {e}");
                }
            })
            .await;
        }
        self.disconnect(c).await;
        self.wait_copiers(c).await;
        remove_dir(&self.bundle(&c.id));
        {
            let mut r = c.rec.lock().unwrap();
            r.address.clear();
            r.state.exit_code = exit_code_of(&error);
            r.state.error = error;
        }
        // Best effort: the start's error is what the caller must see.
        let _ = self.save(c);
    }

    /// Puts a created task on the bridge, when its network mode says so, and starts the
    /// proxies of its published ports. On failure nothing of it is left.
    async fn connect(&self, c: &Ctr, pid: u32) -> Result<(), String> {
        let Some(net) = &self.net else {
            return Ok(());
        };
        let rec = c.record();
        let host = &rec.host_config;
        let on = network::on_bridge(host, true)?;
        let ports = network::ports(host, on)?;
        if !on {
            return Ok(());
        }
        let netns = PathBuf::from(format!("/proc/{pid}/ns/net"));
        let connected = net
            .connect(&c.id, &netns, &ports)
            .await
            .map_err(|e| match e {
                // dockerd's words, which scripts look for.
                husk_net::Error::Proxy(e) => format!(
                    "driver failed programming external connectivity on endpoint {} ({}): {e}",
                    rec.name, c.id
                ),
                e => format!("network bridge: {e}"),
            })?;
        let address = connected.attachment.address.to_string();
        let hostname = rec.config["Hostname"].as_str().unwrap_or_default();
        // In place: the file is bind-mounted into the container already.
        let hosts = self.dir(&c.id).join("hosts");
        let text = format!(
            "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n{address}\t{hostname}\n"
        );
        if let Err(e) = fs::write(&hosts, text) {
            log::warn!("{}: {}: {e}", c.id, hosts.display());
        }
        let mut r = c.rec.lock().unwrap();
        r.ip_address = address;
        r.proxies = connected.proxies.into_pids();
        Ok(())
    }

    /// Takes the container off the bridge, if it is on it: its proxies stopped (their ports
    /// free on return), its veth and address gone.
    async fn disconnect(&self, c: &Ctr) {
        let Some(net) = &self.net else {
            return;
        };
        let pids = {
            let mut r = c.rec.lock().unwrap();
            r.ip_address.clear();
            std::mem::take(&mut r.proxies)
        };
        match net.store.get(&c.id) {
            Ok(None) => {}
            Ok(Some(_)) => {
                if let Err(e) = net.disconnect_pids(&c.id, pids).await {
                    log::warn!("{}: off the bridge: {e}", c.id);
                }
            }
            Err(e) => log::warn!("{}: {e}", c.id),
        }
    }

    /// The output copies of a task: its FIFOs opened now (before the process can run and
    /// exit), copied on tasks of their own.
    fn copiers(&self, c: &Ctr, bundle: &Path, tty: bool) -> Result<Vec<JoinHandle<()>>, String> {
        let mut streams = vec![(Stream::Stdout, "stdout")];
        if !tty {
            streams.push((Stream::Stderr, "stderr"));
        }
        let mut out = Vec::new();
        for (s, name) in streams {
            let path = bundle.join(name);
            let rx = logs::open_fifo(&path).map_err(|e| format!("open {}: {e}", path.display()))?;
            out.push(tokio::spawn(logs::copy(rx, s, c.log.clone())));
        }
        Ok(out)
    }

    async fn wait_copiers(&self, c: &Ctr) {
        let copiers: Vec<_> = c.copiers.lock().unwrap().drain(..).collect();
        for h in copiers {
            // The shim closes the FIFOs once its copies drain (bounded by it at 5 s).
            if tokio::time::timeout(Duration::from_secs(15), h)
                .await
                .is_err()
            {
                log::warn!("{}: output copy did not end", c.id);
            }
        }
    }

    /// An exit event from a shim.
    pub async fn on_exit(self: &Arc<Self>, e: Exit) {
        let Ok(c) = self.get(&e.container) else {
            return;
        };
        if e.id != e.container {
            if let Some(x) = self.execs.lock().unwrap().get(&e.id) {
                let mut s = x.state.lock().unwrap();
                s.running = false;
                s.exit_code = Some(e.status as i64);
                drop(s);
                x.changed.send_modify(|n| *n += 1);
            }
            return;
        }
        let _op = c.op.lock().await;
        self.reap(&c, Some(e.status)).await;
        self.after_exit(&c).await;
    }

    /// The init has exited (its status known, or read from the shim): delete the task, stop
    /// the shim, record the exit.
    async fn reap(&self, c: &Arc<Ctr>, status: Option<u32>) {
        let shim = c.shim.lock().unwrap().take();
        let Some(shim) = shim else {
            return;
        };
        let id = c.id.clone();
        let deleted = blocking(move || {
            let d = shim.delete(&id, "");
            if let Err(e) = shim.shutdown(&id) {
                log::warn!("{id}: shutdown shim: {e}");
            }
            d
        })
        .await;
        let code = match (status, deleted) {
            (Some(s), _) => s as i64,
            (None, Ok(Ok(d))) => d.exit_status as i64,
            (None, _) => 255,
        };
        self.disconnect(c).await;
        self.wait_copiers(c).await;
        remove_dir(&self.bundle(&c.id));
        {
            let mut r = c.rec.lock().unwrap();
            r.address.clear();
            r.state.status = "exited".into();
            r.state.running = false;
            r.state.paused = false;
            r.state.pid = 0;
            r.state.exit_code = code;
            r.state.finished_at = now();
        }
        c.exits.fetch_add(1, Ordering::SeqCst);
        if let Err(e) = self.save(c) {
            log::error!("{}: {}", c.id, e.message);
        }
    }

    /// AutoRemove and the restart policy, after an exit (with the op lock held).
    async fn after_exit(self: &Arc<Self>, c: &Arc<Ctr>) {
        let rec = c.record();
        if rec.host_config["AutoRemove"].as_bool() == Some(true) {
            self.remove_locked(c);
            return;
        }
        let policy = &rec.host_config["RestartPolicy"];
        let max = policy["MaximumRetryCount"].as_u64().unwrap_or(0);
        let again = !rec.stopped_by_user
            && match policy["Name"].as_str().unwrap_or_default() {
                "always" | "unless-stopped" => true,
                "on-failure" => {
                    rec.state.exit_code != 0 && (max == 0 || (rec.restart_count as u64) < max)
                }
                _ => false,
            };
        if again {
            {
                let mut r = c.rec.lock().unwrap();
                r.restart_count += 1;
                r.state.restarting = true;
                r.state.status = "restarting".into();
            }
            if let Err(e) = self.start_locked(c).await {
                log::warn!("{}: restart: {}", c.id, e.message);
                let mut r = c.rec.lock().unwrap();
                r.state.restarting = false;
                r.state.status = "exited".into();
                drop(r);
                if let Err(e) = self.save(c) {
                    log::error!("{}: {}", c.id, e.message);
                }
            }
        }
    }

    /// POST /containers/{id}/kill
    pub async fn kill(&self, c: &Arc<Ctr>, signal: Option<&str>) -> ApiResult<()> {
        let sig = match signal.filter(|s| !s.is_empty()) {
            None => libc::SIGKILL as u32,
            Some(s) => {
                signal_number(s).ok_or_else(|| api_err(400, format!("Invalid signal: {s}")))?
            }
        };
        let shim = match (c.running(), c.shim()) {
            (true, Some(s)) => s,
            _ => return Err(api_err(409, format!("Container {} is not running", c.id))),
        };
        c.rec.lock().unwrap().stopped_by_user = true;
        let id = c.id.clone();
        blocking(move || shim.kill(&id, "", sig, false))
            .await?
            .map_err(internal)
    }

    /// Waits (at most `limit`) until the container is not running.
    async fn wait_stopped(&self, c: &Arc<Ctr>, limit: Duration) -> bool {
        let mut rx = c.changed.subscribe();
        tokio::time::timeout(limit, async {
            while c.running() {
                if rx.changed().await.is_err() {
                    return;
                }
            }
        })
        .await
        .is_ok()
    }

    /// POST /containers/{id}/stop: the stop signal, then SIGKILL after `t` seconds.
    pub async fn stop(&self, c: &Arc<Ctr>, t: Option<i64>) -> ApiResult<bool> {
        // Set first: it cancels a restart the policy would make.
        let asked_running = {
            let mut r = c.rec.lock().unwrap();
            r.stopped_by_user = true;
            r.state.running || r.state.restarting
        };
        if !(c.running() && c.shim().is_some()) {
            // An exit or a restart under way (they hold the lock) ends first.
            drop(c.op.lock().await);
        }
        let rec = c.record();
        let (true, Some(shim)) = (rec.state.running, c.shim()) else {
            // Its exit is being handled (the shim taken, the state not yet written): once
            // that is done it is stopped, and stays so. Running when asked, it counts as
            // stopped by this request, as dockerd counts a restarting container.
            drop(c.op.lock().await);
            return Ok(asked_running);
        };
        let signal = rec.config["StopSignal"]
            .as_str()
            .and_then(signal_number)
            .unwrap_or(libc::SIGTERM as u32);
        let timeout = t
            .or(rec.config["StopTimeout"].as_i64())
            .unwrap_or(10)
            .max(0) as u64;
        let id = c.id.clone();
        let s2 = shim.clone();
        if rec.state.paused {
            let id = id.clone();
            let s = shim.clone();
            blocking(move || s.resume(&id)).await?.map_err(internal)?;
        }
        if let Err(e) = blocking(move || s2.kill(&id, "", signal, false)).await? {
            // A task that has just exited can no longer be signalled.
            if !self.wait_stopped(c, Duration::from_secs(5)).await {
                return Err(internal(e));
            }
        }
        if !self.wait_stopped(c, Duration::from_secs(timeout)).await {
            let id = c.id.clone();
            blocking(move || shim.kill(&id, "", libc::SIGKILL as u32, true))
                .await?
                .map_err(internal)?;
            if !self.wait_stopped(c, Duration::from_secs(30)).await {
                return Err(internal(format!(
                    "container {} did not stop after SIGKILL",
                    c.id
                )));
            }
        }
        Ok(true)
    }

    pub async fn pause(&self, c: &Arc<Ctr>, pause: bool) -> ApiResult<()> {
        let _op = c.op.lock().await;
        let rec = c.record();
        let shim = match (rec.state.running, c.shim()) {
            (true, Some(s)) => s,
            _ => return Err(api_err(409, format!("Container {} is not running", c.id))),
        };
        if rec.state.paused == pause {
            let what = if pause {
                "already paused"
            } else {
                "not paused"
            };
            return Err(api_err(409, format!("Container {} is {what}", c.id)));
        }
        let id = c.id.clone();
        blocking(move || {
            if pause {
                shim.pause(&id)
            } else {
                shim.resume(&id)
            }
        })
        .await?
        .map_err(internal)?;
        {
            let mut r = c.rec.lock().unwrap();
            r.state.paused = pause;
            r.state.status = if pause { "paused" } else { "running" }.into();
        }
        self.save(c)
    }

    /// DELETE /containers/{id}
    pub async fn remove(self: &Arc<Self>, c: &Arc<Ctr>, force: bool) -> ApiResult<()> {
        if c.running() {
            if !force {
                return Err(api_err(409, format!(
                    "You cannot remove a running container {}. Stop the container before attempting removal or force remove",
                    c.id
                )));
            }
            c.rec.lock().unwrap().stopped_by_user = true;
            if let Some(shim) = c.shim() {
                let id = c.id.clone();
                blocking(move || shim.kill(&id, "", libc::SIGKILL as u32, true))
                    .await?
                    .map_err(internal)?;
            }
            if !self.wait_stopped(c, Duration::from_secs(30)).await {
                return Err(internal(format!(
                    "container {} did not stop after SIGKILL",
                    c.id
                )));
            }
        }
        let _op = c.op.lock().await;
        if c.removed.load(Ordering::SeqCst) {
            return Ok(());
        }
        if c.running() {
            return Err(api_err(
                409,
                format!("container {} was started again during its removal", c.id),
            ));
        }
        self.remove_locked(c);
        Ok(())
    }

    fn remove_locked(&self, c: &Arc<Ctr>) {
        remove_dir(&self.bundle(&c.id));
        remove_dir(&self.dir(&c.id));
        if let Err(e) = self.db.remove(&c.id) {
            log::error!("{}: {e}", c.id);
        }
        self.containers.lock().unwrap().remove(&c.id);
        self.execs
            .lock()
            .unwrap()
            .retain(|_, x| x.state.lock().unwrap().container != c.id);
        c.removed.store(true, Ordering::SeqCst);
        c.bump();
    }

    /// After a restart of huskd: every container that had a task is found through its shim's
    /// address, and either adopted again (output copies reopened) or, if it exited meanwhile,
    /// reaped with the exit status the shim kept.
    pub async fn recover(self: &Arc<Self>) {
        for c in self.list() {
            let mut rec = c.record();
            if rec.address.is_empty() {
                // Killed after the shim started, before its address was committed: the shim
                // wrote it into the bundle.
                let file = self.bundle(&c.id).join("address");
                if let Ok(a) = fs::read_to_string(&file) {
                    rec.address = a.trim().to_string();
                    c.rec.lock().unwrap().address = rec.address.clone();
                }
            }
            if rec.address.is_empty() {
                if rec.state.running {
                    // Killed between the task's end and the commit that recorded it.
                    let mut r = c.rec.lock().unwrap();
                    r.state.running = false;
                    r.state.status = "exited".into();
                    drop(r);
                    if let Err(e) = self.save(&c) {
                        log::error!("{}: {}", c.id, e.message);
                    }
                }
                continue;
            }
            let _op = c.op.lock().await;
            let (addr, id) = (rec.address.clone(), c.id.clone());
            let found = blocking(move || {
                let shim = Shim::connect(&addr)?;
                let st = shim.state(&id, "")?;
                Ok::<_, crate::shim::ShimError>((shim, st))
            })
            .await;
            let found = match found {
                Ok(Ok(f)) => Ok(f),
                Ok(Err(e)) => Err(e.to_string()),
                Err(e) => Err(e.message),
            };
            let bundle = self.bundle(&c.id);
            match found {
                Ok((shim, st)) => {
                    use containerd_shim_protos::api::Status;
                    let status = st.status.enum_value_or_default();
                    // A stopped task's shim has let go of its FIFOs, and with them of what
                    // was in them; a reader opened now would never see EOF (no writer comes).
                    if status != Status::STOPPED {
                        let copiers = self.copiers(&c, &bundle, c.tty()).unwrap_or_else(|e| {
                            log::warn!("{}: output lost: {e}", c.id);
                            Vec::new()
                        });
                        *c.copiers.lock().unwrap() = copiers;
                    }
                    *c.shim.lock().unwrap() = Some(shim);
                    if status == Status::STOPPED {
                        log::info!("{}: exited while huskd was away ({})", c.id, st.exit_status);
                        self.reap(&c, Some(st.exit_status)).await;
                        self.after_exit(&c).await;
                    } else {
                        let mut r = c.rec.lock().unwrap();
                        if !r.state.running {
                            // Started just before huskd died, and not recorded as such.
                            r.state.pid = st.pid;
                            r.state.started_at = now();
                        }
                        r.state.paused = status == Status::PAUSED;
                        r.state.running = true;
                        r.state.status = if r.state.paused { "paused" } else { "running" }.into();
                        drop(r);
                        if let Err(e) = self.save(&c) {
                            log::error!("{}: {}", c.id, e.message);
                        }
                        log::info!("{}: reconnected to {}", c.id, rec.address);
                    }
                }
                Err(why) => {
                    log::warn!("{}: its shim is gone ({why}); marked exited", c.id);
                    self.disconnect(&c).await;
                    remove_dir(&bundle);
                    let mut r = c.rec.lock().unwrap();
                    r.address.clear();
                    r.state = State {
                        status: "exited".into(),
                        exit_code: 255,
                        error: format!("shim gone: {why}"),
                        started_at: r.state.started_at.clone(),
                        finished_at: now(),
                        ..State::default()
                    };
                    drop(r);
                    if let Err(e) = self.save(&c) {
                        log::error!("{}: {}", c.id, e.message);
                    }
                }
            }
        }
        // Addresses of containers that are gone (removed by a huskd killed half-way).
        if let Some(net) = &self.net {
            match net.store.list() {
                Ok(list) => {
                    for (id, _) in list {
                        if self.get(&id).is_err() {
                            if let Err(e) = net.disconnect_pids(&id, Vec::new()).await {
                                log::warn!("{id}: off the bridge: {e}");
                            }
                        }
                    }
                }
                Err(e) => log::warn!("network store: {e}"),
            }
        }
    }
}

/// Docker's exit codes for a start that failed: 127 when the command is not found, 126 when
/// it cannot be run, else 128.
fn exit_code_of(e: &str) -> i64 {
    if e.contains("no such file") || e.contains("not found") {
        127
    } else if e.contains("permission denied") {
        126
    } else {
        128
    }
}

fn start_error(e: &str) -> ApiError {
    let status = if exit_code_of(e) == 128 { 500 } else { 400 };
    api_err(status, e.to_string())
}

pub fn log_path(root: &Path, id: &str) -> PathBuf {
    root.join("containers")
        .join(id)
        .join(format!("{id}-json.log"))
}
