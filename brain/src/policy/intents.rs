//! The intent vocabulary the policy knows by default. The classifier's labels and the content
//! pack's reply templates use the same names; [`super::PolicyConfig`] can map other names.

/// Hello, 你好, 在吗.
pub const GREETING: &str = "greeting";
/// Thank you, 谢谢.
pub const THANKS: &str = "thanks";
/// Bye, 再见.
pub const GOODBYE: &str = "goodbye";
/// The customer asks for a human (转人工).
pub const HUMAN_AGENT: &str = "human_agent";
/// Where is my order, what is its state.
pub const ORDER_STATUS: &str = "order_status";
/// Where is my parcel, tracking.
pub const LOGISTICS: &str = "logistics_tracking";
/// I want my money back.
pub const REFUND: &str = "refund_request";
/// The starter brain's name for [`REFUND`].
pub const REFUND_REQUEST: &str = "refund_request";
/// Asking where the money of an existing refund is (answered from the order).
pub const REFUND_STATUS: &str = "refund_status";
/// I want to return an item.
pub const RETURN: &str = "return_request";
/// I want to exchange an item (size, colour).
pub const EXCHANGE: &str = "exchange";
/// A complaint.
pub const COMPLAINT: &str = "complaint";
/// Questions about a product.
pub const PRODUCT_INFO: &str = "product_info";
/// Is it in stock, when is it restocked.
pub const STOCK: &str = "stock_availability";
/// Coupons and promotions.
pub const COUPON: &str = "coupon_promo";
/// How can I pay.
pub const PAYMENT_METHODS: &str = "payment_methods";
/// Show my orders.
pub const RECENT_ORDERS: &str = "recent_orders";
/// The reply while a handoff is pending (the template says an agent is coming).
pub const HANDOFF_PENDING: &str = "handoff_pending";

/// Shipping methods, costs and times.
pub const DELIVERY_OPTIONS: &str = "delivery_options";

/// Invoices (发票).
pub const INVOICE: &str = "invoice";
