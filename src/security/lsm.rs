//! The LSM labels of the spec, applied as runc applies them. AppArmor: "exec <profile>" written
//! to the thread's exec attribute, which takes effect at the next execve; a kernel without
//! AppArmor refuses the write, and that is the error (runc checks nothing beforehand). SELinux:
//! a process label given while SELinux is off is refused up front (runc's words); otherwise it
//! goes to the exec attribute, and to keycreate for the session keyring. The mount label goes
//! into the data of the mounts runc labels, as `context="<label>"`, whatever the kernel says.

use crate::error::{Context, Error, Result};
use crate::security::procfs;

/// SELinux is on: selinuxfs at /sys/fs/selinux and a label other than "kernel" (go-selinux's
/// test, less its search of mountinfo for selinuxfs mounted elsewhere).
pub fn selinux_enabled() -> bool {
    const SELINUX_MAGIC: nix::sys::statfs::FsType = nix::sys::statfs::FsType(0xf97c_ff8c);
    nix::sys::statfs::statfs("/sys/fs/selinux").is_ok_and(|s| s.filesystem_type() == SELINUX_MAGIC)
        && std::fs::read_to_string("/proc/thread-self/attr/current")
            .is_ok_and(|c| c.trim_end_matches(['\0', '\n']) != "kernel")
}

/// runc's refusal of a process label without SELinux, at create and at exec.
pub fn check_process_label(label: Option<&str>) -> Result<()> {
    if label.is_some_and(|l| !l.is_empty()) && !selinux_enabled() {
        return Err(Error::msg(
            "selinux label is specified in config, but selinux is disabled or not supported",
        ));
    }
    Ok(())
}

/// Labels the keys the init creates (its session keyring) with the process label.
pub fn set_key_label(label: Option<&str>) -> Result<()> {
    match label.filter(|l| !l.is_empty()) {
        Some(l) => procfs::write_attr(&["keycreate"], l).map(drop),
        None => Ok(()),
    }
}

/// Arranges the AppArmor profile and the SELinux label that the next execve takes on.
pub fn set_exec_labels(apparmor: Option<&str>, selinux: Option<&str>) -> Result<()> {
    if let Some(p) = apparmor.filter(|p| !p.is_empty()) {
        procfs::write_attr(&["apparmor/exec", "exec"], &format!("exec {p}"))
            .ctx("unable to apply apparmor profile: apparmor failed to apply profile")?;
    }
    if let Some(l) = selinux.filter(|l| !l.is_empty()) {
        procfs::write_attr(&["exec"], l).ctx("can't set process label")?;
    }
    Ok(())
}

/// Mount data with the mount label added, as go-selinux's FormatMountLabel does.
pub fn label_mount_data(data: &str, label: Option<&str>) -> String {
    match label.filter(|l| !l.is_empty()) {
        None => data.to_string(),
        Some(l) if data.is_empty() => format!("context={l:?}"),
        Some(l) => format!("{data},context={l:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_data_gets_the_context() {
        let l = Some("system_u:object_r:container_file_t:s0");
        assert_eq!(
            label_mount_data("mode=755", l),
            "mode=755,context=\"system_u:object_r:container_file_t:s0\""
        );
        assert_eq!(
            label_mount_data("", l),
            "context=\"system_u:object_r:container_file_t:s0\""
        );
        assert_eq!(label_mount_data("mode=755", None), "mode=755");
        assert_eq!(label_mount_data("mode=755", Some("")), "mode=755");
    }

    #[test]
    fn no_label_is_never_refused() {
        assert!(check_process_label(None).is_ok());
        assert!(check_process_label(Some("")).is_ok());
    }
}
