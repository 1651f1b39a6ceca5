//! The data the Commerce port speaks. Field names and enum spellings are the JSON of the HTTP
//! contract (`HTTP_CONTRACT.md`); amounts are integer cents of `currency`.

use serde::{Deserialize, Serialize};

/// Where an order stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    /// Placed, not paid yet.
    PendingPayment,
    /// Paid, not shipped yet.
    Paid,
    /// Handed to a carrier.
    Shipped,
    /// Delivered to the customer.
    Delivered,
    /// Cancelled before shipping.
    Cancelled,
    /// A refund is in progress.
    Refunding,
    /// Refunded.
    Refunded,
}

impl OrderStatus {
    /// The status as snake-case text (`pending_payment`, …).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PendingPayment => "pending_payment",
            Self::Paid => "paid",
            Self::Shipped => "shipped",
            Self::Delivered => "delivered",
            Self::Cancelled => "cancelled",
            Self::Refunding => "refunding",
            Self::Refunded => "refunded",
        }
    }
}

/// One line of an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderItem {
    /// The product's SKU.
    pub sku: String,
    /// The product's name as shown to the customer.
    pub name: String,
    /// How many.
    pub quantity: u32,
    /// Unit price in cents.
    pub price_cents: u64,
}

/// A customer's order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    /// The merchant's order number.
    pub id: String,
    /// The customer id (the same id the conversation's customer has).
    pub customer: String,
    /// Where it stands.
    pub status: OrderStatus,
    /// The lines.
    pub items: Vec<OrderItem>,
    /// What the customer paid (or owes), in cents.
    pub total_cents: u64,
    /// ISO 4217 currency code (`CNY`).
    pub currency: String,
    /// When it was placed, RFC 3339 (`2026-11-11T00:03:21+08:00`).
    pub created_at: String,
    /// The delivery address as one line.
    pub address: String,
}

/// Where a parcel stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ShipmentStatus {
    /// Label printed, waiting for the carrier.
    AwaitingPickup,
    /// On its way.
    InTransit,
    /// With the courier for delivery today.
    OutForDelivery,
    /// Delivered.
    Delivered,
    /// Held up (address problem, damage, customs).
    Exception,
    /// On its way back to the merchant.
    Returned,
}

/// One scan of a parcel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrackingEvent {
    /// When, RFC 3339.
    pub at: String,
    /// Where (city or hub).
    pub location: String,
    /// What happened, as the carrier says it.
    pub description: String,
}

/// The parcel of an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shipment {
    /// The order it carries.
    pub order_id: String,
    /// The carrier's name (`顺丰速运 SF Express`).
    pub carrier: String,
    /// The carrier's tracking number.
    pub tracking_no: String,
    /// Where it stands.
    pub status: ShipmentStatus,
    /// Scans, oldest first (the last one is the latest).
    pub events: Vec<TrackingEvent>,
    /// Expected delivery date (`2026-11-13`), if known.
    #[serde(default)]
    pub eta: Option<String>,
}

/// A product's stock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stock {
    /// The SKU.
    pub sku: String,
    /// The product's name.
    pub name: String,
    /// Units available to sell now.
    pub available: u32,
    /// When it is expected back in stock (`2026-11-20`), if sold out and known.
    #[serde(default)]
    pub restock_date: Option<String>,
}

/// A refund the bot asks the merchant to start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundRequest {
    /// The order to refund.
    pub order_id: String,
    /// The customer asking (must own the order).
    pub customer: String,
    /// How much, in cents; the whole refundable amount when absent.
    #[serde(default)]
    pub amount_cents: Option<u64>,
    /// The customer's reason in their words.
    pub reason: String,
}

/// Where a refund stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefundStatus {
    /// Asked for, waiting for the merchant.
    Requested,
    /// Approved, money on its way.
    Approved,
    /// Paid back.
    Completed,
    /// Refused by the merchant.
    Rejected,
}

/// A refund.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refund {
    /// The merchant's refund id.
    pub id: String,
    /// The refunded order.
    pub order_id: String,
    /// Where it stands.
    pub status: RefundStatus,
    /// How much, in cents of the order's currency.
    pub amount_cents: u64,
}
