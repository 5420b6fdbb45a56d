//! huskd's bridge network and published ports end to end (issue 11): each test starts its own
//! huskd on a bridge and subnet of its own, runs busybox containers on it, and sends traffic
//! only to 127.0.0.1 and to the containers it made. Needs root, busybox-static, curl, `ip`; the
//! builds of huskd, husk-proxy (beside huskd), the shim and husk.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream, UdpSocket};
use std::os::fd::AsRawFd;
use std::process::Command;
use std::time::Duration;

use integration::huskd::{huskd_bin, Huskd};
use integration::{busybox_archive, wait_for, IMAGE};
use serde_json::{json, Value};

/// A bridge name and a /24 of 10.218.0.0/16 for one test of this process (tests of one binary
/// run in parallel, and other binaries' huskds may be up at the same time).
fn bridge_for(tag: u8) -> (String, String) {
    (
        format!("hkn{}x{tag}", std::process::id() % 100_000),
        format!("10.218.{tag}.0/24"),
    )
}

/// Removes the test's bridge when it ends, as an operator would after stopping huskd.
struct BridgeGone(String);

impl Drop for BridgeGone {
    fn drop(&mut self) {
        // Absent already (huskd refused to make it) is fine.
        let _ = Command::new("ip").args(["link", "del", &self.0]).status();
    }
}

fn huskd_on_bridge(name: &str, tag: u8) -> (Huskd, BridgeGone) {
    let (bridge, subnet) = bridge_for(tag);
    let gone = BridgeGone(bridge.clone());
    let h = Huskd::start_with(name, &["--bridge", &bridge, "--bridge-subnet", &subnet]);
    let archive = busybox_archive(&h.dir.join("image"));
    assert_eq!(h.load(&archive).status, 200);
    (h, gone)
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Links whose master is `bridge`: the host ends of its containers' veths.
fn veths_on(bridge: &str) -> Vec<String> {
    let out = Command::new("ip")
        .args(["-o", "link", "show", "master", bridge])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            l.split(": ")
                .nth(1)
                .map(|n| n.split('@').next().unwrap().into())
        })
        .collect()
}

/// Processes of husk-proxy publishing `port` on the host.
fn proxies_for(port: u16) -> Vec<u32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let cmdline = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
        let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
        if args.first().is_some_and(|a| a.ends_with(b"husk-proxy"))
            && args
                .windows(2)
                .any(|w| w[0] == b"-host-port" && w[1] == port.to_string().as_bytes())
        {
            out.push(pid);
        }
    }
    out
}

/// GET / through 127.0.0.1:port, asked again until the server in the container listens
/// (bounded); the reply's body.
fn http_get(port: u16) -> String {
    let mut body = String::new();
    let got = wait_for(Duration::from_secs(20), || {
        let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
            return false;
        };
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        if s.write_all(b"GET / HTTP/1.0\r\n\r\n").is_err() {
            return false;
        }
        let mut reply = String::new();
        if s.read_to_string(&mut reply).is_err() || !reply.starts_with("HTTP/1.") {
            return false;
        }
        body = reply.split("\r\n\r\n").nth(1).unwrap_or_default().into();
        true
    });
    assert!(got, "no HTTP reply through 127.0.0.1:{port}");
    body
}

fn run_detached(h: &Huskd, name: &str, body: Value) -> String {
    let id = h.create(name, &body);
    h.start_ctr(&id);
    id
}

fn pid_of(h: &Huskd, id: &str) -> u32 {
    h.inspect(id)["State"]["Pid"].as_u64().unwrap() as u32
}

/// A UDP echo server bound inside the network namespace of `pid` (a socket stays in the
/// namespace it was made in): the container need not have a UDP server of its own, which
/// busybox-static lacks. Serves until the test process ends.
fn udp_echo_in(pid: u32, port: u16) {
    let ns = std::fs::File::open(format!("/proc/{pid}/ns/net")).unwrap();
    let sock = std::thread::spawn(move || {
        // SAFETY: setns on this thread only, which ends right after binding.
        assert_eq!(
            unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) },
            0
        );
        UdpSocket::bind(("0.0.0.0", port)).unwrap()
    })
    .join()
    .unwrap();
    std::thread::spawn(move || {
        let mut buf = [0u8; 2048];
        while let Ok((n, from)) = sock.recv_from(&mut buf) {
            if sock.send_to(&buf[..n], from).is_err() {
                break;
            }
        }
    });
}

