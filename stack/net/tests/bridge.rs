//! The bridge and containers on it, for real: bridges, veths and network namespaces made
//! through netlink, traffic between namespaces the test made and from the host to them.

mod common;

use common::*;
use husk_net::{Error, Net, Store};

fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("net.redb")).unwrap();
    (dir, store)
}

#[test]
fn two_containers_reach_each_other_and_the_host_reaches_both() {
    if !can_run("two_containers_reach_each_other_and_the_host_reaches_both") {
        return;
    }
    let rt = rt();
    let net = rt.block_on(async { Net::new() }).unwrap();
    let (bridge, _guard) = make_bridge(&rt, &net, 1);
    assert_eq!(bridge.gateway.to_string(), "10.217.1.1");
    assert!(link_exists(&bridge.name));
    let (_dir, store) = store();
    let (a, b) = (Netns::new(), Netns::new());
    // "a" is given as a container's would be: /proc/PID/ns/net of a process inside it (a
    // holder that the guard kills; the namespace stays held by `a` too).
    let holder = spawn(a.busybox(&["sleep", "600"]));
    let a_path = format!("/proc/{}/ns/net", holder.0.id());
    let at_a = rt
        .block_on(net.attach(&bridge, &store, "a", a_path.as_ref()))
        .unwrap();
    let at_b = rt
        .block_on(net.attach(&bridge, &store, "b", &b.path()))
        .unwrap();
    assert_eq!(at_a.address.to_string(), "10.217.1.2");
    assert_eq!(at_b.address.to_string(), "10.217.1.3");
    for at in [&at_a, &at_b] {
        assert!(link_exists(&at.veth), "{}", at.veth);
        let master = std::fs::read_link(format!("/sys/class/net/{}/master", at.veth)).unwrap();
        assert!(master.ends_with(&bridge.name), "{}", master.display());
    }

    let addr = text(&a.run(&["ip", "-4", "addr", "show", "eth0"]));
    assert!(addr.contains("inet 10.217.1.2/24"), "{addr}");
    assert!(addr.contains("UP"), "{addr}");
    let route = text(&a.run(&["ip", "route"]));
    assert!(route.contains("default via 10.217.1.1 dev eth0"), "{route}");
    let lo = text(&a.run(&["ip", "link", "show", "lo"]));
    assert!(lo.contains("UP"), "{lo}");

    let (ip_a, ip_b) = (at_a.address.to_string(), at_b.address.to_string());
    assert!(a.pings(&ip_b, 3), "a -> b");
    assert!(b.pings(&ip_a, 3), "b -> a");
    assert!(a.pings("10.217.1.1", 3), "a -> gateway");
    assert!(host_pings(&ip_a, 3), "host -> a");
    assert!(host_pings(&ip_b, 3), "host -> b");

    assert_eq!(rt.block_on(net.detach(&store, "a")).unwrap(), at_a.address);
    assert!(!link_exists(&at_a.veth));
    assert!(!a.run(&["ip", "link", "show", "eth0"]).status.success());
    assert_eq!(store.get("a").unwrap(), None);
    assert!(!host_pings(&ip_a, 1), "a is gone");
    assert!(host_pings(&ip_b, 3), "b stays");
    // Twice is an error that names the container.
    let err = rt.block_on(net.detach(&store, "a")).unwrap_err();
    assert_eq!(err.to_string(), "container a: not attached");

    // A namespace that goes away takes its veth with it; detach still frees the address.
    drop(b);
    assert!(wait_for(
        std::time::Duration::from_secs(5),
        || !link_exists(&at_b.veth)
    ));
    rt.block_on(net.detach(&store, "b")).unwrap();
    assert!(store.list().unwrap().is_empty());

    rt.block_on(net.remove_bridge(&bridge.name)).unwrap();
    assert!(!link_exists(&bridge.name));
}

