//! OOM kills in a container's memory cgroup, and the end of that cgroup, as one file descriptor
//! to poll. v1: an eventfd registered for memory.oom_control through cgroup.event_control; the
//! kernel also signals it when the cgroup is removed. v2: inotify on memory.events (its
//! oom_kill counter) and cgroup.events (populated 0 once every process has exited). These are
//! the ends runc's `events` stops at: the cgroup's removal on v1, its emptying on v2.

use super::stats::{get, key_values};
use crate::error::{Context, Result};
use nix::errno::Errno;
use nix::sys::eventfd::{EfdFlags, EventFd};
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::path::{Path, PathBuf};

#[derive(Debug, PartialEq, Eq)]
pub enum Notice {
    Oom,
    /// The cgroup is gone (v1) or empty (v2): no more events will come.
    Gone,
}

pub enum Watch {
    V1 {
        efd: EventFd,
        /// Registered with the eventfd; must stay open as long as it is.
        _oom_control: File,
        event_control: PathBuf,
    },
    V2 {
        inotify: Inotify,
        dir: PathBuf,
        /// oom_kill as last seen; None when the memory controller is not enabled here.
        kills: Option<u64>,
    },
}

impl Watch {
    /// v1: `dir` is the container's directory in the memory hierarchy.
    pub(super) fn v1(dir: &Path) -> Result<Watch> {
        let path = dir.join("memory.oom_control");
        let oom_control = File::open(&path).with_ctx(|| format!("open {}", path.display()))?;
        let efd =
            EventFd::from_flags(EfdFlags::EFD_CLOEXEC | EfdFlags::EFD_NONBLOCK).ctx("eventfd")?;
        let event_control = dir.join("cgroup.event_control");
        super::write_file(
            &event_control,
            &format!("{} {}", efd.as_raw_fd(), oom_control.as_raw_fd()),
        )?;
        Ok(Watch::V1 {
            efd,
            _oom_control: oom_control,
            event_control,
        })
    }

    pub(super) fn v2(dir: &Path) -> Result<Watch> {
        let inotify =
            Inotify::init(InitFlags::IN_CLOEXEC | InitFlags::IN_NONBLOCK).ctx("inotify_init")?;
        let watch = |file: &str| {
            let p = dir.join(file);
            inotify
                .add_watch(&p, AddWatchFlags::IN_MODIFY)
                .with_ctx(|| format!("inotify watch {}", p.display()))
        };
        watch("cgroup.events")?;
        // Without the memory controller there is no memory.events, and no OOM kill to see.
        let kills = if dir.join("memory.events").exists() {
            watch("memory.events")?;
            Some(oom_kills(dir)?)
        } else {
            None
        };
        Ok(Watch::V2 {
            inotify,
            dir: dir.to_path_buf(),
            kills,
        })
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        match self {
            Watch::V1 { efd, .. } => efd.as_fd(),
            Watch::V2 { inotify, .. } => inotify.as_fd(),
        }
    }

    /// What happened since the last call. Never blocks: call it when [`Watch::fd`] is
    /// readable, and once before the first wait, since a v2 cgroup may have emptied already.
    pub fn notices(&mut self) -> Result<Vec<Notice>> {
        match self {
            Watch::V1 {
                efd, event_control, ..
            } => {
                match efd.read() {
                    Ok(_) => {}
                    Err(Errno::EAGAIN) => return Ok(vec![]),
                    Err(e) => return Err(e).ctx("read eventfd"),
                }
                // The kernel signals the eventfd when the cgroup is removed, too.
                Ok(vec![if event_control.exists() {
                    Notice::Oom
                } else {
                    Notice::Gone
                }])
            }
            Watch::V2 {
                inotify,
                dir,
                kills,
            } => {
                // Which file changed does not matter: both are read again.
                loop {
                    match inotify.read_events() {
                        Ok(_) => {}
                        Err(Errno::EAGAIN) => break,
                        Err(e) => return Err(e).ctx("read inotify"),
                    }
                }
                let mut out = Vec::new();
                if let Some(seen) = kills {
                    match oom_kills(dir) {
                        Ok(now) if now > *seen => {
                            *seen = now;
                            out.push(Notice::Oom);
                        }
                        Ok(_) => {}
                        Err(e) if e.errno() == Some(Errno::ENOENT) => {}
                        Err(e) => return Err(e),
                    }
                }
                if !populated(dir)? {
                    out.push(Notice::Gone);
                }
                Ok(out)
            }
        }
    }
}

fn oom_kills(dir: &Path) -> Result<u64> {
    let p = dir.join("memory.events");
    Ok(get(&key_values(&super::read_file(&p)?, &p)?, "oom_kill"))
}

/// Whether the cgroup still has processes; a removed cgroup has none.
fn populated(dir: &Path) -> Result<bool> {
    let p = dir.join("cgroup.events");
    match super::read_file_opt(&p)? {
        Some(text) => Ok(get(&key_values(&text, &p)?, "populated") > 0),
        None => Ok(false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn readable(w: &Watch) -> bool {
        use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
        let mut fds = [PollFd::new(w.fd(), PollFlags::POLLIN)];
        poll(&mut fds, PollTimeout::from(5_000u16)).unwrap() == 1
    }

    #[test]
    fn v2_oom_kills_and_emptying_on_a_fake_tree() {
        let dir = std::env::temp_dir().join(format!("husk-oom-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let write = |f: &str, body: &str| std::fs::write(dir.join(f), body).unwrap();
        write("cgroup.events", "populated 1\nfrozen 0\n");
        write("memory.events", "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n");
        let mut w = Watch::v2(&dir).unwrap();
        // A kill from before the watch started is not reported.
        assert_eq!(w.notices().unwrap(), []);
        write("memory.events", "low 0\nhigh 0\nmax 5\noom 2\noom_kill 2\n");
        assert!(readable(&w));
        assert_eq!(w.notices().unwrap(), [Notice::Oom]);
        // Other counters moving is no OOM kill.
        write("memory.events", "low 0\nhigh 0\nmax 9\noom 2\noom_kill 2\n");
        assert!(readable(&w));
        assert_eq!(w.notices().unwrap(), []);
        write("cgroup.events", "populated 0\nfrozen 0\n");
        assert!(readable(&w));
        assert_eq!(w.notices().unwrap(), [Notice::Gone]);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
