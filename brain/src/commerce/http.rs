//! [`HttpCommerce`]: the Commerce port over a merchant's HTTP endpoint.
//!
//! The JSON contract (also in `HTTP_CONTRACT.md` beside this file), all paths under the
//! configured base URL, path segments percent-encoded:
//!
//! | Request | Success | Other answers |
//! |---|---|---|
//! | `GET /tenants/{tenant}/orders/{order_id}` | 200 [`Order`] | 404: no such order → `Ok(None)` |
//! | `GET /tenants/{tenant}/customers/{customer}/orders?limit=N` | 200 `[Order]`, newest first, at most N | 404: unknown customer → `Ok(vec![])` |
//! | `GET /tenants/{tenant}/orders/{order_id}/logistics` | 200 [`Shipment`] | 404: no such order or not shipped → `Ok(None)` |
//! | `GET /tenants/{tenant}/skus/{sku}/stock` | 200 [`Stock`] | 404: no such SKU → `Ok(None)` |
//! | `POST /tenants/{tenant}/refunds` with a [`RefundRequest`] | 200 or 201 [`Refund`] | 404 → `NotFound`; 409 or 422 → `Rejected` (the body's `reason` if any) |
//!
//! Every request sends `Accept: application/json` and, when configured,
//! `Authorization: Bearer <token>`. Connection failures, timeouts, 401, 403, 429 and 5xx are
//! [`CommerceErrorKind::Unavailable`]; any other status, a body that is not the contract's JSON
//! or a body over `max_body_bytes` is [`CommerceErrorKind::BadResponse`]. Unknown JSON fields are
//! ignored, so merchants may send more.
//!
//! The client is reqwest's blocking client: call it from the brain's worker threads, never from
//! inside an async runtime. Only `http://` URLs work (the workspace builds reqwest without TLS).

use std::fmt;
use std::io::Read;
use std::time::Duration;

use crest_proto::TenantId;
use reqwest::blocking::{Client, RequestBuilder, Response};
use reqwest::{StatusCode, Url};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::error::{CommerceError, CommerceErrorKind};
use super::types::{Order, Refund, RefundRequest, Shipment, Stock};
use super::{Commerce, MAX_RECENT_ORDERS};

/// Settings of an [`HttpCommerce`]; `..Default::default()` for the rest.
#[derive(Clone, PartialEq, Eq)]
pub struct HttpCommerceConfig {
    /// The merchant endpoint's base URL (`http://shop.internal:8080/crest`).
    pub base_url: String,
    /// Sent as `Authorization: Bearer <token>` when set.
    pub bearer_token: Option<String>,
    /// Time allowed to connect.
    pub connect_timeout: Duration,
    /// Time allowed for a whole request, body included.
    pub timeout: Duration,
    /// Largest response body accepted.
    pub max_body_bytes: usize,
}

impl fmt::Debug for HttpCommerceConfig {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("HttpCommerceConfig")
            .field("base_url", &self.base_url)
            .field(
                "bearer_token",
                &self.bearer_token.as_ref().map(|_| "<redacted>"),
            )
            .field("connect_timeout", &self.connect_timeout)
            .field("timeout", &self.timeout)
            .field("max_body_bytes", &self.max_body_bytes)
            .finish()
    }
}

impl Default for HttpCommerceConfig {
    fn default() -> Self {
        Self {
            base_url: "http://127.0.0.1:8081".to_owned(),
            bearer_token: None,
            connect_timeout: Duration::from_secs(1),
            timeout: Duration::from_secs(3),
            max_body_bytes: 1024 * 1024,
        }
    }
}

/// The Commerce port over HTTP (see the module documentation for the contract).
pub struct HttpCommerce {
    client: Client,
    base: Url,
    bearer_token: Option<String>,
    max_body_bytes: usize,
}

impl fmt::Debug for HttpCommerce {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("HttpCommerce")
            .field("base", &self.base.as_str())
            .field(
                "bearer_token",
                &self.bearer_token.as_ref().map(|_| "<redacted>"),
            )
            .finish_non_exhaustive()
    }
}

/// The error body a merchant may send with a 4xx (`{"error": "...", "reason": "..."}`).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ErrorBody {
    error: Option<String>,
    reason: Option<String>,
}

impl HttpCommerce {
    /// A client for the endpoint in `config`.
    ///
    /// # Errors
    ///
    /// [`CommerceErrorKind::InvalidConfig`] for a base URL that is not an `http://` URL, or when
    /// the HTTP client cannot be built.
    pub fn new(config: HttpCommerceConfig) -> Result<Self, CommerceError> {
        let invalid =
            |message: String| CommerceError::new(CommerceErrorKind::InvalidConfig, message);
        let base = Url::parse(&config.base_url)
            .map_err(|error| invalid(format!("base url {:?}: {error}", config.base_url)))?;
        if base.scheme() != "http" || base.cannot_be_a_base() {
            return Err(invalid(format!(
                "base url {:?} must be an http:// url (built without tls)",
                config.base_url
            )));
        }
        let client = Client::builder()
            .connect_timeout(config.connect_timeout)
            .timeout(config.timeout)
            .build()
            .map_err(|error| invalid(format!("http client: {error}")))?;
        Ok(Self {
            client,
            base,
            bearer_token: config.bearer_token,
            max_body_bytes: config.max_body_bytes,
        })
    }

    /// `base/tenants/{tenant}/{segments…}` with every segment percent-encoded.
    fn url(&self, tenant: &TenantId, segments: &[&str]) -> Result<Url, CommerceError> {
        let mut url = self.base.clone();
        {
            let mut path = url.path_segments_mut().map_err(|()| {
                CommerceError::new(
                    CommerceErrorKind::InvalidConfig,
                    "base url cannot be a base",
                )
            })?;
            path.pop_if_empty().push("tenants").push(tenant.as_str());
            path.extend(segments);
        }
        Ok(url)
    }