/// A direct route of the host's main table (no gateway, prefix 1 to 30), if there is one.
fn host_route() -> Option<(husk_net::Ipv4Net, String)> {
    let table = std::fs::read_to_string("/proc/net/route").unwrap();
    table.lines().skip(1).find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        let hex = |s: &str| u32::from_str_radix(s, 16).ok().map(u32::from_be);
        let (dst, gw, mask) = (hex(f[1])?, hex(f[2])?, hex(f[7])?);
        let len = mask.count_ones() as u8;
        let net = husk_net::Ipv4Net::new(dst.into(), len).ok()?;
        (gw == 0 && (1..=30).contains(&len)).then(|| (net, f[0].to_string()))
    })
}

#[test]
fn a_subnet_overlapping_a_host_route_is_refused_and_nothing_is_made() {
    if !can_run("a_subnet_overlapping_a_host_route_is_refused_and_nothing_is_made") {
        return;
    }
    let rt = rt();
    let net = rt.block_on(async { Net::new() }).unwrap();
    let (first, _guard) = make_bridge(&rt, &net, 2);
    let (second, _) = unique(3);
    let _guard2 = BridgeGuard(second.clone());
    for overlapping in ["10.217.0.0/16", "10.217.2.128/25", "10.217.2.0/24"] {
        let err = rt
            .block_on(net.ensure_bridge(&second, overlapping.parse().unwrap()))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "subnet {overlapping} overlaps the host route 10.217.2.0/24 dev {}",
                first.name
            )
        );
        assert!(!link_exists(&second), "{second} left behind");
    }
    // A route of the host's own (read from /proc/net/route), not made by the test.
    match host_route() {
        None => eprintln!("part skipped: the host has no route but the default one"),
        Some((net_, dev)) => {
            let err = rt.block_on(net.ensure_bridge(&second, net_)).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("subnet {net_} overlaps the host route {net_} dev {dev}")
            );
            assert!(!link_exists(&second));
        }
    }
    // The same bridge again with its subnet: taken as it is.
    assert_eq!(
        rt.block_on(net.ensure_bridge(&first.name, first.subnet))
            .unwrap(),
        first
    );
    // The same bridge with another subnet: refused, naming what it has.
    let err = rt
        .block_on(net.ensure_bridge(&first.name, "10.217.4.0/24".parse().unwrap()))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "bridge {} has address 10.217.2.1/24, not the gateway 10.217.4.1 of subnet 10.217.4.0/24",
            first.name
        )
    );
    let err = rt
        .block_on(net.ensure_bridge("lo", "10.217.5.0/24".parse().unwrap()))
        .unwrap_err();
    assert_eq!(err.to_string(), "lo exists and is not a bridge");
    let err = rt
        .block_on(net.ensure_bridge("a/b", "10.217.5.0/24".parse().unwrap()))
        .unwrap_err();
    assert!(matches!(err, Error::BridgeName(_)), "{err}");
    let err = rt
        .block_on(net.ensure_bridge(&second, "10.217.5.1/24".parse().unwrap()))
        .unwrap_err();
    assert_eq!(err.to_string(), "subnet 10.217.5.1/24: host bits set");
    assert!(!link_exists(&second));
}

