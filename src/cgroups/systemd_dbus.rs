//! The few calls of systemd's D-Bus API (org.freedesktop.systemd1.Manager) that the systemd
//! cgroup driver makes, over the system bus, or, for root when that bus is not there, over
//! systemd's own socket as go-systemd (runc's) falls back to it. rustbus marshals and unmarshals the messages:
//! pure Rust, and no thread of its own, which husk needs (it is single-threaded, forks its init
//! and is linked statically; notes/systemd.md says why not zbus or libdbus). The connection is
//! ours, a blocking unix socket whose every read and write is bounded by a deadline: rustbus's
//! own connect and SASL exchange wait without a bound (and spin for ever on a bus that closes
//! before answering). The handshake (connect, AUTH EXTERNAL, Hello) is bounded by
//! `CONNECT_TIMEOUT`, each call and job by `TIMEOUT`, as runc bounds its own.

use rustbus::message_builder::{MarshalledMessage, MessageType};
use rustbus::wire::{marshal, unmarshal, ObjectPath};
use rustbus::MessageBuilder;
use std::collections::VecDeque;
use std::io::{ErrorKind, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

const DEST: &str = "org.freedesktop.systemd1";
const PATH: &str = "/org/freedesktop/systemd1";
const MANAGER: &str = "org.freedesktop.systemd1.Manager";
/// runc's bound on a unit's job, used for every reply too.
pub const TIMEOUT: Duration = Duration::from_secs(30);
/// The handshake's bound. The bus daemon answers it itself, in under a millisecond here; in the
/// emulated v2 guest, with tests in parallel, 10 s was seen to be too short for the real one.
pub const CONNECT_TIMEOUT: Duration = TIMEOUT;
/// Where the system bus is unless $DBUS_SYSTEM_BUS_ADDRESS says otherwise.
const SYSTEM_BUS: &str = "/run/dbus/system_bus_socket";
/// systemd's own socket: it answers there without a bus daemon, to root only (mode 0600).
const PRIVATE_BUS: &str = "/run/systemd/private";
/// The protocol's limit on a message (2^27 bytes): a longer length is garbage, not allocated.
const MAX_MESSAGE: usize = 1 << 27;
/// How long the first call on a direct connection may go unanswered before a Ping nudges
/// systemd ([`Conn::nudge_first`]).
const NUDGE_MS: u16 = 200;

/// The types of value the driver's properties take (the macro needs std's `Result` in scope).
mod value {
    rustbus::dbus_variant_sig!(Value, Bool => bool; U64 => u64; Str => String; U32s => Vec<u32>; Bytes => Vec<u8>; Devices => Vec<(String, String)>);
}
pub use value::Value;

/// A unit property, as StartTransientUnit and SetUnitProperties take them: a(sv).
pub type Property = (String, Value);

#[derive(thiserror::Error, Debug)]
pub enum BusError {
    /// `bus` names the socket: "the system bus at PATH" or "systemd's private socket PATH".
    #[error("{bus}: {err}")]
    Io { bus: String, err: std::io::Error },
    #[error("{bus} did not answer within {secs} s")]
    NoAnswer { bus: String, secs: f64 },
    #[error("{bus} refused us: {line:?}")]
    Refused { bus: String, line: String },
    /// The system bus failed, and then systemd's private socket too.
    #[error("{bus}; and {private}")]
    Neither {
        bus: Box<BusError>,
        private: Box<BusError>,
    },
    #[error("$DBUS_SYSTEM_BUS_ADDRESS: no unix:path= or unix:abstract= in {0:?}")]
    Address(String),
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

/// A bus address: a socket's path, or an abstract name (shown with a leading '@').
#[derive(Debug, PartialEq)]
pub enum Addr {
    Path(String),
    Abstract(String),
}

impl std::fmt::Display for Addr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Addr::Path(p) => f.write_str(p),
            Addr::Abstract(n) => write!(f, "@{n}"),
        }
    }
}

/// How errors name a connection's socket.
fn bus_name(addr: &Addr, direct: bool) -> String {
    if direct {
        format!("systemd's private socket {addr}")
    } else {
        format!("the system bus at {addr}")
    }
}

