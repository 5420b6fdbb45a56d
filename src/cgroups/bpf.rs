//! cgroup v2 device rules: an eBPF program of type BPF_PROG_TYPE_CGROUP_DEVICE, emitted
//! instruction by instruction from the rules (as runc's devicefilter does) and loaded and
//! attached with bpf(2) directly. The programs are a dozen instructions of one fixed shape, so a
//! hand assembler of six opcodes is all it takes; an eBPF library would bring an ELF loader,
//! maps and BTF for nothing.
//!
//! The program sees `struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; }` in
//! r1 (type in the low 16 bits of access_type, access in the high ones) and returns 1 to allow.
//! Rules are tried in order; the first that matches decides, else the default does.

use super::devices::{Rules, MKNOD, READ, WRITE};
use crate::error::{Context, Error, Result};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

/// One eBPF instruction (struct bpf_insn).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Insn {
    pub code: u8,
    /// dst in the low nibble, src in the high one.
    pub regs: u8,
    pub off: i16,
    pub imm: i32,
}

const LDX_MEM_W: u8 = 0x61; // dst = *(u32 *)(src + off)
const AND32_IMM: u8 = 0x54;
const RSH32_IMM: u8 = 0x74;
const MOV32_IMM: u8 = 0xb4;
const MOV32_REG: u8 = 0xbc;
const JNE_IMM: u8 = 0x55;
const JNE_REG: u8 = 0x5d;
const EXIT: u8 = 0x95;

// include/uapi/linux/bpf.h
const DEVCG_ACC_MKNOD: i32 = 1;
const DEVCG_ACC_READ: i32 = 2;
const DEVCG_ACC_WRITE: i32 = 4;
const DEVCG_DEV_BLOCK: i32 = 1;
const DEVCG_DEV_CHAR: i32 = 2;
const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_ATTACH: libc::c_long = 8;
const BPF_PROG_DETACH: libc::c_long = 9;
const BPF_PROG_GET_FD_BY_ID: libc::c_long = 13;
const BPF_PROG_QUERY: libc::c_long = 16;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
const BPF_F_ALLOW_MULTI: u32 = 2;

fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        regs: dst | (src << 4),
        off,
        imm,
    }
}

/// The program for `rules`.
pub fn program(rules: &Rules) -> Vec<Insn> {
    let mut p = vec![
        insn(LDX_MEM_W, 2, 1, 0, 0), // r2 = type
        insn(AND32_IMM, 2, 0, 0, 0xffff),
        insn(LDX_MEM_W, 3, 1, 0, 0), // r3 = access
        insn(RSH32_IMM, 3, 0, 0, 16),
        insn(LDX_MEM_W, 4, 1, 4, 0), // r4 = major
        insn(LDX_MEM_W, 5, 1, 8, 0), // r5 = minor
    ];
    // Every exception is the opposite of the default, so their order does not matter.
    let verdict = i32::from(!rules.default_allow);
    for (dev, &bits) in &rules.exceptions {
        let kind = if dev.kind == 'b' {
            DEVCG_DEV_BLOCK
        } else {
            DEVCG_DEV_CHAR
        };
        let access = [
            (READ, DEVCG_ACC_READ),
            (WRITE, DEVCG_ACC_WRITE),
            (MKNOD, DEVCG_ACC_MKNOD),
        ]
        .iter()
        .filter(|(b, _)| bits & b != 0)
        .fold(0, |a, (_, acc)| a | acc);
        // Each test jumps past the end of this block when it fails; offsets are filled in
        // once the block's length is known.
        let mut block = vec![insn(JNE_IMM, 2, 0, 0, kind)];
        if access != DEVCG_ACC_READ | DEVCG_ACC_WRITE | DEVCG_ACC_MKNOD {
            // The access asked for must be within the rule's: (r3 & access) == r3.
            block.push(insn(MOV32_REG, 1, 3, 0, 0));
            block.push(insn(AND32_IMM, 1, 0, 0, access));
            block.push(insn(JNE_REG, 1, 3, 0, 0));
        }
        if dev.major >= 0 {
            block.push(insn(JNE_IMM, 4, 0, 0, dev.major as i32));
        }
        if dev.minor >= 0 {
            block.push(insn(JNE_IMM, 5, 0, 0, dev.minor as i32));
        }
        let tests = block.len();
        block.push(insn(MOV32_IMM, 0, 0, 0, verdict));
        block.push(insn(EXIT, 0, 0, 0, 0));
        let len = block.len();
        for (i, ins) in block.iter_mut().take(tests).enumerate() {
            if matches!(ins.code, JNE_IMM | JNE_REG) {
                ins.off = (len - i - 1) as i16;
            }
        }
        p.extend(block);
    }
    p.push(insn(MOV32_IMM, 0, 0, 0, i32::from(rules.default_allow)));
    p.push(insn(EXIT, 0, 0, 0, 0));
    p
}

