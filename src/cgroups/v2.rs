//! cgroup v2: one directory in the unified hierarchy.

use super::{remove_tree, resolve, write_file, CgroupManager};
use crate::error::{Context, Result};
use oci_spec::runtime::LinuxResources;
use std::path::{Path, PathBuf};

pub struct V2 {
    pub path: PathBuf,
}

impl V2 {
    pub fn new(mount: &str, rel: &Path, own: &[(String, String)]) -> Result<Self> {
        let own_path = own
            .iter()
            .find(|(c, _)| c.is_empty())
            .map(|(_, p)| p.as_str())
            .unwrap_or("/");
        Ok(V2 {
            path: resolve(Path::new(mount), own_path, rel),
        })
    }

    /// Enables the controllers a limit needs in every ancestor's cgroup.subtree_control.
    fn enable_controllers(&self, root: &Path) -> Result<()> {
        let available =
            std::fs::read_to_string(root.join("cgroup.controllers")).unwrap_or_default();
        let want: Vec<String> = available
            .split_whitespace()
            .map(|c| format!("+{c}"))
            .collect();
        if want.is_empty() {
            return Ok(());
        }
        let mut cur = root.to_path_buf();
        let rel = self
            .path
            .strip_prefix(root)
            .unwrap_or(&self.path)
            .to_path_buf();
        for comp in rel.components() {
            // Enabling in a cgroup that has processes of its own fails (no internal processes);
            // such a parent simply keeps its controllers as they are.
            let ctl = cur.join("cgroup.subtree_control");
            if std::fs::write(&ctl, want.join(" ")).is_err() {
                log::debug!("cannot enable controllers in {}", ctl.display());
            }
            cur.push(comp);
        }
        Ok(())
    }
}

impl CgroupManager for V2 {
    fn create(&self) -> Result<()> {
        let root = Path::new(super::CGROUP_ROOT);
        if self.path.starts_with(root) {
            self.enable_controllers(root)?;
        }
        std::fs::create_dir_all(&self.path).with_ctx(|| format!("mkdir {}", self.path.display()))
    }

    fn apply(&self, pid: i32) -> Result<()> {
        write_file(&self.path.join("cgroup.procs"), &pid.to_string())
    }

    fn set(&self, r: &LinuxResources) -> Result<()> {
        let p = &self.path;
        if let Some(m) = r.memory() {
            if let Some(l) = m.limit() {
                write_file(&p.join("memory.max"), &limit(l))?;
            }
            if let Some(s) = m.reservation() {
                write_file(&p.join("memory.low"), &limit(s))?;
            }
            if let Some(s) = m.swap() {
                // v1's swap is memory+swap; v2's memory.swap.max is swap alone.
                let v = match (s, m.limit()) {
                    (s, _) if s < 0 => "max".to_string(),
                    (s, Some(l)) if l > 0 => (s - l).max(0).to_string(),
                    (s, _) => s.to_string(),
                };
                write_file(&p.join("memory.swap.max"), &v)?;
            }
        }
        if let Some(c) = r.cpu() {
            if let Some(s) = c.shares() {
                write_file(&p.join("cpu.weight"), &shares_to_weight(s).to_string())?;
            }
            if c.quota().is_some() || c.period().is_some() {
                let q = c
                    .quota()
                    .filter(|q| *q > 0)
                    .map_or("max".to_string(), |q| q.to_string());
                let period = c.period().unwrap_or(100_000);
                write_file(&p.join("cpu.max"), &format!("{q} {period}"))?;
            }
            if let Some(cpus) = c.cpus() {
                write_file(&p.join("cpuset.cpus"), cpus)?;
            }
            if let Some(mems) = c.mems() {
                write_file(&p.join("cpuset.mems"), mems)?;
            }
        }
        if let Some(pids) = r.pids() {
            let v = if pids.limit() > 0 {
                pids.limit().to_string()
            } else {
                "max".into()
            };
            write_file(&p.join("pids.max"), &v)?;
        }
        Ok(())
    }

    fn pids(&self) -> Result<Vec<i32>> {
        let mut out = Vec::new();
        super::v1::collect_pids(&self.path, &mut out)?;
        Ok(out)
    }

    fn destroy(&self) -> Result<()> {
        remove_tree(&self.path)
    }

    fn paths(&self) -> Vec<PathBuf> {
        vec![self.path.clone()]
    }

    fn freeze(&self, frozen: bool) -> Result<()> {
        write_file(
            &self.path.join("cgroup.freeze"),
            if frozen { "1" } else { "0" },
        )?;
        super::wait_for(
            &self.path.join("cgroup.events"),
            if frozen { "frozen 1" } else { "frozen 0" },
        )
    }
}

fn limit(v: i64) -> String {
    if v < 0 {
        "max".into()
    } else {
        v.to_string()
    }
}

/// runc's conversion of cpu shares [2, 262144] to cgroup v2 weight [1, 10000].
pub fn shares_to_weight(shares: u64) -> u64 {
    if shares == 0 {
        return 0;
    }
    1 + ((shares.clamp(2, 262_144) - 2) * 9999) / 262_142
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_convert_like_runc() {
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(1024), 39);
        assert_eq!(shares_to_weight(262_144), 10000);
    }
}
