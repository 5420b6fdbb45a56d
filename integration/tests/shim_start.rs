//! The shim's `start` action run as containerd runs it, with runc's options on stdin: what
//! ctr cannot send (ShimCgroup) and what containerd's CRI plugin sends only from its config.

use std::{
    fs,
    io::Write,
    path::PathBuf,
    process::{Command, Output, Stdio},
    time::Duration,
};

use containerd_shim_protos::{
    protobuf::{well_known_types::any::Any, Message},
    shim::oci::Options,
};
use integration::{shim_bin, wait_for, Containerd};

/// Every v1 hierarchy's mount point under /sys/fs/cgroup.
fn v1_hierarchies() -> Vec<PathBuf> {
    fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter_map(|l| {
            let (pre, post) = l.split_once(" - ")?;
            let mnt = pre.split(' ').nth(4)?;
            (post.starts_with("cgroup ") && mnt.starts_with("/sys/fs/cgroup/"))
                .then(|| PathBuf::from(mnt))
        })
        .collect()
}

fn start(c: &Containerd, id: &str, options: &Options) -> Output {
    let bundle = c.dir.join(id);
    fs::create_dir_all(&bundle).unwrap();
    fs::write(bundle.join("config.json"), "{}").unwrap();
    // containerd's log FIFO; a file does as well.
    fs::write(bundle.join("log"), "").unwrap();
    let any = Any {
        type_url: "containerd.runc.v1.Options".into(),
        value: options.write_to_bytes().unwrap(),
        ..Default::default()
    };
    let mut child = Command::new("timeout")
        .args(["-k", "5", "60"])
        .arg(shim_bin())
        .args(["-namespace", &c.ns, "-id", id, "-address"])
        .arg(&c.sock)
        .arg("start")
        .env("TTRPC_ADDRESS", format!("{}.ttrpc", c.sock.display()))
        .current_dir(&bundle)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(&any.write_to_bytes().unwrap())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn kill_shims(c: &Containerd) {
    for pid in c.shims() {
        // SAFETY: kill of a pid just read from /proc; a stale one fails harmlessly.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
    assert!(wait_for(Duration::from_secs(10), || c.shims().is_empty()));
}

#[test]
fn start_puts_the_shim_into_shim_cgroup_and_refuses_a_missing_one() {
    let hierarchies = v1_hierarchies();
    if hierarchies.is_empty() {
        eprintln!("SKIP: no cgroup v1 hierarchy under /sys/fs/cgroup (the v2 case is issue 12's)");
        return;
    }
    let c = Containerd::start("shimcg");
    // Named after the namespace: the harness removes that cgroup when it stops containerd.
    let name = c.ns.clone();
    for h in &hierarchies {
        fs::create_dir_all(h.join(&name)).unwrap();
        // A new cpuset cgroup has no cpus or mems, and takes no task until it has.
        for f in ["cpuset.cpus", "cpuset.mems"] {
            if let Ok(v) = fs::read_to_string(h.join(f)) {
                fs::write(h.join(&name).join(f), v).unwrap();
            }
        }
    }
    let out = start(
        &c,
        "cg1",
        &Options {
            shim_cgroup: format!("/{name}"),
            ..Default::default()
        },
    );
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success() && stdout.starts_with("unix://"),
        "stdout: {stdout} stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let shims = c.shims();
    assert_eq!(shims.len(), 1, "shims: {shims:?}");
    let cgroups = fs::read_to_string(format!("/proc/{}/cgroup", shims[0])).unwrap();
    let ours = format!(":/{name}");
    let memory = cgroups.lines().find(|l| l.contains(":memory:"));
    assert!(
        memory.is_some_and(|l| l.ends_with(&ours)),
        "cgroups: {cgroups}"
    );
    // One above its parent's (the start action's parent, containerd in real use).
    let score = |pid: String| -> i32 {
        fs::read_to_string(format!("/proc/{pid}/oom_score_adj"))
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    };
    assert_eq!(
        score(shims[0].to_string()),
        (score("self".into()) + 1).min(1000)
    );
    kill_shims(&c);

    let out = start(
        &c,
        "cg2",
        &Options {
            shim_cgroup: format!("/{name}-missing"),
            ..Default::default()
        },
    );
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "stdout: {:?}", out.stdout);
    assert!(
        stderr.contains("failed to join cgroup") && stderr.contains(&format!("{name}-missing")),
        "stderr: {stderr}"
    );
    assert!(
        wait_for(Duration::from_secs(10), || c.shims().is_empty()),
        "shims left: {:?}",
        c.shims()
    );
}
