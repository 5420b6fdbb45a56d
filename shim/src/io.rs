//! A process's stdio. As with the Go shim, the container gets pipes, and a thread per stream
//! copies them into the client's FIFOs (or files): CRIU can checkpoint a pipe, not a FIFO that
//! lies outside the container's mounts, and runc's options' IoUid/IoGid name the pipes' owner.
//! The client sees EOF once the container's last process has closed its end and the copy has
//! drained it; Delete waits (bounded) for that. Stdin goes through a pipe fed by a thread, so
//! that CloseIO can close it whether or not the client ever opened its end. Terminals come back
//! over a console socket; a thread per direction copies to and from them.

use std::{
    fs::{File, OpenOptions},
    io::{self, Read, Write},
    os::{
        fd::{AsFd, AsRawFd, FromRawFd, OwnedFd},
        unix::{fs::OpenOptionsExt, net::UnixListener},
    },
    path::PathBuf,
    sync::{
        atomic::{AtomicU64, Ordering},
        mpsc, Arc, Mutex,
    },
    time::Duration,
};

use nix::{
    cmsg_space,
    fcntl::{fcntl, FcntlArg, OFlag},
    poll::{poll, PollFd, PollFlags, PollTimeout},
    sys::socket::{recvmsg, ControlMessageOwned, MsgFlags},
};

/// How long Delete waits for a terminal's output still in the pty: a process the container left
/// behind may hold the terminal open for ever.
const OUTPUT_DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// Where the stdin copy writes; None once closed.
pub type Sink = Arc<Mutex<Option<File>>>;

#[derive(Default)]
pub struct Paths {
    pub stdin: String,
    pub stdout: String,
    pub stderr: String,
    pub terminal: bool,
}

/// What is kept of a process's stdio after the runtime has started it.
#[derive(Default)]
pub struct Io {
    pub stdin: Option<Sink>,
    pub stdin_path: String,
    /// The pty master, for resizes.
    pub console: Option<File>,
    /// Disconnected once the output has all been copied.
    pub output_done: Option<mpsc::Receiver<()>>,
    /// The client's output FIFOs, which a copy may still be waiting on.
    pub output_fifos: Vec<String>,
}

impl Io {
    /// Waits (bounded) until the terminal's output has reached the client's FIFO. The client
    /// stops reading once Delete returns, as with the Go shim, which waits the same way.
    /// A copy still waiting for a reader that never came (a client gone) is released then.
    pub fn wait_output(done: Option<mpsc::Receiver<()>>, fifos: &[String]) {
        if let Some(rx) = done {
            // Nothing is sent: the copy ends by dropping its sender, or the timeout passes.
            if let Err(mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(OUTPUT_DRAIN_TIMEOUT) {
                for f in fifos {
                    // A reader's open and close lets a writer's blocked open return. A FIFO
                    // gone has no copy waiting on it.
                    let _ = own_reader(f);
                }
            }
        }
    }

    /// As `wait_output`, for Delete: the process is gone and so is the client's interest. A
    /// copy still blocked after the bound (its client gone, the FIFO full: the copy holds a
    /// reader of its own) is drained into nothing until it ends, for as long again, so that its
    /// thread and descriptors do not outlive the process (the Go shim closes its FIFOs then).
    pub fn finish_output(done: Option<mpsc::Receiver<()>>, fifos: &[String]) {
        let Some(rx) = done else { return };
        // Disconnected is the copy's end; nothing is ever sent.
        if !matches!(
            rx.recv_timeout(OUTPUT_DRAIN_TIMEOUT),
            Err(mpsc::RecvTimeoutError::Timeout)
        ) {
            return;
        }
        let readers: Vec<File> = fifos.iter().filter_map(|f| own_reader(f).ok()).collect();
        let deadline = std::time::Instant::now() + OUTPUT_DRAIN_TIMEOUT;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            for mut r in &readers {
                // Non-blocking: EAGAIN (nothing there now) or EOF ends the round.
                while matches!(r.read(&mut buf), Ok(n) if n > 0) {}
            }
            match rx.recv_timeout(Duration::from_millis(20)) {
                Err(mpsc::RecvTimeoutError::Timeout) if std::time::Instant::now() < deadline => {}
                _ => return,
            }
        }
    }

