//! Per-link TCP fault proxies: network faults in user space, without root.
//!
//! The drill machine's kernel has neither netem nor tbf and drills run unprivileged, so a link
//! fault is made by a [`LinkProxy`] that sits on the path: the supervisor gives node A the
//! proxy's address in place of B's, one proxy per ordered pair, so link A→B and link B→A fail
//! independently (as in etcd's functional tester and toxiproxy).
//!
//! Link A→B carries the TCP connections that **A opens to B**, and its [`LinkMode`] applies to
//! **both directions of those connections**: A's request bytes ("up") and B's response bytes
//! ("down"). So a delay of D adds about 2×D to each of A's round trips to B, a bandwidth cap
//! applies to requests and to responses separately, and a blackhole holds both. The connections
//! B opens to A travel through the B→A proxy and are untouched.
//!
//! A mode change takes effect at once on live connections, also while a read or write is
//! pending, and never hangs: [`LinkProxy::set_mode`] only stores the mode in a watch channel,
//! and every pump selects on that channel alongside its socket I/O.
//!
//! The proxy reflects its upstream: while the node behind it refuses connections (it is down),
//! the proxy closes its listening socket so that its own port refuses them too, and a sender
//! sees "connection refused" (nothing was sent) rather than a connection accepted and then
//! reset (which it must count as "maybe sent"). It probes the upstream and listens again once
//! the node is back. A second socket bound to the same port with `SO_REUSEPORT`, never
//! listening, keeps the port the proxy's own in between.
//!
//! # Layout
//! - this file: [`LinkProxy`] (the accept loop and the handle), [`LinkMode`], [`ProxyError`],
//!   `Direction` (which way bytes travel: a pump's and the counters')
//! - `accept_task`: the accept task behind a proxy's handle, stopped or aborted with it
//! - `conn`: one proxied connection: dial, run both pumps, close or reset
//! - `pump`: one direction of a connection with the mode applied
//! - `held`: the buffer of bytes read but not yet written, with their release times
//! - `bucket`: the token bucket behind the bandwidth cap
//! - `jitter`: the shared SplitMix64 source (raftdrill-rng) for delay jitter
//! - `stats`: the counters and their [`ProxyStats`] snapshot
//! - [`remote`]: `raftdrill proxy`, the link proxies of one node on its host, driven by JSON
//!   lines over SSH (link faults on hosts)
//! - [`attributed`]: [`AttributedProxy`], one listener for many links, each connection placed
//!   on its link from its first HTTP request (for stores with one peer URL per member: etcd)

mod accept_task;
pub mod attributed;
mod bucket;
mod conn;
mod held;
mod jitter;
mod pump;
pub mod remote;
mod stats;
#[cfg(test)]
mod tests;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinSet;

pub use attributed::{AttributedProxy, Classifier, RequestHead};
pub use stats::ProxyStats;

use accept_task::AcceptTask;
use pump::Shared;

/// How long the accept loop backs off after an accept error (e.g. out of file descriptors), so
/// it does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);
/// How often a proxy whose upstream is down tries to reach it.
const PROBE_EVERY: Duration = Duration::from_millis(20);
/// Backlog of the listening socket.
const BACKLOG: u32 = 1024;

/// What a link does to the bytes of its connections, in both directions (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LinkMode {
    /// Forward bytes both ways as fast as possible.
    #[default]
    Pass,
    /// Accept connections but forward nothing. Bytes are held (in the kernel's socket buffers
    /// and the proxy's) and delivered in order when the link heals; the upstream is not dialled
    /// for connections opened meanwhile until then.
    Blackhole,
    /// Deliver each chunk at the time it was read plus `latency ± jitter` (uniform), never
    /// earlier than the chunk before it, so order is kept. Reading goes on while chunks wait,
    /// so a delay does not also throttle. Leaving this mode releases what is held at once.
    Delay {
        /// Added to every chunk in each direction (about twice this to a round trip).
        latency: Duration,
        /// Half-width of the uniform spread around `latency`; delays are clamped at zero.
        jitter: Duration,
    },
    /// Cap each direction at this many bytes per second, shared by all connections of the
    /// link, with a burst of max(1 KiB, rate/20). A rate of 0 behaves as [`Blackhole`].
    ///
    /// [`Blackhole`]: LinkMode::Blackhole
    Bandwidth {
        /// The cap, per direction.
        bytes_per_sec: u64,
    },
    /// Cut every live connection with an RST and refuse new ones (accept, then RST at once)
    /// for as long as the mode lasts.
    Reset,
}

