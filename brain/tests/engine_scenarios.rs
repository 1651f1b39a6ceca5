//! The engine end to end on the default pack: the scenarios a merchant's customers bring.

use std::sync::LazyLock;

use crest_brain::engine::{Engine, Outcome, PastTurn, Speaker, Turn};
use crest_brain::kb::Date;
use crest_proto::TenantId;

static ENGINE: LazyLock<Engine> = LazyLock::new(|| {
    let model = crest_brain::engine::train_default_intent_model().expect("default model trains");
    Engine::new(model).expect("engine builds")
});

fn tenant() -> TenantId {
    TenantId::new("acme").expect("valid tenant")
}

fn today() -> Date {
    Date::new(2026, 11, 1).expect("date")
}

/// Runs a whole conversation; returns every outcome.
fn converse(messages: &[&str]) -> Vec<Outcome> {
    let tenant = tenant();
    let mut history: Vec<PastTurn> = Vec::new();
    let mut outcomes = Vec::new();
    for message in messages {
        let outcome = ENGINE.respond(&Turn {
            tenant: &tenant,
            customer: "c-1",
            text: message,
            history: &history,
            vip: false,
            today: today(),
        });
        history.push(PastTurn {
            speaker: Speaker::Customer,
            text: (*message).to_owned(),
            intent: None,
            confidence: None,
        });
        history.push(PastTurn {
            speaker: Speaker::Bot,
            text: outcome.text.clone().unwrap_or_default(),
            intent: Some(outcome.intent.clone()),
            confidence: Some(outcome.confidence),
        });
        outcomes.push(outcome);
    }
    outcomes
}

fn text(outcome: &Outcome) -> &str {
    outcome.text.as_deref().expect("a reply")
}

#[test]
fn asks_for_the_order_number_then_answers_with_the_parcel() {
    let outcomes = converse(&["我的订单什么时候到", "2026111100001"]);
    assert_eq!(outcomes[0].action, "ask_slot", "{outcomes:?}");
    assert!(
        text(&outcomes[0]).contains("订单号"),
        "{}",
        text(&outcomes[0])
    );
    assert_eq!(outcomes[1].action, "call_tool");
    let answer = text(&outcomes[1]);
    assert!(answer.contains("2026111100001"), "{answer}");
    assert!(
        answer.contains("SF1402938475610") || answer.contains("顺丰"),
        "a logistics answer in Chinese: {answer}"
    );
}

#[test]
fn a_knowledge_question_is_answered_with_its_citation() {
    for question in [
        "双十一预售的定金可以退吗？",
        "How long does shipping take?",
        "七天无理由退货怎么办理？",
    ] {
        let outcome = &converse(&[question])[0];
        assert_eq!(outcome.action, "answer_from_kb", "{question}: {outcome:?}");
        assert_eq!(outcome.citations.len(), 1, "{question}");
        let citation = &outcome.citations[0];
        assert!(
            !citation.document_id.is_empty() && citation.end > citation.start,
            "{citation:?}"
        );
    }
}

#[test]
fn an_angry_complaint_is_handed_off_at_once() {
    let outcome = &converse(&["你们这是骗人！我要投诉！"])[0];
    let handoff = outcome.handoff.as_ref().expect("handed off");
    assert!(
        ["anger", "complaint"].contains(&handoff.reason.as_str()),
        "reason {handoff:?}"
    );
    assert!(
        handoff.detail_or_reason().contains("anger")
            || handoff.detail_or_reason().contains("complaint")
    );
    assert_eq!(handoff.group.as_deref(), Some("after_sales"));
    assert!(
        !text(outcome).contains('{'),
        "no unrendered placeholder: {}",
        text(outcome)
    );
    assert!(outcome.emotion.anger > 0.5, "{:?}", outcome.emotion);
}

#[test]
fn english_refund_questions_are_understood() {
    let outcome = &converse(&["where is my refund"])[0];
    assert_eq!(outcome.intent, "refund_status");
    assert_eq!(outcome.action, "ask_slot");
    let answered = converse(&["where is my refund", "order 2026111100007"]);
    assert!(
        text(&answered[1]).contains("2026111100007"),
        "{}",
        text(&answered[1])
    );
}

#[test]
fn asking_for_a_human_hands_off_with_the_customer_request_reason() {
    for message in ["转人工", "I want to talk to a real person"] {
        let outcome = &converse(&[message])[0];
        let handoff = outcome.handoff.as_ref().expect("handed off");
        assert_eq!(handoff.reason, "customer_request", "{message}");
    }
}

#[test]
fn other_languages_get_a_polite_fallback() {
    let outcome = &converse(&["Bonjour, où est ma commande ?"])[0];
    assert_eq!(outcome.action, "fallback_other_language", "{outcome:?}");
}

#[test]
fn small_talk_is_answered_in_the_customer_language() {
    let outcome = &converse(&["你好"])[0];
    assert_eq!(outcome.intent, "greeting");
    assert!(
        text(outcome)
            .chars()
            .any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c))
    );
}

#[test]
fn a_refund_for_an_order_the_merchant_does_not_know_for_this_customer_says_so() {
    // The demo orders belong to the demo customers, not to `c-1`: the merchant refuses the refund
    // as not found, and the customer hears about the order (not "cannot check that right now").
    for (ask, order) in [
        ("I want a refund for my order", "2026111100007"),
        ("我要退款", "2026111100002"),
    ] {
        let outcomes = converse(&[ask, order]);
        let reply = text(&outcomes[1]);
        assert!(reply.contains(order), "{outcomes:?}");
    }
}
