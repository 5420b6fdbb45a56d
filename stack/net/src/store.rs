//! The addresses given to containers, kept in redb so that an allocation survives a restart of
//! the daemon and a crash half-way through one (a write transaction commits whole or not at all).
//! redb serialises write transactions: two allocations at once never get the same address.

use std::net::Ipv4Addr;
use std::path::Path;

use ipnet::Ipv4Net;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

/// address (as u32) -> container id
const BY_ADDR: TableDefinition<u32, &str> = TableDefinition::new("addresses");
/// container id -> address (as u32)
const BY_ID: TableDefinition<&str, u32> = TableDefinition::new("containers");

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("address store {0}")]
    Db(String),
    #[error("subnet {0}: no free address")]
    Exhausted(Ipv4Net),
    #[error("container {id} already has address {addr}")]
    Taken { id: String, addr: Ipv4Addr },
    #[error("container id {0:?}: empty")]
    EmptyId(String),
}

fn db_err(e: impl std::fmt::Display) -> Error {
    Error::Db(e.to_string())
}

pub struct Store {
    db: Database,
}

impl Store {
    /// Opens (creating if need be) the store at `path`. One process at a time: redb locks the
    /// file, and a second open fails rather than sharing it.
    pub fn open(path: &Path) -> Result<Self, Error> {
        let db =
            Database::create(path).map_err(|e| Error::Db(format!("{}: {e}", path.display())))?;
        let txn = db.begin_write().map_err(db_err)?;
        txn.open_table(BY_ADDR).map_err(db_err)?;
        txn.open_table(BY_ID).map_err(db_err)?;
        txn.commit().map_err(db_err)?;
        Ok(Self { db })
    }

    /// Gives `id` the lowest free host address of `subnet` other than `gateway`.
    pub fn allocate(
        &self,
        id: &str,
        subnet: Ipv4Net,
        gateway: Ipv4Addr,
    ) -> Result<Ipv4Addr, Error> {
        if id.is_empty() {
            return Err(Error::EmptyId(id.to_string()));
        }
        let txn = self.db.begin_write().map_err(db_err)?;
        let addr = {
            let mut by_id = txn.open_table(BY_ID).map_err(db_err)?;
            if let Some(a) = by_id.get(id).map_err(db_err)? {
                return Err(Error::Taken {
                    id: id.to_string(),
                    addr: Ipv4Addr::from(a.value()),
                });
            }
            let mut by_addr = txn.open_table(BY_ADDR).map_err(db_err)?;
            // The used addresses of the subnet come out in order: the first gap is the answer.
            let used = by_addr
                .range(u32::from(subnet.network())..=u32::from(subnet.broadcast()))
                .map_err(db_err)?;
            let mut used = used.map(|r| r.map(|(k, _)| k.value()));
            let mut next = used.next().transpose().map_err(db_err)?;
            let mut found = None;
            for host in subnet.hosts().filter(|h| *h != gateway) {
                let h = u32::from(host);
                while next.is_some_and(|n| n < h) {
                    next = used.next().transpose().map_err(db_err)?;
                }
                if next != Some(h) {
                    found = Some(host);
                    break;
                }
            }
            drop(used);
            let addr = found.ok_or(Error::Exhausted(subnet))?;
            by_addr.insert(u32::from(addr), id).map_err(db_err)?;
            by_id.insert(id, u32::from(addr)).map_err(db_err)?;
            addr
        };
        txn.commit().map_err(db_err)?;
        Ok(addr)
    }

    /// The address of `id`, if it has one.
    pub fn get(&self, id: &str) -> Result<Option<Ipv4Addr>, Error> {
        let txn = self.db.begin_read().map_err(db_err)?;
        let by_id = txn.open_table(BY_ID).map_err(db_err)?;
        Ok(by_id
            .get(id)
            .map_err(db_err)?
            .map(|a| Ipv4Addr::from(a.value())))
    }

    /// Frees the address of `id`; returns it, or None if `id` had none.
    pub fn release(&self, id: &str) -> Result<Option<Ipv4Addr>, Error> {
        let txn = self.db.begin_write().map_err(db_err)?;
        let addr = {
            let mut by_id = txn.open_table(BY_ID).map_err(db_err)?;
            let addr = by_id.remove(id).map_err(db_err)?.map(|a| a.value());
            if let Some(a) = addr {
                txn.open_table(BY_ADDR)
                    .map_err(db_err)?
                    .remove(a)
                    .map_err(db_err)?;
            }
            addr
        };
        txn.commit().map_err(db_err)?;
        Ok(addr.map(Ipv4Addr::from))
    }

    /// Every (container id, address), for a daemon that restarts to match against what runs.
    pub fn list(&self) -> Result<Vec<(String, Ipv4Addr)>, Error> {
        let txn = self.db.begin_read().map_err(db_err)?;
        let by_id = txn.open_table(BY_ID).map_err(db_err)?;
        let mut out = Vec::new();
        for item in by_id.iter().map_err(db_err)? {
            let (k, v) = item.map_err(db_err)?;
            out.push((k.value().to_string(), Ipv4Addr::from(v.value())));
        }
        Ok(out)
    }
}
