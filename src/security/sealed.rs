//! CVE-2019-5736: while a husk process sits in a container (the created init, an exec'd process
//! before its execve) its /proc/<pid>/exe is the husk binary, and a container process able to open
//! that link can keep the fd and later write the host's binary through it. Being non-dumpable
//! stops every process without CAP_SYS_PTRACE over the host's user namespace, so only a container
//! that holds that capability (and no user namespace of its own, which would confine it) needs
//! more: for it, husk re-executes itself from a sealed memfd copy of its binary before it
//! starts the container, and the link leads only to that copy. Everyone else pays nothing.

use crate::error::{Context, Error, Result};
use oci_spec::runtime::{Capability, LinuxCapabilities};
use std::ffi::CString;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;

const NAME: &str = "husk-sealed";

/// Whether a process with these capabilities could reach the husk processes in its container
/// through /proc/<pid>/exe. `own_userns`: the container has a user namespace of its own.
pub fn exposed(caps: Option<&LinuxCapabilities>, own_userns: bool) -> bool {
    if own_userns {
        return false;
    }
    let Some(c) = caps else { return false };
    [
        c.bounding(),
        c.effective(),
        c.permitted(),
        c.inheritable(),
        c.ambient(),
    ]
    .iter()
    .any(|set| {
        set.as_ref()
            .is_some_and(|s| s.contains(&Capability::SysPtrace))
    })
}

/// Re-executes this very command from a sealed copy of the binary, unless it already runs from
/// one. Only returns on failure. Nothing may have been done yet that the new image would repeat
/// with a different outcome: callers only parsed and checked their input.
pub fn reexec() -> Result<()> {
    if std::fs::read_link("/proc/self/exe").is_ok_and(|p| {
        p.as_os_str()
            .as_bytes()
            .starts_with(format!("/memfd:{NAME}").as_bytes())
    }) {
        return Ok(());
    }
    let copy = sealed_copy()?;
    let argv: Vec<CString> = std::env::args_os()
        .map(|a| CString::new(a.as_bytes()))
        .collect::<std::result::Result<_, _>>()
        .map_err(|_| Error::msg("re-exec: an argument holds a NUL byte"))?;
    let env: Vec<CString> = std::env::vars_os()
        .filter_map(|(k, v)| {
            let mut kv = k.as_bytes().to_vec();
            kv.push(b'=');
            kv.extend_from_slice(v.as_bytes());
            CString::new(kv).ok()
        })
        .collect();
    // The copy is close-on-exec; the kernel holds its own reference for the new image.
    let e = nix::unistd::execveat(&copy, c"", &argv, &env, nix::fcntl::AtFlags::AT_EMPTY_PATH)
        .unwrap_err();
    Err(e).ctx("re-exec from a sealed copy of the husk binary")
}

/// A memfd holding the binary, sealed against every change.
fn sealed_copy() -> Result<OwnedFd> {
    use nix::fcntl::{fcntl, FcntlArg, SealFlag};
    use nix::sys::memfd::{memfd_create, MFdFlags};
    let exe = std::fs::File::open("/proc/self/exe").ctx("open /proc/self/exe")?;
    let name = CString::new(NAME).map_err(|_| Error::msg("memfd name"))?;
    let memfd = memfd_create(
        name.as_c_str(),
        MFdFlags::MFD_CLOEXEC | MFdFlags::MFD_ALLOW_SEALING,
    )
    .ctx("memfd_create")?;
    let len = exe.metadata().ctx("stat /proc/self/exe")?.len() as usize;
    let mut done = 0;
    while done < len {
        // No offset: sendfile uses and moves the file offset.
        match nix::sys::sendfile::sendfile(&memfd, &exe, None, len - done) {
            Ok(0) => return Err(Error::msg("copy /proc/self/exe: short read")),
            Ok(n) => done += n,
            Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(e).ctx("copy /proc/self/exe"),
        }
    }
    let seals = SealFlag::F_SEAL_SEAL
        | SealFlag::F_SEAL_SHRINK
        | SealFlag::F_SEAL_GROW
        | SealFlag::F_SEAL_WRITE;
    fcntl(&memfd, FcntlArg::F_ADD_SEALS(seals)).ctx("seal the husk binary copy")?;
    Ok(memfd)
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::LinuxCapabilitiesBuilder;
    use std::collections::HashSet;

    #[test]
    fn only_ptrace_outside_a_user_namespace_is_exposed() {
        let with = |caps: &[Capability]| {
            LinuxCapabilitiesBuilder::default()
                .bounding(caps.iter().copied().collect::<HashSet<_>>())
                .build()
                .unwrap()
        };
        assert!(!exposed(None, false));
        assert!(!exposed(Some(&with(&[Capability::Kill])), false));
        assert!(exposed(Some(&with(&[Capability::SysPtrace])), false));
        assert!(!exposed(Some(&with(&[Capability::SysPtrace])), true));
    }

    #[test]
    fn the_copy_is_the_binary_and_cannot_be_changed() {
        use std::os::fd::AsRawFd;
        let copy = sealed_copy().unwrap();
        let path = format!("/proc/self/fd/{}", copy.as_raw_fd());
        assert_eq!(
            std::fs::read(&path).unwrap(),
            std::fs::read("/proc/self/exe").unwrap()
        );
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        use std::io::Write;
        let e = f.write_all(b"x").unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EPERM), "{e}");
    }
}
