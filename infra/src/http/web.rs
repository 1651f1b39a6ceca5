//! The web consoles and the customer widget: the files of `web/` (the consoles in `web/console`,
//! the vendored libraries in `web/vendor`, the widget in `web/widget`) are embedded in the binary
//! and served as they are (no build step). Each answer carries a strong `ETag` (a conditional
//! `GET` with `If-None-Match` gets 304) and `Cache-Control: no-cache` (browsers revalidate, so a
//! new binary's files are picked up at once); text files are served gzipped to clients that
//! accept it (compressed once, at first use).
//!
//! * `GET /console/`: the agent workbench, supervisor view and admin pages (one page; its
//!   client-side routes `/console/<name>` without a dot answer the same page).
//! * `GET /console/{file}`: the consoles' modules, styles and vendored libraries.
//! * `GET /widget.js`: the widget a merchant's page loads with one `<script>` tag.
//! * `GET /widget/{file}`: the widget's style and its demo shop page (`/widget/demo.html`).

use std::collections::HashMap;
use std::io::Write as _;
use std::sync::LazyLock;

use axum::extract::Path;
use axum::extract::rejection::PathRejection;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use include_dir::{Dir, include_dir};

use super::error::ApiError;

/// The consoles' own files.
static CONSOLE: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/../web/console");
/// Vendored libraries (with their licences), served beside the consoles' files.
static VENDOR: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/../web/vendor");
/// The customer widget and its demo page.
static WIDGET: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/../web/widget");

/// One file ready to serve.
struct Asset {
    content_type: &'static str,
    body: &'static [u8],
    /// The gzipped body, when that is smaller.
    gzipped: Option<Vec<u8>>,
    /// Quoted strong validator: a digest of the body.
    etag: HeaderValue,
}

/// Every served file by its key: `console/NAME`, `vendor/NAME` or `widget/NAME`.
static ASSETS: LazyLock<HashMap<String, Asset>> = LazyLock::new(|| {
    let mut assets = HashMap::new();
    for (prefix, dir) in [
        ("console", &CONSOLE),
        ("vendor", &VENDOR),
        ("widget", &WIDGET),
    ] {
        for file in dir.files() {
            let Some(name) = file.path().to_str() else {
                continue;
            };
            assets.insert(format!("{prefix}/{name}"), asset(name, file.contents()));
        }
    }
    assets
});

fn asset(name: &str, body: &'static [u8]) -> Asset {
    let content_type = content_type(name);
    let textual = content_type.starts_with("text/")
        || content_type.starts_with("application/javascript")
        || content_type.starts_with("application/json")
        || content_type.starts_with("image/svg");
    let gzipped = textual.then(|| gzip(body)).flatten();
    let digest = ring::digest::digest(&ring::digest::SHA256, body);
    let tag: String = digest.as_ref()[..12]
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    Asset {
        content_type,
        body,
        gzipped: gzipped.filter(|zipped| zipped.len() < body.len()),
        etag: HeaderValue::from_str(&format!("\"{tag}\""))
            .unwrap_or_else(|_| HeaderValue::from_static("\"0\"")),
    }
}

fn gzip(body: &[u8]) -> Option<Vec<u8>> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(body).ok()?;
    encoder.finish().ok()
}

/// The media type of a file by its extension.
fn content_type(name: &str) -> &'static str {
    match name.rsplit_once('.').map(|(_, extension)| extension) {
        Some("html") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "application/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("json") => "application/json",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        Some("txt" | "md") | None => "text/plain; charset=utf-8",
        Some(_) => "application/octet-stream",
    }
}

/// Answers with the asset under `key` (conditional, gzipped when accepted), or 404.
fn serve(key: &str, request: &HeaderMap) -> Response {
    let Some(asset) = ASSETS.get(key) else {
        return ApiError::not_found("no such file").into_response();
    };
    let mut headers = HeaderMap::new();
    headers.insert(header::ETAG, asset.etag.clone());
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    let fresh = request
        .get(header::IF_NONE_MATCH)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|tags| {
            tags.split(',')
                .any(|tag| tag.trim() == asset.etag || tag.trim() == "*")
        });
    if fresh {
        return (StatusCode::NOT_MODIFIED, headers).into_response();
    }
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(asset.content_type),
    );
    let gzip_accepted = request
        .get(header::ACCEPT_ENCODING)
        .and_then(|value| value.to_str().ok())
        .is_some_and(accepts_gzip);
    match &asset.gzipped {
        Some(zipped) if gzip_accepted => {
            headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
            (headers, zipped.clone()).into_response()
        }
        _ => (headers, asset.body).into_response(),
    }
}

/// Whether an `Accept-Encoding` value accepts gzip (and does not refuse it with `q=0`).
fn accepts_gzip(value: &str) -> bool {
    value.split(',').any(|coding| {
        let mut parts = coding.split(';').map(str::trim);
        let name = parts.next().unwrap_or_default();
        let refused = parts.any(|parameter| {
            parameter
                .strip_prefix("q=")
                .and_then(|q| q.parse::<f32>().ok())
                .is_some_and(|q| q <= 0.0)
        });
        (name.eq_ignore_ascii_case("gzip") || name == "*") && !refused
    })
}

/// 400 for a file name that is not a valid path segment (bad percent-encoding, not UTF-8).
fn invalid_path(rejection: &PathRejection) -> Response {
    ApiError::bad_request("invalid_path", rejection.body_text()).into_response()
}

/// `GET /console`: the consoles live under `/console/`.
#[utoipa::path(
    get,
    path = "/console",
    tag = "web",
    responses(
        (status = 308, description = "To `/console/`."),
    )
)]
pub async fn console_redirect() -> Redirect {
    Redirect::permanent("/console/")
}

