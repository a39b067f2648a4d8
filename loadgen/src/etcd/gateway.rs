//! The HTTP plumbing of etcd's v3 JSON gateway, shared by the load's adapter
//! ([`super::EtcdCluster`]) and the drill's member calls (`drills::etcd::api`): one POST of
//! a JSON body, its answer decoded or its failure told apart.

use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::wire::GatewayError;

/// A keep-alive client for gateway calls. With `timeout`, every request (connecting
/// included) is bounded by it; without, each call gives its own.
pub fn client(timeout: Option<Duration>) -> Result<reqwest::Client, reqwest::Error> {
    let builder = reqwest::Client::builder()
        .pool_max_idle_per_host(1024)
        .tcp_nodelay(true);
    match timeout {
        Some(t) => builder.timeout(t).connect_timeout(t),
        None => builder,
    }
    .build()
}

/// The URL of gateway call `path` (such as `kv/range`) on the member at `base`.
pub fn url(base: &str, path: &str) -> String {
    format!("{base}/v3/{path}")
}

/// A gateway call that brought no answer of the type asked for.
#[derive(Debug)]
pub enum CallError {
    /// No (complete) answer: not reached, timed out, or the connection broke.
    Transport(reqwest::Error),
    /// A success whose body is not the JSON asked for.
    Undecodable(serde_json::Error),
    /// An error answer.
    Refused {
        /// Its HTTP status.
        status: u16,
        /// Its body: the gRPC status as JSON ([`GatewayError`]), or whatever stood between.
        body: Vec<u8>,
    },
}

impl CallError {
    /// The message of a refusal: etcd's `error`, or the body as text when it is not
    /// etcd's; `None` for a call that was not refused.
    pub fn message(&self) -> Option<String> {
        let CallError::Refused { body, .. } = self else {
            return None;
        };
        Some(
            serde_json::from_slice::<GatewayError>(body)
                .map(|e| e.error)
                .unwrap_or_else(|_| String::from_utf8_lossy(body).into_owned()),
        )
    }
}

/// POSTs `body` as JSON to `url` and decodes a 2xx answer as `T`; `timeout` bounds this
/// call over the client's own.
pub async fn post<B, T>(
    http: &reqwest::Client,
    url: &str,
    body: &B,
    timeout: Option<Duration>,
) -> Result<T, CallError>
where
    B: Serialize + ?Sized,
    T: DeserializeOwned,
{
    let mut request = http.post(url).json(body);
    if let Some(t) = timeout {
        request = request.timeout(t);
    }
    let response = request.send().await.map_err(CallError::Transport)?;
    let status = response.status().as_u16();
    let bytes = response.bytes().await.map_err(CallError::Transport)?;
    if (200..300).contains(&status) {
        serde_json::from_slice(&bytes).map_err(CallError::Undecodable)
    } else {
        Err(CallError::Refused {
            status,
            body: bytes.to_vec(),
        })
    }
}
