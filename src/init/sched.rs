//! How the process is scheduled, which execution domain it runs in and where its memory comes
//! from, the runtime-spec 1.2/1.3 fields that runc 1.2-1.4 applies: `process.scheduler`
//! (sched_setattr), `process.ioPriority` (ioprio_set), `linux.personality` (personality),
//! `process.execCPUAffinity` (sched_setaffinity; for exec'd processes only, as the spec says)
//! and `linux.memoryPolicy` (set_mempolicy). The checks are runc's validator's, in its words;
//! they run in the parent, before anything exists.

use crate::error::{Context, Error, Result};
use nix::sched::CpuSet;
use oci_spec::runtime::{
    IOPriorityClass, LinuxMemoryPolicy, LinuxPersonality, LinuxPersonalityDomain,
    LinuxSchedulerFlag, LinuxSchedulerPolicy, MemoryPolicyFlagType, MemoryPolicyModeType, Process,
    Scheduler,
};

/// Refuses what runc 1.2's validator refuses in `process.scheduler` and `process.ioPriority`,
/// and CPU lists that are no CPU set.
pub fn validate(p: &Process) -> Result<()> {
    if let Some(s) = p.scheduler() {
        validate_scheduler(s)?;
    }
    if let Some(io) = p.io_priority() {
        if !(0..=7).contains(&io.priority()) {
            return Err(Error::msg(format!(
                "invalid ioPriority.Priority: {}",
                io.priority()
            )));
        }
    }
    exec_affinity(p).map(drop)
}

fn validate_scheduler(s: &Scheduler) -> Result<()> {
    use LinuxSchedulerPolicy::*;
    let policy = *s.policy();
    let nice = s.nice().unwrap_or(0);
    if matches!(policy, SchedOther | SchedBatch) && !(-20..=19).contains(&nice) {
        return Err(Error::msg(format!(
            "invalid scheduler.nice: {nice} when scheduler.policy is {policy}"
        )));
    }
    if s.priority().unwrap_or(0) != 0 && !matches!(policy, SchedFifo | SchedRr) {
        return Err(Error::msg(
            "scheduler.priority can only be specified for SchedFIFO or SchedRR policy",
        ));
    }
    let deadline_params = [s.runtime(), s.deadline(), s.period()];
    if policy != SchedDeadline && deadline_params.iter().any(|v| v.unwrap_or(0) != 0) {
        return Err(Error::msg(
            "scheduler runtime/deadline/period can only be specified for SchedDeadline policy",
        ));
    }
    Ok(())
}

/// `linux.personality`: the runtime-spec defines no flags, so any is refused.
pub fn validate_personality(per: &LinuxPersonality) -> Result<()> {
    if per.flags().as_ref().is_some_and(|f| !f.is_empty()) {
        return Err(Error::msg(format!(
            "linux.personality.flags: {:?} not supported (the runtime-spec defines no flags)",
            per.flags().as_deref().unwrap_or(&[])
        )));
    }
    Ok(())
}

/// struct sched_attr, SCHED_ATTR_SIZE_VER1 (with the utilization clamps).
#[repr(C)]
struct SchedAttr {
    size: u32,
    policy: u32,
    flags: u64,
    nice: i32,
    priority: u32,
    runtime: u64,
    deadline: u64,
    period: u64,
    util_min: u32,
    util_max: u32,
}