    /// Closes stdin. A copy still waiting for the FIFO's writer (which never came) is released
    /// by opening and closing the FIFO's write side once.
    pub fn close_stdin(&mut self) {
        if let Some(sink) = self.stdin.take() {
            sink.lock().unwrap().take();
            // ENXIO means the copy has closed its end already: nothing to release.
            let _ = OpenOptions::new()
                .write(true)
                .custom_flags(libc::O_NONBLOCK)
                .open(&self.stdin_path);
        }
    }
}

/// A pipe whose ends no concurrently spawned child inherits: the shim's threads spawn runtime
/// commands at any time.
pub fn cloexec_pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    Ok(nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?)
}

/// How long a `binary://` logger may take to say it is ready (by closing its fd 5).
const LOGGER_READY_TIMEOUT: Duration = Duration::from_secs(10);

/// Starts a `binary:///path?key=value` logger, as containerd's shims do for Docker and nerdctl:
/// the binary reads stdout on fd 3 and stderr on fd 4, and closes fd 5 once ready. Returns the
/// write ends, for the container.
fn start_logger(uri: &str, id: &str, namespace: &str) -> io::Result<(File, File)> {
    let rest = uri.trim_start_matches("binary://");
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    let mut cmd = std::process::Command::new(path);
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        cmd.arg(k);
        if !v.is_empty() {
            cmd.arg(v);
        }
    }
    let (out_r, out_w) = cloexec_pipe()?;
    let (err_r, err_w) = cloexec_pipe()?;
    let (wait_r, wait_w) = cloexec_pipe()?;
    let fds = [out_r.as_raw_fd(), err_r.as_raw_fd(), wait_w.as_raw_fd()];
    cmd.env("CONTAINER_ID", id)
        .env("CONTAINER_NAMESPACE", namespace)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    // SAFETY: only fcntl and dup2, which are async-signal-safe, between fork and exec.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut cmd, move || {
            // Moved out of 3..=5 first, so that no dup2 overwrites a source still to come.
            let mut high = [0; 3];
            for (h, fd) in high.iter_mut().zip(fds) {
                *h = libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 10);
                if *h < 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            for (i, h) in high.iter().enumerate() {
                if libc::dup2(*h, 3 + i as i32) < 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    cmd.spawn()
        .map_err(|e| io::Error::new(e.kind(), format!("logger {path}: {e}")))?;
    drop((out_r, err_r, wait_w));
    // EOF (or the timeout): the logger closed fd 5, or died, whose output errors then show.
    let mut wait = File::from(wait_r);
    let mut fds = [nix::poll::PollFd::new(
        wait.as_fd(),
        nix::poll::PollFlags::POLLIN,
    )];
    let timeout = nix::poll::PollTimeout::try_from(LOGGER_READY_TIMEOUT)
        .unwrap_or(nix::poll::PollTimeout::MAX);
    if nix::poll::poll(&mut fds, timeout)? == 0 {
        return Err(io::Error::other(format!(
            "logger {path} not ready within {LOGGER_READY_TIMEOUT:?}"
        )));
    }
    // Only EOF is expected; whatever it wrote is ignored, as by containerd.
    let _ = wait.read(&mut [0u8; 1]);
    Ok((File::from(out_w), File::from(err_w)))
}

fn devnull(write: bool) -> io::Result<File> {
    OpenOptions::new()
        .read(!write)
        .write(write)
        .open("/dev/null")
}

