//! The dialogue policy: a table covering every action, `next_state`, and multi-turn slot filling.

use crest_brain::entities::extract;
use crest_brain::policy::{
    Action, DialogueState, Escalation, Lang, NluSignals, Policy, PolicyConfig, PolicyErrorKind,
    Slot, ToolCall, decide, next_state,
};

fn nlu(text: &str, intent: &str, confidence: f32) -> NluSignals {
    NluSignals {
        lang: Lang::Zh,
        intent: intent.to_owned(),
        confidence,
        out_of_scope: false,
        entities: extract(text),
        escalation: None,
        kb_available: false,
    }
}

fn escalated(text: &str, intent: &str, reason: &str) -> NluSignals {
    NluSignals {
        escalation: Some(Escalation {
            reason: reason.to_owned(),
            detail: "test".to_owned(),
        }),
        ..nlu(text, intent, 0.9)
    }
}

fn with_kb(signals: NluSignals) -> NluSignals {
    NluSignals {
        kb_available: true,
        ..signals
    }
}

fn out_of_scope(signals: NluSignals) -> NluSignals {
    NluSignals {
        out_of_scope: true,
        ..signals
    }
}

fn in_lang(lang: Lang, signals: NluSignals) -> NluSignals {
    NluSignals { lang, ..signals }
}

fn waiting_for_order(for_intent: &str, asks: u32) -> DialogueState {
    DialogueState {
        pending_slot: Some(Slot::OrderId {
            for_intent: for_intent.to_owned(),
        }),
        slot_asks: asks,
        last_bot_intent: Some(for_intent.to_owned()),
        ..DialogueState::default()
    }
}

fn after(intent: &str) -> DialogueState {
    DialogueState {
        last_bot_intent: Some(intent.to_owned()),
        ..DialogueState::default()
    }
}

fn order_status(id: &str) -> Action {
    Action::CallTool(ToolCall::OrderStatus {
        order_id: id.to_owned(),
    })
}

fn ask_order(for_intent: &str) -> Action {
    Action::AskSlot(Slot::OrderId {
        for_intent: for_intent.to_owned(),
    })
}

fn handoff(reason: &str, group: &str) -> Action {
    Action::Handoff {
        reason: reason.to_owned(),
        group: Some(group.to_owned()),
    }
}

