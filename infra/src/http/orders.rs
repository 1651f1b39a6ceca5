//! The customer's orders and parcels from the merchant's systems (the Commerce port the bot uses):
//! `GET /v1/tenants/{t}/customers/{customer}/orders`, for the agent serving the customer.

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use crest_brain::commerce::{
    Commerce, CommerceError, CommerceErrorKind, DemoCommerce, MAX_RECENT_ORDERS, Order, Shipment,
};
use crest_proto::CustomerId;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::error::ApiError;
use super::{AppState, tenant};

/// The merchant's commerce adapter, shared by the API (the bot holds its own handle).
#[derive(Clone)]
pub struct CommercePort(Arc<dyn Commerce>);

impl std::fmt::Debug for CommercePort {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("CommercePort")
    }
}

impl CommercePort {
    /// Wraps an adapter.
    #[must_use]
    pub fn new(commerce: Arc<dyn Commerce>) -> Self {
        Self(commerce)
    }

    /// The adapter.
    #[must_use]
    pub fn adapter(&self) -> Arc<dyn Commerce> {
        Arc::clone(&self.0)
    }

    /// The embedded demo orders, parcels and products.
    #[must_use]
    pub fn demo() -> Self {
        Self(Arc::new(DemoCommerce::new()))
    }
}

/// Query of `GET …/orders`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct OrdersQuery {
    /// At most this many orders, newest first (default 10, clamped to 1-50).
    #[param(maximum = 18446744073709551615_u64)]
    pub limit: Option<usize>,
}

/// One order with its parcel.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrderWithShipment {
    /// The order as the merchant's system gives it (`id`, `status`, `items`, `total_cents`,
    /// `currency`, `created_at`, `address`).
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub order: Order,
    /// Its parcel, once shipped (`carrier`, `tracking_no`, `status`, `events`, `eta`).
    #[schema(value_type = Option<Object>)]
    pub shipment: Option<Shipment>,
}

/// Answer of `GET …/orders`.
#[derive(Debug, Serialize, ToSchema)]
pub struct CustomerOrders {
    /// The customer id.
    pub customer: String,
    /// The customer's newest orders, newest first.
    pub orders: Vec<OrderWithShipment>,
}

pub(super) fn commerce_error(error: &CommerceError) -> ApiError {
    match error.kind() {
        CommerceErrorKind::BadResponse => ApiError::new(
            StatusCode::BAD_GATEWAY,
            "commerce_bad_response",
            format!("the merchant's order system answered outside its contract: {error}"),
        ),
        _ => ApiError::unavailable(
            "commerce_unavailable",
            format!("the merchant's order system did not answer: {error}"),
            5,
        ),
    }
}

/// `GET /v1/tenants/{tenant}/customers/{customer}/orders`: the customer's newest orders with their
/// parcels, from the merchant's systems (the same adapter the bot's order look-ups use).
#[utoipa::path(
    get,
    path = "/v1/tenants/{tenant}/customers/{customer}/orders",
    tag = "conversations",
    params(super::openapi::TenantPath, super::openapi::CustomerPath, OrdersQuery),
    responses(
        (status = 200, description = "The customer's newest orders with their parcels (none for a customer the merchant does not know).", body = CustomerOrders),
        (status = 502, description = "The merchant's system answered outside its contract (`commerce_bad_response`).", body = crest_proto::api::ErrorBody),
        (status = 503, description = "The merchant's system did not answer (`commerce_unavailable`).", body = crest_proto::api::ErrorBody),
    )
)]
pub async fn get_customer_orders(
    State(state): State<AppState>,
    Path((raw_tenant, raw_customer)): Path<(String, String)>,
    query: Result<Query<OrdersQuery>, QueryRejection>,
) -> Result<Json<CustomerOrders>, ApiError> {
    let tenant = tenant(&raw_tenant)?;
    let customer =
        CustomerId::new(&tenant, raw_customer).map_err(|error| ApiError::invalid_id(&error))?;
    let Query(query) =
        query.map_err(|rejection| ApiError::bad_request("invalid_query", rejection.body_text()))?;
    let limit = query.limit.unwrap_or(10).clamp(1, MAX_RECENT_ORDERS);
    let commerce = Arc::clone(&state.commerce.0);
    let key = customer.key().to_owned();
    // The adapter blocks (an HTTP call to the merchant): off the async workers.
    let orders = tokio::task::spawn_blocking(move || {
        let orders = commerce.recent_orders(&tenant, &key, limit)?;
        orders
            .into_iter()
            .map(|order| {
                let shipment = commerce.logistics(&tenant, &order.id)?;
                Ok(OrderWithShipment { order, shipment })
            })
            .collect::<Result<Vec<_>, CommerceError>>()
    })
    .await
    .map_err(|error| ApiError::unavailable("commerce_unavailable", error.to_string(), 1))?
    .map_err(|error| commerce_error(&error))?;
    Ok(Json(CustomerOrders {
        customer: customer.key().to_owned(),
        orders,
    }))
}
