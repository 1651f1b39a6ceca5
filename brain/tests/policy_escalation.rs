//! Escalation rules: the documented default, JSON loading, and a table of turns.

use crest_brain::emotion::{EmotionScore, EmotionTrajectory};
use crest_brain::policy::{
    DEFAULT_ESCALATION_RULES_JSON, EscalationRules, PolicyErrorKind, Thresholds, TurnSignals,
};

#[test]
fn documented_default_json_is_the_default() {
    let parsed = EscalationRules::from_json(DEFAULT_ESCALATION_RULES_JSON).expect("default json");
    assert_eq!(parsed, EscalationRules::default());
    let empty = EscalationRules::from_json("{}").expect("empty json");
    assert_eq!(empty, EscalationRules::default());
}

#[test]
fn partial_json_overrides_and_bad_json_is_rejected() {
    let rules = EscalationRules::from_json(r#"{"standard": {"anger": 0.9}}"#).expect("partial");
    assert!((rules.standard.anger - 0.9).abs() < 1e-6);
    assert_eq!(
        rules.standard.repeated_negative_turns,
        Thresholds::standard().repeated_negative_turns
    );
    let invalid = [
        "not json",
        r#"{"standard": {"anger": -0.1}}"#,
        r#"{"vip": {"low_confidence": -1}}"#,
        r#"{"unknown_rule": true}"#,
        r#"{"standard": {"angr": 0.5}}"#,
        r#"{"intent_min_confidence": -0.5}"#,
    ];
    for json in invalid {
        let error = EscalationRules::from_json(json).expect_err(json);
        assert_eq!(error.kind(), PolicyErrorKind::InvalidConfig, "{json}");
    }
}

/// One row of the table.
struct Case {
    name: &'static str,
    intent: &'static str,
    confidence: f32,
    out_of_scope: bool,
    /// (anger, anxiety, urgency, frustration) of this turn.
    emotion: (f32, f32, f32, f32),
    /// Negativity of earlier turns, oldest first (this turn is pushed after them).
    history: &'static [f32],
    low_confidence_streak: u32,
    vip: bool,
    expected: Option<&'static str>,
}

const CALM: (f32, f32, f32, f32) = (0.0, 0.0, 0.0, 0.0);

fn case(name: &'static str, expected: Option<&'static str>) -> Case {
    Case {
        name,
        intent: "order_status",
        confidence: 0.9,
        out_of_scope: false,
        emotion: CALM,
        history: &[],
        low_confidence_streak: 0,
        vip: false,
        expected,
    }
}

fn run(rules: &EscalationRules, case: &Case) -> Option<(String, String)> {
    let (anger, anxiety, urgency, frustration) = case.emotion;
    let emotion = EmotionScore::from_strengths(anger, anxiety, urgency, frustration, 0.3);
    let mut trajectory = EmotionTrajectory::default();
    for negativity in case.history {
        trajectory.push(EmotionScore::from_strengths(
            0.0,
            *negativity,
            0.0,
            0.0,
            0.3,
        ));
    }
    trajectory.push(emotion);
    rules
        .evaluate(&TurnSignals {
            intent: case.intent,
            confidence: case.confidence,
            out_of_scope: case.out_of_scope,
            emotion,
            trajectory: &trajectory,
            low_confidence_streak: case.low_confidence_streak,
            vip: case.vip,
        })
        .map(|escalation| (escalation.reason, escalation.detail))
}

#[test]
fn rules_table() {
    let cases = [
        case("calm order question", None),
        Case {
            intent: "human_agent",
            ..case("asks for a human", Some("customer_request"))
        },
        Case {
            intent: "human_agent",
            confidence: 0.3,
            ..case("unsure human request is not enough", None)
        },
        Case {
            intent: "complaint",
            emotion: (0.45, 0.0, 0.0, 0.0),
            ..case("angry complaint", Some("complaint"))
        },
        Case {
            intent: "complaint",
            emotion: (0.2, 0.0, 0.0, 0.0),
            ..case("calm complaint stays with the bot", None)
        },
        Case {
            emotion: (0.75, 0.0, 0.0, 0.0),
            ..case("anger over threshold", Some("anger"))
        },
        Case {
            emotion: (0.65, 0.0, 0.0, 0.0),
            ..case("anger under threshold", None)
        },
        Case {
            emotion: (0.0, 0.0, 0.0, 0.9),
            ..case("strong frustration", Some("frustration"))
        },
        Case {
            emotion: (0.0, 0.5, 0.0, 0.0),
            history: &[0.5, 0.5],
            ..case("three negative turns", Some("repeated_negative"))
        },
        Case {
            emotion: (0.0, 0.5, 0.0, 0.0),
            history: &[0.5, 0.0, 0.6],
            ..case("negative turns interrupted, not rising", None)
        },
        Case {
            emotion: (0.0, 0.65, 0.0, 0.0),
            history: &[0.0, 0.42],
            ..case("two negative turns, rising", Some("repeated_negative"))
        },
        Case {
            emotion: (0.0, 0.45, 0.0, 0.0),
            history: &[0.6],
            ..case("two negative turns, falling", None)
        },
        Case {
            confidence: 0.3,
            low_confidence_streak: 1,
            ..case("second low-confidence turn", Some("low_confidence"))
        },
        Case {
            confidence: 0.3,
            ..case("first low-confidence turn", None)
        },
        Case {
            confidence: 0.9,
            low_confidence_streak: 1,
            ..case("understood after a low-confidence turn", None)
        },
        Case {
            out_of_scope: true,
            low_confidence_streak: 1,
            ..case("out of scope does not count by default", None)
        },
        Case {
            vip: true,
            emotion: (0.55, 0.0, 0.0, 0.0),
            ..case("vip anger under the standard threshold", Some("vip"))
        },
        Case {
            vip: true,
            emotion: (0.75, 0.0, 0.0, 0.0),
            ..case(
                "vip anger over the standard threshold keeps its reason",
                Some("anger"),
            )
        },
        Case {
            vip: true,
            intent: "complaint",
            emotion: (0.25, 0.0, 0.0, 0.0),
            ..case("vip mildly angry complaint", Some("vip"))
        },
        Case {
            vip: true,
            emotion: (0.0, 0.5, 0.0, 0.0),
            history: &[0.45],
            ..case("vip two negative turns", Some("vip"))
        },
        Case {
            vip: true,
            ..case("calm vip", None)
        },
        Case {
            intent: "human_agent",
            emotion: (0.9, 0.0, 0.0, 0.0),
            ..case("a human request wins over anger", Some("customer_request"))
        },
    ];
    let rules = EscalationRules::default();
    for case in &cases {
        let reason = run(&rules, case).map(|(reason, _)| reason);
        assert_eq!(reason.as_deref(), case.expected, "{}", case.name);
    }
}

#[test]
fn details_say_what_fired() {
    let rules = EscalationRules::default();
    let anger = Case {
        emotion: (0.8, 0.0, 0.0, 0.0),
        ..case("anger", Some("anger"))
    };
    let (_, detail) = run(&rules, &anger).expect("fires");
    assert_eq!(detail, "anger 0.80 >= 0.70");
    let complaint = Case {
        intent: "complaint",
        emotion: (0.5, 0.0, 0.0, 0.0),
        ..case("complaint", Some("complaint"))
    };
    let (_, detail) = run(&rules, &complaint).expect("fires");
    assert!(detail.starts_with("anger/complaint"), "{detail}");
    let vip = Case {
        vip: true,
        emotion: (0.6, 0.0, 0.0, 0.0),
        ..case("vip", Some("vip"))
    };
    let (_, detail) = run(&rules, &vip).expect("fires");
    assert!(detail.starts_with("anger (vip thresholds)"), "{detail}");
}

#[test]
fn rules_can_be_switched_off_and_tuned() {
    let rules = EscalationRules::from_json(
        r#"{
            "out_of_scope_is_low_confidence": true,
            "standard": {"anger": 1.5, "repeated_negative_turns": 0, "rising_negative_turns": 0}
        }"#,
    )
    .expect("rules");
    let furious = Case {
        emotion: (1.0, 0.0, 0.0, 0.0),
        ..case("anger off", None)
    };
    assert_eq!(run(&rules, &furious), None);
    let repeated = Case {
        emotion: (0.0, 0.6, 0.0, 0.0),
        history: &[0.6, 0.6, 0.6],
        ..case("repetition off", None)
    };
    assert_eq!(run(&rules, &repeated), None);
    let out_of_scope = Case {
        out_of_scope: true,
        low_confidence_streak: 1,
        ..case("out of scope counts now", Some("low_confidence"))
    };
    assert_eq!(
        run(&rules, &out_of_scope)
            .map(|(reason, _)| reason)
            .as_deref(),
        Some("low_confidence")
    );
}