/// Where an output goes: a file, a FIFO of the client's, or one whose reader the client has not
/// opened yet.
enum Output {
    Open(File),
    /// The FIFO's write end, and a read end of our own, as the Go shim keeps one: while the
    /// client is away (containerd or huskd restarting) the output waits in the FIFO, up to its
    /// size, instead of failing the copy with EPIPE and ending it for good.
    Fifo(File, File),
    /// The copy opens it, waiting for the reader, as the Go shim's open of a FIFO waits.
    /// containerd opens its readers on a goroutine of their own, which may come late: a
    /// read-write open here (this shim's way until it lost output) let a short-lived process's
    /// output into the FIFO and out again with its last close, before that reader came, which
    /// then waited for ever (CRI's ExecSync hung until its timeout).
    AwaitReader(String),
}

impl Output {
    fn is_fifo(&self) -> bool {
        !matches!(self, Output::Open(_))
    }
}

/// Our own read end of an output FIFO (see Output::Fifo): non-blocking, so that the open does
/// not wait for a writer.
fn own_reader(path: &str) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
}

/// Opens an output: a FIFO of the client's, or a `file://` log URI.
fn open_output(path: &str) -> io::Result<Output> {
    if path.is_empty() {
        return devnull(true).map(Output::Open);
    }
    if let Some(file) = path.strip_prefix("file://") {
        if let Some(dir) = std::path::Path::new(file).parent() {
            std::fs::create_dir_all(dir)?;
        }
        return OpenOptions::new()
            .append(true)
            .create(true)
            .open(file)
            .map(Output::Open);
    }
    match OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
    {
        Ok(f) => {
            nix::fcntl::fcntl(
                &f,
                nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::empty()),
            )?;
            Ok(Output::Fifo(f, own_reader(path)?))
        }
        Err(e) if e.raw_os_error() == Some(libc::ENXIO) => Ok(Output::AwaitReader(path.into())),
        Err(e) => Err(e),
    }
}

/// Starts copying the client's stdin FIFO into `sink`. The FIFO's read end is open before this
/// returns, as with the Go shim: a client opening its end without blocking (huskd, and Docker
/// through containerd's fifo package) would otherwise get ENXIO and lose stdin whenever this
/// thread is scheduled late.
fn spawn_stdin_copy(path: String, sink: Sink) -> io::Result<()> {
    // Non-blocking, so that the open does not wait for the writer; that wait is the poll below.
    let fifo = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&path)?;
    std::thread::Builder::new()
        .name("stdin".into())
        .stack_size(64 * 1024)
        .spawn(move || {
            // Until a writer has come, a FIFO's reader sees neither data nor a hang-up: this
            // waits for the client, or for close_stdin's open and close of the write side.
            let mut fds = [PollFd::new(fifo.as_fd(), PollFlags::POLLIN)];
            loop {
                match poll(&mut fds, PollTimeout::NONE) {
                    Err(nix::errno::Errno::EINTR) => continue,
                    Err(e) => {
                        log::warn!("stdin {path}: poll: {e}");
                        sink.lock().unwrap().take();
                        return;
                    }
                    Ok(_) => break,
                }
            }
            // A writer has been here: from now on a read that finds none left is the end.
            if let Err(e) = fcntl(&fifo, FcntlArg::F_SETFL(OFlag::empty())) {
                log::warn!("stdin {path}: {e}");
            }
            let mut fifo = fifo;
            let mut buf = [0u8; 8192];
            loop {
                let n = match fifo.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                let written = sink
                    .lock()
                    .unwrap()
                    .as_mut()
                    .map(|w| w.write_all(&buf[..n]).is_ok());
                if written != Some(true) {
                    break;
                }
            }
            sink.lock().unwrap().take();
        })?;
    Ok(())
}

