//! containerd's `SystemdCgroup = true` on a host with systemd as PID 1, pure cgroup v2 or cgroup
//! v1 (the guests of scripts/v2vm/containerd-systemd.sh, `V2VM_CGROUP=v1` for the latter, where
//! runc's legacy systemd manager applies): the container's cgroupsPath is runc's systemd form
//! `slice:prefix:name`, its runtime is given `--systemd-cgroup` by the shim, and its cgroup is
//! a transient scope systemd made. Each test runs a container there, checks the scope from
//! the host's side (/proc/PID/cgroup, `systemctl show`), execs in it, reads its metrics, kills
//! and deletes it, and checks that the scope is gone.
//!
//! Three ways in, each with runc's options type (`containerd.runc.v1.Options`) carrying
//! SystemdCgroup:
//! - our shim, `io.containerd.husk.v2`: ctr sends runc's options only to the runtime named
//!   io.containerd.runc.v2, so the container is made through containerd's Containers API
//!   ([`Containerd::create_with_options`]), as a client with its own config would;
//! - containerd's own `containerd-shim-runc-v2` with BinaryName husk: `ctr run
//!   --runc-binary husk --runc-systemd-cgroup --cgroup slice:prefix:name`;
//! - the same with BinaryName runc, the reference.
//!
//! Elsewhere (no systemd as PID 1, as on this machine) each test prints why it skips.

use std::{collections::HashMap, fs, path::Path, process::Command, time::Duration};

use integration::{husk_bin, wait_for, Containerd, Options, SystemdCgroups, IMAGE};

const SLICE: &str = "system.slice";
const PREFIX: &str = "husk-it";
/// The container's memory limit, which must reach systemd as the scope's MemoryMax.
const MEMORY_MAX: u64 = 64 << 20;
/// containerd's runtime name of containerd-shim-runc-v2.
const RUNC_V2: &str = "io.containerd.runc.v2";

fn start(name: &str) -> Option<(Containerd, SystemdCgroups)> {
    let layout = match integration::systemd_cgroups() {
        Ok(layout) => layout,
        Err(why) => {
            println!("skipped: {why}");
            return None;
        }
    };
    let c = Containerd::start_with(
        name,
        Options {
            // io.containerd.runc.v2 stays containerd's own shim.
            runc_v2_is_husk_shim: false,
            ..Options::default()
        },
    );
    Some((c, layout))
}

/// Whether `/proc/PID/cgroup` text shows the process in `cgroup`: v2's one line, or on v1 the
/// hierarchies systemd's scope spans (its own, memory and pids among them).
fn shows_cgroup(proc_cgroup: &str, cgroup: &str, layout: SystemdCgroups) -> bool {
    match layout {
        SystemdCgroups::V2 => proc_cgroup == format!("0::{cgroup}\n"),
        SystemdCgroups::V1 => ["name=systemd", "memory", "pids"].iter().all(|want| {
            proc_cgroup.lines().any(|l| {
                let mut f = l.splitn(3, ':').skip(1);
                let (names, path) = (f.next().unwrap_or(""), f.next().unwrap_or(""));
                names.split(',').any(|n| n == *want) && path == cgroup
            })
        }),
    }
}

/// `systemctl show` of `unit`: its properties by name.
fn unit_properties(unit: &str) -> HashMap<String, String> {
    let out = Command::new("timeout")
        .args(["-k", "5", "30", "systemctl", "show", unit])
        .output()
        .expect("systemctl");
    assert!(
        out.status.success(),
        "systemctl show {unit}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn task_pid(c: &Containerd, id: &str) -> i32 {
    let ls = c.ctr_ok(&["task", "ls"]);
    ls.lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.first() == Some(&id)).then(|| f.get(1)?.parse().ok())?
        })
        .unwrap_or_else(|| panic!("no pid of task {id} in: {ls}"))
}

/// The executable of the one shim serving `c`.
fn shim_exe(c: &Containerd) -> std::path::PathBuf {
    let shims = c.shims();
    assert_eq!(shims.len(), 1, "shims: {shims:?}");
    fs::read_link(format!("/proc/{}/exe", shims[0])).unwrap()
}

