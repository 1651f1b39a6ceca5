//! The embedded demo shop: fixtures, look-ups, refunds, tenant isolation.

use std::collections::HashSet;
use std::sync::Arc;

use crest_brain::commerce::{
    Commerce, CommerceErrorKind, DEMO_CUSTOMERS, DEMO_ORDER_IDS, DEMO_SKUS, DemoCommerce,
    OrderStatus, RefundRequest, RefundStatus, ShipmentStatus,
};
use crest_proto::TenantId;

fn tenant(name: &str) -> TenantId {
    TenantId::new(name).expect("valid tenant")
}

fn refund(order_id: &str, customer: &str, amount_cents: Option<u64>) -> RefundRequest {
    RefundRequest {
        order_id: order_id.to_owned(),
        customer: customer.to_owned(),
        amount_cents,
        reason: "不想要了 / changed my mind".to_owned(),
    }
}

#[test]
fn every_fixture_resolves_for_any_tenant() {
    let demo = DemoCommerce::new();
    for name in ["demo", "acme", "t-2"] {
        let tenant = tenant(name);
        let mut statuses = HashSet::new();
        for id in DEMO_ORDER_IDS {
            let order = demo.order(&tenant, id).expect("ok").expect("known order");
            assert_eq!(order.id, id);
            assert!(DEMO_CUSTOMERS.contains(&order.customer.as_str()));
            let items_total: u64 = order
                .items
                .iter()
                .map(|item| item.price_cents * u64::from(item.quantity))
                .sum();
            assert_eq!(order.total_cents, items_total, "{id}");
            assert_eq!(order.currency, "CNY");
            statuses.insert(order.status);
        }
        assert_eq!(statuses.len(), 7, "every order status is demonstrated");
        for sku in DEMO_SKUS {
            let stock = demo.stock(&tenant, sku).expect("ok").expect("known sku");
            assert_eq!(stock.sku, sku);
        }
        assert_eq!(demo.order(&tenant, "2026111199999").expect("ok"), None);
        assert_eq!(demo.stock(&tenant, "SKU9999").expect("ok"), None);
    }
}

#[test]
fn lookups_are_forgiving_about_case_and_spaces() {
    let demo = DemoCommerce::new();
    let tenant = tenant("demo");
    assert!(demo.stock(&tenant, " sku1001 ").expect("ok").is_some());
    assert!(demo.order(&tenant, " 2026111100001").expect("ok").is_some());
}

#[test]
fn recent_orders_are_newest_first_and_limited() {
    let demo = DemoCommerce::new();
    let tenant = tenant("demo");
    let ids = |limit| -> Vec<String> {
        demo.recent_orders(&tenant, "web-visitor", limit)
            .expect("ok")
            .into_iter()
            .map(|order| order.id)
            .collect()
    };
    assert_eq!(ids(10), ["2026111100003", "2026111100002", "2026111100001"]);
    assert_eq!(ids(2), ["2026111100003", "2026111100002"]);
    assert!(ids(0).is_empty());
    assert!(
        demo.recent_orders(&tenant, "nobody", 10)
            .expect("ok")
            .is_empty()
    );
}

#[test]
fn parcels_have_bilingual_events() {
    let demo = DemoCommerce::new();
    let tenant = tenant("demo");
    let mut carriers = HashSet::new();
    for id in DEMO_ORDER_IDS {
        let order = demo.order(&tenant, id).expect("ok").expect("known");
        let shipment = demo.logistics(&tenant, id).expect("ok");
        let shipped = matches!(order.status, OrderStatus::Shipped | OrderStatus::Delivered);
        if shipped {
            assert!(shipment.is_some(), "{id} has a parcel");
        }
        let Some(shipment) = shipment else {
            continue;
        };
        assert_eq!(shipment.order_id, id);
        assert!(!shipment.events.is_empty());
        for event in &shipment.events {
            let has_chinese = event
                .description
                .chars()
                .any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c));
            let has_english = event.description.chars().any(|c| c.is_ascii_alphabetic());
            assert!(has_chinese && has_english, "{event:?}");
        }
        let sorted = shipment
            .events
            .windows(2)
            .all(|pair| pair[0].at <= pair[1].at);
        assert!(sorted, "events oldest first for {id}");
        if shipment.status == ShipmentStatus::Delivered {
            assert_eq!(shipment.eta, None);
        }
        carriers.insert(shipment.carrier.clone());
    }
    assert!(carriers.iter().any(|carrier| carrier.contains("顺丰")));
    assert!(carriers.iter().any(|carrier| carrier.contains("中通")));
    assert!(carriers.iter().any(|carrier| carrier.contains("京东")));
    assert_eq!(
        demo.logistics(&tenant, "2026111100003").expect("ok"),
        None,
        "paid, not shipped"
    );
    let sold_out = demo.stock(&tenant, "SKU1002").expect("ok").expect("known");
    assert_eq!(sold_out.available, 0);
    assert_eq!(sold_out.restock_date.as_deref(), Some("2026-11-20"));
}

