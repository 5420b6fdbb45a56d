//! runc's ENOSYS stub (libcontainer/seccomp/patchbpf), prepended to libseccomp's program: a
//! syscall numbered above the highest one a profile names, for an architecture the profile
//! lists, fails with ENOSYS instead of the profile's default action. A profile only knows the
//! syscalls of its day; libcs fall back from newer ones (clone3 -> clone, faccessat2 ->
//! faccessat) only on ENOSYS, so an EPERM there breaks new images under old profiles.
//!
//! runc's rule, followed here: no stub when the default action lets syscalls through (ALLOW,
//! LOG, TRACE) or is already ERRNO(ENOSYS); every rule's names count, whatever its action;
//! names an architecture does not have, and architectures with none, add nothing; x86_64 and
//! x32 share one audit architecture, told apart by the x32 bit of the number; on s390(x)
//! syscall 0 is the multiplexer that unknown syscalls end up in, so it gets ENOSYS too.

use super::scmp_arch;
use crate::error::{Error, Result};
use libc::sock_filter;
use libseccomp::{ScmpArch, ScmpSyscall};
use oci_spec::runtime::{LinuxSeccomp, LinuxSeccompAction as Action};
use std::collections::BTreeMap;

const X32_SYSCALL_BIT: u32 = 0x4000_0000;
const RET_ENOSYS: u32 = libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32;

/// The highest syscall number per architecture mode: x86_64 and x32 under one audit arch.
#[derive(Default)]
struct Highest {
    native: Option<u32>,
    x32: Option<u32>,
}

/// The stub for `seccomp`'s profile; empty when runc adds none.
pub fn stub(seccomp: &LinuxSeccomp) -> Result<Vec<sock_filter>> {
    let default = seccomp.default_action();
    if matches!(
        default,
        Action::ScmpActAllow | Action::ScmpActLog | Action::ScmpActTrace
    ) || (default == Action::ScmpActErrno
        && seccomp.default_errno_ret() == Some(libc::ENOSYS as u32))
    {
        return Ok(vec![]);
    }
    let mut arches: BTreeMap<u32, Highest> = BTreeMap::new();
    for a in seccomp.architectures().iter().flatten() {
        let arch = match scmp_arch(*a) {
            ScmpArch::Native => ScmpArch::native(),
            other => other,
        };
        let Some(max) = highest(seccomp, arch) else {
            log::debug!("linux.seccomp: no syscalls for {a}: no ENOSYS stub for it");
            continue;
        };
        let entry = arches.entry(audit_arch(arch)?).or_default();
        if arch == ScmpArch::X32 {
            entry.x32 = Some(max);
        } else {
            entry.native = Some(max);
        }
    }
    if arches.is_empty() {
        return Ok(vec![]);
    }
    assemble(&arches)
}

/// The highest number of a syscall the profile names, on `arch`.
fn highest(seccomp: &LinuxSeccomp, arch: ScmpArch) -> Option<u32> {
    seccomp
        .syscalls()
        .iter()
        .flatten()
        .flat_map(|rule| rule.names())
        .filter_map(|name| ScmpSyscall::from_name_by_arch(name, arch).ok())
        // libseccomp's pseudo-syscalls (negative) exist on no kernel.
        .filter_map(|nr| u32::try_from(i32::from(nr)).ok())
        .filter(|&nr| nr > 0)
        .max()
}

/// Where a jump of the stub goes.
#[derive(Clone, Copy)]
enum To {
    /// Over this many instructions (0: the next one).
    Skip(usize),
    Section(usize),
    Enosys,
    Filter,
}

enum Op {
    LoadArch,
    LoadNr,
    /// if A == k goto .. else next
    Eq(u32, To),
    /// if A > k goto .. else next
    Gt(u32, To),
    /// if A & k goto first else second
    Set(u32, To, To),
    Jump(To),
}