impl LinkMode {
    /// Whether this mode holds all bytes (and SYNs) where they are.
    fn holds(self) -> bool {
        matches!(
            self,
            LinkMode::Blackhole | LinkMode::Bandwidth { bytes_per_sec: 0 }
        )
    }
}

/// Which way the bytes of a link's connection travel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    /// From the node that opened the connection to the upstream (requests).
    Up,
    /// From the upstream back to the node that opened the connection (responses).
    Down,
}

/// Starting a [`LinkProxy`] failed.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// The listening socket could not be bound.
    #[error("cannot listen on {listen} for a link proxy: {source}")]
    Bind {
        /// The address asked for.
        listen: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}

/// A TCP proxy for one directed link, forwarding every connection it accepts to `upstream`
/// with the current [`LinkMode`] applied.
///
/// Dropping it aborts its accept task and every connection task (their sockets close);
/// [`shutdown`](LinkProxy::shutdown) does the same and waits until they have all ended.
#[derive(Debug)]
pub struct LinkProxy {
    /// First, so that it is aborted before the mode channel closes.
    accept: AcceptTask,
    local: SocketAddr,
    upstream: SocketAddr,
    modes: watch::Sender<LinkMode>,
    shared: Arc<Shared>,
}

impl LinkProxy {
    /// Starts a proxy to `upstream` on a free port of 127.0.0.1, in [`LinkMode::Pass`].
    pub async fn start(upstream: SocketAddr) -> Result<LinkProxy, ProxyError> {
        Self::start_on(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)), upstream).await
    }

    /// Starts a proxy to `upstream` listening on `listen`, in [`LinkMode::Pass`].
    pub async fn start_on(
        listen: SocketAddr,
        upstream: SocketAddr,
    ) -> Result<LinkProxy, ProxyError> {
        let bind_error = |source| ProxyError::Bind { listen, source };
        if listen.port() != 0 {
            // The port's sockets share it with SO_REUSEPORT, which would also let a second
            // proxy onto a port in use; a plain bind first makes that an error.
            drop(std::net::TcpListener::bind(listen).map_err(bind_error)?);
        }
        let listener = listen_on(listen).map_err(bind_error)?;
        let local = listener.local_addr().map_err(bind_error)?;
        let holder = reuse_socket(local)
            .and_then(|s| {
                // Without SO_REUSEADDR on the holder, nobody else's SO_REUSEADDR bind can take
                // the port while the listener is closed.
                s.set_reuseaddr(false)?;
                s.bind(local).map(|()| s)
            })
            .map_err(bind_error)?;
        let (modes, mode_rx) = watch::channel(LinkMode::Pass);
        let shared = Arc::new(Shared::new());
        let port = Port {
            local,
            listener: Some(listener),
            _holder: holder,
        };
        let accept = AcceptTask::spawn(|stop| {
            accept_loop(port, upstream, Arc::clone(&shared), mode_rx, stop)
        });
        tracing::debug!(%local, %upstream, "link proxy started");
        Ok(LinkProxy {
            accept,
            local,
            upstream,
            modes,
            shared,
        })
    }

    /// The address nodes should connect to in place of the upstream.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// The address connections are forwarded to.
    pub fn upstream(&self) -> SocketAddr {
        self.upstream
    }

    /// Switches the link to `mode`; live connections see it at once.
    pub fn set_mode(&self, mode: LinkMode) {
        let old = self.modes.send_replace(mode);
        if old != mode {
            tracing::info!(local = %self.local, upstream = %self.upstream, ?old, new = ?mode, "link mode changed");
        }
    }

    /// Tells the proxy its upstream is down (the node was killed or stopped), so it refuses
    /// connections at once rather than after the first one it cannot forward. It listens again
    /// when its probe reaches the node.
    pub fn upstream_down(&self) {
        self.shared.upstream_up.send_replace(false);
    }

    /// Whether the proxy's port takes connections now.
    pub fn listening(&self) -> bool {
        self.shared
            .listening
            .load(std::sync::atomic::Ordering::Acquire)
    }

    /// The current mode.
    pub fn mode(&self) -> LinkMode {
        *self.modes.borrow()
    }

    /// A snapshot of the link's counters.
    pub fn stats(&self) -> ProxyStats {
        self.shared.counters.snapshot()
    }

    /// Stops accepting, closes every connection and waits until every task of the proxy ended.
    pub async fn shutdown(mut self) {
        if self.accept.stop().await {
            tracing::error!(local = %self.local, "link proxy accept task panicked");
        }
        tracing::debug!(local = %self.local, "link proxy shut down");
    }
}

