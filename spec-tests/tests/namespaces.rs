//! linux.namespaces, uts fields and id mappings.

use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

use serde_json::json;
use spec_tests::proc::ns_link;
use spec_tests::runtime::is_runc_1_1;
use spec_tests::Container;

/// Prints "<kind> <link>" for each namespace kind, from inside the container.
const NS_SCRIPT: &str =
    "for n in pid net ipc uts mnt cgroup user; do echo \"$n $(readlink /proc/self/ns/$n)\"; done";

fn ns_of_container(out: &str, kind: &str) -> String {
    out.lines()
        .find_map(|l| l.strip_prefix(&format!("{kind} ")))
        .unwrap_or_else(|| panic!("no {kind} in {out}"))
        .to_owned()
}

#[test]
fn init_is_pid_1() {
    let mut c = Container::new("pid_1");
    // `echo /proc/[0-9]*` is a shell glob: no other process runs, so only pid 1 is listed.
    c.bundle
        .set_script("echo $$; cat /proc/1/comm; echo /proc/[0-9]*");
    assert_eq!(c.run_ok(), "1\nsh\n/proc/1\n");
    c.assert_clean();
}

#[test]
fn default_namespaces() {
    let mut c = Container::new("default_ns");
    c.bundle.set_script(NS_SCRIPT);
    let out = c.run_ok();
    for kind in ["pid", "net", "ipc", "uts", "mnt"] {
        assert_ne!(
            ns_of_container(&out, kind),
            ns_link("self", kind),
            "{kind} must be new"
        );
    }
    // Not in runc spec's default list: shared with the host.
    for kind in ["cgroup", "user"] {
        assert_eq!(
            ns_of_container(&out, kind),
            ns_link("self", kind),
            "{kind} must be shared"
        );
    }
    c.assert_clean();
}

#[test]
fn network_namespace_has_only_loopback() {
    let mut c = Container::new("netns_lo");
    c.bundle.set_script("ip -o link | cut -d: -f2");
    assert_eq!(c.run_ok(), " lo\n");
    c.assert_clean();
}

#[test]
fn hostname_default_and_custom() {
    let host_before = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let mut c = Container::new("hostname_default");
    c.bundle.set_script("hostname");
    assert_eq!(c.run_ok(), "runc\n");
    c.assert_clean();

    let mut c = Container::new("hostname_custom");
    c.bundle
        .set_script("hostname; cat /proc/sys/kernel/hostname");
    c.bundle.config["hostname"] = json!("st-box");
    assert_eq!(c.run_ok(), "st-box\nst-box\n");
    c.assert_clean();
    let host_after = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    assert_eq!(
        host_before, host_after,
        "the host's hostname must not change"
    );
}

