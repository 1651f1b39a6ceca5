//! Priority and aging: the order waiting chats are served in and what their priority is made of;
//! and the group a handoff waits in.

use super::*;

/// How a test chat looks to routing.
#[derive(Debug, Clone, Copy)]
struct Spec {
    vip: bool,
    emotion: Option<(&'static str, f32)>,
    intent: Option<&'static str>,
    anger_escalation: bool,
}

const NORMAL: Spec = Spec {
    vip: false,
    emotion: None,
    intent: None,
    anger_escalation: false,
};

/// (case, chats in arrival order as (conversation, spec, expected priority), expected order).
type PriorityCase = (&'static str, Vec<(u128, Spec, i32)>, Vec<u128>);

fn spec_handoff(n: u128, spec: Spec) -> HandoffInfo {
    let mut info = handoff(n, "general");
    info.summary.intent = spec.intent.map(str::to_owned);
    info.summary.emotion = spec.emotion.map(|(label, score)| Emotion {
        label: label.to_owned(),
        score,
    });
    if spec.anger_escalation {
        info.reason = HandoffReason::Escalation("anger".to_owned());
    }
    info
}

#[test]
fn waiting_chats_are_served_by_priority() {
    // (case, chats in arrival order as (conversation, spec, expected priority), expected order)
    let vip = Spec {
        vip: true,
        ..NORMAL
    };
    let angry = Spec {
        emotion: Some(("anger", 0.9)),
        ..NORMAL
    };
    let mildly_annoyed = Spec {
        emotion: Some(("anger", 0.3)),
        ..NORMAL
    };
    let anxious = Spec {
        emotion: Some(("anxiety", 0.5)),
        ..NORMAL
    };
    let escalated = Spec {
        anger_escalation: true,
        ..NORMAL
    };
    let urgent = Spec {
        intent: Some("payment_issue"),
        ..NORMAL
    };
    let angry_and_urgent = Spec {
        emotion: Some(("frustration", 0.8)),
        intent: Some("complaint"),
        ..NORMAL
    };
    let cases: Vec<PriorityCase> = vec![
        (
            "vip before normal",
            vec![(1, NORMAL, 0), (2, vip, 100)],
            vec![2, 1],
        ),
        (
            "anger bonus",
            vec![(1, NORMAL, 0), (2, angry, 40)],
            vec![2, 1],
        ),
        (
            "anxiety counts as upset",
            vec![(1, NORMAL, 0), (2, anxious, 40)],
            vec![2, 1],
        ),
        (
            "anger escalation without emotion",
            vec![(1, NORMAL, 0), (2, escalated, 40)],
            vec![2, 1],
        ),
        (
            "weak anger gets no bonus (tie: first come first served)",
            vec![(1, NORMAL, 0), (2, mildly_annoyed, 0)],
            vec![1, 2],
        ),
        (
            "urgent intent bonus",
            vec![(1, NORMAL, 0), (2, urgent, 30)],
            vec![2, 1],
        ),
        (
            "bonuses add up; vip still wins",
            vec![
                (1, NORMAL, 0),
                (2, angry_and_urgent, 70),
                (3, vip, 100),
                (4, urgent, 30),
            ],
            vec![3, 2, 4, 1],
        ),
    ];
    for (case, chats, expected) in cases {
        let mut desk = Desk::new();
        // Online (so no night mode) but without capacity: everything waits.
        desk.run(set_agent("ann", Presence::Online, &["general"], 0), T0);
        for (n, spec, priority) in &chats {
            if spec.vip {
                desk.run(
                    DeskCommand::SetTier {
                        customer: customer(*n),
                        tier: Tier::Vip,
                    },
                    T0,
                );
            }
            let outcome = desk.run(DeskCommand::Handoff(spec_handoff(*n, *spec)), T0);
            let queued = queued(&outcome);
            assert_eq!(queued.len(), 1, "{case}");
            assert_eq!(
                queued[0].priority, *priority,
                "{case}: {:?}",
                queued[0].reasons
            );
            assert!(offers(&outcome).is_empty(), "{case}: no capacity yet");
        }
        let order: Vec<ConversationId> = waiting_order(&desk.state, "general", T0, &desk.settings)
            .into_iter()
            .map(|(conversation, _)| conversation)
            .collect();
        let expected: Vec<ConversationId> = expected.iter().map(|&n| conv(n)).collect();
        assert_eq!(order, expected, "{case}: waiting order");
        // Capacity for everybody at once: the offers go out in priority order.
        let outcome = desk.run(set_capacity("ann", 10), T0 + 5 * SECOND);
        let offered: Vec<ConversationId> = offers(&outcome).into_iter().map(|(c, _)| c).collect();
        assert_eq!(offered, expected, "{case}: offer order");
        desk.assert_recovers();
    }
}

#[test]
fn priority_reasons_explain_the_bonuses() {
    let mut desk = Desk::new();
    desk.run(set_agent("ann", Presence::Online, &["general"], 0), T0);
    desk.run(
        DeskCommand::SetTier {
            customer: customer(1),
            tier: Tier::Vip,
        },
        T0,
    );
    let spec = Spec {
        vip: true,
        emotion: Some(("anger", 0.9)),
        intent: Some("payment_issue"),
        anger_escalation: false,
    };
    let outcome = desk.run(DeskCommand::Handoff(spec_handoff(1, spec)), T0);
    let queued = queued(&outcome);
    assert_eq!(queued[0].priority, 170);
    assert_eq!(
        queued[0].reasons,
        [
            "vip +100",
            "anger +40",
            "payment_issue +30",
            "handoff: customer_request"
        ]
    );
    // A tier set back to normal is an event; setting the same tier again is not.
    let outcome = desk.run(
        DeskCommand::SetTier {
            customer: customer(1),
            tier: Tier::Vip,
        },
        T0,
    );
    assert!(outcome.events.is_empty());
    desk.assert_recovers();
}

#[test]
fn aging_lets_long_waiting_chats_overtake_vips() {
    // (case, seconds after the normal chat that the VIP arrives, who is offered first)
    let cases = [
        ("vip arrives 50 s later: within the 100-point bonus", 50, 2),
        ("vip arrives 99 s later: still within the bonus", 99, 2),
        (
            "vip arrives 101 s later: the normal chat waited longer",
            101,
            1,
        ),
        ("vip arrives 300 s later", 300, 1),
    ];
    for (case, vip_delay_s, first) in cases {
        let mut desk = Desk::new();
        desk.run(set_agent("ann", Presence::Online, &["general"], 0), T0);
        desk.run(
            DeskCommand::SetTier {
                customer: customer(2),
                tier: Tier::Vip,
            },
            T0,
        );
        // The default group "general" never overflows, so waiting long changes nothing else.
        desk.run(DeskCommand::Handoff(handoff(1, "general")), T0);
        let vip_at = T0 + vip_delay_s * SECOND;
        desk.run(DeskCommand::Handoff(handoff(2, "general")), vip_at);
        // The order holds whenever capacity frees: both age at the same rate.
        for later_s in [0, 7, 600] {
            let order = waiting_order(
                &desk.state,
                "general",
                vip_at + later_s * SECOND,
                &desk.settings,
            );
            assert_eq!(order[0].0, conv(first), "{case} (+{later_s} s)");
        }
        let outcome = desk.run(set_capacity("ann", 1), vip_at + 10 * SECOND);
        assert_eq!(offers(&outcome), [(conv(first), agent("ann"))], "{case}");
        desk.assert_recovers();
    }
}

#[test]
fn a_request_for_a_human_goes_to_the_group_of_the_latest_routed_intent() {
    let mut desk = Desk::new();
    let mut info = handoff(1, "ignored");
    info.group = None;
    info.summary.intent = Some("human_agent".to_owned());
    info.summary.bot_intents = vec!["refund_request".to_owned(), "human_agent".to_owned()];
    desk.run(DeskCommand::Handoff(info), T0);
    assert_eq!(desk.state.chats[&conv(1)].group, "after_sales");
    let mut info = handoff(2, "ignored");
    info.group = None;
    info.summary.intent = Some("human_agent".to_owned());
    info.summary.bot_intents = vec!["human_agent".to_owned()];
    desk.run(DeskCommand::Handoff(info), T0);
    assert_eq!(desk.state.chats[&conv(2)].group, "general");
    desk.assert_recovers();
}
