//! The shim, launched and spoken to as containerd does: `containerd-shim-husk-v2 -namespace NS
//! -address ADDR -publish-binary BIN -id ID start` in the bundle, with $TTRPC_ADDRESS naming
//! where it publishes events; it prints the ttrpc address of the task service. Calls are
//! blocking (the sync ttrpc client, as the shim itself is built); huskd makes them on tokio's
//! blocking pool.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use containerd_shim_protos::{
    api,
    protobuf::{well_known_types::any::Any, Message, MessageField},
    ttrpc::{self, context},
    TaskClient,
};

/// Every call but Wait is answered at once, or after one runtime command (bounded by the shim
/// at 120 s).
const CALL_TIMEOUT: Duration = Duration::from_secs(130);

#[derive(Debug, thiserror::Error)]
pub enum ShimError {
    #[error("start shim: {0}")]
    Start(String),
    #[error("connect to shim {0}: {1}")]
    Connect(String, String),
    /// What the shim (or the runtime behind it) answered.
    #[error("{0}")]
    Call(String),
}

fn call_err(e: ttrpc::Error) -> ShimError {
    match e {
        ttrpc::Error::RpcStatus(s) => ShimError::Call(s.message().to_string()),
        e => ShimError::Call(e.to_string()),
    }
}

/// Where the shim binary is: `--shim`, else beside huskd, else on $PATH.
pub fn find(explicit: Option<&Path>) -> PathBuf {
    const NAME: &str = "containerd-shim-husk-v2";
    if let Some(p) = explicit {
        return p.to_path_buf();
    }
    std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(|d| d.join(NAME)))
        .filter(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from(NAME))
}

pub struct Launch<'a> {
    pub binary: &'a Path,
    pub namespace: &'a str,
    /// huskd's API socket: the shim only derives its own socket's name from it.
    pub address: &'a str,
    /// huskd's events socket.
    pub ttrpc_address: &'a str,
}

impl Launch<'_> {
    /// Runs `start` in `bundle`; returns the address it printed.
    pub fn start(&self, id: &str, bundle: &Path) -> Result<String, ShimError> {
        let publish = std::env::current_exe()
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        let out = Command::new(self.binary)
            .args(["-namespace", self.namespace, "-address", self.address])
            .args(["-publish-binary", &publish, "-id", id, "start"])
            .current_dir(bundle)
            .env("TTRPC_ADDRESS", self.ttrpc_address)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| ShimError::Start(format!("{}: {e}", self.binary.display())))?;
        let address = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if !out.status.success() || address.is_empty() {
            let err = String::from_utf8_lossy(&out.stderr);
            return Err(ShimError::Start(format!(
                "{}: {} {}",
                self.binary.display(),
                out.status,
                err.trim()
            )));
        }
        Ok(address)
    }
}

#[derive(Clone)]
pub struct Shim {
    client: TaskClient,
    pub address: String,
}

fn ctx() -> context::Context {
    context::with_timeout(CALL_TIMEOUT.as_nanos() as i64)
}

pub struct Stdio3 {
    pub stdin: String,
    pub stdout: String,
    pub stderr: String,
    pub terminal: bool,
}

impl Shim {
    pub fn connect(address: &str) -> Result<Shim, ShimError> {
        let client = ttrpc::Client::connect(address)
            .map_err(|e| ShimError::Connect(address.into(), e.to_string()))?;
        Ok(Shim {
            client: TaskClient::new(client),
            address: address.into(),
        })
    }

    pub fn create(
        &self,
        id: &str,
        bundle: &Path,
        rootfs: api::Mount,
        io: &Stdio3,
    ) -> Result<u32, ShimError> {
        let req = api::CreateTaskRequest {
            id: id.into(),
            bundle: bundle.display().to_string(),
            rootfs: vec![rootfs],
            terminal: io.terminal,
            stdin: io.stdin.clone(),
            stdout: io.stdout.clone(),
            stderr: io.stderr.clone(),
            ..Default::default()
        };
        Ok(self.client.create(ctx(), &req).map_err(call_err)?.pid)
    }

