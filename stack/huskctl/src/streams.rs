//! A container's output as the daemon sends it: raw bytes with a tty, else Docker's
//! multiplexed stream (frames of an 8-byte header — stream, 0, 0, 0, big-endian length — then
//! the payload), split back onto our stdout and stderr.

use std::{
    io::{self, Read, Write},
    net::Shutdown,
    os::unix::net::UnixStream,
};

use crate::client::Hijacked;

/// Docker's stream numbers in a frame header.
const STDERR: u8 = 2;
/// The daemon's own error, sent in the stream (Docker's `Systemerr`).
const SYSTEMERR: u8 = 3;

pub struct Demux {
    tty: bool,
    header: Vec<u8>,
    stream: u8,
    left: usize,
}

impl Demux {
    pub fn new(tty: bool) -> Demux {
        Demux {
            tty,
            header: Vec::with_capacity(8),
            stream: 0,
            left: 0,
        }
    }

    /// Writes what `data` carries to stdout and stderr; flushes so that output interleaves as
    /// the container wrote it.
    pub fn feed(&mut self, mut data: &[u8]) -> io::Result<()> {
        let (mut out, mut err) = (io::stdout().lock(), io::stderr().lock());
        if self.tty {
            out.write_all(data)?;
            return out.flush();
        }
        while !data.is_empty() {
            if self.left == 0 {
                let need = 8 - self.header.len();
                let n = need.min(data.len());
                self.header.extend_from_slice(&data[..n]);
                data = &data[n..];
                if self.header.len() < 8 {
                    break;
                }
                self.stream = self.header[0];
                self.left = u32::from_be_bytes([
                    self.header[4],
                    self.header[5],
                    self.header[6],
                    self.header[7],
                ]) as usize;
                self.header.clear();
                continue;
            }
            let n = self.left.min(data.len());
            let (chunk, rest) = data.split_at(n);
            match self.stream {
                STDERR => err.write_all(chunk)?,
                SYSTEMERR => {
                    return Err(io::Error::other(format!(
                        "error from daemon in stream: {}",
                        String::from_utf8_lossy(chunk).trim()
                    )))
                }
                // stdin echoes and stdout both go to stdout, as Docker's stdcopy does.
                _ => out.write_all(chunk)?,
            }
            self.left -= n;
            data = rest;
        }
        out.flush()?;
        err.flush()
    }
}

/// Copies a hijacked connection's output to stdout/stderr until the daemon closes it.
pub fn pump_output(h: &Hijacked, tty: bool) -> io::Result<()> {
    let mut demux = Demux::new(tty);
    demux.feed(&h.buffered)?;
    let mut stream = &h.stream;
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        let n = match stream.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            // The daemon closing the connection hard ends the stream as an EOF would.
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => return Ok(()),
            Err(e) => return Err(e),
        };
        demux.feed(&buf[..n])?;
    }
}

/// Copies our stdin to the container on its own thread, then half-closes the connection so
/// that the container sees EOF, as Docker's client does. The thread is left blocked in read
/// when the container ends first; the process exits without waiting for it.
pub fn pump_stdin(stream: &UnixStream) -> io::Result<()> {
    let mut conn = stream.try_clone()?;
    std::thread::spawn(move || {
        let mut stdin = io::stdin().lock();
        if let Err(e) = io::copy(&mut stdin, &mut conn) {
            log::debug!("copying stdin to the container: {e}");
        }
        if let Err(e) = conn.shutdown(Shutdown::Write) {
            log::debug!("closing the container's stdin: {e}");
        }
    });
    Ok(())
}
