//! One proxied connection: dial the upstream, run the two pumps, and close the way the mode
//! says.
//!
//! Both pumps run inside the connection's one task, on borrowed halves of the two sockets
//! (`TcpStream::split`), rather than as two tasks on owned halves. Two reasons: dropping an
//! owned write half sends a FIN, which would let a peer see a clean end-of-stream before the
//! reset mode's RST; and with both sockets still in hand once the pumps stop, the task can set
//! `SO_LINGER` to 0 on each before closing it, which is what turns the close into an RST.
//!
//! While the link is blackholed the upstream is not even dialled: a real blackhole drops the
//! SYN too, so the upstream node must not see the connection until the link heals.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::watch;

use super::pump::{End, Pump, Shared};
use super::{Direction, LinkMode};

/// How dialling the upstream ended.
enum Dial {
    Connected(TcpStream),
    Reset,
    Failed(std::io::Error),
    Closed,
}

/// Proxies `client` to `upstream` until either side is done, the link resets, or the proxy goes.
pub(super) async fn serve(
    client: TcpStream,
    upstream: SocketAddr,
    shared: Arc<Shared>,
    modes: watch::Receiver<LinkMode>,
) {
    serve_with_prefix(client, upstream, shared, modes, &[]).await;
}

/// As [`serve`], but first sends `prefix` to the upstream once it is connected: bytes the
/// caller already took from `client` (an attributing proxy that rewrote a request head). The
/// prefix goes out as soon as the link lets the connection through, without the mode's delay
/// or bandwidth cap.
pub(super) async fn serve_with_prefix(
    mut client: TcpStream,
    upstream: SocketAddr,
    shared: Arc<Shared>,
    mut modes: watch::Receiver<LinkMode>,
    prefix: &[u8],
) {
    let _open = shared.counters.opened();
    let mut server = match dial(upstream, &mut modes).await {
        Dial::Connected(server) => server,
        Dial::Reset => {
            shared.counters.reset();
            cut(&client);
            return;
        }
        Dial::Failed(e) => {
            tracing::debug!(%upstream, error = %e, "link proxy cannot reach its upstream");
            shared.counters.upstream_failed();
            if e.kind() == std::io::ErrorKind::ConnectionRefused {
                // The node is down: from now on the proxy refuses connections as the node's
                // closed port would, so a sender can tell "not sent" from "lost".
                shared.upstream_up.send_replace(false);
            }
            cut(&client);
            return;
        }
        Dial::Closed => return,
    };
    // Raft RPCs are small and latency-bound: never let Nagle hold them back.
    for socket in [&client, &server] {
        if let Err(e) = socket.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY");
        }
    }
    if !prefix.is_empty() {
        if let Err(e) = server.write_all(prefix).await {
            tracing::debug!(%upstream, error = %e, "cannot send the request head upstream");
            cut(&client);
            cut(&server);
            return;
        }
        shared.counters.delivered(Direction::Up, prefix.len());
    }
    let end = {
        let (client_read, client_write) = client.split();
        let (server_read, server_write) = server.split();
        let up = Pump::new(
            Direction::Up,
            client_read,
            server_write,
            modes.clone(),
            &shared,
        );
        let down = Pump::new(Direction::Down, server_read, client_write, modes, &shared);
        both(up.run(), down.run()).await
    };
    match end {
        End::Eof | End::Closed => {}
        End::Reset => {
            shared.counters.reset();
            cut(&client);
            cut(&server);
        }
        End::Failed(e) => {
            // Pass the failure on to the other side as a reset too, as a router would.
            tracing::debug!(%upstream, error = %e, "proxied connection failed");
            cut(&client);
            cut(&server);
        }
    }
}

/// Connects to `upstream` once the link lets SYNs through, giving up if it resets meanwhile.
async fn dial(upstream: SocketAddr, modes: &mut watch::Receiver<LinkMode>) -> Dial {
    loop {
        let mode = *modes.borrow_and_update();
        match mode {
            LinkMode::Reset => return Dial::Reset,
            mode if mode.holds() => {
                if modes.changed().await.is_err() {
                    return Dial::Closed;
                }
            }
            _ => break,
        }
    }
    let connect = TcpStream::connect(upstream);
    tokio::pin!(connect);
    loop {
        tokio::select! {
            connected = &mut connect => {
                return match connected {
                    Ok(stream) => Dial::Connected(stream),
                    Err(e) => Dial::Failed(e),
                };
            }
            changed = modes.changed() => {
                if changed.is_err() {
                    return Dial::Closed;
                }
                if *modes.borrow_and_update() == LinkMode::Reset {
                    return Dial::Reset;
                }
            }
        }
    }
}

/// Runs both pumps to the end. A clean end of one direction lets the other go on (half-close);
/// anything else stops both at once.
async fn both(up: impl Future<Output = End>, down: impl Future<Output = End>) -> End {
    tokio::pin!(up, down);
    let (mut up_done, mut down_done) = (false, false);
    loop {
        let end = tokio::select! {
            end = &mut up, if !up_done => {
                up_done = true;
                end
            }
            end = &mut down, if !down_done => {
                down_done = true;
                end
            }
            else => return End::Eof,
        };
        if !matches!(end, End::Eof) {
            return end;
        }
    }
}

/// Makes the coming close of `socket` an RST rather than a FIN.
fn cut(socket: &TcpStream) {
    if let Err(e) = socket.set_zero_linger() {
        tracing::debug!(error = %e, "cannot set SO_LINGER to 0");
    }
}