/// The first unix address of a D-Bus address list ("unix:path=/run/x,guid=...;tcp:..."), with
/// its %-escapes undone, as go-dbus (runc's) reads $DBUS_SYSTEM_BUS_ADDRESS.
pub fn parse_address(list: &str) -> Result<Addr> {
    for entry in list.split(';') {
        let Some(("unix", pairs)) = entry.split_once(':') else {
            continue;
        };
        for (k, v) in pairs.split(',').filter_map(|p| p.split_once('=')) {
            match k {
                "path" => return Ok(Addr::Path(unescape(v))),
                "abstract" => return Ok(Addr::Abstract(unescape(v))),
                _ => {}
            }
        }
    }
    Err(BusError::Address(list.to_string()))
}

fn unescape(v: &str) -> String {
    let b = v.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = (b[i] == b'%')
            .then(|| b.get(i + 1..i + 3))
            .flatten()
            .and_then(|h| u8::from_str_radix(std::str::from_utf8(h).ok()?, 16).ok());
        match hex {
            Some(c) => {
                out.push(c);
                i += 3;
            }
            None => {
                out.push(b[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A connection to the bus: a blocking socket whose reads and writes each get what is left
/// of a deadline as their timeout (SO_RCVTIMEO, SO_SNDTIMEO).
struct Conn {
    stream: UnixStream,
    addr: Addr,
    /// Straight to systemd (its private socket): no bus daemon, so no Hello and no AddMatch,
    /// and systemd sends its signals to such a connection unasked.
    direct: bool,
    serial: u32,
    /// Signals read while waiting for a reply.
    signals: VecDeque<MarshalledMessage>,
    /// Whether a method call went out already (see [`Conn::nudge_first`]).
    called: bool,
}

/// Why a bounded exchange ended early.
enum Stop {
    Deadline,
    Io(std::io::Error),
    /// A message that does not marshal or unmarshal.
    Bad(BusError),
}

impl From<rustbus::wire::errors::UnmarshalError> for Stop {
    fn from(e: rustbus::wire::errors::UnmarshalError) -> Stop {
        Stop::Bad(e.into())
    }
}

impl From<std::io::Error> for Stop {
    fn from(e: std::io::Error) -> Stop {
        match e.kind() {
            // SO_RCVTIMEO/SO_SNDTIMEO ran out (EAGAIN), or connect's wait for a full backlog.
            ErrorKind::WouldBlock | ErrorKind::TimedOut => Stop::Deadline,
            _ => Stop::Io(e),
        }
    }
}

impl Stop {
    /// The error for the user: `deadline` says what did not happen in time.
    fn into_error(
        self,
        bus: impl FnOnce() -> String,
        deadline: impl FnOnce() -> BusError,
    ) -> BusError {
        match self {
            Stop::Deadline => deadline(),
            Stop::Io(err) => BusError::Io { bus: bus(), err },
            Stop::Bad(e) => e,
        }
    }
}

fn left(deadline: Instant) -> std::result::Result<Duration, Stop> {
    // A zero timeout would mean none at all to the kernel: the deadline is passed then.
    match deadline.checked_duration_since(Instant::now()) {
        Some(d) if !d.is_zero() => Ok(d),
        _ => Err(Stop::Deadline),
    }
}

impl Conn {
    /// Connects, authenticates (AUTH EXTERNAL, as every client of the system bus) and says
    /// Hello, all before `deadline`: a daemon that accepts and never answers, or whose backlog
    /// stays full, fails it then.
    fn open(addr: Addr, direct: bool, timeout: Duration) -> Result<Conn> {
        let deadline = Instant::now() + timeout;
        let secs = timeout.as_secs_f64();
        let mut conn = Conn::connect(addr, direct, deadline).map_err(|(addr, s)| {
            let bus = || bus_name(&addr, direct);
            s.into_error(bus, || BusError::NoAnswer { bus: bus(), secs })
        })?;
        conn.handshake(deadline).map_err(|s| {
            let bus = || conn.name();
            s.into_error(bus, || BusError::NoAnswer { bus: bus(), secs })
        })?;
        Ok(conn)
    }

    fn name(&self) -> String {
        bus_name(&self.addr, self.direct)
    }

    fn handshake(&mut self, deadline: Instant) -> std::result::Result<(), Stop> {
        // The uid as the hex of its decimal digits, as the protocol has it ("0" is "30").
        let uid: String = nix::unistd::getuid()
            .to_string()
            .bytes()
            .map(|d| format!("{d:02x}"))
            .collect();
        self.write_all(format!("\0AUTH EXTERNAL {uid}\r\n").as_bytes(), deadline)?;
        let line = self.read_line(deadline)?;
        if !line.starts_with("OK ") {
            return Err(Stop::Bad(BusError::Refused {
                bus: self.name(),
                line,
            }));
        }
        self.write_all(b"BEGIN\r\n", deadline)?;
        if self.direct {
            return Ok(());
        }
        let serial = self.send(&rustbus::standard_messages::hello(), deadline)?;
        self.reply(serial, deadline)?;
        Ok(())
    }

    fn connect(
        addr: Addr,
        direct: bool,
        deadline: Instant,
    ) -> std::result::Result<Conn, (Addr, Stop)> {
        use nix::sys::socket::{connect, socket, AddressFamily, SockFlag, SockType, UnixAddr};
        let made = (|| -> std::result::Result<UnixStream, Stop> {
            let sa = match &addr {
                Addr::Path(p) => UnixAddr::new(p.as_str()),
                Addr::Abstract(n) => UnixAddr::new_abstract(n.as_bytes()),
            }
            .map_err(std::io::Error::from)?;
            let fd = socket(
                AddressFamily::Unix,
                SockType::Stream,
                SockFlag::SOCK_CLOEXEC,
                None,
            )
            .map_err(std::io::Error::from)?;
            let stream = UnixStream::from(fd);
            // connect waits for room in a full backlog up to SO_SNDTIMEO, then says EAGAIN.
            stream.set_write_timeout(Some(left(deadline)?))?;
            connect(stream.as_raw_fd(), &sa).map_err(std::io::Error::from)?;
            Ok(stream)
        })();
        match made {
            Ok(stream) => Ok(Conn {
                stream,
                addr,
                direct,
                serial: 1,
                signals: VecDeque::new(),
                called: false,
            }),
            Err(s) => Err((addr, s)),
        }
    }

    fn write_all(&mut self, mut buf: &[u8], deadline: Instant) -> std::result::Result<(), Stop> {
        while !buf.is_empty() {
            self.stream.set_write_timeout(Some(left(deadline)?))?;
            match self.stream.write(buf) {
                Ok(n) => buf = &buf[n..],
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    fn read_exact(
        &mut self,
        mut buf: &mut [u8],
        deadline: Instant,
    ) -> std::result::Result<(), Stop> {
        while !buf.is_empty() {
            self.stream.set_read_timeout(Some(left(deadline)?))?;
            match self.stream.read(buf) {
                Ok(0) => {
                    return Err(Stop::Io(std::io::Error::new(
                        ErrorKind::UnexpectedEof,
                        "closed the connection",
                    )))
                }
                Ok(n) => buf = &mut buf[n..],
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// One line of the SASL exchange, without its "\r\n". Read a byte at a time: the bus sends
    /// nothing after it before our BEGIN, and a line is a few dozen bytes.
    fn read_line(&mut self, deadline: Instant) -> std::result::Result<String, Stop> {
        let mut line = Vec::new();
        while !line.ends_with(b"\r\n") {
            if line.len() > 512 {
                return Err(Stop::Io(std::io::Error::new(
                    ErrorKind::InvalidData,
                    "an authentication line of over 512 bytes",
                )));
            }
            let mut b = [0u8];
            self.read_exact(&mut b, deadline)?;
            line.push(b[0]);
        }
        line.truncate(line.len() - 2);
        Ok(String::from_utf8_lossy(&line).into_owned())
    }

    /// Sends `msg`; returns its serial, which its reply names.
    fn send(
        &mut self,
        msg: &MarshalledMessage,
        deadline: Instant,
    ) -> std::result::Result<u32, Stop> {
        let serial = self.serial;
        self.serial += 1;
        let mut head = Vec::new();
        marshal::marshal(msg, serial, &mut head).map_err(|e| Stop::Bad(e.into()))?;
        self.write_all(&head, deadline)?;
        self.write_all(msg.get_buf(), deadline)?;
        Ok(serial)
    }

    /// The next message: the fixed header gives the length of the header fields and of the
    /// body.
    fn read_message(&mut self, deadline: Instant) -> std::result::Result<MarshalledMessage, Stop> {
        let mut buf = vec![0u8; 16];
        self.read_exact(&mut buf, deadline)?;
        let (_, header) = unmarshal::unmarshal_header(&buf, 0)?;
        let (_, fields) = rustbus::wire::util::parse_u32(&buf[12..16], header.byteorder)?;
        let len = (16 + fields as usize).next_multiple_of(8) + header.body_len as usize;
        if len > MAX_MESSAGE {
            return Err(Stop::Io(std::io::Error::new(
                ErrorKind::InvalidData,
                format!("a message of {len} bytes"),
            )));
        }
        buf.resize(len, 0);
        self.read_exact(&mut buf[16..], deadline)?;
        let (hlen, header) = unmarshal::unmarshal_header(&buf, 0)?;
        let (dlen, dynheader) = unmarshal::unmarshal_dynamic_header(&header, &buf, hlen)?;
        let (_, msg) = unmarshal::unmarshal_next_message(&header, dynheader, &buf, hlen + dlen)?;
        Ok(msg)
    }

    /// After the first call on a direct connection: systemd's sd-bus (252 in the guest) can take
    /// that call into its buffer in the same read as our BEGIN, while it authenticates, and
    /// then leave it unparsed until the socket is readable again, which nothing makes it when
    /// no unit changes. A StopUnit went unanswered for the whole 30 s that way, in 1 run of 6
    /// in the guest (notes/systemd.md). So when no answer has started within NUDGE, a Ping
    /// (answered, and dropped by `reply`) makes the socket readable; it costs nothing when
    /// systemd is only slow.
    fn nudge_first(&mut self, deadline: Instant) -> std::result::Result<(), Stop> {
        use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
        use std::os::fd::AsFd;
        if !self.direct || std::mem::replace(&mut self.called, true) {
            return Ok(());
        }
        let mut fds = [PollFd::new(self.stream.as_fd(), PollFlags::POLLIN)];
        // An error (EINTR) only skips the Ping; the reply is waited for as always.
        if poll(&mut fds, PollTimeout::from(NUDGE_MS)) != Ok(0) {
            return Ok(());
        }
        let ping = MessageBuilder::new()
            .call("Ping")
            .with_interface("org.freedesktop.DBus.Peer")
            .on("/")
            .at(DEST)
            .build();
        self.send(&ping, deadline).map(drop)
    }

    /// The reply to `serial`; signals on the way are kept for `signal`, anything else dropped.
    fn reply(
        &mut self,
        serial: u32,
        deadline: Instant,
    ) -> std::result::Result<MarshalledMessage, Stop> {
        loop {
            let msg = self.read_message(deadline)?;
            match msg.typ {
                MessageType::Reply | MessageType::Error
                    if msg.dynheader.response_serial == Some(serial) =>
                {
                    return Ok(msg)
                }
                MessageType::Signal => self.signals.push_back(msg),
                _ => {}
            }
        }
    }

    fn signal(&mut self, deadline: Instant) -> std::result::Result<MarshalledMessage, Stop> {
        loop {
            if let Some(s) = self.signals.pop_front() {
                return Ok(s);
            }
            let msg = self.read_message(deadline)?;
            if msg.typ == MessageType::Signal {
                return Ok(msg);
            }
        }
    }
}

pub struct Bus {
    conn: Conn,
    subscribed: bool,
}

impl Bus {
    /// Connects to the system bus: $DBUS_SYSTEM_BUS_ADDRESS (as runc's go-dbus reads it), else
    /// /run/dbus/system_bus_socket. When that fails, root tries systemd's private socket, as
    /// go-systemd's NewWithContext does: a host may run systemd without a bus daemon. A bus
    /// that took the whole bound without answering is not retried: that is a wedged daemon,
    /// said as such, not a missing one, and a second wait would double the time to the error.
    pub fn system() -> Result<Bus> {
        let addr = match std::env::var("DBUS_SYSTEM_BUS_ADDRESS") {
            Ok(a) if !a.is_empty() => parse_address(&a)?,
            _ => Addr::Path(SYSTEM_BUS.to_string()),
        };
        match Bus::connect(addr, false, CONNECT_TIMEOUT) {
            Err(e @ (BusError::Io { .. } | BusError::Refused { .. }))
                if nix::unistd::geteuid().is_root() =>
            {
                let private = Addr::Path(PRIVATE_BUS.to_string());
                Bus::connect(private, true, CONNECT_TIMEOUT).map_err(|p| BusError::Neither {
                    bus: Box::new(e),
                    private: Box::new(p),
                })
            }
            r => r,
        }
    }

    fn connect(addr: Addr, direct: bool, timeout: Duration) -> Result<Bus> {
        Ok(Bus {
            conn: Conn::open(addr, direct, timeout)?,
            subscribed: false,
        })
    }

    /// The error for `s`, where `what` is what systemd did not do in time.
    fn error(&self, s: Stop, what: impl FnOnce() -> String) -> BusError {
        s.into_error(|| self.conn.name(), || BusError::TimedOut(what()))
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

    fn send(&mut self, msg: MarshalledMessage) -> Result<MarshalledMessage> {
        let deadline = Instant::now() + TIMEOUT;
        let what = || format!("answer {:?}", msg.dynheader.member);
        let reply = self
            .conn
            .send(&msg, deadline)
            .and_then(|serial| {
                self.conn.nudge_first(deadline)?;
                self.conn.reply(serial, deadline)
            })
            .map_err(|s| self.error(s, what))?;
        if reply.typ == MessageType::Error {
            let name = reply.dynheader.error_name.clone().unwrap_or_default();
            let message = reply.body.parser().get::<String>().unwrap_or(name.clone());
            return Err(BusError::Reply { name, message });
        }
        Ok(reply)
    }

    /// Asks for JobRemoved, before a job is queued, so that its end is not missed.
    fn subscribe(&mut self) -> Result<()> {
        if self.subscribed || self.conn.direct {
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
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let sig = self
                .conn
                .signal(deadline)
                .map_err(|s| self.error(s, || what.to_string()))?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixListener;

    #[test]
    fn addresses_are_read_as_go_dbus_reads_them() {
        let p = |a: &str| parse_address(a).unwrap();
        assert_eq!(
            p("unix:path=/run/dbus/system_bus_socket"),
            Addr::Path(SYSTEM_BUS.into())
        );
        assert_eq!(
            p("tcp:host=x;unix:guid=1,path=/tmp/a%20b"),
            Addr::Path("/tmp/a b".into())
        );
        assert_eq!(
            p("unix:abstract=/tmp/dbus-x"),
            Addr::Abstract("/tmp/dbus-x".into())
        );
        for bad in ["", "tcp:host=x,port=1", "unix:guid=1", "/run/bus"] {
            assert!(
                matches!(parse_address(bad), Err(BusError::Address(_))),
                "{bad}"
            );
        }
    }

    fn sock(name: &str) -> (std::path::PathBuf, UnixListener) {
        let dir = std::env::temp_dir().join(format!("husk-dbus-{}-{name}", std::process::id()));
        // Left over from an earlier run with the same pid, if any.
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir(&dir).unwrap();
        let path = dir.join("bus");
        let l = UnixListener::bind(&path).unwrap();
        (path, l)
    }

    /// Fails within the bound, saying so and naming the socket.
    #[track_caller]
    fn assert_no_answer(path: &std::path::Path) {
        let start = Instant::now();
        let e = Bus::connect(
            Addr::Path(path.to_str().unwrap().into()),
            false,
            Duration::from_millis(300),
        )
        .err()
        .expect("connected to a bus that never answers");
        assert!(
            start.elapsed() < Duration::from_secs(3),
            "{:?}",
            start.elapsed()
        );
        assert_eq!(
            e.to_string(),
            format!(
                "the system bus at {} did not answer within 0.3 s",
                path.display()
            )
        );
        // The test's own directory: a failure to remove it fails nothing.
        let _ = std::fs::remove_dir_all(path.parent().unwrap());
    }

    /// A daemon that has not accepted yet answers as one that accepted and never answers.
    #[test]
    fn a_bus_that_never_answers_the_handshake_times_out() {
        let (path, _l) = sock("silent");
        assert_no_answer(&path);
    }

    #[test]
    fn a_bus_whose_backlog_stays_full_times_out() {
        let (path, l) = sock("full");
        // SAFETY: listen(2) again on our socket only changes its backlog; the first
        // connection then fills it.
        assert_eq!(unsafe { libc::listen(l.as_raw_fd(), 0) }, 0);
        let _queued = UnixStream::connect(&path).unwrap();
        assert_no_answer(&path);
    }

    /// rustbus's own handshake spins for ever on this one (it reads on after EOF).
    #[test]
    fn a_bus_that_closes_fails_at_once() {
        let (path, l) = sock("closes");
        let t = std::thread::spawn(move || drop(l.accept().unwrap()));
        let e = Bus::connect(Addr::Path(path.to_str().unwrap().into()), false, TIMEOUT)
            .err()
            .expect("connected to a bus that closes");
        t.join().unwrap();
        // EOF, or EPIPE when it closed before our AUTH went out.
        assert!(matches!(e, BusError::Io { .. }), "{e}");
        // The test's own directory: a failure to remove it fails nothing.
        let _ = std::fs::remove_dir_all(path.parent().unwrap());
    }

    #[test]
    fn a_bus_that_refuses_us_says_so() {
        let (path, l) = sock("refuses");
        let t = std::thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            let mut b = [0u8; 64];
            let n = s.read(&mut b).unwrap();
            assert!(b[..n].starts_with(b"\0AUTH EXTERNAL "), "{:?}", &b[..n]);
            s.write_all(b"REJECTED EXTERNAL\r\n").unwrap();
        });
        let e = Bus::connect(Addr::Path(path.to_str().unwrap().into()), false, TIMEOUT)
            .err()
            .expect("connected to a bus that refuses");
        t.join().unwrap();
        assert_eq!(
            e.to_string(),
            format!(
                "the system bus at {} refused us: \"REJECTED EXTERNAL\"",
                path.display()
            )
        );
        // The test's own directory: a failure to remove it fails nothing.
        let _ = std::fs::remove_dir_all(path.parent().unwrap());
    }

    /// sd-bus may leave the first call of a direct connection unread until more comes in
    /// ([`Conn::nudge_first`]): this systemd answers the first call only once a second
    /// message has arrived.
    #[test]
    fn a_first_call_left_unread_is_answered_after_a_nudge() {
        let (path, l) = sock("unread");
        let t = std::thread::spawn(move || {
            let (stream, _) = l.accept().unwrap();
            let mut c = Conn {
                stream,
                addr: Addr::Path(String::new()),
                direct: true,
                serial: 1,
                signals: VecDeque::new(),
                called: true,
            };
            let deadline = Instant::now() + TIMEOUT;
            let auth = c.read_line(deadline).ok().unwrap();
            assert!(auth.starts_with("\0AUTH EXTERNAL "), "{auth:?}");
            c.write_all(b"OK 0123456789abcdef\r\n", deadline)
                .ok()
                .unwrap();
            assert_eq!(c.read_line(deadline).ok().unwrap(), "BEGIN");
            let call = c.read_message(deadline).ok().unwrap();
            let nudge = c.read_message(deadline).ok().unwrap();
            assert_eq!(nudge.dynheader.member.as_deref(), Some("Ping"));
            c.send(&call.dynheader.make_response(), deadline)
                .ok()
                .unwrap();
        });
        let mut bus =
            Bus::connect(Addr::Path(path.to_str().unwrap().into()), true, TIMEOUT).unwrap();
        let start = Instant::now();
        bus.reset_failed_unit("x.scope").unwrap();
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "{:?}",
            start.elapsed()
        );
        t.join().unwrap();
        // The test's own directory: a failure to remove it fails nothing.
        let _ = std::fs::remove_dir_all(path.parent().unwrap());
    }
}