/// Lays out: arch dispatch, one section per audit arch, `ret ENOSYS`; the filter follows.
fn assemble(arches: &BTreeMap<u32, Highest>) -> Result<Vec<sock_filter>> {
    let mut head = vec![Op::LoadArch];
    let mut sections = Vec::new();
    for (i, (&audit, h)) in arches.iter().enumerate() {
        head.push(Op::Eq(audit, To::Section(i)));
        let mut s = vec![Op::LoadNr];
        if audit == AUDIT_S390 || audit == AUDIT_S390X {
            s.push(Op::Eq(0, To::Enosys));
        }
        match (audit == AUDIT_X86_64, h.native, h.x32) {
            (true, Some(native), Some(x32)) => s.extend([
                Op::Set(X32_SYSCALL_BIT, To::Skip(2), To::Skip(0)),
                Op::Gt(native, To::Enosys),
                Op::Jump(To::Filter),
                Op::Gt(x32, To::Enosys),
            ]),
            (true, Some(native), None) => s.extend([
                Op::Set(X32_SYSCALL_BIT, To::Filter, To::Skip(0)),
                Op::Gt(native, To::Enosys),
            ]),
            (true, None, Some(x32)) => s.extend([
                Op::Set(X32_SYSCALL_BIT, To::Skip(0), To::Filter),
                Op::Gt(x32, To::Enosys),
            ]),
            (_, Some(max), _) | (_, None, Some(max)) => s.push(Op::Gt(max, To::Enosys)),
            (_, None, None) => {}
        }
        s.push(Op::Jump(To::Filter));
        sections.push(s);
    }
    head.push(Op::Jump(To::Filter));

    let mut starts = Vec::new();
    let mut at = head.len();
    for s in &sections {
        starts.push(at);
        at += s.len();
    }
    let enosys = at;
    let filter = at + 1;
    let mut out = Vec::with_capacity(filter);
    for op in head.iter().chain(sections.iter().flatten()) {
        let here = out.len();
        // Every jump goes forward, from the instruction after this one.
        let target = |to: To| match to {
            To::Skip(n) => n,
            To::Section(i) => starts[i] - here - 1,
            To::Enosys => enosys - here - 1,
            To::Filter => filter - here - 1,
        };
        let off = |to: To| -> Result<u8> {
            u8::try_from(target(to)).map_err(|_| {
                Error::msg("linux.seccomp.architectures: too many for the ENOSYS stub")
            })
        };
        out.push(match *op {
            Op::LoadArch => ins(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, 4, 0, 0),
            Op::LoadNr => ins(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, 0, 0, 0),
            Op::Eq(k, to) => ins(libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K, k, off(to)?, 0),
            Op::Gt(k, to) => ins(libc::BPF_JMP | libc::BPF_JGT | libc::BPF_K, k, off(to)?, 0),
            Op::Set(k, yes, no) => ins(
                libc::BPF_JMP | libc::BPF_JSET | libc::BPF_K,
                k,
                off(yes)?,
                off(no)?,
            ),
            Op::Jump(to) => ins(libc::BPF_JMP | libc::BPF_JA, target(to) as u32, 0, 0),
        });
    }
    out.push(ins(libc::BPF_RET | libc::BPF_K, RET_ENOSYS, 0, 0));
    Ok(out)
}

fn ins(code: u32, k: u32, jt: u8, jf: u8) -> sock_filter {
    sock_filter {
        code: code as u16,
        jt,
        jf,
        k,
    }
}

// <linux/audit.h>: the ELF machine, 64BIT (0x8000_0000), LE (0x4000_0000) and MIPS n32
// (0x2000_0000) bits, as the kernel reports the architecture in seccomp_data.
const AUDIT_X86_64: u32 = 0xC000_003E;
const AUDIT_S390: u32 = 0x0000_0016;
const AUDIT_S390X: u32 = 0x8000_0016;

