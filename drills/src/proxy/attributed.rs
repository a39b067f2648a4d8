//! One listener in front of one HTTP/1.1 server, many links: each connection is attributed
//! from the head of its first request and proxied with the [`LinkMode`] of the link it
//! belongs to.
//!
//! [`LinkProxy`](super::LinkProxy) needs one address per directed link, which a store that
//! advertises one peer URL per member (etcd) cannot be given. An [`AttributedProxy`] sits in
//! front of that one URL instead. For every connection it peeks (`MSG_PEEK`, nothing is
//! consumed) at the first request head, asks the caller's classifier which link the
//! connection belongs to, and then runs it through the ordinary connection machinery
//! (`conn`/`pump`) with that link's mode channel, so every mode behaves as on a
//! [`LinkProxy`](super::LinkProxy) and changes at once on live connections.
//!
//! Connections the classifier cannot place (a request without the identifying header) follow
//! a separate "unattributed" mode. Their first request is rewritten to carry
//! `Connection: close`, so the server closes them after one answer and the client cannot
//! reuse them later for requests that *would* identify themselves. Go's HTTP client, for one,
//! pools connections per destination across request kinds; without this, a connection opened
//! by a health probe could later carry the Raft messages of the same client unattributed.
//!
//! Unlike a [`LinkProxy`](super::LinkProxy), this proxy always accepts (it cannot know the link before the
//! client speaks), so a blackholed link holds connections after the handshake rather than the
//! SYN, and a link in reset mode cuts a connection once its first request has been seen.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinSet;

use super::accept_task::AcceptTask;
use super::pump::Shared;
use super::{LinkMode, ProxyError, ProxyStats, conn};

/// The longest request head the proxy looks at; a longer one is left unattributed.
const MAX_HEAD: usize = 16 * 1024;
/// How long a new connection may take to send its first request head.
const HEAD_WAIT: Duration = Duration::from_secs(2);
/// Pause between peeks while a head is incomplete (a peek returns at once while any byte
/// waits, so it cannot be used to wait for more).
const PEEK_PAUSE: Duration = Duration::from_millis(1);
/// How long the accept loop backs off after an accept error.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// The head of the first request of a connection, as the classifier sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHead {
    /// `GET`, `POST`, ...
    pub method: String,
    /// The request target, e.g. `/raft/stream/message/8e9e05c52164694d`.
    pub path: String,
    /// Header lines in order, names as sent.
    pub headers: Vec<(String, String)>,
}

impl RequestHead {
    /// The value of the first header called `name` (case-insensitively).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Parses a head that ends with the blank line; `None` if it is not HTTP/1.x.
    pub fn parse(head: &[u8]) -> Option<Self> {
        let text = std::str::from_utf8(head).ok()?;
        let mut lines = text.split("\r\n");
        let mut first = lines.next()?.split(' ');
        let (method, path, version) = (first.next()?, first.next()?, first.next()?);
        if !version.starts_with("HTTP/1.") {
            return None;
        }
        let headers = lines
            .take_while(|l| !l.is_empty())
            .filter_map(|l| {
                let (n, v) = l.split_once(':')?;
                Some((n.trim().to_string(), v.trim().to_string()))
            })
            .collect();
        Some(Self {
            method: method.to_string(),
            path: path.to_string(),
            headers,
        })
    }

    /// The head again with every `Connection` header replaced by `Connection: close`.
    fn closing(&self) -> Vec<u8> {
        let mut out = format!("{} {} HTTP/1.1\r\n", self.method, self.path);
        for (n, v) in &self.headers {
            if !n.eq_ignore_ascii_case("connection") {
                out.push_str(&format!("{n}: {v}\r\n"));
            }
        }
        out.push_str("Connection: close\r\n\r\n");
        out.into_bytes()
    }
}

/// Decides which link a connection belongs to from its first request head.
pub type Classifier<K> = dyn Fn(&RequestHead) -> Option<K> + Send + Sync;

/// One link's mode and counters.
struct Flow {
    modes: watch::Sender<LinkMode>,
    shared: Arc<Shared>,
}

