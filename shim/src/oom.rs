//! OOM kills, as `/tasks/oom` events: on cgroup v1, an eventfd on each container's
//! memory.oom_control (cgroup.event_control), all in one epoll, read by one thread. Delete
//! unwatches before the runtime removes the cgroup (whose removal notifies too), so a
//! notification is an OOM; one whose cgroup can no longer be read ends the watch. cgroup v2 is
//! not watched yet.

use std::{
    collections::HashMap,
    fs::File,
    io::{self, Read, Seek, Write},
    os::fd::AsRawFd,
    sync::{Arc, Mutex},
};

use containerd_shim::protos::events::task::TaskOOM;
use log::warn;
use nix::sys::{
    epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout},
    eventfd::{EfdFlags, EventFd},
};

use crate::events::Events;

const MEMORY_V1: &str = "/sys/fs/cgroup/memory";

struct Watch {
    container_id: String,
    efd: EventFd,
    oom_control: File,
}

pub struct Oom {
    epoll: Epoll,
    watches: Mutex<(u64, HashMap<u64, Watch>)>,
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
        let oom = Arc::new(Oom {
            epoll: Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)?,
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
                let Some(w) = guard.1.get_mut(&token) else {
                    continue;
                };
                // Resets the counter; the count itself does not matter.
                let _ = w.efd.read();
                // The notification comes as the cgroup enters OOM, before its kill is counted.
                // The cgroup's removal notifies too, but Delete unwatches before the runtime
                // removes it, so what is still watched and readable is an OOM.
                match oom_state(&mut w.oom_control) {
                    Ok(_) => {
                        let oom = TaskOOM {
                            container_id: w.container_id.clone(),
                            ..Default::default()
                        };
                        events.send("/tasks/oom", &oom);
                    }
                    // The cgroup was removed, which also notifies.
                    Err(_) => {
                        if let Some(w) = guard.1.remove(&token) {
                            // Closing the eventfd removes it from the epoll anyway.
                            let _ = self.epoll.delete(&w.efd);
                        }
                    }
                }
            }
        }
    }

    /// Watches the memory cgroup of container `id`, whose init is `pid` (cgroup v1 only).
    pub fn watch(&self, id: &str, pid: u32) -> io::Result<()> {
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
                efd,
                oom_control,
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
                // Closing the eventfd removes it from the epoll anyway.
                let _ = self.epoll.delete(&w.efd);
            }
        }
    }
}