/// `GET /console/`: the consoles' page (agent workbench, supervisor view, admin pages).
#[utoipa::path(
    get,
    path = "/console/",
    tag = "web",
    responses(
        (status = 200, description = "The consoles' page.", content_type = "text/html", body = String),
        (status = 304, description = "Not modified since the `If-None-Match` tag."),
    )
)]
pub async fn console(headers: HeaderMap) -> Response {
    serve("console/index.html", &headers)
}

/// `GET /console/{file}`: a module, style or vendored library of the consoles; a name without a
/// dot is one of the page's own routes and answers the page.
#[utoipa::path(
    get,
    path = "/console/{file}",
    tag = "web",
    params(("file" = String, Path, description = "A file name, e.g. `app.js`, or a console route such as `admin`.")),
    responses(
        (status = 200, description = "The file, or the consoles' page for a route.", content(
            (String = "application/javascript"), (String = "text/html"), (String = "text/css"),
            (String = "text/plain"), (String = "application/json"), (String = "image/svg+xml"),
            (String = "image/png"), (String = "application/octet-stream"))),
        (status = 304, description = "Not modified since the `If-None-Match` tag."),
        (status = 400, description = "The name is not a valid path segment (`invalid_path`).", body = crest_proto::api::ErrorBody),
        (status = 404, description = "No such file (`not_found`).", body = crest_proto::api::ErrorBody),
    )
)]
pub async fn console_file(
    file: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> Response {
    let file = match file {
        Ok(Path(file)) => file,
        Err(rejection) => return invalid_path(&rejection),
    };
    let own = format!("console/{file}");
    if ASSETS.contains_key(&own) {
        return serve(&own, &headers);
    }
    let vendored = format!("vendor/{file}");
    if ASSETS.contains_key(&vendored) {
        return serve(&vendored, &headers);
    }
    if !file.contains('.') {
        return serve("console/index.html", &headers);
    }
    ApiError::not_found("no such file").into_response()
}

/// `GET /widget.js`: the customer widget. A merchant's page includes it with
/// `<script src="https://NODE/widget.js" data-tenant="T" data-token="WEBSITE_TOKEN"></script>`.
#[utoipa::path(
    get,
    path = "/widget.js",
    tag = "web",
    responses(
        (status = 200, description = "The widget's script.", content_type = "application/javascript", body = String),
        (status = 304, description = "Not modified since the `If-None-Match` tag."),
    )
)]
pub async fn widget_script(headers: HeaderMap) -> Response {
    serve("widget/widget.js", &headers)
}

/// `GET /widget/{file}`: the widget's style, and `demo.html`, a sample shop page showing the
/// widget (`/widget/demo.html?tenant=T&token=WEBSITE_TOKEN`).
#[utoipa::path(
    get,
    path = "/widget/{file}",
    tag = "web",
    params(("file" = String, Path, description = "A file name, e.g. `demo.html` or `widget.css`.")),
    responses(
        (status = 200, description = "The file.", content(
            (String = "text/html"), (String = "application/javascript"), (String = "text/css"),
            (String = "text/plain"), (String = "application/json"), (String = "image/svg+xml"),
            (String = "image/png"), (String = "application/octet-stream"))),
        (status = 304, description = "Not modified since the `If-None-Match` tag."),
        (status = 400, description = "The name is not a valid path segment (`invalid_path`).", body = crest_proto::api::ErrorBody),
        (status = 404, description = "No such file (`not_found`).", body = crest_proto::api::ErrorBody),
    )
)]
pub async fn widget_file(
    file: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> Response {
    let file = match file {
        Ok(Path(file)) => file,
        Err(rejection) => return invalid_path(&rejection),
    };
    serve(&format!("widget/{file}"), &headers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_page_and_entry_point_is_embedded() {
        for key in [
            "console/index.html",
            "console/app.js",
            "vendor/htm-preact.js",
            "widget/widget.js",
            "widget/demo.html",
        ] {
            assert!(ASSETS.contains_key(key), "{key} is not embedded");
        }
    }

    #[test]
    fn gzip_is_used_only_when_accepted() {
        assert!(accepts_gzip("gzip, deflate, br"));
        assert!(accepts_gzip("br;q=1.0, gzip;q=0.8"));
        assert!(accepts_gzip("*"));
        assert!(!accepts_gzip("gzip;q=0"));
        assert!(!accepts_gzip("br, identity"));
    }

    #[test]
    fn a_matching_tag_answers_not_modified() {
        let etag = ASSETS["widget/widget.js"].etag.clone();
        let mut request = HeaderMap::new();
        request.insert(header::IF_NONE_MATCH, etag);
        assert_eq!(
            serve("widget/widget.js", &request).status(),
            StatusCode::NOT_MODIFIED
        );
        assert_eq!(
            serve("widget/widget.js", &HeaderMap::new()).status(),
            StatusCode::OK
        );
    }

    #[test]
    fn text_is_gzipped_and_typed() {
        let mut request = HeaderMap::new();
        request.insert(header::ACCEPT_ENCODING, HeaderValue::from_static("gzip"));
        let response = serve("console/app.js", &request);
        assert_eq!(
            response.headers().get(header::CONTENT_ENCODING),
            Some(&HeaderValue::from_static("gzip"))
        );
        assert_eq!(
            response.headers().get(header::CONTENT_TYPE),
            Some(&HeaderValue::from_static(
                "application/javascript; charset=utf-8"
            ))
        );
    }
}
