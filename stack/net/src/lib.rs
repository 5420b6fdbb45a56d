//! Container networking for huskd: the bridge (`husk0`), a veth pair per container with an
//! address from the bridge's subnet, the addresses kept in a redb store, and published ports
//! through `husk-proxy` processes (userland only: no iptables, no IP forwarding).
//!
//! Netlink goes through rtnetlink on tokio: `Net` is one netlink socket in the caller's
//! network namespace. What must happen inside a container's namespace runs on a thread of its
//! own that joins it (see `veth`).

mod bridge;
mod netlink;
mod network;
pub mod ports;
pub mod proxy;
pub mod store;
mod veth;

use std::net::Ipv4Addr;
use std::path::PathBuf;

pub use bridge::{parse_subnet, Bridge, DEFAULT_BRIDGE, DEFAULT_SUBNET};
pub use ipnet::Ipv4Net;
pub use netlink::Net;
pub use network::{Connected, Network};
pub use store::Store;
pub use veth::{veth_name, Attachment};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("bridge name {0:?}: must be 1 to 15 characters, without '/', ':' or white space")]
    BridgeName(String),
    #[error("subnet {subnet}: {why}")]
    Subnet { subnet: String, why: &'static str },
    #[error("subnet {subnet} overlaps the host route {route}")]
    Overlap { subnet: Ipv4Net, route: String },
    #[error("{0} exists and is not a bridge")]
    NotBridge(String),
    #[error("bridge {bridge} has address {found}, not the gateway {gateway} of subnet {subnet}")]
    BridgeAddress {
        bridge: String,
        found: Ipv4Net,
        gateway: Ipv4Addr,
        subnet: Ipv4Net,
    },
    #[error("network namespace {path}: {source}")]
    Netns {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{what}: {source}")]
    Netlink {
        what: String,
        source: std::io::Error,
    },
    #[error("container {0}: not attached")]
    NotAttached(String),
    #[error(transparent)]
    Store(#[from] store::Error),
    #[error(transparent)]
    Proxy(#[from] proxy::Error),
}