#[test]
fn hostname_without_uts_namespace_fails() {
    let mut c = Container::new("hostname_no_uts");
    c.bundle.set_args(&["true"]);
    c.bundle.config["linux"]["namespaces"] =
        json!([{"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "mount"}]);
    let out = c.run();
    assert_eq!(out.code(), 1, "{out}");
    // runc: unable to set hostname without a private UTS namespace
    spec_tests::assert_one_line_naming(&out.stderr, &["hostname", "uts"]);
    c.assert_clean();
}

#[test]
fn domainname_field() {
    let host_before = std::fs::read_to_string("/proc/sys/kernel/domainname").unwrap();
    let mut c = Container::new("domainname");
    c.bundle.set_script("cat /proc/sys/kernel/domainname");
    c.bundle.config["domainname"] = json!("example.org");
    // runc 1.1 ignores the `domainname` field (opencontainers/runc#3600 added it in runc 1.2).
    let want = if is_runc_1_1() {
        "(none)\n"
    } else {
        "example.org\n"
    };
    assert_eq!(c.run_ok(), want);
    c.assert_clean();
    let host_after = std::fs::read_to_string("/proc/sys/kernel/domainname").unwrap();
    assert_eq!(host_before, host_after);
}

#[test]
fn cgroup_namespace() {
    let mut c = Container::new("cgroupns");
    c.bundle.add_namespace(json!({"type": "cgroup"}));
    c.bundle
        .set_script(&format!("{NS_SCRIPT}; cat /proc/self/cgroup"));
    let out = c.run_ok();
    assert_ne!(ns_of_container(&out, "cgroup"), ns_link("self", "cgroup"));
    // Inside its cgroup namespace the container's own cgroups are the root.
    let cg: Vec<&str> = out.lines().filter(|l| l.contains(":/")).collect();
    assert!(!cg.is_empty(), "{out}");
    for l in cg {
        assert!(
            l.ends_with(":/"),
            "cgroup line {l:?} is not the namespace root"
        );
    }
    c.assert_clean();
}

#[test]
fn time_namespace() {
    let mut c = Container::new("timens");
    c.bundle.add_namespace(json!({"type": "time"}));
    c.bundle.set_script("readlink /proc/self/ns/time");
    let out = c.run();
    if out.success() {
        assert_ne!(
            out.stdout.trim(),
            ns_link("self", "time"),
            "time namespace must be new"
        );
    } else {
        // runc 1.1.5 rejects it: namespace {"time" ""} does not exist
        spec_tests::assert_one_line_naming(&out.stderr, &["time"]);
    }
    c.assert_clean();
}

#[test]
fn user_namespace_mappings() {
    let null_before = std::fs::metadata("/dev/null").unwrap();
    let mut c = Container::new("userns");
    c.bundle.add_user_namespace(100000, 200000);
    c.bundle.set_script(
        "cat /proc/self/uid_map /proc/self/gid_map; id -u; id -g; stat -c '%u:%g' /bin/busybox",
    );
    let out = c.run_ok();
    let lines: Vec<String> = out
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(
        lines,
        [
            "0 100000 65536",
            "0 200000 65536",
            "0",
            "0",
            // Host root owns the rootfs: unmapped, it shows as the overflow id.
            "65534:65534"
        ]
    );
    c.assert_clean();
    // Some runtimes were seen chowning the host's /dev/null to the container's root.
    let null_after = std::fs::metadata("/dev/null").unwrap();
    assert_eq!(
        (null_after.uid(), null_after.gid(), null_after.mode()),
        (null_before.uid(), null_before.gid(), null_before.mode())
    );
}

#[test]
fn user_namespace_seen_from_host() {
    let mut c = Container::new("userns_host");
    c.bundle.add_user_namespace(100000, 200000);
    c.bundle.set_args(&["sleep", "1000"]);
    let pid = c.create_ok();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let uid: Vec<&str> = spec_tests::caps::status_field(&status, "Uid")
        .split_whitespace()
        .collect();
    let gid: Vec<&str> = spec_tests::caps::status_field(&status, "Gid")
        .split_whitespace()
        .collect();
    assert_eq!(uid, ["100000"; 4]);
    assert_eq!(gid, ["200000"; 4]);
    assert_ne!(ns_link(&pid.to_string(), "user"), ns_link("self", "user"));
    c.delete_force_ok();
}

/// A process of ours in a fresh network namespace, alive until dropped.
struct NetnsHolder(std::process::Child);

impl NetnsHolder {
    fn new() -> NetnsHolder {
        let mut cmd = Command::new("/bin/busybox");
        cmd.arg("cat").stdin(Stdio::piped()).stdout(Stdio::null());
        // SAFETY: unshare is async-signal-safe; it runs in the child before exec.
        unsafe {
            cmd.pre_exec(|| {
                if libc::unshare(libc::CLONE_NEWNET) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        // spawn returns after exec succeeded, so the namespace exists by then.
        NetnsHolder(cmd.spawn().expect("spawn netns holder"))
    }

    fn pid(&self) -> i32 {
        self.0.id() as i32
    }
}

impl Drop for NetnsHolder {
    fn drop(&mut self) {
        drop(self.0.stdin.take()); // EOF: cat exits
        if let Err(e) = self.0.wait() {
            eprintln!("spec-tests: waiting for netns holder: {e}");
        }
    }
}

#[test]
fn join_network_namespace_by_path() {
    let holder = NetnsHolder::new();
    let want = ns_link(&holder.pid().to_string(), "net");
    assert_ne!(want, ns_link("self", "net"));
    let mut c = Container::new("join_netns");
    for ns in c.bundle.config["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
    {
        if ns["type"] == "network" {
            ns["path"] = json!(format!("/proc/{}/ns/net", holder.pid()));
        }
    }
    c.bundle.set_script("readlink /proc/self/ns/net");
    assert_eq!(c.run_ok(), format!("{want}\n"));
    c.assert_clean_except(&[holder.pid()]);
}

#[test]
fn join_namespace_with_bad_path_fails() {
    let mut c = Container::new("join_bad_ns");
    for ns in c.bundle.config["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
    {
        if ns["type"] == "network" {
            ns["path"] = json!("/nonexistent/ns/net");
        }
    }
    c.bundle.set_args(&["true"]);
    let out = c.run();
    assert_eq!(out.code(), 1, "{out}");
    spec_tests::assert_one_line_naming(&out.stderr, &["/nonexistent/ns/net"]);
    c.assert_clean();
}
