//! The size baseline for notes/net.md: what huskd links anyway (a tokio runtime, redb through
//! the address store), without netlink. `attach-time` minus this is what the netlink stack
//! (rtnetlink, netlink-packet-route, the bridge and veth code) costs a binary.

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let path = std::env::args().nth(1).expect("STORE-PATH");
    rt.block_on(async {
        let store = husk_net::Store::open(path.as_ref()).unwrap();
        let a = store
            .allocate(
                "c",
                "10.0.0.0/24".parse().unwrap(),
                "10.0.0.1".parse().unwrap(),
            )
            .unwrap();
        println!("{a}");
    });
}
