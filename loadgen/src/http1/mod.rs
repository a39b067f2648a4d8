//! The request path: a small keep-alive HTTP/1.1 client for the stores' JSON APIs.
//!
//! Why not reqwest: under callgrind one `GET` through reqwest cost about 60,000 instructions
//! in the load generator (the URL parsed three times, the redirect, decompression and retry
//! layers, hyper-util's pool and the hand-off to a connection task), and every one of them is
//! CPU the store under test does not get on a small machine. Here the worker that runs an
//! operation takes an idle connection of its endpoint, writes the request with one `write`,
//! reads the answer on its own task (no hand-off), parses the head with httparse and lends
//! the body to the caller's decoder before the connection goes back to the pool, as wrk does.
//! Nothing the stores' APIs do not use is here: no TLS, redirects, compression, proxies,
//! 1xx answers or pipelining.
//!
//! Outcomes follow [`crate::outcome`]: no connection is a definite failure (`connect`);
//! anything that goes wrong once a request may have been written (reset, early EOF, a
//! malformed answer) is unknown (`reset`); running out of time is unknown (`timeout`). An
//! idle connection the server has closed is noticed before it is used (the reactor has
//! marked it readable), so a request is not sent on it; if the server closes it in the
//! instant between, a read is repeated on a fresh connection (it changes nothing), a write
//! is not.

#[cfg(test)]
mod tests;

use std::ops::Range;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::outcome::{ErrorClass, OpError};

/// Idle connections kept per endpoint; more are closed when they come back.
const MAX_IDLE: usize = 1024;
/// Room made in a connection's buffer before each read. An answer that fits leaves part of it
/// unfilled, and tokio then knows the socket is drained without another `read`. The stores'
/// answers are a few hundred bytes (a 256-byte value and the head); a longer one takes more
/// reads. Every connection keeps its buffer, so this is most of a connection's memory: 8 KiB
/// made 1,000 users' connections 8 MB.
const READ_CHUNK: usize = 2 * 1024;
/// Longest answer head accepted.
const MAX_HEAD: usize = 64 * 1024;
/// Most headers in an answer head.
const MAX_HEADERS: usize = 32;

/// The request methods the stores' APIs use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Method {
    /// `GET`: safe to repeat.
    Get,
    /// `PUT`.
    Put,
    /// `POST`.
    Post,
}

impl Method {
    fn as_bytes(self) -> &'static [u8] {
        match self {
            Method::Get => b"GET ",
            Method::Put => b"PUT ",
            Method::Post => b"POST ",
        }
    }
}

/// A request without a body, for [`HttpClient::call`].
pub(crate) const NO_BODY: Option<&()> = None;

/// Keep-alive connections to a fixed list of endpoints.
#[derive(Debug)]
pub(crate) struct HttpClient {
    endpoints: Box<[Endpoint]>,
    timeout: Duration,
}

#[derive(Debug)]
struct Endpoint {
    /// `HOST:PORT`: where to connect, and the `Host` header.
    authority: String,
    /// The base URL's path, without a trailing slash (usually empty).
    prefix: String,
    /// Idle connections, most recently used last.
    idle: Mutex<Vec<Conn>>,
}

#[derive(Debug)]
struct Conn {
    stream: TcpStream,
    /// The request while it is written, then the answer while it is read.
    buf: Vec<u8>,
    /// A request body while its length is not yet known.
    body: Vec<u8>,
}

/// The head of an answer and where its body lies in the connection's buffer.
struct Answer {
    status: u16,
    body: Range<usize>,
    keep_alive: bool,
}

/// Why an exchange on a connection failed.
enum Broken {
    /// The connection ended (EOF or reset) before any byte of the answer arrived.
    Closed(std::io::Error),
    /// Anything after that: a broken answer, an I/O error mid-answer.
    Answer(String),
}

