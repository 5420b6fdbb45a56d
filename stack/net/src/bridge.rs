//! The bridge every container's veth is a port of, holding the gateway address of the subnet.
//! The host reaches the containers through the route that address gives, which is also the
//! way husk-proxy reaches them: no IP forwarding and no iptables are needed for that.

use std::net::{IpAddr, Ipv4Addr};

use futures::TryStreamExt;
use ipnet::Ipv4Net;
use rtnetlink::packet_route::address::AddressAttribute;
use rtnetlink::packet_route::route::{RouteAddress, RouteAttribute, RouteHeader, RouteMessage};
use rtnetlink::{LinkBridge, RouteMessageBuilder};

use crate::netlink::{fail, is_bridge, Net};
use crate::Error;

pub const DEFAULT_BRIDGE: &str = "husk0";
/// Docker takes 172.17.0.0/16 for docker0; the next free /16s are where it goes next.
pub const DEFAULT_SUBNET: &str = "172.30.0.0/16";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bridge {
    pub name: String,
    pub index: u32,
    pub subnet: Ipv4Net,
    /// The subnet's first host address, on the bridge: the containers' default route.
    pub gateway: Ipv4Addr,
}

/// `a.b.c.d/n` with the host bits clear, with room for the gateway and one container.
pub fn parse_subnet(s: &str) -> Result<Ipv4Net, Error> {
    let bad = |why| Error::Subnet {
        subnet: s.to_string(),
        why,
    };
    let net: Ipv4Net = s
        .parse()
        .map_err(|_| bad("not an IPv4 network (a.b.c.d/n)"))?;
    check_subnet(net)
}

fn check_subnet(net: Ipv4Net) -> Result<Ipv4Net, Error> {
    let bad = |why| Error::Subnet {
        subnet: net.to_string(),
        why,
    };
    if net.prefix_len() > 30 {
        return Err(bad("too small: the prefix must be /30 or shorter"));
    }
    if net.trunc() != net {
        return Err(bad("host bits set"));
    }
    Ok(net)
}

fn check_name(name: &str) -> Result<(), Error> {
    let ok = !name.is_empty()
        && name.len() <= 15
        && !name.contains(|c: char| c == '/' || c == ':' || c.is_whitespace());
    if ok {
        Ok(())
    } else {
        Err(Error::BridgeName(name.to_string()))
    }
}

fn destination(route: &RouteMessage) -> Option<Ipv4Net> {
    route.attributes.iter().find_map(|a| match a {
        RouteAttribute::Destination(RouteAddress::Inet(d)) => {
            Ipv4Net::new(*d, route.header.destination_prefix_length).ok()
        }
        _ => None,
    })
}

fn table(route: &RouteMessage) -> u32 {
    route
        .attributes
        .iter()
        .find_map(|a| match a {
            RouteAttribute::Table(t) => Some(*t),
            _ => None,
        })
        .unwrap_or(route.header.table.into())
}

fn overlaps(a: Ipv4Net, b: Ipv4Net) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

impl Net {
    /// The bridge `name` with the gateway of `subnet`, up: made if missing, taken as it is if
    /// it already has that address. Refused, with nothing made, when a route of the host's
    /// main table other than the bridge's own overlaps the subnet.
    pub async fn ensure_bridge(&self, name: &str, subnet: Ipv4Net) -> Result<Bridge, Error> {
        check_name(name)?;
        let subnet = check_subnet(subnet)?;
        let gateway = subnet.hosts().next().ok_or(Error::Subnet {
            subnet: subnet.to_string(),
            why: "no host address",
        })?;
        let existing = match self.link(name).await? {
            Some(l) if !is_bridge(&l) => return Err(Error::NotBridge(name.to_string())),
            l => l.map(|l| l.header.index),
        };
        let mut has_gateway = false;
        if let Some(index) = existing {
            for found in self.addresses(index).await? {
                if found.addr() == gateway && found.prefix_len() == subnet.prefix_len() {
                    has_gateway = true;
                } else {
                    return Err(Error::BridgeAddress {
                        bridge: name.to_string(),
                        found,
                        gateway,
                        subnet,
                    });
                }
            }
        }
        self.check_routes(subnet, existing).await?;
        let index = match existing {
            Some(i) => i,
            None => {
                self.handle
                    .link()
                    .add(LinkBridge::new(name).build())
                    .execute()
                    .await
                    .map_err(fail(format!("create bridge {name}")))?;
                self.index(name).await?.ok_or_else(|| Error::Netlink {
                    what: format!("create bridge {name}"),
                    source: std::io::Error::other("gone right after its creation"),
                })?
            }
        };
        let bridge = Bridge {
            name: name.to_string(),
            index,
            subnet,
            gateway,
        };
        let configured = async {
            if !has_gateway {
                self.handle
                    .address()
                    .add(index, IpAddr::V4(gateway), subnet.prefix_len())
                    .execute()
                    .await
                    .map_err(fail(format!(
                        "add {gateway}/{} to {name}",
                        subnet.prefix_len()
                    )))?;
            }
            self.up(index, name).await
        }
        .await;
        if let Err(e) = configured {
            if existing.is_none() {
                if let Err(d) = self.delete(name).await {
                    log::warn!("{name}: left behind after a failed setup: {d}");
                }
            }
            return Err(e);
        }
        log::info!("bridge {name} {gateway}/{}", subnet.prefix_len());
        Ok(bridge)
    }

