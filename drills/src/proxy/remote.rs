//! Link proxies on a host, driven over SSH: `raftdrill proxy --link TO=LISTEN,UPSTREAM ...`
//! runs one [`LinkProxy`] per outgoing link of the node on its host (the sending side, so a
//! delay or a cap applies to what that node sends and to the answers it gets, as on one
//! machine). The controller talks to it in JSON lines: a [`ProxyCommand`] per line on stdin,
//! a [`ProxyReply`] per line on stdout, carrying the host's clock when the change was made.
//! stdin closing (the controller is done, or gone) stops every proxy and ends the process.
//! No protocol beyond those lines, over the SSH session the controller already has.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncWrite, AsyncWriteExt};

use super::{LinkMode, LinkProxy, ProxyError};

/// A link mode on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WireMode {
    /// [`LinkMode::Pass`].
    Pass,
    /// [`LinkMode::Blackhole`].
    Blackhole,
    /// [`LinkMode::Delay`], in microseconds.
    Delay {
        /// Added delay.
        latency_us: u64,
        /// Uniform ± spread.
        jitter_us: u64,
    },
    /// [`LinkMode::Bandwidth`].
    Bandwidth {
        /// The cap per direction.
        bytes_per_sec: u64,
    },
    /// [`LinkMode::Reset`].
    Reset,
}

impl From<LinkMode> for WireMode {
    fn from(m: LinkMode) -> Self {
        match m {
            LinkMode::Pass => WireMode::Pass,
            LinkMode::Blackhole => WireMode::Blackhole,
            LinkMode::Delay { latency, jitter } => WireMode::Delay {
                latency_us: latency.as_micros() as u64,
                jitter_us: jitter.as_micros() as u64,
            },
            LinkMode::Bandwidth { bytes_per_sec } => WireMode::Bandwidth { bytes_per_sec },
            LinkMode::Reset => WireMode::Reset,
        }
    }
}

impl From<WireMode> for LinkMode {
    fn from(m: WireMode) -> Self {
        match m {
            WireMode::Pass => LinkMode::Pass,
            WireMode::Blackhole => LinkMode::Blackhole,
            WireMode::Delay {
                latency_us,
                jitter_us,
            } => LinkMode::Delay {
                latency: Duration::from_micros(latency_us),
                jitter: Duration::from_micros(jitter_us),
            },
            WireMode::Bandwidth { bytes_per_sec } => LinkMode::Bandwidth { bytes_per_sec },
            WireMode::Reset => LinkMode::Reset,
        }
    }
}

/// What the controller asks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProxyCommand {
    /// Put the links to these nodes in `mode`.
    Set {
        /// Destination node ids.
        to: Vec<u64>,
        /// The mode.
        mode: WireMode,
    },
    /// The node behind these links went down: refuse at once (see [`LinkProxy::upstream_down`]).
    Down {
        /// Destination node ids.
        to: Vec<u64>,
    },
}

/// The answer to one command, or the first line (`ok`, no time) once every proxy listens.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProxyReply {
    /// Whether it was done.
    pub ok: bool,
    /// The host's clock when it was done, Unix seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unix_s: Option<f64>,
    /// Why not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl ProxyReply {
    fn line(&self) -> String {
        let mut s = serde_json::to_string(self).expect("replies serialize");
        s.push('\n');
        s
    }
}

/// One `--link TO=LISTEN,UPSTREAM` flag.
pub fn parse_link(s: &str) -> Result<(u64, SocketAddr, SocketAddr), String> {
    let bad =
        || format!("expected TO=LISTEN,UPSTREAM (like 2=10.0.0.1:7004,10.0.0.2:7001), got {s:?}");
    let (to, addrs) = s.split_once('=').ok_or_else(bad)?;
    let (listen, upstream) = addrs.split_once(',').ok_or_else(bad)?;
    Ok((
        to.trim().parse().map_err(|_| bad())?,
        listen.trim().parse().map_err(|_| bad())?,
        upstream.trim().parse().map_err(|_| bad())?,
    ))
}

/// Starts a proxy per link, says so on `output`, then carries out each command of `input`
/// until it ends; then stops every proxy.
pub async fn serve(
    links: &[(u64, SocketAddr, SocketAddr)],
    input: impl AsyncBufRead + Unpin,
    mut output: impl AsyncWrite + Unpin,
) -> Result<(), ProxyError> {
    let mut proxies = BTreeMap::new();
    for (to, listen, upstream) in links {
        proxies.insert(*to, LinkProxy::start_on(*listen, *upstream).await?);
    }
    let ready = ProxyReply {
        ok: true,
        unix_s: None,
        error: None,
    };
    if output.write_all(ready.line().as_bytes()).await.is_err() {
        return Ok(());
    }
    let _ = output.flush().await;
    let mut lines = input.lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let reply = match serde_json::from_str::<ProxyCommand>(&line) {
            Err(e) => failed(format!("not a command: {e}")),
            Ok(cmd) => carry_out(&proxies, cmd),
        };
        if output.write_all(reply.line().as_bytes()).await.is_err() {
            break;
        }
        let _ = output.flush().await;
    }
    for (_, p) in proxies {
        p.shutdown().await;
    }
    Ok(())
}

