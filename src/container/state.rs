//! A container's state directory `<root>/<id>/`: `state.json` (written atomically by rename),
//! `exec.fifo` while the container is created but not started, and a flock on the directory that
//! serialises commands which change the container. `state` and `list` read without the lock.

use crate::error::{Context, Error, Result};
use nix::fcntl::{Flock, FlockArg, OFlag};
use nix::sys::stat::Mode;
use oci_spec::runtime::{Hooks, Process};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::io::Write;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub use crate::oci_state::{sorted, OciState, Status};

pub const STATE_FILE: &str = "state.json";
pub const EXEC_FIFO: &str = "exec.fifo";
pub const EXEC_BASE_FILE: &str = "exec.json";
/// How long a command waits for another to let go of the container (longer than any command
/// holds it but for its hooks: `delete` waits up to 10 s for the init to die).
pub const LOCK_WAIT: Duration = Duration::from_secs(15);

/// What husk remembers about a container between commands.
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct State {
    pub id: String,
    pub pid: i32,
    /// Start time of `pid` (field 22 of /proc/pid/stat), so a reused pid is not taken for ours.
    pub pid_start: u64,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub created: String,
    #[serde(default)]
    pub owner: String,
    #[serde(default)]
    pub annotations: HashMap<String, String>,
    /// Set by `pause`, cleared by `resume`.
    #[serde(default)]
    pub paused: bool,
    /// The cgroup directories the container was placed in, per hierarchy.
    #[serde(default)]
    pub cgroup_paths: Vec<PathBuf>,
    /// Those of them with a freezer, the v1 freezer's first (all of them, when empty).
    #[serde(default)]
    pub freezer_paths: Vec<PathBuf>,
    /// The container shares its pid namespace with the host or another container, so killing
    /// its init does not end the rest; delete must kill the cgroup's processes too.
    #[serde(default)]
    pub shared_pidns: bool,
    #[serde(default)]
    pub hooks: Option<Hooks>,
    #[serde(default)]
    pub ociversion: String,
    /// Set while `create` runs; `pid` is then that of the creating husk process.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub creating: bool,
}

/// What only `exec` needs, kept out of state.json so that `state` and `list` need not parse
/// it (a seccomp profile alone can be tens of kilobytes).
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct ExecBase {
    /// The container's process, the base of an exec'd one.
    pub process: Process,
    /// linux.seccomp, applied to exec'd processes too.
    #[serde(default)]
    pub seccomp: Option<oci_spec::runtime::LinuxSeccomp>,
    /// linux.personality, likewise.
    #[serde(default)]
    pub personality: Option<oci_spec::runtime::LinuxPersonality>,
    /// linux.memoryPolicy, likewise.
    #[serde(default)]
    pub memory_policy: Option<oci_spec::runtime::LinuxMemoryPolicy>,
}

pub fn validate_id(id: &str) -> Result<()> {
    if id.is_empty() {
        return Err(Error::msg("container id cannot be empty"));
    }
    let ok = id != "."
        && id != ".."
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_+-.".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(Error::msg("invalid container ID format"))
    }
}

pub struct StateDir {
    pub path: PathBuf,
}

impl StateDir {
    pub fn new(root: &Path, id: &str) -> Result<Self> {
        validate_id(id)?;
        Ok(StateDir {
            path: root.join(id),
        })
    }

    /// Makes the directory for a new container; fails if the id is taken.
    pub fn create(&self, id: &str) -> Result<()> {
        if let Some(root) = self.path.parent() {
            std::fs::create_dir_all(root).with_ctx(|| format!("create root {}", root.display()))?;
        }
        match nix::unistd::mkdir(&self.path, Mode::from_bits_truncate(0o711)) {
            Ok(()) => Ok(()),
            Err(nix::errno::Errno::EEXIST) => Err(Error::Exists(id.to_string())),
            Err(e) => Err(e).with_ctx(|| format!("mkdir {}", self.path.display())),
        }
    }

    /// Takes the container's lock; released when the returned guard is dropped.
    pub fn lock(&self) -> Result<Flock<OwnedFd>> {
        self.try_lock()?.ok_or_else(|| {
            Error::msg(format!(
                "{} is locked by another command that does not end",
                self.path.display()
            ))
        })
    }

    /// Takes the container's lock, waiting at most [`LOCK_WAIT`] for a command that holds it
    /// (one running a hook without a timeout could hold it forever); None if it still does.
    pub fn try_lock(&self) -> Result<Option<Flock<OwnedFd>>> {
        let mut fd = nix::fcntl::open(
            &self.path,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| match e {
            nix::errno::Errno::ENOENT => Error::NotExist,
            e => Error::Sys {
                ctx: format!("open {}", self.path.display()),
                errno: e,
            },
        })?;
        // flock(2) has no timeout: polled, from 1 ms up to 100 ms apart.
        let deadline = Instant::now() + LOCK_WAIT;
        let mut delay = Duration::from_millis(1);
        loop {
            fd = match Flock::lock(fd, FlockArg::LockExclusiveNonblock) {
                Ok(lock) => return Ok(Some(lock)),
                Err((fd, nix::errno::Errno::EWOULDBLOCK)) => fd,
                Err((_, e)) => return Err(e).with_ctx(|| format!("lock {}", self.path.display())),
            };
            if Instant::now() >= deadline {
                return Ok(None);
            }
            std::thread::sleep(delay);
            delay = (delay * 2).min(Duration::from_millis(100));
        }
    }