    /// Deletes the bridge `name` (its ports go back to no master); false if there was none.
    pub async fn remove_bridge(&self, name: &str) -> Result<bool, Error> {
        match self.link(name).await? {
            None => Ok(false),
            Some(l) if !is_bridge(&l) => Err(Error::NotBridge(name.to_string())),
            Some(_) => self.delete(name).await,
        }
    }

    async fn addresses(&self, index: u32) -> Result<Vec<Ipv4Net>, Error> {
        let msgs: Vec<_> = self
            .handle
            .address()
            .get()
            .set_link_index_filter(index)
            .execute()
            .try_collect()
            .await
            .map_err(fail("list addresses"))?;
        Ok(msgs
            .iter()
            .flat_map(|m| {
                m.attributes.iter().filter_map(|a| match a {
                    AddressAttribute::Address(IpAddr::V4(ip)) => {
                        Ipv4Net::new(*ip, m.header.prefix_len).ok()
                    }
                    _ => None,
                })
            })
            .collect())
    }

    /// Refuses a subnet that a route of the main table overlaps, except the bridge's own
    /// route to exactly that subnet. The default route (prefix 0) overlaps everything and is
    /// not a conflict, as for Docker.
    async fn check_routes(&self, subnet: Ipv4Net, bridge: Option<u32>) -> Result<(), Error> {
        let routes: Vec<RouteMessage> = self
            .handle
            .route()
            .get(RouteMessageBuilder::<Ipv4Addr>::new().build())
            .execute()
            .try_collect()
            .await
            .map_err(fail("list routes"))?;
        for r in routes {
            if table(&r) != u32::from(RouteHeader::RT_TABLE_MAIN) {
                continue;
            }
            let Some(dst) = destination(&r) else { continue };
            if dst.prefix_len() == 0 || !overlaps(dst, subnet) {
                continue;
            }
            let oif = r.attributes.iter().find_map(|a| match a {
                RouteAttribute::Oif(i) => Some(*i),
                _ => None,
            });
            if dst == subnet && oif.is_some() && oif == bridge {
                continue;
            }
            let mut route = dst.to_string();
            for a in &r.attributes {
                if let RouteAttribute::Gateway(RouteAddress::Inet(g)) = a {
                    route += &format!(" via {g}");
                }
            }
            if let Some(i) = oif {
                route += &format!(" dev {}", self.name_of(i).await);
            }
            return Err(Error::Overlap { subnet, route });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subnets() {
        assert_eq!(
            parse_subnet("172.30.0.0/16").unwrap().to_string(),
            "172.30.0.0/16"
        );
        let err = |s| parse_subnet(s).unwrap_err().to_string();
        assert_eq!(err("172.30.0.1/16"), "subnet 172.30.0.1/16: host bits set");
        assert_eq!(
            err("10.0.0.0/31"),
            "subnet 10.0.0.0/31: too small: the prefix must be /30 or shorter"
        );
        assert_eq!(
            err("10.0.0.0"),
            "subnet 10.0.0.0: not an IPv4 network (a.b.c.d/n)"
        );
        assert_eq!(
            err("fd00::/64"),
            "subnet fd00::/64: not an IPv4 network (a.b.c.d/n)"
        );
        assert!(overlaps(
            "10.0.0.0/8".parse().unwrap(),
            "10.1.0.0/16".parse().unwrap()
        ));
        assert!(!overlaps(
            "10.0.0.0/16".parse().unwrap(),
            "10.1.0.0/16".parse().unwrap()
        ));
    }

    #[test]
    fn bridge_names() {
        assert!(check_name("husk0").is_ok());
        for bad in ["", "a/b", "a b", "0123456789abcdef"] {
            assert!(
                matches!(check_name(bad), Err(Error::BridgeName(_))),
                "{bad}"
            );
        }
    }
}