/// `process.scheduler`, through sched_setattr(2).
pub fn set_scheduler(p: &Process) -> Result<()> {
    let Some(s) = p.scheduler() else {
        return Ok(());
    };
    use LinuxSchedulerFlag::*;
    use LinuxSchedulerPolicy::*;
    // <linux/sched.h>
    let policy = match s.policy() {
        SchedOther => 0,
        SchedFifo => 1,
        SchedRr => 2,
        SchedBatch => 3,
        SchedIso => 4,
        SchedIdle => 5,
        SchedDeadline => 6,
    };
    let mut flags = 0u64;
    for f in s.flags().iter().flatten() {
        flags |= match f {
            SchedResetOnFork => libc::SCHED_FLAG_RESET_ON_FORK,
            SchedFlagReclaim => libc::SCHED_FLAG_RECLAIM,
            SchedFlagDLOverrun => libc::SCHED_FLAG_DL_OVERRUN,
            SchedFlagKeepPolicy => libc::SCHED_FLAG_KEEP_POLICY,
            SchedFlagKeepParams => libc::SCHED_FLAG_KEEP_PARAMS,
            SchedFlagUtilClampMin => libc::SCHED_FLAG_UTIL_CLAMP_MIN,
            SchedFlagUtilClampMax => libc::SCHED_FLAG_UTIL_CLAMP_MAX,
        } as u64;
    }
    let attr = SchedAttr {
        size: std::mem::size_of::<SchedAttr>() as u32,
        policy,
        flags,
        nice: s.nice().unwrap_or(0),
        // runc converts with uint32(): a negative priority reaches the kernel, which refuses it.
        priority: s.priority().unwrap_or(0) as u32,
        runtime: s.runtime().unwrap_or(0),
        deadline: s.deadline().unwrap_or(0),
        period: s.period().unwrap_or(0),
        util_min: 0,
        util_max: 0,
    };
    // SAFETY: sched_setattr reads `size` bytes of the attr we pass, for ourselves (pid 0).
    let r = unsafe { libc::syscall(libc::SYS_sched_setattr, 0, &attr as *const SchedAttr, 0) };
    if r != 0 {
        return Err(nix::errno::Errno::last()).ctx("process.scheduler: error setting scheduler");
    }
    Ok(())
}

/// `process.ioPriority`, through ioprio_set(2) for ourselves.
pub fn set_io_priority(p: &Process) -> Result<()> {
    let Some(io) = p.io_priority() else {
        return Ok(());
    };
    const IOPRIO_WHO_PROCESS: libc::c_long = 1;
    const IOPRIO_CLASS_SHIFT: i64 = 13;
    let class = match io.class() {
        IOPriorityClass::IoprioClassRt => 1,
        IOPriorityClass::IoprioClassBe => 2,
        IOPriorityClass::IoprioClassIdle => 3,
    };
    let prio = (class << IOPRIO_CLASS_SHIFT) | io.priority();
    // SAFETY: ioprio_set takes three integers.
    let r = unsafe { libc::syscall(libc::SYS_ioprio_set, IOPRIO_WHO_PROCESS, 0, prio) };
    if r != 0 {
        return Err(nix::errno::Errno::last()).ctx("process.ioPriority: failed to set io priority");
    }
    Ok(())
}

/// `linux.personality`, which execve keeps.
pub fn set_personality(per: Option<&LinuxPersonality>) -> Result<()> {
    use nix::sys::personality::Persona;
    let Some(per) = per else {
        return Ok(());
    };
    let domain = match per.domain() {
        LinuxPersonalityDomain::PerLinux => 0,
        // <linux/personality.h>
        LinuxPersonalityDomain::PerLinux32 => 0x0008,
    };
    nix::sys::personality::set(Persona::from_bits_retain(domain))
        .ctx("linux.personality: personality")?;
    Ok(())
}

/// `process.execCPUAffinity`: where an exec'd process runs before it joins the container's
/// cgroups (`initial`) and from just before its execve (`final`).
#[derive(Default)]
pub struct ExecAffinity {
    pub initial: Option<CpuSet>,
    pub last: Option<CpuSet>,
}

pub fn exec_affinity(p: &Process) -> Result<ExecAffinity> {
    let Some(a) = p.exec_cpu_affinity() else {
        return Ok(ExecAffinity::default());
    };
    let parse = |v: &Option<String>, field: &str| {
        v.as_deref()
            .filter(|s| !s.is_empty())
            .map(|s| {
                cpu_set(s).map_err(|e| Error::msg(format!("process.execCPUAffinity.{field}: {e}")))
            })
            .transpose()
    };
    Ok(ExecAffinity {
        initial: parse(a.initial(), "initial")?,
        last: parse(a.cpu_affinity_final(), "final")?,
    })
}

