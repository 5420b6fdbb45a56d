//! cgroup v1: one directory per mounted hierarchy (cpu, memory, pids, name=systemd, ...).

use super::{read_pids, remove_tree, resolve, write_file, CgroupManager};
use crate::error::{Context, Error, Result};
use oci_spec::runtime::{LinuxDeviceCgroup, LinuxResources};
use std::path::{Path, PathBuf};

pub struct V1 {
    pub dirs: Vec<PathBuf>,
}

/// A v1 hierarchy: where it is mounted and which controllers it carries.
struct Hierarchy {
    mount: PathBuf,
    controllers: Vec<String>,
}

fn hierarchies() -> Result<Vec<Hierarchy>> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").ctx("read /proc/self/mountinfo")?;
    let mut out = Vec::new();
    for line in text.lines() {
        // mountinfo: ... mountpoint opts ... - fstype source superopts
        let Some((pre, post)) = line.split_once(" - ") else {
            continue;
        };
        let mut post = post.split(' ');
        // A hybrid host also has the unified hierarchy (no controllers); runc joins it too.
        let unified = match post.next() {
            Some("cgroup") => false,
            Some("cgroup2") => true,
            _ => continue,
        };
        let superopts = post.nth(1).unwrap_or("");
        let Some(mount) = pre.split(' ').nth(4) else {
            continue;
        };
        let controllers = superopts
            .split(',')
            .filter(|o| {
                !unified
                    && !matches!(*o, "rw" | "ro")
                    && !o.starts_with("release_agent")
                    && *o != "clone_children"
                    && *o != "noprefix"
                    && *o != "xattr"
            })
            .map(str::to_string)
            .collect();
        out.push(Hierarchy {
            mount: PathBuf::from(mount),
            controllers,
        });
    }
    Ok(out)
}

impl V1 {
    pub fn new(rel: &Path, own: &[(String, String)]) -> Result<Self> {
        let mut dirs = Vec::new();
        for h in hierarchies()? {
            // Our own cgroup in this hierarchy, matched by its controller list.
            let own_path = own
                .iter()
                .find(|(ctrls, _)| {
                    if h.controllers.is_empty() {
                        return ctrls.is_empty();
                    }
                    !ctrls.is_empty()
                        && ctrls
                            .split(',')
                            .all(|c| h.controllers.iter().any(|x| x == c))
                })
                .map(|(_, p)| p.as_str())
                .unwrap_or("/");
            dirs.push(resolve(&h.mount, own_path, rel));
        }
        if dirs.is_empty() {
            return Err(Error::msg("no cgroup v1 hierarchies are mounted"));
        }
        Ok(V1 { dirs })
    }

    fn dir_with(&self, file: &str) -> Option<&Path> {
        self.dirs
            .iter()
            .map(PathBuf::as_path)
            .find(|d| d.join(file).exists())
    }

    /// A new cpuset cgroup has no cpus or mems, and nothing can join it until they are copied
    /// from its parent (all the way up from the first ancestor that has them).
    fn init_cpuset(dir: &Path) -> Result<()> {
        for file in ["cpuset.cpus", "cpuset.mems"] {
            let mut chain = vec![dir.to_path_buf()];
            let mut cur = dir.parent();
            while let Some(p) = cur {
                let v = std::fs::read_to_string(p.join(file))
                    .with_ctx(|| format!("read {}", p.join(file).display()))?;
                if !v.trim().is_empty() {
                    for d in chain.iter().rev() {
                        let mine = std::fs::read_to_string(d.join(file)).unwrap_or_default();
                        if mine.trim().is_empty() {
                            write_file(&d.join(file), v.trim())?;
                        }
                    }
                    break;
                }
                chain.push(p.to_path_buf());
                cur = p.parent();
            }
        }
        Ok(())
    }
}

impl CgroupManager for V1 {
    fn create(&self) -> Result<()> {
        for d in &self.dirs {
            std::fs::create_dir_all(d).with_ctx(|| format!("mkdir {}", d.display()))?;
            if d.join("cpuset.cpus").exists() {
                Self::init_cpuset(d)?;
            }
        }
        Ok(())
    }

    fn apply(&self, pid: i32) -> Result<()> {
        let pid = pid.to_string();
        for d in &self.dirs {
            write_file(&d.join("cgroup.procs"), &pid)?;
        }
        Ok(())
    }

