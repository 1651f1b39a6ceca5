//! Emotion scoring over small inline lexicons, and conversation trajectories.

use crest_brain::emotion::{
    EmotionErrorKind, EmotionLabel, EmotionScore, EmotionScorer, EmotionTrajectory,
    LanguageLexicons, Lexicon, Lexicons, ScorerConfig,
};

fn lexicon(text: &str) -> Lexicon {
    Lexicon::parse(text).expect("test lexicon parses")
}

fn test_lexicons() -> Lexicons {
    Lexicons {
        zh: LanguageLexicons {
            anger: lexicon("生气\t0.7\n愤怒\t0.9\n垃圾\t0.8\n骗子\t0.9\n不满\t0.6\n"),
            anxiety: lexicon("担心\t0.6\n着急\t0.5\n怎么办\t0.4\n"),
            urgency: lexicon("急\t0.6\n马上\t0.5\n赶紧\t0.6\n着急\t0.6\n"),
            frustration: lexicon("还没\t0.5\n到底\t0.5\n又\t0.3\n"),
            negators: lexicon("不\n没\n没有\n别\n"),
            intensifiers: lexicon("非常\t1.5\n太\t1.4\n特别\n有点\t0.6\n"),
        },
        en: LanguageLexicons {
            anger: lexicon("angry\t0.7\nfurious\t0.9\nscam\t0.9\nrip off\t0.8\n"),
            anxiety: lexicon("worried\t0.6\nanxious\t0.6\n"),
            urgency: lexicon("urgent\t0.7\nasap\t0.7\nhurry\t0.5\n"),
            frustration: lexicon("again\t0.3\nstill not\t0.6\n"),
            negators: lexicon("not\nnever\nno\n"),
            intensifiers: lexicon("very\t1.5\nso\t1.4\nslightly\t0.6\n"),
        },
    }
}

fn scorer() -> EmotionScorer {
    EmotionScorer::new(&test_lexicons()).expect("scorer builds")
}

#[test]
fn labels_table() {
    let scorer = scorer();
    let cases = [
        ("你好，请问发货了吗", EmotionLabel::Neutral),
        ("我很生气", EmotionLabel::Anger),
        ("我不生气", EmotionLabel::Neutral),
        ("我没有生气", EmotionLabel::Neutral),
        ("别着急", EmotionLabel::Neutral),
        ("不，我生气了", EmotionLabel::Anger),
        ("对你们很不满", EmotionLabel::Anger),
        ("担心被骗怎么办", EmotionLabel::Anxiety),
        ("急急急，马上要用", EmotionLabel::Urgency),
        ("怎么还没到？？", EmotionLabel::Frustration),
        ("I am angry", EmotionLabel::Anger),
        ("I am not angry", EmotionLabel::Neutral),
        ("I'm NOT angry", EmotionLabel::Neutral),
        ("I don't think I'm worried", EmotionLabel::Neutral),
        ("you are a RIP  OFF", EmotionLabel::Anger),
        ("the scampi was fine", EmotionLabel::Neutral),
        ("I'm worried about my parcel", EmotionLabel::Anxiety),
        ("need it asap", EmotionLabel::Urgency),
        ("still not here", EmotionLabel::Frustration),
        ("WHERE IS MY ORDER", EmotionLabel::Anger),
        ("I ordered from JD yesterday", EmotionLabel::Neutral),
    ];
    for (text, expected) in cases {
        let score = scorer.score(text);
        assert_eq!(score.label, expected, "{text:?}: {score:?}");
    }
}

#[test]
fn intensifiers_raise_and_softeners_lower() {
    let scorer = scorer();
    let plain = scorer.score("我生气").anger;
    assert!((plain - 0.7).abs() < 1e-6, "{plain}");
    assert!(scorer.score("我非常生气").anger > plain);
    assert!(
        scorer.score("特别生气").anger > plain,
        "weightless intensifier uses the default"
    );
    assert!(scorer.score("有点生气").anger < plain);
    let english = scorer.score("I am angry").anger;
    assert!(scorer.score("I am very angry").anger > english);
    assert!(scorer.score("I am slightly angry").anger < english);
}

#[test]
fn punctuation_and_caps_boost() {
    let scorer = scorer();
    let plain = scorer.score("I am angry").anger;
    let one = scorer.score("I am angry!").anger;
    let three = scorer.score("I am angry!!!").anger;
    let full_width = scorer.score("我生气！！！").anger;
    assert!(one > plain && three > one, "{plain} {one} {three}");
    assert!(full_width > scorer.score("我生气").anger);
    assert!(scorer.score("I AM ANGRY").anger > plain);
    let shouting = scorer.score("WHERE IS MY PARCEL");
    assert!(shouting.anger > 0.3 && shouting.anger < 0.5, "{shouting:?}");
    let questions = scorer.score("where is it??");
    assert_eq!(questions.label, EmotionLabel::Frustration);
}