#[test]
fn published_ports_and_the_bridge() {
    let (h, bridge) = huskd_on_bridge("net", 1);
    let (web, udp, half) = (free_port(), free_udp_port(), free_port());
    // The line: --init, -p 127.0.0.1:PORT:80, busybox httpd -f.
    let web_id = run_detached(
        &h,
        "web",
        json!({"Image": IMAGE,
            "Cmd": ["sh", "-c", "mkdir -p /www && echo hello from httpd > /www/index.html && exec httpd -f -p 80 -h /www"],
            "ExposedPorts": {"80/tcp": {}, "5353/udp": {}, "7/tcp": {}},
            "HostConfig": {"Init": true, "PortBindings": {
                "80/tcp": [{"HostIp": "127.0.0.1", "HostPort": web.to_string()}],
                "5353/udp": [{"HostIp": "127.0.0.1", "HostPort": udp.to_string()}],
                "7/tcp": [{"HostIp": "127.0.0.1", "HostPort": half.to_string()}]}}}),
    );
    assert_eq!(http_get(web), "hello from httpd\n");

    // inspect and ps show the address and the ports as Docker does.
    let settings = h.inspect(&web_id)["NetworkSettings"].clone();
    let address = settings["IPAddress"].as_str().unwrap().to_string();
    assert_eq!(address, "10.218.1.2", "{settings}");
    assert_eq!(settings["Gateway"], "10.218.1.1");
    assert_eq!(settings["IPPrefixLen"], 24);
    assert_eq!(
        settings["Ports"]["80/tcp"],
        json!([{"HostIp": "127.0.0.1", "HostPort": web.to_string()}])
    );
    let listed = h.get("/containers/json").json();
    let ports = &listed[0]["Ports"];
    assert!(
        ports.as_array().unwrap().contains(
            &json!({"IP": "127.0.0.1", "PrivatePort": 80, "PublicPort": web, "Type": "tcp"})
        ),
        "{ports}"
    );
    let hosts = h.get(&format!("/containers/{web_id}/json")).json()["HostsPath"]
        .as_str()
        .unwrap()
        .to_string();
    let hostname = h.inspect(&web_id)["Config"]["Hostname"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        std::fs::read_to_string(&hosts)
            .unwrap()
            .contains(&format!("{address}\t{hostname}\n")),
        "/etc/hosts names the container's address"
    );

    // UDP through -p PORT:5353/udp, per client flows: two clients, each gets its own answers.
    udp_echo_in(pid_of(&h, &web_id), 5353);
    let clients = [
        UdpSocket::bind("127.0.0.1:0").unwrap(),
        UdpSocket::bind("127.0.0.1:0").unwrap(),
    ];
    for (i, c) in clients.iter().enumerate() {
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let msg = format!("ping {i}");
        c.send_to(msg.as_bytes(), ("127.0.0.1", udp)).unwrap();
        let mut buf = [0u8; 64];
        let n = c.recv(&mut buf).expect("an echo through the UDP proxy");
        assert_eq!(&buf[..n], msg.as_bytes());
    }

    // Half-close: the client ends its side, and still gets the whole reply, which the
    // server in the container only writes once it has read to the end.
    let exec = h.post(
        &format!("/containers/{web_id}/exec"),
        &json!({"Cmd": ["busybox", "nc", "-ll", "-p", "7", "-e", "sh", "-c", "wc -c; echo end"]}),
    );
    assert_eq!(exec.status, 201, "{}", exec.text());
    let exec_id = exec.json()["Id"].as_str().unwrap().to_string();
    let r = h.post(&format!("/exec/{exec_id}/start"), &json!({"Detach": true}));
    assert_eq!(r.status, 200, "{}", r.text());
    let payload = vec![b'x'; 100_000];
    let mut reply = String::new();
    assert!(
        wait_for(Duration::from_secs(20), || {
            let Ok(mut s) = TcpStream::connect(("127.0.0.1", half)) else {
                return false;
            };
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            if s.write_all(&payload).is_err() || s.shutdown(Shutdown::Write).is_err() {
                return false;
            }
            reply.clear();
            s.read_to_string(&mut reply).is_ok() && !reply.is_empty()
        }),
        "no reply after a half-close"
    );
    assert_eq!(
        reply.split_whitespace().collect::<Vec<_>>(),
        ["100000", "end"]
    );

    // A second container reaches the first by its address over the bridge.
    let client = run_detached(
        &h,
        "client",
        // (busybox-static's wget crashes in its resolver, also on the host: nc it is.)
        json!({"Image": IMAGE, "Cmd": ["sh", "-c",
            format!("printf 'GET / HTTP/1.0\\r\\n\\r\\n' | busybox nc {address} 80")]}),
    );
    assert_eq!(h.wait_exit(&client), 0);
    let logs = h.get(&format!("/containers/{client}/logs?stdout=1"));
    let reply = integration::huskd::stream_of(&logs.body, 1);
    assert!(reply.ends_with("\r\n\r\nhello from httpd\n"), "{reply:?}");

    // --network none: only loopback; the default network mode: eth0 on the bridge.
    for (mode, want) in [("none", "lo\n"), ("default", "eth0\nlo\n")] {
        let id = run_detached(
            &h,
            &format!("ifaces-{mode}"),
            json!({"Image": IMAGE, "Cmd": ["ls", "/sys/class/net"],
                   "HostConfig": {"NetworkMode": mode}}),
        );
        assert_eq!(h.wait_exit(&id), 0);
        let logs = h.get(&format!("/containers/{id}/logs?stdout=1"));
        assert_eq!(integration::huskd::stream_of(&logs.body, 1), want, "{mode}");
    }
    // Exited containers are off the bridge: only the web server's veth is left.
    assert_eq!(veths_on(&bridge.0).len(), 1, "{:?}", veths_on(&bridge.0));

    // Stopping the container stops its proxies and frees its ports and its veth.
    assert_eq!(
        h.post_empty(&format!("/containers/{web_id}/stop?t=2"))
            .status,
        204
    );
    assert!(proxies_for(web).is_empty() && proxies_for(udp).is_empty());
    TcpListener::bind(("127.0.0.1", web)).expect("the TCP port is free after stop");
    UdpSocket::bind(("127.0.0.1", udp)).expect("the UDP port is free after stop");
    assert!(veths_on(&bridge.0).is_empty(), "{:?}", veths_on(&bridge.0));
    assert_eq!(h.inspect(&web_id)["NetworkSettings"]["IPAddress"], "");
    // Started again, it is on the bridge again with its ports.
    h.start_ctr(&web_id);
    assert_eq!(http_get(web), "hello from httpd\n");
    assert_eq!(
        h.delete(&format!("/containers/{web_id}?force=1")).status,
        204
    );
    assert!(proxies_for(web).is_empty());
    assert!(veths_on(&bridge.0).is_empty());
}

