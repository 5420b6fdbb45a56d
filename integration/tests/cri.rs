//! containerd 1.6's CRI plugin running a pod through containerd-shim-husk-v2 (runtime handler
//! `husk`), driven over containerd's gRPC socket by a CRI v1 client, as the kubelet drives it.
//! The pod uses the host's network, so no CNI plugin is needed.

use std::{fs, future::Future, path::Path, time::Duration};

use integration::{wait_for, Containerd, Options, CRI_HANDLER, CRI_NAMESPACE, IMAGE, PAUSE_IMAGE};
use k8s_cri::v1::{
    image_service_client::ImageServiceClient, runtime_service_client::RuntimeServiceClient, *,
};
use tonic::{
    transport::{Channel, Endpoint, Uri},
    Response, Status,
};

/// How long one CRI call may take; tonic fails it after that.
const CALL_TIMEOUT: Duration = Duration::from_secs(60);

/// A blocking CRI client: each call runs to its end on the calling thread (a current-thread
/// runtime, which drives the connection only inside a call).
struct Cri {
    rt: tokio::runtime::Runtime,
    runtime: RuntimeServiceClient<Channel>,
    images: ImageServiceClient<Channel>,
}

impl Cri {
    fn connect(sock: &Path) -> Cri {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let path = sock.to_path_buf();
        // The URI is a placeholder: the connector dials containerd's unix socket.
        let channel = rt
            .block_on(
                Endpoint::from_static("http://[::]")
                    .connect_timeout(Duration::from_secs(10))
                    .timeout(CALL_TIMEOUT)
                    .connect_with_connector(tower::service_fn(move |_: Uri| {
                        let path = path.clone();
                        async move {
                            let s = tokio::net::UnixStream::connect(path).await?;
                            Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(s))
                        }
                    })),
            )
            .unwrap_or_else(|e| panic!("connect to {}: {e}", sock.display()));
        Cri {
            rt,
            runtime: RuntimeServiceClient::new(channel.clone()),
            images: ImageServiceClient::new(channel),
        }
    }

    /// One RuntimeService call.
    fn call<T, Fut>(
        &self,
        call: impl FnOnce(RuntimeServiceClient<Channel>) -> Fut,
    ) -> Result<T, Status>
    where
        Fut: Future<Output = Result<Response<T>, Status>>,
    {
        self.rt
            .block_on(call(self.runtime.clone()))
            .map(Response::into_inner)
    }

    fn image_present(&self, name: &str) -> bool {
        let req = ImageStatusRequest {
            image: Some(ImageSpec {
                image: name.to_string(),
                ..Default::default()
            }),
            verbose: false,
        };
        let mut c = self.images.clone();
        self.rt
            .block_on(c.image_status(req))
            .is_ok_and(|r| r.into_inner().image.is_some())
    }

    fn container_status(&self, id: &str) -> ContainerStatus {
        let id = id.to_string();
        self.call(|mut c| async move {
            c.container_status(ContainerStatusRequest {
                container_id: id,
                verbose: false,
            })
            .await
        })
        .expect("ContainerStatus")
        .status
        .expect("ContainerStatus: no status")
    }

    /// CreateContainer and StartContainer in `pod`; returns the container's id.
    fn run_container(
        &self,
        pod: &str,
        pod_config: &PodSandboxConfig,
        config: ContainerConfig,
    ) -> String {
        let req = CreateContainerRequest {
            pod_sandbox_id: pod.to_string(),
            config: Some(config),
            sandbox_config: Some(pod_config.clone()),
        };
        let id = self
            .call(|mut c| async move { c.create_container(req).await })
            .expect("CreateContainer")
            .container_id;
        let container_id = id.clone();
        self.call(|mut c| async move {
            c.start_container(StartContainerRequest { container_id })
                .await
        })
        .expect("StartContainer");
        id
    }

    fn exec_sync(&self, id: &str, cmd: &[&str]) -> ExecSyncResponse {
        let req = ExecSyncRequest {
            container_id: id.to_string(),
            cmd: cmd.iter().map(|s| s.to_string()).collect(),
            timeout: 30,
        };
        self.call(|mut c| async move { c.exec_sync(req).await })
            .unwrap_or_else(|e| panic!("ExecSync {cmd:?}: {e}"))
    }
}

