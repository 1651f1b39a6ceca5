//! The demo shop's fixed data: ten Double-11 orders, their parcels with bilingual tracking
//! events, eight products and two earlier refunds. Every tenant of [`super::DemoCommerce`]
//! starts from a copy of these.

use super::types::{
    Order, OrderItem, OrderStatus, Refund, RefundStatus, Shipment, ShipmentStatus, Stock,
    TrackingEvent,
};

/// The demo order ids, `2026111100001` to `2026111100010`.
pub const DEMO_ORDER_IDS: [&str; 10] = [
    "2026111100001",
    "2026111100002",
    "2026111100003",
    "2026111100004",
    "2026111100005",
    "2026111100006",
    "2026111100007",
    "2026111100008",
    "2026111100009",
    "2026111100010",
];

/// The demo customers: `web-visitor` (the default customer of the web page), `c-1001`, `c-1002`.
pub const DEMO_CUSTOMERS: [&str; 3] = ["web-visitor", "c-1001", "c-1002"];

/// The demo SKUs, `SKU1001` to `SKU1008`.
pub const DEMO_SKUS: [&str; 8] = [
    "SKU1001", "SKU1002", "SKU1003", "SKU1004", "SKU1005", "SKU1006", "SKU1007", "SKU1008",
];

/// Refund ids the fixtures already use; new demo refunds count on from here.
pub(crate) const FIXTURE_REFUNDS: u64 = 2;

struct Product {
    sku: &'static str,
    name: &'static str,
    price_cents: u64,
    available: u32,
    restock_date: Option<&'static str>,
}

const PRODUCTS: [Product; 8] = [
    Product {
        sku: "SKU1001",
        name: "无线降噪耳机 / Wireless Noise-Cancelling Earbuds",
        price_cents: 59_900,
        available: 120,
        restock_date: None,
    },
    Product {
        sku: "SKU1002",
        name: "保温杯 500ml / Insulated Bottle 500 ml",
        price_cents: 12_900,
        available: 0,
        restock_date: Some("2026-11-20"),
    },
    Product {
        sku: "SKU1003",
        name: "轻薄羽绒服（M码）/ Light Down Jacket (M)",
        price_cents: 89_900,
        available: 35,
        restock_date: None,
    },
    Product {
        sku: "SKU1004",
        name: "扫地机器人 / Robot Vacuum",
        price_cents: 199_900,
        available: 8,
        restock_date: None,
    },
    Product {
        sku: "SKU1005",
        name: "补水面膜礼盒 / Hydrating Face Mask Gift Box",
        price_cents: 19_900,
        available: 500,
        restock_date: None,
    },
    Product {
        sku: "SKU1006",
        name: "机械键盘 / Mechanical Keyboard",
        price_cents: 45_900,
        available: 0,
        restock_date: None,
    },
    Product {
        sku: "SKU1007",
        name: "跑步鞋（42码）/ Running Shoes (EU 42)",
        price_cents: 69_900,
        available: 60,
        restock_date: None,
    },
    Product {
        sku: "SKU1008",
        name: "每日坚果礼包 / Daily Nuts Gift Pack",
        price_cents: 8_800,
        available: 1000,
        restock_date: None,
    },
];

const ADDRESS_SHANGHAI: &str = "上海市浦东新区世纪大道100号 / 100 Century Ave, Pudong, Shanghai";
const ADDRESS_BEIJING: &str = "北京市朝阳区建国路88号 / 88 Jianguo Rd, Chaoyang, Beijing";
const ADDRESS_SHENZHEN: &str = "深圳市南山区科技园路1号 / 1 Science Park Rd, Nanshan, Shenzhen";
const SF: &str = "顺丰速运 SF Express";
const ZTO: &str = "中通快递 ZTO Express";
const JD: &str = "京东物流 JD Logistics";

/// The product's stock line.
pub(crate) fn stock() -> Vec<Stock> {
    PRODUCTS
        .iter()
        .map(|product| Stock {
            sku: product.sku.to_owned(),
            name: product.name.to_owned(),
            available: product.available,
            restock_date: product.restock_date.map(str::to_owned),
        })
        .collect()
}

fn item(sku: &str, quantity: u32) -> OrderItem {
    let product = PRODUCTS.iter().find(|product| product.sku == sku);
    OrderItem {
        sku: sku.to_owned(),
        name: product.map_or_else(|| sku.to_owned(), |product| product.name.to_owned()),
        quantity,
        price_cents: product.map_or(0, |product| product.price_cents),
    }
}