/// The proxies outlive huskd as the containers do: after kill -9 and a restart the port is
/// still served, and a stop then frees it (the new huskd stops proxies it did not start).
#[test]
fn ports_survive_a_restart_of_huskd() {
    let (mut h, bridge) = huskd_on_bridge("netrestart", 2);
    let port = free_port();
    let id = run_detached(
        &h,
        "web",
        json!({"Image": IMAGE,
            "Cmd": ["sh", "-c", "mkdir -p /www && echo still here > /www/index.html && exec httpd -f -p 80 -h /www"],
            "HostConfig": {"PortBindings": {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": port.to_string()}]}}}),
    );
    assert_eq!(http_get(port), "still here\n");
    let before = proxies_for(port);
    assert_eq!(before.len(), 1);
    h.kill9_and_restart();
    assert_eq!(proxies_for(port), before, "the proxy is the same process");
    assert_eq!(http_get(port), "still here\n");
    assert_eq!(
        h.post_empty(&format!("/containers/{id}/stop?t=2")).status,
        204
    );
    assert!(proxies_for(port).is_empty(), "the adopted proxy is stopped");
    TcpListener::bind(("127.0.0.1", port)).expect("the port is free after stop");
    assert!(veths_on(&bridge.0).is_empty());
    assert_eq!(h.delete(&format!("/containers/{id}")).status, 204);
}

#[test]
fn bad_network_input_leaves_nothing() {
    let (h, bridge) = huskd_on_bridge("netbad", 3);
    let count = || {
        h.get("/containers/json?all=1")
            .json()
            .as_array()
            .unwrap()
            .len()
    };
    let before = count();
    let create = |name: &str, host: Value| {
        h.post(
            &format!("/containers/create?name={name}"),
            &json!({"Image": IMAGE, "Cmd": ["true"], "HostConfig": host}),
        )
    };
    // Refused at create, naming what is wrong; no container made.
    let bad = [
        (
            json!({"PortBindings": {"80/tcp": [{"HostPort": "70000"}]}}),
            "70000",
        ),
        (
            json!({"PortBindings": {"80/tcp": [{"HostPort": "0"}]}}),
            "out of range",
        ),
        (
            json!({"PortBindings": {"80/sctp": [{"HostPort": "80"}]}}),
            "sctp",
        ),
        (
            json!({"NetworkMode": "none", "PortBindings": {"80/tcp": [{"HostPort": "8080"}]}}),
            "conflicting options",
        ),
        (json!({"NetworkMode": "overlay"}), "overlay"),
    ];
    for (host, says) in bad {
        let r = create("bad", host.clone());
        assert_eq!(r.status, 400, "{host}: {}", r.text());
        assert!(r.message().contains(says), "{host}: {}", r.message());
        assert!(!r.message().contains('\n'), "one line: {}", r.message());
    }
    assert_eq!(count(), before, "a refused create left a container");

    // A host port in use: the start fails with dockerd's words, and neither a proxy, nor a
    // veth, nor the address is left; the container is there, not running.
    let held = TcpListener::bind("127.0.0.1:0").unwrap();
    let busy = held.local_addr().unwrap().port();
    let free = free_port();
    let r = create(
        "busy",
        json!({"PortBindings": {
            "80/tcp": [{"HostIp": "127.0.0.1", "HostPort": free.to_string()}],
            "81/tcp": [{"HostIp": "127.0.0.1", "HostPort": busy.to_string()}]}}),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let r = h.post_empty("/containers/busy/start");
    assert_eq!(r.status, 500, "{}", r.text());
    let msg = r.message();
    assert!(
        msg.starts_with("driver failed programming external connectivity on endpoint busy (")
            && msg.contains(&format!("127.0.0.1:{busy}"))
            && msg.contains("address already in use"),
        "{msg}"
    );
    assert!(proxies_for(free).is_empty() && proxies_for(busy).is_empty());
    TcpListener::bind(("127.0.0.1", free)).expect("the other port is free again");
    assert!(veths_on(&bridge.0).is_empty());
    assert_eq!(h.inspect("busy")["State"]["Running"], false);
    assert!(h.shims().is_empty(), "a shim left: {:?}", h.shims());
    drop(held);
    assert_eq!(h.delete("/containers/busy").status, 204);
    // The address was given back: the next container gets the first one again.
    let r = h.post(
        "/containers/create?name=next",
        &json!({"Image": IMAGE, "Cmd": ["sleep", "1000"]}),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    h.start_ctr("next");
    assert_eq!(
        h.inspect("next")["NetworkSettings"]["IPAddress"],
        "10.218.3.2"
    );
    assert_eq!(h.delete("/containers/next?force=1").status, 204);
    assert!(veths_on(&bridge.0).is_empty());
}

/// A bridge subnet that overlaps a route of the host: huskd refuses to start, naming both,
/// and makes no bridge.
#[test]
fn an_overlapping_bridge_subnet_is_refused() {
    let (bridge, _) = bridge_for(4);
    let _gone = BridgeGone(bridge.clone());
    // A bridge of the test's own carries the host route (this kernel has no dummy links).
    let dummy = format!("hkd{}x4", std::process::id() % 100_000);
    let _dummy_gone = BridgeGone(dummy.clone());
    let ip = |args: &[&str]| assert!(Command::new("ip").args(args).status().unwrap().success());
    ip(&["link", "add", &dummy, "type", "bridge"]);
    ip(&["addr", "add", "10.218.4.1/25", "dev", &dummy]);
    ip(&["link", "set", &dummy, "up"]);
    let dir = std::env::temp_dir().join(format!("huskd-overlap-{}", std::process::id()));
    let out = Command::new(huskd_bin())
        .arg("--socket")
        .arg(dir.join("s.sock"))
        .arg("--root")
        .arg(dir.join("root"))
        .arg("--state")
        .arg(dir.join("state"))
        .args(["--bridge", &bridge, "--bridge-subnet", "10.218.4.0/24"])
        .output()
        .unwrap();
    // Whatever huskd made of its directories before refusing; a failure here fails nothing.
    let _ = std::fs::remove_dir_all(&dir);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("subnet 10.218.4.0/24 overlaps the host route 10.218.4.0/25"),
        "{err}"
    );
    assert!(
        !Command::new("ip")
            .args(["link", "show", &bridge])
            .output()
            .unwrap()
            .status
            .success(),
        "a bridge was made"
    );
}
