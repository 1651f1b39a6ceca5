//! The engine: one customer message in, the bot's answer out. It runs language detection, the intent
//! classifier, entities, emotion and escalation, the knowledge base and the dialogue policy, calls a
//! commerce tool when the policy asks for one, and renders the reply from the pack's templates.
//!
//! The dialogue state is not stored separately: it is rebuilt from the conversation's history (the
//! bot's earlier intents and confidences, and the entities of earlier customer turns), so it survives
//! restarts with the conversation's events.

use std::sync::Arc;

use crest_proto::TenantId;
use crest_proto::events::Citation;

use crate::classifier::{ClassifierError, Example, TextClassifier, TrainConfig};
use crate::commerce::{
    Commerce, CommerceError, CommerceErrorKind, DemoCommerce, Order, RefundRequest, Shipment,
};
use crate::emotion::{self, EmotionScore, EmotionScorer, EmotionTrajectory};
use crate::entities::{self, EntityKind};
use crate::kb::{self, Date, KbAnswer, KbConfig, KnowledgeBase, KnowledgeBases};
use crate::llm::{Grounding, LlmClient};
use crate::pack::{self, PackLang, Replies};
use crate::policy::{
    Action, DialogueState, EscalationRules, Lang as PolicyLang, NluSignals, Policy, PolicyConfig,
    Slot, ToolCall, TurnSignals,
};
use crate::text::{self, Lang};

/// Who wrote an earlier message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Speaker {
    /// The customer.
    Customer,
    /// The bot.
    Bot,
    /// A human agent or the system.
    Other,
}

/// An earlier message of the conversation.
#[derive(Debug, Clone, PartialEq)]
pub struct PastTurn {
    /// Who wrote it.
    pub speaker: Speaker,
    /// The text.
    pub text: String,
    /// The bot's intent (bot turns).
    pub intent: Option<String>,
    /// The bot's confidence (bot turns).
    pub confidence: Option<f32>,
}

/// One customer message to answer.
#[derive(Debug, Clone)]
pub struct Turn<'a> {
    /// The tenant (merchant).
    pub tenant: &'a TenantId,
    /// The merchant's customer id.
    pub customer: &'a str,
    /// The message.
    pub text: &'a str,
    /// Earlier messages, oldest first.
    pub history: &'a [PastTurn],
    /// VIP customers escalate earlier.
    pub vip: bool,
    /// Today's date (promo rules apply inside their window).
    pub today: Date,
}

/// The bot's answer to one message.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// The reply to send (absent only when the engine has nothing to say).
    pub text: Option<String>,
    /// The intent the answer is about (the recognised one, or the one a filled slot belonged to).
    pub intent: String,
    /// Confidence in `intent`.
    pub confidence: f32,
    /// The customer's emotion in this message.
    pub emotion: EmotionScore,
    /// Sources of a knowledge-base answer.
    pub citations: Vec<Citation>,
    /// Hand off to a human: (reason, group, detail).
    pub handoff: Option<Handoff>,
    /// The policy's action, for logs (`answer_from_kb`, `call_tool`, `ask_slot`, …).
    pub action: &'static str,
}

/// A request to hand the conversation to a human.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handoff {
    /// Why: `customer_request`, `anger`, `complaint`, `repeated_negative`, `low_confidence`, `vip`.
    pub reason: String,
    /// The agent group: `pre_sales`, `after_sales` or `general`.
    pub group: Option<String>,
    /// A readable detail, e.g. `anger 0.82 >= 0.70`.
    pub detail: String,
}

impl Handoff {
    /// `reason: detail` (e.g. `complaint: anger/complaint`), or the reason alone.
    #[must_use]
    pub fn detail_or_reason(&self) -> String {
        if self.detail.is_empty() || self.detail == self.reason {
            return self.reason.clone();
        }
        format!("{}: {}", self.reason, self.detail)
    }
}

