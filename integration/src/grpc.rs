//! Just enough of gRPC (HTTP/2 with prior knowledge, over containerd's unix socket) to call one
//! unary method of containerd's API, for what ctr cannot send: a container whose runtime is
//! not `io.containerd.runc.v2` but whose runtime options are runc's.
//!
//! Requests are encoded by hand (protobuf, HPACK literals); the reply is judged by its frames:
//! a DATA frame is a message, a stream that ends without one is an error. Every read is bounded.

use std::{
    io::{Read, Write},
    os::unix::net::UnixStream,
    path::Path,
    time::Duration,
};

const HEADERS: u8 = 0x1;
const DATA: u8 = 0x0;
const RST_STREAM: u8 = 0x3;
const SETTINGS: u8 = 0x4;
const PING: u8 = 0x6;
const GOAWAY: u8 = 0x7;
const END_STREAM: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
const ACK: u8 = 0x1;
/// HTTP/2's default SETTINGS_MAX_FRAME_SIZE.
const MAX_FRAME: usize = 16384;

fn varint(mut v: u64, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// A length-delimited protobuf field (string, bytes or message).
pub fn field(out: &mut Vec<u8>, number: u64, bytes: &[u8]) {
    varint(number << 3 | 2, out);
    varint(bytes.len() as u64, out);
    out.extend_from_slice(bytes);
}

/// A google.protobuf.Any.
pub fn any(type_url: &str, value: &[u8]) -> Vec<u8> {
    let mut m = Vec::new();
    field(&mut m, 1, type_url.as_bytes());
    field(&mut m, 2, value);
    m
}

/// An HPACK string literal, not Huffman-coded.
fn hpack_string(s: &str, out: &mut Vec<u8>) {
    let n = s.len();
    if n < 127 {
        out.push(n as u8);
    } else {
        out.push(127);
        let mut rest = n - 127;
        while rest >= 0x80 {
            out.push(rest as u8 | 0x80);
            rest >>= 7;
        }
        out.push(rest as u8);
    }
    out.extend_from_slice(s.as_bytes());
}

fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let n = payload.len() as u32;
    let mut f = vec![(n >> 16) as u8, (n >> 8) as u8, n as u8, kind, flags];
    f.extend_from_slice(&stream.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// Calls `method` (`/package.Service/Method`) in containerd namespace `ns` with the encoded
/// request `msg`; returns the encoded reply, or what the server sent instead.
pub fn call(sock: &Path, ns: &str, method: &str, msg: &[u8]) -> Result<Vec<u8>, String> {
    let mut s = UnixStream::connect(sock).map_err(|e| format!("{}: {e}", sock.display()))?;
    let timeout = Some(Duration::from_secs(30));
    s.set_read_timeout(timeout).map_err(|e| e.to_string())?;
    s.set_write_timeout(timeout).map_err(|e| e.to_string())?;

    let mut block = Vec::new();
    for (name, value) in [
        (":method", "POST"),
        (":scheme", "http"),
        (":path", method),
        (":authority", "containerd"),
        ("content-type", "application/grpc"),
        ("te", "trailers"),
        ("containerd-namespace", ns),
    ] {
        // Literal header field without indexing, new name.
        block.push(0);
        hpack_string(name, &mut block);
        hpack_string(value, &mut block);
    }
    let mut body = vec![0];
    body.extend_from_slice(&(msg.len() as u32).to_be_bytes());
    body.extend_from_slice(msg);

    let mut out = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    out.extend(frame(SETTINGS, 0, 0, &[]));
    out.extend(frame(HEADERS, END_HEADERS, 1, &block));
    let chunks: Vec<&[u8]> = body.chunks(MAX_FRAME).collect();
    for (i, c) in chunks.iter().enumerate() {
        let last = i + 1 == chunks.len();
        out.extend(frame(DATA, if last { END_STREAM } else { 0 }, 1, c));
    }
    s.write_all(&out).map_err(|e| format!("write: {e}"))?;

    let mut reply = Vec::new();
    let mut headers = Vec::new();
    loop {
        let mut h = [0u8; 9];
        s.read_exact(&mut h)
            .map_err(|e| format!("read: {e} (reply so far {reply:?})"))?;
        let n = (h[0] as usize) << 16 | (h[1] as usize) << 8 | h[2] as usize;
        let (kind, flags) = (h[3], h[4]);
        let stream = u32::from_be_bytes([h[5], h[6], h[7], h[8]]) & 0x7fff_ffff;
        let mut p = vec![0u8; n];
        s.read_exact(&mut p).map_err(|e| format!("read: {e}"))?;
        match kind {
            SETTINGS if flags & ACK == 0 => s
                .write_all(&frame(SETTINGS, ACK, 0, &[]))
                .map_err(|e| format!("write: {e}"))?,
            PING if flags & ACK == 0 => s
                .write_all(&frame(PING, ACK, 0, &p))
                .map_err(|e| format!("write: {e}"))?,
            GOAWAY | RST_STREAM => return Err(format!("connection refused the call: {p:?}")),
            DATA if stream == 1 => reply.extend_from_slice(&p),
            HEADERS if stream == 1 => headers.extend_from_slice(&p),
            _ => {}
        }
        if stream == 1 && flags & END_STREAM != 0 {
            break;
        }
    }
    // One gRPC message: a zero compression flag, a length, the message.
    if reply.len() < 5 {
        // Its status and message are in the trailers, Huffman-coded HPACK, not decoded here.
        return Err(format!(
            "{method} failed: no reply message ({} bytes of coded trailers)",
            headers.len()
        ));
    }
    Ok(reply[5..].to_vec())
}