    pub fn load(&self) -> Result<State> {
        let path = self.path.join(STATE_FILE);
        let data = match crate::util::read_regular(&path) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(Error::NotExist),
            Err(e) => return Err(e).with_ctx(|| format!("read {}", path.display())),
        };
        serde_json::from_slice(&data).map_err(|e| {
            Error::msg(format!(
                "parse {}: {e}",
                self.path.join(STATE_FILE).display()
            ))
        })
    }

    pub fn save(&self, state: &State) -> Result<()> {
        self.write_json(STATE_FILE, state)
    }

    pub fn save_exec_base(&self, base: &ExecBase) -> Result<()> {
        self.write_json(EXEC_BASE_FILE, base)
    }

    pub fn load_exec_base(&self) -> Result<ExecBase> {
        let path = self.path.join(EXEC_BASE_FILE);
        let data =
            crate::util::read_regular(&path).with_ctx(|| format!("read {}", path.display()))?;
        serde_json::from_slice(&data)
            .map_err(|e| Error::msg(format!("parse {}: {e}", path.display())))
    }

    /// Written to a temporary file and renamed, so a reader never sees it half-written.
    fn write_json<T: Serialize>(&self, name: &str, value: &T) -> Result<()> {
        let tmp = self.path.join(format!(".{name}.tmp"));
        let data =
            serde_json::to_vec(value).map_err(|e| Error::msg(format!("encode {name}: {e}")))?;
        let mut f =
            crate::util::create_file(&tmp).with_ctx(|| format!("create {}", tmp.display()))?;
        f.write_all(&data)
            .with_ctx(|| format!("write {}", tmp.display()))?;
        std::fs::rename(&tmp, self.path.join(name)).with_ctx(|| format!("rename {}", tmp.display()))
    }

    pub fn fifo(&self) -> PathBuf {
        self.path.join(EXEC_FIFO)
    }

    pub fn remove(&self) -> Result<()> {
        // A restore killed half-way leaves the rootfs bound in here (container::restore): it is
        // unbound first, so that removing the directory cannot reach into the rootfs. Mostly
        // there is nothing to unbind (EINVAL, ENOENT).
        let _ = nix::mount::umount2(
            &self.path.join(crate::container::restore::CRIU_ROOT),
            nix::mount::MntFlags::MNT_DETACH,
        );
        match std::fs::remove_dir_all(&self.path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e).with_ctx(|| format!("remove {}", self.path.display())),
        }
    }
}

/// The process's start time, or None when it is gone or a zombie (a zombie has finished: the
/// container is stopped even though its parent has not reaped it yet).
pub fn process_start_time(pid: i32) -> Option<u64> {
    use procfs::FromRead;
    if pid <= 0 {
        return None;
    }
    let stat = procfs::process::Stat::from_file(format!("/proc/{pid}/stat")).ok()?;
    (!matches!(stat.state, 'Z' | 'X')).then_some(stat.starttime)
}

impl State {
    pub fn status(&self, dir: &StateDir) -> Status {
        match process_start_time(self.pid) {
            Some(t) if t == self.pid_start => {
                if self.creating {
                    Status::Creating
                } else if self.paused || self.frozen() {
                    Status::Paused
                } else if dir.fifo().exists() {
                    Status::Created
                } else {
                    Status::Running
                }
            }
            _ => Status::Stopped,
        }
    }

    /// Frozen without `pause` (by hand, or by a frozen ancestor cgroup): runc calls that paused
    /// too, and a process that joined the cgroup now would freeze. One file is read, the one
    /// runc reads (a freezer control file costs tens of µs; `state` must stay cheap): on a
    /// hybrid host the v1 freezer's. A frozen unified cgroup there is found by what would wait
    /// on it (`exec`'s watch, `delete`'s thaw).
    fn frozen(&self) -> bool {
        match self.freezer_paths.first() {
            Some(d) => crate::cgroups::frozen_now(d),
            None => self
                .cgroup_paths
                .iter()
                .any(|d| crate::cgroups::frozen_now(d)),
        }
    }

    /// The pid the outside world sees: 0 once the container has stopped, as runc prints it.
    pub fn visible_pid(&self, status: Status) -> i32 {
        if status == Status::Stopped || self.creating {
            0
        } else {
            self.pid
        }
    }

    /// The runtime-spec state that hooks receive on stdin.
    pub fn spec_state(&self, status: Status) -> String {
        // Fails only for a bundle path that is not UTF-8.
        serde_json::to_string(&self.oci_state(status)).unwrap_or_default()
    }

    /// The runtime-spec state, for hooks and the seccomp agent.
    pub fn oci_state(&self, status: Status) -> OciState<'_> {
        OciState {
            oci_version: &self.ociversion,
            id: &self.id,
            status,
            pid: (status != Status::Stopped).then_some(self.pid),
            bundle: &self.bundle,
            annotations: sorted(&self.annotations),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_that_escape_the_root_are_refused() {
        for bad in ["", ".", "..", "a/b", "../x", "a b", "x\0"] {
            assert!(validate_id(bad).is_err(), "{bad:?}");
        }
        for good in ["a", "abc-1.2_3+x", "..a"] {
            assert!(validate_id(good).is_ok(), "{good:?}");
        }
    }

    #[test]
    fn start_time_of_self_is_stable() {
        let me = std::process::id() as i32;
        let t = process_start_time(me).expect("own stat");
        assert_eq!(process_start_time(me), Some(t));
        assert_eq!(process_start_time(-1), None);
    }
}
