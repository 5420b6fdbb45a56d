//! The address store: allocations survive a reopen, are released, and never collide when
//! many are made at once.

use std::collections::HashSet;
use std::sync::Arc;

use husk_net::{Ipv4Net, Store};

fn subnet(s: &str) -> Ipv4Net {
    s.parse().unwrap()
}

#[test]
fn allocations_survive_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("net.redb");
    let net = subnet("10.0.0.0/24");
    let gw = "10.0.0.1".parse().unwrap();
    {
        let store = Store::open(&path).unwrap();
        assert_eq!(
            store.allocate("a", net, gw).unwrap().to_string(),
            "10.0.0.2"
        );
        assert_eq!(
            store.allocate("b", net, gw).unwrap().to_string(),
            "10.0.0.3"
        );
        // One process at a time: redb locks its file.
        assert!(Store::open(&path).is_err());
    }
    let store = Store::open(&path).unwrap();
    assert_eq!(store.get("a").unwrap().unwrap().to_string(), "10.0.0.2");
    assert_eq!(
        store.allocate("c", net, gw).unwrap().to_string(),
        "10.0.0.4"
    );
    assert_eq!(store.release("a").unwrap().unwrap().to_string(), "10.0.0.2");
    assert_eq!(store.release("a").unwrap(), None);
    drop(store);
    let store = Store::open(&path).unwrap();
    assert_eq!(store.get("a").unwrap(), None);
    assert_eq!(
        store.allocate("d", net, gw).unwrap().to_string(),
        "10.0.0.2"
    );
    let mut all = store.list().unwrap();
    all.sort();
    let all: Vec<String> = all.iter().map(|(id, a)| format!("{id}={a}")).collect();
    assert_eq!(all, ["b=10.0.0.3", "c=10.0.0.4", "d=10.0.0.2"]);
}

#[test]
fn concurrent_allocations_never_collide() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(&dir.path().join("net.redb")).unwrap());
    let net = subnet("10.1.0.0/16");
    let gw = "10.1.0.1".parse().unwrap();
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let store = store.clone();
            std::thread::spawn(move || {
                (0..25)
                    .map(|i| store.allocate(&format!("c{t}-{i}"), net, gw).unwrap())
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let all: Vec<_> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    let distinct: HashSet<_> = all.iter().collect();
    assert_eq!(all.len(), 200);
    assert_eq!(distinct.len(), 200, "an address was given twice");
    assert!(!distinct.contains(&gw));
    assert!(all.iter().all(|a| net.contains(a)));
}

#[test]
fn a_full_subnet_and_a_second_address_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("net.redb")).unwrap();
    let net = subnet("10.2.0.0/29"); // .1 gateway, .2-.6 for containers
    let gw = "10.2.0.1".parse().unwrap();
    for i in 0..5 {
        store.allocate(&format!("c{i}"), net, gw).unwrap();
    }
    let err = store.allocate("c5", net, gw).unwrap_err();
    assert_eq!(err.to_string(), "subnet 10.2.0.0/29: no free address");
    let err = store.allocate("c0", net, gw).unwrap_err();
    assert_eq!(err.to_string(), "container c0 already has address 10.2.0.2");
    let err = store.allocate("", net, gw).unwrap_err();
    assert_eq!(err.to_string(), "container id \"\": empty");
    store.release("c3").unwrap();
    assert_eq!(
        store.allocate("c5", net, gw).unwrap().to_string(),
        "10.2.0.5"
    );
}

#[test]
fn an_unusable_store_path_is_named() {
    let err = Store::open("/nonexistent/dir/net.redb".as_ref())
        .err()
        .unwrap();
    assert!(
        err.to_string()
            .starts_with("address store /nonexistent/dir/net.redb: "),
        "{err}"
    );
}