/// The running task `id` is in its scope, which systemd knows with the container's limit; exec
/// joins it; metrics are read from it; after kill and delete, scope and directory are gone.
fn scope_lifecycle(c: &Containerd, layout: SystemdCgroups, id: &str) {
    let unit = format!("{PREFIX}-{id}.scope");
    let cgroup = format!("/{SLICE}/{unit}");
    let rel = cgroup.trim_start_matches('/');
    // The directory whose going shows the scope gone, the limit's file, and the names systemd
    // and ctr give the limit: v2's, or those of runc's legacy manager and the v1 metrics type.
    let (dir, limit_file, memory_prop, limit_metric) = match layout {
        SystemdCgroups::V2 => {
            let dir = Path::new("/sys/fs/cgroup").join(rel);
            let file = dir.join("memory.max");
            (dir, file, "MemoryMax", "memory.usage_limit")
        }
        SystemdCgroups::V1 => {
            let dir = Path::new("/sys/fs/cgroup/memory").join(rel);
            let file = dir.join("memory.limit_in_bytes");
            (dir, file, "MemoryLimit", "memory.limit_in_bytes")
        }
    };
    c.wait_task_status(id, "RUNNING");
    let pid = task_pid(c, id);

    let own = fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    assert!(
        shows_cgroup(&own, &cgroup, layout),
        "cgroup of the init {pid}, not {cgroup}: {own}"
    );
    let props = unit_properties(&unit);
    let prop = |k: &str| props.get(k).map(String::as_str).unwrap_or("");
    assert_eq!(prop("ActiveState"), "active", "{unit}: {props:?}");
    assert_eq!(prop("ControlGroup"), cgroup, "{unit}: {props:?}");
    assert_eq!(prop("Delegate"), "yes", "{unit}: {props:?}");
    assert_eq!(prop(memory_prop), MEMORY_MAX.to_string(), "{unit}");
    assert_eq!(
        fs::read_to_string(&limit_file).unwrap().trim(),
        MEMORY_MAX.to_string(),
        "{}",
        limit_file.display()
    );
    println!(
        "{layout:?} {unit}: ActiveState=active ControlGroup={cgroup} {memory_prop}={MEMORY_MAX}"
    );

    let out = c.ctr(&[
        "task",
        "exec",
        "--exec-id",
        "e1",
        id,
        "cat",
        "/proc/self/cgroup",
    ]);
    assert!(
        shows_cgroup(&String::from_utf8_lossy(&out.stdout), &cgroup, layout),
        "exec's cgroup, not {cgroup}: {}; stderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(0));

    // The shim's Stats, from the scope's files.
    let metrics = c.ctr_ok(&["task", "metrics", id]);
    let value = |key: &str| integration::metric(&metrics, key);
    assert_eq!(
        value("pids.current").as_deref(),
        Some("1"),
        "metrics: {metrics}"
    );
    assert_eq!(
        value(limit_metric),
        Some(MEMORY_MAX.to_string()),
        "metrics: {metrics}"
    );

    c.ctr_ok(&["task", "kill", "-s", "KILL", id]);
    c.wait_task_status(id, "STOPPED");
    c.ctr_ok(&["task", "delete", id]);
    let mut left = HashMap::new();
    assert!(
        wait_for(Duration::from_secs(10), || {
            left = unit_properties(&unit);
            left.get("LoadState").map(String::as_str) == Some("not-found") && !dir.exists()
        }),
        "{unit} left after delete (directory there: {}): {left:?}",
        dir.exists()
    );
    c.ctr_ok(&["container", "delete", id]);
    assert!(
        wait_for(Duration::from_secs(10), || c.shims().is_empty()),
        "shim left after delete: {:?}",
        c.shims()
    );
}

/// ctr run through containerd-shim-runc-v2 with `binary`, `--runc-systemd-cgroup` and a
/// cgroupsPath in systemd's form; `root` is the runtime's --root (the shim adds the namespace).
fn runc_v2_shim_with(c: &Containerd, layout: SystemdCgroups, id: &str, binary: &str, root: &str) {
    let cgroups_path = format!("{SLICE}:{PREFIX}:{id}");
    let limit = MEMORY_MAX.to_string();
    c.ctr_ok(&[
        "run",
        "-d",
        "--runtime",
        RUNC_V2,
        "--runc-binary",
        binary,
        "--runc-root",
        root,
        "--runc-systemd-cgroup",
        "--cgroup",
        &cgroups_path,
        "--memory-limit",
        &limit,
        IMAGE,
        id,
        "sleep",
        "1000",
    ]);
    let exe = shim_exe(c);
    assert_eq!(
        exe.file_name().unwrap(),
        "containerd-shim-runc-v2",
        "containerd's own shim: {}",
        exe.display()
    );
    let state = Path::new(root).join(&c.ns).join(id);
    assert!(
        state.is_dir(),
        "{binary} keeps no state in {}",
        state.display()
    );
    scope_lifecycle(c, layout, id);
}

#[test]
fn husk_shim_with_systemd_cgroup_option_runs_in_a_scope() {
    let Some((c, layout)) = start("sd-husk-shim") else {
        return;
    };
    let id = "sd-a";
    // containerd.runc.v1.Options with SystemdCgroup (field 9, a bool) true; BinaryName and
    // Root stay the shim's defaults (husk, /run/containerd/husk).
    let options = [9 << 3, 1];
    c.create_with_options(id, &options, |spec| {
        spec["process"]["args"] = serde_json::json!(["sleep", "1000"]);
        spec["linux"]["cgroupsPath"] = serde_json::json!(format!("{SLICE}:{PREFIX}:{id}"));
        spec["linux"]["resources"]["memory"] = serde_json::json!({ "limit": MEMORY_MAX });
    });
    c.ctr_ok(&["task", "start", "-d", id]);
    assert_eq!(
        shim_exe(&c),
        fs::canonicalize(integration::shim_bin()).unwrap(),
        "the shim is ours"
    );
    let state = Path::new("/run/containerd/husk").join(&c.ns).join(id);
    assert!(state.is_dir(), "husk keeps no state in {}", state.display());
    scope_lifecycle(&c, layout, id);
}

#[test]
fn runc_v2_shim_with_husk_binary_and_systemd_cgroup_runs_in_a_scope() {
    let Some((c, layout)) = start("sd-runc-v2-husk") else {
        return;
    };
    let husk = husk_bin();
    // The root Containerd's cleanup force-deletes husk's leftovers from.
    runc_v2_shim_with(
        &c,
        layout,
        "sd-b",
        husk.to_str().unwrap(),
        "/run/containerd/husk",
    );
}

#[test]
fn runc_v2_shim_with_runc_and_systemd_cgroup_runs_in_a_scope() {
    let runc = "/usr/sbin/runc";
    if !Path::new(runc).exists() {
        println!("skipped: {runc} is not installed");
        return;
    }
    let Some((c, layout)) = start("sd-runc-v2-runc") else {
        return;
    };
    // The root Containerd's cleanup force-deletes runc's leftovers from.
    let root = c.dir.join("runc-root");
    runc_v2_shim_with(&c, layout, "sd-c", runc, root.to_str().unwrap());
}