fn order(
    id: &str,
    customer: &str,
    status: OrderStatus,
    items: Vec<OrderItem>,
    created_at: &str,
    address: &str,
) -> Order {
    let total_cents = items
        .iter()
        .map(|item| item.price_cents * u64::from(item.quantity))
        .sum();
    Order {
        id: id.to_owned(),
        customer: customer.to_owned(),
        status,
        items,
        total_cents,
        currency: "CNY".to_owned(),
        created_at: created_at.to_owned(),
        address: address.to_owned(),
    }
}

/// The ten demo orders.
pub(crate) fn orders() -> Vec<Order> {
    use OrderStatus::{Cancelled, Delivered, Paid, PendingPayment, Refunded, Refunding, Shipped};
    vec![
        order(
            "2026111100001",
            "web-visitor",
            Shipped,
            vec![item("SKU1001", 1)],
            "2026-11-11T00:03:21+08:00",
            ADDRESS_SHANGHAI,
        ),
        order(
            "2026111100002",
            "web-visitor",
            Delivered,
            vec![item("SKU1005", 2)],
            "2026-11-11T00:15:02+08:00",
            ADDRESS_SHANGHAI,
        ),
        order(
            "2026111100003",
            "web-visitor",
            Paid,
            vec![item("SKU1003", 1)],
            "2026-11-11T09:41:10+08:00",
            ADDRESS_SHANGHAI,
        ),
        order(
            "2026111100004",
            "c-1001",
            PendingPayment,
            vec![item("SKU1004", 1)],
            "2026-11-11T20:30:00+08:00",
            ADDRESS_BEIJING,
        ),
        order(
            "2026111100005",
            "c-1001",
            Shipped,
            vec![item("SKU1007", 1), item("SKU1008", 2)],
            "2026-11-11T00:00:45+08:00",
            ADDRESS_BEIJING,
        ),
        order(
            "2026111100006",
            "c-1001",
            Cancelled,
            vec![item("SKU1006", 1)],
            "2026-11-11T01:12:33+08:00",
            ADDRESS_BEIJING,
        ),
        order(
            "2026111100007",
            "c-1001",
            Refunding,
            vec![item("SKU1002", 1)],
            "2026-11-11T02:05:19+08:00",
            ADDRESS_BEIJING,
        ),
        order(
            "2026111100008",
            "c-1002",
            Refunded,
            vec![item("SKU1005", 1)],
            "2026-11-11T03:33:03+08:00",
            ADDRESS_SHENZHEN,
        ),
        order(
            "2026111100009",
            "c-1002",
            Shipped,
            vec![item("SKU1008", 5)],
            "2026-11-11T00:08:08+08:00",
            ADDRESS_SHENZHEN,
        ),
        order(
            "2026111100010",
            "c-1002",
            Delivered,
            vec![item("SKU1001", 1), item("SKU1005", 1)],
            "2026-11-11T00:01:11+08:00",
            ADDRESS_SHENZHEN,
        ),
    ]
}

fn event(at: &str, location: &str, description: &str) -> TrackingEvent {
    TrackingEvent {
        at: at.to_owned(),
        location: location.to_owned(),
        description: description.to_owned(),
    }
}

fn shipment(
    order_id: &str,
    carrier: &str,
    tracking_no: &str,
    status: ShipmentStatus,
    events: Vec<TrackingEvent>,
    eta: Option<&str>,
) -> Shipment {
    Shipment {
        order_id: order_id.to_owned(),
        carrier: carrier.to_owned(),
        tracking_no: tracking_no.to_owned(),
        status,
        events,
        eta: eta.map(str::to_owned),
    }
}

