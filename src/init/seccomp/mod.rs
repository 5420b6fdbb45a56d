//! `linux.seccomp`: builds the filter with libseccomp and loads it into the calling process (the
//! container's init, just before execve), behind runc's ENOSYS stub for syscalls newer than the
//! profile. Follows runc: syscall names libseccomp does not know
//! are skipped, rules whose action is the default action are skipped (libseccomp refuses them),
//! and a rule comparing one argument more than once becomes one rule per comparison (libseccomp
//! would AND them; runc ORs them, and Docker's profile relies on that).

mod enosys;
pub mod notify;

use crate::error::{Context, Error, Result};
use libseccomp::error::SeccompError;
use libseccomp::{ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext};
use libseccomp::{ScmpSyscall, ScmpVersion};
use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction as Action, LinuxSeccompArg, LinuxSeccompFilterFlag,
    LinuxSeccompOperator as Op,
};
use std::fmt::Display;
use std::os::fd::{FromRawFd, OwnedFd};

/// Loads the filter: libseccomp's program behind runc's ENOSYS stub ([`enosys`]), through
/// seccomp(2) itself, as libseccomp loads only its own program. With `no_new_privs` unset this
/// needs CAP_SYS_ADMIN. Returns the listener fd (close-on-exec) when a rule uses
/// SCMP_ACT_NOTIFY, for the agent at `listenerPath`; the NOTIFY rules were checked by
/// [`notify::check`].
pub fn load(seccomp: &LinuxSeccomp) -> Result<Option<OwnedFd>> {
    let (mut prog, notify) = program(seccomp)?;
    let mut flags = kernel_flags(seccomp);
    if notify {
        flags |= libc::SECCOMP_FILTER_FLAG_NEW_LISTENER;
    }
    let fprog = libc::sock_fprog {
        len: u16::try_from(prog.len())
            .map_err(|_| Error::msg("linux.seccomp: the filter is too long"))?,
        filter: prog.as_mut_ptr(),
    };
    // SAFETY: seccomp reads the program that fprog points to, alive until it returns.
    let r = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            flags,
            &fprog as *const libc::sock_fprog,
        )
    };
    if r < 0 {
        return Err(nix::errno::Errno::last()).ctx("linux.seccomp: load filter");
    }
    if !notify {
        return Ok(None);
    }
    // SAFETY: with NEW_LISTENER the kernel returns a new close-on-exec fd, ours alone.
    Ok(Some(unsafe { OwnedFd::from_raw_fd(r as i32) }))
}

/// The program to load, and whether it has a SCMP_ACT_NOTIFY rule.
pub fn program(seccomp: &LinuxSeccomp) -> Result<(Vec<libc::sock_filter>, bool)> {
    let (filter, notify) = build(seccomp)?;
    let mut prog = enosys::stub(seccomp)?;
    prog.extend(export(&filter)?);
    Ok((prog, notify))
}

/// The kernel's flags for the profile's. TSYNC synchronises the other threads, and husk has
/// none (runc ignores it too).
fn kernel_flags(seccomp: &LinuxSeccomp) -> libc::c_ulong {
    seccomp
        .flags()
        .iter()
        .flatten()
        .map(|f| match f {
            LinuxSeccompFilterFlag::SeccompFilterFlagTsync => 0,
            LinuxSeccompFilterFlag::SeccompFilterFlagLog => libc::SECCOMP_FILTER_FLAG_LOG,
            LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => {
                libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW
            }
            LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv => {
                libc::SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV
            }
        })
        .fold(0, |all, f| all | f)
}

/// Whether a profile may use the filter flag `name` here (runc's supportedFlags). TSYNC always
/// (husk has no other threads); the others if this kernel knows them: seccomp(2) with no
/// program fails EFAULT after it has accepted the flags, EINVAL before.
pub fn flag_supported(name: &str) -> bool {
    let flag = match name {
        "SECCOMP_FILTER_FLAG_TSYNC" => return true,
        "SECCOMP_FILTER_FLAG_LOG" => libc::SECCOMP_FILTER_FLAG_LOG,
        "SECCOMP_FILTER_FLAG_SPEC_ALLOW" => libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW,
        _ => return false,
    };
    // SAFETY: a null program, which the kernel fails to read once the flags have passed.
    let r = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            flag,
            std::ptr::null::<libc::sock_fprog>(),
        )
    };
    r < 0 && nix::errno::Errno::last() == nix::errno::Errno::EFAULT
}

