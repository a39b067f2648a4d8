//! The per-run token of a node on a real network.
//!
//! On a host, a node listens on an address that anyone on that network can reach, and its admin
//! and peer APIs would let them remove members, redirect peers or speak Raft to it. A node
//! started with a token refuses those calls without `Authorization: Bearer <token>` (401, the
//! JSON error body). `/healthz` stays open, and the client API stays open unless the node was
//! started with `--client-auth`. The node's own outgoing calls (peer RPCs, forwarded client
//! requests, `ack=all` waits) carry the token. Nodes on loopback run without one.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use raftdrill_wire::error_code;

use super::ApiError;

/// Who must show the token.
#[derive(Debug, Clone)]
pub struct Auth {
    /// The expected `Authorization` header value, `Bearer <token>`.
    expected: HeaderValue,
    /// Whether the client API (`/kv/...`) needs it too.
    client_auth: bool,
}

/// A token that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("the token must be 16 to 256 visible ASCII characters, without spaces")]
pub struct BadToken;

impl Auth {
    /// Requires `token` on the admin and peer APIs, and on the client API when `client_auth`.
    pub fn new(token: &str, client_auth: bool) -> Result<Self, BadToken> {
        let expected = bearer(token)?;
        Ok(Self {
            expected,
            client_auth,
        })
    }

    /// The header value this node's own calls send.
    pub fn header(&self) -> HeaderValue {
        self.expected.clone()
    }

    fn needs_token(&self, path: &str) -> bool {
        if path == "/healthz" {
            return false;
        }
        self.client_auth || !path.starts_with("/kv/")
    }

    fn admits(&self, headers: &HeaderMap) -> bool {
        headers
            .get(header::AUTHORIZATION)
            .is_some_and(|got| same_bytes(got.as_bytes(), self.expected.as_bytes()))
    }
}

/// `Bearer <token>` as a header value, checking the token's form.
pub fn bearer(token: &str) -> Result<HeaderValue, BadToken> {
    let ok = (16..=256).contains(&token.len()) && token.bytes().all(|b| b.is_ascii_graphic());
    if !ok {
        return Err(BadToken);
    }
    let mut v = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| BadToken)?;
    v.set_sensitive(true);
    Ok(v)
}

/// Compares in time that depends only on the lengths, so the token cannot be guessed byte by
/// byte from answer times.
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The middleware: 401 for a call that needs the token and lacks it.
pub async fn require_token(State(auth): State<Auth>, req: Request, next: Next) -> Response {
    if auth.needs_token(req.uri().path()) && !auth.admits(req.headers()) {
        return ApiError::new(
            StatusCode::UNAUTHORIZED,
            error_code::UNAUTHORIZED,
            Some("this node requires the run's token (Authorization: Bearer ...)".to_string()),
        )
        .into_response();
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_or_spaced_tokens_are_refused() {
        assert!(Auth::new("short", false).is_err());
        assert!(Auth::new("sixteen chars ok", false).is_err());
        assert!(Auth::new(&"x".repeat(257), false).is_err());
        assert!(Auth::new(&"x".repeat(16), false).is_ok());
    }

    #[test]
    fn the_client_api_is_open_unless_client_auth() {
        let open = Auth::new(&"t".repeat(32), false).unwrap();
        assert!(!open.needs_token("/kv/a"));
        assert!(!open.needs_token("/healthz"));
        for p in [
            "/status",
            "/admin/members",
            "/raft/append",
            "/admin/peers/2",
            "/nope",
        ] {
            assert!(open.needs_token(p), "{p}");
        }
        let closed = Auth::new(&"t".repeat(32), true).unwrap();
        assert!(closed.needs_token("/kv/a"));
        assert!(!closed.needs_token("/healthz"));
    }

    #[test]
    fn only_the_exact_header_is_admitted() {
        let auth = Auth::new(&"t".repeat(32), false).unwrap();
        let mut h = HeaderMap::new();
        assert!(!auth.admits(&h));
        h.insert(
            header::AUTHORIZATION,
            bearer(&"t".repeat(31)).unwrap_or(HeaderValue::from_static("x")),
        );
        assert!(!auth.admits(&h));
        h.insert(header::AUTHORIZATION, bearer(&"u".repeat(32)).unwrap());
        assert!(!auth.admits(&h));
        h.insert(header::AUTHORIZATION, bearer(&"t".repeat(32)).unwrap());
        assert!(auth.admits(&h));
    }
}
