//! The customer widget's edge: `PUT`/`GET /v1/tenants/{t}/widget` (the admin configures the
//! website token, allowed origins and identity verification), `POST /v1/tenants/{t}/widget/sessions`
//! (a page opens a customer session), and CORS limited to each tenant's widget origins.

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use crest_proto::access::{AccessEvent, WidgetConfigured};
use crest_proto::{CustomerId, TenantId};
use serde::Deserialize;
use serde_json::{Value, json};

use super::body::Object;
use super::error::ApiError;
use super::{AppState, tenant};
use crate::access::secret::random_bytes;
use crate::access::widget::{self, WidgetSession};
use crate::access::{AccessState, Principal, now_ms};

/// Most origins a widget may list.
const MAX_ORIGINS: usize = 50;

/// Body of `PUT …/widget`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutWidget {
    /// Origins (`https://shop.example`) whose pages may open sessions and call the API: at most
    /// 50, each a scheme and host of at most 200 characters.
    #[serde(default)]
    #[schema(max_items = 50)]
    origins: Vec<String>,
    /// Whether every session needs the merchant's identity hash.
    #[serde(default)]
    identity_required: bool,
    /// A new website token and identity secret (the old ones stop working).
    #[serde(default)]
    rotate: bool,
}

/// Body of `POST …/widget/sessions`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PostWidgetSession {
    /// The tenant's public website token.
    website_token: String,
    /// The merchant's own user id (becomes the customer id), with `identifier_hash`.
    #[schema(min_length = 1, max_length = 128, pattern = r"^[A-Za-z0-9._@+:-]+$")]
    identifier: Option<String>,
    /// Hex HMAC-SHA256 of `identifier` under the widget's identity secret.
    identifier_hash: Option<String>,
    /// An earlier session token of this browser: an anonymous visitor stays the same customer.
    resume: Option<String>,
}

fn origin_is_valid(origin: &str) -> bool {
    let rest = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"));
    rest.is_some_and(|host| {
        !host.is_empty()
            && origin.len() <= 200
            && host
                .chars()
                .all(|character| character.is_ascii_alphanumeric() || ".-:[]".contains(character))
    })
}

fn widget_answer(state: &AppState, tenant: &TenantId, widget: &WidgetConfigured) -> Value {
    let secret = widget::identity_secret(&state.access.masters, tenant, widget).map(|secret| {
        secret
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect::<String>()
    });
    json!({
        "website_token": widget.website_token,
        "origins": widget.origins,
        "identity_required": widget.identity_required,
        "identity_secret": secret,
    })
}

/// `PUT /v1/tenants/{t}/widget`: the widget's allowed origins and identity verification; the
/// website token and identity secret are made on the first call and kept unless `rotate`.
#[utoipa::path(
    put,
    path = "/v1/tenants/{tenant}/widget",
    tag = "access",
    params(super::openapi::TenantPath),
    request_body = PutWidget,
    responses(
        (status = 200, description = "`{website_token, origins, identity_required, identity_secret}`.", body = Object),
    )
)]
pub async fn put_widget(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(raw_tenant): Path<String>,
    body: Result<Json<Object<PutWidget>>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let tenant = tenant(&raw_tenant)?;
    let Json(Object(body)) = body?;
    if body.origins.len() > MAX_ORIGINS {
        return Err(ApiError::bad_request(
            "invalid_origins",
            format!("at most {MAX_ORIGINS} origins"),
        ));
    }
    if let Some(bad) = body.origins.iter().find(|origin| !origin_is_valid(origin)) {
        return Err(ApiError::bad_request(
            "invalid_origins",
            format!("{bad:?} is not an origin: write scheme and host, e.g. https://shop.example"),
        ));
    }
    let fresh_token = widget::new_website_token(&tenant)
        .map_err(|error| ApiError::unavailable("unavailable", error.to_string(), 1))?;
    let fresh_salt = random_bytes::<16>()
        .map_err(|error| ApiError::unavailable("unavailable", error.to_string(), 1))?;
    let configured_by = principal.actor();
    let master_id = state.access.masters.current().id;
    let (event, _) = state
        .access
        .store
        .append(&tenant, now_ms(), |current: &AccessState| {
            let kept = current.widget.as_ref().filter(|_| !body.rotate);
            Ok::<_, ()>(AccessEvent::WidgetConfigured(WidgetConfigured {
                website_token: kept.map_or_else(
                    || fresh_token.clone(),
                    |widget| widget.website_token.clone(),
                ),
                origins: body.origins.clone(),
                identity_required: body.identity_required,
                salt: kept.map_or_else(|| fresh_salt.to_vec(), |widget| widget.salt.clone()),
                master_id: kept.map_or(master_id, |widget| widget.master_id),
                configured_by: configured_by.clone(),
            }))
        })
        .await
        .map_err(|error| ApiError::unavailable("unavailable", format!("{error:?}"), 1))?;
    let AccessEvent::WidgetConfigured(widget) = event else {
        unreachable!("the decision above appends a widget configuration")
    };
    state
        .access
        .audit
        .record_or_log(
            &tenant,
            "widget.configured",
            &configured_by,
            "widget",
            &format!(
                "origins {}; identity {}{}",
                widget.origins.join(" "),
                if widget.identity_required {
                    "required"
                } else {
                    "optional"
                },
                if body.rotate { "; rotated" } else { "" }
            ),
        )
        .await;
    Ok(Json(widget_answer(&state, &tenant, &widget)))
}

