//! HTTP/1.1 to the daemon over its unix socket: one connection per request, as the daemon's
//! API is Docker's (JSON bodies, `{"message": ...}` errors, hijacked streams for attach/exec).

use std::{io, os::unix::net::UnixStream as StdUnixStream, path::PathBuf};

use bytes::Bytes;
use http_body_util::{combinators::UnsyncBoxBody, BodyExt, Empty, Full};
use hyper::{body::Incoming, header, Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use percent_encoding::{utf8_percent_encode, AsciiSet, CONTROLS};
use serde::de::DeserializeOwned;
use tokio::net::UnixStream;

pub type Body = UnsyncBoxBody<Bytes, io::Error>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot connect to the daemon at {host}: {err} (is huskd running?)")]
    Connect { host: String, err: io::Error },
    #[error("error response from daemon: {message}")]
    Daemon { status: u16, message: String },
    #[error("talking to the daemon")]
    Http(#[from] hyper::Error),
    #[error("building a request")]
    Request(#[from] hyper::http::Error),
    #[error("the daemon's answer to {what} is not what Docker's API sends")]
    Json {
        what: String,
        source: serde_json::Error,
    },
    #[error("the daemon did not upgrade the connection for {0} (answered {1})")]
    NoUpgrade(String, StatusCode),
    #[error(transparent)]
    Io(#[from] io::Error),
}

impl Error {
    /// Docker's CLI tells "no such image" from other errors by the 404 on create.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::Daemon { status: 404, .. })
    }
}

/// A connection taken over after a 101: the socket and what hyper had already read past the
/// response head.
pub struct Hijacked {
    pub stream: StdUnixStream,
    pub buffered: Bytes,
}

#[derive(Clone)]
pub struct Client {
    sock: PathBuf,
    host: String,
}

/// Characters left as they are in a path segment: Docker's image references keep `/`, `:` and
/// `@` in the path (`/images/localhost:5000/busybox:1/json`).
const PATH: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'?')
    .add(b'<')
    .add(b'>')
    .add(b'`')
    .add(b'{')
    .add(b'}');

pub fn esc(segment: &str) -> String {
    utf8_percent_encode(segment, PATH).to_string()
}

/// `path?k=v&...` with the values form-encoded; pairs with an empty value are left out, as
/// Docker's client does for unset options.
pub fn with_query(path: &str, pairs: &[(&str, &str)]) -> String {
    let mut q = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs.iter().filter(|(_, v)| !v.is_empty()) {
        q.append_pair(k, v);
    }
    let q = q.finish();
    if q.is_empty() {
        path.to_string()
    } else {
        format!("{path}?{q}")
    }
}

pub fn empty() -> Body {
    Empty::new().map_err(|never| match never {}).boxed_unsync()
}

pub fn json_body(v: &serde_json::Value) -> Body {
    Full::new(Bytes::from(v.to_string()))
        .map_err(|never| match never {})
        .boxed_unsync()
}

impl Client {
    /// `host` is `unix:///path` (Docker's `-H` form) or a bare path.
    pub fn new(host: &str) -> anyhow::Result<Client> {
        let sock = match host.strip_prefix("unix://") {
            Some(p) => p,
            None if host.starts_with('/') => host,
            None => anyhow::bail!("host: {host}: only unix:///path sockets are supported"),
        };
        Ok(Client {
            sock: PathBuf::from(sock),
            host: format!("unix://{sock}"),
        })
    }

    async fn connect(&self) -> Result<UnixStream, Error> {
        UnixStream::connect(&self.sock)
            .await
            .map_err(|err| Error::Connect {
                host: self.host.clone(),
                err,
            })
    }

    fn build(
        &self,
        method: Method,
        path: &str,
        body: Body,
        json: bool,
    ) -> Result<Request<Body>, Error> {
        let mut b = Request::builder()
            .method(method)
            .uri(path)
            // HTTP/1.1 needs a Host; Go's server (dockerd) refuses a request without one.
            .header(header::HOST, "huskd");
        if json {
            b = b.header(header::CONTENT_TYPE, "application/json");
        }
        Ok(b.body(body)?)
    }

    /// Sends one request; an error status becomes [`Error::Daemon`] with the body's message.
    pub async fn send(&self, req: Request<Body>) -> Result<Response<Incoming>, Error> {
        let io = TokioIo::new(self.connect().await?);
        let (mut sender, conn) = hyper::client::conn::http1::handshake(io).await?;
        tokio::spawn(async move {
            if let Err(e) = conn.with_upgrades().await {
                log::debug!("connection to the daemon: {e}");
            }
        });
        log::debug!("{} {}", req.method(), req.uri());
        let resp = sender.send_request(req).await?;
        if resp.status().is_client_error() || resp.status().is_server_error() {
            let status = resp.status();
            let body = resp.into_body().collect().await?.to_bytes();
            return Err(Error::Daemon {
                status: status.as_u16(),
                message: error_message(status, &body),
            });
        }
        Ok(resp)
    }

    pub async fn request(
        &self,
        method: Method,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<Response<Incoming>, Error> {
        let req = match body {
            Some(v) => self.build(method, path, json_body(v), true)?,
            None => self.build(method, path, empty(), false)?,
        };
        self.send(req).await
    }

    /// A request whose body is streamed (an image archive).
    pub async fn upload(
        &self,
        path: &str,
        content_type: &'static str,
        body: Body,
    ) -> Result<Response<Incoming>, Error> {
        let mut req = self.build(Method::POST, path, body, false)?;
        req.headers_mut().insert(
            header::CONTENT_TYPE,
            header::HeaderValue::from_static(content_type),
        );
        self.send(req).await
    }

    /// The whole body of a successful request.
    pub async fn bytes(
        &self,
        method: Method,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<Bytes, Error> {
        let resp = self.request(method, path, body).await?;
        Ok(resp.into_body().collect().await?.to_bytes())
    }

    pub async fn json<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<T, Error> {
        let b = self.bytes(method, path, body).await?;
        serde_json::from_slice(&b).map_err(|source| Error::Json {
            what: path.split('?').next().unwrap_or(path).to_string(),
            source,
        })
    }

    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, Error> {
        self.json(Method::GET, path, None).await
    }

    /// A POST whose answer does not matter beyond its status.
    pub async fn post(&self, path: &str, body: Option<&serde_json::Value>) -> Result<(), Error> {
        self.bytes(Method::POST, path, body).await.map(drop)
    }

    /// Docker's attach and exec start: the request asks for `Upgrade: tcp`, the daemon answers
    /// 101 and the connection then carries the container's streams both ways.
    pub async fn hijack(
        &self,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<Hijacked, Error> {
        let mut req = match body {
            Some(v) => self.build(Method::POST, path, json_body(v), true)?,
            None => self.build(Method::POST, path, empty(), false)?,
        };
        let h = req.headers_mut();
        h.insert(
            header::CONNECTION,
            header::HeaderValue::from_static("Upgrade"),
        );
        h.insert(header::UPGRADE, header::HeaderValue::from_static("tcp"));
        let resp = self.send(req).await?;
        if resp.status() != StatusCode::SWITCHING_PROTOCOLS {
            return Err(Error::NoUpgrade(path.to_string(), resp.status()));
        }
        let upgraded = hyper::upgrade::on(resp).await?;
        let parts = upgraded
            .downcast::<TokioIo<UnixStream>>()
            .map_err(|_| io::Error::other("the upgraded connection is not the unix socket"))?;
        let stream = parts.io.into_inner().into_std()?;
        // The hijacked stream is read and written by plain threads (stdin, stdout).
        stream.set_nonblocking(false)?;
        Ok(Hijacked {
            stream,
            buffered: parts.read_buf,
        })
    }
}

/// Docker's error bodies are `{"message": "..."}`; anything else is shown as text.
fn error_message(status: StatusCode, body: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct Msg {
        message: String,
    }
    if let Ok(m) = serde_json::from_slice::<Msg>(body) {
        return m.message;
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        status.to_string()
    } else {
        text.to_string()
    }
}

/// Reads a streamed body chunk by chunk.
pub async fn next_chunk(body: &mut Incoming) -> Result<Option<Bytes>, Error> {
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame?.into_data() {
            return Ok(Some(data));
        }
    }
    Ok(None)
}

/// Splits a streamed body into lines (Docker's JSON-lines progress and stats streams).
pub struct Lines {
    body: Incoming,
    buf: Vec<u8>,
    done: bool,
}

impl Lines {
    pub fn new(resp: Response<Incoming>) -> Lines {
        Lines {
            body: resp.into_body(),
            buf: Vec::new(),
            done: false,
        }
    }

    pub async fn next(&mut self) -> Result<Option<Vec<u8>>, Error> {
        loop {
            if let Some(i) = self.buf.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=i).collect();
                return Ok(Some(line));
            }
            if self.done {
                if self.buf.is_empty() {
                    return Ok(None);
                }
                return Ok(Some(std::mem::take(&mut self.buf)));
            }
            match next_chunk(&mut self.body).await? {
                Some(b) => self.buf.extend_from_slice(&b),
                None => self.done = true,
            }
        }
    }
}