impl HttpClient {
    /// A client for `endpoints` (`http://HOST:PORT`, optionally with a path; checked by the
    /// caller), every call bounded by `timeout`.
    pub(crate) fn new(endpoints: &[String], timeout: Duration) -> Self {
        let endpoints = endpoints
            .iter()
            .map(|e| {
                let rest = e.strip_prefix("http://").unwrap_or(e);
                let (authority, prefix) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
                let authority = if authority.contains(':') {
                    authority.to_string()
                } else {
                    format!("{authority}:80")
                };
                Endpoint {
                    authority,
                    prefix: prefix.trim_end_matches('/').to_string(),
                    idle: Mutex::new(Vec::new()),
                }
            })
            .collect();
        Self { endpoints, timeout }
    }

    /// Sends a request to endpoint `node` (modulo the count): `method`, the path `path` writes
    /// (already percent-encoded, after the base URL's own path), and `body` as JSON; then
    /// hands the answer's status and body to `answer`.
    pub(crate) async fn call<B, R>(
        &self,
        node: usize,
        method: Method,
        path: &(dyn Fn(&mut Vec<u8>) + Sync),
        body: Option<&B>,
        answer: impl FnOnce(u16, &[u8]) -> R,
    ) -> Result<R, OpError>
    where
        B: Serialize + ?Sized,
    {
        let endpoint = &self.endpoints[node % self.endpoints.len()];
        let attempt = async {
            let mut repeated = false;
            loop {
                let (mut conn, reused) = match endpoint.take_idle() {
                    Some(conn) => (conn, true),
                    None => (endpoint.connect().await?, false),
                };
                conn.write_head(endpoint, method, path, body)?;
                match conn.exchange().await {
                    Ok(a) => {
                        let r = answer(a.status, &conn.buf[a.body]);
                        if a.keep_alive {
                            endpoint.put_idle(conn);
                        }
                        return Ok(r);
                    }
                    // The server closed a kept-alive connection as the request went out: a
                    // read is repeated once on a fresh one.
                    Err(Broken::Closed(_)) if reused && method == Method::Get && !repeated => {
                        repeated = true;
                    }
                    Err(Broken::Closed(e)) => {
                        return Err(OpError::unknown(
                            ErrorClass::Reset,
                            format!(
                                "{}: connection closed before an answer: {e}",
                                endpoint.authority
                            ),
                        ));
                    }
                    Err(Broken::Answer(detail)) => {
                        return Err(OpError::unknown(
                            ErrorClass::Reset,
                            format!("{}: {detail}", endpoint.authority),
                        ));
                    }
                }
            }
        };
        match tokio::time::timeout(self.timeout, attempt).await {
            Ok(result) => result,
            Err(_) => Err(OpError::unknown(
                ErrorClass::Timeout,
                format!(
                    "{}: no answer within {:?}",
                    endpoint.authority, self.timeout
                ),
            )),
        }
    }
}

impl Endpoint {
    /// An idle connection the server has not closed, if there is one. A closed one has been
    /// marked readable by the reactor, so the check costs no system call while it is open.
    fn take_idle(&self) -> Option<Conn> {
        loop {
            let conn = self
                .idle
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .pop()?;
            let mut probe = [0u8; 1];
            match conn.stream.try_read(&mut probe) {
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Some(conn),
                // EOF, stray bytes or an error: not reusable.
                _ => continue,
            }
        }
    }

    fn put_idle(&self, mut conn: Conn) {
        // A huge answer's buffer is not kept for the next one.
        if conn.buf.capacity() > 4 * READ_CHUNK {
            conn.buf = Vec::with_capacity(READ_CHUNK);
        }
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        if idle.len() < MAX_IDLE {
            idle.push(conn);
        }
    }

    async fn connect(&self) -> Result<Conn, OpError> {
        let stream = TcpStream::connect(self.authority.as_str())
            .await
            .map_err(|e| {
                OpError::fail(
                    ErrorClass::Connect,
                    format!("cannot connect to {}: {e}", self.authority),
                )
            })?;
        // Requests are written whole; waiting to coalesce them only adds latency.
        let _ = stream.set_nodelay(true);
        Ok(Conn {
            stream,
            buf: Vec::with_capacity(READ_CHUNK),
            body: Vec::new(),
        })
    }
}

