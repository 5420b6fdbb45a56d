//! Invalid input: each must fail with exit 1 and a one-line error naming the problem, and
//! leave nothing behind (no state, no cgroup, no process, no mount).

use serde_json::json;
use spec_tests::{assert_one_line_naming, Container};

/// Runs `create`, expects exit 1 with one stderr line naming one of `needles`, and no
/// leftovers. The needles name the field or path at fault (runc's wording, husk's wording), so
/// that an error that only says "bad config" fails.
#[track_caller]
fn create_fails(c: &mut Container, needles: &[&str]) {
    let out = c.rt.create(c.bundle.path(), &c.id);
    assert_eq!(out.code(), 1, "{out}");
    assert_one_line_naming(&out.stderr, needles);
    c.assert_clean();
}

#[test]
fn missing_bundle_dir() {
    let mut c = Container::new("missing_bundle");
    let missing = c.bundle.path().join("no-such-bundle");
    let out = c.rt.create(&missing, &c.id);
    assert_eq!(out.code(), 1, "{out}");
    // runc: runc create failed: chdir <bundle>: no such file or directory
    assert_one_line_naming(&out.stderr, &[missing.to_str().unwrap()]);
    c.assert_clean();
}

#[test]
fn missing_config_json() {
    let mut c = Container::new("missing_config");
    // runc: runc create failed: open config.json: no such file or directory
    create_fails(&mut c, &["config.json"]);
}

#[test]
fn malformed_config_json() {
    let mut c = Container::new("malformed_config");
    std::fs::write(c.bundle.config_path(), "{bad json").unwrap();
    // runc: runc create failed: invalid character 'b' looking for beginning of object key string
    // husk: husk create failed: config.json: key must be a string at line 1 column 2
    create_fails(&mut c, &["invalid character 'b'", "line 1 column 2"]);
}

#[test]
fn field_of_wrong_type() {
    let mut c = Container::new("wrong_type");
    c.bundle.config["process"]["args"] = json!("notalist");
    c.bundle.write_config();
    // runc: json: cannot unmarshal string into Go struct field Process.process.args of type []string
    // husk: config.json: args: invalid type: string "notalist", expected a sequence at line ...
    create_fails(&mut c, &["process.args", " args: "]);
}

#[test]
fn missing_rootfs() {
    let mut c = Container::new("missing_rootfs");
    c.bundle.config["root"]["path"] = json!("no-such-rootfs");
    c.bundle.write_config();
    // runc: invalid rootfs: stat <bundle>/no-such-rootfs: no such file or directory
    let missing = c.bundle.path().join("no-such-rootfs");
    create_fails(&mut c, &[missing.to_str().unwrap()]);
}

#[test]
fn rootfs_symlink_is_rejected() {
    // runc refuses a rootfs that is a symlink: invalid rootfs: not an absolute path, or a symlink
    let mut c = Container::new("rootfs_symlink");
    std::os::unix::fs::symlink("rootfs", c.bundle.path().join("rootfs-link")).unwrap();
    c.bundle.config["root"]["path"] = json!("rootfs-link");
    c.bundle.write_config();
    create_fails(
        &mut c,
        &["invalid rootfs: not an absolute path, or a symlink"],
    );
}

#[test]
fn no_process_section() {
    let mut c = Container::new("no_process");
    c.bundle.config.as_object_mut().unwrap().remove("process");
    c.bundle.write_config();
    // runc: process property must not be empty
    create_fails(&mut c, &["process property", "process: missing"]);
}

#[test]
fn invalid_ids() {
    for (i, bad) in ["a/b", "..", "../escape", "."].iter().enumerate() {
        let mut c = Container::new(&format!("bad_id{i}"));
        c.bundle.set_args(&["true"]);
        c.bundle.write_config();
        let out = c.rt.create(c.bundle.path(), bad);
        assert_eq!(out.code(), 1, "{out}");
        // runc: runc create failed: invalid container ID format
        assert_one_line_naming(&out.stderr, &["container id", bad]);
        // No state may have been written, under the root or next to it.
        let root = c.rt.root();
        if root.exists() {
            let entries: Vec<_> = std::fs::read_dir(&root).unwrap().collect();
            assert!(entries.is_empty(), "{} has {entries:?}", root.display());
        }
        for e in std::fs::read_dir(root.parent().unwrap()).unwrap() {
            let name = e.unwrap().file_name();
            assert!(
                name == "io" || name == "state",
                "unexpected {name:?} next to the root"
            );
        }
        // The rest of the checks (processes, mounts) with the fixture's own valid id.
        c.assert_clean();
    }
}

