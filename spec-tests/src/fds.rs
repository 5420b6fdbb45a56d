//! Extra fds for the runtime process (fds 3, 4, ... as --preserve-fds and $LISTEN_FDS see them).

use std::io::Read;
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;

/// Pipes whose write ends become fds 3, 4, ... of the runtime process.
pub struct ExtraFds {
    readers: Vec<std::io::PipeReader>,
    writers: Vec<std::io::PipeWriter>,
}

impl ExtraFds {
    pub fn new(n: usize) -> ExtraFds {
        assert!(n <= 8);
        let (readers, writers) = (0..n).map(|_| std::io::pipe().expect("pipe")).unzip();
        ExtraFds { readers, writers }
    }

    /// Makes `cmd` get our write ends as fds 3.. (the originals are close-on-exec).
    pub fn install(&self, cmd: &mut std::process::Command) {
        let raw: Vec<i32> = self.writers.iter().map(|w| w.as_raw_fd()).collect();
        // SAFETY: only async-signal-safe fcntl/dup2 between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                // First move every source above the targets: a source may itself be fd 3 or 4.
                let mut high = [0; 8];
                for (i, fd) in raw.iter().enumerate() {
                    high[i] = libc::fcntl(*fd, libc::F_DUPFD_CLOEXEC, 64);
                    if high[i] < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                for (i, fd) in high[..raw.len()].iter().enumerate() {
                    if libc::dup2(*fd, 3 + i as i32) < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                Ok(())
            });
        }
    }

    /// Closes our write ends and reads everything each pipe received.
    pub fn collect(self) -> Vec<String> {
        drop(self.writers);
        self.readers
            .into_iter()
            .map(|mut r| {
                let mut s = String::new();
                r.read_to_string(&mut s).expect("read pipe");
                s
            })
            .collect()
    }
}

/// `cmd` run through `sh -c`, which sets $LISTEN_PID to its own pid and then execs `cmd`, so
/// that the runtime sees socket activation meant for itself (sd_listen_fds(3) checks the pid).
pub fn as_listen_pid(cmd: &std::process::Command) -> std::process::Command {
    let mut sh = std::process::Command::new("/bin/sh");
    sh.arg("-c")
        .arg("LISTEN_PID=$$ exec \"$0\" \"$@\"")
        .arg(cmd.get_program())
        .args(cmd.get_args());
    sh
}
