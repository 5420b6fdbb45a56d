//! huskd: the thin manager of the husk stack. It plays dockerd and containerd together: a
//! Docker-like Engine API (HTTP/1.1 + JSON) on a unix socket, images in husk_image's store,
//! container metadata in redb, and each container's task in its own containerd-shim-husk-v2,
//! launched and driven over ttrpc as containerd does. See notes/huskd.md.

mod api;
mod daemon;
mod db;
mod events;
mod exec;
mod logs;
mod network;
mod seccomp;
mod security_opt;
mod shim;
mod spec;
mod stats;

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;

#[derive(Parser)]
#[command(
    version,
    about = "husk's container manager: a Docker-like API on a unix socket"
)]
struct Cli {
    /// The API socket (root only, mode 0600).
    #[arg(long, default_value = "/run/husk/huskd.sock")]
    socket: PathBuf,
    /// Persistent state: images, container metadata, logs, writable layers.
    #[arg(long, default_value = "/var/lib/husk")]
    root: PathBuf,
    /// Runtime state: bundles, FIFOs, the events socket.
    #[arg(long, default_value = "/run/husk")]
    state: PathBuf,
    /// The namespace the shims and the runtime file containers under (runtime root
    /// /run/containerd/husk/<namespace>, cgroups /<namespace>/<id>).
    #[arg(long, default_value = "huskd")]
    namespace: String,
    /// The shim binary; by default containerd-shim-husk-v2 beside huskd, else on $PATH.
    #[arg(long)]
    shim: Option<PathBuf>,
    /// The init mounted into containers created with `Init` (--init); by default husk-init
    /// beside huskd, else on $PATH.
    #[arg(long = "init-path")]
    init_path: Option<PathBuf>,
    /// The bridge containers of the default network mode are put on (made if missing), or
    /// `none` for no bridge networking.
    #[arg(long, default_value = husk_net::DEFAULT_BRIDGE)]
    bridge: String,
    /// The bridge's subnet; the gateway is its first address. Refused if a route of the host
    /// overlaps it.
    #[arg(long = "bridge-subnet", default_value = husk_net::DEFAULT_SUBNET)]
    bridge_subnet: String,
    /// The proxy started for each published port (`-p`); by default husk-proxy beside huskd,
    /// else on $PATH.
    #[arg(long = "userland-proxy-path")]
    userland_proxy_path: Option<PathBuf>,
    /// A registry (host:port) spoken to over plain HTTP; may be repeated.
    #[arg(long = "insecure-registry")]
    insecure_registry: Vec<String>,
    /// Log debug messages too.
    #[arg(long)]
    debug: bool,
}

/// `name` beside huskd, else the first on $PATH.
fn find_beside(name: &str) -> Option<PathBuf> {
    let beside = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(|d| d.join(name)));
    let path = std::env::var_os("PATH").unwrap_or_default();
    beside
        .into_iter()
        .chain(std::env::split_paths(&path).map(|d| d.join(name)))
        .find(|p| p.is_file())
}

struct Stderr;

impl log::Log for Stderr {
    fn enabled(&self, m: &log::Metadata) -> bool {
        m.level() <= log::max_level()
    }
    fn log(&self, r: &log::Record) {
        if self.enabled(r.metadata()) {
            eprintln!(
                "{} huskd {}: {}",
                logs::now_rfc3339nano(),
                r.level(),
                r.args()
            );
        }
    }
    fn flush(&self) {}
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    log::set_logger(&Stderr).map_err(|e| anyhow::anyhow!("logger: {e}"))?;
    log::set_max_level(if cli.debug {
        log::LevelFilter::Debug
    } else {
        log::LevelFilter::Info
    });
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("tokio runtime")?
        .block_on(run(cli))
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    if let Some(dir) = cli.socket.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("mkdir {}", dir.display()))?;
    }
    if std::os::unix::net::UnixStream::connect(&cli.socket).is_ok() {
        anyhow::bail!("{}: another huskd serves it", cli.socket.display());
    }
    let paths = daemon::Paths {
        events: cli.state.join("events.sock"),
        root: cli.root,
        state: cli.state,
        socket: cli.socket.clone(),
        namespace: cli.namespace,
        shim: shim::find(cli.shim.as_deref()),
        init: cli.init_path.or_else(|| find_beside(spec::INIT)),
    };
    let net = if cli.bridge == "none" {
        None
    } else {
        let subnet = husk_net::parse_subnet(&cli.bridge_subnet).context("--bridge-subnet")?;
        let proxy = cli
            .userland_proxy_path
            .or_else(|| find_beside("husk-proxy"))
            .unwrap_or_else(|| "husk-proxy".into());
        let store = paths.root.join("network.redb");
        std::fs::create_dir_all(&paths.root)
            .with_context(|| format!("mkdir {}", paths.root.display()))?;
        let network = husk_net::Network::open(&cli.bridge, subnet, &store, &proxy)
            .await
            .with_context(|| format!("--bridge {}", cli.bridge))?;
        Some(network)
    };
    let d = daemon::Daemon::open(paths, cli.insecure_registry, net)?;
    // Exits are queued from the start and handled once the containers are recovered.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let _events = events::serve(&d.paths.events, tx)?;
    d.recover().await;
    match std::fs::remove_file(&cli.socket) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(e).with_context(|| format!("remove {}", cli.socket.display()))
        }
        _ => {}
    }
    // Made 0600 from the start: no moment where another user could connect. (umask is the
    // process's: nothing else creates files now, exits are handled only after this.)
    let old = nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o177));
    let listener = tokio::net::UnixListener::bind(&cli.socket)
        .with_context(|| format!("listen on {}", cli.socket.display()));
    nix::sys::stat::umask(old);
    let listener = listener?;
    let d2 = d.clone();
    tokio::spawn(async move {
        while let Some(e) = rx.recv().await {
            let d = d2.clone();
            tokio::spawn(async move { d.on_exit(e).await });
        }
    });
    log::info!("serving {}", cli.socket.display());
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = api::serve(d, listener) => {}
        _ = term.recv() => log::info!("SIGTERM: leaving; containers keep running in their shims"),
        _ = tokio::signal::ctrl_c() => log::info!("SIGINT: leaving; containers keep running in their shims"),
    }
    // Gone already is fine: a new huskd replaces it anyway.
    let _ = std::fs::remove_file(&cli.socket);
    Ok(())
}