/// `GET /v1/tenants/{t}/widget`
#[utoipa::path(
    get,
    path = "/v1/tenants/{tenant}/widget",
    tag = "access",
    params(super::openapi::TenantPath),
    responses(
        (status = 200, description = "`{website_token, origins, identity_required, identity_secret}`.", body = Object),
    )
)]
pub async fn get_widget(
    State(state): State<AppState>,
    Path(raw_tenant): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let tenant = tenant(&raw_tenant)?;
    let widget = configured(&state, &tenant)
        .await?
        .ok_or_else(|| ApiError::not_found("the widget is not configured: PUT it first"))?;
    Ok(Json(widget_answer(&state, &tenant, &widget)))
}

async fn configured(
    state: &AppState,
    tenant: &TenantId,
) -> Result<Option<WidgetConfigured>, ApiError> {
    state.access.store.widget(tenant).await.map_err(|error| {
        ApiError::unavailable(
            "unavailable",
            format!("the widget cannot be read ({error}); retry"),
            1,
        )
    })
}

fn unauthenticated(reason: &str) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, "unauthenticated", reason)
}

/// `POST /v1/tenants/{t}/widget/sessions`: a page opens a customer session with the tenant's
/// public website token (verified when it sends the merchant's identity hash).
#[utoipa::path(
    post,
    path = "/v1/tenants/{tenant}/widget/sessions",
    tag = "access",
    params(super::openapi::TenantPath),
    request_body = PostWidgetSession,
    responses(
        (status = 201, description = "`{token, customer, verified, expires_at_ms}`: the token is the customer's bearer credential.", body = Object),
        (status = 401, description = "Unknown website token, wrong identity hash, or a verified customer required (`unauthenticated`).", body = crest_proto::api::ErrorBody),
    )
)]
pub async fn post_session(
    State(state): State<AppState>,
    Path(raw_tenant): Path<String>,
    headers: HeaderMap,
    body: Result<Json<Object<PostWidgetSession>>, JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let tenant = tenant(&raw_tenant)?;
    let Json(Object(body)) = body?;
    let widget = configured(&state, &tenant)
        .await?
        .filter(|widget| {
            bool::from(subtle::ConstantTimeEq::ct_eq(
                widget.website_token.as_bytes(),
                body.website_token.as_bytes(),
            ))
        })
        .ok_or_else(|| unauthenticated("unknown website token"))?;
    if !origin_allowed(&headers, &widget) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "this page's origin is not one of the widget's origins",
        ));
    }
    let now = now_ms();
    let (customer, verified) = match (&body.identifier, &body.identifier_hash) {
        (Some(identifier), Some(hash)) => {
            let secret = widget::identity_secret(&state.access.masters, &tenant, &widget)
                .ok_or_else(|| {
                    unauthenticated("the widget's identity secret is gone; an admin rotates it")
                })?;
            if !widget::identity_hash_matches(&secret, identifier, hash) {
                return Err(unauthenticated(
                    "identifier_hash is not the HMAC-SHA256 of identifier under the identity secret",
                ));
            }
            let customer = CustomerId::new(&tenant, identifier.clone())
                .map_err(|error| ApiError::invalid_id(&error))?;
            (customer, true)
        }
        (Some(_), None) | (None, Some(_)) => {
            return Err(ApiError::bad_request(
                "invalid_identity",
                "identifier and identifier_hash go together",
            ));
        }
        (None, None) if widget.identity_required => {
            return Err(unauthenticated(
                "this widget needs a verified customer: send identifier and identifier_hash",
            ));
        }
        (None, None) => {
            let resumed = body
                .resume
                .as_deref()
                .and_then(|token| widget::verify_session(&state.access.masters, token))
                .filter(|session| {
                    session.tenant == tenant
                        && !session.verified
                        && session
                            .expires_at_ms
                            .saturating_add(widget::RESUME_WITHIN_MS)
                            > now
                });
            let customer = match resumed {
                Some(session) => session.customer,
                None => CustomerId::new(&tenant, format!("visitor-{}", ulid::Ulid::new()))
                    .map_err(|error| ApiError::invalid_id(&error))?,
            };
            (customer, false)
        }
    };
    let session = WidgetSession {
        tenant,
        customer,
        verified,
        expires_at_ms: now + widget::SESSION_TTL_MS,
    };
    let token = widget::issue_session(&state.access.masters, &session);
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "token": token,
            "customer": session.customer.key(),
            "verified": session.verified,
            "expires_at_ms": session.expires_at_ms,
        })),
    ))
}