fn audit_arch(a: ScmpArch) -> Result<u32> {
    Ok(match a {
        ScmpArch::X86 => 0x4000_0003,
        // x32 calls come with x86_64's audit arch and the x32 bit in their number.
        ScmpArch::X8664 | ScmpArch::X32 => AUDIT_X86_64,
        ScmpArch::Arm => 0x4000_0028,
        ScmpArch::Aarch64 => 0xC000_00B7,
        ScmpArch::Loongarch64 => 0xC000_0102,
        ScmpArch::M68k => 0x0000_0004,
        ScmpArch::Mips => 0x0000_0008,
        ScmpArch::Mips64 => 0x8000_0008,
        ScmpArch::Mips64N32 => 0xA000_0008,
        ScmpArch::Mipsel => 0x4000_0008,
        ScmpArch::Mipsel64 => 0xC000_0008,
        ScmpArch::Mipsel64N32 => 0xE000_0008,
        ScmpArch::Ppc => 0x0000_0014,
        ScmpArch::Ppc64 => 0x8000_0015,
        ScmpArch::Ppc64Le => 0xC000_0015,
        ScmpArch::S390 => AUDIT_S390,
        ScmpArch::S390X => AUDIT_S390X,
        ScmpArch::Parisc => 0x0000_000F,
        ScmpArch::Parisc64 => 0x8000_000F,
        ScmpArch::Riscv64 => 0xC000_00F3,
        ScmpArch::Sheb => 0x0000_002A,
        ScmpArch::Sh => 0x4000_002A,
        other => {
            return Err(Error::msg(format!(
                "linux.seccomp.architectures: no audit architecture for {other:?}"
            )))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `prog` (the stub, then a filter that allows everything) on one syscall.
    fn run(prog: &[sock_filter], arch: u32, nr: u32) -> u32 {
        let mut a = 0u32;
        let mut pc = 0;
        loop {
            let Some(i) = prog.get(pc) else {
                return libc::SECCOMP_RET_ALLOW;
            };
            let code = u32::from(i.code);
            pc += 1;
            match code {
                c if c == libc::BPF_LD | libc::BPF_W | libc::BPF_ABS => {
                    a = if i.k == 4 { arch } else { nr }
                }
                c if c == libc::BPF_RET | libc::BPF_K => return i.k,
                c if c == libc::BPF_JMP | libc::BPF_JA => pc += i.k as usize,
                c => {
                    let taken = match c & 0xf0 {
                        x if x == libc::BPF_JEQ => a == i.k,
                        x if x == libc::BPF_JGT => a > i.k,
                        x if x == libc::BPF_JSET => a & i.k != 0,
                        _ => panic!("unexpected instruction {code:#x}"),
                    };
                    pc += usize::from(if taken { i.jt } else { i.jf });
                }
            }
        }
    }

    fn profile(default: &str, archs: &[&str]) -> LinuxSeccomp {
        serde_json::from_value(serde_json::json!({
            "defaultAction": default,
            "architectures": archs,
            "syscalls": [
                {"names": ["read", "write", "faccessat2"], "action": "SCMP_ACT_ALLOW"},
                {"names": ["mkdir", "no_such_syscall"], "action": "SCMP_ACT_ERRNO"}
            ]
        }))
        .unwrap()
    }

    const ALL: [&str; 3] = ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"];
    const I386: u32 = 0x4000_0003;

    #[test]
    fn newer_than_the_profile_gets_enosys() {
        let prog = stub(&profile("SCMP_ACT_ERRNO", &ALL)).unwrap();
        let allow = libc::SECCOMP_RET_ALLOW;
        // faccessat2 is 439 on x86_64, 439 | x32 bit on x32, 439 on i386.
        for (arch, nr, want) in [
            (AUDIT_X86_64, 439, allow),
            (AUDIT_X86_64, 440, RET_ENOSYS),
            (AUDIT_X86_64, 1000, RET_ENOSYS),
            (AUDIT_X86_64, 0, allow),
            (AUDIT_X86_64, X32_SYSCALL_BIT | 439, allow),
            (AUDIT_X86_64, X32_SYSCALL_BIT | 440, RET_ENOSYS),
            (I386, 439, allow),
            (I386, 440, RET_ENOSYS),
            // Architectures the profile does not list: left to the filter.
            (0xC000_00B7, 1000, allow),
        ] {
            assert_eq!(run(&prog, arch, nr), want, "arch {arch:#x} nr {nr}");
        }
    }

    #[test]
    fn one_mode_of_x86_64() {
        let prog = stub(&profile("SCMP_ACT_KILL", &["SCMP_ARCH_X86_64"])).unwrap();
        assert_eq!(run(&prog, AUDIT_X86_64, 440), RET_ENOSYS);
        let x32 = X32_SYSCALL_BIT | 1000;
        assert_eq!(run(&prog, AUDIT_X86_64, x32), libc::SECCOMP_RET_ALLOW);
        let prog = stub(&profile("SCMP_ACT_KILL", &["SCMP_ARCH_X32"])).unwrap();
        assert_eq!(run(&prog, AUDIT_X86_64, x32), RET_ENOSYS);
        assert_eq!(run(&prog, AUDIT_X86_64, 1000), libc::SECCOMP_RET_ALLOW);
    }

    #[test]
    fn s390_multiplexer_gets_enosys() {
        let prog = stub(&profile("SCMP_ACT_ERRNO", &["SCMP_ARCH_S390X"])).unwrap();
        assert_eq!(run(&prog, AUDIT_S390X, 0), RET_ENOSYS);
        assert_eq!(run(&prog, AUDIT_S390X, 3), libc::SECCOMP_RET_ALLOW);
    }

    #[test]
    fn no_stub_where_runc_adds_none() {
        for p in [
            profile("SCMP_ACT_ALLOW", &ALL),
            profile("SCMP_ACT_LOG", &ALL),
            profile("SCMP_ACT_TRACE", &ALL),
            profile("SCMP_ACT_ERRNO", &[]),
        ] {
            assert!(stub(&p).unwrap().is_empty());
        }
        let mut p = profile("SCMP_ACT_ERRNO", &ALL);
        p.set_default_errno_ret(Some(libc::ENOSYS as u32));
        assert!(stub(&p).unwrap().is_empty());
    }

    #[test]
    fn every_architecture_fits() {
        let every: Vec<String> = crate::commands::features::SECCOMP_ARCHS
            .iter()
            .map(|a| a.to_string())
            .chain(["SCMP_ARCH_LOONGARCH64".into(), "SCMP_ARCH_NATIVE".into()])
            .collect();
        let every: Vec<&str> = every.iter().map(String::as_str).collect();
        let prog = stub(&profile("SCMP_ACT_ERRNO", &every)).unwrap();
        assert_eq!(run(&prog, AUDIT_X86_64, 1000), RET_ENOSYS);
    }
}
