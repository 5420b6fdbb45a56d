//! Harness for end-to-end conformance tests of an OCI runtime with runc's command line.
//!
//! The runtime under test is `$RUNTIME`, or the workspace's husk build. Every test gets its own
//! `--root`, bundle and container id; the test process is a child subreaper so detached
//! containers are reparented to it and reaped here. Nothing sleeps to synchronise: exits are
//! awaited through pidfds, container progress through fifos, with bounded deadlines.
//!
//! Run as root: `cargo nextest run -p spec-tests` (or `cargo test -p spec-tests`), with
//! `RUNTIME=/usr/sbin/runc` to check the expectations against runc itself. Needs
//! busybox-static (/bin/busybox). Every expectation was verified against runc 1.1.5 on a
//! cgroup v1 hybrid host; where runc 1.1.5 differs from the OCI spec or from later runc, the
//! test says so in a comment.

pub mod bundle;
pub mod caps;
pub mod cgroup;
pub mod console;
pub mod container;
pub mod fds;
pub mod leftovers;
pub mod mountinfo;
pub mod proc;
pub mod runtime;
pub mod seccomp;
pub mod seccomp_agent;
pub mod state;
pub mod sync;
pub mod tmp;

pub use bundle::Bundle;
pub use container::{unique_id, Container};
pub use runtime::{Output, Runtime};
pub use sync::{Fifo, WAIT};

/// Asserts that `stderr` is exactly one line and that it mentions at least one of `needles`
/// (case-insensitively): loose enough for another runtime's wording, strict enough that the
/// message names the problem.
#[track_caller]
pub fn assert_one_line_naming(stderr: &str, needles: &[&str]) {
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(
        lines.len(),
        1,
        "expected one line on stderr, got {stderr:?}"
    );
    let low = lines[0].to_lowercase();
    assert!(
        needles.iter().any(|n| low.contains(&n.to_lowercase())),
        "stderr {:?} names none of {needles:?}",
        lines[0]
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn runc_state_text() {
        let v = json!({
            "ociVersion": "1.0.2-dev", "id": "x", "pid": 12, "status": "created",
            "bundle": "/b", "rootfs": "/b/rootfs", "created": "2026-01-02T03:04:05.5Z",
            "owner": "", "annotations": {"z": "1", "a": "2"}
        });
        let want = "{\n  \"ociVersion\": \"1.0.2-dev\",\n  \"id\": \"x\",\n  \"pid\": 12,\n  \
            \"status\": \"created\",\n  \"bundle\": \"/b\",\n  \"rootfs\": \"/b/rootfs\",\n  \
            \"created\": \"2026-01-02T03:04:05.5Z\",\n  \"annotations\": {\n    \"a\": \"2\",\n    \
            \"z\": \"1\"\n  },\n  \"owner\": \"\"\n}";
        assert_eq!(state::runc_text(&v), want);
    }

    #[test]
    fn rfc3339_nano() {
        assert!(state::is_rfc3339_nano_utc("2026-11-23T11:55:17.669244646Z"));
        assert!(state::is_rfc3339_nano_utc("2026-11-23T11:55:17.6Z"));
        assert!(state::is_rfc3339_nano_utc("2026-11-23T11:55:17Z"));
        assert!(
            !state::is_rfc3339_nano_utc("2026-11-23T11:55:17.600Z"),
            "Go trims zeros"
        );
        assert!(!state::is_rfc3339_nano_utc("2026-11-23 11:55:17Z"));
        assert!(!state::is_rfc3339_nano_utc("2026-11-23T11:55:17+00:00"));
    }

    #[test]
    fn capability_masks() {
        assert_eq!(
            caps::mask(&["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]),
            0x20000420
        );
        let status = "Name:\tsh\nCapInh:\t0000000000000000\nCapBnd:\t00000000a80425fb\n";
        assert_eq!(
            caps::from_status(status),
            [("CapInh".to_owned(), 0), ("CapBnd".to_owned(), 0xa80425fb)]
        );
        assert_eq!(caps::status_field(status, "Name"), "sh");
    }

    #[test]
    fn mountinfo_lines() {
        let text = "noise\n\
            122 118 0:47 / /dev rw,nosuid master:3 - tmpfs tmpfs rw,size=65536k,mode=755\n";
        let m = mountinfo::parse(text);
        assert_eq!(m.len(), 1);
        let dev = mountinfo::at(&m, "/dev");
        assert!(dev.has_opt("nosuid") && dev.has_super_opt("mode=755"));
        assert_eq!(dev.optional, ["master:3"]);
        assert_eq!(
            (dev.fstype.as_str(), dev.source.as_str()),
            ("tmpfs", "tmpfs")
        );
    }

    #[test]
    fn one_line_naming() {
        assert_one_line_naming(
            "time=\"x\" level=error msg=\"container does not exist\"\n",
            &["does not exist"],
        );
    }

    #[test]
    #[should_panic(expected = "expected one line")]
    fn one_line_naming_rejects_two_lines() {
        assert_one_line_naming("a\nb\n", &["a"]);
    }
}
