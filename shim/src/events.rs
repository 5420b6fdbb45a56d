//! Events to containerd: one thread publishes them in the order they were queued, and the
//! shim's exit waits (bounded) until what was queued before it has gone.

use std::{
    sync::mpsc::{self, RecvTimeoutError},
    time::Duration,
};

use containerd_shim::{
    protos::{protobuf::MessageDyn, ttrpc::context::with_timeout},
    publisher::RemotePublisher,
};
use log::warn;

/// containerd answers at once; a hung one must not stop the events after it for ever.
pub const PUBLISH_TIMEOUT: Duration = Duration::from_secs(5);

enum Msg {
    Publish(&'static str, Box<dyn MessageDyn>),
    /// Answered once everything queued before it was published (or given up on).
    Flush(mpsc::SyncSender<()>),
}

#[derive(Clone)]
pub struct Events(mpsc::Sender<Msg>);

impl Events {
    pub fn start(namespace: &str, publisher: RemotePublisher) -> std::io::Result<Events> {
        let (tx, rx) = mpsc::channel::<Msg>();
        let ns = namespace.to_string();
        let address = std::env::var("TTRPC_ADDRESS").unwrap_or_default();
        std::thread::Builder::new()
            .name("events".into())
            .stack_size(128 * 1024)
            .spawn(move || {
                let mut publisher = publisher;
                let ctx = || with_timeout(PUBLISH_TIMEOUT.as_nanos() as i64);
                for msg in rx {
                    let (topic, event) = match msg {
                        Msg::Publish(topic, event) => (topic, event),
                        Msg::Flush(done) => {
                            // The flusher may have given up waiting.
                            let _ = done.send(());
                            continue;
                        }
                    };
                    let again = event.clone_box();
                    if let Err(e) = publisher.publish(ctx(), topic, &ns, event) {
                        // A containerd started again listens on a new socket: connect anew.
                        let retried = RemotePublisher::new(&address).and_then(|p| {
                            p.publish(ctx(), topic, &ns, again)?;
                            Ok(p)
                        });
                        match retried {
                            Ok(p) => publisher = p,
                            Err(e2) => warn!("publish {topic}: {e}; after reconnecting: {e2}"),
                        }
                    }
                }
            })?;
        Ok(Events(tx))
    }

    pub fn send(&self, topic: &'static str, event: Box<dyn MessageDyn>) {
        // The receiver lives as long as the process.
        let _ = self.0.send(Msg::Publish(topic, event));
    }

    /// Waits until the events queued so far are published: a shim that exits first loses them
    /// (containerd calls Shutdown right after Delete, whose event may still be queued behind a
    /// reconnection). Each queued event may take two publish timeouts; `limit` bounds the wait.
    pub fn flush(&self, limit: Duration) {
        let (tx, rx) = mpsc::sync_channel(1);
        if self.0.send(Msg::Flush(tx)).is_err() {
            return;
        }
        match rx.recv_timeout(limit) {
            Ok(()) | Err(RecvTimeoutError::Disconnected) => {}
            Err(RecvTimeoutError::Timeout) => warn!("events not published within {limit:?}"),
        }
    }
}