fn bpf<T>(cmd: libc::c_long, attr: &mut T) -> nix::Result<libc::c_long> {
    // SAFETY: attr is a properly laid out bpf_attr variant of the given size, and every pointer
    // in it points to memory that outlives the call.
    let r = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr as *mut T as *mut libc::c_void,
            std::mem::size_of::<T>(),
        )
    };
    nix::errno::Errno::result(r)
}

#[repr(C)]
struct LoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
}

#[repr(C)]
struct AttachAttr {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
}

#[repr(C)]
struct QueryAttr {
    target_fd: u32,
    attach_type: u32,
    query_flags: u32,
    attach_flags: u32,
    prog_ids: u64,
    prog_cnt: u32,
}

#[repr(C)]
struct GetFdAttr {
    prog_id: u32,
    next_id: u32,
    open_flags: u32,
}

fn load(prog: &[Insn]) -> Result<OwnedFd> {
    let license = c"Apache";
    let mut attr = LoadAttr {
        prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
        insn_cnt: prog.len() as u32,
        insns: prog.as_ptr() as u64,
        license: license.as_ptr() as u64,
        log_level: 0,
        log_size: 0,
        log_buf: 0,
        kern_version: 0,
        prog_flags: 0,
    };
    let fd = bpf(BPF_PROG_LOAD, &mut attr).ctx("bpf_prog_load(BPF_PROG_TYPE_CGROUP_DEVICE)")?;
    // SAFETY: the kernel returned a new fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// The ids of the device programs attached to the cgroup `dir` itself.
pub fn attached(dir: &impl AsRawFd) -> Result<Vec<u32>> {
    // A cgroup holds at most 64 programs per attach type.
    let mut ids = vec![0u32; 64];
    let mut attr = QueryAttr {
        target_fd: dir.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        query_flags: 0,
        attach_flags: 0,
        prog_ids: ids.as_mut_ptr() as u64,
        prog_cnt: ids.len() as u32,
    };
    bpf(BPF_PROG_QUERY, &mut attr).ctx("bpf_prog_query(BPF_CGROUP_DEVICE)")?;
    ids.truncate(attr.prog_cnt as usize);
    Ok(ids)
}

fn attach_op(cmd: libc::c_long, dir: &OwnedFd, prog: &OwnedFd, flags: u32) -> nix::Result<()> {
    let mut attr = AttachAttr {
        target_fd: dir.as_raw_fd() as u32,
        attach_bpf_fd: prog.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        attach_flags: flags,
    };
    bpf(cmd, &mut attr).map(drop)
}

/// Loads `prog` and makes it the cgroup's only device program. The new one is attached before
/// the old ones are detached (BPF_F_ALLOW_MULTI: a device must pass them all meanwhile), so the
/// container is never without rules. The kernel keeps an attached program alive after its fd
/// is closed.
pub fn attach(dir: &Path, prog: &[Insn]) -> Result<()> {
    let dfd: OwnedFd = std::fs::File::open(dir)
        .with_ctx(|| format!("open {}", dir.display()))?
        .into();
    let old = attached(&dfd)?;
    let new = load(prog)?;
    attach_op(BPF_PROG_ATTACH, &dfd, &new, BPF_F_ALLOW_MULTI)
        .ctx("bpf_prog_attach(BPF_CGROUP_DEVICE, BPF_F_ALLOW_MULTI)")?;
    for id in old {
        let mut attr = GetFdAttr {
            prog_id: id,
            next_id: 0,
            open_flags: 0,
        };
        let fd = match bpf(BPF_PROG_GET_FD_BY_ID, &mut attr) {
            Ok(fd) => fd,
            // Detached and freed meanwhile.
            Err(nix::errno::Errno::ENOENT) => continue,
            Err(e) => return Err(e).with_ctx(|| format!("bpf_prog_get_fd_by_id({id})")),
        };
        // SAFETY: a new fd from the kernel.
        let pfd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
        match attach_op(BPF_PROG_DETACH, &dfd, &pfd, 0) {
            Ok(()) | Err(nix::errno::Errno::ENOENT) => {}
            Err(e) => {
                return Err(Error::Sys {
                    ctx: format!("bpf_prog_detach(BPF_CGROUP_DEVICE) of old program {id}"),
                    errno: e,
                })
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroups::devices::Dev;

    /// The instructions in the verifier's notation.
    fn show(p: &[Insn]) -> Vec<String> {
        p.iter()
            .map(|i| {
                let (d, s) = (i.regs & 0xf, i.regs >> 4);
                // ALU instructions with an offset mean something else (sign extension).
                assert!(matches!(i.code, LDX_MEM_W | JNE_IMM | JNE_REG) || i.off == 0);
                match i.code {
                    LDX_MEM_W => format!("r{d} = *(u32 *)(r{s} + {})", i.off),
                    AND32_IMM => format!("w{d} &= {:#x}", i.imm),
                    RSH32_IMM => format!("w{d} >>= {}", i.imm),
                    MOV32_IMM => format!("w{d} = {}", i.imm),
                    MOV32_REG => format!("w{d} = w{s}"),
                    JNE_IMM => format!("if r{d} != {} goto +{}", i.imm, i.off),
                    JNE_REG => format!("if r{d} != r{s} goto +{}", i.off),
                    EXIT => "exit".to_string(),
                    c => format!("?{c:#x}"),
                }
            })
            .collect()
    }

    #[test]
    fn program_for_an_allow_list() {
        let mut r = Rules::default();
        let dev = |kind, major, minor| Some(Dev { major, minor, kind });
        r.apply(true, dev('c', 1, 3), READ | WRITE | MKNOD).unwrap();
        r.apply(true, dev('b', -1, -1), MKNOD).unwrap();
        r.apply(true, dev('c', 136, -1), READ | WRITE).unwrap();
        assert_eq!(
            show(&program(&r)),
            [
                "r2 = *(u32 *)(r1 + 0)",
                "w2 &= 0xffff",
                "r3 = *(u32 *)(r1 + 0)",
                "w3 >>= 16",
                "r4 = *(u32 *)(r1 + 4)",
                "r5 = *(u32 *)(r1 + 8)",
                // b *:* m
                "if r2 != 1 goto +5",
                "w1 = w3",
                "w1 &= 0x1",
                "if r1 != r3 goto +2",
                "w0 = 1",
                "exit",
                // c 1:3 rwm: no access test
                "if r2 != 2 goto +4",
                "if r4 != 1 goto +3",
                "if r5 != 3 goto +2",
                "w0 = 1",
                "exit",
                // c 136:* rw
                "if r2 != 2 goto +6",
                "w1 = w3",
                "w1 &= 0x6",
                "if r1 != r3 goto +3",
                "if r4 != 136 goto +2",
                "w0 = 1",
                "exit",
                // default: deny
                "w0 = 0",
                "exit",
            ]
        );
    }

    #[test]
    fn program_for_a_deny_list() {
        let mut r = Rules {
            default_allow: true,
            ..Rules::default()
        };
        r.apply(
            false,
            Some(Dev {
                major: 8,
                minor: 0,
                kind: 'b',
            }),
            WRITE,
        )
        .unwrap();
        assert_eq!(
            show(&program(&r))[6..],
            [
                "if r2 != 1 goto +7",
                "w1 = w3",
                "w1 &= 0x4",
                "if r1 != r3 goto +4",
                "if r4 != 8 goto +3",
                "if r5 != 0 goto +2",
                "w0 = 0",
                "exit",
                "w0 = 1",
                "exit",
            ]
        );
    }
}
