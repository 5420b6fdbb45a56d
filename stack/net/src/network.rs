//! What huskd holds: the bridge, the store and the proxy binary together, so that putting a
//! container on the network with its published ports is one call that leaves nothing behind
//! when any part fails (a host port in use takes the veth and the address back).

use std::path::{Path, PathBuf};

use ipnet::Ipv4Net;

use crate::ports::PortSpec;
use crate::proxy::Proxies;
use crate::{Attachment, Bridge, Error, Net, Store};

pub struct Network {
    pub net: Net,
    pub bridge: Bridge,
    pub store: Store,
    pub proxy_bin: PathBuf,
}

/// A container on the network; its proxies stop when this is dropped.
#[derive(Debug)]
pub struct Connected {
    pub attachment: Attachment,
    pub proxies: Proxies,
}

impl Network {
    /// The bridge made or checked (`ensure_bridge`), the store opened.
    pub async fn open(
        bridge: &str,
        subnet: Ipv4Net,
        store: &Path,
        proxy_bin: &Path,
    ) -> Result<Self, Error> {
        let net = Net::new()?;
        let store = Store::open(store)?;
        let bridge = net.ensure_bridge(bridge, subnet).await?;
        Ok(Self {
            net,
            bridge,
            store,
            proxy_bin: proxy_bin.to_path_buf(),
        })
    }

    /// Attaches the container and starts a proxy per published port.
    pub async fn connect(
        &self,
        id: &str,
        netns: &Path,
        ports: &[PortSpec],
    ) -> Result<Connected, Error> {
        let attachment = self
            .net
            .attach(&self.bridge, &self.store, id, netns)
            .await?;
        let (bin, address, specs) = (self.proxy_bin.clone(), attachment.address, ports.to_vec());
        // Waiting for each proxy to bind blocks: off the runtime's threads.
        let started = tokio::task::spawn_blocking(move || Proxies::start(&bin, address, &specs))
            .await
            .unwrap_or_else(|e| Err(crate::proxy::Error::Thread(e.to_string())));
        match started {
            Ok(proxies) => Ok(Connected {
                attachment,
                proxies,
            }),
            Err(e) => {
                if let Err(d) = self.net.detach(&self.store, id).await {
                    log::warn!("{id}: left on the bridge after its proxies failed: {d}");
                }
                Err(e.into())
            }
        }
    }

    /// Stops the container's proxies (their ports are free on return) and detaches it.
    pub async fn disconnect(&self, id: &str, connected: Option<Connected>) -> Result<(), Error> {
        if let Some(c) = connected {
            tokio::task::spawn_blocking(move || c.proxies.stop())
                .await
                .map_err(|e| crate::proxy::Error::Thread(e.to_string()))?;
        }
        self.net.detach(&self.store, id).await.map(|_| ())
    }

    /// As `disconnect`, for a container whose proxies are known by pid only (`into_pids`):
    /// those still forwarding to its address are stopped, then it is detached.
    pub async fn disconnect_pids(&self, id: &str, pids: Vec<u32>) -> Result<(), Error> {
        if let Some(address) = self.store.get(id)? {
            tokio::task::spawn_blocking(move || crate::proxy::stop_pids(&pids, address))
                .await
                .map_err(|e| crate::proxy::Error::Thread(e.to_string()))?;
        }
        self.net.detach(&self.store, id).await.map(|_| ())
    }
}
