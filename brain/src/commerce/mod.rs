//! Commerce: the port through which the bot looks up orders, parcels and stock and starts
//! refunds, with two adapters — [`DemoCommerce`] (embedded demo data) and [`HttpCommerce`] (a
//! merchant's endpoint speaking the JSON contract of `HTTP_CONTRACT.md`).
//!
//! Adapters are blocking: the brain calls them from its worker threads, never inside an actor.
//! Look-ups answer `Ok(None)` for "no such thing"; errors are for failures.
//!
//! The port does not check who asks: `order` and `logistics` answer for any order id of the
//! tenant. The caller must compare [`Order::customer`] with the conversation's customer before
//! telling anything about an order.

mod demo;
mod demo_fixtures;
mod error;
mod http;
mod types;

use crest_proto::TenantId;

pub use demo::DemoCommerce;
pub use demo_fixtures::{DEMO_CUSTOMERS, DEMO_ORDER_IDS, DEMO_SKUS};
pub use error::{CommerceError, CommerceErrorKind};
pub use http::{HttpCommerce, HttpCommerceConfig};
pub use types::{
    Order, OrderItem, OrderStatus, Refund, RefundRequest, RefundStatus, Shipment, ShipmentStatus,
    Stock, TrackingEvent,
};

/// The most orders [`Commerce::recent_orders`] returns, whatever `limit` asks.
pub const MAX_RECENT_ORDERS: usize = 50;

/// A merchant's shop as the bot sees it. Every call is scoped to one tenant.
pub trait Commerce: Send + Sync {
    /// The order `order_id`, or `None` if the tenant has no such order.
    ///
    /// # Errors
    ///
    /// [`CommerceErrorKind::Unavailable`] or [`CommerceErrorKind::BadResponse`] when the
    /// merchant system fails.
    fn order(&self, tenant: &TenantId, order_id: &str) -> Result<Option<Order>, CommerceError>;

    /// The customer's orders, newest first, at most `limit` (capped at [`MAX_RECENT_ORDERS`]).
    ///
    /// # Errors
    ///
    /// As [`Commerce::order`].
    fn recent_orders(
        &self,
        tenant: &TenantId,
        customer: &str,
        limit: usize,
    ) -> Result<Vec<Order>, CommerceError>;

    /// The parcel of order `order_id`, or `None` if there is no such order or it has not shipped.
    ///
    /// # Errors
    ///
    /// As [`Commerce::order`].
    fn logistics(
        &self,
        tenant: &TenantId,
        order_id: &str,
    ) -> Result<Option<Shipment>, CommerceError>;

    /// The stock of `sku`, or `None` if the tenant sells no such SKU.
    ///
    /// # Errors
    ///
    /// As [`Commerce::order`].
    fn stock(&self, tenant: &TenantId, sku: &str) -> Result<Option<Stock>, CommerceError>;

    /// Starts a refund.
    ///
    /// # Errors
    ///
    /// [`CommerceErrorKind::NotFound`] when the customer has no such order,
    /// [`CommerceErrorKind::Rejected`] when the merchant refuses (unpaid, cancelled, already
    /// refunded, amount too high), and the failures of [`Commerce::order`].
    fn create_refund(
        &self,
        tenant: &TenantId,
        request: &RefundRequest,
    ) -> Result<Refund, CommerceError>;
}
