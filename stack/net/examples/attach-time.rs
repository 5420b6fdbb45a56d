//! How long putting a container on the bridge takes, and taking it off: ROUNDS namespaces
//! (default 50), each attached then detached, on a bridge of its own. As root.
//!
//!     cargo run --release -p husk-net --example attach-time [ROUNDS]

use std::fs::File;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use husk_net::{Net, Store};
use nix::sched::{unshare, CloneFlags};

fn netns() -> File {
    std::thread::spawn(|| {
        unshare(CloneFlags::CLONE_NEWNET).expect("unshare(CLONE_NEWNET)");
        File::open("/proc/thread-self/ns/net").expect("open the new netns")
    })
    .join()
    .unwrap()
}

fn summary(what: &str, mut t: Vec<Duration>) {
    t.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let (n, p50, p90) = (t.len(), t[t.len() / 2], t[t.len() * 9 / 10]);
    println!(
        "{what}: {n} rounds, median {:.2} ms, p90 {:.2} ms, max {:.2} ms",
        ms(p50),
        ms(p90),
        ms(t[n - 1])
    );
}

fn main() {
    let rounds: usize = std::env::args()
        .nth(1)
        .map_or(50, |a| a.parse().expect("ROUNDS"));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("net.redb")).unwrap();
    let (name, subnet) = ("hkbench0", "10.217.200.0/24".parse().unwrap());
    rt.block_on(async {
        let net = Net::new().unwrap();
        let t = Instant::now();
        let bridge = net.ensure_bridge(name, subnet).await.unwrap();
        println!(
            "bridge made in {:.2} ms",
            t.elapsed().as_secs_f64() * 1000.0
        );
        let (mut attach, mut detach) = (Vec::new(), Vec::new());
        for i in 0..rounds {
            let ns = netns();
            let path = format!("/proc/self/fd/{}", ns.as_raw_fd());
            let id = format!("c{i}");
            let t = Instant::now();
            net.attach(&bridge, &store, &id, path.as_ref())
                .await
                .unwrap();
            attach.push(t.elapsed());
            let t = Instant::now();
            net.detach(&store, &id).await.unwrap();
            detach.push(t.elapsed());
        }
        net.remove_bridge(name).await.unwrap();
        summary("attach", attach);
        summary("detach", detach);
    });
}
