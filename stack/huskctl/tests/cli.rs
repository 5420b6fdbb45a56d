//! huskctl end to end, as a docker user drives it, against each daemon: Debian's dockerd (the
//! reference: huskctl speaks the API docker speaks) and huskd (the subject). Each daemon gets
//! every scenario; the report names those that pass and fail on it. Where docker's own CLI is
//! on the machine, huskctl's tables are compared with its output byte for byte.

mod daemon;

use std::{
    panic::{catch_unwind, AssertUnwindSafe},
    path::{Path, PathBuf},
    time::Duration,
};

use daemon::{busybox_archive, client, Daemon, Pty, Registry};
use integration::{become_subreaper, wait_for};

const IMAGE: &str = "huskctl.test/busybox:latest";

struct Ctx {
    d: Daemon,
    archive: PathBuf,
    registry: Result<Registry, String>,
}

impl Ctx {
    fn docker_cli(&self) -> Option<String> {
        let found = std::process::Command::new("docker")
            .arg("--version")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        found.then(|| "docker".to_string())
    }

    /// Asserts huskctl's output equals docker's for the same command, when docker's CLI is
    /// here and the daemon is dockerd (huskd's values differ, not its format).
    fn same_as_docker(&self, args: &[&str]) {
        let Some(docker) = self.docker_cli().filter(|_| self.d.name == "dockerd") else {
            println!("  (no comparison with docker's CLI for {args:?}: not here or not dockerd)");
            return;
        };
        let ours = self.d.ok(args);
        let theirs = client(&docker, &self.d.sock, args, None);
        assert_eq!(theirs.code, 0, "docker {args:?}: {}", theirs.stderr);
        assert_eq!(
            ours, theirs.stdout,
            "huskctl {args:?} differs from docker's"
        );
    }
}

/// One line on stderr, lower-case `huskctl:` prefix, that names `what`.
fn one_clear_line(stderr: &str, what: &str) {
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.is_empty()).collect();
    let last = lines.last().copied().unwrap_or_default();
    assert!(
        last.starts_with("huskctl: ") && last.contains(what),
        "expected a 'huskctl: ...{what}...' line, got: {stderr}"
    );
}

fn load(c: &Ctx) {
    let archive = c.archive.to_str().unwrap();
    let out = c.d.ok(&["load", "-i", archive]);
    assert!(
        out.contains(&format!("Loaded image: {IMAGE}")),
        "load: {out}"
    );
    // From stdin as well, as `docker load < file`.
    let o =
        c.d.huskctl_stdin(&["load"], &std::fs::read(&c.archive).unwrap());
    assert_eq!(o.code, 0, "load from stdin: {}", o.stderr);
    assert!(o.stdout.contains(IMAGE), "load from stdin: {}", o.stdout);
    // A malformed archive: a clear error, no image.
    let o = c.d.huskctl_stdin(&["load"], b"not a tar archive at all");
    assert_ne!(o.code, 0, "a malformed archive loaded: {}", o.stdout);
    one_clear_line(&o.stderr, "");
}

