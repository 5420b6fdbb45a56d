//! The runtime under stress: killed part-way through `create`, and many `create`s racing for
//! one id. Whatever happens, the state stays consistent and `delete` can clean up.

use std::os::unix::process::ExitStatusExt;

use serde_json::json;
use spec_tests::proc;
use spec_tests::runtime::{is_husk, is_runc_1_1};
use spec_tests::{Container, WAIT};

/// husk's steps of `create` (src/fault.rs), in order.
const STEPS: &[&str] = &[
    "mkdir", "state", "cgroup", "clone", "apply", "hooks", "ready", "saved",
];

/// `husk create` is SIGKILLed at each step in turn (through its HUSK_FAULT test hook). Then
/// `state` must not fail in a strange way, `delete --force` must succeed and leave nothing
/// behind, and the id must be usable again.
#[test]
fn create_killed_at_each_step_leaves_nothing_delete_cannot_clean() {
    if !is_husk() {
        eprintln!("skipped: HUSK_FAULT is husk's own test hook; other runtimes have none");
        return;
    }
    for step in STEPS {
        let mut c = Container::new(&format!("fault-{step}"));
        // A hook, so that the "hooks" step is reached.
        c.bundle.config["hooks"] = json!({"prestart": [{"path": "/bin/true"}]});
        c.bundle.set_args(&["sleep", "1000"]);
        c.bundle.write_config();
        let bundle = c.bundle.path().to_str().unwrap().to_owned();
        let mut cmd = c.rt.command(&["create", "--bundle", &bundle, &c.id]);
        cmd.env("HUSK_FAULT", step);
        let out = c.rt.output(cmd);
        assert_eq!(
            out.status.signal(),
            Some(libc::SIGKILL),
            "create was to be killed at step {step}: {out}"
        );

        let st = c.rt.state(&c.id);
        let status = if st.success() {
            let v: serde_json::Value = serde_json::from_str(&st.stdout).unwrap();
            v["status"].as_str().unwrap().to_owned()
        } else {
            assert!(
                st.stderr.contains("does not exist"),
                "step {step}: `state` fails otherwise than with \"does not exist\": {st}"
            );
            "none".to_owned()
        };
        let want = match *step {
            "mkdir" => "none",
            "saved" => "created",
            _ => "stopped",
        };
        assert_eq!(status, want, "status after a kill at step {step}");

        c.rt.delete_force(&c.id).assert_success();
        // Processes the killed create had started end by themselves (they lost their parent)
        // or by the delete; either way they must end.
        for pid in proc::children_of_self() {
            assert!(
                proc::reap(pid, WAIT).is_some(),
                "step {step}: process {pid} still alive after delete --force"
            );
        }
        c.assert_clean();

        // The id is free again.
        c.bundle.config.as_object_mut().unwrap().remove("hooks");
        c.bundle.set_args(&["true"]);
        assert_eq!(c.run_ok(), "", "run after a kill at step {step}");
        c.assert_clean();
    }
}

/// 50 `create`s of one id at once: exactly one wins, the others fail cleanly without touching
/// the winner, which then starts and deletes as usual. runc 1.1.5 fails it: its create checks
/// that the state directory does not exist, then makes it with MkdirAll, and two creates were
/// seen to both win; husk's mkdir(2) decides.
#[test]
fn parallel_creates_of_one_id() {
    if is_runc_1_1() {
        eprintln!("skipped: runc 1.1.5 lets two racing creates of one id both succeed");
        return;
    }
    let mut c = Container::new("clash");
    c.bundle.set_script("echo hello > /shared/out");
    let shared = c.bundle.shared_dir();
    c.bundle.write_config();
    let bundle = c.bundle.path().to_owned();
    let outs: Vec<_> = std::thread::scope(|s| {
        let threads: Vec<_> = (0..50)
            .map(|_| s.spawn(|| c.rt.create(&bundle, &c.id)))
            .collect();
        threads.into_iter().map(|t| t.join().unwrap()).collect()
    });
    let (won, lost): (Vec<_>, Vec<_>) = outs.iter().partition(|o| o.success());
    let shown: Vec<String> = won.iter().map(|o| o.to_string()).collect();
    assert_eq!(won.len(), 1, "exactly one create must win: {shown:#?}");
    for o in &lost {
        assert!(
            o.stderr.contains("exist") && o.stderr.lines().count() == 1,
            "a losing create must fail with one line saying the id exists: {o}"
        );
    }
    c.observe();
    assert_eq!(c.status(), "created");
    c.start_ok();
    c.wait_exited();
    assert_eq!(
        std::fs::read_to_string(shared.join("out")).unwrap(),
        "hello\n"
    );
    c.delete_ok();
}