#[test]
fn decide_table() {
    let fresh = DialogueState::default();
    let handed_off = DialogueState {
        handed_off: true,
        ..DialogueState::default()
    };
    let cases: Vec<(&str, DialogueState, NluSignals, Action)> = vec![
        // escalation always wins
        (
            "anger escalation routes by intent",
            fresh.clone(),
            escalated("退款！！！", "refund_request", "anger"),
            handoff("anger", "after_sales"),
        ),
        (
            "escalation wins over a pending slot and an order number",
            waiting_for_order("order_status", 1),
            escalated("2026111100001 垃圾", "complaint", "complaint"),
            handoff("complaint", "after_sales"),
        ),
        (
            "human request routes by the awaited slot's topic",
            waiting_for_order("logistics_tracking", 1),
            escalated("转人工", "human_agent", "customer_request"),
            handoff("customer_request", "after_sales"),
        ),
        (
            "human request routes by the last topic",
            after("stock_availability"),
            escalated("人工客服", "human_agent", "customer_request"),
            handoff("customer_request", "pre_sales"),
        ),
        (
            "human request without a topic goes to general",
            fresh.clone(),
            escalated("人工", "human_agent", "customer_request"),
            handoff("customer_request", "general"),
        ),
        (
            "human request without escalation still hands off",
            fresh.clone(),
            nlu("找人工", "human_agent", 0.8),
            handoff("customer_request", "general"),
        ),
        (
            "already handed off: no second handoff",
            handed_off.clone(),
            escalated("人呢？？", "human_agent", "customer_request"),
            Action::Reply("handoff_pending".to_owned()),
        ),
        // slot filling
        (
            "order status without a number asks for it",
            fresh.clone(),
            nlu("我的订单什么时候到", "order_status", 0.9),
            ask_order("order_status"),
        ),
        (
            "logistics without a number asks for it",
            fresh.clone(),
            nlu("where is my parcel", "logistics_tracking", 0.9),
            ask_order("logistics_tracking"),
        ),
        (
            "refund without a number asks for it",
            fresh.clone(),
            nlu("我要退款", "refund_request", 0.9),
            ask_order("refund_request"),
        ),
        (
            "the awaited number fills the slot whatever the intent",
            waiting_for_order("order_status", 1),
            nlu("2026111100001", "out_of_scope", 0.1),
            order_status("2026111100001"),
        ),
        (
            "the awaited number goes to the slot's tool",
            waiting_for_order("logistics_tracking", 1),
            nlu("订单号是2026111100005", "order_status", 0.7),
            Action::CallTool(ToolCall::Logistics {
                order_id: "2026111100005".to_owned(),
            }),
        ),
        (
            "a number in another language still fills the slot",
            waiting_for_order("refund_request", 1),
            in_lang(Lang::Other, nlu("2026111100002", "out_of_scope", 0.0)),
            Action::CallTool(ToolCall::CreateRefund {
                order_id: "2026111100002".to_owned(),
            }),
        ),
        (
            "no number yet: ask again",
            waiting_for_order("order_status", 1),
            nlu("嗯……我找找", "out_of_scope", 0.2),
            ask_order("order_status"),
        ),
        (
            "no number after two asks: list recent orders",
            waiting_for_order("order_status", 2),
            nlu("不记得了", "out_of_scope", 0.2),
            Action::CallTool(ToolCall::RecentOrders),
        ),
        (
            "a clear new topic abandons the slot",
            waiting_for_order("order_status", 1),
            nlu("你好", "greeting", 0.95),
            Action::SmallTalk("greeting".to_owned()),
        ),
        // tools with their arguments
        (
            "order status with a number",
            fresh.clone(),
            nlu("订单2026111100001到哪了", "order_status", 0.9),
            order_status("2026111100001"),
        ),
        (
            "logistics with a number",
            fresh.clone(),
            nlu("order #2026111100009 tracking?", "logistics_tracking", 0.9),
            Action::CallTool(ToolCall::Logistics {
                order_id: "2026111100009".to_owned(),
            }),
        ),
        (
            "refund with a number",
            fresh.clone(),
            nlu("订单2026111100001退款", "refund_request", 0.9),
            Action::CallTool(ToolCall::CreateRefund {
                order_id: "2026111100001".to_owned(),
            }),
        ),
        (
            "stock with a sku",
            fresh.clone(),
            nlu("SKU1002还有货吗", "stock_availability", 0.9),
            Action::CallTool(ToolCall::Stock {
                sku: Some("SKU1002".to_owned()),
            }),
        ),
        (
            "stock without a sku",
            fresh.clone(),
            nlu("保温杯还有货吗", "stock_availability", 0.9),
            Action::CallTool(ToolCall::Stock { sku: None }),
        ),
        (
            "recent orders",
            fresh.clone(),
            nlu("看看我的订单", "recent_orders", 0.9),
            Action::CallTool(ToolCall::RecentOrders),
        ),
        (
            "a bare order number with an unclear intent means its status",
            fresh.clone(),
            nlu("2026111100003", "out_of_scope", 0.1),
            order_status("2026111100003"),
        ),
        // knowledge base, templates, small talk
        (
            "knowledge-first intent with a kb answer",
            fresh.clone(),
            with_kb(nlu("怎么付款", "payment_methods", 0.9)),
            Action::AnswerFromKb,
        ),
        (
            "knowledge-first intent without a kb answer",
            fresh.clone(),
            nlu("怎么付款", "payment_methods", 0.9),
            Action::Reply("payment_methods".to_owned()),
        ),
        (
            "template intent ignores the kb",
            fresh.clone(),
            with_kb(nlu("你们太差了", "complaint", 0.9)),
            Action::Reply("complaint".to_owned()),
        ),
        (
            "other intents reply with their template",
            fresh.clone(),
            nlu("开发票", "invoice", 0.8),
            Action::Reply("invoice".to_owned()),
        ),
        (
            "out of scope with a kb answer",
            fresh.clone(),
            out_of_scope(with_kb(nlu("你们的保修期多久", "product_info", 0.9))),
            Action::AnswerFromKb,
        ),
        (
            "low confidence with a kb answer",
            fresh.clone(),
            with_kb(nlu("保修怎么算", "product_info", 0.3)),
            Action::AnswerFromKb,
        ),
        (
            "greeting",
            fresh.clone(),
            nlu("你好", "greeting", 0.95),
            Action::SmallTalk("greeting".to_owned()),
        ),
        (
            "thanks",
            after("order_status"),
            in_lang(Lang::En, nlu("thanks!", "thanks", 0.95)),
            Action::SmallTalk("thanks".to_owned()),
        ),
        (
            "goodbye",
            fresh.clone(),
            nlu("再见", "goodbye", 0.95),
            Action::SmallTalk("goodbye".to_owned()),
        ),
        // not understood
        (
            "low confidence without kb: clarify",
            fresh.clone(),
            nlu("那个东西呢", "product_info", 0.3),
            Action::Clarify,
        ),
        (
            "out of scope without kb: clarify",
            fresh.clone(),
            out_of_scope(nlu("今天天气怎么样", "greeting", 0.9)),
            Action::Clarify,
        ),
        (
            "unsupported language",
            fresh.clone(),
            in_lang(Lang::Other, nlu("注文はどこですか", "order_status", 0.6)),
            Action::FallbackOtherLanguage,
        ),
    ];
    for (name, state, signals, expected) in cases {
        assert_eq!(decide(&state, &signals), expected, "{name}");
    }
}