impl Flow {
    fn new() -> Self {
        Self {
            modes: watch::channel(LinkMode::Pass).0,
            shared: Arc::new(Shared::new()),
        }
    }
}

/// The links of one proxy and its unattributed connections.
struct Flows<K> {
    links: BTreeMap<K, Flow>,
    unattributed: Flow,
}

impl<K: Ord + Clone> Flows<K> {
    fn flow(&mut self, key: Option<&K>) -> &Flow {
        match key {
            Some(k) => self.links.entry(k.clone()).or_insert_with(Flow::new),
            None => &self.unattributed,
        }
    }
}

type SharedFlows<K> = Arc<Mutex<Flows<K>>>;

fn lock<K>(flows: &Mutex<Flows<K>>) -> std::sync::MutexGuard<'_, Flows<K>> {
    // The map holds channels and counters, valid after any panic.
    flows.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A TCP proxy to one `upstream` that applies a per-link [`LinkMode`] to each connection, the
/// link being what the classifier makes of the connection's first request head.
///
/// Dropping it aborts its accept task and every connection task.
pub struct AttributedProxy<K> {
    /// First, so that it is aborted before the links' mode channels close.
    accept: AcceptTask,
    local: SocketAddr,
    upstream: SocketAddr,
    flows: SharedFlows<K>,
}

impl<K> Debug for AttributedProxy<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AttributedProxy")
            .field("local", &self.local)
            .field("upstream", &self.upstream)
            .finish_non_exhaustive()
    }
}

impl<K> AttributedProxy<K>
where
    K: Ord + Clone + Debug + Send + Sync + 'static,
{
    /// Starts a proxy to `upstream` on a free port of 127.0.0.1, every link in pass mode.
    pub async fn start(
        upstream: SocketAddr,
        classify: Arc<Classifier<K>>,
    ) -> Result<Self, ProxyError> {
        let listen = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
        let bind_error = |source| ProxyError::Bind { listen, source };
        let listener = TcpListener::bind(listen).await.map_err(bind_error)?;
        let local = listener.local_addr().map_err(bind_error)?;
        let flows = Arc::new(Mutex::new(Flows {
            links: BTreeMap::new(),
            unattributed: Flow::new(),
        }));
        let accept = AcceptTask::spawn(|stop| {
            accept_loop(listener, upstream, Arc::clone(&flows), classify, stop)
        });
        tracing::debug!(%local, %upstream, "attributing proxy started");
        Ok(Self {
            accept,
            local,
            upstream,
            flows,
        })
    }

    /// The address clients should connect to in place of the upstream.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// The address connections are forwarded to.
    pub fn upstream(&self) -> SocketAddr {
        self.upstream
    }

    /// Switches link `key` to `mode`; its live connections see it at once.
    pub fn set_mode(&self, key: K, mode: LinkMode) {
        let mut flows = lock(&self.flows);
        let old = flows.flow(Some(&key)).modes.send_replace(mode);
        if old != mode {
            tracing::info!(local = %self.local, link = ?key, ?old, new = ?mode, "link mode changed");
        }
    }

    /// The mode of link `key`.
    pub fn mode(&self, key: &K) -> LinkMode {
        lock(&self.flows)
            .links
            .get(key)
            .map_or(LinkMode::Pass, |f| *f.modes.borrow())
    }

    /// Switches the connections no link claims to `mode`.
    pub fn set_unattributed_mode(&self, mode: LinkMode) {
        lock(&self.flows).unattributed.modes.send_replace(mode);
    }

    /// The mode of the connections no link claims.
    pub fn unattributed_mode(&self) -> LinkMode {
        *lock(&self.flows).unattributed.modes.borrow()
    }

    /// Every link, and the unattributed connections, back to pass.
    pub fn heal_all(&self) {
        let flows = lock(&self.flows);
        for f in flows.links.values() {
            f.modes.send_replace(LinkMode::Pass);
        }
        flows.unattributed.modes.send_replace(LinkMode::Pass);
    }

    /// Counters of each link that has had a connection or a mode.
    pub fn stats(&self) -> BTreeMap<K, ProxyStats> {
        lock(&self.flows)
            .links
            .iter()
            .map(|(k, f)| (k.clone(), f.shared.counters.snapshot()))
            .collect()
    }

    /// Counters of the unattributed connections.
    pub fn unattributed_stats(&self) -> ProxyStats {
        lock(&self.flows).unattributed.shared.counters.snapshot()
    }

    /// Stops accepting, closes every connection and waits until every task has ended.
    pub async fn shutdown(mut self) {
        if self.accept.stop().await {
            tracing::error!(local = %self.local, "attributing proxy accept task panicked");
        }
    }
}

