//! The netlink requests the bridge and the veths need, over rtnetlink.

use futures::TryStreamExt;
use rtnetlink::packet_route::link::{InfoKind, LinkAttribute, LinkInfo, LinkMessage};
use rtnetlink::{Handle, LinkUnspec};

use crate::Error;

/// A netlink socket in the network namespace of the thread that made it. Clones share it.
#[derive(Clone)]
pub struct Net {
    pub(crate) handle: Handle,
}

/// The errno of a netlink refusal, if that is what `e` is.
pub(crate) fn errno(e: &rtnetlink::Error) -> Option<i32> {
    match e {
        rtnetlink::Error::NetlinkError(m) => m.code.map(|c| -c.get()),
        _ => None,
    }
}

/// An error naming what was being done, with the kernel's reason.
pub(crate) fn fail(what: impl Into<String>) -> impl FnOnce(rtnetlink::Error) -> Error {
    let what = what.into();
    move |e| Error::Netlink {
        what,
        source: match &e {
            rtnetlink::Error::NetlinkError(m) => m.to_io(),
            _ => std::io::Error::other(e.to_string()),
        },
    }
}

impl Net {
    /// Opens the socket; its connection runs as a task of the current tokio runtime, which
    /// must exist.
    pub fn new() -> Result<Self, Error> {
        let fail = |source| Error::Netlink {
            what: "open a netlink socket".into(),
            source,
        };
        let rt =
            tokio::runtime::Handle::try_current().map_err(|e| fail(std::io::Error::other(e)))?;
        let (conn, handle, _) = rtnetlink::new_connection().map_err(fail)?;
        rt.spawn(conn);
        Ok(Self { handle })
    }

    /// The link called `name`, or None.
    pub(crate) async fn link(&self, name: &str) -> Result<Option<LinkMessage>, Error> {
        let mut links = self
            .handle
            .link()
            .get()
            .match_name(name.to_string())
            .execute();
        match links.try_next().await {
            Ok(l) => Ok(l),
            Err(e) if errno(&e) == Some(libc::ENODEV) => Ok(None),
            Err(e) => Err(fail(format!("find link {name}"))(e)),
        }
    }

    pub(crate) async fn index(&self, name: &str) -> Result<Option<u32>, Error> {
        Ok(self.link(name).await?.map(|l| l.header.index))
    }

    /// The name of the link with this index (for messages), or its number.
    pub(crate) async fn name_of(&self, index: u32) -> String {
        let mut links = self.handle.link().get().match_index(index).execute();
        if let Ok(Some(l)) = links.try_next().await {
            for a in l.attributes {
                if let LinkAttribute::IfName(n) = a {
                    return n;
                }
            }
        }
        format!("#{index}")
    }

    pub(crate) async fn up(&self, index: u32, name: &str) -> Result<(), Error> {
        self.handle
            .link()
            .set(LinkUnspec::new_with_index(index).up().build())
            .execute()
            .await
            .map_err(fail(format!("bring {name} up")))
    }

    /// Deletes the link called `name`; false if there was none.
    pub(crate) async fn delete(&self, name: &str) -> Result<bool, Error> {
        let Some(index) = self.index(name).await? else {
            return Ok(false);
        };
        match self.handle.link().del(index).execute().await {
            Ok(()) => Ok(true),
            // Gone meanwhile: a veth goes with its namespace when the container's last
            // process exits.
            Err(e) if errno(&e) == Some(libc::ENODEV) => Ok(false),
            Err(e) => Err(fail(format!("delete link {name}"))(e)),
        }
    }
}

pub(crate) fn is_bridge(link: &LinkMessage) -> bool {
    link.attributes.iter().any(|a| match a {
        LinkAttribute::LinkInfo(infos) => infos
            .iter()
            .any(|i| matches!(i, LinkInfo::Kind(InfoKind::Bridge))),
        _ => false,
    })
}