/// Host network (no CNI), IPC shared in the pod, and the pid namespace `pid`.
fn namespaces(pid: NamespaceMode) -> Option<NamespaceOption> {
    Some(NamespaceOption {
        network: NamespaceMode::Node as i32,
        pid: pid as i32,
        ipc: NamespaceMode::Pod as i32,
        ..Default::default()
    })
}

fn container_config(name: &str, command: &[&str], pid: NamespaceMode) -> ContainerConfig {
    ContainerConfig {
        metadata: Some(ContainerMetadata {
            name: name.to_string(),
            attempt: 0,
        }),
        image: Some(ImageSpec {
            image: IMAGE.to_string(),
            ..Default::default()
        }),
        command: command.iter().map(|s| s.to_string()).collect(),
        log_path: format!("{name}.log"),
        linux: Some(LinuxContainerConfig {
            security_context: Some(LinuxContainerSecurityContext {
                namespace_options: namespaces(pid),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Waits until the CRI log `path` has `line` from stdout.
#[track_caller]
fn wait_for_log(path: &Path, line: &str) {
    let needle = format!(" stdout F {line}\n");
    assert!(
        wait_for(Duration::from_secs(20), || fs::read_to_string(path)
            .is_ok_and(|l| l.contains(&needle))),
        "{line:?} never reached {}: {:?}",
        path.display(),
        fs::read_to_string(path)
    );
}

/// The shims serving `c`, each checked to be ours.
fn our_shims(c: &Containerd) -> Vec<i32> {
    let shims = c.shims();
    for pid in &shims {
        let argv0 = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let argv0 = String::from_utf8_lossy(argv0.split(|b| *b == 0).next().unwrap_or_default());
        assert!(
            argv0.ends_with("containerd-shim-husk-v2"),
            "shim {pid} is {argv0:?}, not ours"
        );
    }
    shims
}

/// Waits until the CRI plugin is ready and has the imported images.
fn wait_ready(cri: &Cri) {
    // The plugin initializes after containerd serves, and learns of imported images from
    // their events.
    assert!(
        wait_for(Duration::from_secs(30), || cri
            .call(|mut c| async move { c.status(StatusRequest { verbose: false }).await })
            .is_ok_and(|s| s.status.is_some_and(|s| s
                .conditions
                .iter()
                .any(|c| c.r#type == "RuntimeReady" && c.status)))),
        "the CRI plugin never reported RuntimeReady"
    );
    assert!(
        wait_for(Duration::from_secs(30), || cri.image_present(PAUSE_IMAGE)
            && cri.image_present(IMAGE)),
        "the CRI plugin never saw the imported images"
    );
}

/// A containerd with the CRI plugin, and a client of it, ready.
fn start(name: &str) -> (Containerd, Cri) {
    let c = Containerd::start_with(
        name,
        Options {
            cri: true,
            ..Options::default()
        },
    );
    let cri = Cri::connect(&c.sock);
    wait_ready(&cri);
    (c, cri)
}

/// A pod on the host's network whose containers log below `logs`.
fn pod_config(logs: &Path) -> PodSandboxConfig {
    fs::create_dir_all(logs).unwrap();
    PodSandboxConfig {
        metadata: Some(PodSandboxMetadata {
            name: "pod".to_string(),
            uid: format!("uid-{}", std::process::id()),
            namespace: "default".to_string(),
            attempt: 0,
        }),
        log_directory: logs.to_string_lossy().into_owned(),
        linux: Some(LinuxPodSandboxConfig {
            security_context: Some(LinuxSandboxSecurityContext {
                namespace_options: namespaces(NamespaceMode::Pod),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

impl Cri {
    /// RunPodSandbox with our runtime handler; returns the pod's id.
    fn run_pod(&self, config: &PodSandboxConfig) -> String {
        let req = RunPodSandboxRequest {
            config: Some(config.clone()),
            runtime_handler: CRI_HANDLER.to_string(),
        };
        self.call(|mut c| async move { c.run_pod_sandbox(req).await })
            .expect("RunPodSandbox")
            .pod_sandbox_id
    }

    fn pod_state(&self, pod: &str) -> i32 {
        let pod_sandbox_id = pod.to_string();
        self.call(|mut c| async move {
            c.pod_sandbox_status(PodSandboxStatusRequest {
                pod_sandbox_id,
                verbose: false,
            })
            .await
        })
        .expect("PodSandboxStatus")
        .status
        .expect("PodSandboxStatus: no status")
        .state
    }

    fn stop_pod(&self, pod: &str) {
        let pod_sandbox_id = pod.to_string();
        self.call(|mut c| async move {
            c.stop_pod_sandbox(StopPodSandboxRequest { pod_sandbox_id })
                .await
        })
        .expect("StopPodSandbox");
    }

    /// RemovePodSandbox, after which the plugin knows no container.
    fn remove_pod(&self, pod: &str) {
        let pod_sandbox_id = pod.to_string();
        self.call(|mut c| async move {
            c.remove_pod_sandbox(RemovePodSandboxRequest { pod_sandbox_id })
                .await
        })
        .expect("RemovePodSandbox");
        assert_eq!(
            self.container_ids(),
            Vec::<String>::new(),
            "containers left"
        );
    }

    /// The ids of every container the plugin knows, sorted.
    fn container_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self
            .call(|mut c| async move {
                c.list_containers(ListContainersRequest { filter: None })
                    .await
            })
            .expect("ListContainers")
            .containers
            .into_iter()
            .map(|c| c.id)
            .collect();
        ids.sort();
        ids
    }
}

#[test]
fn pod_with_two_containers_runs_under_one_shim() {
    let (c, cri) = start("cri");
    let logs = c.dir.join("pod-logs");
    let pod_config = pod_config(&logs);
    let pod = cri.run_pod(&pod_config);
    let shims = our_shims(&c);
    assert_eq!(shims.len(), 1, "shims after RunPodSandbox: {shims:?}");
    assert_eq!(cri.pod_state(&pod), PodSandboxState::SandboxReady as i32);

    // `worker` has a pid namespace of its own, and ends with status 7 once an exec has written
    // to its FIFO and exited; `sleeper` shares the pod's, and runs until the pod stops.
    let ids: Vec<String> = [
        container_config(
            "worker",
            &[
                "sh",
                "-c",
                "busybox mkfifo /go; echo started; cat /go; exit 7",
            ],
            NamespaceMode::Container,
        ),
        container_config("sleeper", &["sleep", "2147483647"], NamespaceMode::Pod),
    ]
    .into_iter()
    .map(|config| cri.run_container(&pod, &pod_config, config))
    .collect();
    let (worker, sleeper) = (&ids[0], &ids[1]);
    // husk runs them (its root for the CRI namespace is shared, so checked by id).
    let root = Path::new("/run/containerd/husk").join(CRI_NAMESPACE);
    for id in ids.iter().chain([&pod]) {
        assert!(root.join(id).exists(), "husk does not know {id}");
        let cgroup = Path::new("/sys/fs/cgroup/pids")
            .join(CRI_NAMESPACE)
            .join(id);
        assert!(cgroup.exists(), "no cgroup {}", cgroup.display());
    }
    assert_eq!(
        our_shims(&c),
        shims,
        "the pod's containers got another shim"
    );
    for id in &ids {
        assert_eq!(
            cri.container_status(id).state,
            ContainerState::ContainerRunning as i32
        );
    }

    let out = cri.exec_sync(worker, &["sh", "-c", "echo out; echo err >&2; exit 3"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "out\n");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "err\n");
    assert_eq!(out.exit_code, 3);
    // Each container sees its own pid namespace: the worker's shell, the pod's pause.
    let out = cri.exec_sync(worker, &["cat", "/proc/1/cmdline"]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("exit 7"),
        "worker's pid 1: {:?}",
        String::from_utf8_lossy(&out.stdout)
    );
    let out = cri.exec_sync(sleeper, &["cat", "/proc/1/cmdline"]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("exit 0"),
        "sleeper's pid 1 (the pause): {:?}",
        String::from_utf8_lossy(&out.stdout)
    );

    // Stats: the shim's cgroup v1 metrics, as the CRI plugin decodes them.
    let container_id = worker.clone();
    let stats = cri
        .call(|mut c| async move {
            c.container_stats(ContainerStatsRequest { container_id })
                .await
        })
        .expect("ContainerStats")
        .stats
        .expect("ContainerStats: no stats");
    let memory = stats.memory.expect("no memory stats");
    assert!(
        memory.working_set_bytes.is_some_and(|v| v.value > 0),
        "memory: {memory:?}"
    );
    let cpu = stats.cpu.expect("no cpu stats");
    assert!(
        cpu.usage_core_nano_seconds.is_some_and(|v| v.value > 0),
        "cpu: {cpu:?}"
    );
    let pod_sandbox_id = pod.clone();
    let listed = cri
        .call(|mut c| async move {
            c.list_container_stats(ListContainerStatsRequest {
                filter: Some(ContainerStatsFilter {
                    pod_sandbox_id,
                    ..Default::default()
                }),
            })
            .await
        })
        .expect("ListContainerStats")
        .stats;
    let mut listed: Vec<String> = listed
        .iter()
        .filter_map(|s| Some(s.attributes.as_ref()?.id.clone()))
        .collect();
    listed.sort();
    let mut expected = ids.clone();
    expected.sort();
    assert_eq!(listed, expected, "ListContainerStats of the pod");

    // A resource update reaches the container's cgroup, through the shim's Update.
    let req = UpdateContainerResourcesRequest {
        container_id: worker.clone(),
        linux: Some(LinuxContainerResources {
            memory_limit_in_bytes: 64 << 20,
            ..Default::default()
        }),
        ..Default::default()
    };
    cri.call(|mut c| async move { c.update_container_resources(req).await })
        .expect("UpdateContainerResources");
    let limit = Path::new("/sys/fs/cgroup/memory")
        .join(CRI_NAMESPACE)
        .join(worker)
        .join("memory.limit_in_bytes");
    assert_eq!(
        fs::read_to_string(&limit).unwrap_or_default().trim(),
        (64 << 20).to_string()
    );

    // The worker ends: its status shows it, with its exit code, and its output reached the
    // CRI log. The FIFO is there once "started" is logged. The exec keeps it open until it
    // exits, so that the worker, its pid namespace's init, ends only then: the end of that
    // init kills what is left in the namespace, which would make the exec's status 137.
    let log = logs.join("worker.log");
    wait_for_log(&log, "started");
    let out = cri.exec_sync(worker, &["sh", "-c", "exec > /go; echo go"]);
    assert_eq!(out.exit_code, 0, "writing to the FIFO: {out:?}");
    assert!(
        wait_for(Duration::from_secs(20), || cri
            .container_status(worker)
            .state
            == ContainerState::ContainerExited as i32),
        "worker never exited: {:?}",
        cri.container_status(worker)
    );
    assert_eq!(cri.container_status(worker).exit_code, 7);
    wait_for_log(&log, "go");
    assert_eq!(
        cri.container_status(sleeper).state,
        ContainerState::ContainerRunning as i32
    );
    assert_eq!(our_shims(&c), shims, "a container's exit changed the shims");

    // StopContainer with a grace period, as the kubelet stops one container: SIGTERM (the
    // image names no stop signal), which this one traps to exit 0, and RemoveContainer. Its
    // background sleep outlives its shell in the pod's pid namespace until the runtime's
    // delete.
    let graceful = cri.run_container(
        &pod,
        &pod_config,
        container_config(
            "graceful",
            &[
                "sh",
                "-c",
                "trap 'exit 0' TERM; echo up; sleep 2147483647 & wait",
            ],
            NamespaceMode::Pod,
        ),
    );
    assert_eq!(our_shims(&c), shims, "a third container got another shim");
    wait_for_log(&logs.join("graceful.log"), "up");
    let container_id = graceful.clone();
    cri.call(|mut c| async move {
        c.stop_container(StopContainerRequest {
            container_id,
            timeout: 20,
        })
        .await
    })
    .expect("StopContainer");
    let status = cri.container_status(&graceful);
    assert_eq!(
        (status.state, status.exit_code),
        (ContainerState::ContainerExited as i32, 0),
        "{status:?}"
    );
    let container_id = graceful.clone();
    cri.call(|mut c| async move {
        c.remove_container(RemoveContainerRequest { container_id })
            .await
    })
    .expect("RemoveContainer");
    assert!(
        !root.join(&graceful).exists(),
        "husk still knows {graceful}"
    );
    // Its cgroup could go only once the orphaned sleep was gone too.
    let cgroup = Path::new("/sys/fs/cgroup/pids")
        .join(CRI_NAMESPACE)
        .join(&graceful);
    assert!(!cgroup.exists(), "cgroup left: {}", cgroup.display());
    let mut expected = ids.clone();
    expected.sort();
    assert_eq!(
        cri.container_ids(),
        expected,
        "containers after RemoveContainer"
    );
    assert_eq!(
        our_shims(&c),
        shims,
        "a removed container changed the shims"
    );

    cri.stop_pod(&pod);
    assert_eq!(
        cri.container_status(sleeper).state,
        ContainerState::ContainerExited as i32
    );
    // The stopped pod's tasks are deleted, and with the last of them goes the shim.
    assert!(
        wait_for(Duration::from_secs(10), || c.shims().is_empty()),
        "shims left after StopPodSandbox: {:?}",
        c.shims()
    );
    cri.remove_pod(&pod);
    c.assert_no_shim_or_mount_left();
    for id in ids.iter().chain([&pod]) {
        assert!(!root.join(id).exists(), "husk still knows {id}");
        // containerd's default spec puts each container's cgroup at /<namespace>/<id>.
        let cgroup = Path::new("/sys/fs/cgroup/pids")
            .join(CRI_NAMESPACE)
            .join(id);
        assert!(!cgroup.exists(), "cgroup left: {}", cgroup.display());
    }
}

/// containerd killed with SIGKILL under a running pod: the pod and its container keep running
/// in their shim, and the restarted CRI plugin finds them there, execs into the container, and
/// stops and removes the pod.
#[test]
fn pod_survives_containerd_kill9() {
    let (mut c, cri) = start("crirestart");
    let pod_config = pod_config(&c.dir.join("pod-logs"));
    let pod = cri.run_pod(&pod_config);
    let container = cri.run_container(
        &pod,
        &pod_config,
        container_config(
            "sleeper",
            &["sleep", "2147483647"],
            NamespaceMode::Container,
        ),
    );
    let shims = our_shims(&c);
    assert_eq!(shims.len(), 1, "shims: {shims:?}");
    drop(cri);

    c.kill9_and_restart();
    let cri = Cri::connect(&c.sock);
    wait_ready(&cri);
    assert_eq!(our_shims(&c), shims, "the restart changed the shims");
    assert_eq!(cri.pod_state(&pod), PodSandboxState::SandboxReady as i32);
    assert_eq!(
        cri.container_status(&container).state,
        ContainerState::ContainerRunning as i32
    );
    let out = cri.exec_sync(&container, &["echo", "still here"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "still here\n");
    assert_eq!(out.exit_code, 0);

    cri.stop_pod(&pod);
    assert!(
        wait_for(Duration::from_secs(10), || c.shims().is_empty()),
        "shims left after StopPodSandbox: {:?}",
        c.shims()
    );
    cri.remove_pod(&pod);
    c.assert_no_shim_or_mount_left();
}

/// containerd 1.7, unpacked beside Debian's 1.6 by scripts/install-containerd17.sh.
const CONTAINERD_17: &str = "/var/cache/husk/containerd-1.7/usr/bin/containerd";

/// A containerd with the CRI plugin whose handler has `options`, and a ready client.
fn start_with_options(
    name: &str,
    options: String,
    containerd: Option<std::path::PathBuf>,
) -> (Containerd, Cri) {
    let c = Containerd::start_with(
        name,
        Options {
            cri: true,
            cri_options: Some(options),
            containerd,
            ..Options::default()
        },
    );
    let cri = Cri::connect(&c.sock);
    wait_ready(&cri);
    (c, cri)
}

/// A pod of one container runs, with husk keeping its state under `root` (runc's option Root,
/// which the shim took from the handler's options), and is stopped and removed.
fn pod_under_root(c: &Containerd, cri: &Cri, root: &Path) {
    let pod_config = pod_config(&c.dir.join("pod-logs"));
    let pod = cri.run_pod(&pod_config);
    let id = cri.run_container(
        &pod,
        &pod_config,
        container_config("sleeper", &["sleep", "2147483647"], NamespaceMode::Pod),
    );
    assert_eq!(our_shims(c).len(), 1);
    for id in [&pod, &id] {
        let state = root.join(CRI_NAMESPACE).join(id);
        assert!(state.is_dir(), "husk keeps no state in {}", state.display());
    }
    let out = cri.exec_sync(&id, &["echo", "here"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "here\n");
    cri.stop_pod(&pod);
    cri.remove_pod(&pod);
    c.assert_no_shim_or_mount_left();
    let left: Vec<_> = fs::read_dir(root.join(CRI_NAMESPACE))
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(
        left.is_empty(),
        "husk state left in {}: {left:?}",
        root.display()
    );
}

/// containerd 1.6's CRI plugin sends a handler of another runtime type than runc's only its
/// options' TypeUrl and ConfigPath: runc's options are read from the TOML file ConfigPath names.
#[test]
fn handler_options_from_config_path_reach_the_shim() {
    let name = "cri-cfgpath";
    let dir = Containerd::dir_of(name);
    let file = dir.join("husk-options.toml");
    let root = dir.join("husk-root");
    let (c, cri) = start_with_options(name, format!("  ConfigPath = \"{}\"", file.display()), None);
    fs::write(&file, format!("Root = \"{}\"\n", root.display())).unwrap();
    pod_under_root(&c, &cri, &root);
}

/// containerd 1.7 sends the handler's options table itself (ConfigBody) when it has no
/// ConfigPath: runc's options can be written there as for runc's type.
#[test]
fn handler_options_inline_reach_the_shim_with_containerd_1_7() {
    if !Path::new(CONTAINERD_17).exists() {
        println!("skipped: no containerd 1.7 at {CONTAINERD_17} (scripts/install-containerd17.sh)");
        return;
    }
    let name = "cri-cfgbody";
    let root = Containerd::dir_of(name).join("husk-root");
    let (c, cri) = start_with_options(
        name,
        format!("  Root = \"{}\"", root.display()),
        Some(CONTAINERD_17.into()),
    );
    pod_under_root(&c, &cri, &root);
}

/// A key that is not one of runc's options fails RunPodSandbox with one line naming it, and
/// leaves no shim and no container.
#[test]
fn an_unknown_handler_option_fails_the_pod_naming_it() {
    let name = "cri-badopt";
    let file = Containerd::dir_of(name).join("husk-options.toml");
    let (c, cri) = start_with_options(name, format!("  ConfigPath = \"{}\"", file.display()), None);
    fs::write(&file, "SystemdCgrop = true\n").unwrap();
    let req = RunPodSandboxRequest {
        config: Some(pod_config(&c.dir.join("pod-logs"))),
        runtime_handler: CRI_HANDLER.to_string(),
    };
    let e = cri
        .call(|mut c| async move { c.run_pod_sandbox(req).await })
        .expect_err("RunPodSandbox with an unknown option");
    println!("RunPodSandbox: {}", e.message());
    assert!(
        e.message().contains(&format!(
            "ConfigPath {}: unknown option \"SystemdCgrop\"",
            file.display()
        )),
        "{e}"
    );
    c.assert_no_shim_or_mount_left();
    assert_eq!(cri.container_ids(), Vec::<String>::new());
}

/// `systemctl show -p NAME... UNIT`, as NAME=VALUE lines.
fn unit_show(unit: &str, props: &[&str]) -> String {
    let mut cmd = std::process::Command::new("timeout");
    cmd.args(["-k", "5", "30", "systemctl", "show"]);
    for p in props {
        cmd.arg("-p").arg(p);
    }
    let out = cmd.arg(unit).output().expect("systemctl");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// SystemdCgroup in the handler's options (a file for containerd 1.6, inline for 1.7), and a
/// kubelet's systemd cgroup parent: the CRI plugin makes each cgroupsPath
/// `system.slice:cri-containerd:ID`, the shim gives husk `--systemd-cgroup`, and the sandbox and
/// the container each run in their scope, the container's with its memory limit as MemoryMax.
/// Stopping and removing the pod removes both scopes. Run in the v2 guest with systemd as PID 1
/// (scripts/v2vm/containerd-systemd.sh).
fn pod_in_systemd_scopes(c: &Containerd, cri: &Cri) {
    const LIMIT: i64 = 64 << 20;
    let mut pod_config = pod_config(&c.dir.join("pod-logs"));
    pod_config.linux.as_mut().unwrap().cgroup_parent = "system.slice".to_string();
    let pod = cri.run_pod(&pod_config);
    let mut config = container_config("sleeper", &["sleep", "2147483647"], NamespaceMode::Pod);
    config.linux.as_mut().unwrap().resources = Some(LinuxContainerResources {
        memory_limit_in_bytes: LIMIT,
        ..Default::default()
    });
    let id = cri.run_container(&pod, &pod_config, config);
    assert_eq!(our_shims(c).len(), 1);
    let scope = |id: &str| format!("cri-containerd-{id}.scope");
    let dir = |id: &str| Path::new("/sys/fs/cgroup/system.slice").join(scope(id));
    for id in [&pod, &id] {
        let props = unit_show(&scope(id), &["ActiveState", "Delegate"]);
        for want in ["ActiveState=active", "Delegate=yes"] {
            assert!(
                props.lines().any(|l| l == want),
                "{}: {want} not in {props}",
                scope(id)
            );
        }
        let procs = fs::read_to_string(dir(id).join("cgroup.procs")).unwrap();
        assert!(!procs.trim().is_empty(), "no process in {}", scope(id));
        println!("{}: {}", scope(id), props.replace('\n', " "));
    }
    assert_eq!(
        unit_show(&scope(&id), &["MemoryMax"]),
        format!("MemoryMax={LIMIT}\n")
    );
    // On cgroup v2 the CRI plugin gives each container a cgroup namespace: an exec sees its
    // scope as the root, which it is only if the exec joined the scope.
    let out = cri.exec_sync(&id, &["cat", "/proc/self/cgroup"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "0::/\n");
    let ns = |pid: &str| fs::read_link(format!("/proc/{pid}/ns/cgroup")).unwrap();
    let procs = fs::read_to_string(dir(&id).join("cgroup.procs")).unwrap();
    let init = procs.lines().next().unwrap().to_string();
    assert_ne!(
        ns(&init),
        ns("self"),
        "the container has no cgroup namespace"
    );
    cri.stop_pod(&pod);
    cri.remove_pod(&pod);
    c.assert_no_shim_or_mount_left();
    for id in [&pod, &id] {
        assert!(
            wait_for(Duration::from_secs(10), || !dir(id).exists()
                && unit_show(&scope(id), &["LoadState"])
                    == "LoadState=not-found\n"),
            "{} left after RemovePodSandbox",
            scope(id)
        );
    }
}

#[test]
fn systemd_cgroup_from_a_config_path_puts_the_pod_in_scopes() {
    if let Some(why) = integration::systemd_skip_reason() {
        println!("skipped: {why}");
        return;
    }
    let name = "cri-sd-path";
    let file = Containerd::dir_of(name).join("husk-options.toml");
    let (c, cri) = start_with_options(name, format!("  ConfigPath = \"{}\"", file.display()), None);
    fs::write(&file, "SystemdCgroup = true\n").unwrap();
    pod_in_systemd_scopes(&c, &cri);
}

#[test]
fn systemd_cgroup_inline_with_containerd_1_7_puts_the_pod_in_scopes() {
    if let Some(why) = integration::systemd_skip_reason() {
        println!("skipped: {why}");
        return;
    }
    if !Path::new(CONTAINERD_17).exists() {
        println!("skipped: no containerd 1.7 at {CONTAINERD_17} (scripts/install-containerd17.sh)");
        return;
    }
    let (c, cri) = start_with_options(
        "cri-sd-body",
        "  SystemdCgroup = true".to_string(),
        Some(CONTAINERD_17.into()),
    );
    pod_in_systemd_scopes(&c, &cri);
}