/// The parcels of the shipped, delivered and refunding demo orders.
pub(crate) fn shipments() -> Vec<Shipment> {
    use ShipmentStatus::{Delivered, InTransit, OutForDelivery};
    vec![
        shipment(
            "2026111100001",
            SF,
            "SF1402938475610",
            InTransit,
            vec![
                event(
                    "2026-11-11T18:20:00+08:00",
                    "深圳 Shenzhen",
                    "顺丰速运已收取快件 / Picked up by SF Express",
                ),
                event(
                    "2026-11-11T23:45:00+08:00",
                    "深圳转运中心 Shenzhen hub",
                    "快件已发出，发往上海 / Departed for Shanghai",
                ),
                event(
                    "2026-11-12T14:10:00+08:00",
                    "上海转运中心 Shanghai hub",
                    "快件到达上海转运中心 / Arrived at Shanghai hub",
                ),
            ],
            Some("2026-11-13"),
        ),
        shipment(
            "2026111100002",
            ZTO,
            "75312345678901",
            Delivered,
            vec![
                event(
                    "2026-11-11T16:02:00+08:00",
                    "杭州 Hangzhou",
                    "中通快递已揽收 / Picked up by ZTO Express",
                ),
                event(
                    "2026-11-12T21:30:00+08:00",
                    "上海 Shanghai",
                    "快件到达上海浦东网点 / Arrived at Pudong station",
                ),
                event(
                    "2026-11-13T10:05:00+08:00",
                    "上海 Shanghai",
                    "快件已签收，签收人：本人 / Delivered, signed by the recipient",
                ),
            ],
            None,
        ),
        shipment(
            "2026111100005",
            JD,
            "JDV012345678901",
            InTransit,
            vec![
                event(
                    "2026-11-11T08:00:00+08:00",
                    "北京 Beijing",
                    "京东物流已揽收 / Picked up by JD Logistics",
                ),
                event(
                    "2026-11-11T12:30:00+08:00",
                    "北京亚洲一号 Beijing Asia No.1 warehouse",
                    "商品已出库，正在分拣 / Left the warehouse, sorting",
                ),
            ],
            Some("2026-11-12"),
        ),
        shipment(
            "2026111100007",
            ZTO,
            "75398765432109",
            Delivered,
            vec![
                event(
                    "2026-11-11T10:00:00+08:00",
                    "杭州 Hangzhou",
                    "中通快递已揽收 / Picked up by ZTO Express",
                ),
                event(
                    "2026-11-12T16:40:00+08:00",
                    "北京 Beijing",
                    "快件已签收 / Delivered",
                ),
            ],
            None,
        ),
        shipment(
            "2026111100008",
            SF,
            "SF1402938475611",
            Delivered,
            vec![
                event(
                    "2026-11-11T11:00:00+08:00",
                    "广州 Guangzhou",
                    "顺丰速运已收取快件 / Picked up by SF Express",
                ),
                event(
                    "2026-11-12T09:15:00+08:00",
                    "深圳 Shenzhen",
                    "快件已签收 / Delivered",
                ),
            ],
            None,
        ),
        shipment(
            "2026111100009",
            SF,
            "SF1402938475612",
            OutForDelivery,
            vec![
                event(
                    "2026-11-11T15:30:00+08:00",
                    "东莞 Dongguan",
                    "顺丰速运已收取快件 / Picked up by SF Express",
                ),
                event(
                    "2026-11-12T06:50:00+08:00",
                    "深圳南山 Shenzhen Nanshan",
                    "快件到达南山营业点 / Arrived at Nanshan station",
                ),
                event(
                    "2026-11-12T08:30:00+08:00",
                    "深圳南山 Shenzhen Nanshan",
                    "快递员正在派送，电话 95338 / Out for delivery, courier hotline 95338",
                ),
            ],
            Some("2026-11-12"),
        ),
        shipment(
            "2026111100010",
            JD,
            "JDV012345678902",
            Delivered,
            vec![
                event(
                    "2026-11-11T02:00:00+08:00",
                    "广州 Guangzhou",
                    "京东物流已揽收 / Picked up by JD Logistics",
                ),
                event(
                    "2026-11-11T19:45:00+08:00",
                    "深圳 Shenzhen",
                    "快件已送达，放入快递柜 / Delivered to a parcel locker",
                ),
            ],
            None,
        ),
    ]
}

/// The refunds the fixtures start with: one in progress (order 7), one done (order 8).
pub(crate) fn refunds() -> Vec<Refund> {
    vec![
        Refund {
            id: "RF000001".to_owned(),
            order_id: "2026111100007".to_owned(),
            status: RefundStatus::Requested,
            amount_cents: 12_900,
        },
        Refund {
            id: "RF000002".to_owned(),
            order_id: "2026111100008".to_owned(),
            status: RefundStatus::Completed,
            amount_cents: 19_900,
        },
    ]
}
