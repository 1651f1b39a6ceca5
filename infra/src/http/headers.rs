//! Security headers on every answer: no MIME sniffing, no referrer; on HTML pages a content
//! security policy that allows only scripts and styles of this origin (files, such as the consoles'
//! modules) and the pages' own inline script and style (by hash), this origin for requests and
//! WebSockets, and no framing; over TLS, HSTS.

use std::sync::LazyLock;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;
use base64::Engine as _;

use super::AppState;

/// The pages the node serves.
const PAGES: [&str; 1] = [include_str!("index.html")];

/// `'sha256-…'` sources of every inline `<tag>…</tag>` block of the pages.
fn inline_hashes(tag: &str) -> String {
    let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
    let mut sources = Vec::new();
    for page in PAGES {
        let mut rest = page;
        while let Some(start) = rest.find(&open) {
            let body = &rest[start + open.len()..];
            let Some(end) = body.find(&close) else { break };
            let digest = ring::digest::digest(&ring::digest::SHA256, &body.as_bytes()[..end]);
            sources.push(format!(
                "'sha256-{}'",
                base64::engine::general_purpose::STANDARD.encode(digest.as_ref())
            ));
            rest = &body[end + close.len()..];
        }
    }
    sources.join(" ")
}

/// The policy of the HTML pages.
static HTML_POLICY: LazyLock<HeaderValue> = LazyLock::new(|| {
    let policy = format!(
        "default-src 'none'; script-src 'self' {}; style-src 'self' {}; connect-src 'self'; \
         img-src 'self' data:; \
         base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
        inline_hashes("script"),
        inline_hashes("style"),
    );
    HeaderValue::from_str(&policy)
        .unwrap_or_else(|_| HeaderValue::from_static("default-src 'none'"))
});

/// The middleware (see the module's documentation).
pub async fn secure(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    let html = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("text/html"));
    if html {
        headers.insert(header::CONTENT_SECURITY_POLICY, HTML_POLICY.clone());
        headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    }
    if state.tls {
        headers.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000"),
        );
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_allows_this_origins_files_and_the_pages_inline_script_and_style_by_hash() {
        let policy = HTML_POLICY.to_str().expect("ascii");
        assert!(policy.contains("script-src 'self' 'sha256-"), "{policy}");
        assert!(policy.contains("style-src 'self' 'sha256-"), "{policy}");
        assert!(!policy.contains("unsafe-inline"), "{policy}");
        assert!(policy.contains("frame-ancestors 'none'"), "{policy}");
    }
}