/// Whether the request's page may use the widget: no `Origin` (not a browser), the node's own
/// origin, or one of the widget's origins.
fn origin_allowed(headers: &HeaderMap, widget: &WidgetConfigured) -> bool {
    let Some(origin) = headers
        .get(header::ORIGIN)
        .and_then(|value| value.to_str().ok())
    else {
        return true;
    };
    same_origin(headers, origin) || widget.origins.iter().any(|allowed| allowed == origin)
}

fn same_origin(headers: &HeaderMap, origin: &str) -> bool {
    let host = headers
        .get(header::HOST)
        .and_then(|value| value.to_str().ok());
    let origin_host = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"));
    host.is_some() && host == origin_host
}

/// The tenant a `/v1/tenants/{t}/…` path names.
fn tenant_of_path(path: &str) -> Option<TenantId> {
    let rest = path.strip_prefix("/v1/tenants/")?;
    let (raw, _) = rest.split_once('/').unwrap_or((rest, ""));
    TenantId::new(raw).ok()
}

/// CORS for the tenants' routes: a cross-origin page listed among the tenant's widget origins
/// gets the answers (and its preflights pass); every other cross-origin page gets no CORS headers,
/// so browsers keep the answers from it.
pub async fn cors(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let origin = request
        .headers()
        .get(header::ORIGIN)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    let (Some(origin), Some(tenant)) = (origin, tenant_of_path(request.uri().path())) else {
        return next.run(request).await;
    };
    if same_origin(request.headers(), &origin) {
        return next.run(request).await;
    }
    let allowed = match state.access.store.widget(&tenant).await {
        Ok(Some(widget)) => widget.origins.contains(&origin),
        _ => false,
    };
    let preflight = request.method() == Method::OPTIONS
        && request
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    let Ok(origin_value) = HeaderValue::from_str(&origin) else {
        return next.run(request).await;
    };
    if preflight {
        if !allowed {
            return ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                "this origin is not one of the tenant's widget origins",
            )
            .into_response();
        }
        let mut response = StatusCode::NO_CONTENT.into_response();
        let headers = response.headers_mut();
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin_value);
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("GET, POST"),
        );
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static("authorization, content-type, idempotency-key"),
        );
        headers.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static("600"),
        );
        headers.insert(header::VARY, HeaderValue::from_static("Origin"));
        return response;
    }
    let mut response = next.run(request).await;
    if allowed {
        let headers = response.headers_mut();
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin_value);
        headers.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static("retry-after"),
        );
        headers.append(header::VARY, HeaderValue::from_static("Origin"));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_scheme_and_host_only() {
        for good in [
            "https://shop.example",
            "http://localhost:8080",
            "https://[::1]:443",
        ] {
            assert!(origin_is_valid(good), "{good}");
        }
        for bad in [
            "shop.example",
            "https://",
            "https://shop.example/",
            "https://shop.example/path",
            "ftp://shop.example",
            "https://shop example",
            "*",
        ] {
            assert!(!origin_is_valid(bad), "{bad}");
        }
    }

    #[test]
    fn the_tenant_comes_from_the_path() {
        assert_eq!(
            tenant_of_path("/v1/tenants/acme/messages").map(|tenant| tenant.to_string()),
            Some("acme".to_owned())
        );
        assert_eq!(
            tenant_of_path("/v1/tenants/acme").map(|tenant| tenant.to_string()),
            Some("acme".to_owned())
        );
        assert_eq!(tenant_of_path("/v1/cluster"), None);
        assert_eq!(tenant_of_path("/healthz"), None);
    }
}