    fn set(&self, r: &LinuxResources) -> Result<()> {
        if let Some(m) = r.memory() {
            if let Some(d) = self.dir_with("memory.limit_in_bytes") {
                if let Some(l) = m.limit() {
                    write_file(&d.join("memory.limit_in_bytes"), &l.to_string())?;
                }
                if let Some(s) = m.reservation() {
                    write_file(&d.join("memory.soft_limit_in_bytes"), &s.to_string())?;
                }
                if let Some(s) = m.swap() {
                    let f = d.join("memory.memsw.limit_in_bytes");
                    if f.exists() {
                        write_file(&f, &s.to_string())?;
                    } else if s != m.limit().unwrap_or(0) && s > 0 {
                        return Err(Error::msg("linux.resources.memory.swap: swap accounting is not enabled on this host"));
                    }
                }
                if let Some(s) = m.swappiness() {
                    write_file(&d.join("memory.swappiness"), &s.to_string())?;
                }
            } else if m.limit().is_some() {
                return Err(Error::msg(
                    "linux.resources.memory: no memory cgroup is mounted",
                ));
            }
        }
        if let Some(c) = r.cpu() {
            if let Some(d) = self.dir_with("cpu.shares") {
                if let Some(s) = c.shares() {
                    write_file(&d.join("cpu.shares"), &s.to_string())?;
                }
                // The period first: a quota larger than the old period would be refused.
                if let Some(p) = c.period() {
                    write_file(&d.join("cpu.cfs_period_us"), &p.to_string())?;
                }
                if let Some(q) = c.quota() {
                    write_file(&d.join("cpu.cfs_quota_us"), &q.to_string())?;
                }
            }
            if let Some(d) = self.dir_with("cpuset.cpus") {
                if let Some(cpus) = c.cpus() {
                    write_file(&d.join("cpuset.cpus"), cpus)?;
                }
                if let Some(mems) = c.mems() {
                    write_file(&d.join("cpuset.mems"), mems)?;
                }
            }
        }
        if let Some(p) = r.pids() {
            if let Some(d) = self.dir_with("pids.max") {
                let v = if p.limit() > 0 {
                    p.limit().to_string()
                } else {
                    "max".into()
                };
                write_file(&d.join("pids.max"), &v)?;
            }
        }
        // Only when given: `update` must not reset a live container's device list.
        if let (Some(d), Some(rules)) = (self.dir_with("devices.allow"), r.devices()) {
            write_devices(d, rules)?;
        }
        Ok(())
    }

    fn pids(&self) -> Result<Vec<i32>> {
        // Every process is in each hierarchy; the first one tells them all.
        let Some(d) = self.dirs.first() else {
            return Ok(vec![]);
        };
        let mut out = Vec::new();
        collect_pids(d, &mut out)?;
        Ok(out)
    }

    fn destroy(&self) -> Result<()> {
        for d in &self.dirs {
            remove_tree(d)?;
        }
        Ok(())
    }

    fn paths(&self) -> Vec<PathBuf> {
        self.dirs.clone()
    }

    fn freeze(&self, frozen: bool) -> Result<()> {
        let d = self
            .dir_with("freezer.state")
            .ok_or_else(|| Error::msg("no freezer cgroup is mounted"))?;
        let want = if frozen { "FROZEN" } else { "THAWED" };
        write_file(&d.join("freezer.state"), want)?;
        super::wait_for(&d.join("freezer.state"), want)
    }
}

pub(crate) fn collect_pids(dir: &Path, out: &mut Vec<i32>) -> Result<()> {
    match read_pids(&dir.join("cgroup.procs")) {
        Ok(p) => out.extend(p),
        Err(e) if e.errno() == Some(nix::errno::Errno::ENOENT) => return Ok(()),
        Err(e) => return Err(e),
    }
    for e in std::fs::read_dir(dir)
        .with_ctx(|| format!("read {}", dir.display()))?
        .flatten()
    {
        if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            collect_pids(&e.path(), out)?;
        }
    }
    Ok(())
}

/// The devices cgroup starts from "deny all" and allows the spec's rules in order, after the
/// devices every container gets (null, zero, full, tty, random, urandom, ptmx, pts).
fn write_devices(dir: &Path, rules: &[LinuxDeviceCgroup]) -> Result<()> {
    write_file(&dir.join("devices.deny"), "a")?;
    for rule in rules {
        let typ = rule
            .typ()
            .map_or("a".to_string(), |t| t.as_str().to_string());
        let major = rule.major().map_or("*".to_string(), |m| m.to_string());
        let minor = rule.minor().map_or("*".to_string(), |m| m.to_string());
        let access = rule.access().clone().unwrap_or_else(|| "rwm".into());
        let line = format!("{typ} {major}:{minor} {access}");
        let file = if rule.allow() {
            "devices.allow"
        } else {
            "devices.deny"
        };
        write_file(&dir.join(file), &line)?;
    }
    for line in DEFAULT_ALLOWED_DEVICES {
        write_file(&dir.join("devices.allow"), line)?;
    }
    Ok(())
}

/// runc's default allow list.
pub const DEFAULT_ALLOWED_DEVICES: &[&str] = &[
    "c *:* m",
    "b *:* m",
    "c 1:3 rwm",
    "c 1:5 rwm",
    "c 1:7 rwm",
    "c 5:0 rwm",
    "c 1:8 rwm",
    "c 1:9 rwm",
    "c 5:2 rwm",
    "c 136:* rwm",
    "c 10:200 rwm",
];
