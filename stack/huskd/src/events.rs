//! The events endpoint the shims publish to ($TTRPC_ADDRESS): containerd's ttrpc Events
//! service. Only exits matter to huskd; they go to the daemon over a channel, in order.

use std::path::Path;
use std::sync::Arc;

use containerd_shim_protos::{
    api::{Empty, ForwardRequest},
    events::task::TaskExit,
    ttrpc::{self, Server, TtrpcContext},
    Events,
};
use tokio::sync::mpsc::UnboundedSender;

/// One process's exit: the container's init (`id == container`) or an exec.
#[derive(Debug, Clone)]
pub struct Exit {
    pub container: String,
    pub id: String,
    pub status: u32,
}

struct Sink(UnboundedSender<Exit>);

impl Events for Sink {
    fn forward(&self, _ctx: &TtrpcContext, req: ForwardRequest) -> ttrpc::Result<Empty> {
        let env = req.envelope.into_option().unwrap_or_default();
        if env.topic == "/tasks/exit" {
            if let Some(e) = env.event.as_ref().and_then(crate::shim::decode::<TaskExit>) {
                log::debug!("exit {} {} {}", e.container_id, e.id, e.exit_status);
                // The receiver lives as long as the daemon.
                let _ = self.0.send(Exit {
                    container: e.container_id,
                    id: e.id,
                    status: e.exit_status,
                });
            }
        }
        Ok(Empty::default())
    }
}

/// Serves the events endpoint at `path` on ttrpc's own threads until the process exits.
pub fn serve(path: &Path, tx: UnboundedSender<Exit>) -> anyhow::Result<Server> {
    use anyhow::Context;
    // A dead huskd's socket: nobody serves it.
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(e).with_context(|| format!("remove {}", path.display()))
        }
        _ => {}
    }
    let mut server = Server::new()
        .bind(&format!("unix://{}", path.display()))
        .with_context(|| format!("listen on {}", path.display()))?
        .register_service(containerd_shim_protos::create_events(Arc::new(Sink(tx))));
    server.start().context("start the events server")?;
    Ok(server)
}