/// A socket of the proxy's port with `SO_REUSEADDR` and `SO_REUSEPORT` set.
fn reuse_socket(addr: SocketAddr) -> std::io::Result<TcpSocket> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.set_reuseport(true)?;
    Ok(socket)
}

/// A listening socket on `addr` that shares its port with the holder.
fn listen_on(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = reuse_socket(addr)?;
    socket.bind(addr)?;
    socket.listen(BACKLOG)
}

/// The proxy's port: its listener while the upstream is up, and a bound socket that never
/// listens and keeps the port while it is down.
struct Port {
    local: SocketAddr,
    listener: Option<TcpListener>,
    _holder: TcpSocket,
}

impl Port {
    async fn accept(&self) -> std::io::Result<(TcpStream, SocketAddr)> {
        match &self.listener {
            Some(l) => l.accept().await,
            None => std::future::pending().await,
        }
    }

    /// Listens when `up`, refuses (no listener) when not; `listening` says which it did.
    fn follow(&mut self, up: bool, listening: &std::sync::atomic::AtomicBool) {
        match (up, self.listener.is_some()) {
            (false, true) => {
                tracing::debug!(local = %self.local, "upstream down: refusing connections");
                self.listener = None;
            }
            (true, false) => match listen_on(self.local) {
                Ok(l) => {
                    tracing::debug!(local = %self.local, "upstream back: listening again");
                    self.listener = Some(l);
                }
                Err(e) => tracing::warn!(local = %self.local, error = %e, "cannot listen again"),
            },
            _ => {}
        }
        listening.store(
            self.listener.is_some(),
            std::sync::atomic::Ordering::Release,
        );
    }
}

/// Accepts connections until told to stop, then aborts and joins every connection task.
/// While the upstream is down, the port refuses connections and the upstream is probed.
async fn accept_loop(
    mut port: Port,
    upstream: SocketAddr,
    shared: Arc<Shared>,
    modes: watch::Receiver<LinkMode>,
    mut stop: oneshot::Receiver<()>,
) {
    let mut conns = JoinSet::new();
    let mut up_rx = shared.upstream_up.subscribe();
    let mut mode_rx = modes.clone();
    loop {
        let up = *up_rx.borrow_and_update();
        // A link that holds every SYN (a blackhole) takes connections whatever the node does,
        // as a partitioned network path would.
        let holds = mode_rx.borrow_and_update().holds();
        port.follow(up || holds, &shared.listening);
        tokio::select! {
            // A send or a dropped sender (the handle is gone) both mean stop.
            _ = &mut stop => break,
            Some(joined) = conns.join_next(), if !conns.is_empty() => {
                if let Err(e) = joined
                    && e.is_panic()
                {
                    tracing::error!(%upstream, "link proxy connection task panicked");
                }
            }
            _ = up_rx.changed() => {}
            _ = mode_rx.changed() => {}
            _ = tokio::time::sleep(PROBE_EVERY), if !up || port.listener.is_none() => {
                if !up && TcpStream::connect(upstream).await.is_ok() {
                    shared.upstream_up.send_replace(true);
                }
            }
            accepted = port.accept() => match accepted {
                Ok((client, peer)) => {
                    // A connection that queued before the node went down (the select may
                    // take it before the hint): refused as the node's closed port would,
                    // never dialled and cut.
                    if !*shared.upstream_up.borrow() && !modes.borrow().holds() {
                        tracing::debug!(%peer, %upstream, "upstream down: refusing a queued connection");
                        shared.counters.refused();
                        let _ = client.set_zero_linger();
                        drop(client);
                        continue;
                    }
                    if *modes.borrow() == LinkMode::Reset {
                        tracing::debug!(%peer, %upstream, "link in reset: refusing connection");
                        shared.counters.refused();
                        // Closing with SO_LINGER 0 sends the RST.
                        let _ = client.set_zero_linger();
                        drop(client);
                        continue;
                    }
                    tracing::trace!(%peer, %upstream, "link proxy accepted connection");
                    conns.spawn(conn::serve(client, upstream, Arc::clone(&shared), modes.clone()));
                }
                Err(e) => {
                    tracing::warn!(%upstream, error = %e, "link proxy cannot accept");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
            },
        }
    }
    drop(port);
    conns.shutdown().await;
}
