//! What virtual customers say: multi-turn scripts in Chinese and English across intents, and a
//! small seeded random generator so that a run is reproducible from `--seed`.

/// One turn of a script.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Turn {
    /// The text; `{order}` is replaced by a demo order number.
    pub text: &'static str,
    /// Whether the bot is expected to answer it (not after a handoff).
    pub expects_bot_reply: bool,
    /// Whether this turn asks for a human (handoff-to-offer latency starts at its ack).
    pub hands_off: bool,
}

const fn bot(text: &'static str) -> Turn {
    Turn {
        text,
        expects_bot_reply: true,
        hands_off: false,
    }
}

const fn handoff(text: &'static str) -> Turn {
    Turn {
        text,
        expects_bot_reply: true,
        hands_off: true,
    }
}

const fn to_agent(text: &'static str) -> Turn {
    Turn {
        text,
        expects_bot_reply: false,
        hands_off: false,
    }
}

/// A customer's conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Script {
    /// Shown in reports.
    pub name: &'static str,
    /// The turns in order.
    pub turns: &'static [Turn],
}

impl Script {
    /// Whether the script ends with a human agent.
    #[must_use]
    pub fn hands_off(&self) -> bool {
        self.turns.iter().any(|turn| turn.hands_off)
    }
}

/// Scripts the bot can answer by itself.
pub const BOT_SCRIPTS: &[Script] = &[
    Script {
        name: "order_status_zh",
        turns: &[
            bot("我的订单什么时候到？"),
            bot("{order}"),
            bot("好的，谢谢"),
        ],
    },
    Script {
        name: "order_status_en",
        turns: &[bot("Where is my order?"), bot("{order}")],
    },
    Script {
        name: "refund_zh",
        turns: &[bot("我要退款，衣服尺码不合适"), bot("订单号是{order}")],
    },
    Script {
        name: "refund_en",
        turns: &[
            bot("I want a refund, the shoes don't fit"),
            bot("order {order}"),
        ],
    },
    Script {
        name: "kb_presale_zh",
        turns: &[bot("双十一预售定金可以退吗"), bot("尾款什么时候付？")],
    },
    Script {
        name: "kb_refund_en",
        turns: &[
            bot("how long does a refund take"),
            bot("do you offer free returns?"),
        ],
    },
    Script {
        name: "shipping_zh",
        turns: &[
            bot("你好，在吗"),
            bot("发什么快递？几天能到"),
            bot("{order}"),
        ],
    },
];

/// Scripts of angry customers that end with a human agent.
pub const HANDOFF_SCRIPTS: &[Script] = &[
    Script {
        name: "complaint_zh",
        turns: &[
            handoff("你们这是骗人！我要投诉！转人工客服"),
            to_agent("人呢？还在吗"),
        ],
    },
    Script {
        name: "complaint_en",
        turns: &[
            handoff("This is a scam! I want to complain, get me a human agent now!"),
            to_agent("hello? anyone there?"),
        ],
    },
];

/// The demo orders `2026111100001` … `2026111100010`.
#[must_use]
pub fn order_number(pick: u64) -> String {
    format!("20261111000{:02}", pick % 10 + 1)
}

/// A turn's text with its placeholder filled.
#[must_use]
pub fn render(turn: &Turn, pick: u64) -> String {
    if turn.text.contains("{order}") {
        turn.text.replace("{order}", &order_number(pick))
    } else {
        turn.text.to_owned()
    }
}

/// The generator that picks scripts reproducibly from `--seed` (SplitMix64, shared with the rest of
/// the workspace).
pub type Rng = crest_proto::hash::SplitMix64;

/// Picks the next customer's script: a handoff script with probability `handoff_share`.
pub fn pick_script(rng: &mut Rng, handoff_share: f64) -> &'static Script {
    let pool = if rng.next_f64() < handoff_share {
        HANDOFF_SCRIPTS
    } else {
        BOT_SCRIPTS
    };
    // Modulo, not `below`: the scripts a given `--seed` picks stay what they were.
    #[allow(clippy::cast_possible_truncation)]
    let index = (rng.next_u64() % pool.len() as u64) as usize;
    &pool[index]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_are_well_formed() {
        for script in BOT_SCRIPTS {
            assert!(!script.turns.is_empty());
            assert!(!script.hands_off(), "{}", script.name);
            assert!(script.turns.iter().all(|turn| turn.expects_bot_reply));
        }
        for script in HANDOFF_SCRIPTS {
            assert!(script.hands_off(), "{}", script.name);
            // after the handoff turn the bot is silent
            let at = script
                .turns
                .iter()
                .position(|turn| turn.hands_off)
                .expect("test value");
            assert!(
                script.turns[at + 1..]
                    .iter()
                    .all(|turn| !turn.expects_bot_reply)
            );
        }
        let all = BOT_SCRIPTS.iter().chain(HANDOFF_SCRIPTS);
        let chinese = all
            .clone()
            .filter(|script| script.turns[0].text.chars().any(|c| c > '\u{2E80}'))
            .count();
        assert!(chinese >= 3 && all.count() - chinese >= 3);
    }

    #[test]
    fn placeholders_are_demo_orders() {
        assert_eq!(order_number(2), "2026111100003");
        assert_eq!(order_number(9), "2026111100010");
        assert_eq!(render(&bot("order {order}"), 0), "order 2026111100001");
        assert_eq!(render(&bot("hi"), 0), "hi");
    }

    #[test]
    fn rng_is_reproducible_and_handoff_share_holds() {
        let mut a = Rng::new(7);
        let mut b = Rng::new(7);
        assert_eq!(a.next_u64(), b.next_u64());
        let mut rng = Rng::new(42);
        let handoffs = (0..10_000)
            .filter(|_| pick_script(&mut rng, 0.1).hands_off())
            .count();
        assert!((800..1200).contains(&handoffs), "{handoffs}");
        let mut rng = Rng::new(1);
        assert!((0..1000).all(|_| !pick_script(&mut rng, 0.0).hands_off()));
    }
}
