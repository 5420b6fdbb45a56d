//! OOM kills, as `/tasks/oom` events, all in one epoll read by one thread.
//!
//! cgroup v1: an eventfd on each container's memory.oom_control (cgroup.event_control). Delete
//! unwatches before the runtime removes the cgroup (whose removal notifies too), so a
//! notification is an OOM; one whose cgroup can no longer be read ends the watch.
//!
//! cgroup v2: as containerd's Go shim does, one inotify (IN_MODIFY) on each container's
//! memory.events; an event is an OOM when its `oom_kill` count has grown. The kernel drops the
//! watch (IN_IGNORED) when the cgroup is removed.

use std::{
    collections::HashMap,
    fs::File,
    io::{self, Read, Seek, Write},
    os::fd::AsRawFd,
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
};

use containerd_shim::protos::events::task::TaskOOM;
use log::warn;
use nix::sys::{
    epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout},
    eventfd::{EfdFlags, EventFd},
    inotify::{AddWatchFlags, InitFlags, Inotify, WatchDescriptor},
};

use crate::{events::Events, stats};

const MEMORY_V1: &str = "/sys/fs/cgroup/memory";

/// The epoll token of the inotify (v2); v1's watches count from 1.
const INOTIFY: u64 = 0;

enum Kind {
    V1 {
        efd: EventFd,
        oom_control: File,
    },
    V2 {
        wd: WatchDescriptor,
        events: PathBuf,
        oom_kills: u64,
    },
}

struct Watch {
    container_id: String,
    kind: Kind,
}

pub struct Oom {
    epoll: Epoll,
    /// cgroup v2 only.
    inotify: Option<Inotify>,
    watches: Mutex<(u64, HashMap<u64, Watch>)>,
}

/// The `oom_kill` count of a memory.events; None when the cgroup is gone.
fn oom_kills(events: &Path) -> Option<u64> {
    let text = std::fs::read_to_string(events).ok()?;
    Some(
        text.lines()
            .find_map(|l| l.strip_prefix("oom_kill "))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0),
    )
}

/// The container's memory cgroup directory on cgroup v1, from its init's /proc/<pid>/cgroup.
fn memory_cgroup_v1(pid: u32) -> Option<String> {
    let cgroups = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    let path = cgroups.lines().find_map(|l| {
        let mut f = l.splitn(3, ':');
        let (_, controllers, path) = (f.next()?, f.next()?, f.next()?);
        controllers
            .split(',')
            .any(|c| c == "memory")
            .then_some(path)
    })?;
    Some(format!("{MEMORY_V1}{path}"))
}

/// Reads memory.oom_control: an error means the cgroup is gone.
fn oom_state(oom_control: &mut File) -> io::Result<()> {
    oom_control.rewind()?;
    oom_control.read_to_end(&mut Vec::new())?;
    Ok(())
}

