//! Container output: read from the FIFOs the shim writes, written as Docker's json-file driver
//! writes it (`{"log":"…\n","stream":"stdout","time":"<RFC3339Nano>"}` per line), and sent to
//! followers and attached clients. Each line carries its offset in the file, so a follower that
//! read the file first and subscribed before skips what it has seen.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use tokio::io::AsyncReadExt;
use tokio::sync::broadcast;

/// Docker's json-file driver cuts lines longer than this into partial ones.
const MAX_LINE: usize = 16 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    Stdout,
    Stderr,
}

#[derive(Debug, Clone)]
pub struct Chunk {
    /// Where its line starts in the log file.
    pub offset: u64,
    pub stream: Stream,
    pub data: Bytes,
}

#[derive(Serialize, Deserialize)]
struct Line {
    log: String,
    stream: Stream,
    time: String,
}

/// Go's RFC3339Nano, which Docker writes: UTC, trailing zeros of the fraction dropped.
pub fn now_rfc3339nano() -> String {
    let s = chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.9f")
        .to_string();
    let s = s.trim_end_matches('0').trim_end_matches('.');
    format!("{s}Z")
}

/// The json-file of one container, shared by its two copiers.
pub struct LogFile {
    path: PathBuf,
    file: Mutex<File>,
    pub tx: broadcast::Sender<Chunk>,
}

impl LogFile {
    pub fn open(path: &Path) -> std::io::Result<Arc<LogFile>> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        let (tx, _) = broadcast::channel(1024);
        Ok(Arc::new(LogFile {
            path: path.to_path_buf(),
            file: Mutex::new(file),
            tx,
        }))
    }

    fn write(&self, stream: Stream, data: &[u8]) {
        let line = Line {
            log: String::from_utf8_lossy(data).into_owned(),
            stream,
            time: now_rfc3339nano(),
        };
        let mut json = serde_json::to_vec(&line).unwrap_or_default();
        json.push(b'\n');
        let mut f = self.file.lock().unwrap();
        let offset = f.metadata().map(|m| m.len()).unwrap_or(0);
        if let Err(e) = f.write_all(&json) {
            log::error!("{}: {e}", self.path.display());
        }
        // No receiver (nobody follows) is the usual case.
        let _ = self.tx.send(Chunk {
            offset,
            stream,
            data: Bytes::copy_from_slice(data),
        });
    }

    /// The file's length now: lines sent after this point have offsets at or beyond it.
    pub fn len(&self) -> u64 {
        self.file
            .lock()
            .unwrap()
            .metadata()
            .map(|m| m.len())
            .unwrap_or(0)
    }
}

/// Opens a FIFO's read side, without blocking. Opened after the shim's Create, by which time
/// the shim holds the FIFO open read-write (it found no reader): so the container's writes
/// never fail while huskd is away, they block once the pipe's buffer is full, as under
/// Docker's live-restore; and EOF comes only when the shim lets go. It must be open before the
/// process starts: a FIFO nobody holds any more loses what was in it.
pub fn open_fifo(fifo: &Path) -> std::io::Result<tokio::net::unix::pipe::Receiver> {
    let rx = tokio::net::unix::pipe::OpenOptions::new().open_receiver(fifo)?;
    grow_pipe(&rx);
    Ok(rx)
}

/// Copies one FIFO into the log until EOF (the shim closed its end: the container's processes
/// are gone and the shim's copy drained).
pub async fn copy(mut rx: tokio::net::unix::pipe::Receiver, stream: Stream, log: Arc<LogFile>) {
    let fifo = format!("{stream:?}");
    let mut pending: Vec<u8> = Vec::new();
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        let n = match rx.read(&mut buf).await {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) => {
                log::error!("read {fifo}: {e}");
                break;
            }
        };
        pending.extend_from_slice(&buf[..n]);
        let mut start = 0;
        while let Some(i) = pending[start..].iter().position(|b| *b == b'\n') {
            log.write(stream, &pending[start..start + i + 1]);
            start += i + 1;
        }
        pending.drain(..start);
        while pending.len() >= MAX_LINE {
            log.write(stream, &pending[..MAX_LINE]);
            pending.drain(..MAX_LINE);
        }
    }
    if !pending.is_empty() {
        log.write(stream, &pending);
    }
}

/// What the container writes while huskd is down waits in the FIFO: as much of it as the
/// pipe's buffer holds, raised from 64 KiB to the largest an unprivileged pipe may have.
fn grow_pipe(rx: &tokio::net::unix::pipe::Receiver) {
    use std::os::fd::AsRawFd;
    let max = std::fs::read_to_string("/proc/sys/fs/pipe-max-size")
        .ok()
        .and_then(|s| s.trim().parse::<i32>().ok())
        .unwrap_or(1 << 20);
    // SAFETY: fcntl on a descriptor we own, with an integer argument.
    if unsafe { libc::fcntl(rx.as_raw_fd(), libc::F_SETPIPE_SZ, max) } < 0 {
        log::warn!("F_SETPIPE_SZ: {}", std::io::Error::last_os_error());
    }
}

/// One line of a log file, parsed.
pub struct Entry {
    pub stream: Stream,
    pub time: String,
    pub data: Vec<u8>,
}

/// The log file's entries up to `end` (bytes), the last `tail` of them when given.
pub fn read(path: &Path, end: u64, tail: Option<usize>) -> std::io::Result<Vec<Entry>> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    let mut read = 0u64;
    for line in BufReader::new(file).lines() {
        let line = line?;
        read += line.len() as u64 + 1;
        if read > end {
            break;
        }
        if let Ok(l) = serde_json::from_str::<Line>(&line) {
            out.push(Entry {
                stream: l.stream,
                time: l.time,
                data: l.log.into_bytes(),
            });
        }
    }
    if let Some(t) = tail {
        let skip = out.len().saturating_sub(t);
        out.drain(..skip);
    }
    Ok(out)
}

/// Docker's multiplexed stream: an 8-byte header (stream 1 or 2, three zero bytes, the length
/// big-endian) before each chunk. With a terminal there is one stream and no header.
pub fn frame(stream: Stream, data: &[u8], tty: bool) -> Bytes {
    if tty {
        return Bytes::copy_from_slice(data);
    }
    let mut out = Vec::with_capacity(8 + data.len());
    out.push(match stream {
        Stream::Stdout => 1,
        Stream::Stderr => 2,
    });
    out.extend_from_slice(&[0, 0, 0]);
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    out.extend_from_slice(data);
    Bytes::from(out)
}
