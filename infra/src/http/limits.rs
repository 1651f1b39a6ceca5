//! Abuse limits at the API's edge: customers' message rates (per customer and per tenant, GCRA
//! through `governor`), and the number of WebSocket connections a tenant may hold open.
//!
//! A message over a rate answers 429 `rate_limited` with `Retry-After`; a WebSocket over the cap
//! answers 429 `too_many_connections`. The body and text limits are in the handlers, as before.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::StatusCode;
use crest_proto::{CustomerId, TenantId};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use super::error::ApiError;

/// The limits of a node (`crest serve --customer-messages-per-min …`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimitSettings {
    /// Messages one customer may send per minute, sustained.
    pub customer_messages_per_min: u32,
    /// Messages one customer may send at once before the sustained rate applies.
    pub customer_burst: u32,
    /// Messages all customers of one tenant may send per second (also its burst).
    pub tenant_messages_per_s: u32,
    /// WebSocket connections one tenant may hold open on this node.
    pub websockets_per_tenant: usize,
}

impl Default for LimitSettings {
    fn default() -> Self {
        Self {
            customer_messages_per_min: 60,
            customer_burst: 20,
            tenant_messages_per_s: 20_000,
            websockets_per_tenant: 5_000,
        }
    }
}

/// The node's limiters.
pub struct Limiters {
    settings: LimitSettings,
    customers: DefaultKeyedRateLimiter<CustomerId>,
    tenants: DefaultKeyedRateLimiter<TenantId>,
    clock: DefaultClock,
    sockets: Mutex<HashMap<TenantId, usize>>,
}

impl std::fmt::Debug for Limiters {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Limiters")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

fn at_least_one(value: u32) -> NonZeroU32 {
    NonZeroU32::new(value.max(1)).unwrap_or(NonZeroU32::MIN)
}

fn rate_limited(reason: String, wait: Duration) -> ApiError {
    let seconds = u32::try_from(wait.as_millis().div_ceil(1000))
        .unwrap_or(u32::MAX)
        .max(1);
    ApiError {
        retry_after: Some(seconds),
        ..ApiError::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", reason)
    }
}

impl Limiters {
    /// Limiters with `settings`.
    #[must_use]
    pub fn new(settings: LimitSettings) -> Self {
        let customer_quota = Quota::per_minute(at_least_one(settings.customer_messages_per_min))
            .allow_burst(at_least_one(settings.customer_burst));
        let tenant_quota = Quota::per_second(at_least_one(settings.tenant_messages_per_s));
        Self {
            settings,
            customers: RateLimiter::keyed(customer_quota),
            tenants: RateLimiter::keyed(tenant_quota),
            clock: DefaultClock::default(),
            sockets: Mutex::new(HashMap::new()),
        }
    }

    /// The settings.
    #[must_use]
    pub fn settings(&self) -> LimitSettings {
        self.settings
    }

    /// Admits one message of `customer` (and so of its tenant), or answers 429.
    pub fn admit_message(&self, customer: &CustomerId) -> Result<(), ApiError> {
        if let Err(not_until) = self.customers.check_key(customer) {
            return Err(rate_limited(
                format!(
                    "this customer sends more than {} messages a minute (bursts of {}); slow down",
                    self.settings.customer_messages_per_min, self.settings.customer_burst
                ),
                not_until.wait_time_from(self.clock.now()),
            ));
        }
        if let Err(not_until) = self.tenants.check_key(customer.tenant()) {
            return Err(rate_limited(
                format!(
                    "this tenant's customers send more than {} messages a second",
                    self.settings.tenant_messages_per_s
                ),
                not_until.wait_time_from(self.clock.now()),
            ));
        }
        Ok(())
    }

    /// Takes one of the tenant's WebSocket places until the guard drops, or answers 429.
    pub fn open_socket(self: &Arc<Self>, tenant: &TenantId) -> Result<SocketPlace, ApiError> {
        let mut sockets = self.lock_sockets();
        let open = sockets.entry(tenant.clone()).or_insert(0);
        if *open >= self.settings.websockets_per_tenant {
            return Err(ApiError {
                retry_after: Some(5),
                ..ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "too_many_connections",
                    format!(
                        "this tenant already holds {} WebSocket connections on this node",
                        self.settings.websockets_per_tenant
                    ),
                )
            });
        }
        *open += 1;
        Ok(SocketPlace {
            limiters: Arc::clone(self),
            tenant: tenant.clone(),
        })
    }

    /// Forgets the rate state of customers and tenants idle long enough to be back at full burst
    /// (the keyed state would otherwise grow with every customer ever seen).
    pub fn forget_idle(&self) {
        self.customers.retain_recent();
        self.customers.shrink_to_fit();
        self.tenants.retain_recent();
    }

    fn lock_sockets(&self) -> std::sync::MutexGuard<'_, HashMap<TenantId, usize>> {
        self.sockets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// One WebSocket place of a tenant, given back when dropped.
#[derive(Debug)]
pub struct SocketPlace {
    limiters: Arc<Limiters>,
    tenant: TenantId,
}

impl Drop for SocketPlace {
    fn drop(&mut self) {
        let mut sockets = self.limiters.lock_sockets();
        if let Some(open) = sockets.get_mut(&self.tenant) {
            *open = open.saturating_sub(1);
            if *open == 0 {
                sockets.remove(&self.tenant);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn customer(tenant: &str, key: &str) -> CustomerId {
        CustomerId::new(&TenantId::new(tenant).expect("tenant"), key).expect("customer")
    }

    #[test]
    fn a_burst_beyond_the_customers_allowance_is_refused_with_a_retry_delay() {
        let limiters = Limiters::new(LimitSettings::default());
        let alice = customer("shop", "alice");
        let outcomes: Vec<_> = (0..60).map(|_| limiters.admit_message(&alice)).collect();
        let admitted = outcomes.iter().filter(|outcome| outcome.is_ok()).count();
        assert_eq!(
            admitted, 20,
            "the burst allowance, then nothing within the same instant"
        );
        let refused = outcomes
            .iter()
            .find_map(|outcome| outcome.clone().err())
            .expect("some refused");
        assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(refused.error, "rate_limited");
        assert!(refused.retry_after.is_some_and(|seconds| seconds >= 1));
        // Another customer of the same tenant is not affected.
        assert!(limiters.admit_message(&customer("shop", "bob")).is_ok());
    }

    #[test]
    fn the_tenant_rate_caps_all_its_customers_together() {
        let limiters = Limiters::new(LimitSettings {
            tenant_messages_per_s: 5,
            ..LimitSettings::default()
        });
        let admitted = (0..10)
            .filter(|n| {
                limiters
                    .admit_message(&customer("shop", &format!("c-{n}")))
                    .is_ok()
            })
            .count();
        assert_eq!(admitted, 5);
        assert!(limiters.admit_message(&customer("other", "c-1")).is_ok());
    }

    #[test]
    fn websocket_places_are_capped_per_tenant_and_given_back() {
        let limiters = Arc::new(Limiters::new(LimitSettings {
            websockets_per_tenant: 2,
            ..LimitSettings::default()
        }));
        let shop = TenantId::new("shop").expect("tenant");
        let first = limiters.open_socket(&shop).expect("first");
        let _second = limiters.open_socket(&shop).expect("second");
        let refused = limiters.open_socket(&shop).expect_err("third refused");
        assert_eq!(refused.error, "too_many_connections");
        drop(first);
        assert!(limiters.open_socket(&shop).is_ok());
    }
}