/// Why the engine could not be built.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The pack's content is invalid.
    #[error("default pack: {0}")]
    Pack(#[from] pack::PackError),
    /// The classifier could not be trained or loaded.
    #[error("intent model: {0}")]
    Classifier(#[from] ClassifierError),
    /// The emotion lexicons are invalid.
    #[error("emotion lexicons: {0}")]
    Emotion(#[from] emotion::EmotionError),
    /// The knowledge base could not be built.
    #[error("knowledge base: {0}")]
    Kb(String),
}

/// The training set of the default intent model: the pack's examples in both languages.
pub fn default_intent_examples() -> Result<Vec<Example>, EngineError> {
    Ok(pack::intent_examples()?
        .into_iter()
        .map(|(text, label, _)| Example { text, label })
        .collect())
}

/// Trains the default intent model from the pack (deterministic: the same pack gives the same bytes).
pub fn train_default_intent_model() -> Result<TextClassifier, EngineError> {
    Ok(TextClassifier::train(
        &default_intent_examples()?,
        &TrainConfig::default(),
    )?)
}

fn emotion_lexicons() -> Result<emotion::Lexicons, EngineError> {
    let packed = pack::default_lexicons()?;
    let convert = |source: &pack::LanguageLexicons| emotion::LanguageLexicons {
        anger: emotion::Lexicon::from_entries(source.anger.entries().iter().cloned()),
        anxiety: emotion::Lexicon::from_entries(source.anxiety.entries().iter().cloned()),
        urgency: emotion::Lexicon::from_entries(source.urgency.entries().iter().cloned()),
        frustration: emotion::Lexicon::default(),
        negators: emotion::Lexicon::from_entries(source.negators.entries().iter().cloned()),
        intensifiers: emotion::Lexicon::from_entries(source.intensifiers.entries().iter().cloned()),
    };
    Ok(emotion::Lexicons {
        zh: convert(&packed.zh),
        en: convert(&packed.en),
    })
}

/// The knowledge-base settings of the bot: the intent classifier already chose an informational
/// topic before the KB is asked, so the answer is judged by how much of the question the passage
/// covers rather than by its margin over other documents.
#[must_use]
pub fn engine_kb_config() -> KbConfig {
    KbConfig {
        answer_threshold: 0.3,
        // Coverage of the query's terms decides; a near-tie with another document of the same
        // merchant (its FAQ and its policy page) is no reason to doubt.
        margin_for_full_confidence: 0.02,
        ..KbConfig::default()
    }
}

/// The pack's demo knowledge base (policies and FAQ), used when a tenant's own documents have no
/// answer.
pub fn default_knowledge_base() -> Result<KnowledgeBase, EngineError> {
    let kb_error = |error: &dyn std::fmt::Display| EngineError::Kb(error.to_string());
    let base = KnowledgeBase::new(engine_kb_config()).map_err(|error| kb_error(&error))?;
    let mut documents = Vec::new();
    for file in pack::default_kb_documents() {
        documents.push(
            kb::ingest::parse_markdown(file.file_name, file.text)
                .map_err(|error| kb_error(&error))?,
        );
    }
    for entry in pack::default_faq()? {
        documents.push(kb::faq_document(&entry.id, &entry.question, &entry.answer));
    }
    base.upsert_documents(documents)
        .map_err(|error| kb_error(&error))?;
    Ok(base)
}

/// Everything the engine needs.
pub struct Engine {
    intents: TextClassifier,
    replies: Replies,
    scorer: EmotionScorer,
    escalation: EscalationRules,
    policy: Policy,
    knowledge: Arc<KnowledgeBases>,
    default_knowledge: KnowledgeBase,
    commerce: Arc<dyn Commerce>,
    verify_order_owner: bool,
    llm: Option<LlmClient>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("Engine").finish_non_exhaustive()
    }
}

impl Engine {
    /// An engine with the default pack, the given intent model, the demo commerce adapter and no LLM.
    pub fn new(intents: TextClassifier) -> Result<Self, EngineError> {
        Ok(Self {
            intents,
            replies: pack::default_replies()?,
            scorer: EmotionScorer::new(&emotion_lexicons()?)?,
            escalation: EscalationRules::default(),
            policy: Policy::new(PolicyConfig::default()),
            knowledge: Arc::new(KnowledgeBases::new(engine_kb_config())),
            default_knowledge: default_knowledge_base()?,
            commerce: Arc::new(DemoCommerce::new()),
            // The demo orders are shared by every visitor of the demo.
            verify_order_owner: false,
            llm: None,
        })
    }

    /// Replaces the commerce adapter (e.g. the merchant's HTTP endpoint).
    #[must_use]
    pub fn with_commerce(mut self, commerce: Arc<dyn Commerce>) -> Self {
        self.commerce = commerce;
        self.verify_order_owner = true;
        self
    }

    /// Lets an LLM phrase knowledge-base answers (grounded on the passages; falls back to them).
    #[must_use]
    pub fn with_llm(mut self, llm: LlmClient) -> Self {
        self.llm = Some(llm);
        self
    }

    /// Answers from `knowledge`, tenants' own knowledge bases that someone else keeps up to date
    /// (the node indexes the documents its tenants upload there); build it with
    /// [`engine_kb_config`] for the bot's thresholds.
    #[must_use]
    pub fn with_knowledge(mut self, knowledge: Arc<KnowledgeBases>) -> Self {
        self.knowledge = knowledge;
        self
    }

    /// Tenants' own knowledge bases.
    #[must_use]
    pub fn knowledge(&self) -> &KnowledgeBases {
        &self.knowledge
    }

    /// The intent model.
    #[must_use]
    pub fn intent_model(&self) -> &TextClassifier {
        &self.intents
    }

    /// Answers one customer message.
    #[must_use]
    pub fn respond(&self, turn: &Turn<'_>) -> Outcome {
        let lang = effective_language(turn.text, turn.history);
        let prediction = self.intents.predict(turn.text);
        let found = entities::extract(turn.text);
        let emotion = self.scorer.score(turn.text);
        let mut trajectory = EmotionTrajectory::default();
        for past in turn
            .history
            .iter()
            .filter(|past| past.speaker == Speaker::Customer)
        {
            trajectory.push(self.scorer.score(&past.text));
        }
        trajectory.push(emotion);
        let state = self.rebuild_state(turn.history);
        let escalation = self.escalation.evaluate(&TurnSignals {
            intent: &prediction.label,
            confidence: prediction.confidence,
            out_of_scope: prediction.out_of_scope,
            emotion,
            trajectory: &trajectory,
            low_confidence_streak: state.low_confidence_streak,
            vip: turn.vip,
        });
        // The knowledge base is only asked when the policy could use it (it is the costliest step).
        let config = self.policy.config();
        let kb_useful = prediction.out_of_scope
            || prediction.confidence < config.clarify_below
            || config
                .kb_first_intents
                .iter()
                .any(|intent| intent == &prediction.label);
        let kb_answer = if kb_useful {
            self.kb_answer(turn)
        } else {
            KbAnswer::Unknown
        };
        let signals = NluSignals {
            lang: match lang {
                Lang::Zh => PolicyLang::Zh,
                Lang::En => PolicyLang::En,
                Lang::Other => PolicyLang::Other,
            },
            intent: prediction.label.clone(),
            confidence: prediction.confidence,
            out_of_scope: prediction.out_of_scope,
            entities: found,
            escalation,
            kb_available: matches!(kb_answer, KbAnswer::Answer { .. }),
        };
        let action = self.policy.decide(&state, &signals);
        let reply_lang = if lang == Lang::Zh {
            PackLang::Zh
        } else {
            PackLang::En
        };
        let seed = crate::text::fnv1a64(turn.text.as_bytes());
        let mut outcome = Outcome {
            text: None,
            intent: prediction.label.clone(),
            confidence: prediction.confidence,
            emotion,
            citations: Vec::new(),
            handoff: None,
            action: action_name(&action),
        };
        match action {
            Action::AnswerFromKb => {
                self.answer_from_kb(turn, kb_answer, reply_lang, seed, &mut outcome)
            }
            Action::CallTool(call) => {
                outcome.intent = call.intent().to_owned();
                outcome.confidence = outcome.confidence.max(0.9);
                outcome.text = Some(self.call_tool(turn, &call, reply_lang, seed));
            }
            Action::AskSlot(Slot::OrderId { for_intent }) => {
                outcome.intent = for_intent;
                outcome.text = self
                    .replies
                    .pick("ask_order_id", reply_lang, seed)
                    .map(str::to_owned);
            }
            Action::Handoff { reason, group } => {
                let detail = signals
                    .escalation
                    .as_ref()
                    .map_or_else(|| reason.clone(), |escalation| escalation.detail.clone());
                let why = handoff_reason_text(&reason, reply_lang);
                outcome.text =
                    self.replies
                        .pick_rendered("handoff", reply_lang, seed, &[("reason", why)]);
                outcome.handoff = Some(Handoff {
                    reason,
                    group,
                    detail,
                });
            }
            Action::SmallTalk(intent) | Action::Reply(intent) => {
                outcome.text = self
                    .replies
                    .pick(&intent, reply_lang, seed)
                    .or_else(|| self.replies.pick("clarify", reply_lang, seed))
                    .map(str::to_owned);
                outcome.intent = intent;
            }
            Action::Clarify => {
                outcome.text = self
                    .replies
                    .pick("clarify", reply_lang, seed)
                    .map(str::to_owned);
            }
            Action::FallbackOtherLanguage => {
                outcome.text = self
                    .replies
                    .pick("fallback_other_language", PackLang::En, seed)
                    .map(str::to_owned);
            }
        }
        outcome
    }

    /// Rebuilds the dialogue state from the history: the last bot intent, a pending order-number
    /// question (the bot answered an order intent to a customer turn that had no order number), and
    /// the streak of low-confidence answers.
    fn rebuild_state(&self, history: &[PastTurn]) -> DialogueState {
        let config = self.policy.config();
        let mut state = DialogueState::default();
        let mut customer_gave_order = false;
        for past in history {
            match past.speaker {
                Speaker::Customer => {
                    customer_gave_order = entities::extract(&past.text)
                        .iter()
                        .any(|entity| entity.kind == EntityKind::OrderNumber);
                }
                Speaker::Bot => {
                    let intent = past.intent.clone().unwrap_or_default();
                    let confidence = past.confidence.unwrap_or(1.0);
                    if config.order_tools.contains_key(&intent) && !customer_gave_order {
                        state.pending_slot = Some(Slot::OrderId {
                            for_intent: intent.clone(),
                        });
                        state.slot_asks += 1;
                    } else {
                        state.pending_slot = None;
                        state.slot_asks = 0;
                    }
                    if confidence < config.clarify_below {
                        state.low_confidence_streak += 1;
                    } else {
                        state.low_confidence_streak = 0;
                    }
                    state.last_bot_intent = Some(intent);
                }
                Speaker::Other => {}
            }
        }
        state
    }

    /// The tenant's own documents answer first; when they have no answer, the pack's demo
    /// knowledge base does. No other tenant's documents are ever searched.
    fn kb_answer(&self, turn: &Turn<'_>) -> KbAnswer {
        let own = self
            .knowledge
            .tenant(turn.tenant.as_str())
            .map_or(KbAnswer::Unknown, |base| base.answer(turn.text, turn.today));
        match own {
            KbAnswer::Unknown => self.default_knowledge.answer(turn.text, turn.today),
            answer @ KbAnswer::Answer { .. } => answer,
        }
    }

    fn answer_from_kb(
        &self,
        turn: &Turn<'_>,
        answer: KbAnswer,
        lang: PackLang,
        seed: u64,
        outcome: &mut Outcome,
    ) {
        let KbAnswer::Answer { text, citation, .. } = answer else {
            outcome.text = self
                .replies
                .pick("kb_unknown", lang, seed)
                .map(str::to_owned);
            return;
        };
        let passage = strip_question(&text);
        let phrased = self.llm.as_ref().and_then(|llm| {
            let grounding = [Grounding {
                title: citation.title.clone(),
                text: passage.to_owned(),
            }];
            llm.answer(
                turn.text,
                &grounding,
                if lang == PackLang::Zh { "zh" } else { "en" },
            )
            .map_err(|error| tracing::warn!(%error, "llm answer failed; using the passage"))
            .ok()
        });
        let intro = self
            .replies
            .pick("kb_answer_intro", lang, seed)
            .unwrap_or_default();
        let body = phrased.unwrap_or_else(|| passage.to_owned());
        outcome.text = Some(if intro.is_empty() {
            body
        } else {
            format!("{intro}\n{body}")
        });
        outcome.citations = vec![citation];
    }

    fn call_tool(&self, turn: &Turn<'_>, call: &ToolCall, lang: PackLang, seed: u64) -> String {
        let result = match call {
            ToolCall::OrderStatus { order_id } => self.order_reply(turn, order_id, lang, seed),
            ToolCall::Logistics { order_id } => self.logistics_reply(turn, order_id, lang, seed),
            ToolCall::CreateRefund { order_id } => self.refund_reply(turn, order_id, lang, seed),
            ToolCall::Stock { sku } => self.stock_reply(turn, sku.as_deref(), lang, seed),
            ToolCall::RecentOrders => self.recent_orders_reply(turn, lang, seed),
        };
        result.unwrap_or_else(|error| {
            tracing::warn!(%error, "commerce tool failed");
            self.replies
                .pick("kb_unknown", lang, seed)
                .unwrap_or("Sorry, I cannot check that right now.")
                .to_owned()
        })
    }

    /// The order if it exists and belongs to this customer (nothing is said about others' orders;
    /// the shared demo orders are visible to every demo visitor).
    fn own_order(&self, turn: &Turn<'_>, order_id: &str) -> Result<Option<Order>, CommerceError> {
        Ok(self
            .commerce
            .order(turn.tenant, order_id)?
            .filter(|order| !self.verify_order_owner || order.customer == turn.customer))
    }

    fn not_found(&self, order_id: &str, lang: PackLang, seed: u64) -> String {
        self.replies
            .pick_rendered("order_not_found", lang, seed, &[("order_id", order_id)])
            .unwrap_or_default()
    }

    fn order_reply(
        &self,
        turn: &Turn<'_>,
        order_id: &str,
        lang: PackLang,
        seed: u64,
    ) -> Result<String, CommerceError> {
        let Some(order) = self.own_order(turn, order_id)? else {
            return Ok(self.not_found(order_id, lang, seed));
        };
        if matches!(order.status.as_str(), "shipped" | "delivered")
            && let Some(shipment) = self.commerce.logistics(turn.tenant, order_id)?
        {
            return Ok(self.render_shipment(&shipment, lang, seed));
        }
        let items = order
            .items
            .iter()
            .map(|item| format!("{} × {}", item.name, item.quantity))
            .collect::<Vec<_>>()
            .join(", ");
        Ok(self
            .replies
            .pick_rendered(
                "order_found",
                lang,
                seed,
                &[
                    ("order_id", &order.id),
                    ("status", status_text(order.status.as_str(), lang)),
                    ("items", &items),
                ],
            )
            .unwrap_or_default())
    }

    fn logistics_reply(
        &self,
        turn: &Turn<'_>,
        order_id: &str,
        lang: PackLang,
        seed: u64,
    ) -> Result<String, CommerceError> {
        if self.own_order(turn, order_id)?.is_none() {
            return Ok(self.not_found(order_id, lang, seed));
        }
        let Some(shipment) = self.commerce.logistics(turn.tenant, order_id)? else {
            return self.order_reply(turn, order_id, lang, seed);
        };
        Ok(self.render_shipment(&shipment, lang, seed))
    }

    fn render_shipment(&self, shipment: &Shipment, lang: PackLang, seed: u64) -> String {
        let last_event = shipment
            .events
            .last()
            .map(|event| format!("{} {} {}", event.at, event.location, event.description))
            .unwrap_or_default();
        let eta = shipment.eta.clone().unwrap_or_default();
        self.replies
            .pick_rendered(
                "logistics_found",
                lang,
                seed,
                &[
                    ("order_id", &shipment.order_id),
                    ("carrier", &shipment.carrier),
                    ("tracking_no", &shipment.tracking_no),
                    ("last_event", &last_event),
                    ("eta", &eta),
                ],
            )
            .unwrap_or_default()
    }

    fn refund_reply(
        &self,
        turn: &Turn<'_>,
        order_id: &str,
        lang: PackLang,
        seed: u64,
    ) -> Result<String, CommerceError> {
        let Some(order) = self.own_order(turn, order_id)? else {
            return Ok(self.not_found(order_id, lang, seed));
        };
        let refund = match self.commerce.create_refund(
            turn.tenant,
            &RefundRequest {
                order_id: order.id.clone(),
                customer: turn.customer.to_owned(),
                amount_cents: None,
                reason: turn.text.chars().take(200).collect(),
            },
        ) {
            Ok(refund) => refund,
            // The merchant does not know the order for this customer: an answer for the
            // customer, not a failure of the merchant system.
            Err(error) if error.kind() == CommerceErrorKind::NotFound => {
                return Ok(self.not_found(order_id, lang, seed));
            }
            Err(error) => return Err(error),
        };
        let amount = format!(
            "{}.{:02} {}",
            refund.amount_cents / 100,
            refund.amount_cents % 100,
            order.currency
        );
        Ok(self
            .replies
            .pick_rendered(
                "refund_created",
                lang,
                seed,
                &[
                    ("order_id", &order.id),
                    ("refund_id", &refund.id),
                    ("amount", &amount),
                ],
            )
            .unwrap_or_default())
    }

    fn stock_reply(
        &self,
        turn: &Turn<'_>,
        sku: Option<&str>,
        lang: PackLang,
        seed: u64,
    ) -> Result<String, CommerceError> {
        let template = || {
            self.replies
                .pick("stock_availability", lang, seed)
                .unwrap_or_default()
                .to_owned()
        };
        let Some(sku) = sku else {
            return Ok(template());
        };
        let Some(stock) = self.commerce.stock(turn.tenant, sku)? else {
            return Ok(template());
        };
        Ok(match (lang, stock.available) {
            (PackLang::Zh, 0) => format!(
                "{}（{}）暂时缺货{}。",
                stock.name,
                stock.sku,
                stock
                    .restock_date
                    .map(|date| format!("，预计 {date} 补货"))
                    .unwrap_or_default()
            ),
            (PackLang::Zh, count) => {
                format!("{}（{}）有货，库存 {count} 件。", stock.name, stock.sku)
            }
            (PackLang::En, 0) => format!(
                "{} ({}) is out of stock{}.",
                stock.name,
                stock.sku,
                stock
                    .restock_date
                    .map(|date| format!(", expected back on {date}"))
                    .unwrap_or_default()
            ),
            (PackLang::En, count) => format!(
                "{} ({}) is in stock: {count} available.",
                stock.name, stock.sku
            ),
        })
    }

    fn recent_orders_reply(
        &self,
        turn: &Turn<'_>,
        lang: PackLang,
        seed: u64,
    ) -> Result<String, CommerceError> {
        let orders = self.commerce.recent_orders(turn.tenant, turn.customer, 1)?;
        let Some(order) = orders.into_iter().next() else {
            return Ok(self
                .replies
                .pick("ask_order_id", lang, seed)
                .unwrap_or_default()
                .to_owned());
        };
        self.order_reply(turn, &order.id, lang, seed)
    }
}

/// The message's language; a message without letters (an order number alone) keeps the language of
/// the customer's earlier messages.
fn effective_language(message: &str, history: &[PastTurn]) -> Lang {
    let detected = text::detect_language(message);
    if detected != Lang::Other || message.chars().any(char::is_alphabetic) {
        return detected;
    }
    history
        .iter()
        .rev()
        .filter(|past| past.speaker == Speaker::Customer)
        .map(|past| text::detect_language(&past.text))
        .find(|lang| *lang != Lang::Other)
        .unwrap_or(Lang::En)
}

/// A short clause saying why the conversation goes to a human (templates read "Since {reason}, …").
fn handoff_reason_text(reason: &str, lang: PackLang) -> &'static str {
    match (lang, reason) {
        (PackLang::Zh, "customer_request") => "您希望由人工客服处理",
        (PackLang::Zh, "complaint") => "您要投诉",
        (PackLang::Zh, "anger" | "frustration") => "给您带来了不好的体验",
        (PackLang::Zh, "repeated_negative") => "问题一直没有解决",
        (PackLang::Zh, "low_confidence") => "我没能准确理解您的问题",
        (PackLang::Zh, _) => "您的问题需要专人处理",
        (PackLang::En, "customer_request") => "you asked for a person",
        (PackLang::En, "complaint") => "you would like to make a complaint",
        (PackLang::En, "anger" | "frustration") => "this has been a bad experience",
        (PackLang::En, "repeated_negative") => "the problem is still not solved",
        (PackLang::En, "low_confidence") => "I could not understand your question well",
        (PackLang::En, _) => "your question needs a specialist",
    }
}