/// libseccomp's program, as the kernel takes it (libseccomp writes it in host byte order).
fn export(filter: &ScmpFilterContext) -> Result<Vec<libc::sock_filter>> {
    use std::io::{Read, Seek};
    let fd = nix::sys::memfd::memfd_create(c"husk-seccomp", nix::sys::memfd::MFdFlags::MFD_CLOEXEC)
        .ctx("memfd_create")?;
    filter
        .export_bpf(&fd)
        .map_err(|e| lib_err("linux.seccomp: export filter", e))?;
    let mut f = std::fs::File::from(fd);
    let mut raw = Vec::new();
    f.rewind()
        .and_then(|()| f.read_to_end(&mut raw))
        .ctx("linux.seccomp: read exported filter")?;
    Ok(raw
        .chunks_exact(8)
        .map(|i| libc::sock_filter {
            code: u16::from_ne_bytes([i[0], i[1]]),
            jt: i[2],
            jf: i[3],
            k: u32::from_ne_bytes([i[4], i[5], i[6], i[7]]),
        })
        .collect())
}

/// The filter for `seccomp`, not loaded, and whether it has a SCMP_ACT_NOTIFY rule.
pub fn build(seccomp: &LinuxSeccomp) -> Result<(ScmpFilterContext, bool)> {
    let default = action(
        seccomp.default_action(),
        seccomp.default_errno_ret(),
        "linux.seccomp.defaultErrnoRet",
    )?;
    let mut filter =
        ScmpFilterContext::new(default).map_err(|e| lib_err("linux.seccomp: new filter", e))?;
    // no_new_privs is process.noNewPrivileges' business, not libseccomp's.
    filter
        .set_ctl_nnp(false)
        .map_err(|e| lib_err("linux.seccomp: unset no_new_privs", e))?;
    // Report the kernel's errno when loading fails.
    let _ = filter.set_api_sysrawrc(true);
    for arch in seccomp.architectures().iter().flatten() {
        filter
            .add_arch(scmp_arch(*arch))
            .map_err(|e| lib_err(format!("linux.seccomp.architectures: {arch}"), e))?;
    }
    for flag in seccomp.flags().iter().flatten() {
        let r = match flag {
            LinuxSeccompFilterFlag::SeccompFilterFlagTsync => filter.set_ctl_tsync(true),
            LinuxSeccompFilterFlag::SeccompFilterFlagLog => filter.set_ctl_log(true),
            LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => filter.set_ctl_ssb(true),
            LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv => {
                filter.set_ctl_waitkill(true)
            }
        };
        r.map_err(|e| lib_err(format!("linux.seccomp.flags: {flag}"), e))?;
    }

    let mut notify = false;
    let mut rules = 0;
    for (i, call) in seccomp.syscalls().iter().flatten().enumerate() {
        let field = format!("linux.seccomp.syscalls[{i}]");
        if call.names().is_empty() {
            return Err(Error::msg(format!("{field}.names: empty")));
        }
        let act = action(
            call.action(),
            call.errno_ret(),
            &format!("{field}.errnoRet"),
        )?;
        if act == default {
            continue;
        }
        let conds = call
            .args()
            .iter()
            .flatten()
            .enumerate()
            .map(|(j, a)| condition(a, &format!("{field}.args[{j}]")))
            .collect::<Result<Vec<_>>>()?;
        // Each argument compared at most once: one rule ANDs them all. Otherwise, like runc,
        // one rule per comparison (any of them matches).
        let mut seen = [false; 6];
        let repeated = call
            .args()
            .iter()
            .flatten()
            .any(|a| std::mem::replace(&mut seen[a.index()], true));
        let groups: Vec<&[ScmpArgCompare]> = if repeated {
            conds.chunks(1).collect()
        } else {
            vec![&conds[..]]
        };
        for name in call.names() {
            let Ok(nr) = ScmpSyscall::from_name(name) else {
                log::debug!("{field}.names: unknown syscall {name:?} skipped");
                continue;
            };
            for group in &groups {
                filter
                    .add_rule_conditional(act, nr, group)
                    .map_err(|e| lib_err(format!("{field}.names: {name}"), e))?;
                rules += 1;
                notify |= act == ScmpAction::Notify;
            }
        }
    }
    // A binary tree of syscalls beats a linear list for long profiles; runc's threshold (a
    // libseccomp before 2.5.5 mishandles the tree for a filter with no rules).
    if rules > 32 {
        if let Err(e) = filter.set_ctl_optimize(2) {
            log::debug!("seccomp binary tree optimization unavailable: {e}");
        }
    }
    Ok((filter, notify))
}