fn failed(error: String) -> ProxyReply {
    ProxyReply {
        ok: false,
        unix_s: None,
        error: Some(error),
    }
}

fn carry_out(proxies: &BTreeMap<u64, LinkProxy>, cmd: ProxyCommand) -> ProxyReply {
    let to = match &cmd {
        ProxyCommand::Set { to, .. } | ProxyCommand::Down { to } => to,
    };
    if let Some(unknown) = to.iter().find(|t| !proxies.contains_key(t)) {
        return failed(format!("no link to node {unknown} here"));
    }
    for t in to {
        let p = &proxies[t];
        match &cmd {
            ProxyCommand::Set { mode, .. } => p.set_mode((*mode).into()),
            ProxyCommand::Down { .. } => p.upstream_down(),
        }
    }
    ProxyReply {
        ok: true,
        unix_s: Some(loadgen::unix_us_now() as f64 / 1e6),
        error: None,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use tokio::io::{AsyncReadExt, BufReader};
    use tokio::net::{TcpListener, TcpStream};

    use super::*;

    #[test]
    fn links_parse_and_modes_round_trip() {
        let (to, l, u) = parse_link("2=127.0.0.1:7004,127.0.0.2:7001").unwrap();
        assert_eq!((to, l.port(), u.port()), (2, 7004, 7001));
        assert!(parse_link("2=127.0.0.1:7004").is_err());
        assert!(parse_link("x=127.0.0.1:1,127.0.0.1:2").is_err());
        for m in [
            LinkMode::Pass,
            LinkMode::Blackhole,
            LinkMode::Reset,
            LinkMode::Bandwidth { bytes_per_sec: 5 },
            LinkMode::Delay {
                latency: Duration::from_millis(30),
                jitter: Duration::from_micros(1500),
            },
        ] {
            let wire: WireMode = m.into();
            let back: WireMode =
                serde_json::from_str(&serde_json::to_string(&wire).unwrap()).unwrap();
            assert_eq!(LinkMode::from(back), m);
        }
    }

    /// The proxy process's loop: ready, a delay that a round trip through the link feels, a
    /// bad command answered (not fatal), pass again, and the end of input stops it.
    #[tokio::test]
    async fn commands_change_the_link_and_the_end_of_input_stops_it() {
        let echo = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let upstream = echo.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = echo.accept().await {
                tokio::spawn(async move {
                    let mut buf = [0u8; 64];
                    while let Ok(n) = s.read(&mut buf).await {
                        if n == 0 || s.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        let listen: SocketAddr = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap()
        };
        let (cmd_w, cmd_r) = tokio::io::duplex(4096);
        let (out_w, out_r) = tokio::io::duplex(4096);
        let server = tokio::spawn(async move {
            serve(&[(2, listen, upstream)], BufReader::new(cmd_r), out_w).await
        });
        let mut replies = BufReader::new(out_r).lines();
        let mut cmds = cmd_w;
        let mut next = async || -> ProxyReply {
            serde_json::from_str(&replies.next_line().await.unwrap().unwrap()).unwrap()
        };
        assert!(next().await.ok, "ready");

        let round_trip = async || {
            let mut c = TcpStream::connect(listen).await.unwrap();
            let started = Instant::now();
            c.write_all(b"ping").await.unwrap();
            let mut buf = [0u8; 4];
            c.read_exact(&mut buf).await.unwrap();
            started.elapsed()
        };
        let delay = ProxyCommand::Set {
            to: vec![2],
            mode: LinkMode::Delay {
                latency: Duration::from_millis(150),
                jitter: Duration::ZERO,
            }
            .into(),
        };
        let mut send = async |c: &ProxyCommand| {
            let mut line = serde_json::to_string(c).unwrap();
            line.push('\n');
            cmds.write_all(line.as_bytes()).await.unwrap();
        };
        send(&delay).await;
        let r = next().await;
        assert!(r.ok && r.unix_s.is_some(), "{r:?}");
        // Both directions are delayed: a round trip takes at least twice the delay.
        assert!(round_trip().await >= Duration::from_millis(300));

        send(&ProxyCommand::Set {
            to: vec![9],
            mode: WireMode::Pass,
        })
        .await;
        let r = next().await;
        assert!(!r.ok && r.error.unwrap().contains("node 9"));

        send(&ProxyCommand::Set {
            to: vec![2],
            mode: WireMode::Pass,
        })
        .await;
        assert!(next().await.ok);
        round_trip().await;

        drop(cmds);
        server.await.unwrap().unwrap();
        assert!(
            TcpStream::connect(listen).await.is_err(),
            "the proxy is gone with its input"
        );
    }
}