async fn accept_loop<K>(
    listener: TcpListener,
    upstream: SocketAddr,
    flows: SharedFlows<K>,
    classify: Arc<Classifier<K>>,
    mut stop: oneshot::Receiver<()>,
) where
    K: Ord + Clone + Debug + Send + Sync + 'static,
{
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            _ = &mut stop => break,
            Some(joined) = conns.join_next(), if !conns.is_empty() => {
                if let Err(e) = joined
                    && e.is_panic()
                {
                    tracing::error!(%upstream, "attributed connection task panicked");
                }
            }
            accepted = listener.accept() => match accepted {
                Ok((client, _)) => {
                    conns.spawn(attribute_and_serve(
                        client,
                        upstream,
                        Arc::clone(&flows),
                        Arc::clone(&classify),
                    ));
                }
                Err(e) => {
                    tracing::warn!(%upstream, error = %e, "attributing proxy cannot accept");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
            },
        }
    }
    conns.shutdown().await;
}

/// Reads the first request head of `client` without consuming it, picks the connection's
/// link, and proxies it with that link's mode.
async fn attribute_and_serve<K>(
    mut client: TcpStream,
    upstream: SocketAddr,
    flows: SharedFlows<K>,
    classify: Arc<Classifier<K>>,
) where
    K: Ord + Clone + Debug + Send + Sync + 'static,
{
    let Some(peeked) = peek_head(&client).await else {
        // Closed before a whole head came, or not HTTP: proxy it as unattributed, untouched.
        let (shared, modes) = subscribe(&flows, None);
        conn::serve(client, upstream, shared, modes).await;
        return;
    };
    let (len, head) = peeked;
    let key = head.as_ref().and_then(|h| classify(h));
    tracing::trace!(?key, head = ?head.as_ref().map(|h| (&h.method, &h.path)), "connection attributed");
    let (shared, modes) = subscribe(&flows, key.as_ref());
    match (key, head) {
        (None, Some(head)) => {
            // Take the head off the socket and send it on rewritten, so this connection ends
            // after one answer and is never reused for attributable requests.
            let mut taken = vec![0; len];
            if client.read_exact(&mut taken).await.is_err() {
                return;
            }
            conn::serve_with_prefix(client, upstream, shared, modes, &head.closing()).await;
        }
        _ => conn::serve(client, upstream, shared, modes).await,
    }
}

fn subscribe<K: Ord + Clone>(
    flows: &SharedFlows<K>,
    key: Option<&K>,
) -> (Arc<Shared>, watch::Receiver<LinkMode>) {
    let mut flows = lock(flows);
    let flow = flows.flow(key);
    (Arc::clone(&flow.shared), flow.modes.subscribe())
}

/// Peeks until a whole request head has arrived: its length and, when it parses, the head.
/// `None` when the connection closed, sent a head too long, or sent none within [`HEAD_WAIT`].
async fn peek_head(client: &TcpStream) -> Option<(usize, Option<RequestHead>)> {
    let deadline = tokio::time::Instant::now() + HEAD_WAIT;
    let mut buf = vec![0; MAX_HEAD];
    loop {
        let n = tokio::time::timeout_at(deadline, client.peek(&mut buf))
            .await
            .ok()?
            .ok()?;
        if n == 0 {
            return None;
        }
        if let Some(end) = buf[..n].windows(4).position(|w| w == b"\r\n\r\n") {
            let len = end + 4;
            return Some((len, RequestHead::parse(&buf[..len])));
        }
        if n == buf.len() || tokio::time::Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(PEEK_PAUSE).await;
    }
}

#[cfg(test)]
mod tests;
