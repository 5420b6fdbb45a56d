//! containerd-shim-husk-v2: the containerd shim (task API v2) that runs containers with husk, or
//! with any runc-compatible runtime named by runc's options (BinaryName).

mod checkpoint;
mod cri_options;
mod events;
mod io;
mod oom;
mod runtime;
mod service;
mod stats;

use std::{
    env,
    io::Read,
    os::fd::{AsFd, FromRawFd, OwnedFd},
    os::unix::process::CommandExt,
    path::Path,
    process::{Command, Stdio},
    sync::Arc,
    time::{Duration, Instant},
};

use containerd_shim::{
    api::DeleteResponse,
    parse,
    protos::ttrpc::Client,
    publisher::RemotePublisher,
    socket_address,
    util::{read_options, timestamp, write_address},
    Config, Error, ExitSignal, Flags, Shim, StartOpts,
};

use nix::{
    poll::{poll, PollFd, PollFlags, PollTimeout},
    sys::signal::{signal, SigHandler, Signal},
};

use crate::runtime::{command_timeout, find_binary};

const RUNTIME_ID: &str = "io.containerd.husk.v2";
/// Annotations that put containers into one shim: runc's own, and the CRI plugin's pod id.
const GROUP_LABELS: [&str; 2] = [
    "io.containerd.runc.v2.group",
    "io.kubernetes.cri.sandbox-id",
];

struct HuskShim {
    id: String,
    namespace: String,
    bundle: String,
    socket: String,
    exit: Arc<ExitSignal>,
}

/// The id of the shim that serves container `id`: its group's, when its spec names one.
fn grouping(bundle: &Path, id: &str) -> String {
    std::fs::read(bundle.join("config.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|spec| {
            GROUP_LABELS
                .iter()
                .find_map(|l| spec["annotations"][l].as_str().map(str::to_string))
        })
        .unwrap_or_else(|| id.to_string())
}

/// As the Go shim does: the daemon goes into runc's options' ShimCgroup, which containerd
/// sends on `start`'s stdin, and its OOM score is one above containerd's (so that it goes
/// before containerd, and after the containers, whose scores are higher still).
fn place(
    pid: u32,
    options: &Option<containerd_shim::protos::shim::oci::Options>,
) -> containerd_shim::Result<()> {
    if let Some(o) = options {
        if !o.shim_cgroup.is_empty() {
            containerd_shim::cgroup::add_task_to_cgroup(&o.shim_cgroup, pid).map_err(|e| {
                Error::Other(format!("failed to join cgroup {}: {e}", o.shim_cgroup))
            })?;
        }
    }
    containerd_shim::cgroup::adjust_oom_score(pid)
}

impl HuskShim {
    fn start(&mut self, opts: StartOpts) -> containerd_shim::Result<String> {
        let group = grouping(Path::new(&self.bundle), &opts.id);
        let address = socket_address(&opts.address, &opts.namespace, &group);
        let path = address.trim_start_matches("unix://");
        // Read and checked before any daemon exists: bad options leave nothing behind.
        let mut data = Vec::new();
        std::io::stdin()
            .read_to_end(&mut data)
            .map_err(|e| Error::Other(format!("read runtime options from stdin: {e}")))?;
        let options = service::parse_start_options(&data).map_err(Error::Other)?;
        if Client::connect(&address).is_ok() {
            write_address(&address)?;
            return Ok(address);
        }
        // A socket nobody serves is a dead shim's.
        let _ = std::fs::remove_file(path);
        let exe = env::current_exe().map_err(|e| Error::Other(format!("current exe: {e}")))?;
        let mut cmd = Command::new(exe);
        cmd.args([
            "-namespace",
            &opts.namespace,
            "-id",
            &opts.id,
            "-address",
            &opts.address,
        ])
        .args(["-socket", &address])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
        if opts.debug {
            cmd.arg("-debug");
        }
        // Its own session: a signal to containerd's process group must not reach the shim.
        // SAFETY: setsid is async-signal-safe.
        unsafe {
            cmd.pre_exec(|| {
                nix::unistd::setsid()
                    .map(drop)
                    .map_err(std::io::Error::from)
            });
        }
        let mut child = cmd
            .spawn()
            .map_err(|e| Error::Other(format!("spawn shim: {e}")))?;
        // The daemon closes its stdout once it serves the socket (or found it served).
        let mut sink = Vec::new();
        if let Some(mut out) = child.stdout.take() {
            // EOF is all that matters here.
            let _ = out.read_to_end(&mut sink);
        }
        if Client::connect(&address).is_err() {
            return Err(Error::Other(format!("shim failed to serve {address}")));
        }
        if let Err(e) = place(child.id(), &options) {
            // The daemon serves nobody yet; it leaves with its socket.
            if let Err(k) = child.kill() {
                log::warn!("kill shim {}: {k}", child.id());
            }
            // The daemon may not have bound it yet; gone is what is wanted either way.
            let _ = std::fs::remove_file(path);
            return Err(e);
        }
        write_address(&address)?;
        Ok(address)
    }

    /// `delete --force` of this container by its runtime, bounded like every runtime command.
    /// A container the runtime no longer knows is what we want: the status is not used.
    fn runtime_delete(&self, bundle: &Path) {
        let options = read_options(bundle).unwrap_or_default();
        let (name, root) = service::binary_and_root(&options);
        let Ok(binary) = find_binary(name) else {
            return;
        };
        let mut cmd = Command::new(binary);
        cmd.arg("--root")
            .arg(Path::new(root).join(&self.namespace))
            .arg("--log")
            .arg(bundle.join("log.json"))
            .args(["--log-format", "json", "delete", "--force", &self.id])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let Ok(mut child) = cmd.spawn() else {
            return;
        };
        // This process has no reaper: it waits for its child's pidfd, which a poll can bound.
        if !exits_within(&child, command_timeout()) {
            // Ended either way: by us, or just before.
            let _ = child.kill();
        }
        if let Err(e) = child.wait() {
            log::warn!("wait for the runtime's delete: {e}");
        }
    }
}