/// FAQ passages are "question\n\nanswer": answer with the answer part.
fn strip_question(passage: &str) -> &str {
    match passage.split_once("\n\n") {
        Some((_, answer)) if !answer.trim().is_empty() => answer.trim(),
        _ => passage.trim(),
    }
}

fn status_text(status: &str, lang: PackLang) -> &str {
    if lang == PackLang::En {
        return match status {
            "pending_payment" => "waiting for payment",
            "paid" => "paid, being prepared for shipping",
            "shipped" => "shipped",
            "delivered" => "delivered",
            "cancelled" => "cancelled",
            "refunding" => "being refunded",
            "refunded" => "refunded",
            other => other,
        };
    }
    match status {
        "pending_payment" => "待付款",
        "paid" => "已付款，正在备货",
        "shipped" => "已发货",
        "delivered" => "已签收",
        "cancelled" => "已取消",
        "refunding" => "退款中",
        "refunded" => "已退款",
        other => other,
    }
}

fn action_name(action: &Action) -> &'static str {
    match action {
        Action::AnswerFromKb => "answer_from_kb",
        Action::CallTool(_) => "call_tool",
        Action::AskSlot(_) => "ask_slot",
        Action::Handoff { .. } => "handoff",
        Action::SmallTalk(_) => "small_talk",
        Action::Reply(_) => "reply",
        Action::Clarify => "clarify",
        Action::FallbackOtherLanguage => "fallback_other_language",
    }
}

/// Today's date in UTC.
#[must_use]
pub fn today_utc() -> Date {
    let seconds = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs());
    civil_from_days(i64::try_from(seconds / 86_400).unwrap_or(0))
}

/// Days since 1970-01-01 to a calendar date (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> Date {
    let shifted = days + 719_468;
    let era = shifted.div_euclid(146_097);
    let day_of_era = shifted.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    let fallback =
        || Date::new(1970, 1, 1).unwrap_or_else(|_| unreachable!("1970-01-01 is a date"));
    Date::new(
        u16::try_from(year).unwrap_or(1970),
        u8::try_from(month).unwrap_or(1),
        u8::try_from(day).unwrap_or(1),
    )
    .unwrap_or_else(|_| fallback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), Date::new(1970, 1, 1).expect("date"));
        assert_eq!(
            civil_from_days(20_403),
            Date::new(2025, 11, 11).expect("date")
        );
        assert_eq!(
            civil_from_days(11_016),
            Date::new(2000, 2, 29).expect("date")
        );
    }

    #[test]
    fn faq_passages_answer_with_the_answer() {
        assert_eq!(strip_question("How long?\n\nSeven days."), "Seven days.");
        assert_eq!(strip_question("Just text."), "Just text.");
    }
}
