//! The consoles and the widget as a real node serves them: public, typed, revalidated with their
//! ETag, gzipped when asked, the consoles' client-side routes answering the page, and the pages'
//! policy allowing this origin's scripts with nothing inline.

mod support;

use reqwest::StatusCode;
use reqwest::header::{
    ACCEPT_ENCODING, CACHE_CONTROL, CONTENT_ENCODING, CONTENT_SECURITY_POLICY, CONTENT_TYPE, ETAG,
    IF_NONE_MATCH,
};
use support::{config, start};

/// A client that neither sends credentials nor decompresses (to see the encoding served).
fn raw_client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_gzip()
        .build()
        .expect("http client")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_consoles_and_the_widget_are_served_without_credentials() {
    let dir = tempfile::tempdir().expect("temp dir");
    let node = start(config(dir.path())).await;
    let base = format!("http://{}", node.addr);
    let http = raw_client();

    let page = http
        .get(format!("{base}/console/"))
        .send()
        .await
        .expect("console page");
    assert_eq!(page.status(), StatusCode::OK);
    let header = |name| {
        page.headers()
            .get(name)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    assert!(header(CONTENT_TYPE).starts_with("text/html"));
    let policy = header(CONTENT_SECURITY_POLICY);
    assert!(policy.contains("script-src 'self'"), "{policy}");
    assert!(!policy.contains("unsafe-inline"), "{policy}");
    assert_eq!(header(CACHE_CONTROL), "no-cache");
    let body = page.text().await.expect("page text");
    assert!(body.contains("/console/app.js"), "{body}");

    // A client-side route answers the same page; a missing file is a 404.
    for route in ["supervisor", "admin"] {
        let answer = http
            .get(format!("{base}/console/{route}"))
            .send()
            .await
            .expect("route");
        assert_eq!(answer.status(), StatusCode::OK, "{route}");
        assert_eq!(answer.text().await.expect("text"), body, "{route}");
    }
    let missing = http
        .get(format!("{base}/console/missing.js"))
        .send()
        .await
        .expect("missing");
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    let redirect = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
        .get(format!("{base}/console"))
        .send()
        .await
        .expect("redirect");
    assert_eq!(redirect.status(), StatusCode::PERMANENT_REDIRECT);

    // The vendored library is served beside the consoles' modules.
    let vendored = http
        .get(format!("{base}/console/htm-preact.js"))
        .send()
        .await
        .expect("vendored");
    assert_eq!(vendored.status(), StatusCode::OK);

    // The widget: JavaScript, gzipped when accepted, and a 304 for the tag the client holds.
    let script = http
        .get(format!("{base}/widget.js"))
        .header(ACCEPT_ENCODING, "gzip, br")
        .send()
        .await
        .expect("widget");
    assert_eq!(script.status(), StatusCode::OK);
    assert_eq!(
        script.headers().get(CONTENT_ENCODING).map(|v| v.as_bytes()),
        Some(&b"gzip"[..])
    );
    assert!(
        script
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/javascript"))
    );
    let tag = script.headers().get(ETAG).cloned().expect("an etag");
    let again = http
        .get(format!("{base}/widget.js"))
        .header(IF_NONE_MATCH, tag)
        .send()
        .await
        .expect("conditional");
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);

    let demo = http
        .get(format!("{base}/widget/demo.html"))
        .send()
        .await
        .expect("demo page");
    assert_eq!(demo.status(), StatusCode::OK);
    assert!(
        demo.text()
            .await
            .expect("demo text")
            .contains("/widget/demo.js")
    );
    let nothing = http
        .get(format!("{base}/widget/nothing.html"))
        .send()
        .await
        .expect("missing widget file");
    assert_eq!(nothing.status(), StatusCode::NOT_FOUND);
}