#[test]
fn longest_term_wins_in_chinese() {
    let lexicons = Lexicons {
        zh: LanguageLexicons {
            anger: lexicon("气\t0.2\n气死了\t0.9\n"),
            ..LanguageLexicons::default()
        },
        ..Lexicons::default()
    };
    let scorer = EmotionScorer::new(&lexicons).expect("scorer builds");
    let score = scorer.score("气死了");
    assert!((score.anger - 0.9).abs() < 1e-6, "{score:?}");
}

#[test]
fn more_hits_approach_one_and_stay_in_range() {
    let scorer = scorer();
    let one = scorer.score("垃圾").anger;
    let two = scorer.score("垃圾骗子").anger;
    assert!(two > one && two <= 1.0, "{one} {two}");
    let everything = scorer.score("非常愤怒!!! 垃圾骗子 FURIOUS SCAM 赶紧 担心 还没到??");
    for value in [
        everything.anger,
        everything.anxiety,
        everything.urgency,
        everything.frustration,
        everything.score,
    ] {
        assert!((0.0..=1.0).contains(&value), "{everything:?}");
    }
}

#[test]
fn empty_lexicons_score_neutral() {
    let scorer = EmotionScorer::new(&Lexicons::default()).expect("scorer builds");
    let score = scorer.score("我非常生气");
    assert_eq!(score, EmotionScore::neutral());
}

#[test]
fn neutral_threshold_is_configurable() {
    let config = ScorerConfig {
        neutral_below: 0.8,
        ..ScorerConfig::default()
    };
    let scorer = EmotionScorer::with_config(&test_lexicons(), config).expect("scorer builds");
    let score = scorer.score("我生气");
    assert_eq!(score.label, EmotionLabel::Neutral);
    assert!((score.score - 0.3).abs() < 1e-6, "{score:?}");
}

#[test]
fn lexicon_errors_have_a_kind() {
    let error = Lexicon::parse("生气\tvery").expect_err("bad weight");
    assert_eq!(error.kind(), EmotionErrorKind::InvalidLexicon);
    assert!(error.to_string().contains("line 1"), "{error}");
}

#[test]
fn lexicons_deserialize_with_defaults() {
    let lexicons: Lexicons =
        serde_json::from_str(r#"{"zh": {"anger": {"entries": [["生气", 0.7]]}}}"#)
            .expect("lexicons json");
    assert_eq!(lexicons.zh.anger.len(), 1);
    assert!(lexicons.en.anger.is_empty());
}

#[test]
fn score_labels_and_proto() {
    let tie = EmotionScore::from_strengths(0.5, 0.5, 0.5, 0.5, 0.3);
    assert_eq!(tie.label, EmotionLabel::Anger);
    let urgent = EmotionScore::from_strengths(0.1, 0.2, 0.9, 0.0, 0.3);
    assert_eq!(urgent.label, EmotionLabel::Urgency);
    assert!((urgent.negativity() - 0.2).abs() < 1e-6);
    let clamped = EmotionScore::from_strengths(2.0, -1.0, f32::NAN, 0.0, 0.3);
    assert!((clamped.anger - 1.0).abs() < 1e-6 && clamped.anxiety == 0.0 && clamped.urgency == 0.0);
    let proto = urgent.to_proto();
    assert_eq!(proto.label, "urgency");
    assert!((proto.score - 0.9).abs() < 1e-6);
}

fn with_negativity(value: f32) -> EmotionScore {
    EmotionScore::from_strengths(value, 0.0, 0.0, 0.0, 0.3)
}

#[test]
fn trajectory_counts_rises_and_peaks() {
    let mut trajectory = EmotionTrajectory::default();
    assert!(!trajectory.is_rising());
    assert_eq!(trajectory.max(), 0.0);
    trajectory.push(with_negativity(0.1));
    assert!(!trajectory.is_rising(), "one turn is no trend");
    trajectory.push(with_negativity(0.5));
    assert_eq!(trajectory.consecutive_negative(), 1);
    assert!(trajectory.is_rising());
    trajectory.push(with_negativity(0.8));
    assert_eq!(trajectory.consecutive_negative(), 2);
    assert!(trajectory.is_rising());
    assert!((trajectory.max() - 0.8).abs() < 1e-6);
    trajectory.push(with_negativity(0.6));
    assert_eq!(trajectory.consecutive_negative(), 3);
    assert!(!trajectory.is_rising(), "it fell");
    trajectory.push(with_negativity(0.0));
    assert_eq!(trajectory.consecutive_negative(), 0);
    assert!((trajectory.max() - 0.8).abs() < 1e-6, "the peak stays");
    assert_eq!(trajectory.turns(), 5);
    assert_eq!(trajectory.last().map(|score| score.anger), Some(0.0));
}

#[test]
fn trajectory_keeps_a_bounded_window_and_serializes() {
    let mut trajectory = EmotionTrajectory::new(0.5);
    for turn in 0..100 {
        trajectory.push(with_negativity(if turn % 2 == 0 { 0.6 } else { 0.2 }));
    }
    assert_eq!(trajectory.turns(), 100);
    assert!(trajectory.recent().count() <= 16);
    let json = serde_json::to_string(&trajectory).expect("serializes");
    let back: EmotionTrajectory = serde_json::from_str(&json).expect("deserializes");
    assert_eq!(back, trajectory);
}
