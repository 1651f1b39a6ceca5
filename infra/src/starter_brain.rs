//! A small rule-based bilingual brain so a fresh `crest serve` answers sensibly before the trained
//! brain (crate crest-brain) is plugged in. Replies are written by Crest's authors.

use crest_actors::ports::brain::{Brain, BrainAnswer, BrainInput, BrainReply};
use crest_proto::events::HandoffReason;

struct Rule {
    intent: &'static str,
    keywords: &'static [&'static str],
    reply_en: &'static str,
    reply_zh: &'static str,
    handoff: bool,
}

const RULES: &[Rule] = &[
    Rule {
        intent: "human_agent",
        keywords: &["human", "agent", "real person", "人工", "客服", "真人"],
        reply_en: "Of course. I'm connecting you to a human agent now.",
        reply_zh: "好的，正在为您转接人工客服，请稍候。",
        handoff: true,
    },
    Rule {
        intent: "greeting",
        keywords: &["hello", "hi", "hey", "你好", "您好", "在吗"],
        reply_en: "Hello! How can I help you today?",
        reply_zh: "您好！请问有什么可以帮您？",
        handoff: false,
    },
    Rule {
        intent: "order_status",
        keywords: &["order", "where is my", "订单", "发货", "到哪"],
        reply_en: "I can check that for you. What is your order number?",
        reply_zh: "我来帮您查询，请提供您的订单号。",
        handoff: false,
    },
    Rule {
        intent: "refund_request",
        keywords: &["refund", "money back", "退款", "退钱"],
        reply_en: "I'm sorry to hear that. Please tell me your order number and I'll start the refund.",
        reply_zh: "很抱歉给您带来不便，请提供订单号，我来为您办理退款。",
        handoff: false,
    },
    Rule {
        intent: "thanks",
        keywords: &["thank", "谢谢", "感谢"],
        reply_en: "You're welcome! Anything else I can do for you?",
        reply_zh: "不客气！还有其他可以帮您的吗？",
        handoff: false,
    },
];

/// Keyword rules in Chinese and English; hands off when the customer asks for a human.
#[derive(Debug, Clone, Copy, Default)]
pub struct StarterBrain;

fn is_chinese(text: &str) -> bool {
    text.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c))
}

impl Brain for StarterBrain {
    fn respond(&self, input: &BrainInput) -> BrainAnswer {
        let lowered = input.text.to_lowercase();
        let chinese = is_chinese(&input.text);
        let matched = RULES.iter().find(|rule| {
            rule.keywords
                .iter()
                .any(|keyword| lowered.contains(keyword))
        });
        let Some(rule) = matched else {
            let text = if chinese {
                "抱歉，我还没理解您的问题。您可以换个说法，或回复“人工”联系客服。"
            } else {
                "Sorry, I didn't catch that. Could you rephrase, or type \"human\" to reach an agent?"
            };
            return BrainAnswer {
                reply: Some(BrainReply {
                    text: text.to_owned(),
                    intent: Some("out_of_scope".to_owned()),
                    confidence: 0.3,
                    emotion: None,
                    citations: Vec::new(),
                }),
                handoff: None,
            };
        };
        BrainAnswer {
            reply: Some(BrainReply {
                text: if chinese {
                    rule.reply_zh
                } else {
                    rule.reply_en
                }
                .to_owned(),
                intent: Some(rule.intent.to_owned()),
                confidence: 0.9,
                emotion: None,
                citations: Vec::new(),
            }),
            handoff: rule
                .handoff
                .then_some((HandoffReason::CustomerRequest, None)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crest_proto::{ConversationId, CustomerId, MessageId, TenantId};

    fn ask(text: &str) -> BrainAnswer {
        let tenant = TenantId::new("acme").expect("valid");
        StarterBrain.respond(&BrainInput {
            conversation: ConversationId::generate(&tenant),
            customer: CustomerId::new(&tenant, "c-1").expect("valid"),
            message_id: MessageId::generate(&tenant),
            text: text.to_owned(),
            history: Vec::new(),
        })
    }

    #[test]
    fn answers_in_the_customer_language_and_hands_off_on_request() {
        let chinese = ask("我要转人工");
        assert!(chinese.handoff.is_some());
        assert!(chinese.reply.expect("reply").text.contains("人工"));
        let english = ask("Where is my order?");
        assert_eq!(
            english.reply.expect("reply").intent.as_deref(),
            Some("order_status")
        );
        assert!(ask("qwerty").handoff.is_none());
    }
}
