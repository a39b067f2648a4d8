//! The [`Target`](crate::target::Target) adapter for the reference cluster's HTTP API, on the load generator's own
//! keep-alive HTTP/1.1 client (`http1`: why not reqwest is said there).

use std::time::Duration;

use raftdrill_wire::{CasResponse, Consistency, GetResponse};
use serde::{Deserialize, Serialize};

use crate::http1::{HttpClient, Method, NO_BODY};
use crate::outcome::{ErrorClass, OpError};
use crate::target::{Attempts, CasResult, Endpoints, TargetError};

/// The reference cluster: a list of node base URLs such as `http://127.0.0.1:7001`.
#[derive(Debug, Clone)]
pub struct ReferenceCluster {
    /// Keep-alive connections to every endpoint, shared by the clones.
    http: std::sync::Arc<HttpClient>,
    /// The nodes' base URLs.
    endpoints: Endpoints,
}

impl ReferenceCluster {
    /// An adapter for `endpoints`, each request bounded by `timeout`. Idle connections are kept
    /// per node, so a pool of workers reuses them.
    pub fn new(endpoints: &[String], timeout: Duration) -> Result<Self, TargetError> {
        let endpoints = Endpoints::new(endpoints, timeout)?;
        let http = std::sync::Arc::new(HttpClient::new(&endpoints.urls, timeout));
        Ok(Self { http, endpoints })
    }
}

/// Writes `/kv/{key}` with the key percent-encoded.
fn kv_path(out: &mut Vec<u8>, key: &str) {
    out.extend_from_slice(b"/kv/");
    encode_key_into(out, key);
}

/// Percent-encodes the characters of a key that cannot appear in a path segment.
fn encode_key_into(out: &mut Vec<u8>, key: &str) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for b in key.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b);
        } else {
            out.extend_from_slice(&[b'%', HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]]);
        }
    }
}

/// [`raftdrill_wire::PutBody`], borrowing the value instead of copying it.
#[derive(Serialize)]
struct PutRef<'a> {
    value: &'a str,
}

/// [`raftdrill_wire::CasBody`], borrowing.
#[derive(Serialize)]
struct CasRef<'a> {
    expect: Option<&'a str>,
    value: &'a str,
}

/// An error answer's `error` code, when it has one.
#[derive(Deserialize)]
struct ErrorCode<'a> {
    #[serde(borrow)]
    error: std::borrow::Cow<'a, str>,
}

/// Turn an answer into its decoded JSON body, or the status and `error` code of an error.
fn answer<T: serde::de::DeserializeOwned>(
    status: u16,
    body: &[u8],
) -> Result<Result<T, (u16, Option<String>)>, OpError> {
    if (200..300).contains(&status) {
        serde_json::from_slice(body)
            .map(Ok)
            .map_err(|e| OpError::unknown(ErrorClass::Reset, format!("undecodable answer: {e}")))
    } else {
        let code = serde_json::from_slice::<ErrorCode>(body)
            .ok()
            .map(|b| b.error.into_owned());
        Ok(Err((status, code)))
    }
}

impl Attempts for ReferenceCluster {
    fn endpoints(&self) -> &Endpoints {
        &self.endpoints
    }

    async fn get_once(
        &self,
        node: usize,
        key: &str,
        consistency: Consistency,
    ) -> Result<Option<String>, OpError> {
        Ok(self.get_at(node, key, consistency, None).await?.0)
    }

    async fn get_session_once(
        &self,
        node: usize,
        key: &str,
        min_index: u64,
    ) -> Result<(Option<String>, Option<u64>), OpError> {
        self.get_at(node, key, Consistency::Session, Some(min_index))
            .await
    }