impl Conn {
    /// Puts the whole request into the buffer.
    fn write_head<B: Serialize + ?Sized>(
        &mut self,
        endpoint: &Endpoint,
        method: Method,
        path: &(dyn Fn(&mut Vec<u8>) + Sync),
        body: Option<&B>,
    ) -> Result<(), OpError> {
        let b = &mut self.buf;
        b.clear();
        b.extend_from_slice(method.as_bytes());
        b.extend_from_slice(endpoint.prefix.as_bytes());
        path(b);
        b.extend_from_slice(b" HTTP/1.1\r\nhost: ");
        b.extend_from_slice(endpoint.authority.as_bytes());
        match body {
            None => b.extend_from_slice(b"\r\n\r\n"),
            Some(body) => {
                self.body.clear();
                serde_json::to_writer(&mut self.body, body).map_err(|e| {
                    OpError::fail(ErrorClass::Http4xx, format!("cannot encode the body: {e}"))
                })?;
                b.extend_from_slice(b"\r\ncontent-type: application/json\r\ncontent-length: ");
                push_decimal(b, self.body.len());
                b.extend_from_slice(b"\r\n\r\n");
                b.extend_from_slice(&self.body);
            }
        }
        Ok(())
    }

    /// Writes the request in the buffer and reads the answer into it.
    async fn exchange(&mut self) -> Result<Answer, Broken> {
        if let Err(e) = self.stream.write_all(&self.buf).await {
            return Err(Broken::Closed(e));
        }
        self.buf.clear();
        let (head_len, status, framing, mut keep_alive) = loop {
            let read = self.read_more().await;
            let got_nothing = self.buf.is_empty();
            match read {
                Ok(0) if got_nothing => {
                    return Err(Broken::Closed(std::io::ErrorKind::UnexpectedEof.into()));
                }
                Err(e) if got_nothing => return Err(Broken::Closed(e)),
                Ok(0) => return Err(Broken::Answer("the answer head was cut off".into())),
                Err(e) => return Err(Broken::Answer(format!("reading the answer: {e}"))),
                Ok(_) => {}
            }
            if let Some(head) = parse_head(&self.buf)? {
                break head;
            }
            if self.buf.len() > MAX_HEAD {
                return Err(Broken::Answer("the answer head is too long".into()));
            }
        };
        let body = match framing {
            Framing::Empty => head_len..head_len,
            Framing::Length(n) => {
                let end = head_len
                    .checked_add(n)
                    .ok_or_else(|| Broken::Answer("absurd content-length".into()))?;
                while self.buf.len() < end {
                    self.read_body_bytes().await?;
                }
                keep_alive &= self.buf.len() == end;
                head_len..end
            }
            Framing::Chunked => {
                let (end, clean) = self.read_chunked(head_len).await?;
                keep_alive &= clean;
                head_len..end
            }
            Framing::UntilClose => {
                keep_alive = false;
                while self.read_more().await.map_err(io_mid_answer)? > 0 {}
                head_len..self.buf.len()
            }
        };
        Ok(Answer {
            status,
            body,
            keep_alive,
        })
    }

    async fn read_more(&mut self) -> std::io::Result<usize> {
        if self.buf.capacity() - self.buf.len() < READ_CHUNK / 2 {
            self.buf.reserve(READ_CHUNK);
        }
        self.stream.read_buf(&mut self.buf).await
    }

    /// Reads more of a body that must go on.
    async fn read_body_bytes(&mut self) -> Result<(), Broken> {
        match self.read_more().await.map_err(io_mid_answer)? {
            0 => Err(Broken::Answer("the answer body was cut off".into())),
            _ => Ok(()),
        }
    }