    pub fn start(&self, id: &str, exec_id: &str) -> Result<u32, ShimError> {
        let req = api::StartRequest {
            id: id.into(),
            exec_id: exec_id.into(),
            ..Default::default()
        };
        Ok(self.client.start(ctx(), &req).map_err(call_err)?.pid)
    }

    pub fn kill(&self, id: &str, exec_id: &str, signal: u32, all: bool) -> Result<(), ShimError> {
        let req = api::KillRequest {
            id: id.into(),
            exec_id: exec_id.into(),
            signal,
            all,
            ..Default::default()
        };
        self.client.kill(ctx(), &req).map_err(call_err).map(drop)
    }

    /// The init's (or an exec's) status: (running, pid, exit status) where the status is known
    /// once stopped.
    pub fn state(&self, id: &str, exec_id: &str) -> Result<api::StateResponse, ShimError> {
        let req = api::StateRequest {
            id: id.into(),
            exec_id: exec_id.into(),
            ..Default::default()
        };
        self.client.state(ctx(), &req).map_err(call_err)
    }

    pub fn delete(&self, id: &str, exec_id: &str) -> Result<api::DeleteResponse, ShimError> {
        let req = api::DeleteRequest {
            id: id.into(),
            exec_id: exec_id.into(),
            ..Default::default()
        };
        self.client.delete(ctx(), &req).map_err(call_err)
    }

    pub fn shutdown(&self, id: &str) -> Result<(), ShimError> {
        let req = api::ShutdownRequest {
            id: id.into(),
            now: true,
            ..Default::default()
        };
        match self.client.shutdown(ctx(), &req) {
            Ok(_) => Ok(()),
            // The shim exits as it answers; a closed connection is the answer too.
            Err(ttrpc::Error::Socket(_)) | Err(ttrpc::Error::LocalClosed) => Ok(()),
            Err(e) => Err(call_err(e)),
        }
    }

    pub fn pause(&self, id: &str) -> Result<(), ShimError> {
        let req = api::PauseRequest {
            id: id.into(),
            ..Default::default()
        };
        self.client.pause(ctx(), &req).map_err(call_err).map(drop)
    }

    pub fn resume(&self, id: &str) -> Result<(), ShimError> {
        let req = api::ResumeRequest {
            id: id.into(),
            ..Default::default()
        };
        self.client.resume(ctx(), &req).map_err(call_err).map(drop)
    }

    pub fn exec(&self, id: &str, exec_id: &str, spec: &[u8], io: &Stdio3) -> Result<(), ShimError> {
        let req = api::ExecProcessRequest {
            id: id.into(),
            exec_id: exec_id.into(),
            terminal: io.terminal,
            stdin: io.stdin.clone(),
            stdout: io.stdout.clone(),
            stderr: io.stderr.clone(),
            spec: MessageField::some(Any {
                type_url: "types.containerd.io/opencontainers/runtime-spec/1/Process".into(),
                value: spec.to_vec(),
                ..Default::default()
            }),
            ..Default::default()
        };
        self.client.exec(ctx(), &req).map_err(call_err).map(drop)
    }

    pub fn resize(
        &self,
        id: &str,
        exec_id: &str,
        width: u32,
        height: u32,
    ) -> Result<(), ShimError> {
        let req = api::ResizePtyRequest {
            id: id.into(),
            exec_id: exec_id.into(),
            width,
            height,
            ..Default::default()
        };
        self.client
            .resize_pty(ctx(), &req)
            .map_err(call_err)
            .map(drop)
    }

    /// The cgroup metrics, as the shim encodes them (cgroup v1 or v2 types).
    pub fn stats(&self, id: &str) -> Result<Any, ShimError> {
        let req = api::StatsRequest {
            id: id.into(),
            ..Default::default()
        };
        let resp = self.client.stats(ctx(), &req).map_err(call_err)?;
        Ok(resp.stats.into_option().unwrap_or_default())
    }
}

/// Decodes an event's payload.
pub fn decode<M: Message>(any: &Any) -> Option<M> {
    M::parse_from_bytes(&any.value).ok()
}