/// Whether `child` ends within `limit`; it is not reaped. Without a pidfd (a kernel before
/// 5.3, which husk does not support either) it is waited for unbounded.
fn exits_within(child: &std::process::Child, limit: Duration) -> bool {
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, child.id() as libc::pid_t, 0) };
    if fd < 0 {
        return true;
    }
    // SAFETY: a new fd that nothing else owns.
    let pidfd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    let deadline = Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let mut fds = [PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
        match poll(
            &mut fds,
            PollTimeout::try_from(left).unwrap_or(PollTimeout::MAX),
        ) {
            Ok(0) => return false,
            Ok(_) => return true,
            Err(nix::errno::Errno::EINTR) => continue,
            // Unbounded is worse than a runtime's delete cut short.
            Err(_) => return false,
        }
    }
}

impl Shim for HuskShim {
    type T = service::Service;

    fn new(_runtime_id: &str, args: &Flags, _config: &mut Config) -> Self {
        // The shim logs into the `log` FIFO of the first container's bundle, whose reader
        // containerd closes when that container is deleted. The library's handler would turn
        // each SIGPIPE into a debug log line, that line into the next SIGPIPE, and its signal
        // thread, which is also the reaper, would never reap again. Ignored, a write fails with
        // EPIPE instead. Children get SIGPIPE back: std resets it to the default in them.
        // SAFETY: SIG_IGN installs no handler.
        if let Err(e) = unsafe { signal(Signal::SIGPIPE, SigHandler::SigIgn) } {
            log::warn!("ignore SIGPIPE: {e}");
        }
        let bundle = if args.bundle.is_empty() {
            env::current_dir()
                .map(|d| d.display().to_string())
                .unwrap_or_default()
        } else {
            args.bundle.clone()
        };
        HuskShim {
            id: args.id.clone(),
            namespace: args.namespace.clone(),
            bundle,
            socket: args.socket.clone(),
            exit: Arc::default(),
        }
    }

    /// containerd runs this in the bundle; it prints the address of the shim that will serve the
    /// container, a live one of its group or a new daemon, and nothing else.
    fn start_shim(&mut self, opts: StartOpts) -> containerd_shim::Result<String> {
        self.start(opts).or_else(|e| {
            // The library would print the error's Debug form (`Other("...")`), which containerd
            // shows the user as it is; this is the Go shim's "NAME: message".
            match e {
                Error::Other(m) => eprintln!("{RUNTIME_ID}: {m}"),
                e => eprintln!("{RUNTIME_ID}: {e}"),
            }
            std::process::exit(1)
        })
    }
    /// Cleans up after a shim that is gone: the runtime's container, and the rootfs mount.
    /// containerd runs this after every shim's disconnect, also when the shim's own Delete has
    /// already removed the container; that Delete leaves a mark in the bundle, and the
    /// runtime is then not run again (notes/shim.md).
    fn delete_shim(&mut self) -> containerd_shim::Result<DeleteResponse> {
        let bundle = Path::new(&self.bundle);
        if !bundle.join(service::DELETED_MARK).exists() {
            self.runtime_delete(bundle);
        }
        let rootfs = bundle.join("rootfs");
        if let Err(e) = containerd_shim::mount::umount_recursive(rootfs.to_str(), libc::MNT_DETACH)
        {
            log::warn!("unmount {}: {e}", rootfs.display());
        }
        Ok(DeleteResponse {
            exit_status: 128 + libc::SIGKILL as u32,
            exited_at: Some(timestamp()?).into(),
            ..Default::default()
        })
    }

    fn wait(&mut self) {
        self.exit.wait();
        // The library removes the socket named in the `address` file of its working directory,
        // which is the first container's bundle, gone already when that container was deleted
        // before the others of its group.
        if let Err(e) = std::fs::remove_file(self.socket.trim_start_matches("unix://")) {
            log::warn!("remove {}: {e}", self.socket);
        }
    }

    /// The library's publisher is dropped: events go through a client of our own (events.rs).
    fn create_task_service(&self, publisher: RemotePublisher) -> Self::T {
        drop(publisher);
        service::Service::new(&self.namespace, self.exit.clone())
    }
}

fn main() {
    // One malloc arena for all threads: each thread that allocates would otherwise get an arena
    // of its own, with pages resident for every one. The shim's threads mostly sleep.
    // SAFETY: mallopt with an integer; a failure keeps glibc's default.
    unsafe { libc::mallopt(libc::M_ARENA_MAX, 1) };
    // `delete` waits for its runtime command itself: the shim library's reaper, which would
    // take that child's status, is for the daemon only.
    let args: Vec<_> = env::args_os().skip(1).collect();
    let flags = parse(&args).unwrap_or_default();
    if flags.version {
        println!(
            "containerd-shim-husk-v2:\n  Version: {}",
            env!("CARGO_PKG_VERSION")
        );
        return;
    }
    let action = flags.action;
    let config = Config {
        no_reaper: action == "delete",
        ..Config::default()
    };
    containerd_shim::run::<HuskShim>(RUNTIME_ID, Some(config));
}
