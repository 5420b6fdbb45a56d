//! Events to containerd: one thread publishes them in the order they were queued, and the
//! shim's exit waits (bounded) until what was queued before it has gone.
//!
//! Published through our own client rather than the library's RemotePublisher, and serialized
//! through the static `Message` rather than `MessageDyn`: the library names each event's type
//! through protobuf's reflection (`descriptor_dyn`), and `MessageDyn`'s serializer asks for the
//! descriptor too. Either builds, on the first event, the descriptors of the events' proto files
//! and of all they import (descriptor.proto with its comments among them): a heap of some
//! 0.3 MiB in every shim, and the reflection code paged in. The type is known from the topic.

use std::{
    sync::mpsc::{self, RecvTimeoutError},
    time::Duration,
};

use containerd_shim::{
    protos::{
        protobuf::{
            well_known_types::{any::Any, timestamp::Timestamp},
            Message,
        },
        shim::{event::Envelope, events::ForwardRequest},
        ttrpc::{context::with_timeout, Client},
        EventsClient,
    },
    util::{connect, timestamp},
};
use log::warn;

/// containerd answers at once; a hung one must not stop the events after it for ever.
pub const PUBLISH_TIMEOUT: Duration = Duration::from_secs(5);

enum Msg {
    Publish(&'static str, Any, Timestamp),
    /// Answered once everything queued before it was published (or given up on).
    Flush(mpsc::SyncSender<()>),
}

#[derive(Clone)]
pub struct Events(mpsc::Sender<Msg>);

impl Events {
    pub fn start(namespace: &str) -> std::io::Result<Events> {
        let (tx, rx) = mpsc::channel::<Msg>();
        let ns = namespace.to_string();
        let address = std::env::var("TTRPC_ADDRESS").unwrap_or_default();
        std::thread::Builder::new()
            .name("events".into())
            .stack_size(128 * 1024)
            .spawn(move || {
                let mut client = None;
                for msg in rx {
                    let (topic, event, at) = match msg {
                        Msg::Publish(topic, event, at) => (topic, event, at),
                        Msg::Flush(done) => {
                            // The flusher may have given up waiting.
                            let _ = done.send(());
                            continue;
                        }
                    };
                    let mut env = Envelope::new();
                    env.topic = topic.to_string();
                    env.namespace = ns.clone();
                    env.timestamp = Some(at).into();
                    env.event = Some(event).into();
                    let mut req = ForwardRequest::new();
                    req.envelope = Some(env).into();
                    if let Err(e) = forward(&mut client, &address, &req) {
                        // A containerd started again listens on a new socket: connect anew.
                        client = None;
                        if let Err(e2) = forward(&mut client, &address, &req) {
                            warn!("publish {topic}: {e}; after reconnecting: {e2}");
                        }
                    }
                }
            })?;
        Ok(Events(tx))
    }

    pub fn send(&self, topic: &'static str, event: &impl Message) {
        match publish(topic, event) {
            // The receiver lives as long as the process.
            Ok(msg) => {
                let _ = self.0.send(msg);
            }
            Err(e) => warn!("publish {topic}: {e}"),
        }
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

/// containerd decodes an event by its type's full proto name, which each topic has one of.
fn type_name(topic: &str) -> Option<&'static str> {
    Some(match topic {
        "/tasks/create" => "containerd.events.TaskCreate",
        "/tasks/start" => "containerd.events.TaskStart",
        "/tasks/exit" => "containerd.events.TaskExit",
        "/tasks/delete" => "containerd.events.TaskDelete",
        "/tasks/oom" => "containerd.events.TaskOOM",
        "/tasks/exec-added" => "containerd.events.TaskExecAdded",
        "/tasks/exec-started" => "containerd.events.TaskExecStarted",
        "/tasks/paused" => "containerd.events.TaskPaused",
        "/tasks/resumed" => "containerd.events.TaskResumed",
        "/tasks/checkpointed" => "containerd.events.TaskCheckpointed",
        _ => return None,
    })
}

fn publish(topic: &'static str, event: &impl Message) -> Result<Msg, String> {
    let type_url = type_name(topic).ok_or("no event type for this topic")?;
    let value = event.write_to_bytes().map_err(|e| e.to_string())?;
    let event = Any {
        type_url: type_url.to_string(),
        value,
        ..Default::default()
    };
    Ok(Msg::Publish(
        topic,
        event,
        timestamp().map_err(|e| e.to_string())?,
    ))
}

/// Sends one event, connecting first when there is no client yet.
fn forward(
    client: &mut Option<EventsClient>,
    address: &str,
    req: &ForwardRequest,
) -> Result<(), String> {
    if client.is_none() {
        let fd = connect(address).map_err(|e| format!("connect {address}: {e}"))?;
        *client = Some(EventsClient::new(
            Client::new(fd).map_err(|e| format!("connect {address}: {e}"))?,
        ));
    }
    let c = client.as_ref().ok_or("no client")?;
    c.forward(with_timeout(PUBLISH_TIMEOUT.as_nanos() as i64), req)
        .map(drop)
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use containerd_shim::protos::{
        events::task::{
            TaskCheckpointed, TaskCreate, TaskDelete, TaskExecAdded, TaskExecStarted, TaskExit,
            TaskOOM, TaskPaused, TaskResumed, TaskStart,
        },
        protobuf::MessageFull,
    };

    use super::type_name;

    /// The names written by hand are the ones protobuf's reflection gives.
    #[test]
    fn type_names_match_the_protos() {
        for (topic, name) in [
            (
                "/tasks/create",
                TaskCreate::descriptor().full_name().to_string(),
            ),
            (
                "/tasks/start",
                TaskStart::descriptor().full_name().to_string(),
            ),
            (
                "/tasks/exit",
                TaskExit::descriptor().full_name().to_string(),
            ),
            (
                "/tasks/delete",
                TaskDelete::descriptor().full_name().to_string(),
            ),
            ("/tasks/oom", TaskOOM::descriptor().full_name().to_string()),
            (
                "/tasks/exec-added",
                TaskExecAdded::descriptor().full_name().to_string(),
            ),
            (
                "/tasks/exec-started",
                TaskExecStarted::descriptor().full_name().to_string(),
            ),
            (
                "/tasks/paused",
                TaskPaused::descriptor().full_name().to_string(),
            ),
            (
                "/tasks/resumed",
                TaskResumed::descriptor().full_name().to_string(),
            ),
            (
                "/tasks/checkpointed",
                TaskCheckpointed::descriptor().full_name().to_string(),
            ),
        ] {
            assert_eq!(type_name(topic), Some(name.as_str()), "{topic}");
        }
        assert_eq!(type_name("/tasks/other"), None);
    }
}
