//! A container on the bridge: a veth pair whose host end is a port of the bridge and whose
//! other end is `eth0` in the container's network namespace, with an address from the store
//! and a default route through the gateway.
//!
//! The peer is created directly inside the namespace (IFLA_NET_NS_FD on the peer), already
//! named eth0: the host's own eth0 never clashes, and there is no rename step. Addresses and
//! routes inside can only be set through a netlink socket opened in that namespace, so that
//! part runs on a thread made for it that joins the namespace (setns) and ends after: a
//! pooled thread would go back to the pool still in the container's namespace.

use std::fs::File;
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use nix::sched::CloneFlags;
use rtnetlink::packet_route::link::{InfoData, InfoKind, InfoVeth};
use rtnetlink::{LinkMessageBuilder, LinkUnspec, LinkVeth, RouteMessageBuilder};

use crate::netlink::{fail, Net};
use crate::{Bridge, Error, Store};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    pub id: String,
    pub address: Ipv4Addr,
    pub prefix_len: u8,
    pub gateway: Ipv4Addr,
    /// The host end of the pair, a port of the bridge.
    pub veth: String,
}

/// The host end's name follows from the address, which the store keeps: a daemon that
/// restarts finds it again without storing it, and two live containers never share it.
pub fn veth_name(address: Ipv4Addr) -> String {
    format!("veth{:08x}", u32::from(address))
}

fn open_netns(path: &Path) -> Result<File, Error> {
    let err = |source| Error::Netns {
        path: path.to_path_buf(),
        source,
    };
    let f = File::open(path).map_err(err)?;
    // SAFETY: NS_GET_NSTYPE takes no argument and only reads the descriptor.
    let kind = unsafe { libc::ioctl(f.as_raw_fd(), libc::NS_GET_NSTYPE) };
    if kind != libc::CLONE_NEWNET {
        return Err(err(std::io::Error::other("not a network namespace")));
    }
    // The daemon's own namespace would get an eth0, an address and a default route.
    let ours = std::fs::metadata("/proc/thread-self/ns/net").map_err(err)?;
    let theirs = f.metadata().map_err(err)?;
    if (ours.dev(), ours.ino()) == (theirs.dev(), theirs.ino()) {
        return Err(err(std::io::Error::other(
            "the host's own network namespace",
        )));
    }
    Ok(f)
}

impl Net {
    /// Puts the container `id`, whose network namespace is the file `netns` (such as
    /// /proc/PID/ns/net), on `bridge`. On failure nothing is left: no veth, no address.
    pub async fn attach(
        &self,
        bridge: &Bridge,
        store: &Store,
        id: &str,
        netns: &Path,
    ) -> Result<Attachment, Error> {
        let ns = open_netns(netns)?;
        let address = store.allocate(id, bridge.subnet, bridge.gateway)?;
        let veth = veth_name(address);
        if let Err(e) = self.plumb(bridge, ns, netns, &veth, address).await {
            if let Err(d) = self.delete(&veth).await {
                log::warn!("{veth}: left behind after a failed attach: {d}");
            }
            if let Err(r) = store.release(id) {
                log::warn!("{address}: left allocated to {id} after a failed attach: {r}");
            }
            return Err(e);
        }
        log::info!("{id}: {address} on {} through {veth}", bridge.name);
        Ok(Attachment {
            id: id.to_string(),
            address,
            prefix_len: bridge.subnet.prefix_len(),
            gateway: bridge.gateway,
            veth,
        })
    }

    async fn plumb(
        &self,
        bridge: &Bridge,
        ns: File,
        path: &Path,
        veth: &str,
        address: Ipv4Addr,
    ) -> Result<(), Error> {
        // The store says the address is free, so a link of this name is what a crash
        // between creating it and recording the release left.
        if self.delete(veth).await? {
            log::warn!("{veth}: removed a stale veth");
        }
        let peer = LinkUnspec::new_with_name("eth0")
            .setns_by_fd(ns.as_raw_fd())
            .build();
        let pair = LinkMessageBuilder::<LinkVeth>::new_with_info_kind(InfoKind::Veth)
            .name(veth)
            .set_info_data(InfoData::Veth(InfoVeth::Peer(peer)))
            .controller(bridge.index)
            .up()
            .build();
        self.handle
            .link()
            .add(pair)
            .execute()
            .await
            .map_err(fail(format!(
                "create veth {veth} with eth0 in {}",
                path.display()
            )))?;
        let prefix_len = bridge.subnet.prefix_len();
        let gateway = bridge.gateway;
        let path = path.to_path_buf();
        let (tx, rx) = futures::channel::oneshot::channel();
        std::thread::Builder::new()
            .name("husk-net-ns".into())
            .spawn(move || {
                let r = configure_inside(ns, &path, address, prefix_len, gateway);
                // The receiver is gone only if the attach was cancelled: then nobody wants
                // the result.
                let _ = tx.send(r);
            })
            .map_err(|source| Error::Netlink {
                what: "start a thread for the container's namespace".into(),
                source,
            })?;
        rx.await.unwrap_or_else(|_| {
            Err(Error::Netlink {
                what: "configure eth0".into(),
                source: std::io::Error::other("the namespace thread died"),
            })
        })
    }

    /// Takes the container `id` off the bridge: deletes its veth (which takes eth0 with it),
    /// if the namespace has not already taken it away, and frees its address.
    pub async fn detach(&self, store: &Store, id: &str) -> Result<Ipv4Addr, Error> {
        let address = store
            .get(id)?
            .ok_or_else(|| Error::NotAttached(id.to_string()))?;
        self.delete(&veth_name(address)).await?;
        store.release(id)?;
        log::info!("{id}: {address} released");
        Ok(address)
    }
}

/// Runs on its own thread: joins the namespace and configures lo and eth0 there.
fn configure_inside(
    ns: File,
    path: &Path,
    address: Ipv4Addr,
    prefix_len: u8,
    gateway: Ipv4Addr,
) -> Result<(), Error> {
    let ns_err = |source| Error::Netns {
        path: path.to_path_buf(),
        source,
    };
    nix::sched::setns(&ns, CloneFlags::CLONE_NEWNET).map_err(|e| ns_err(e.into()))?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .map_err(ns_err)?;
    rt.block_on(async {
        let net = Net::new()?;
        for name in ["lo", "eth0"] {
            let index = net.index(name).await?.ok_or_else(|| {
                ns_err(std::io::Error::other(format!("{name}: no such interface")))
            })?;
            if name == "eth0" {
                // A freed address goes to the next container at once, with a new MAC: the
                // other containers' ARP entries would point at the old one for up to a
                // minute. arp_notify makes eth0 announce itself (gratuitous ARP) as it comes
                // up, which updates them. /proc/sys/net is the namespace of the opening thread.
                std::fs::write("/proc/sys/net/ipv4/conf/eth0/arp_notify", "1").map_err(|e| {
                    ns_err(std::io::Error::new(
                        e.kind(),
                        format!("eth0 arp_notify: {e}"),
                    ))
                })?;
                net.handle
                    .address()
                    .add(index, IpAddr::V4(address), prefix_len)
                    .execute()
                    .await
                    .map_err(fail(format!("add {address}/{prefix_len} to eth0")))?;
            }
            net.up(index, name).await?;
            if name == "eth0" {
                net.handle
                    .route()
                    .add(
                        RouteMessageBuilder::<Ipv4Addr>::new()
                            .gateway(gateway)
                            .output_interface(index)
                            .build(),
                    )
                    .execute()
                    .await
                    .map_err(fail(format!("add the default route via {gateway}")))?;
            }
        }
        Ok(())
    })
}
