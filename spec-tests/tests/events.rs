//! `events`: one stats event (`--stats`), a stream of them (`--interval`), OOM kills, the end of
//! the stream, and refusals. Events are JSON lines shaped like runc's types.Event.

use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use spec_tests::cgroup;
use spec_tests::proc::{poll_readable, reap, wait_exit};
use spec_tests::{assert_one_line_naming, Container, Fifo, WAIT};

/// A running `events` command whose stdout is read line by line with deadlines; killed and
/// reaped on drop.
struct Stream {
    child: Child,
    buf: Vec<u8>,
}

impl Stream {
    fn start(c: &Container, interval: &str) -> Stream {
        let mut cmd = c.rt.command(&["events", "--interval", interval, &c.id]);
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn events");
        Stream {
            child,
            buf: Vec::new(),
        }
    }

    /// The next line (without its newline) parsed as JSON; None at end of stream. Panics after
    /// `timeout`.
    #[track_caller]
    fn next(&mut self, timeout: Duration) -> Option<Value> {
        let deadline = Instant::now() + timeout;
        let out = self.child.stdout.as_mut().expect("piped stdout");
        loop {
            if let Some(i) = self.buf.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=i).collect();
                let text = String::from_utf8_lossy(&line[..i]).into_owned();
                let v = serde_json::from_str(&text)
                    .unwrap_or_else(|e| panic!("event line is not JSON ({e}): {text:?}"));
                return Some(v);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                poll_readable(&out.as_raw_fd(), left),
                "no event within {timeout:?} (have {:?})",
                String::from_utf8_lossy(&self.buf)
            );
            let mut chunk = [0u8; 65536];
            let n = out.read(&mut chunk).expect("read events stdout");
            if n == 0 {
                assert!(self.buf.is_empty(), "unterminated line {:?}", self.buf);
                return None;
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// Waits (bounded, via pidfd) for the command to exit by itself; its exit code and stderr.
    #[track_caller]
    fn wait_end(&mut self) -> (i32, String) {
        assert!(
            wait_exit(self.child.id() as i32, WAIT),
            "events still running {WAIT:?} after the container went away"
        );
        let status = self.child.wait().expect("wait events");
        let mut err = String::new();
        let stderr = self.child.stderr.as_mut().expect("piped stderr");
        stderr.read_to_string(&mut err).expect("read events stderr");
        (status.code().unwrap_or(-1), err)
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        // Already exited (and reaped) streams make kill fail; that is fine.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[track_caller]
fn assert_stats_event(v: &Value, id: &str) {
    assert_eq!(v["type"], "stats", "{v}");
    assert_eq!(v["id"], id, "{v}");
    assert!(v["data"].is_object(), "{v}");
}

/// On cgroup v1, memory+swap can be limited only with swap accounting (memory.memsw.*).
fn can_limit_swap() -> bool {
    let hs = cgroup::hierarchies();
    hs.iter().all(|h| h.v2)
        || hs.iter().any(|h| {
            h.controllers.iter().any(|c| c == "memory")
                && h.mount_point.join("memory.memsw.limit_in_bytes").exists()
        })
}

#[test]
fn stats_once() {
    let mut c = Container::new("ev_stats");
    let shared = c.bundle.shared_dir();
    let mut fifo = Fifo::new(&shared.join("fifo"));
    c.bundle.config["linux"]["resources"]["memory"] = json!({"limit": 64 << 20});
    c.bundle.config["linux"]["resources"]["pids"] = json!({"limit": 50});
    // Three processes (the shell and two sleeps), after some CPU time spent in the shell's
    // loop (arithmetic and `[` are shell builtins: no forks).
    c.bundle.set_script(
        "sleep 1000 & sleep 1000 & i=0; while [ $i -lt 50000 ]; do i=$((i+1)); done; \
         echo ready > /shared/fifo; wait",
    );
    c.run_detached_ok();
    fifo.expect_line("ready");

    let out = c.rt.run_args(&["events", "--stats", &c.id]);
    out.assert_success();
    assert_eq!(out.stderr, "", "{out}");
    // One JSON line, keys in runc's order.
    assert!(
        out.stdout.ends_with('\n') && out.stdout.lines().count() == 1,
        "{out}"
    );
    let prefix = format!(
        r#"{{"type":"stats","id":"{}","data":{{"cpu":{{"usage":{{"#,
        c.id
    );
    assert!(out.stdout.starts_with(&prefix), "{out}");
    let order = [
        r#""cpuset":"#,
        r#""memory":"#,
        r#""pids":"#,
        r#""blkio":"#,
        r#""hugetlb":"#,
        r#""intel_rdt":"#,
        r#""network_interfaces":"#,
    ];
    let at: Vec<usize> = order
        .iter()
        .map(|k| {
            out.stdout
                .find(k)
                .unwrap_or_else(|| panic!("no {k} in {out}"))
        })
        .collect();
    assert!(at.windows(2).all(|w| w[0] < w[1]), "key order: {out}");

    let v: Value = serde_json::from_str(&out.stdout).expect("stats event is JSON");
    assert_stats_event(&v, &c.id);
    let d = &v["data"];
    assert_eq!(d["pids"]["current"], 3, "{d}");
    assert_eq!(d["pids"]["limit"], 50, "{d}");
    let mem = &d["memory"]["usage"];
    assert_eq!(mem["limit"], 64 << 20, "{mem}");
    assert!(mem["usage"].as_u64().is_some_and(|u| u > 0), "{mem}");
    assert!(mem["failcnt"].is_u64(), "failcnt is never omitted: {mem}");
    // The loop alone takes well over 10 ms of CPU.
    let total = d["cpu"]["usage"]["total"].as_u64().unwrap_or(0);
    assert!(total > 10_000_000, "cpu.usage.total = {total} ns");
    assert!(d["cpu"]["usage"]["kernel"].is_u64(), "{d}");
    assert!(d["cpu"]["throttling"].is_object(), "{d}");
    assert!(
        d["hugetlb"].is_object() && d["intel_rdt"].is_object(),
        "{d}"
    );
    assert!(d["network_interfaces"].is_null(), "{d}");
    c.delete_force_ok();
}

#[test]
fn stats_are_v2_metrics_on_cgroup_v2() {
    if cgroup::skip_unless_v2("cgroup v2's metrics") {
        return;
    }
    let mut c = Container::new("ev_stats_v2");
    c.bundle.config["linux"]["resources"]["memory"] = json!({"limit": 64 << 20, "swap": 128 << 20});
    c.bundle.set_args(&["sleep", "1000"]);
    c.run_detached_ok();
    let out = c.rt.run_args(&["events", "--stats", &c.id]);
    out.assert_success();
    let v: Value = serde_json::from_str(&out.stdout).expect("stats event is JSON");
    let mem = &v["data"]["memory"];
    assert_eq!(mem["usage"]["limit"], 64 << 20, "{mem}");
    // As runc reports them: swap is memory+swap (memory.swap.max plus memory.max), and raw is
    // memory.stat's v2 keys.
    assert_eq!(mem["swap"]["limit"], 128 << 20, "{mem}");
    for key in [
        "anon",
        "file",
        "kernel_stack",
        "slab",
        "pgfault",
        "workingset_refault_anon",
    ] {
        assert!(mem["raw"][key].is_u64(), "no {key} in memory.raw: {mem}");
    }
    assert!(mem["raw"].get("total_rss").is_none(), "a v1 key: {mem}");
    // runc 1.1.5 has no memory.peak reading; later runc and husk report it as usage.max.
    assert_eq!(
        mem["usage"].get("max").is_some(),
        !spec_tests::runtime::is_runc_1_1(),
        "{mem}"
    );
    let cpu = &v["data"]["cpu"]["usage"];
    assert!(cpu["user"].is_u64() && cpu["kernel"].is_u64(), "{cpu}");
    c.delete_force_ok();
}

#[test]
fn interval_streams_stats() {
    let mut c = Container::new("ev_stream");
    c.bundle.set_args(&["sleep", "1000"]);
    c.run_detached_ok();
    let mut s = Stream::start(&c, "100ms");
    for _ in 0..2 {
        let v = s.next(WAIT).expect("a stats event");
        assert_stats_event(&v, &c.id);
        assert_eq!(v["data"]["pids"]["current"], 1, "{v}");
    }
    drop(s);
    c.delete_force_ok();
}

#[test]
fn stream_ends_when_the_container_is_deleted() {
    let mut c = Container::new("ev_end");
    c.bundle.set_args(&["sleep", "1000"]);
    c.run_detached_ok();
    let mut s = Stream::start(&c, "100ms");
    assert_stats_event(&s.next(WAIT).expect("a stats event"), &c.id);
    c.kill("KILL").assert_success();
    c.wait_exited();
    // On cgroup v1 runc goes on until the cgroup is removed; on v2 it ends once the cgroup is
    // empty. Either way the stream has ended, successfully, once the container is deleted.
    c.rt.delete(&c.id).assert_success();
    let (code, stderr) = s.wait_end();
    assert_eq!(code, 0, "stderr: {stderr}");
    while let Some(v) = s.next(WAIT) {
        assert_stats_event(&v, &c.id);
    }
    // The leftover checks, now that `events` is no longer our child.
    reap(c.pid(), WAIT);
    c.assert_clean();
}

#[test]
fn oom_kill_is_reported() {
    let mut c = Container::new("ev_oom");
    let shared = c.bundle.shared_dir();
    let mut fifo = Fifo::new(&shared.join("fifo"));
    let go = shared.join("go");
    spec_tests::sync::mkfifo(&go);
    let limit = 16 << 20;
    let mut memory = json!({ "limit": limit });
    if can_limit_swap() {
        // No way out through swap: the allocation must end in an OOM kill.
        memory["swap"] = json!(limit);
    }
    c.bundle.config["linux"]["resources"]["memory"] = memory;
    // dd fills a 64 MiB buffer, four times the limit; the shell itself survives.
    c.bundle.set_script(
        "echo ready > /shared/fifo; read x < /shared/go; \
         dd if=/dev/zero of=/dev/null bs=64M count=1; echo after-dd > /shared/fifo; sleep 1000",
    );
    c.run_detached_ok();
    fifo.expect_line("ready");

    let mut s = Stream::start(&c, "100ms");
    // The first event is printed only once the OOM notification is set up (runc and husk).
    assert_stats_event(&s.next(WAIT).expect("a stats event"), &c.id);
    // Opened read-write: never blocks, and the line stays in the fifo until the shell reads.
    let mut w = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&go)
        .expect("open go fifo");
    w.write_all(b"go\n").expect("write go fifo");
    fifo.expect_line("after-dd");
    let deadline = Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let v = s.next(left).expect("events ended before an oom event");
        if v["type"] == "oom" {
            assert_eq!(
                v,
                json!({"type": "oom", "id": c.id}),
                "no data in an oom event"
            );
            break;
        }
        assert_stats_event(&v, &c.id);
    }
    drop(s);
    drop(w);
    c.delete_force_ok();
}

#[test]
fn missing_container() {
    let c = Container::new("ev_missing");
    for args in [&["events", "--stats", &c.id][..], &["events", &c.id]] {
        let out = c.rt.run_args(args);
        assert_eq!(out.code(), 1, "{out}");
        assert_eq!(out.stdout, "", "{out}");
        assert_one_line_naming(&out.stderr, &["container does not exist"]);
    }
}

#[test]
fn stopped_container_is_refused() {
    let mut c = Container::new("ev_stopped");
    c.bundle.set_args(&["sleep", "1000"]);
    c.run_detached_ok();
    c.kill("KILL").assert_success();
    c.wait_exited();
    let out = c.rt.run_args(&["events", "--stats", &c.id]);
    assert_eq!(out.code(), 1, "{out}");
    assert_eq!(out.stdout, "", "{out}");
    assert_one_line_naming(
        &out.stderr,
        &[&format!("container with id {} is not running", c.id)],
    );
    c.delete_ok();
}

#[test]
fn bad_interval_is_refused() {
    let mut c = Container::new("ev_interval");
    c.bundle.set_args(&["sleep", "1000"]);
    c.run_detached_ok();
    for (interval, says) in [
        ("0", "duration interval must be greater than 0"),
        ("-1s", "duration interval must be greater than 0"),
        ("1x", "invalid value \\\"1x\\\" for flag -interval"),
    ] {
        let out =
            c.rt.run_args(&["events", "--interval", interval, "--stats", &c.id]);
        assert_eq!(out.code(), 1, "{out}");
        assert_one_line_naming(&out.stderr, &[says]);
    }
    c.delete_force_ok();
}
