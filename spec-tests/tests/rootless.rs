//! Rootless containers: the runtime run by an ordinary user, with the config `spec --rootless`
//! writes, and podman as that user with `--runtime`. Every test makes a throwaway user (useradd,
//! with a home, subordinate ids and an XDG_RUNTIME_DIR), runs the runtime as that user through
//! setpriv, and removes the user at the end. Each scenario runs against the runtime under test
//! and against runc 1.1.5 in the same test, and the two must agree.
//!
//! These live in spec-tests rather than integration/ because all they need from the harness is
//! here (bundles, pidfd waits, the subreaper); only the invocation differs, as another user.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};
use spec_tests::runtime::runtime_binary;
use spec_tests::tmp::TempDir;
use spec_tests::{assert_one_line_naming, unique_id, Bundle};

const RUNC: &str = "/usr/sbin/runc";
/// Bounds every command the user runs (`timeout` ends it), not a sleep.
const LIMIT: &str = "120";

/// The runtimes a scenario runs against: the one under test, and runc unless it is runc.
fn runtimes() -> Vec<PathBuf> {
    let under_test = runtime_binary();
    let mut out = vec![under_test.clone()];
    if std::fs::canonicalize(&under_test).ok() != std::fs::canonicalize(RUNC).ok() {
        if Path::new(RUNC).exists() {
            out.push(PathBuf::from(RUNC));
        } else {
            eprintln!("rootless: {RUNC} missing: no comparison with runc");
        }
    }
    out
}

fn is_runc(rt: &Path) -> bool {
    rt.file_name().is_some_and(|n| n == "runc")
}

/// What one command as the user did.
struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Out {
    #[track_caller]
    fn ok(&self) -> &str {
        assert_eq!(self.code, 0, "stderr: {}", self.stderr);
        &self.stdout
    }

    /// stderr without runc's warning lines (runc 1.1.5 logs "unable to get oom kill count"
    /// before its error); the runtime under test, if husk, must print none.
    fn error_lines(&self, rt: &Path) -> String {
        if !is_runc(rt) {
            return self.stderr.clone();
        }
        self.stderr
            .lines()
            .filter(|l| !l.contains("level=warning"))
            .map(|l| format!("{l}\n"))
            .collect()
    }
}

/// A throwaway user with a home, subordinate ids and a runtime dir; removed on drop with every
/// process it still has.
struct User {
    name: String,
    uid: u32,
    gid: u32,
    home: PathBuf,
    xdg: PathBuf,
    /// A cgroup every command as the user starts in (a session's, in a delegated subtree).
    login: Option<PathBuf>,
    /// Holds the home and runtime dir; declared last so it goes after userdel.
    _dir: TempDir,
}