/// "0-3,7" as the ranges it lists, each checked to be below `limit`; `what` names the ids.
fn id_ranges(
    list: &str,
    what: &str,
    limit: usize,
) -> std::result::Result<Vec<std::ops::RangeInclusive<usize>>, String> {
    list.split(',')
        .map(|part| {
            let (a, b) = part.split_once('-').unwrap_or((part, part));
            let n = |s: &str| {
                s.parse::<usize>()
                    .map_err(|_| format!("invalid {what} list {list:?}"))
            };
            let (a, b) = (n(a)?, n(b)?);
            if a > b {
                return Err(format!("invalid {what} range {part:?}"));
            }
            if b >= limit {
                return Err(format!(
                    "{what} {b} is out of range (the highest is {})",
                    limit - 1
                ));
            }
            Ok(a..=b)
        })
        .collect()
}

/// "0-3,7" as a CPU set.
fn cpu_set(list: &str) -> std::result::Result<CpuSet, String> {
    let mut set = CpuSet::new();
    for cpu in id_ranges(list, "CPU", CpuSet::count())?
        .into_iter()
        .flatten()
    {
        set.set(cpu).map_err(|e| e.to_string())?;
    }
    Ok(set)
}

pub fn set_affinity(set: &CpuSet, field: &str) -> Result<()> {
    nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), set)
        .with_ctx(|| format!("process.execCPUAffinity.{field}: sched_setaffinity"))
}

/// The highest NUMA node `linux.memoryPolicy.nodes` may name, as in runc 1.4.
const MAX_NUMA_NODE: usize = 4095;

/// `linux.memoryPolicy` as set_mempolicy(2) takes it: the mode with its flags, and the node mask.
#[derive(Debug)]
pub struct MemoryPolicy {
    mode: libc::c_int,
    nodes: Vec<libc::c_ulong>,
}

/// Checks `linux.memoryPolicy` as runc 1.4 does (the mode and flags are checked by the parser):
/// a node list, nodes below 4096. Whether the mode takes those nodes is for the kernel to say.
pub fn memory_policy(p: &LinuxMemoryPolicy) -> Result<MemoryPolicy> {
    use MemoryPolicyModeType::*;
    // <linux/mempolicy.h>
    let mut mode = match p.mode() {
        MpolDefault => 0,
        MpolPreferred => 1,
        MpolBind => 2,
        MpolInterleave => 3,
        MpolLocal => 4,
        MpolPreferredMany => 5,
        MpolWeightedInterleave => 6,
    };
    for f in p.flags().iter().flatten() {
        mode |= match f {
            MemoryPolicyFlagType::MpolFNumaBalancing => 1 << 13,
            MemoryPolicyFlagType::MpolFRelativeNodes => 1 << 14,
            MemoryPolicyFlagType::MpolFStaticNodes => 1 << 15,
        };
    }
    let bits = libc::c_ulong::BITS as usize;
    let mut nodes = Vec::new();
    let list = p.nodes().as_deref().unwrap_or("");
    if !list.is_empty() {
        let ranges = id_ranges(list, "memory policy node", MAX_NUMA_NODE + 1)
            .map_err(|e| Error::msg(format!("linux.memoryPolicy.nodes: {e}")))?;
        for node in ranges.into_iter().flatten() {
            if nodes.len() <= node / bits {
                nodes.resize(node / bits + 1, 0);
            }
            nodes[node / bits] |= 1 << (node % bits);
        }
    }
    Ok(MemoryPolicy { mode, nodes })
}

