//! [`DemoCommerce`]: an embedded shop with deterministic demo data, for the demo tenant and for
//! trying Crest without a merchant system.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use crest_proto::TenantId;

use super::demo_fixtures::{self, FIXTURE_REFUNDS};
use super::error::{CommerceError, CommerceErrorKind};
use super::types::{Order, OrderStatus, Refund, RefundRequest, RefundStatus, Shipment, Stock};
use super::{Commerce, MAX_RECENT_ORDERS};

/// One tenant's copy of the demo shop.
#[derive(Debug)]
struct Shop {
    orders: Vec<Order>,
    shipments: Vec<Shipment>,
    stock: Vec<Stock>,
    refunds: Vec<Refund>,
    refunds_issued: u64,
}

impl Shop {
    fn seeded() -> Self {
        Self {
            orders: demo_fixtures::orders(),
            shipments: demo_fixtures::shipments(),
            stock: demo_fixtures::stock(),
            refunds: demo_fixtures::refunds(),
            refunds_issued: FIXTURE_REFUNDS,
        }
    }

    fn order_mut(&mut self, order_id: &str) -> Option<&mut Order> {
        let wanted = order_id.trim();
        self.orders
            .iter_mut()
            .find(|order| order.id.eq_ignore_ascii_case(wanted))
    }
}

/// The demo shop: the fixtures of [`super::DEMO_ORDER_IDS`], [`super::DEMO_SKUS`] and
/// [`super::DEMO_CUSTOMERS`], seeded lazily and separately for every tenant that asks (so any
/// tenant can demo, and one tenant's refunds never show in another's). Refunds live in memory.
///
/// Refund rules: the customer must own the order (otherwise it is "not found"); pending-payment,
/// cancelled and refunded orders are rejected; an amount above what is left to refund is
/// rejected; asking again while a refund of the order is `requested` returns that refund instead
/// of a second one. A new refund puts the order in `refunding`.
#[derive(Debug, Default)]
pub struct DemoCommerce {
    shops: Mutex<HashMap<TenantId, Shop>>,
}

impl DemoCommerce {
    /// An empty demo; tenants are seeded on first use.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    fn with_shop<T>(&self, tenant: &TenantId, work: impl FnOnce(&mut Shop) -> T) -> T {
        let mut shops: MutexGuard<'_, HashMap<TenantId, Shop>> =
            self.shops.lock().unwrap_or_else(PoisonError::into_inner);
        let shop = shops.entry(tenant.clone()).or_insert_with(Shop::seeded);
        work(shop)
    }
}

impl Commerce for DemoCommerce {
    fn order(&self, tenant: &TenantId, order_id: &str) -> Result<Option<Order>, CommerceError> {
        Ok(self.with_shop(tenant, |shop| {
            shop.order_mut(order_id).map(|order| order.clone())
        }))
    }

    fn recent_orders(
        &self,
        tenant: &TenantId,
        customer: &str,
        limit: usize,
    ) -> Result<Vec<Order>, CommerceError> {
        let limit = limit.min(MAX_RECENT_ORDERS);
        Ok(self.with_shop(tenant, |shop| {
            let mut orders: Vec<Order> = shop
                .orders
                .iter()
                .filter(|order| order.customer == customer)
                .cloned()
                .collect();
            orders.sort_by(|left, right| {
                right
                    .created_at
                    .cmp(&left.created_at)
                    .then(right.id.cmp(&left.id))
            });
            orders.truncate(limit);
            orders
        }))
    }

    fn logistics(
        &self,
        tenant: &TenantId,
        order_id: &str,
    ) -> Result<Option<Shipment>, CommerceError> {
        let wanted = order_id.trim();
        Ok(self.with_shop(tenant, |shop| {
            shop.shipments
                .iter()
                .find(|shipment| shipment.order_id.eq_ignore_ascii_case(wanted))
                .cloned()
        }))
    }

    fn stock(&self, tenant: &TenantId, sku: &str) -> Result<Option<Stock>, CommerceError> {
        let wanted = sku.trim();
        Ok(self.with_shop(tenant, |shop| {
            shop.stock
                .iter()
                .find(|stock| stock.sku.eq_ignore_ascii_case(wanted))
                .cloned()
        }))
    }

    fn create_refund(
        &self,
        tenant: &TenantId,
        request: &RefundRequest,
    ) -> Result<Refund, CommerceError> {
        self.with_shop(tenant, |shop| {
            let not_found = || {
                CommerceError::new(
                    CommerceErrorKind::NotFound,
                    format!("order {} not found", request.order_id),
                )
            };
            let order = shop.order_mut(&request.order_id).ok_or_else(not_found)?;
            if order.customer != request.customer {
                return Err(not_found());
            }
            let order_id = order.id.clone();
            let total_cents = order.total_cents;
            let refusal = match order.status {
                OrderStatus::PendingPayment => Some("order is not paid"),
                OrderStatus::Cancelled => Some("order is cancelled"),
                OrderStatus::Refunded => Some("order is already refunded"),
                OrderStatus::Paid
                | OrderStatus::Shipped
                | OrderStatus::Delivered
                | OrderStatus::Refunding => None,
            };
            if let Some(refusal) = refusal {
                return Err(CommerceError::new(CommerceErrorKind::Rejected, refusal));
            }
            let open = shop.refunds.iter().find(|refund| {
                refund.order_id == order_id && refund.status == RefundStatus::Requested
            });
            if let Some(open) = open {
                return Ok(open.clone());
            }
            let refunded: u64 = shop
                .refunds
                .iter()
                .filter(|refund| {
                    refund.order_id == order_id && refund.status != RefundStatus::Rejected
                })
                .map(|refund| refund.amount_cents)
                .sum();
            let refundable = total_cents.saturating_sub(refunded);
            let amount_cents = request.amount_cents.unwrap_or(refundable);
            if amount_cents == 0 || amount_cents > refundable {
                return Err(CommerceError::new(
                    CommerceErrorKind::Rejected,
                    format!("amount {amount_cents} is not within the refundable {refundable}"),
                ));
            }
            shop.refunds_issued += 1;
            let refund = Refund {
                id: format!("RF{:06}", shop.refunds_issued),
                order_id: order_id.clone(),
                status: RefundStatus::Requested,
                amount_cents,
            };
            shop.refunds.push(refund.clone());
            if let Some(order) = shop.order_mut(&order_id) {
                order.status = OrderStatus::Refunding;
            }
            tracing::debug!(tenant = %tenant, order = %order_id, refund = %refund.id, "demo refund requested");
            Ok(refund)
        })
    }
}
