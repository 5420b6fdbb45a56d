//! The usual test fixture: one runtime root, one bundle, one container id.

use std::time::Duration;

use serde_json::Value;

use crate::bundle::Bundle;
use crate::leftovers::{Check, Seen};
use crate::proc;
use crate::runtime::{Output, Runtime};
use crate::sync::WAIT;

pub struct Container {
    pub rt: Runtime,
    pub bundle: Bundle,
    pub id: String,
    /// Filled in once the container was seen created or running.
    pub seen: Option<Seen>,
    /// Set once the test has deleted the container (or it never existed).
    done: bool,
}

/// A container id unique to this test and process: `st-<name>-<pid>`.
pub fn unique_id(name: &str) -> String {
    format!("st-{name}-{}", std::process::id())
}

impl Container {
    /// A fresh runtime root and bundle; `name` (the test's name) goes into the id.
    pub fn new(name: &str) -> Container {
        Container {
            rt: Runtime::new(),
            bundle: Bundle::new(),
            id: unique_id(name),
            seen: None,
            done: false,
        }
    }

    /// Writes config.json and runs `create`; records the container if it succeeded.
    pub fn create(&mut self) -> Output {
        self.bundle.write_config();
        let out = self.rt.create(self.bundle.path(), &self.id);
        if out.success() {
            self.observe();
        }
        out
    }

    /// Like [`Container::create`], with `--console-socket` at `sock`.
    pub fn create_with_console(&mut self, sock: &crate::console::ConsoleSocket) -> Output {
        self.bundle.write_config();
        let out = self.rt.run_args(&[
            "create",
            "--bundle",
            self.bundle.path().to_str().unwrap(),
            "--console-socket",
            sock.path().to_str().unwrap(),
            &self.id,
        ]);
        if out.success() {
            self.observe();
        }
        out
    }

    /// `create`, asserted; returns the init pid.
    #[track_caller]
    pub fn create_ok(&mut self) -> i32 {
        self.create().assert_success();
        self.pid()
    }

    /// Writes config.json and runs `run --detach`; returns the init pid.
    #[track_caller]
    pub fn run_detached_ok(&mut self) -> i32 {
        self.bundle.write_config();
        self.rt
            .run_detached(self.bundle.path(), &self.id)
            .assert_success();
        self.observe();
        self.pid()
    }

    /// Writes config.json and runs `run` in the foreground; the container is gone after.
    pub fn run(&mut self) -> Output {
        self.bundle.write_config();
        self.rt.run(self.bundle.path(), &self.id)
    }

    /// Foreground `run` expected to exit 0; returns the container's stdout.
    #[track_caller]
    pub fn run_ok(&mut self) -> String {
        let out = self.run();
        out.assert_success();
        out.stdout
    }

    /// Records the container's init (pid from `state`) for the leftover checks.
    #[track_caller]
    pub fn observe(&mut self) {
        let pid = self.state()["pid"].as_i64().expect("state has a pid") as i32;
        assert!(
            pid > 0,
            "state pid of a live container must be > 0, got {pid}"
        );
        self.seen = Some(Seen::of(pid));
    }

    /// The init pid recorded at create time.
    #[track_caller]
    pub fn pid(&self) -> i32 {
        self.seen.as_ref().expect("container was not created").pid
    }

    #[track_caller]
    pub fn start_ok(&self) {
        self.rt.start(&self.id).assert_success();
    }

    /// `state`, asserted and parsed.
    #[track_caller]
    pub fn state(&self) -> Value {
        self.rt.state_json(&self.id)
    }

    #[track_caller]
    pub fn status(&self) -> String {
        self.state()["status"]
            .as_str()
            .expect("state has a status string")
            .to_owned()
    }

    pub fn kill(&self, signal: &str) -> Output {
        self.rt.kill(&self.id, signal)
    }

    /// Waits (bounded, via pidfd) until the init has exited; it stays a zombie until reaped.
    #[track_caller]
    pub fn wait_exited(&self) {
        assert!(
            proc::wait_exit(self.pid(), WAIT),
            "container init {} still running after {WAIT:?}",
            self.pid()
        );
    }

    pub fn exec(&self, args: &[&str]) -> Output {
        self.rt.exec(&self.id, args)
    }

    /// `delete` (without --force) asserted, then the leftover checks.
    #[track_caller]
    pub fn delete_ok(&mut self) {
        self.rt.delete(&self.id).assert_success();
        self.after_delete();
    }

    /// `delete --force` asserted, then the leftover checks.
    #[track_caller]
    pub fn delete_force_ok(&mut self) {
        self.rt.delete_force(&self.id).assert_success();
        self.after_delete();
    }

    #[track_caller]
    fn after_delete(&mut self) {
        self.done = true;
        if let Some(s) = &self.seen {
            proc::reap(s.pid, WAIT);
        }
        self.assert_clean();
    }

    /// Leftover checks for a container that is expected not to exist (after delete, after a
    /// foreground run, or after a failed create).
    #[track_caller]
    pub fn assert_clean(&mut self) {
        self.done = true;
        self.check(&[]).assert_clean();
    }

    /// Like [`Container::assert_clean`] with some of our children allowed to be alive.
    #[track_caller]
    pub fn assert_clean_except(&mut self, allowed_children: &[i32]) {
        self.done = true;
        self.check(allowed_children).assert_clean();
    }

    fn check<'a>(&'a self, allowed_children: &'a [i32]) -> Check<'a> {
        Check {
            rt: &self.rt,
            id: &self.id,
            bundle: self.bundle.path(),
            cgroups_path: self.bundle.config["linux"]["cgroupsPath"].as_str(),
            seen: self.seen.as_ref(),
            allowed_children,
        }
    }
}

impl Drop for Container {
    /// Best effort for a test that failed half-way: never leave a container running.
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let out = self.rt.delete_force(&self.id);
        if !out.success() && !out.stderr.contains("does not exist") {
            eprintln!("spec-tests: cleanup failed:\n{out}");
        }
        if let Some(s) = &self.seen {
            if proc::wait_exit(s.pid, Duration::from_secs(5)) {
                proc::reap(s.pid, Duration::from_secs(1));
            } else {
                eprintln!("spec-tests: container init {} survived cleanup", s.pid);
            }
        }
    }
}