#[test]
fn refunds_are_stored_idempotent_and_per_tenant() {
    let demo = DemoCommerce::new();
    let demo_tenant = tenant("demo");
    let created = demo
        .create_refund(&demo_tenant, &refund("2026111100001", "web-visitor", None))
        .expect("refund");
    assert_eq!(created.id, "RF000003");
    assert_eq!(created.status, RefundStatus::Requested);
    assert_eq!(created.amount_cents, 59_900);
    let order = demo
        .order(&demo_tenant, "2026111100001")
        .expect("ok")
        .expect("known");
    assert_eq!(order.status, OrderStatus::Refunding);
    let again = demo
        .create_refund(
            &demo_tenant,
            &refund("2026111100001", "web-visitor", Some(100)),
        )
        .expect("same refund");
    assert_eq!(again, created, "an open refund is returned, not duplicated");
    let second = demo
        .create_refund(
            &demo_tenant,
            &refund("2026111100002", "web-visitor", Some(10_000)),
        )
        .expect("partial refund");
    assert_eq!(
        (second.id.as_str(), second.amount_cents),
        ("RF000004", 10_000)
    );

    let other = tenant("other-shop");
    let untouched = demo
        .order(&other, "2026111100001")
        .expect("ok")
        .expect("known");
    assert_eq!(untouched.status, OrderStatus::Shipped);
    let first_there = demo
        .create_refund(&other, &refund("2026111100001", "web-visitor", None))
        .expect("refund");
    assert_eq!(first_there.id, "RF000003");
}

#[test]
fn refund_refusals_have_kinds() {
    let demo = DemoCommerce::new();
    let tenant = tenant("demo");
    let cases = [
        (
            refund("2026111100004", "c-1001", None),
            CommerceErrorKind::Rejected,
            "unpaid",
        ),
        (
            refund("2026111100006", "c-1001", None),
            CommerceErrorKind::Rejected,
            "cancelled",
        ),
        (
            refund("2026111100008", "c-1002", None),
            CommerceErrorKind::Rejected,
            "refunded",
        ),
        (
            refund("2026111100010", "c-1002", Some(1_000_000)),
            CommerceErrorKind::Rejected,
            "too much",
        ),
        (
            refund("2026111100010", "c-1002", Some(0)),
            CommerceErrorKind::Rejected,
            "nothing",
        ),
        (
            refund("2026111100001", "c-1002", None),
            CommerceErrorKind::NotFound,
            "someone else's order",
        ),
        (
            refund("2026119999999", "c-1002", None),
            CommerceErrorKind::NotFound,
            "unknown",
        ),
    ];
    for (request, kind, name) in cases {
        let error = demo.create_refund(&tenant, &request).expect_err(name);
        assert_eq!(error.kind(), kind, "{name}: {error}");
    }
    let open = demo
        .create_refund(&tenant, &refund("2026111100007", "c-1001", None))
        .expect("the fixture's open refund");
    assert_eq!(open.id, "RF000001");
}

#[test]
fn demo_is_shareable_across_threads() {
    let demo: Arc<dyn Commerce> = Arc::new(DemoCommerce::new());
    let threads: Vec<_> = (0..4)
        .map(|index| {
            let demo = Arc::clone(&demo);
            std::thread::spawn(move || {
                let tenant = tenant(&format!("t{index}"));
                demo.recent_orders(&tenant, "c-1001", 5).expect("ok").len()
            })
        })
        .collect();
    for thread in threads {
        assert_eq!(thread.join().expect("thread"), 4);
    }
}
