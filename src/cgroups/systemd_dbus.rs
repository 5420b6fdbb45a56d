//! The few calls of systemd's D-Bus API (org.freedesktop.systemd1.Manager) that the systemd
//! cgroup driver makes, over the system bus, with rustbus: synchronous, pure Rust, and no
//! thread of its own, which husk needs (it is single-threaded, forks its init and is linked
//! statically; notes/systemd.md says why not zbus or libdbus). Every wait is bounded by
//! `TIMEOUT`, as runc bounds its own.

use rustbus::connection::{ll_conn::force_finish_on_error, Timeout};
use rustbus::message_builder::{MarshalledMessage, MessageType};
use rustbus::wire::ObjectPath;
use rustbus::{MessageBuilder, RpcConn};
use std::time::{Duration, Instant};

const DEST: &str = "org.freedesktop.systemd1";
const PATH: &str = "/org/freedesktop/systemd1";
const MANAGER: &str = "org.freedesktop.systemd1.Manager";
/// runc's bound on a unit's job, used for every reply too.
pub const TIMEOUT: Duration = Duration::from_secs(30);

/// The types of value the driver's properties take (the macro needs std's `Result` in scope).
mod value {
    rustbus::dbus_variant_sig!(Value, Bool => bool; U64 => u64; Str => String; U32s => Vec<u32>; Bytes => Vec<u8>);
}
pub use value::Value;

/// A unit property, as StartTransientUnit and SetUnitProperties take them: a(sv).
pub type Property = (String, Value);

#[derive(thiserror::Error, Debug)]
pub enum BusError {
    #[error("systemd's bus: {0}")]
    Conn(#[from] rustbus::connection::Error),
    #[error("systemd's bus: {0}")]
    Marshal(#[from] rustbus::wire::errors::MarshalError),
    #[error("systemd's bus: {0}")]
    Unmarshal(#[from] rustbus::wire::errors::UnmarshalError),
    /// An error reply: its D-Bus name and systemd's message.
    #[error("{message}")]
    Reply { name: String, message: String },
    #[error("timed out waiting for systemd to {0}")]
    TimedOut(String),
}

impl BusError {
    pub fn is(&self, name: &str) -> bool {
        matches!(self, BusError::Reply { name: n, .. } if n == name)
    }
}

pub type Result<T> = std::result::Result<T, BusError>;

pub const UNIT_EXISTS: &str = "org.freedesktop.systemd1.UnitExists";
pub const NO_SUCH_UNIT: &str = "org.freedesktop.systemd1.NoSuchUnit";

pub struct Bus {
    conn: RpcConn,
    subscribed: bool,
}

impl Bus {
    /// Connects to the system bus ($DBUS_SYSTEM_BUS_ADDRESS, else /run/dbus/system_bus_socket).
    pub fn system() -> Result<Bus> {
        Ok(Bus {
            conn: RpcConn::system_conn(Timeout::Duration(TIMEOUT))?,
            subscribed: false,
        })
    }

    /// Calls a method of systemd's manager; `fill` adds the arguments.
    fn call(
        &mut self,
        member: &str,
        fill: impl FnOnce(&mut MarshalledMessage) -> Result<()>,
    ) -> Result<MarshalledMessage> {
        let mut msg = MessageBuilder::new()
            .call(member)
            .with_interface(MANAGER)
            .on(PATH)
            .at(DEST)
            .build();
        fill(&mut msg)?;
        self.send(msg)
    }

    fn send(&mut self, mut msg: MarshalledMessage) -> Result<MarshalledMessage> {
        let serial = self
            .conn
            .send_message(&mut msg)?
            .write(Timeout::Duration(TIMEOUT))
            .map_err(force_finish_on_error)?;
        let reply = match self.conn.wait_response(serial, Timeout::Duration(TIMEOUT)) {
            Err(rustbus::connection::Error::TimedOut) => {
                return Err(BusError::TimedOut(format!(
                    "answer {:?}",
                    msg.dynheader.member
                )))
            }
            r => r?,
        };
        if reply.typ == MessageType::Error {
            let name = reply.dynheader.error_name.clone().unwrap_or_default();
            let message = reply.body.parser().get::<String>().unwrap_or(name.clone());
            return Err(BusError::Reply { name, message });
        }
        Ok(reply)
    }

    /// Asks for JobRemoved, before a job is queued, so that its end is not missed.
    fn subscribe(&mut self) -> Result<()> {
        if self.subscribed {
            return Ok(());
        }
        let rule = format!(
            "type='signal',sender='{DEST}',path='{PATH}',interface='{MANAGER}',member='JobRemoved'"
        );
        self.send(rustbus::standard_messages::add_match(&rule))?;
        self.call("Subscribe", |_| Ok(()))?;
        self.subscribed = true;
        Ok(())
    }

    /// Waits for the job's JobRemoved and returns its result ("done", "failed", "canceled"...).
    fn wait_job(&mut self, job: &str, what: &str) -> Result<String> {
        let start = Instant::now();
        loop {
            let left = TIMEOUT.saturating_sub(start.elapsed());
            let sig = match self.conn.wait_signal(Timeout::Duration(left)) {
                Err(rustbus::connection::Error::TimedOut) => {
                    return Err(BusError::TimedOut(what.to_string()))
                }
                r => r?,
            };
            if sig.dynheader.member.as_deref() != Some("JobRemoved") {
                continue;
            }
            let (_, path, _, result) = sig
                .body
                .parser()
                .get4::<u32, ObjectPath<&str>, &str, &str>()?;
            if path.as_ref() == job {
                return Ok(result.to_string());
            }
        }
    }

    /// StartTransientUnit(name, "replace", properties, []) and the job's result.
    pub fn start_transient_unit(&mut self, unit: &str, props: &[Property]) -> Result<String> {
        self.subscribe()?;
        let reply = self.call("StartTransientUnit", |m| {
            let aux: Vec<(String, Vec<Property>)> = Vec::new();
            m.body.push_param2(unit, "replace")?;
            m.body.push_param2(props, aux)?;
            Ok(())
        })?;
        let job = reply.body.parser().get::<ObjectPath<&str>>()?;
        let job = job.as_ref().to_string();
        self.wait_job(&job, &format!("create {unit}"))
    }

    /// StartUnit or StopUnit (name, "replace") and the job's result.
    pub fn unit_job(&mut self, method: &str, unit: &str) -> Result<String> {
        self.subscribe()?;
        let reply = self.call(method, |m| Ok(m.body.push_param2(unit, "replace")?))?;
        let job = reply.body.parser().get::<ObjectPath<&str>>()?;
        let job = job.as_ref().to_string();
        self.wait_job(&job, &format!("{method} {unit}"))
    }

    pub fn reset_failed_unit(&mut self, unit: &str) -> Result<()> {
        self.call("ResetFailedUnit", |m| Ok(m.body.push_param(unit)?))
            .map(drop)
    }

    /// SetUnitProperties(name, runtime=true, properties), as runc's `update` does.
    pub fn set_unit_properties(&mut self, unit: &str, props: &[Property]) -> Result<()> {
        self.call("SetUnitProperties", |m| {
            m.body.push_param2(unit, true)?;
            Ok(m.body.push_param(props)?)
        })
        .map(drop)
    }
}