#[test]
fn next_state_table() {
    let fresh = DialogueState::default();
    let asking = nlu("我的订单什么时候到", "order_status", 0.9);
    let cases: Vec<(&str, DialogueState, Action, NluSignals, DialogueState)> = vec![
        (
            "asking opens the slot",
            fresh.clone(),
            ask_order("order_status"),
            asking.clone(),
            waiting_for_order("order_status", 1),
        ),
        (
            "asking again counts",
            waiting_for_order("order_status", 1),
            ask_order("order_status"),
            nlu("嗯", "out_of_scope", 0.1),
            waiting_for_order("order_status", 2),
        ),
        (
            "a filled slot closes and keeps its topic",
            waiting_for_order("logistics_tracking", 1),
            order_status("2026111100001"),
            nlu("2026111100001", "out_of_scope", 0.1),
            after("logistics_tracking"),
        ),
        (
            "a tool call sets the topic",
            fresh.clone(),
            Action::CallTool(ToolCall::Stock { sku: None }),
            nlu("有货吗", "stock_availability", 0.9),
            after("stock_availability"),
        ),
        (
            "clarify counts a low-confidence turn",
            DialogueState {
                low_confidence_streak: 1,
                ..after("stock_availability")
            },
            Action::Clarify,
            nlu("嗯？", "out_of_scope", 0.1),
            DialogueState {
                low_confidence_streak: 2,
                ..after("stock_availability")
            },
        ),
        (
            "understanding resets the streak",
            DialogueState {
                low_confidence_streak: 1,
                ..DialogueState::default()
            },
            Action::SmallTalk("greeting".to_owned()),
            nlu("你好", "greeting", 0.9),
            after("greeting"),
        ),
        (
            "a kb answer to an unclear question keeps the topic",
            after("order_status"),
            Action::AnswerFromKb,
            out_of_scope(with_kb(nlu("保修多久", "product_info", 0.9))),
            after("order_status"),
        ),
        (
            "a kb answer to a clear question sets the topic",
            fresh.clone(),
            Action::AnswerFromKb,
            with_kb(nlu("怎么付款", "payment_methods", 0.9)),
            after("payment_methods"),
        ),
        (
            "a handoff sticks and keeps the topic",
            waiting_for_order("refund_request", 1),
            handoff("anger", "after_sales"),
            escalated("垃圾", "complaint", "anger"),
            DialogueState {
                handed_off: true,
                ..after("refund_request")
            },
        ),
        (
            "the language fallback changes nothing but the slot",
            after("greeting"),
            Action::FallbackOtherLanguage,
            in_lang(Lang::Other, nlu("hola", "greeting", 0.2)),
            after("greeting"),
        ),
    ];
    for (name, state, action, signals, expected) in cases {
        assert_eq!(next_state(&state, &action, &signals), expected, "{name}");
    }
}