    /// Decodes a chunked body that starts at `start`, in place: the body ends up in
    /// `start..end`. Returns `end` and whether nothing followed the body.
    async fn read_chunked(&mut self, start: usize) -> Result<(usize, bool), Broken> {
        let mut out = start;
        let mut at = start;
        loop {
            let line = self.line_at(at).await?;
            let size = chunk_size(&self.buf[at..line])?;
            at = line + 2;
            if size == 0 {
                // Trailers, up to an empty line.
                loop {
                    let line = self.line_at(at).await?;
                    let empty = line == at;
                    at = line + 2;
                    if empty {
                        return Ok((out, at == self.buf.len()));
                    }
                }
            }
            let end = at
                .checked_add(size)
                .and_then(|e| e.checked_add(2))
                .ok_or_else(|| Broken::Answer("absurd chunk size".into()))?;
            while self.buf.len() < end {
                self.read_body_bytes().await?;
            }
            if &self.buf[end - 2..end] != b"\r\n" {
                return Err(Broken::Answer("a chunk does not end in CRLF".into()));
            }
            self.buf.copy_within(at..end - 2, out);
            out += size;
            at = end;
        }
    }

    /// The position of the next CRLF at or after `from`, reading until there is one.
    async fn line_at(&mut self, from: usize) -> Result<usize, Broken> {
        loop {
            if let Some(i) = self.buf[from..].windows(2).position(|w| w == b"\r\n") {
                return Ok(from + i);
            }
            if self.buf.len() - from > MAX_HEAD {
                return Err(Broken::Answer("a chunk line is too long".into()));
            }
            self.read_body_bytes().await?;
        }
    }
}

/// How the answer's body is delimited.
enum Framing {
    Empty,
    Length(usize),
    Chunked,
    UntilClose,
}

/// Parses the answer head in `buf`: `None` while it is incomplete; otherwise its length, the
/// status, the framing and whether the connection may be kept.
fn parse_head(buf: &[u8]) -> Result<Option<(usize, u16, Framing, bool)>, Broken> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut answer = httparse::Response::new(&mut headers);
    let head_len = match answer.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(Broken::Answer(format!("malformed answer head: {e}"))),
    };
    let status = answer.code.unwrap_or(0);
    let mut keep_alive = answer.version == Some(1);
    let mut length = None;
    let mut chunked = false;
    for h in answer.headers.iter() {
        if h.name.eq_ignore_ascii_case("content-length") {
            let n = std::str::from_utf8(h.value)
                .ok()
                .and_then(|v| v.trim().parse::<usize>().ok())
                .ok_or_else(|| Broken::Answer("malformed content-length".into()))?;
            length = Some(n);
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = h
                .value
                .rsplit(|b| *b == b',')
                .next()
                .is_some_and(|last| last.trim_ascii().eq_ignore_ascii_case(b"chunked"));
        } else if h.name.eq_ignore_ascii_case("connection") {
            keep_alive = !h.value.trim_ascii().eq_ignore_ascii_case(b"close");
        }
    }
    let framing = if (100..200).contains(&status) {
        return Err(Broken::Answer(format!(
            "unexpected interim answer {status}"
        )));
    } else if status == 204 || status == 304 {
        Framing::Empty
    } else if chunked {
        Framing::Chunked
    } else if let Some(n) = length {
        Framing::Length(n)
    } else {
        Framing::UntilClose
    };
    Ok(Some((head_len, status, framing, keep_alive)))
}

/// The size on a chunk line (hex, optionally followed by `;extensions`).
fn chunk_size(line: &[u8]) -> Result<usize, Broken> {
    let digits = line
        .split(|b| *b == b';')
        .next()
        .unwrap_or_default()
        .trim_ascii();
    std::str::from_utf8(digits)
        .ok()
        .and_then(|d| usize::from_str_radix(d, 16).ok())
        .filter(|_| !digits.is_empty())
        .ok_or_else(|| Broken::Answer("malformed chunk size".into()))
}

fn io_mid_answer(e: std::io::Error) -> Broken {
    Broken::Answer(format!("reading the answer: {e}"))
}

/// Appends `n` in decimal.
fn push_decimal(out: &mut Vec<u8>, n: usize) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    let mut n = n;
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}