/// The libseccomp action; `errno_ret` (named by `field` in errors) defaults to EPERM.
fn action(act: Action, errno_ret: Option<u32>, field: &str) -> Result<ScmpAction> {
    let ret = || -> Result<u16> {
        let n = errno_ret.unwrap_or(libc::EPERM as u32);
        u16::try_from(n).map_err(|_| Error::msg(format!("{field}: {n} is out of range")))
    };
    Ok(match act {
        Action::ScmpActKill | Action::ScmpActKillThread => ScmpAction::KillThread,
        Action::ScmpActKillProcess => ScmpAction::KillProcess,
        Action::ScmpActTrap => ScmpAction::Trap,
        Action::ScmpActErrno => ScmpAction::Errno(ret()?.into()),
        Action::ScmpActTrace => ScmpAction::Trace(ret()?),
        Action::ScmpActNotify => ScmpAction::Notify,
        Action::ScmpActLog => ScmpAction::Log,
        Action::ScmpActAllow => ScmpAction::Allow,
    })
}

fn condition(a: &LinuxSeccompArg, field: &str) -> Result<ScmpArgCompare> {
    if a.index() > 5 {
        return Err(Error::msg(format!(
            "{field}.index: {} is out of range (0-5)",
            a.index()
        )));
    }
    let (op, datum) = match a.op() {
        Op::ScmpCmpNe => (ScmpCompareOp::NotEqual, a.value()),
        Op::ScmpCmpLt => (ScmpCompareOp::Less, a.value()),
        Op::ScmpCmpLe => (ScmpCompareOp::LessOrEqual, a.value()),
        Op::ScmpCmpEq => (ScmpCompareOp::Equal, a.value()),
        Op::ScmpCmpGe => (ScmpCompareOp::GreaterEqual, a.value()),
        Op::ScmpCmpGt => (ScmpCompareOp::Greater, a.value()),
        // (arg & value) == valueTwo
        Op::ScmpCmpMaskedEq => (
            ScmpCompareOp::MaskedEqual(a.value()),
            a.value_two().unwrap_or(0),
        ),
    };
    Ok(ScmpArgCompare::new(a.index() as u32, op, datum))
}

fn scmp_arch(a: Arch) -> ScmpArch {
    match a {
        Arch::ScmpArchNative => ScmpArch::Native,
        Arch::ScmpArchX86 => ScmpArch::X86,
        Arch::ScmpArchX86_64 => ScmpArch::X8664,
        Arch::ScmpArchX32 => ScmpArch::X32,
        Arch::ScmpArchArm => ScmpArch::Arm,
        Arch::ScmpArchAarch64 => ScmpArch::Aarch64,
        Arch::ScmpArchMips => ScmpArch::Mips,
        Arch::ScmpArchMips64 => ScmpArch::Mips64,
        Arch::ScmpArchMips64n32 => ScmpArch::Mips64N32,
        Arch::ScmpArchMipsel => ScmpArch::Mipsel,
        Arch::ScmpArchMipsel64 => ScmpArch::Mipsel64,
        Arch::ScmpArchMipsel64n32 => ScmpArch::Mipsel64N32,
        Arch::ScmpArchPpc => ScmpArch::Ppc,
        Arch::ScmpArchPpc64 => ScmpArch::Ppc64,
        Arch::ScmpArchPpc64le => ScmpArch::Ppc64Le,
        Arch::ScmpArchS390 => ScmpArch::S390,
        Arch::ScmpArchS390x => ScmpArch::S390X,
        Arch::ScmpArchParisc => ScmpArch::Parisc,
        Arch::ScmpArchParisc64 => ScmpArch::Parisc64,
        Arch::ScmpArchRiscv64 => ScmpArch::Riscv64,
        Arch::ScmpArchLoongarch64 => ScmpArch::Loongarch64,
        Arch::ScmpArchM68k => ScmpArch::M68k,
        Arch::ScmpArchSh => ScmpArch::Sh,
        Arch::ScmpArchSheb => ScmpArch::Sheb,
    }
}