#[test]
fn duplicate_id_leaves_the_first_intact() {
    let mut c = Container::new("duplicate_id");
    c.bundle.set_args(&["sleep", "1000"]);
    let pid = c.create_ok();
    let before = c.state();
    let out = c.rt.create(c.bundle.path(), &c.id);
    assert_eq!(out.code(), 1, "{out}");
    // runc: runc create failed: container with given ID already exists
    assert_one_line_naming(&out.stderr, &["exists", &c.id]);
    assert_eq!(c.state(), before);
    assert!(spec_tests::proc::alive(pid));
    c.start_ok();
    assert_eq!(c.status(), "running");
    c.delete_force_ok();
}

#[test]
fn args0_not_found() {
    for (i, arg0) in ["/bin/nonexistent", "nonexistent-in-path"]
        .iter()
        .enumerate()
    {
        let mut c = Container::new(&format!("args0_missing{i}"));
        c.bundle.set_args(&[arg0]);
        c.bundle.write_config();
        // runc checks before create returns:
        //   exec: "/bin/nonexistent": stat /bin/nonexistent: no such file or directory
        //   exec: "nonexistent-in-path": executable file not found in $PATH
        create_fails(&mut c, &[arg0]);
    }
}

#[test]
fn args0_not_executable() {
    let mut c = Container::new("args0_not_exec");
    c.bundle.set_args(&["/etc/passwd"]);
    c.bundle.write_config();
    // runc: exec: "/etc/passwd": permission denied
    create_fails(&mut c, &["/etc/passwd"]);
}

#[test]
fn start_of_running_container() {
    let mut c = Container::new("start_running");
    c.bundle.set_args(&["sleep", "1000"]);
    c.create_ok();
    c.start_ok();
    let out = c.rt.start(&c.id);
    assert_eq!(out.code(), 1, "{out}");
    // runc: cannot start an already running container
    assert_one_line_naming(&out.stderr, &["running"]);
    assert_eq!(c.status(), "running");
    c.delete_force_ok();
}

#[test]
fn start_of_stopped_container() {
    let mut c = Container::new("start_stopped");
    c.bundle.set_args(&["sleep", "1000"]);
    c.create_ok();
    c.start_ok();
    c.kill("KILL").assert_success();
    c.wait_exited();
    let out = c.rt.start(&c.id);
    assert_eq!(out.code(), 1, "{out}");
    // runc: cannot start a container that has stopped
    assert_one_line_naming(&out.stderr, &["stopped"]);
    c.delete_ok();
}

#[test]
fn delete_of_running_container_without_force() {
    let mut c = Container::new("delete_running");
    c.bundle.set_args(&["sleep", "1000"]);
    let pid = c.create_ok();
    c.start_ok();
    let out = c.rt.delete(&c.id);
    assert_eq!(out.code(), 1, "{out}");
    // runc: cannot delete container <id> that is not stopped: running
    assert_one_line_naming(&out.stderr, &[&c.id, "running", "not stopped"]);
    assert_eq!(c.status(), "running");
    assert!(spec_tests::proc::alive(pid));
    c.delete_force_ok();
}

#[test]
fn commands_on_nonexistent_id() {
    let mut c = Container::new("nonexistent");
    for args in [
        vec!["state", c.id.as_str()],
        vec!["kill", c.id.as_str(), "KILL"],
        vec!["delete", c.id.as_str()],
        vec!["start", c.id.as_str()],
        vec!["pause", c.id.as_str()],
    ] {
        let out = c.rt.run_args(&args);
        assert_eq!(out.code(), 1, "{out}");
        // runc: container does not exist
        assert_one_line_naming(&out.stderr, &["does not exist", &c.id]);
    }
    c.assert_clean();
}