    fn send(&self, request: RequestBuilder, what: &str) -> Result<Response, CommerceError> {
        let request = request.header(reqwest::header::ACCEPT, "application/json");
        let request = match &self.bearer_token {
            Some(token) => request.bearer_auth(token),
            None => request,
        };
        request.send().map_err(|error| {
            let cause = if error.is_timeout() {
                "timed out"
            } else if error.is_connect() {
                "connection failed"
            } else {
                "request failed"
            };
            tracing::warn!(what, %error, "commerce endpoint unreachable");
            CommerceError::new(
                CommerceErrorKind::Unavailable,
                format!("{what}: {cause}: {error}"),
            )
        })
    }

    fn read_body(&self, response: Response, what: &str) -> Result<Vec<u8>, CommerceError> {
        let limit = u64::try_from(self.max_body_bytes)
            .unwrap_or(u64::MAX)
            .saturating_add(1);
        let mut body = Vec::new();
        response
            .take(limit)
            .read_to_end(&mut body)
            .map_err(|error| {
                CommerceError::new(
                    CommerceErrorKind::Unavailable,
                    format!("{what}: reading the body failed: {error}"),
                )
            })?;
        if body.len() > self.max_body_bytes {
            return Err(CommerceError::new(
                CommerceErrorKind::BadResponse,
                format!("{what}: body over {} bytes", self.max_body_bytes),
            ));
        }
        Ok(body)
    }

    fn parse<T: DeserializeOwned>(
        &self,
        response: Response,
        what: &str,
    ) -> Result<T, CommerceError> {
        let body = self.read_body(response, what)?;
        serde_json::from_slice(&body).map_err(|error| {
            CommerceError::new(
                CommerceErrorKind::BadResponse,
                format!("{what}: body is not the contract's json: {error}"),
            )
        })
    }

    /// A GET whose 404 means "none".
    fn get_optional<T: DeserializeOwned>(
        &self,
        url: Url,
        what: &str,
    ) -> Result<Option<T>, CommerceError> {
        let response = self.send(self.client.get(url), what)?;
        let status = response.status();
        tracing::debug!(what, status = status.as_u16(), "commerce response");
        if status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if status == StatusCode::OK {
            return self.parse(response, what).map(Some);
        }
        Err(self.status_error(response, what))
    }

    /// The error of an unexpected status.
    fn status_error(&self, response: Response, what: &str) -> CommerceError {
        let status = response.status();
        let unavailable = status.is_server_error()
            || status == StatusCode::TOO_MANY_REQUESTS
            || status == StatusCode::UNAUTHORIZED
            || status == StatusCode::FORBIDDEN;
        let kind = if unavailable {
            CommerceErrorKind::Unavailable
        } else {
            CommerceErrorKind::BadResponse
        };
        if unavailable {
            tracing::warn!(what, status = status.as_u16(), "commerce endpoint failed");
        }
        CommerceError::new(
            kind,
            format!("{what}: unexpected status {}", status.as_u16()),
        )
    }
}

impl Commerce for HttpCommerce {
    fn order(&self, tenant: &TenantId, order_id: &str) -> Result<Option<Order>, CommerceError> {
        let url = self.url(tenant, &["orders", order_id])?;
        self.get_optional(url, "order")
    }

    fn recent_orders(
        &self,
        tenant: &TenantId,
        customer: &str,
        limit: usize,
    ) -> Result<Vec<Order>, CommerceError> {
        let limit = limit.min(MAX_RECENT_ORDERS);
        let mut url = self.url(tenant, &["customers", customer, "orders"])?;
        url.query_pairs_mut()
            .append_pair("limit", &limit.to_string());
        let mut orders: Vec<Order> = self.get_optional(url, "recent orders")?.unwrap_or_default();
        orders.truncate(limit);
        Ok(orders)
    }

    fn logistics(
        &self,
        tenant: &TenantId,
        order_id: &str,
    ) -> Result<Option<Shipment>, CommerceError> {
        let url = self.url(tenant, &["orders", order_id, "logistics"])?;
        self.get_optional(url, "logistics")
    }

    fn stock(&self, tenant: &TenantId, sku: &str) -> Result<Option<Stock>, CommerceError> {
        let url = self.url(tenant, &["skus", sku, "stock"])?;
        self.get_optional(url, "stock")
    }

    fn create_refund(
        &self,
        tenant: &TenantId,
        request: &RefundRequest,
    ) -> Result<Refund, CommerceError> {
        let what = "create refund";
        let url = self.url(tenant, &["refunds"])?;
        let response = self.send(self.client.post(url).json(request), what)?;
        let status = response.status();
        tracing::debug!(what, status = status.as_u16(), "commerce response");
        if status == StatusCode::OK || status == StatusCode::CREATED {
            return self.parse(response, what);
        }
        if status == StatusCode::NOT_FOUND {
            return Err(CommerceError::new(
                CommerceErrorKind::NotFound,
                format!("order {} not found", request.order_id),
            ));
        }
        if status == StatusCode::CONFLICT || status == StatusCode::UNPROCESSABLE_ENTITY {
            let body: ErrorBody = self
                .read_body(response, what)
                .ok()
                .and_then(|body| serde_json::from_slice(&body).ok())
                .unwrap_or_default();
            let reason = body
                .reason
                .or(body.error)
                .unwrap_or_else(|| format!("status {}", status.as_u16()));
            return Err(CommerceError::new(CommerceErrorKind::Rejected, reason));
        }
        Err(self.status_error(response, what))
    }
}