/// A libseccomp error in our words: the kernel's errno as Go prints it, else libseccomp's
/// message in lower case.
fn lib_err(what: impl Display, e: SeccompError) -> Error {
    match (e.errno(), e.sysrawrc()) {
        (None, Some(rc)) if rc < 0 => Error::Sys {
            ctx: what.to_string(),
            errno: nix::errno::Errno::from_raw(-rc),
        },
        _ => {
            let m = e.to_string();
            let mut c = m.chars();
            let first = c.next().map(|f| f.to_lowercase().to_string());
            Error::msg(format!(
                "{what}: {}{}",
                first.unwrap_or_default(),
                c.as_str()
            ))
        }
    }
}

/// The libseccomp linked in, as runc prints it in `features` ("2.5.4").
pub fn library_version() -> Option<String> {
    let v = ScmpVersion::current().ok()?;
    Some(format!("{}.{}.{}", v.major, v.minor, v.micro))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn parse(json: &str) -> LinuxSeccomp {
        serde_json::from_str(json).expect("valid LinuxSeccomp")
    }

    /// libseccomp's pseudo-filter-code for the profile: readable, and enough to check rules.
    fn pfc(json: &str) -> String {
        let (filter, _) = build(&parse(json)).expect("filter builds");
        let (mut r, w) = std::io::pipe().unwrap();
        filter.export_pfc(&w).unwrap();
        drop(w);
        let mut s = String::new();
        r.read_to_string(&mut s).unwrap();
        s
    }

    #[test]
    fn errno_rule_on_allow_default() {
        let p = pfc(r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"},
            {"names": ["chmod"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}]}"#);
        assert!(p.contains("\"mkdir\""), "{p}");
        assert!(p.contains("\"mkdirat\""), "{p}");
        assert!(p.contains("action ERRNO(1);"), "EPERM by default:\n{p}");
        assert!(p.contains("action ERRNO(38);"), "{p}");
        assert!(p.contains("# default action\n  action ALLOW;"), "{p}");
    }

    /// Docker's default profile, cut down: same shape, same kinds of rules.
    const DOCKER: &str = r#"{
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": 1,
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": [
            {"names": ["accept", "bind", "brk", "close", "execve", "exit_group", "futex",
                       "mmap", "openat", "read", "write", "landlock_create_ruleset",
                       "nonexistent_syscall"],
             "action": "SCMP_ACT_ALLOW"},
            {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": 0, "valueTwo": 0, "op": "SCMP_CMP_EQ"}]},
            {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": 4294967295, "op": "SCMP_CMP_EQ"}]},
            {"names": ["clone"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": 2114060288, "valueTwo": 0,
                       "op": "SCMP_CMP_MASKED_EQ"}]},
            {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38},
            {"names": ["socket"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1},
            {"names": ["socket"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": 16, "op": "SCMP_CMP_NE"}]}
        ]
    }"#;

    #[test]
    fn docker_default_profile_shape() {
        let (_, notify) = build(&parse(DOCKER)).expect("builds");
        assert!(!notify);
        let p = pfc(DOCKER);
        for arch in ["x86_64", "x86 ", "x32"] {
            assert!(
                p.contains(&format!("# filter for arch {arch}")),
                "{arch}:\n{p}"
            );
        }
        // (arg0 & value) == valueTwo: value is the mask.
        assert!(p.contains("if ($a0.lo32 & 0x7e020000 == 0)"), "{p}");
        assert!(p.contains("action ERRNO(38);"), "{p}");
        // The ERRNO(EPERM) socket rule equals the default action: skipped, not refused.
        assert!(p.contains("# filter for syscall \"socket\""), "{p}");
        assert!(p.contains("# default action\n  action ERRNO(1);"), "{p}");
    }

    #[test]
    fn every_action_and_operator() {
        let p = pfc(r#"{"defaultAction": "SCMP_ACT_KILL_PROCESS",
            "flags": ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
                      "SECCOMP_FILTER_FLAG_TSYNC"],
            "syscalls": [
            {"names": ["read"], "action": "SCMP_ACT_ALLOW"},
            {"names": ["write"], "action": "SCMP_ACT_LOG"},
            {"names": ["open"], "action": "SCMP_ACT_TRAP"},
            {"names": ["close"], "action": "SCMP_ACT_TRACE", "errnoRet": 7},
            {"names": ["getpid"], "action": "SCMP_ACT_KILL"},
            {"names": ["getppid"], "action": "SCMP_ACT_KILL_THREAD"},
            {"names": ["getuid"], "action": "SCMP_ACT_NOTIFY"},
            {"names": ["mmap"], "action": "SCMP_ACT_ALLOW", "args": [
                {"index": 0, "value": 1, "op": "SCMP_CMP_NE"},
                {"index": 1, "value": 2, "op": "SCMP_CMP_LT"},
                {"index": 2, "value": 3, "op": "SCMP_CMP_LE"},
                {"index": 3, "value": 4, "op": "SCMP_CMP_EQ"},
                {"index": 4, "value": 5, "op": "SCMP_CMP_GE"},
                {"index": 5, "value": 6, "op": "SCMP_CMP_GT"}]}]}"#);
        for want in [
            "action ALLOW;",
            "action LOG;",
            "action TRAP;",
            "action TRACE(7);",
            "action KILL;",
            "action 0x7fc00000;", // NOTIFY, as libseccomp 2.5 prints it
            "action KILL_PROCESS;",
        ] {
            assert!(p.contains(want), "{want}:\n{p}");
        }
        let (_, notify) = build(&parse(
            r#"{"defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{"names": ["getuid"], "action": "SCMP_ACT_NOTIFY"}]}"#,
        ))
        .unwrap();
        assert!(notify);
        // A notify rule for syscalls unknown here adds no rule: no listener to ask for.
        let (_, notify) = build(&parse(
            r#"{"defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{"names": ["nonexistent_syscall"], "action": "SCMP_ACT_NOTIFY"}]}"#,
        ))
        .unwrap();
        assert!(!notify);
    }

    #[test]
    fn rule_equal_to_default_is_skipped() {
        let p = pfc(r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
            {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1},
            {"names": ["rmdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 2}]}"#);
        assert!(!p.contains("\"mkdir\""), "{p}");
        assert!(p.contains("\"rmdir\""), "{p}");
    }

    #[test]
    fn unknown_syscall_is_skipped() {
        let p = pfc(r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["nonexistent_syscall", "mkdir"], "action": "SCMP_ACT_ERRNO"}]}"#);
        assert!(p.contains("\"mkdir\""), "{p}");
    }

    #[test]
    fn repeated_argument_makes_one_rule_per_comparison() {
        // Both conditions on arg0 in one rule could never match together; runc ORs them.
        let p = pfc(r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["personality"], "action": "SCMP_ACT_ERRNO", "args": [
                {"index": 0, "value": 8, "op": "SCMP_CMP_EQ"},
                {"index": 0, "value": 131080, "op": "SCMP_CMP_EQ"}]}]}"#);
        assert!(p.contains("if ($a0.lo32 == 8)"), "{p}");
        assert!(p.contains("if ($a0.lo32 == 131080)"), "{p}");
    }

    #[test]
    fn errors_name_the_field() {
        let err = |json: &str| build(&parse(json)).map(drop).unwrap_err().to_string();
        assert_eq!(
            err(r#"{"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 70000}"#),
            "linux.seccomp.defaultErrnoRet: 70000 is out of range"
        );
        assert_eq!(
            err(r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                {"names": ["read"], "action": "SCMP_ACT_KILL"},
                {"names": [], "action": "SCMP_ACT_KILL"}]}"#),
            "linux.seccomp.syscalls[1].names: empty"
        );
        assert_eq!(
            err(r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                {"names": ["read"], "action": "SCMP_ACT_ERRNO", "errnoRet": 65536}]}"#),
            "linux.seccomp.syscalls[0].errnoRet: 65536 is out of range"
        );
        assert_eq!(
            err(r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                {"names": ["read"], "action": "SCMP_ACT_ERRNO",
                 "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}]}"#),
            "linux.seccomp.syscalls[0].args[0].index: 6 is out of range (0-5)"
        );
    }

    #[test]
    fn flags_this_kernel_takes() {
        // LOG since Linux 4.14, SPEC_ALLOW since 4.17.
        for f in [
            "SECCOMP_FILTER_FLAG_TSYNC",
            "SECCOMP_FILTER_FLAG_LOG",
            "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
        ] {
            assert!(flag_supported(f), "{f}");
        }
        assert!(!flag_supported("SECCOMP_FILTER_FLAG_NONE_SUCH"));
    }

    #[test]
    fn library_is_2_5_or_later() {
        let v = library_version().expect("libseccomp version");
        assert!(v.starts_with("2.") && !v.starts_with("2.4"), "{v}");
    }
}