#[test]
fn kill_of_stopped_container() {
    let mut c = Container::new("kill_stopped");
    c.bundle.set_args(&["true"]);
    c.create_ok();
    c.start_ok();
    c.wait_exited();
    let out = c.kill("KILL");
    assert_eq!(out.code(), 1, "{out}");
    // runc: container not running
    assert_one_line_naming(&out.stderr, &["not running"]);
    c.delete_ok();
}

#[test]
fn sysctl_not_namespaced() {
    let mut c = Container::new("sysctl_not_ns");
    c.bundle.config["linux"]["sysctl"] = json!({"vm.swappiness": "10"});
    c.bundle.write_config();
    // runc: sysctl "vm.swappiness" is not in a separate kernel namespace
    create_fails(&mut c, &["vm.swappiness"]);
}

#[test]
fn sysctl_hostname_conflicts() {
    let mut c = Container::new("sysctl_hostname");
    c.bundle.config["linux"]["sysctl"] = json!({"kernel.hostname": "x"});
    c.bundle.write_config();
    // runc: sysctl "kernel.hostname" is not allowed as it conflicts with the OCI "hostname" field
    create_fails(&mut c, &["kernel.hostname"]);
}

#[test]
fn unknown_namespace_type() {
    let mut c = Container::new("bad_ns_type");
    c.bundle.add_namespace(json!({"type": "bogus"}));
    c.bundle.write_config();
    // runc: namespace {"bogus" ""} does not exist
    create_fails(&mut c, &["bogus"]);
}

#[test]
fn bind_mount_source_missing() {
    let mut c = Container::new("bind_src_missing");
    c.bundle.add_mount(json!({
        "destination": "/data", "type": "bind", "source": "/nonexistent/src", "options": ["rbind"]
    }));
    c.bundle.write_config();
    // runc: error mounting "/nonexistent/src" to rootfs at "/data": stat /nonexistent/src: ...
    create_fails(&mut c, &["/nonexistent/src"]);
}

#[test]
fn unknown_filesystem_type() {
    let mut c = Container::new("unknown_fstype");
    c.bundle
        .add_mount(json!({"destination": "/data", "type": "nosuchfs", "source": "x"}));
    c.bundle.write_config();
    // runc: error mounting "x" to rootfs at "/data": mount x:/data (via /proc/self/fd/6): no such device
    create_fails(&mut c, &["/data", "nosuchfs"]);
}

#[test]
fn relative_cwd() {
    let mut c = Container::new("relative_cwd");
    c.bundle.config["process"]["cwd"] = json!("relative");
    c.bundle.write_config();
    // runc: Cwd must be an absolute path
    create_fails(&mut c, &["Cwd must be an absolute path", "process.cwd"]);
}

#[test]
fn negative_uid() {
    let mut c = Container::new("negative_uid");
    c.bundle.config["process"]["user"]["uid"] = json!(-1);
    c.bundle.write_config();
    // runc: json: cannot unmarshal number -1 into Go struct field User.process.user.uid of type uint32
    // husk: config.json: uid: invalid value: integer `-1`, expected u32 at line ...
    create_fails(&mut c, &["process.user.uid", " uid: "]);
}

#[test]
fn unknown_rlimit() {
    let mut c = Container::new("unknown_rlimit");
    c.bundle.config["process"]["rlimits"] = json!([{"type": "RLIMIT_BOGUS", "soft": 1, "hard": 1}]);
    c.bundle.write_config();
    // runc: wrong rlimit value: RLIMIT_BOGUS
    create_fails(&mut c, &["RLIMIT_BOGUS"]);
}

#[test]
fn user_namespace_without_mappings() {
    let mut c = Container::new("userns_no_maps");
    c.bundle.add_namespace(json!({"type": "user"}));
    c.bundle.write_config();
    // runc: User namespaces enabled, but no uid mappings found.
    create_fails(&mut c, &["uid mappings", "linux.uidMappings"]);
}