    async fn put_once(&self, node: usize, key: &str, value: &str) -> Result<Option<u64>, OpError> {
        let body = PutRef { value };
        let path = |out: &mut Vec<u8>| kv_path(out, key);
        let decoded = self
            .http
            .call(
                node,
                Method::Put,
                &path,
                Some(&body),
                answer::<raftdrill_wire::WriteResponse>,
            )
            .await?;
        match decoded? {
            Ok(w) => Ok(Some(w.index)),
            Err((status, code)) => Err(OpError::from_status(status, code.as_deref())),
        }
    }

    async fn cas_once(
        &self,
        node: usize,
        key: &str,
        expect: Option<&str>,
        value: &str,
    ) -> Result<CasResult, OpError> {
        let body = CasRef { expect, value };
        let path = |out: &mut Vec<u8>| {
            kv_path(out, key);
            out.extend_from_slice(b"/cas");
        };
        let decoded = self
            .http
            .call(
                node,
                Method::Post,
                &path,
                Some(&body),
                answer::<CasResponse>,
            )
            .await?;
        match decoded? {
            Ok(r) => Ok(CasResult {
                swapped: r.ok,
                current: r.current,
                index: Some(r.index),
            }),
            Err((status, code)) => Err(OpError::from_status(status, code.as_deref())),
        }
    }
}

impl ReferenceCluster {
    /// `GET /kv/{key}?consistency=…[&min_index=…]`: the value and the index of the write that
    /// produced it (both `None` when the key does not exist).
    async fn get_at(
        &self,
        node: usize,
        key: &str,
        consistency: Consistency,
        min_index: Option<u64>,
    ) -> Result<(Option<String>, Option<u64>), OpError> {
        let path = |out: &mut Vec<u8>| {
            use std::io::Write as _;
            kv_path(out, key);
            out.extend_from_slice(b"?consistency=");
            out.extend_from_slice(consistency.as_str().as_bytes());
            if let Some(i) = min_index {
                let _ = write!(out, "&min_index={i}");
            }
        };
        let decoded = self
            .http
            .call(node, Method::Get, &path, NO_BODY, answer::<GetResponse>)
            .await?;
        match decoded? {
            Ok(found) => Ok((Some(found.value), Some(found.index))),
            Err((404, Some(code))) if code == raftdrill_wire::error_code::NOT_FOUND => {
                Ok((None, None))
            }
            Err((status, code)) => Err(OpError::from_status(status, code.as_deref())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_checked() {
        let t = Duration::from_secs(1);
        assert!(matches!(
            ReferenceCluster::new(&[], t),
            Err(TargetError::NoEndpoints)
        ));
        assert!(matches!(
            ReferenceCluster::new(&["localhost:1".into()], t),
            Err(TargetError::BadEndpoint(_))
        ));
        let c = ReferenceCluster::new(&["http://127.0.0.1:1/".into()], t).unwrap();
        assert_eq!(c.endpoints.urls, ["http://127.0.0.1:1"]);
        let mut path = Vec::new();
        kv_path(&mut path, "a b/é");
        assert_eq!(path, b"/kv/a%20b%2F%C3%A9");
        path.clear();
        kv_path(&mut path, "k-0_1.~");
        assert_eq!(path, b"/kv/k-0_1.~");
    }

    /// The borrowing bodies say exactly what the wire types say.
    #[test]
    fn borrowed_bodies_match_the_wire_types() {
        let json = |v: Result<String, serde_json::Error>| v.unwrap();
        let put = raftdrill_wire::PutBody {
            value: "v\"1".into(),
        };
        assert_eq!(
            json(serde_json::to_string(&PutRef { value: "v\"1" })),
            json(serde_json::to_string(&put))
        );
        for expect in [None, Some("old")] {
            let cas = raftdrill_wire::CasBody {
                expect: expect.map(str::to_string),
                value: "new".into(),
            };
            let mine = CasRef {
                expect,
                value: "new",
            };
            assert_eq!(
                json(serde_json::to_string(&mine)),
                json(serde_json::to_string(&cas))
            );
        }
    }
}