fn images(c: &Ctx) {
    let out = c.d.ok(&["images"]);
    let header: Vec<&str> = out
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(
        header,
        ["REPOSITORY", "TAG", "IMAGE", "ID", "CREATED", "SIZE"],
        "{out}"
    );
    let row: Vec<&str> = out
        .lines()
        .find(|l| l.starts_with("huskctl.test/busybox "))
        .unwrap_or_else(|| panic!("no row for the image: {out}"))
        .split_whitespace()
        .collect();
    assert_eq!(row[1], "latest", "{out}");
    assert_eq!(row[2].len(), 12, "short id: {out}");
    let ids = c.d.ok(&["images", "-q", "huskctl.test/busybox"]);
    assert_eq!(ids.trim(), row[2], "images -q");
    c.d.ok(&["tag", IMAGE, "huskctl.test/other:1"]);
    assert!(c.d.ok(&["images"]).contains("huskctl.test/other"), "tag");
    let out = c.d.ok(&["rmi", "huskctl.test/other:1"]);
    assert!(out.contains("Untagged: huskctl.test/other:1"), "rmi: {out}");
    let insp =
        c.d.ok(&["image", "inspect", "-f", "{{json .Config.Cmd}}", IMAGE]);
    assert_eq!(insp.trim(), r#"["sh"]"#);
    c.same_as_docker(&["images"]);
}

fn run_rm(c: &Ctx) {
    let o = c.d.huskctl(&["run", "--rm", IMAGE, "echo", "hello"]);
    assert_eq!((o.code, o.stdout.as_str()), (0, "hello\n"), "{}", o.stderr);
    let o = c.d.huskctl(&[
        "run",
        "--rm",
        "--name",
        "hctl-rm",
        "-e",
        "A=b",
        IMAGE,
        "sh",
        "-c",
        "echo out $A; echo err >&2; exit 7",
    ]);
    assert_eq!(
        o.code, 7,
        "run's exit code is the container's: {}",
        o.stderr
    );
    assert_eq!(o.stdout, "out b\n");
    assert_eq!(o.stderr, "err\n");
    // --rm: gone once run returns.
    let all = c.d.ok(&["ps", "-a"]);
    assert!(!all.contains("hctl-rm"), "--rm left the container: {all}");
    // -i: our stdin reaches the container, and its EOF ends it.
    let o =
        c.d.huskctl_stdin(&["run", "-i", "--rm", IMAGE, "cat"], b"piped\n");
    assert_eq!((o.code, o.stdout.as_str()), (0, "piped\n"), "{}", o.stderr);
    // -t: the container's stdout is a terminal.
    let o = c.d.huskctl(&["run", "-t", "--rm", IMAGE, "tty"]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(o.stdout.starts_with("/dev/pts/"), "run -t: {:?}", o.stdout);
}

fn detached(c: &Ctx) {
    let id = c.d.ok(&[
        "run",
        "-d",
        "--name",
        "hctl-d",
        "-e",
        "A=1",
        IMAGE,
        "sh",
        "-c",
        "echo started; trap 'echo bye; exit 0' TERM; while true; do sleep 1; done",
    ]);
    let id = id.trim();
    assert!(
        id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit()),
        "run -d: {id}"
    );
    assert!(
        wait_for(Duration::from_secs(10), || c.d.ok(&["logs", "hctl-d"])
            == "started\n"),
        "logs: {}",
        c.d.ok(&["logs", "hctl-d"])
    );
    let o =
        c.d.huskctl(&["exec", "hctl-d", "sh", "-c", "echo $A; exit 4"]);
    assert_eq!(
        (o.code, o.stdout.as_str()),
        (4, "1\n"),
        "exec: {}",
        o.stderr
    );
    let o = c.d.huskctl(&[
        "exec",
        "-w",
        "/bin",
        "-u",
        "1:1",
        "-e",
        "B=2",
        "hctl-d",
        "sh",
        "-c",
        "pwd; id -u; echo $B",
    ]);
    assert_eq!(o.stdout, "/bin\n1\n2\n", "exec -w -u -e: {}", o.stderr);
    let o =
        c.d.huskctl_stdin(&["exec", "-i", "hctl-d", "cat"], b"to exec\n");
    assert_eq!(o.stdout, "to exec\n", "exec -i: {}", o.stderr);
    let ps = c.d.ok(&["ps"]);
    assert!(
        ps.lines()
            .any(|l| l.starts_with(&id[..12]) && l.ends_with("hctl-d")),
        "ps: {ps}"
    );
    assert_eq!(c.d.ok(&["ps", "-q"]).trim(), &id[..12]);
    assert_eq!(c.d.ok(&["stop", "-t", "10", "hctl-d"]), "hctl-d\n");
    assert_eq!(
        c.d.ok(&["logs", "hctl-d"]),
        "started\nbye\n",
        "logs after exit"
    );
    assert_eq!(
        c.d.ok(&["logs", "--tail", "1", "hctl-d"]),
        "bye\n",
        "logs --tail"
    );
    let st = c.d.ok(&[
        "inspect",
        "-f",
        "{{.State.Status}} {{.State.ExitCode}}",
        "hctl-d",
    ]);
    assert_eq!(st, "exited 0\n");
    assert_eq!(c.d.ok(&["rm", "hctl-d"]), "hctl-d\n");
    assert!(
        !c.d.ok(&["ps", "-a", "-q", "--no-trunc"]).contains(id),
        "rm"
    );
}

fn lifecycle(c: &Ctx) {
    c.d.ok(&["run", "-d", "--name", "hctl-l", IMAGE, "sleep", "1000"]);
    assert_eq!(c.d.ok(&["pause", "hctl-l"]), "hctl-l\n");
    assert_eq!(
        c.d.ok(&["inspect", "-f", "{{.State.Status}}", "hctl-l"]),
        "paused\n"
    );
    assert_eq!(c.d.ok(&["unpause", "hctl-l"]), "hctl-l\n");
    let stats = c.d.ok(&["stats", "--no-stream", "hctl-l"]);
    assert!(
        stats.starts_with("CONTAINER ID   NAME      CPU %     MEM USAGE / LIMIT")
            && stats.lines().nth(1).is_some_and(|l| l.contains("hctl-l")),
        "stats: {stats}"
    );
    assert_eq!(c.d.ok(&["kill", "-s", "KILL", "hctl-l"]), "hctl-l\n");
    assert_eq!(c.d.ok(&["wait", "hctl-l"]), "137\n");
    c.d.ok(&["rm", "hctl-l"]);
    // start -a of a created container: its output and exit code.
    c.d.ok(&[
        "create",
        "--name",
        "hctl-s",
        IMAGE,
        "sh",
        "-c",
        "echo from start; exit 3",
    ]);
    let o = c.d.huskctl(&["start", "-a", "hctl-s"]);
    assert_eq!(
        (o.code, o.stdout.as_str()),
        (3, "from start\n"),
        "{}",
        o.stderr
    );
    c.d.ok(&["rm", "-f", "hctl-s"]);
    // logs -f follows until the container ends, stdout and stderr apart.
    let script = "echo a; sleep 1; echo b >&2";
    c.d.ok(&["run", "-d", "--name", "hctl-f", IMAGE, "sh", "-c", script]);
    let o = c.d.huskctl(&["logs", "-f", "hctl-f"]);
    assert_eq!(
        (o.code, o.stdout.as_str(), o.stderr.as_str()),
        (0, "a\n", "b\n"),
        "logs -f"
    );
    c.d.ok(&["rm", "-f", "hctl-f"]);
}

fn ps_all(c: &Ctx) {
    let id = c.d.ok(&["create", "--name", "hctl-c", IMAGE, "true"]);
    let ps = c.d.ok(&["ps", "-a"]);
    let header: Vec<&str> = ps
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(
        header,
        [
            "CONTAINER",
            "ID",
            "IMAGE",
            "COMMAND",
            "CREATED",
            "STATUS",
            "PORTS",
            "NAMES"
        ],
        "{ps}"
    );
    let row = ps
        .lines()
        .find(|l| l.ends_with("hctl-c"))
        .unwrap_or_else(|| panic!("ps -a: no row: {ps}"));
    assert!(
        row.starts_with(&id.trim()[..12]) && row.contains(IMAGE) && row.contains("\"true\""),
        "{row}"
    );
    assert!(row.contains("   Created   "), "status: {row}");
    assert!(
        !c.d.ok(&["ps"]).contains("hctl-c"),
        "ps without -a lists a created container"
    );
    assert_eq!(
        c.d.ok(&["ps", "-a", "-q", "-f", "name=hctl-c"]).trim(),
        &id.trim()[..12]
    );
    let created =
        c.d.ok(&["ps", "-f", "status=created", "--format", "{{.Names}}"]);
    assert!(
        created.lines().any(|l| l == "hctl-c"),
        "ps -f status=created: {created}"
    );
    assert_eq!(
        c.d.ok(&["ps", "-a", "-q", "-f", "status=exited", "-f", "name=hctl-c"]),
        ""
    );
    let fmt = c.d.ok(&["ps", "-a", "--format", "{{.Names}} {{.State}}"]);
    assert!(
        fmt.lines().any(|l| l == "hctl-c created"),
        "ps --format: {fmt}"
    );
    c.same_as_docker(&[
        "ps",
        "-a",
        "--format",
        "table {{.ID}}\\t{{.Image}}\\t{{.Command}}\\t{{.Status}}\\t{{.Names}}",
    ]);
    c.d.ok(&["rm", "hctl-c"]);
}

fn inspect(c: &Ctx) {
    c.d.ok(&[
        "create", "--name", "hctl-i", "-e", "X=1", "-w", "/tmp", IMAGE, "sleep", "5",
    ]);
    let out = c.d.ok(&["inspect", "hctl-i"]);
    assert!(
        out.starts_with("[\n    {\n"),
        "docker's 4-space indent: {out}"
    );
    let v: serde_json::Value = serde_json::from_str(&out).expect("inspect is JSON");
    assert_eq!(v[0]["Name"], "/hctl-i");
    assert!(v[0]["Config"]["Env"]
        .as_array()
        .unwrap()
        .contains(&"X=1".into()));
    assert_eq!(v[0]["Config"]["WorkingDir"], "/tmp");
    assert_eq!(v[0]["Config"]["Cmd"], serde_json::json!(["sleep", "5"]));
    let img = c.d.ok(&["inspect", IMAGE]);
    let v: serde_json::Value = serde_json::from_str(&img).expect("image inspect is JSON");
    assert!(v[0]["Id"].as_str().unwrap().starts_with("sha256:"), "{img}");
    let o = c.d.huskctl(&["inspect", "hctl-nothere"]);
    assert_eq!(o.code, 1);
    one_clear_line(&o.stderr, "hctl-nothere");
    c.d.ok(&["rm", "hctl-i"]);
}

fn bad_input(c: &Ctx) {
    let before = c.d.ok(&["ps", "-a", "-q"]);
    // An image no registry has (a refused registry on loopback, so that the pull fails fast).
    let o =
        c.d.huskctl(&["run", "--rm", "127.0.0.1:1/hctl/nosuch:1", "true"]);
    assert_eq!(o.code, 125, "unknown image: {}", o.stderr);
    one_clear_line(&o.stderr, "");
    assert!(
        o.stderr.contains("127.0.0.1:1/hctl/nosuch"),
        "names the image: {}",
        o.stderr
    );
    let o = c.d.huskctl(&["run", "--pull=never", "hctl-nosuch", "true"]);
    assert_eq!(o.code, 125);
    one_clear_line(&o.stderr, "hctl-nosuch");
    // A command that is not in the image: 127; one that cannot be run: 126.
    assert_eq!(
        c.d.huskctl(&["run", "--rm", IMAGE, "/nonexistent"]).code,
        127
    );
    assert_eq!(c.d.huskctl(&["run", "--rm", IMAGE, "/bin/"]).code, 126);
    // exec of a command that is not there: the exec's exit code, 126, as docker.
    c.d.ok(&["run", "-d", "--name", "hctl-x", IMAGE, "sleep", "1000"]);
    let o = c.d.huskctl(&["exec", "hctl-x", "nonexistent"]);
    c.d.ok(&["rm", "-f", "hctl-x"]);
    assert_eq!(o.code, 126, "exec of a missing command: {}", o.stderr);
    // A name in use.
    c.d.ok(&["create", "--name", "hctl-b", IMAGE]);
    let o = c.d.huskctl(&["create", "--name", "hctl-b", IMAGE]);
    assert_eq!(o.code, 125, "a name in use: {}", o.stderr);
    one_clear_line(&o.stderr, "hctl-b");
    c.d.ok(&["rm", "hctl-b"]);
    // Malformed flags: clap's message, docker's 125, nothing sent.
    for args in [
        &["run", "--memory", "lots", IMAGE][..],
        &["run", "--cpus", "x", IMAGE],
        &["run", "--restart", "sometimes", IMAGE],
        &["run", "--bogus", IMAGE],
    ] {
        let o = c.d.huskctl(args);
        assert_eq!(o.code, 125, "{args:?}: {}", o.stderr);
        assert!(o.stderr.starts_with("error: "), "{args:?}: {}", o.stderr);
    }
    let o = c.d.huskctl(&["run", "-v", "/tmp:relative", IMAGE]);
    assert_eq!(o.code, 125);
    one_clear_line(&o.stderr, "/tmp:relative");
    let o = c.d.huskctl(&["run", "--rm", "--restart", "always", IMAGE]);
    assert_eq!(o.code, 125);
    one_clear_line(&o.stderr, "--restart");
    let o = c.d.huskctl(&["rm", "hctl-nothere"]);
    assert_eq!(o.code, 1);
    one_clear_line(&o.stderr, "hctl-nothere");
    let o = c.d.huskctl(&["exec", "hctl-nothere", "true"]);
    assert_eq!(o.code, 1);
    one_clear_line(&o.stderr, "hctl-nothere");
    let o = client(
        daemon::huskctl_bin(),
        Path::new("/nonexistent/huskd.sock"),
        &["ps"],
        None,
    );
    assert_eq!(o.code, 1);
    one_clear_line(&o.stderr, "/nonexistent/huskd.sock");
    // Nothing half-created by any of the above.
    assert_eq!(
        c.d.ok(&["ps", "-a", "-q"]),
        before,
        "bad input left containers"
    );
}

/// Asks the shell on `p` for its terminal's size until it is `size` (bounded).
fn size_is(p: &mut Pty, size: &str) -> bool {
    wait_for(Duration::from_secs(20), || {
        p.write("stty size\n");
        p.expect(size, Duration::from_millis(500))
    })
}

fn terminal(c: &Ctx) {
    let t = Duration::from_secs(20);
    let mut p = Pty::spawn(&c.d.sock, &["run", "-it", "--rm", IMAGE, "sh"], 30, 100);
    // The size is sent once the container runs (Docker's API 1.41 has no size at create), so
    // the shell may start before it: asked again until it shows.
    assert!(
        size_is(&mut p, "30 100"),
        "the terminal's size at start: {:?}",
        p.seen
    );
    // SIGWINCH: the new size reaches the container.
    p.resize(20, 80);
    assert!(
        size_is(&mut p, "20 80"),
        "the terminal's size after a resize: {:?}",
        p.seen
    );
    // Raw mode: ^C is a byte for the container's shell (which drops the line), not a SIGINT
    // that would end huskctl.
    p.write("\x03");
    p.write("echo still here\n");
    assert!(p.expect("still here", t), "^C in raw mode: {:?}", p.seen);
    p.write("exit 5\n");
    assert_eq!(p.wait(t), Some(5), "run -it's exit code: {:?}", p.seen);
    assert!(p.canonical(), "the terminal is left in raw mode");
    drop(p);
    // exec -it: the same, through /exec/{id}/resize.
    c.d.ok(&["run", "-d", "--name", "hctl-t", IMAGE, "sleep", "1000"]);
    let mut p = Pty::spawn(&c.d.sock, &["exec", "-it", "hctl-t", "sh"], 25, 90);
    assert!(size_is(&mut p, "25 90"), "exec -it: the size: {:?}", p.seen);
    p.resize(15, 70);
    assert!(
        size_is(&mut p, "15 70"),
        "exec -it: the size after a resize: {:?}",
        p.seen
    );
    p.write("exit 6\n");
    assert_eq!(p.wait(t), Some(6), "exec -it's exit code: {:?}", p.seen);
    c.d.ok(&["rm", "-f", "hctl-t"]);
}

fn signals(c: &Ctx) {
    let t = Duration::from_secs(20);
    let script = "trap 'echo got INT; exit 9' INT; echo ready; sleep 1000 & wait";
    let mut p = Pty::spawn(
        &c.d.sock,
        &["run", "--rm", IMAGE, "sh", "-c", script],
        30,
        100,
    );
    assert!(p.expect("ready", t), "{:?}", p.seen);
    // SAFETY: kill on our own child's pid.
    unsafe { libc::kill(p.pid(), libc::SIGINT) };
    assert!(
        p.expect("got INT", t),
        "--sig-proxy: SIGINT not forwarded: {:?}",
        p.seen
    );
    assert_eq!(p.wait(t), Some(9));
}

fn pull(c: &Ctx) {
    let reg = match &c.registry {
        Ok(r) => r,
        Err(why) => {
            println!("  SKIP pull: {why}");
            return;
        }
    };
    let one = format!("{}/hctl/busybox:1", reg.addr);
    let out = c.d.ok(&["pull", &one]);
    assert_eq!(out.lines().last(), Some(one.as_str()), "pull: {out}");
    let images = c.d.ok(&["images", &format!("{}/hctl/busybox", reg.addr)]);
    assert!(
        images.lines().nth(1).is_some_and(|l| l.contains(" 1 ")),
        "{images}"
    );
    assert_eq!(c.d.ok(&["run", "--rm", &one, "echo", "pulled"]), "pulled\n");
    // run pulls what is missing, saying so on stderr.
    let two = format!("{}/hctl/busybox:2", reg.addr);
    let o = c.d.huskctl(&["run", "--rm", &two, "echo", "pulled by run"]);
    assert_eq!(
        (o.code, o.stdout.as_str()),
        (0, "pulled by run\n"),
        "{}",
        o.stderr
    );
    assert!(
        o.stderr
            .starts_with(&format!("Unable to find image '{two}' locally")),
        "{}",
        o.stderr
    );
    // A tag the registry does not have.
    let o =
        c.d.huskctl(&["pull", &format!("{}/hctl/busybox:nosuch", reg.addr)]);
    assert_eq!(o.code, 1, "{}", o.stdout);
    one_clear_line(&o.stderr, "");
    c.d.ok(&["rmi", &one, &two]);
}

fn run_flags(c: &Ctx) {
    let dir = c.archive.with_file_name("flags");
    std::fs::create_dir_all(dir.join("vol")).unwrap();
    std::fs::write(dir.join("vol/file"), "content\n").unwrap();
    std::fs::write(dir.join("env.list"), "# a comment\nFROM_FILE=yes\n\n").unwrap();
    let vol = format!("{}:/data:ro", dir.join("vol").display());
    let env_file = dir.join("env.list");
    let script = "hostname; echo $FROM_FILE $E; pwd; id -u; cat /data/file; \
        touch /data/x 2>/dev/null || echo data-ro; touch /x 2>/dev/null || echo root-ro; \
        touch /scratch/x && echo scratch-rw; ls /sys/class/net; grep CapEff /proc/self/status; \
        cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max \
        /sys/fs/cgroup/cpu/cpu.cfs_quota_us";
    let o = c.d.huskctl(&[
        "run",
        "--rm",
        "-h",
        "hh",
        "--env-file",
        env_file.to_str().unwrap(),
        "-e",
        "E=1",
        "-w",
        "/data",
        "-u",
        "0:0",
        "-v",
        &vol,
        "--tmpfs",
        "/scratch:size=1m",
        "--read-only",
        "--memory",
        "64m",
        "--pids-limit",
        "50",
        "--cpus",
        "0.5",
        "--network",
        "none",
        "--cap-drop",
        "ALL",
        "--cap-add",
        "CHOWN",
        "--entrypoint",
        "/bin/sh",
        IMAGE,
        "-c",
        script,
    ]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert_eq!(
        o.stdout,
        "hh\nyes 1\n/data\n0\ncontent\ndata-ro\nroot-ro\nscratch-rw\nlo\n\
         CapEff:\t0000000000000001\n67108864\n50\n50000\n",
        "run flags, as seen inside the container"
    );
    // --restart on-failure:2: two restarts, then it stays exited.
    c.d.ok(&[
        "run",
        "-d",
        "--name",
        "hctl-r",
        "--restart",
        "on-failure:2",
        IMAGE,
        "sh",
        "-c",
        "exit 1",
    ]);
    let state = || {
        c.d.ok(&[
            "inspect",
            "-f",
            "{{.RestartCount}} {{.State.Status}}",
            "hctl-r",
        ])
    };
    assert!(
        wait_for(Duration::from_secs(30), || state() == "2 exited\n"),
        "--restart on-failure:2: {}",
        state()
    );
    c.d.ok(&["rm", "-f", "hctl-r"]);
}

fn init(c: &Ctx) {
    // pid 1 is the init, not the command.
    let o =
        c.d.huskctl(&["run", "--rm", "--init", IMAGE, "cat", "/proc/1/comm"]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert_ne!(o.stdout, "cat\n", "--init: pid 1 is the command");
}

type Scenario = (&'static str, fn(&Ctx));

const SCENARIOS: &[Scenario] = &[
    ("load", load),
    ("images", images),
    ("run --rm", run_rm),
    ("run -d, logs, exec, stop, rm", detached),
    ("pause, stats, kill, wait, start -a, logs -f", lifecycle),
    ("ps -a", ps_all),
    ("run flags", run_flags),
    ("--init", init),
    ("run -it, exec -it on a terminal", terminal),
    ("signals forwarded", signals),
    ("pull", pull),
    ("inspect", inspect),
    ("bad input", bad_input),
];

/// Runs every scenario against the daemon `start` gives, each on its own (a failure does not stop the others), and
/// fails if any failed, naming them.
fn all_scenarios(name: &str, start: fn(Option<&str>) -> Result<Daemon, String>) {
    let dir = tempdir(name);
    let archive = busybox_archive(&dir, IMAGE);
    let registry = Registry::start(&dir, &archive);
    let d = match start(registry.as_ref().ok().map(|r| r.addr.as_str())) {
        Ok(d) => d,
        Err(why) => {
            println!("SKIP: {name} could not start: {why}");
            drop(registry);
            if let Err(e) = std::fs::remove_dir_all(&dir) {
                eprintln!("{}: {e}", dir.display());
            }
            return;
        }
    };
    let ctx = Ctx {
        archive,
        d,
        registry,
    };
    let (mut passed, mut failed) = (Vec::new(), Vec::new());
    for (what, f) in SCENARIOS {
        match catch_unwind(AssertUnwindSafe(|| f(&ctx))) {
            Ok(()) => passed.push(*what),
            Err(_) => failed.push(*what),
        }
    }
    println!("huskctl against {name}: passed {passed:?}; failed {failed:?}");
    drop(ctx);
    // Cleanup of the image's build directory only; the daemon cleaned up on drop.
    if let Err(e) = std::fs::remove_dir_all(&dir) {
        eprintln!("{}: {e}", dir.display());
    }
    assert!(failed.is_empty(), "against {name}, failed: {failed:?}");
}

fn tempdir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("hctl-image-{name}-{}", std::process::id()));
    // A directory left by a crashed earlier run of the same pid is stale.
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn against_dockerd() {
    become_subreaper();
    all_scenarios("dockerd", Daemon::dockerd);
}

#[test]
fn against_huskd() {
    become_subreaper();
    all_scenarios("huskd", Daemon::huskd);
}