impl User {
    /// None (said on stderr) when the host cannot make one.
    fn new() -> Option<User> {
        for tool in ["useradd", "userdel", "setpriv", "flock", "timeout"] {
            if !Command::new("sh")
                .args(["-c", &format!("command -v {tool}")])
                .stdout(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
            {
                eprintln!("SKIP rootless: {tool} not found");
                return None;
            }
        }
        // What the user's runtime leaves running (podman's conmon and pause process) is
        // orphaned to us, so that we reap it.
        spec_tests::proc::become_subreaper();
        let dir = TempDir::new("rootless");
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = format!("hkrl{}x{n}", std::process::id());
        let home = dir.path().join("home");
        // useradd refuses to run while another holds /etc/passwd's lock: one at a time.
        let out = Command::new("flock")
            .args([
                "/tmp/spec-tests-useradd.lock",
                "useradd",
                "-m",
                "-s",
                "/bin/sh",
                "-d",
            ])
            .arg(&home)
            .arg(&name)
            .output()
            .expect("run useradd");
        assert!(
            out.status.success(),
            "useradd {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let meta = std::fs::metadata(&home).expect("stat home");
        let xdg = dir.path().join("xdg");
        std::fs::create_dir(&xdg).unwrap();
        std::fs::set_permissions(&xdg, std::fs::Permissions::from_mode(0o700)).unwrap();
        std::os::unix::fs::chown(&xdg, Some(meta.uid()), Some(meta.gid())).unwrap();
        Some(User {
            name,
            uid: meta.uid(),
            gid: meta.gid(),
            home,
            xdg,
            login: None,
            _dir: dir,
        })
    }

    /// `program args...` as the user, in `cwd`, with a clean environment as a login would give;
    /// started in the user's `login` cgroup when there is one.
    fn command(&self, cwd: &Path, program: &Path, args: &[&str]) -> Command {
        let mut cmd = match &self.login {
            // Moved there as root, the way a login manager puts a session in its cgroup.
            Some(dir) => {
                let mut c = Command::new("sh");
                c.args(["-c", "echo $$ > \"$0\" && exec \"$@\""])
                    .arg(dir.join("cgroup.procs"))
                    .arg("setpriv");
                c
            }
            None => Command::new("setpriv"),
        };
        cmd.args([
            &format!("--reuid={}", self.uid),
            &format!("--regid={}", self.gid),
            "--init-groups",
            "env",
            "-i",
            "PATH=/usr/sbin:/usr/bin:/sbin:/bin",
            &format!("HOME={}", self.home.display()),
            &format!("USER={}", self.name),
            &format!("XDG_RUNTIME_DIR={}", self.xdg.display()),
            "timeout",
            LIMIT,
        ])
        .arg(program)
        .args(args)
        .current_dir(cwd)
        .stdin(Stdio::null());
        cmd
    }

    fn run(&self, cwd: &Path, program: &Path, args: &[&str]) -> Out {
        let out = self
            .command(cwd, program, args)
            .output()
            .expect("run setpriv");
        Out {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// `rt create ID` as the user in bundle `b`, with the container's stdio in files there (it
    /// keeps them: pipes would never reach their end). Returns the init's pid.
    fn create(&self, b: &Bundle, rt: &Path, id: &str) -> i32 {
        let status = self
            .command(b.path(), rt, &["create", id])
            .stdout(std::fs::File::create(b.path().join("out")).unwrap())
            .stderr(std::fs::File::create(b.path().join("err")).unwrap())
            .status()
            .unwrap();
        assert!(
            status.success(),
            "{} create: {}",
            rt.display(),
            std::fs::read_to_string(b.path().join("err")).unwrap()
        );
        let s: Value = serde_json::from_str(self.run(b.path(), rt, &["state", id]).ok()).unwrap();
        assert_eq!(s["status"], "created", "{}: {s}", rt.display());
        s["pid"].as_i64().unwrap() as i32
    }

    /// The user's processes: "pid comm".
    fn processes(&self) -> Vec<String> {
        self.pids(false)
            .into_iter()
            .map(|p| {
                let comm = std::fs::read_to_string(format!("/proc/{p}/comm")).unwrap_or_default();
                format!("{p} {} (uid {})", comm.trim(), self.uid)
            })
            .collect()
    }

    fn pids(&self, zombies: bool) -> Vec<i32> {
        let Ok(entries) = std::fs::read_dir("/proc") else {
            return vec![];
        };
        entries
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
            // The real uid from status: /proc/PID of a non-dumpable process belongs to root.
            // Zombies are not running (one orphaned to a PID 1 that reaps late would stay).
            .filter(|pid| {
                std::fs::read_to_string(format!("/proc/{pid}/status")).is_ok_and(|s| {
                    let field = |k: &str| s.lines().find_map(|l| l.strip_prefix(k));
                    let uid = field("Uid:")
                        .and_then(|v| v.split_whitespace().next()?.parse::<u32>().ok());
                    let zombie = field("State:").is_some_and(|v| v.contains('Z'));
                    uid == Some(self.uid) && (zombies || !zombie)
                })
            })
            .collect()
    }

    /// The user's first subordinate uid and gid (useradd gives each new user a range).
    fn subordinate(&self) -> Option<(u32, u32)> {
        let first = |file: &str| {
            std::fs::read_to_string(file).ok()?.lines().find_map(|l| {
                let mut f = l.split(':');
                (f.next()? == self.name).then(|| f.next()?.parse().ok())?
            })
        };
        Some((first("/etc/subuid")?, first("/etc/subgid")?))
    }

    /// A bundle owned by the user, its config written by `rt spec --rootless` as the user, with
    /// `edit` applied.
    fn bundle(&self, rt: &Path, edit: impl FnOnce(&mut Value)) -> Bundle {
        let b = Bundle::new();
        chown_tree(b.path(), self.uid, self.gid);
        self.run(b.path(), rt, &["spec", "--rootless"]).ok();
        let mut config: Value =
            serde_json::from_slice(&std::fs::read(b.config_path()).unwrap()).unwrap();
        config["process"]["terminal"] = json!(false);
        edit(&mut config);
        std::fs::write(b.config_path(), serde_json::to_vec_pretty(&config).unwrap()).unwrap();
        b
    }

    /// The state root `rt` uses by default for this user: `$XDG_RUNTIME_DIR/<name>`.
    fn default_root(&self, rt: &Path) -> PathBuf {
        self.xdg.join(rt.file_name().unwrap())
    }
}

impl Drop for User {
    fn drop(&mut self) {
        // What a failed test, or podman (its pause process, conmon and the cleanup it forks),
        // left: a throwaway user's processes, all started by this test. Round by round, until a
        // round finds none: one may fork while the round before kills.
        // Zombies too: those orphaned to us are reaped here.
        for _ in 0..50 {
            let pids = self.pids(true);
            for &pid in &pids {
                // SAFETY: kill takes plain integers; the process may be gone already.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
            for pid in pids {
                spec_tests::proc::reap(pid, Duration::from_secs(10));
            }
            if self.pids(false).is_empty() {
                break;
            }
        }
        let ok = Command::new("flock")
            .args(["/tmp/spec-tests-useradd.lock", "userdel", "-r", &self.name])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            eprintln!("rootless: userdel {} failed", self.name);
        }
    }
}

fn chown_tree(dir: &Path, uid: u32, gid: u32) {
    let ok = Command::new("chown")
        .args(["-R", "-h", &format!("{uid}:{gid}")])
        .arg(dir)
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "chown -R {}", dir.display());
}

fn set_script(config: &mut Value, script: &str) {
    config["process"]["args"] = json!(["sh", "-c", script]);
}

#[test]
fn run_as_a_user_is_root_inside_and_exits_with_the_code() {
    let Some(user) = User::new() else { return };
    for rt in runtimes() {
        let b = user.bundle(&rt, |c| {
            set_script(c, "id; cat /proc/self/uid_map; exit 3");
        });
        let id = unique_id("rootless-run");
        let out = user.run(b.path(), &rt, &["run", &id]);
        assert_eq!(out.code, 3, "{}: {}", rt.display(), out.stderr);
        assert!(
            out.stdout.starts_with("uid=0(root) gid=0(root)"),
            "{}: {}",
            rt.display(),
            out.stdout
        );
        let map: Vec<&str> = out
            .stdout
            .lines()
            .nth(1)
            .unwrap()
            .split_whitespace()
            .collect();
        assert_eq!(map, ["0", &user.uid.to_string(), "1"], "{}", rt.display());
        // Its state went to $XDG_RUNTIME_DIR/<runtime>, 0700 with the sticky bit (runc's),
        // and is gone with the container.
        let root = user.default_root(&rt);
        let meta = std::fs::metadata(&root)
            .unwrap_or_else(|e| panic!("{}: {}: {e}", rt.display(), root.display()));
        assert_eq!(meta.mode() & 0o7777, 0o1700, "{}", rt.display());
        assert_eq!(meta.uid(), user.uid);
        assert_eq!(
            std::fs::read_dir(&root).unwrap().count(),
            0,
            "{}",
            rt.display()
        );
    }
    // Bound, not made: the host's /dev/null keeps its owner.
    assert_eq!(std::fs::metadata("/dev/null").unwrap().uid(), 0);
}

#[test]
fn lifecycle_as_a_user() {
    let Some(user) = User::new() else { return };
    for rt in runtimes() {
        let b = user.bundle(&rt, |c| set_script(c, "exec sleep 1000"));
        let id = unique_id("rootless-life");
        let rt_ = rt.display();
        let cmd = |args: &[&str]| user.run(b.path(), &rt, args);
        let pid = user.create(&b, &rt, &id);
        let state = |want: &str| {
            let s: Value = serde_json::from_str(cmd(&["state", &id]).ok()).unwrap();
            assert_eq!(s["status"], want, "{rt_}: {s}");
        };
        assert!(cmd(&["list"]).ok().contains(&id), "{rt_}: list");
        cmd(&["start", &id]).ok();
        state("running");
        assert!(
            cmd(&["exec", &id, "id"]).ok().starts_with("uid=0(root)"),
            "{rt_}"
        );
        // No cgroup of its own: pause says so, in one line naming the freezer or the cgroups.
        let pause = cmd(&["pause", &id]);
        assert_ne!(pause.code, 0, "{rt_}: pause");
        assert_one_line_naming(&pause.error_lines(&rt), &["cgroup"]);
        state("running");
        cmd(&["kill", &id, "KILL"]).ok();
        spec_tests::proc::reap(pid, Duration::from_secs(30));
        state("stopped");
        cmd(&["delete", &id]).ok();
        assert!(
            !user.default_root(&rt).join(&id).exists(),
            "{rt_}: state dir left"
        );
        assert!(cmd(&["state", &id]).code != 0, "{rt_}: state after delete");
        assert_eq!(
            user.processes(),
            Vec::<String>::new(),
            "{rt_}: processes left"
        );
    }
}

#[test]
fn terminal_as_a_user() {
    let Some(user) = User::new() else { return };
    let script = Path::new("/usr/bin/script");
    if !script.exists() {
        eprintln!("SKIP rootless: script(1) missing (bsdutils)");
        return;
    }
    for rt in runtimes() {
        let b = user.bundle(&rt, |c| {
            c["process"]["terminal"] = json!(true);
            set_script(c, "tty; stat -c '%u:%g %a' $(tty); exit 5");
        });
        // script(1) gives the runtime a terminal of the user's own to relay.
        let run = format!("{} run {}", rt.display(), unique_id("rootless-tty"));
        let out = user.run(b.path(), script, &["-qec", &run, "/dev/null"]);
        assert_eq!(out.code, 5, "{}: {}", rt.display(), out.stderr);
        // The terminal echoes the end of script's empty stdin as "^@", somewhere.
        let text = out.stdout.replace("^@", "").replace('\r', "");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[..2],
            ["/dev/pts/0", "0:0 620"],
            "{}: {:?}",
            rt.display(),
            out.stdout
        );
    }
}

#[test]
fn limits_without_cgroup_permission_are_refused_leaving_nothing() {
    let Some(user) = User::new() else { return };
    for rt in runtimes() {
        let b = user.bundle(&rt, |c| {
            c["linux"]["resources"]["memory"] = json!({"limit": 100_000_000});
        });
        let id = unique_id("rootless-limits");
        let out = user.run(b.path(), &rt, &["run", &id]);
        assert_ne!(out.code, 0, "{}", rt.display());
        // runc on cgroup v2: "rootless needs no limits + no cgrouppath when no permission is
        // granted for cgroups: ..."; husk names the field asking for the limit.
        let want: &[&str] = if is_runc(&rt) && spec_tests::cgroup::is_v2() {
            &["limits"]
        } else {
            &["memory"]
        };
        assert_one_line_naming(&out.error_lines(&rt), want);
        let root = user.default_root(&rt);
        assert_eq!(
            std::fs::read_dir(&root).unwrap().count(),
            0,
            "{}",
            rt.display()
        );
        for d in spec_tests::cgroup::expected_dirs(None, &id) {
            assert!(!d.exists(), "{}: {} left", rt.display(), d.display());
        }
        assert_eq!(user.processes(), Vec::<String>::new(), "{}", rt.display());

        // --rootless=false: cgroups are required, and the user may not make them.
        let b = user.bundle(&rt, |_| {});
        let id = unique_id("rootless-false");
        let out = user.run(b.path(), &rt, &["--rootless=false", "run", &id]);
        assert_ne!(out.code, 0, "{}", rt.display());
        assert_one_line_naming(&out.error_lines(&rt), &["permission denied"]);
        assert_eq!(
            std::fs::read_dir(&root).unwrap().count(),
            0,
            "{}",
            rt.display()
        );
        assert_eq!(user.processes(), Vec::<String>::new(), "{}", rt.display());
    }
}

#[test]
fn subordinate_ids_are_mapped_through_newuidmap() {
    let Some(user) = User::new() else { return };
    if !Path::new("/usr/bin/newuidmap").exists() {
        eprintln!("SKIP rootless: newuidmap missing (apt-get install uidmap)");
        return;
    }
    let Some((subuid, subgid)) = user.subordinate() else {
        eprintln!(
            "SKIP rootless: useradd gave {} no subordinate ids",
            user.name
        );
        return;
    };
    let maps = |own: u32, sub: u32| {
        json!([
            {"containerID": 0, "hostID": own, "size": 1},
            {"containerID": 1, "hostID": sub, "size": 65536}
        ])
    };
    for rt in runtimes() {
        let b = user.bundle(&rt, |c| {
            c["linux"]["uidMappings"] = maps(user.uid, subuid);
            c["linux"]["gidMappings"] = maps(user.gid, subgid);
            c["root"]["readonly"] = json!(false);
            c["process"]["user"] = json!({"uid": 1000, "gid": 1000});
            set_script(
                c,
                "cat /proc/self/uid_map /proc/self/gid_map; touch /tmp/by-1000",
            );
        });
        let out = user.run(b.path(), &rt, &["run", &unique_id("rootless-subid")]);
        let text: Vec<Vec<&str>> = out
            .ok()
            .lines()
            .map(|l| l.split_whitespace().collect())
            .collect();
        let (u, s) = (user.uid.to_string(), subuid.to_string());
        assert_eq!(text[0], ["0", &u, "1"], "{}", rt.display());
        assert_eq!(text[1], ["1", &s, "65536"], "{}", rt.display());
        // On the host, the container's uid 1000 is subuid + 999.
        let made = std::fs::metadata(b.rootfs().join("tmp/by-1000")).unwrap();
        assert_eq!((made.uid(), made.gid()), (subuid + 999, subgid + 999));

        // Outside the user's ranges: newuidmap's refusal, in one line naming the mapping.
        let bad = user.bundle(&rt, |c| {
            c["linux"]["uidMappings"] = maps(user.uid, subuid + 1_000_000);
            c["linux"]["gidMappings"] = maps(user.gid, subgid);
        });
        let out = user.run(bad.path(), &rt, &["run", &unique_id("rootless-badid")]);
        assert_ne!(out.code, 0);
        if !is_runc(&rt) {
            // runc 1.1.5 prints newuidmap's line and three of its own.
            assert_one_line_naming(&out.stderr, &["uidMappings"]);
        }
        assert_eq!(
            std::fs::read_dir(user.default_root(&rt)).unwrap().count(),
            0
        );
        if !is_runc(&rt) {
            // runc 1.1.5 leaves its nsexec child behind here (the user's drop kills it).
            assert_eq!(user.processes(), Vec::<String>::new(), "{}", rt.display());
        }

        // Extra groups cannot be set by an unprivileged runtime (runc refuses them).
        let groups = user.bundle(&rt, |c| c["process"]["user"]["additionalGids"] = json!([5]));
        let out = user.run(groups.path(), &rt, &["run", &unique_id("rootless-groups")]);
        assert_ne!(out.code, 0);
        assert_one_line_naming(&out.error_lines(&rt), &["additional groups"]);
    }
}

#[test]
fn podman_as_a_user_runs_with_the_runtime() {
    let Some(user) = User::new() else { return };
    let podman = Path::new("/usr/bin/podman");
    if !podman.exists() {
        eprintln!("SKIP rootless: podman missing (apt-get install podman)");
        return;
    }
    let b = Bundle::new();
    chown_tree(b.path(), user.uid, user.gid);
    let rootfs = b.rootfs();
    // podman 4.3 asks for limits above this host's hard ones; slirp4netns needs /dev/net/tun,
    // which an unprivileged user cannot open here: no network.
    let base = [
        "--network",
        "none",
        "--ulimit",
        "nofile=1024:1024",
        "--ulimit",
        "nproc=1024:1024",
    ];
    for rt in runtimes() {
        let rt_s = rt.to_str().unwrap();
        let podman_run = |extra: &[&str], args: &[&str]| {
            let mut a = vec!["--runtime", rt_s, "run"];
            a.extend_from_slice(extra);
            a.extend_from_slice(&base);
            a.extend(["--rootfs", rootfs.to_str().unwrap()]);
            a.extend_from_slice(args);
            user.run(&user.home, podman, &a)
        };
        let out = podman_run(&["--rm"], &["sh", "-c", "id; exit 4"]);
        assert_eq!(out.code, 4, "{}: {}", rt.display(), out.stderr);
        assert!(
            out.stdout.starts_with("uid=0(root) gid=0(root)"),
            "{}",
            out.stdout
        );

        let name = unique_id("rootless-podman");
        podman_run(&["-d", "--name", &name], &["sleep", "1000"]).ok();
        let exec = user.run(
            &user.home,
            podman,
            &["--runtime", rt_s, "exec", &name, "id"],
        );
        assert!(exec.ok().starts_with("uid=0(root)"), "{}", rt.display());
        user.run(
            &user.home,
            podman,
            &["--runtime", rt_s, "rm", "-f", "-t", "0", &name],
        )
        .ok();
    }
}

#[test]
fn id_mapped_mount_refused_for_a_user() {
    if !spec_tests::runtime::is_husk() {
        // runc 1.1.5 does not know the option and mounts without it.
        eprintln!("SKIP rootless: the idmap refusal is husk's; runc 1.1.5 ignores the option");
        return;
    }
    let Some(user) = User::new() else { return };
    let rt = runtime_binary();
    let b = user.bundle(&rt, |c| {
        c["mounts"].as_array_mut().unwrap().push(json!({
            "destination": "/mnt", "type": "bind", "source": "/tmp", "options": ["rbind", "idmap"]
        }));
    });
    let out = user.run(b.path(), &rt, &["run", &unique_id("rootless-idmap")]);
    assert_ne!(out.code, 0);
    assert_one_line_naming(&out.stderr, &["/mnt"]);
    assert_eq!(
        std::fs::read_dir(user.default_root(&rt)).unwrap().count(),
        0
    );
    assert_eq!(user.processes(), Vec::<String>::new());
}

/// A cgroup v2 subtree delegated to a user, as systemd delegates `user@UID.service`: the
/// directory and its cgroup.procs, cgroup.subtree_control and cgroup.threads belong to the user,
/// the controllers are enabled above it, and the user's session runs in a leaf below it.
/// Removed on drop, deepest first (a cgroup directory goes with rmdir alone).
struct Delegated {
    dir: PathBuf,
}

impl Delegated {
    fn new(user: &mut User) -> Delegated {
        let root = Path::new("/sys/fs/cgroup");
        let dir = root.join(format!("{}.deleg", user.name));
        std::fs::create_dir(&dir).unwrap();
        let d = Delegated { dir };
        std::fs::write(root.join("cgroup.subtree_control"), "+memory +pids")
            .expect("enable memory and pids at the root");
        for f in [
            "",
            "cgroup.procs",
            "cgroup.subtree_control",
            "cgroup.threads",
        ] {
            std::os::unix::fs::chown(d.dir.join(f), Some(user.uid), Some(user.gid)).unwrap();
        }
        let login = d.dir.join("session");
        std::fs::create_dir(&login).unwrap();
        user.login = Some(login);
        d
    }
}

impl Drop for Delegated {
    fn drop(&mut self) {
        fn rmdir_tree(dir: &Path) {
            if let Ok(entries) = std::fs::read_dir(dir) {
                for e in entries.flatten() {
                    if e.file_type().is_ok_and(|t| t.is_dir()) {
                        rmdir_tree(&e.path());
                    }
                }
            }
            if let Err(e) = std::fs::remove_dir(dir) {
                eprintln!("rootless: rmdir {}: {e}", dir.display());
            }
        }
        rmdir_tree(&self.dir);
    }
}

#[test]
fn delegated_cgroup_v2_takes_limits_update_and_freeze() {
    if spec_tests::cgroup::skip_unless_v2("a cgroup v2 subtree delegated to a user") {
        return;
    }
    let Some(mut user) = User::new() else { return };
    let deleg = Delegated::new(&mut user);
    for rt in runtimes() {
        let rt_ = rt.display();
        let id = unique_id("rootless-deleg");
        let cg = deleg.dir.join(&id);
        let rel = Path::new("/").join(cg.strip_prefix("/sys/fs/cgroup").unwrap());
        let b = user.bundle(&rt, |c| {
            set_script(c, "exec sleep 1000");
            c["linux"]["cgroupsPath"] = json!(rel);
            c["linux"]["resources"]["memory"] = json!({"limit": 64 << 20});
            c["linux"]["resources"]["pids"] = json!({"limit": 12});
        });
        let cmd = |args: &[&str]| user.run(b.path(), &rt, args);
        let pid = user.create(&b, &rt, &id);
        assert_eq!(
            std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap(),
            format!("0::{}\n", rel.display()),
            "{rt_}: the init's cgroup"
        );
        let read = |f: &str| spec_tests::cgroup::read(&cg, f);
        assert_eq!(read("memory.max"), (64u64 << 20).to_string(), "{rt_}");
        assert_eq!(read("pids.max"), "12", "{rt_}");
        cmd(&["start", &id]).ok();

        // Enforced: forks beyond the limit fail inside the container.
        let forks = cmd(&[
            "exec",
            &id,
            "sh",
            "-c",
            // The sleeps leave exec's pipes, or its output would never end.
            "for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14; do sleep 1000 >/dev/null 2>&1 & done",
        ]);
        assert!(
            forks.stderr.contains("fork"),
            "{rt_}: forks past pids.max: {} {}",
            forks.code,
            forks.stderr
        );
        assert!(read("pids.current").parse::<u32>().unwrap() <= 12, "{rt_}");

        cmd(&["update", "--memory", "134217728", &id]).ok();
        assert_eq!(read("memory.max"), "134217728", "{rt_}: after update");

        let stats: Value = serde_json::from_str(cmd(&["events", "--stats", &id]).ok()).unwrap();
        assert_eq!(stats["data"]["pids"]["limit"], 12, "{rt_}: {stats}");
        assert!(
            stats["data"]["memory"]["usage"]["usage"].as_u64() > Some(0),
            "{rt_}: {stats}"
        );

        cmd(&["pause", &id]).ok();
        assert_eq!(read("cgroup.freeze"), "1", "{rt_}");
        let s: Value = serde_json::from_str(cmd(&["state", &id]).ok()).unwrap();
        assert_eq!(s["status"], "paused", "{rt_}");
        cmd(&["resume", &id]).ok();
        assert_eq!(read("cgroup.freeze"), "0", "{rt_}");

        cmd(&["kill", &id, "KILL"]).ok();
        spec_tests::proc::reap(pid, Duration::from_secs(30));
        cmd(&["delete", &id]).ok();
        assert!(!cg.exists(), "{rt_}: {} left", cg.display());
        assert_eq!(user.processes(), Vec::<String>::new(), "{rt_}");
    }
}

#[test]
fn without_a_cgroups_path_the_container_goes_beside_the_session() {
    if spec_tests::cgroup::skip_unless_v2("a cgroup v2 subtree delegated to a user") {
        return;
    }
    let Some(mut user) = User::new() else { return };
    let deleg = Delegated::new(&mut user);
    for rt in runtimes() {
        // runc's default on v2: below the parent of the runtime's own cgroup (the session has
        // processes), which is the delegated subtree.
        let b = user.bundle(&rt, |c| {
            c["linux"]["resources"]["pids"] = json!({"limit": 12});
            set_script(c, "exec sleep 1000");
        });
        let id = unique_id("rootless-beside");
        let pid = user.create(&b, &rt, &id);
        let cg = deleg.dir.join(&id);
        assert_eq!(
            spec_tests::cgroup::read(&cg, "pids.max"),
            "12",
            "{}",
            rt.display()
        );
        assert_eq!(
            spec_tests::cgroup::read(&cg, "cgroup.procs"),
            pid.to_string(),
            "{}",
            rt.display()
        );
        user.run(b.path(), &rt, &["delete", "--force", &id]).ok();
        spec_tests::proc::reap(pid, Duration::from_secs(30));
        assert!(!cg.exists(), "{}: {} left", rt.display(), cg.display());
        assert_eq!(user.processes(), Vec::<String>::new(), "{}", rt.display());
    }
}