/// `linux.memoryPolicy`, which fork and execve keep.
pub fn set_memory_policy(p: Option<&LinuxMemoryPolicy>) -> Result<()> {
    let Some(p) = p else {
        return Ok(());
    };
    let MemoryPolicy { mode, nodes } = memory_policy(p)?;
    // The kernel reads maxnode - 1 bits (mm/mempolicy.c, get_nodes), hence the + 1.
    let maxnode = match nodes.len() {
        0 => 0,
        n => n * libc::c_ulong::BITS as usize + 1,
    };
    let mask = if nodes.is_empty() {
        std::ptr::null()
    } else {
        nodes.as_ptr()
    };
    // SAFETY: set_mempolicy reads maxnode - 1 bits from `mask`, which holds that many.
    let r = unsafe { libc::syscall(libc::SYS_set_mempolicy, mode, mask, maxnode) };
    if r != 0 {
        return Err(nix::errno::Errno::last()).ctx("linux.memoryPolicy: set_mempolicy");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sched(v: serde_json::Value) -> Scheduler {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn scheduler_rules_are_runcs() {
        let ok = [
            serde_json::json!({"policy": "SCHED_OTHER", "nice": -20}),
            serde_json::json!({"policy": "SCHED_FIFO", "priority": 99}),
            serde_json::json!({"policy": "SCHED_IDLE", "nice": 40}),
            serde_json::json!({"policy": "SCHED_DEADLINE", "runtime": 1, "deadline": 2, "period": 3}),
        ];
        for s in ok {
            assert!(validate_scheduler(&sched(s.clone())).is_ok(), "{s}");
        }
        let bad = [
            (
                serde_json::json!({"policy": "SCHED_BATCH", "nice": 20}),
                "invalid scheduler.nice: 20 when scheduler.policy is SCHED_BATCH",
            ),
            (
                serde_json::json!({"policy": "SCHED_IDLE", "priority": 1}),
                "scheduler.priority can only be specified for SchedFIFO or SchedRR policy",
            ),
            (
                serde_json::json!({"policy": "SCHED_FIFO", "period": 1}),
                "scheduler runtime/deadline/period can only be specified for SchedDeadline policy",
            ),
        ];
        for (s, want) in bad {
            let e = validate_scheduler(&sched(s)).unwrap_err();
            assert_eq!(e.to_string(), want);
        }
    }

    #[test]
    fn cpu_lists() {
        let s = cpu_set("0-2,5").unwrap();
        let on: Vec<usize> = (0..8).filter(|&c| s.is_set(c).unwrap()).collect();
        assert_eq!(on, [0, 1, 2, 5]);
        assert_eq!(cpu_set("3-1").unwrap_err(), "invalid CPU range \"3-1\"");
        assert!(cpu_set("1,,2").is_err());
        assert!(cpu_set(&CpuSet::count().to_string()).is_err());
        assert!(cpu_set("99999999999999999999999").is_err());
    }

    #[test]
    fn memory_policy_as_set_mempolicy_takes_it() {
        let policy = |v| memory_policy(&serde_json::from_value(v).unwrap());
        let p = policy(serde_json::json!({"mode": "MPOL_BIND", "nodes": "0,65-66",
            "flags": ["MPOL_F_STATIC_NODES"]}))
        .unwrap();
        assert_eq!(p.mode, 2 | 1 << 15);
        assert_eq!(p.nodes, [1, 0b110]);
        let p = policy(serde_json::json!({"mode": "MPOL_LOCAL"})).unwrap();
        assert_eq!((p.mode, p.nodes.len()), (4, 0));
        let e = policy(serde_json::json!({"mode": "MPOL_BIND", "nodes": "4096"})).unwrap_err();
        assert_eq!(
            e.to_string(),
            "linux.memoryPolicy.nodes: memory policy node 4096 is out of range (the highest is 4095)"
        );
        assert!(policy(serde_json::json!({"mode": "MPOL_BIND", "nodes": "1-0"})).is_err());
    }

    #[test]
    fn personality_flags_refused() {
        let p: LinuxPersonality =
            serde_json::from_value(serde_json::json!({"domain": "LINUX32", "flags": ["X"]}))
                .unwrap();
        assert!(validate_personality(&p)
            .unwrap_err()
            .to_string()
            .starts_with("linux.personality.flags"));
    }
}