#[test]
fn a_released_address_is_given_again_and_a_full_subnet_refuses_cleanly() {
    if !can_run("a_released_address_is_given_again_and_a_full_subnet_refuses_cleanly") {
        return;
    }
    let rt = rt();
    let net = rt.block_on(async { Net::new() }).unwrap();
    let (bridge, _guard) = make_bridge(&rt, &net, 6);
    let (_dir, store) = store();
    let ns: Vec<Netns> = (0..3).map(|_| Netns::new()).collect();
    let one = rt
        .block_on(net.attach(&bridge, &store, "one", &ns[0].path()))
        .unwrap();
    let two = rt
        .block_on(net.attach(&bridge, &store, "two", &ns[1].path()))
        .unwrap();
    // The host and "two" learn the MAC of "one"'s eth0 for its address...
    assert!(host_pings(one.address, 3));
    assert!(ns[1].pings(one.address, 3));
    rt.block_on(net.detach(&store, "one")).unwrap();
    let three = rt
        .block_on(net.attach(&bridge, &store, "three", &ns[2].path()))
        .unwrap();
    assert_eq!(three.address, one.address, "the lowest free address again");
    assert_eq!(three.veth, one.veth);
    // ...and reach the new eth0 at once, though their ARP entries for the address are fresh.
    assert!(host_pings(three.address, 1), "host -> three");
    assert!(ns[1].pings(three.address, 1), "two -> three");
    rt.block_on(net.detach(&store, "two")).unwrap();
    rt.block_on(net.detach(&store, "three")).unwrap();
    assert!(!link_exists(&two.veth) && !link_exists(&three.veth));

    // A /30 has one address besides the gateway.
    let (name, _) = unique(7);
    let _small_guard = BridgeGuard(name.clone());
    let small = rt
        .block_on(net.ensure_bridge(&name, "10.217.7.0/30".parse().unwrap()))
        .unwrap();
    let only = rt
        .block_on(net.attach(&small, &store, "only", &ns[0].path()))
        .unwrap();
    assert_eq!(only.address.to_string(), "10.217.7.2");
    let err = rt
        .block_on(net.attach(&small, &store, "more", &ns[1].path()))
        .unwrap_err();
    assert_eq!(err.to_string(), "subnet 10.217.7.0/30: no free address");
    assert!(!ns[1].run(&["ip", "link", "show", "eth0"]).status.success());
    rt.block_on(net.detach(&store, "only")).unwrap();
}

#[test]
fn a_failed_attach_leaves_no_veth_and_no_address() {
    if !can_run("a_failed_attach_leaves_no_veth_and_no_address") {
        return;
    }
    let rt = rt();
    let net = rt.block_on(async { Net::new() }).unwrap();
    let (bridge, _guard) = make_bridge(&rt, &net, 8);
    let (_dir, store) = store();
    let err = rt
        .block_on(net.attach(&bridge, &store, "x", "/nonexistent/netns".as_ref()))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "network namespace /nonexistent/netns: No such file or directory (os error 2)"
    );
    let err = rt
        .block_on(net.attach(&bridge, &store, "x", "/proc/self/ns/pid".as_ref()))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "network namespace /proc/self/ns/pid: not a network namespace"
    );
    let err = rt
        .block_on(net.attach(&bridge, &store, "x", "/proc/self/ns/net".as_ref()))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "network namespace /proc/self/ns/net: the host's own network namespace"
    );
    assert!(store.list().unwrap().is_empty());
    // A namespace that already has an eth0: the kernel refuses the veth.
    let ns = Netns::new();
    let first = rt
        .block_on(net.attach(&bridge, &store, "first", &ns.path()))
        .unwrap();
    let err = rt
        .block_on(net.attach(&bridge, &store, "second", &ns.path()))
        .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("create veth veth0ad90803 with eth0 in /proc/self/fd/"),
        "{err}"
    );
    assert!(
        err.to_string().ends_with("File exists (os error 17)"),
        "{err}"
    );
    assert!(!link_exists("veth0ad90803"));
    assert_eq!(
        store.list().unwrap(),
        vec![("first".to_string(), first.address)]
    );
    // The same container twice: refused by the store, before any link is made.
    let err = rt
        .block_on(net.attach(&bridge, &store, "first", &ns.path()))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "container first already has address 10.217.8.2"
    );
    rt.block_on(net.detach(&store, "first")).unwrap();
    assert!(store.list().unwrap().is_empty());
}

#[test]
fn net_outside_a_tokio_runtime_is_an_error() {
    let err = Net::new().err().unwrap().to_string();
    assert!(err.starts_with("open a netlink socket: "), "{err}");
}
