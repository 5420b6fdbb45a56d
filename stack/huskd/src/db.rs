//! Container metadata in redb: one table, container id → its record (serde_json). redb commits
//! are atomic and fsynced, so a huskd killed at any point finds each record whole, as of its
//! last commit.

use std::path::Path;

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};
use serde_json::Value;

const CONTAINERS: TableDefinition<&str, &[u8]> = TableDefinition::new("containers");

#[derive(Debug, thiserror::Error)]
#[error("container metadata: {0}")]
pub struct DbError(String);

fn db_err(e: impl std::fmt::Display) -> DbError {
    DbError(e.to_string())
}

/// Docker's `State`, in its field names.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct State {
    /// created, running, paused, restarting, removing, exited, dead
    pub status: String,
    pub running: bool,
    pub paused: bool,
    pub restarting: bool,
    #[serde(rename = "OOMKilled")]
    pub oom_killed: bool,
    pub dead: bool,
    pub pid: u32,
    pub exit_code: i64,
    pub error: String,
    pub started_at: String,
    pub finished_at: String,
}

/// Go's zero time, which Docker shows for a time that never was.
pub const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

impl Default for State {
    fn default() -> Self {
        State {
            status: "created".into(),
            running: false,
            paused: false,
            restarting: false,
            oom_killed: false,
            dead: false,
            pid: 0,
            exit_code: 0,
            error: String::new(),
            started_at: ZERO_TIME.into(),
            finished_at: ZERO_TIME.into(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    pub id: String,
    /// Without Docker's leading `/`.
    pub name: String,
    pub created: String,
    /// The image's id (its config's digest).
    pub image: String,
    /// The create request's `Config`, with the image's defaults filled in.
    pub config: Value,
    pub host_config: Value,
    pub state: State,
    /// The shim's ttrpc address while a task exists; what a restarted huskd reconnects to.
    pub address: String,
    pub restart_count: u32,
    /// Set by stop and kill, so that the restart policy leaves the container stopped.
    pub stopped_by_user: bool,
    /// On the bridge while it runs: its address, and the pids of its published ports'
    /// proxies, which outlive huskd as the container does and are stopped at its exit.
    #[serde(default)]
    pub ip_address: String,
    #[serde(default)]
    pub proxies: Vec<u32>,
}

pub struct Db(Database);

impl Db {
    pub fn open(path: &Path) -> Result<Self, DbError> {
        let db = Database::create(path).map_err(|e| DbError(format!("{}: {e}", path.display())))?;
        let txn = db.begin_write().map_err(db_err)?;
        txn.open_table(CONTAINERS).map_err(db_err)?;
        txn.commit().map_err(db_err)?;
        Ok(Db(db))
    }

    pub fn all(&self) -> Result<Vec<Record>, DbError> {
        let txn = self.0.begin_read().map_err(db_err)?;
        let table = txn.open_table(CONTAINERS).map_err(db_err)?;
        let mut out = Vec::new();
        for item in table.iter().map_err(db_err)? {
            let (_, v) = item.map_err(db_err)?;
            out.push(serde_json::from_slice(v.value()).map_err(db_err)?);
        }
        Ok(out)
    }

    pub fn put(&self, r: &Record) -> Result<(), DbError> {
        let bytes = serde_json::to_vec(r).map_err(db_err)?;
        let txn = self.0.begin_write().map_err(db_err)?;
        txn.open_table(CONTAINERS)
            .map_err(db_err)?
            .insert(r.id.as_str(), bytes.as_slice())
            .map_err(db_err)?;
        txn.commit().map_err(db_err)
    }

    pub fn remove(&self, id: &str) -> Result<(), DbError> {
        let txn = self.0.begin_write().map_err(db_err)?;
        txn.open_table(CONTAINERS)
            .map_err(db_err)?
            .remove(id)
            .map_err(db_err)?;
        txn.commit().map_err(db_err)
    }
}