/// Copies `from` into `to` on a thread of its own, which drops `done` when the copy is over.
fn spawn_output_copy(mut from: File, to: Output, done: mpsc::Sender<()>) -> io::Result<()> {
    std::thread::Builder::new()
        .name("stdout".into())
        .stack_size(64 * 1024)
        .spawn(move || {
            let (mut to, own) = match to {
                Output::Open(f) => (f, None),
                Output::Fifo(w, r) => (w, Some(r)),
                Output::AwaitReader(path) => {
                    let opened = OpenOptions::new()
                        .write(true)
                        .open(&path)
                        .and_then(|w| Ok((w, own_reader(&path)?)));
                    match opened {
                        Ok((w, r)) => (w, Some(r)),
                        Err(e) => {
                            log::warn!("open output {path}: {e}");
                            return;
                        }
                    }
                }
            };
            // A terminal's copy ends with EIO once the last slave is closed. Any other error
            // loses the rest of the output: said in containerd's log. Dropping `to` gives the
            // client EOF.
            if let Err(e) = io::copy(&mut from, &mut to) {
                if e.raw_os_error() != Some(libc::EIO) {
                    log::warn!("copy output: {e}");
                }
            }
            // The writer first: the client's EOF needs every writer gone, not our reader.
            drop(to);
            drop(own);
            drop(done);
        })?;
    Ok(())
}

/// A pipe, owned by `owner` when given; the container gets the write end, and a thread copies
/// what comes out of it into `to`.
fn piped_output(
    to: Output,
    owner: Option<(u32, u32)>,
    done: &mpsc::Sender<()>,
) -> io::Result<File> {
    let (r, w) = cloexec_pipe()?;
    if let Some(owner) = owner {
        chown(&r, owner)?;
        chown(&w, owner)?;
    }
    spawn_output_copy(File::from(r), to, done.clone())?;
    Ok(File::from(w))
}

fn chown(fd: &impl AsFd, (uid, gid): (u32, u32)) -> io::Result<()> {
    nix::unistd::fchown(fd, Some(uid.into()), Some(gid.into())).map_err(io::Error::from)
}

/// Stdio for a process without a terminal: the three files to hand to the runtime.
pub fn open_pipes(
    p: &Paths,
    id: &str,
    namespace: &str,
    owner: Option<(u32, u32)>,
) -> io::Result<([File; 3], Io)> {
    let mut fifos = Vec::new();
    let (stdout, stderr, output_done) = if p.stdout.starts_with("binary://") {
        let (out, err) = start_logger(&p.stdout, id, namespace)?;
        (out, err, None)
    } else {
        let (done, rx) = mpsc::channel::<()>();
        let mut piped = |path: &str| match open_output(path)? {
            Output::Open(f) if path.is_empty() => Ok::<_, io::Error>(f),
            o => {
                if o.is_fifo() {
                    fifos.push(path.to_string());
                }
                piped_output(o, owner, &done)
            }
        };
        let (out, err) = (piped(&p.stdout)?, piped(&p.stderr)?);
        (out, err, Some(rx))
    };
    if p.stdin.is_empty() {
        let io = Io {
            output_done,
            output_fifos: fifos,
            ..Io::default()
        };
        return Ok(([devnull(false)?, stdout, stderr], io));
    }
    let (r, w) = cloexec_pipe()?;
    if let Some(owner) = owner {
        chown(&r, owner)?;
    }
    let sink: Sink = Arc::new(Mutex::new(Some(File::from(w))));
    spawn_stdin_copy(p.stdin.clone(), sink.clone())?;
    let io = Io {
        stdin: Some(sink),
        stdin_path: p.stdin.clone(),
        output_done,
        output_fifos: fifos,
        ..Io::default()
    };
    Ok(([File::from(r), stdout, stderr], io))
}

/// The socket the runtime sends the pty master over (`--console-socket`).
pub struct ConsoleSocket {
    pub path: PathBuf,
    listener: UnixListener,
}