#[test]
fn conversation_fills_the_order_slot_over_turns() {
    let policy = Policy::default();
    let turns = [
        (
            nlu("我的订单什么时候到", "order_status", 0.92),
            ask_order("order_status"),
        ),
        (
            nlu("等一下我找找", "out_of_scope", 0.2),
            ask_order("order_status"),
        ),
        (
            nlu("找到了：２０２６１１１１００００１", "out_of_scope", 0.3),
            order_status("2026111100001"),
        ),
        (
            nlu("谢谢", "thanks", 0.97),
            Action::SmallTalk("thanks".to_owned()),
        ),
        (nlu("那个怎么说", "out_of_scope", 0.2), Action::Clarify),
    ];
    let mut state = DialogueState::default();
    for (index, (signals, expected)) in turns.into_iter().enumerate() {
        let action = policy.decide(&state, &signals);
        assert_eq!(action, expected, "turn {index}");
        state = policy.next_state(&state, &action, &signals);
    }
    assert_eq!(state.low_confidence_streak, 1);
    assert_eq!(state.pending_slot, None);
    assert_eq!(state.last_bot_intent.as_deref(), Some("thanks"));
}

#[test]
fn configuration_is_data() {
    assert_eq!(
        PolicyConfig::from_json("{}").expect("empty config"),
        PolicyConfig::default()
    );
    let config = PolicyConfig::from_json(
        r#"{
            "order_tools": {"where_is_my_stuff": "logistics"},
            "routing": {"groups": {"where_is_my_stuff": "logistics_team"}, "default_group": "frontline"},
            "max_slot_asks": 1
        }"#,
    )
    .expect("config");
    let policy = Policy::new(config);
    let fresh = DialogueState::default();
    assert_eq!(
        policy.decide(
            &fresh,
            &nlu("包裹呢 订单2026111100001", "where_is_my_stuff", 0.9)
        ),
        Action::CallTool(ToolCall::Logistics {
            order_id: "2026111100001".to_owned()
        })
    );
    assert_eq!(
        policy.decide(&fresh, &escalated("气死了", "where_is_my_stuff", "anger")),
        handoff("anger", "logistics_team")
    );
    assert_eq!(
        policy.decide(&fresh, &escalated("气死了", "chitchat", "anger")),
        handoff("anger", "frontline")
    );
    assert_eq!(
        policy.decide(
            &waiting_for_order("where_is_my_stuff", 1),
            &nlu("不知道", "out_of_scope", 0.1)
        ),
        Action::CallTool(ToolCall::RecentOrders)
    );
    for json in [
        "42",
        r#"{"clarify_below": 1.5}"#,
        r#"{"order_tools": {"x": "teleport"}}"#,
    ] {
        let error = PolicyConfig::from_json(json).expect_err(json);
        assert_eq!(error.kind(), PolicyErrorKind::InvalidConfig, "{json}");
    }
}

#[test]
fn actions_and_state_serialize() {
    let actions = [
        Action::AnswerFromKb,
        order_status("2026111100001"),
        Action::CallTool(ToolCall::RecentOrders),
        Action::CallTool(ToolCall::Stock { sku: None }),
        ask_order("refund_request"),
        handoff("vip", "after_sales"),
        Action::SmallTalk("greeting".to_owned()),
        Action::Reply("invoice".to_owned()),
        Action::Clarify,
        Action::FallbackOtherLanguage,
    ];
    for action in actions {
        let json = serde_json::to_string(&action).expect("serializes");
        let back: Action = serde_json::from_str(&json).expect("deserializes");
        assert_eq!(back, action, "{json}");
    }
    let state = waiting_for_order("logistics_tracking", 2);
    let json = serde_json::to_string(&state).expect("serializes");
    assert_eq!(
        serde_json::from_str::<DialogueState>(&json).expect("deserializes"),
        state
    );
    assert_eq!(Lang::from_code("zh-CN"), Lang::Zh);
    assert_eq!(Lang::from_code("EN_us"), Lang::En);
    assert_eq!(Lang::from_code("ja"), Lang::Other);
}