impl Oom {
    pub fn start(events: Events) -> io::Result<Arc<Oom>> {
        let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)?;
        let inotify = if stats::is_v2() {
            let i = Inotify::init(InitFlags::IN_CLOEXEC | InitFlags::IN_NONBLOCK)?;
            epoll.add(&i, EpollEvent::new(EpollFlags::EPOLLIN, INOTIFY))?;
            Some(i)
        } else {
            None
        };
        let oom = Arc::new(Oom {
            epoll,
            inotify,
            watches: Mutex::default(),
        });
        let o = oom.clone();
        std::thread::Builder::new()
            .name("oom".into())
            .stack_size(64 * 1024)
            .spawn(move || o.run(events))?;
        Ok(oom)
    }

    fn run(&self, events: Events) {
        let mut ready = [EpollEvent::empty(); 8];
        loop {
            let n = match self.epoll.wait(&mut ready, EpollTimeout::NONE) {
                Ok(n) => n,
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => {
                    warn!("oom epoll: {e}");
                    return;
                }
            };
            let mut guard = self.watches.lock().unwrap();
            for ev in &ready[..n] {
                let token = ev.data();
                if token == INOTIFY {
                    self.on_inotify(&mut guard.1, &events);
                    continue;
                }
                let Some(Watch {
                    container_id,
                    kind: Kind::V1 { efd, oom_control },
                }) = guard.1.get_mut(&token)
                else {
                    continue;
                };
                // Resets the counter; the count itself does not matter.
                let _ = efd.read();
                // The notification comes as the cgroup enters OOM, before its kill is counted.
                // The cgroup's removal notifies too, but Delete unwatches before the runtime
                // removes it, so what is still watched and readable is an OOM.
                match oom_state(oom_control) {
                    Ok(_) => send(&events, container_id),
                    // The cgroup was removed, which also notifies.
                    Err(_) => {
                        if let Some(w) = guard.1.remove(&token) {
                            self.forget(w);
                        }
                    }
                }
            }
        }
    }

    /// cgroup v2: reads the memory.events that changed; their watches are few (one per
    /// container of this shim), so they are searched.
    fn on_inotify(&self, watches: &mut HashMap<u64, Watch>, events: &Events) {
        let Some(inotify) = &self.inotify else { return };
        let ready = match inotify.read_events() {
            Ok(r) => r,
            Err(nix::errno::Errno::EAGAIN) => return,
            Err(e) => {
                warn!("oom inotify: {e}");
                return;
            }
        };
        for ev in ready {
            let Some((&token, w)) = watches
                .iter_mut()
                .find(|(_, w)| matches!(w.kind, Kind::V2 { wd, .. } if wd == ev.wd))
            else {
                continue;
            };
            let Kind::V2 {
                events: path,
                oom_kills: seen,
                ..
            } = &mut w.kind
            else {
                continue;
            };
            match oom_kills(path) {
                Some(n) if !ev.mask.contains(AddWatchFlags::IN_IGNORED) => {
                    if n > *seen {
                        *seen = n;
                        send(events, &w.container_id);
                    }
                }
                // The cgroup was removed: the kernel dropped the watch.
                _ => {
                    watches.remove(&token);
                }
            }
        }
    }

    /// Drops a watch from the kernel's side.
    fn forget(&self, w: Watch) {
        match w.kind {
            // Closing the eventfd removes it from the epoll anyway.
            Kind::V1 { efd, .. } => {
                let _ = self.epoll.delete(&efd);
            }
            Kind::V2 { wd, .. } => {
                if let Some(i) = &self.inotify {
                    // Fails only when the kernel has already dropped it (cgroup removed).
                    let _ = i.rm_watch(wd);
                }
            }
        }
    }

    /// Watches the memory cgroup of container `id`, whose init is `pid`.
    pub fn watch(&self, id: &str, pid: u32) -> io::Result<()> {
        if let Some(inotify) = &self.inotify {
            let Some(dir) = stats::cgroup2_dir(pid) else {
                return Ok(());
            };
            let events = dir.join("memory.events");
            // The count so far (a restored or re-watched cgroup may have one): only growth is
            // an OOM. Read before watching would miss a kill in between; after, it is counted
            // here or seen by the thread, which waits for the lock.
            let mut guard = self.watches.lock().unwrap();
            let wd = inotify.add_watch(&events, AddWatchFlags::IN_MODIFY)?;
            let Some(oom_kills) = oom_kills(&events) else {
                // Gone between the two calls: so is the watch, whatever rm_watch says.
                let _ = inotify.rm_watch(wd);
                return Err(io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("{} is gone", events.display()),
                ));
            };
            guard.0 += 1;
            let token = guard.0;
            guard.1.insert(
                token,
                Watch {
                    container_id: id.to_string(),
                    kind: Kind::V2 {
                        wd,
                        events,
                        oom_kills,
                    },
                },
            );
            return Ok(());
        }
        let Some(dir) = memory_cgroup_v1(pid) else {
            return Ok(());
        };
        let oom_control = File::open(format!("{dir}/memory.oom_control"))?;
        let efd = EventFd::from_flags(EfdFlags::EFD_CLOEXEC)?;
        let mut control = std::fs::OpenOptions::new()
            .write(true)
            .open(format!("{dir}/cgroup.event_control"))?;
        // In one write: the kernel parses each write on its own.
        control.write_all(format!("{} {}", efd.as_raw_fd(), oom_control.as_raw_fd()).as_bytes())?;
        let mut guard = self.watches.lock().unwrap();
        guard.0 += 1;
        let token = guard.0;
        self.epoll
            .add(&efd, EpollEvent::new(EpollFlags::EPOLLIN, token))?;
        guard.1.insert(
            token,
            Watch {
                container_id: id.to_string(),
                kind: Kind::V1 { efd, oom_control },
            },
        );
        Ok(())
    }

    pub fn unwatch(&self, id: &str) {
        let mut guard = self.watches.lock().unwrap();
        let tokens: Vec<u64> = guard
            .1
            .iter()
            .filter(|(_, w)| w.container_id == id)
            .map(|(t, _)| *t)
            .collect();
        for t in tokens {
            if let Some(w) = guard.1.remove(&t) {
                self.forget(w);
            }
        }
    }
}

fn send(events: &Events, container_id: &str) {
    let oom = TaskOOM {
        container_id: container_id.to_string(),
        ..Default::default()
    };
    events.send("/tasks/oom", &oom);
}