impl ConsoleSocket {
    pub fn new() -> io::Result<Self> {
        // Unique within the shim (two containers of a pod may run execs of the same id), and
        // short: a bundle path can exceed a socket address's 108 bytes.
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("husk-shim-{}-{n}.sock", std::process::id()));
        // A stale socket of a dead shim with our pid would make bind fail.
        let _ = std::fs::remove_file(&path);
        let listener = UnixListener::bind(&path)?;
        Ok(ConsoleSocket { path, listener })
    }

    /// Takes the master the runtime sent (it has by the time its create or exec returned),
    /// and starts copying between it and the client's FIFOs.
    pub fn receive(self, p: &Paths) -> io::Result<Io> {
        let (conn, _) = self.listener.accept()?;
        let mut buf = [0u8; 4096];
        let mut iov = [io::IoSliceMut::new(&mut buf)];
        let mut space = cmsg_space!([std::os::fd::RawFd; 1]);
        let msg = recvmsg::<()>(
            conn.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            MsgFlags::MSG_CMSG_CLOEXEC,
        )?;
        let fd = msg
            .cmsgs()?
            .find_map(|c| match c {
                ControlMessageOwned::ScmRights(fds) => fds.first().copied(),
                _ => None,
            })
            .ok_or_else(|| {
                io::Error::other("the runtime sent no terminal over the console socket")
            })?;
        // SAFETY: SCM_RIGHTS just gave this process the descriptor; nothing else owns it.
        let master = File::from(unsafe { OwnedFd::from_raw_fd(fd) });
        let mut io = Io {
            console: Some(master.try_clone()?),
            ..Io::default()
        };
        if !p.stdout.is_empty() {
            let (done, rx) = mpsc::channel::<()>();
            let out = open_output(&p.stdout)?;
            if out.is_fifo() {
                io.output_fifos.push(p.stdout.clone());
            }
            spawn_output_copy(master.try_clone()?, out, done)?;
            io.output_done = Some(rx);
        }
        if !p.stdin.is_empty() {
            let sink: Sink = Arc::new(Mutex::new(Some(master)));
            spawn_stdin_copy(p.stdin.clone(), sink.clone())?;
            io.stdin = Some(sink);
            io.stdin_path = p.stdin.clone();
        }
        Ok(io)
    }
}

impl Drop for ConsoleSocket {
    fn drop(&mut self) {
        // Gone already is fine.
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A FIFO in a fresh directory of its own, and a pipe standing for the container's stdin.
    fn setup(name: &str) -> (PathBuf, Sink, File) {
        let dir = std::env::temp_dir().join(format!("husk-shim-io-{}-{name}", std::process::id()));
        // Left over from an earlier run with the same pid, if any.
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir(&dir).unwrap();
        let path = dir.join("stdin");
        nix::unistd::mkfifo(&path, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let (r, w) = cloexec_pipe().unwrap();
        (
            path,
            Arc::new(Mutex::new(Some(File::from(w)))),
            File::from(r),
        )
    }

    /// The client may open its end without blocking as soon as the copy is set up (the race
    /// that lost huskd's `exec -it` input under load), and what it wrote before closing arrives.
    #[test]
    fn stdin_reader_is_open_when_the_copy_is_set_up() {
        let (path, sink, mut container) = setup("open");
        spawn_stdin_copy(path.display().to_string(), sink).unwrap();
        let mut client = OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&path)
            .expect("the writer's non-blocking open finds the reader");
        client.write_all(b"stty size\n").unwrap();
        drop(client);
        let mut got = String::new();
        // Ends when the copy drops the sink after the client's EOF.
        container.read_to_string(&mut got).unwrap();
        assert_eq!(got, "stty size\n");
        std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }

    /// close_stdin ends a copy whose client never came, and the container sees EOF.
    #[test]
    fn close_stdin_releases_a_copy_without_a_client() {
        let (path, sink, mut container) = setup("close");
        spawn_stdin_copy(path.display().to_string(), sink.clone()).unwrap();
        let mut io = Io {
            stdin: Some(sink),
            stdin_path: path.display().to_string(),
            ..Io::default()
        };
        io.close_stdin();
        let mut got = Vec::new();
        container.read_to_end(&mut got).unwrap();
        assert!(got.is_empty());
        std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }
}
