//! Golden files: freeze the persisted encoding of every event type, forever.
//!
//! For every `(event_type, schema_version)` in [`ConversationEvent::KNOWN_TYPES`],
//! [`CustomerEvent::KNOWN_TYPES`], [`DeskEvent::KNOWN_TYPES`], [`DirectoryEvent::KNOWN_TYPES`],
//! [`AgentEvent::KNOWN_TYPES`], [`TicketEvent::KNOWN_TYPES`], [`AccessEvent::KNOWN_TYPES`],
//! [`AuditEvent::KNOWN_TYPES`], [`KbEvent::KNOWN_TYPES`], [`IntentEvent::KNOWN_TYPES`],
//! [`ChannelEvent::KNOWN_TYPES`], [`OutboxEvent::KNOWN_TYPES`] and
//! [`LeadPolicyEvent::KNOWN_TYPES`] there is one deterministic, fully populated sample event, wrapped
//! in an envelope whose every field is fixed. Its encoding is stored as lowercase hex (64 digits a
//! line, trailing newline) in `tests/golden/<event_type>.v<schema_version>.hex`. The tests check:
//!
//! 1. encoding the sample gives exactly the bytes in the file,
//! 2. decoding the file gives back exactly the sample envelope and event, and
//! 3. every known type has a sample and a golden file, and every golden file is a known type.
//!
//! Adding an event type or schema version: add a sample below, then run
//! `CREST_UPDATE_GOLDEN=1 cargo test -p crest-proto --test golden` once. That writes the files that
//! are **missing**; it never overwrites an existing file. A golden file that stops matching means a
//! persisted format changed, which is a bug: add a new schema version and an upcaster instead.

use std::collections::BTreeSet;
use std::fmt::{Debug, Write as _};
use std::fs::{self, OpenOptions};
use std::io::{ErrorKind, Write as _};
use std::path::PathBuf;
use std::sync::OnceLock;

use crest_proto::access::{
    AccessEvent, AccessRole, KeyIssued, KeyRevoked, PasswordSet, SessionOpened, WidgetConfigured,
};
use crest_proto::agent::{
    AgentEvent, ChatReleased, ChatTaken, ConnectionClosed, ConnectionOpened, MessageWritten,
    ProfileRecorded, StatusRecorded,
};
use crest_proto::audit::{AuditEvent, Recorded};
use crest_proto::channels::{
    ChannelConfigured, ChannelConfiguredV2, ChannelEvent, ChannelRemoved, OutboxDeadLettered,
    OutboxDelivered, OutboxEvent, OutboxQueued, OutboxRequeued,
};
use crest_proto::codec::CODEC_BINCODE_V1;
use crest_proto::customers::{
    CustomerMergeUndone, CustomersMerged, EvidenceKind, Identity, IdentityKind, IdentityRecorded,
    MergeEvidence, MergeInvolved,
};
use crest_proto::envelope::EventMeta;
use crest_proto::events::{
    AfterSalesRequested, AgentAssigned, AgentReplied, BotReplied, Citation, Closed, ClosedV2,
    ConversationEnded, ConversationEvent, ConversationOpened, CsatRated, CustomerEvent,
    CustomerMessageReceived, DomainEvent, Emotion, HandoffDeclined, HandoffReason,
    HandoffRequested, HandoffRequestedV2, ProactiveSent, Resolved, Started, SystemNotice,
};
use crest_proto::intents::{ExamplesSet, IntentEvent, ModelActivated};
use crest_proto::kb::{DocumentDeleted, DocumentPublished, KbEvent};
use crest_proto::leads::{LeadCaptured, LeadPolicyEvent, LeadPolicySet, LeadProgressed};
use crest_proto::proactive::{
    ProactiveDecided, ProactiveEvent, ProactiveRulesEvent, ProactiveRulesSet,
};
use crest_proto::routing::{
    AgentConnectionChanged, AgentProfileSet, Candidate, ChannelsOpened, ChatAssigned, ChatEnded,
    ChatOffered, ChatOverflowed, ChatQueued, ChatRefused, ChatRefusedV2, CustomerNotified,
    CustomerTierSet, DeskEvent, DeskOpened, DirectoryEvent, GroupConfigured, HandoffSummary,
    KbOpened, OfferWithdrawn, Presence, PresenceChanged, RoutingTableSet, SlaBreached,
    TicketAssigned, TicketCommented, TicketCreated, TicketDeadlineReached, TicketLinked,
    TicketStatus, TicketStatusChanged, TicketTracked, TicketUntracked, Tier,
};
use crest_proto::ticket::{self, Deadline, Sla, TicketEvent};
use crest_proto::{
    AgentId, ConversationId, CustomerId, Envelope, MergeId, MessageId, StreamId, TenantId, TicketId,
};

/// Set to `1` to write golden files that are missing (existing files are never overwritten).
const UPDATE_ENV: &str = "CREST_UPDATE_GOLDEN";

/// Hex digits per line in a golden file.
const HEX_LINE_WIDTH: usize = 64;

/// The fixed "decision time" of the samples: 2024-11-21T12:00:00Z.
const TIMESTAMP_MS: u64 = 1_732_190_400_000;

/// The stream position of every sample.
const SEQ: u64 = 7;

/// A ULID as an integer: 48 bits of milliseconds, then 80 bits of randomness.
const fn ulid(timestamp_ms: u64, random: u128) -> u128 {
    ((timestamp_ms as u128) << 80) | (random & ((1 << 80) - 1))
}

// ---------------------------------------------------------------------------------------------
// Samples
// ---------------------------------------------------------------------------------------------

fn tenant() -> TenantId {
    TenantId::new("acme").expect("`acme` is a valid tenant id")
}

fn conversation() -> ConversationId {
    ConversationId::from_parts(
        tenant(),
        ulid(TIMESTAMP_MS - 60_000, 0x5EED_0000_0000_0000_C0DE),
    )
}

fn message(n: u128) -> MessageId {
    MessageId::from_parts(tenant(), ulid(TIMESTAMP_MS, 0xBEEF_0000_0000_0000_0000 + n))
}

fn customer() -> CustomerId {
    CustomerId::new(&tenant(), "c-10086@shop.example").expect("valid customer id")
}

fn agent() -> AgentId {
    AgentId::new(&tenant(), "agent-007").expect("valid agent id")
}

/// One sample per conversation event type, in a conversation stream.
fn conversation_samples() -> Vec<(ConversationEvent, StreamId)> {
    use ConversationEvent as E;
    let events = vec![
        E::Started(Started {
            conversation: conversation(),
            customer: customer(),
            channel: "web".to_owned(),
        }),
        E::CustomerMessageReceived(CustomerMessageReceived {
            message: message(1),
            channel: "web".to_owned(),
            channel_message_id: "m-0001".to_owned(),
            text: "你好，我的订单 #A1024 还没有发货，能帮我查一下吗？".to_owned(),
        }),
        E::BotReplied(BotReplied {
            message: message(2),
            in_reply_to: message(1),
            text: "您的订单 #A1024 已于今天上午出库，预计 2 天内送达。".to_owned(),
            intent: Some("order_status".to_owned()),
            confidence: 0.875,
            emotion: Some(Emotion {
                label: "anxiety".to_owned(),
                score: 0.75,
            }),
            citations: vec![
                Citation {
                    document_id: "kb-shipping-001".to_owned(),
                    title: "发货与配送时效".to_owned(),
                    version: 3,
                    start: 120,
                    end: 348,
                },
                Citation {
                    document_id: "kb-orders-017".to_owned(),
                    title: "Order tracking".to_owned(),
                    version: 12,
                    start: 0,
                    end: 96,
                },
            ],
        }),
        E::HandoffRequested(HandoffRequestedV2 {
            reason: HandoffReason::Escalation("客户连续两次表达不满".to_owned()),
            group: Some("after-sales".to_owned()),
            customer: Some(customer()),
            summary: summary(),
            take_over_by: Some(other_agent()),
        }),
        E::AgentAssigned(AgentAssigned { agent: agent() }),
        E::AgentReplied(AgentReplied {
            message: message(3),
            agent: agent(),
            agent_message_id: "a-0001".to_owned(),
            text: "已为您加急处理，快递单号稍后短信通知。".to_owned(),
            internal: true,
        }),
        E::Resolved(Resolved { by: Some(agent()) }),
        E::Closed(ClosedV2 {
            reason: "resolved".to_owned(),
            customer: Some(customer()),
        }),
        E::CsatRated(CsatRated {
            score: 5,
            comment: Some("服务很好，谢谢！".to_owned()),
        }),
        E::SystemNotice(SystemNotice {
            message: message(4),
            text: "您前面还有 3 位客户在排队。".to_owned(),
        }),
        E::HandoffDeclined(HandoffDeclined {
            reason: "queue_full".to_owned(),
        }),
        E::ProactiveSent(ProactiveSent {
            message: message(5),
            text: "您的包裹延误了，我们正在跟进。Your parcel is delayed; we are on it.".to_owned(),
            trigger: "shipment_delayed".to_owned(),
            trigger_id: "evt-20261111-0001".to_owned(),
        }),
        E::AfterSalesRequested(AfterSalesRequested {
            customer: customer(),
            kind: "refund".to_owned(),
            text: "我要退款，订单 #A1024".to_owned(),
        }),
        E::LeadProgressed(LeadProgressed {
            intent: "product_inquiry".to_owned(),
            name: Some("王小明".to_owned()),
            phone: None,
        }),
        E::LeadCaptured(LeadCaptured {
            customer: customer(),
            intent: "product_inquiry".to_owned(),
            name: "王小明".to_owned(),
            phone: "13800138000".to_owned(),
            channel: "web".to_owned(),
        }),
    ];
    let stream = StreamId::conversation(&conversation());
    events
        .into_iter()
        .map(|event| (event, stream.clone()))
        .collect()
}

/// One sample per customer event type, in a customer stream.
fn customer_samples() -> Vec<(CustomerEvent, StreamId)> {
    let events = vec![
        CustomerEvent::ConversationOpened(ConversationOpened {
            conversation: conversation(),
        }),
        CustomerEvent::ConversationEnded(ConversationEnded {
            conversation: conversation(),
        }),
        CustomerEvent::IdentityRecorded(IdentityRecorded {
            identity: Identity {
                kind: IdentityKind::Channel,
                channel: Some("wechat".to_owned()),
                value: "oX9a-openid-7".to_owned(),
            },
            verified: false,
        }),
        CustomerEvent::MergeInvolved(MergeInvolved { merge: merge() }),
    ];
    let stream = StreamId::customer(&customer());
    events
        .into_iter()
        .map(|event| (event, stream.clone()))
        .collect()
}

fn summary() -> HandoffSummary {
    HandoffSummary {
        reason: "escalation: 客户连续两次表达不满".to_owned(),
        intent: Some("refund_request".to_owned()),
        emotion: Some(Emotion {
            label: "anger".to_owned(),
            score: 0.875,
        }),
        language: Some("zh".to_owned()),
        bot_intents: vec!["order_status".to_owned(), "refund_request".to_owned()],
        orders: vec!["A1024".to_owned()],
        last_customer_text: "我要退款，马上！".to_owned(),
    }
}

fn other_customer() -> CustomerId {
    CustomerId::new(&tenant(), "wx-oX9a-openid-7").expect("valid customer id")
}

fn merge() -> MergeId {
    MergeId::from_parts(tenant(), ulid(TIMESTAMP_MS, 0x3E76_0000_0000_0000_0001))
}

fn other_agent() -> AgentId {
    AgentId::new(&tenant(), "agent-042").expect("valid agent id")
}

fn ticket() -> TicketId {
    TicketId::from_parts(tenant(), ulid(TIMESTAMP_MS, 0x71C4_0000_0000_0000_0001))
}

/// One sample per desk event type, in the tenant's desk stream.
#[allow(clippy::too_many_lines)]
fn desk_samples() -> Vec<(DeskEvent, StreamId)> {
    use DeskEvent as E;
    let events = vec![
        E::AgentProfileSet(AgentProfileSet {
            agent: agent(),
            groups: vec!["after_sales".to_owned(), "general".to_owned()],
            capacity: 4,
            languages: vec!["zh".to_owned(), "en".to_owned()],
        }),
        E::PresenceChanged(PresenceChanged {
            agent: agent(),
            status: Presence::Away,
            reason: "connection_lost".to_owned(),
        }),
        E::AgentConnectionChanged(AgentConnectionChanged {
            agent: agent(),
            connected: false,
            away_at_ms: Some(TIMESTAMP_MS + 60_000),
        }),
        E::CustomerTierSet(CustomerTierSet {
            customer: customer(),
            tier: Tier::Vip,
        }),
        E::RoutingTableSet(RoutingTableSet {
            routes: vec![
                ("product_info".to_owned(), "pre_sales".to_owned()),
                ("refund_request".to_owned(), "after_sales".to_owned()),
            ],
            default_group: "general".to_owned(),
        }),
        E::GroupConfigured(GroupConfigured {
            group: "pre_sales".to_owned(),
            overflow_to: Some("general".to_owned()),
            overflow_after_s: 180,
            max_waiting: 500,
            offer_timeout_s: 30,
        }),
        E::ChatQueued(ChatQueued {
            conversation: conversation(),
            customer: customer(),
            group: "after_sales".to_owned(),
            priority: 140,
            reasons: vec![
                "vip +100".to_owned(),
                "anger +40".to_owned(),
                "handoff: escalation: 客户连续两次表达不满".to_owned(),
            ],
            handoff_seq: 12,
            summary: summary(),
            waiting_since_ms: TIMESTAMP_MS - 30_000,
        }),
        E::ChatOffered(ChatOffered {
            conversation: conversation(),
            group: "after_sales".to_owned(),
            agent: agent(),
            expires_at_ms: TIMESTAMP_MS + 30_000,
            candidates: vec![
                Candidate {
                    agent: agent(),
                    free: 3,
                    idle_since_ms: TIMESTAMP_MS - 600_000,
                },
                Candidate {
                    agent: other_agent(),
                    free: 1,
                    idle_since_ms: TIMESTAMP_MS - 60_000,
                },
            ],
            reason: "priority 170 (vip +100, anger +40; waited 30 s); agent-007 has the most free \
                     capacity (3) and the longest idle among 2 candidate(s)"
                .to_owned(),
        }),
        E::OfferWithdrawn(OfferWithdrawn {
            conversation: conversation(),
            agent: agent(),
            reason: "expired".to_owned(),
        }),
        E::ChatAssigned(ChatAssigned {
            conversation: conversation(),
            agent: agent(),
            reason: "transfer".to_owned(),
            from: Some(other_agent()),
        }),
        E::ChatOverflowed(ChatOverflowed {
            conversation: conversation(),
            from: "pre_sales".to_owned(),
            to: "general".to_owned(),
        }),
        E::ChatRefused(ChatRefusedV2 {
            conversation: conversation(),
            group: "general".to_owned(),
            reason: "queue_full".to_owned(),
            handoff_seq: 12,
            text: "当前排队已满，我们已为您创建工单。".to_owned(),
        }),
        E::CustomerNotified(CustomerNotified {
            conversation: conversation(),
            text: "您正在排队等待人工客服，当前排在第 2 位。".to_owned(),
        }),
        E::ChatEnded(ChatEnded {
            conversation: conversation(),
            agent: Some(agent()),
            reason: "resolved".to_owned(),
        }),
        E::TicketCreated(TicketCreated {
            ticket: ticket(),
            kind: "refund".to_owned(),
            subject: "订单 #A1024 申请退款".to_owned(),
            customer: Some(customer()),
            conversation: Some(conversation()),
            assignee: Some(agent()),
            created_by: "bot".to_owned(),
            first_response_due_ms: TIMESTAMP_MS + 3_600_000,
            resolution_due_ms: TIMESTAMP_MS + 86_400_000,
        }),
        E::TicketStatusChanged(TicketStatusChanged {
            ticket: ticket(),
            status: TicketStatus::Pending,
        }),
        E::TicketAssigned(TicketAssigned {
            ticket: ticket(),
            assignee: Some(other_agent()),
        }),
        E::TicketCommented(TicketCommented {
            ticket: ticket(),
            author: "agent:agent-007".to_owned(),
            text: "已联系仓库，退款将在 3 个工作日内到账。".to_owned(),
            public: true,
        }),
        E::TicketLinked(TicketLinked {
            ticket: ticket(),
            conversation: conversation(),
        }),
        E::SlaBreached(SlaBreached {
            ticket: ticket(),
            sla: "first_response".to_owned(),
            due_ms: TIMESTAMP_MS + 3_600_000,
        }),
        E::TicketTracked(TicketTracked {
            ticket: ticket(),
            kind: "callback".to_owned(),
            conversations: vec![conversation()],
            deadlines: pending(),
        }),
        E::TicketUntracked(TicketUntracked { ticket: ticket() }),
        E::TicketDeadlineReached(TicketDeadlineReached {
            ticket: ticket(),
            sla: Sla::Resolution,
            due_ms: TIMESTAMP_MS + 86_400_000,
        }),
        E::CustomersMerged(CustomersMerged {
            merge: merge(),
            from: other_customer(),
            into: customer(),
            reason: "同一位顾客：微信和网页 / same buyer on WeChat and web".to_owned(),
            evidence: MergeEvidence {
                kind: EvidenceKind::VerifiedPhone,
                value: "+8613800138000".to_owned(),
            },
            by: "supervisor:key-01".to_owned(),
        }),
        E::CustomerMergeUndone(CustomerMergeUndone {
            merge: merge(),
            from: other_customer(),
            into: customer(),
            by: "admin:key-02".to_owned(),
        }),
    ];
    let stream = StreamId::desk(&tenant());
    events
        .into_iter()
        .map(|event| (event, stream.clone()))
        .collect()
}

/// One sample per directory event type, in the node's desk directory stream.
fn agent_samples() -> Vec<(AgentEvent, StreamId)> {
    use AgentEvent as E;
    let events = vec![
        E::ConnectionOpened(ConnectionOpened {
            node: "node-a".to_owned(),
            on_node: 2,
            total: 3,
        }),
        E::ConnectionClosed(ConnectionClosed {
            node: "node-a".to_owned(),
            on_node: 1,
            total: 2,
        }),
        E::ProfileRecorded(ProfileRecorded {
            groups: vec!["after_sales".to_owned(), "general".to_owned()],
            capacity: 3,
            languages: vec!["zh".to_owned(), "en".to_owned()],
        }),
        E::StatusRecorded(StatusRecorded {
            status: Presence::Away,
            reason: "connection_lost".to_owned(),
        }),
        E::ChatTaken(ChatTaken {
            conversation: conversation(),
            reason: "accepted".to_owned(),
        }),
        E::ChatReleased(ChatReleased {
            conversation: conversation(),
            reason: "resolved".to_owned(),
            handle_ms: 184_250,
        }),
        E::MessageWritten(MessageWritten {
            conversation: conversation(),
            internal: true,
        }),
        E::TicketAssigned(crest_proto::agent::TicketAssigned { ticket: ticket() }),
        E::TicketUnassigned(crest_proto::agent::TicketUnassigned { ticket: ticket() }),
    ];
    let stream = StreamId::agent(&agent());
    events
        .into_iter()
        .map(|event| (event, stream.clone()))
        .collect()
}

fn pending() -> Vec<Deadline> {
    vec![
        Deadline {
            sla: Sla::FirstResponse,
            due_ms: TIMESTAMP_MS + 3_600_000,
        },
        Deadline {
            sla: Sla::Resolution,
            due_ms: TIMESTAMP_MS + 86_400_000,
        },
    ]
}

/// One sample per ticket event type, in the ticket's stream.
fn ticket_samples() -> Vec<(TicketEvent, StreamId)> {
    use TicketEvent as E;
    let events = vec![
        E::Opened(ticket::Opened {
            kind: "refund".to_owned(),
            subject: "订单 A1024 退款 / refund for order A1024".to_owned(),
            customer: Some(customer()),
            conversation: Some(conversation()),
            assignee: Some(agent()),
            created_by: "bot".to_owned(),
            first_response_due_ms: TIMESTAMP_MS + 3_600_000,
            resolution_due_ms: TIMESTAMP_MS + 86_400_000,
        }),
        E::StatusChanged(ticket::StatusChanged {
            from: TicketStatus::Solved,
            status: TicketStatus::Open,
            kind: "refund".to_owned(),
            conversations: vec![conversation()],
            pending: pending(),
        }),
        E::Assigned(ticket::Assigned {
            assignee: Some(other_agent()),
            previous: Some(agent()),
        }),
        E::Commented(ticket::Commented {
            author: "agent:agent-007".to_owned(),
            text: "已联系仓库，退款将在 3 个工作日内到账。".to_owned(),
            public: true,
            first_response: true,
        }),
        E::Linked(ticket::Linked {
            conversation: conversation(),
        }),
        E::SlaBreached(ticket::SlaBreached {
            sla: Sla::FirstResponse,
            due_ms: TIMESTAMP_MS + 3_600_000,
        }),
    ];
    let stream = StreamId::ticket(&ticket());
    events
        .into_iter()
        .map(|event| (event, stream.clone()))
        .collect()
}

fn access_samples() -> Vec<(AccessEvent, StreamId)> {
    use AccessEvent as E;
    let events = vec![
        E::KeyIssued(KeyIssued {
            key_id: "01JD5Q8R4S9T0V1W2X3Y4Z5A6B".to_owned(),
            role: AccessRole::Agent,
            agent: Some(agent()),
            name: Some("客服工作台 desk".to_owned()),
            key_hash: (0..32).collect(),
            issued_by: "operator".to_owned(),
        }),
        E::KeyRevoked(KeyRevoked {
            key_id: "01JD5Q8R4S9T0V1W2X3Y4Z5A6B".to_owned(),
            revoked_by: "key:01JD5Q8R4S9T0V1W2X3Y4Z5A6C".to_owned(),
        }),
        E::PasswordSet(PasswordSet {
            agent: agent(),
            role: AccessRole::Supervisor,
            password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA"
                .to_owned(),
            set_by: "key:01JD5Q8R4S9T0V1W2X3Y4Z5A6C".to_owned(),
        }),
        E::SessionOpened(SessionOpened {
            session_id: "01JD5Q8R4S9T0V1W2X3Y4Z5A6D".to_owned(),
            agent: agent(),
            role: AccessRole::Agent,
            token_hash: (32..64).collect(),
            expires_at_ms: TIMESTAMP_MS + 8 * 3_600_000,
        }),
        E::WidgetConfigured(WidgetConfigured {
            website_token: "cw.acme.AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8".to_owned(),
            origins: vec!["https://shop.example".to_owned()],
            identity_required: true,
            salt: (64..80).collect(),
            master_id: 1,
            configured_by: "key:01JD5Q8R4S9T0V1W2X3Y4Z5A6C".to_owned(),
        }),
    ];
    let stream = StreamId::access(&tenant());
    events
        .into_iter()
        .map(|event| (event, stream.clone()))
        .collect()
}

fn audit_samples() -> Vec<(AuditEvent, StreamId)> {
    vec![(
        AuditEvent::Recorded(Recorded {
            action: "routing_table.set".to_owned(),
            actor: "key:01JD5Q8R4S9T0V1W2X3Y4Z5A6C".to_owned(),
            target: "routing_table".to_owned(),
            detail: "refund_request → 售后 after_sales".to_owned(),
        }),
        StreamId::audit(&tenant()),
    )]
}

fn directory_samples() -> Vec<(DirectoryEvent, StreamId)> {
    vec![
        (
            DirectoryEvent::DeskOpened(DeskOpened { tenant: tenant() }),
            StreamId::desk_directory(),
        ),
        (
            DirectoryEvent::KbOpened(KbOpened { tenant: tenant() }),
            StreamId::knowledge_directory(),
        ),
        (
            DirectoryEvent::ChannelsOpened(ChannelsOpened { tenant: tenant() }),
            StreamId::channel_directory(),
        ),
    ]
}

fn channel_samples() -> Vec<(ChannelEvent, StreamId)> {
    let stream = StreamId::channels(&tenant());
    vec![
        (
            ChannelEvent::Configured(ChannelConfiguredV2 {
                name: "wx-main".to_owned(),
                kind: "wechat_oa".to_owned(),
                sealed_secret: (0_u8..44).collect(),
                master_id: 3,
                outbound_url: Some("https://api.weixin.qq.com".to_owned()),
                profile: Some("wechat_oa".to_owned()),
                max_attempts: 10,
                backoff_base_ms: 500,
                configured_by: "key:01JD5Q8R4S9T0V1W2X3Y4Z5A6C".to_owned(),
                app_id: Some("wx0123456789abcdef".to_owned()),
                sealed_app_secret: Some((100_u8..160).collect()),
            }),
            stream.clone(),
        ),
        (
            ChannelEvent::Removed(ChannelRemoved {
                name: "wx-main".to_owned(),
                removed_by: "operator".to_owned(),
            }),
            stream,
        ),
    ]
}

fn outbox_entry() -> OutboxQueued {
    OutboxQueued {
        id: message(3).to_string(),
        conversation: conversation(),
        customer: customer(),
        role: "bot".to_owned(),
        message: message(3),
        source_stream: StreamId::conversation(&conversation()),
        source_seq: 4,
        at_ms: TIMESTAMP_MS - 250,
    }
}

fn outbox_samples() -> Vec<(OutboxEvent, StreamId)> {
    let stream = StreamId::channel_outbox(&tenant(), "wx-main");
    vec![
        (OutboxEvent::Queued(outbox_entry()), stream.clone()),
        (
            OutboxEvent::Delivered(OutboxDelivered {
                id: message(3).to_string(),
                attempts: 3,
                status: 204,
            }),
            stream.clone(),
        ),
        (
            OutboxEvent::DeadLettered(OutboxDeadLettered {
                id: message(3).to_string(),
                attempts: 10,
                last_error: "status 503".to_owned(),
            }),
            stream.clone(),
        ),
        (
            OutboxEvent::Requeued(OutboxRequeued {
                entry: outbox_entry(),
                requeued_by: "session:01JD5Q8R4S9T0V1W2X3Y4Z5A6D".to_owned(),
            }),
            stream,
        ),
    ]
}

fn proactive_rules_samples() -> Vec<(ProactiveRulesEvent, StreamId)> {
    vec![(
        ProactiveRulesEvent::RulesSet(ProactiveRulesSet {
            rules_json: r#"{"timezone":"Asia/Shanghai","quiet_hours":{"from":"22:00","to":"08:00"},"max_per_customer_per_day":3,"rules":[{"on":"shipment_delayed","text_zh":"包裹延误","text_en":"Parcel delayed"}]}"#.to_owned(),
            set_by: "key:01JD5Q8R4S9T0V1W2X3Y4Z5A6C".to_owned(),
        }),
        StreamId::proactive_rules(&tenant()),
    )]
}

fn proactive_samples() -> Vec<(ProactiveEvent, StreamId)> {
    vec![(
        ProactiveEvent::Decided(ProactiveDecided {
            id: "evt-20261111-0001".to_owned(),
            trigger: "shipment_delayed".to_owned(),
            order: Some("SO-20261111-0042".to_owned()),
            decision: "sent".to_owned(),
            reason: "rule_matched".to_owned(),
            conversation: Some(conversation()),
            message: Some(message(5)),
            local_day: "2026-11-11".to_owned(),
            occurred_at_ms: TIMESTAMP_MS - 500,
        }),
        StreamId::proactive(&customer()),
    )]
}

fn kb_samples() -> Vec<(KbEvent, StreamId)> {
    let stream = StreamId::knowledge(&tenant());
    vec![
        (
            KbEvent::DocumentPublished(DocumentPublished {
                document_id: "returns-policy".to_owned(),
                version: 2,
                title: "退货政策 Returns".to_owned(),
                format: "markdown".to_owned(),
                structure: "markdown".to_owned(),
                lang: "mixed".to_owned(),
                text: "# 退货政策\n\n签收后七天内可无理由退货。Returns within 7 days.\n".to_owned(),
                effective_from: Some("2026-10-20".to_owned()),
                effective_to: Some("2026-11-12".to_owned()),
                published_by: "key:01JD5Q8R4S9T0V1W2X3Y4Z5A6C".to_owned(),
            }),
            stream.clone(),
        ),
        (
            KbEvent::DocumentDeleted(DocumentDeleted {
                document_id: "returns-policy".to_owned(),
                version: 2,
                deleted_by: "session:01JD5Q8R4S9T0V1W2X3Y4Z5A6D".to_owned(),
            }),
            stream,
        ),
    ]
}

fn intent_samples() -> Vec<(IntentEvent, StreamId)> {
    let stream = StreamId::intents(&tenant());
    vec![
        (
            IntentEvent::ExamplesSet(ExamplesSet {
                intent: "gift_wrap".to_owned(),
                examples: vec![
                    "能帮我礼品包装吗".to_owned(),
                    "can you gift wrap it".to_owned(),
                ],
                set_by: "session:01JD5Q8R4S9T0V1W2X3Y4Z5A6D".to_owned(),
            }),
            stream.clone(),
        ),
        (
            IntentEvent::ModelActivated(ModelActivated {
                model: "m-00ff00ff00ff00ff".to_owned(),
                accuracy: 0.875,
                macro_f1: 0.75,
                held_out: 96,
                trained_on: 870,
                activated_by: "key:01JD5Q8R4S9T0V1W2X3Y4Z5A6C".to_owned(),
            }),
            stream,
        ),
    ]
}

fn lead_policy_samples() -> Vec<(LeadPolicyEvent, StreamId)> {
    vec![(
        LeadPolicyEvent::PolicySet(LeadPolicySet {
            intents: vec!["product_inquiry".to_owned(), "price_inquiry".to_owned()],
            ask_name_zh: "请问怎么称呼您？".to_owned(),
            ask_name_en: "May I have your name?".to_owned(),
            ask_phone_zh: "请留下您的手机号。".to_owned(),
            ask_phone_en: "Which phone number can we call you on?".to_owned(),
            thanks_zh: "谢谢，顾问会尽快联系您。".to_owned(),
            thanks_en: "Thank you, an advisor will call you soon.".to_owned(),
            set_by: "key:01JD5Q8R4S9T0V1W2X3Y4Z5A6C".to_owned(),
        }),
        StreamId::lead_policy(&tenant()),
    )]
}

/// The sample's envelope, every field fixed. Nothing depends on the sample's position in its
/// list, so samples can be added or reordered without touching other golden files.
fn envelope<E: DomainEvent>(event: &E, stream: StreamId) -> Envelope {
    let seq = SEQ;
    Envelope {
        codec: CODEC_BINCODE_V1,
        event_type: event.event_type().to_owned(),
        schema_version: event.schema_version(),
        stream,
        seq,
        timestamp_ms: TIMESTAMP_MS + seq * 1_000,
        event_id: ulid(
            TIMESTAMP_MS + seq * 1_000,
            0xE7E7_0000_0000_0000_0000 + u128::from(seq),
        ),
        meta: EventMeta {
            causation_id: Some(format!("cmd-{seq:04}")),
            correlation_id: Some("req-7f3a9c".to_owned()),
            idempotency_key: Some(format!("web:m-{seq:04}")),
        },
        payload: event.encode_payload().expect("sample payload encodes"),
    }
}

// ---------------------------------------------------------------------------------------------
// Golden files
// ---------------------------------------------------------------------------------------------

fn golden_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("golden")
}

fn golden_file_name(event_type: &str, schema_version: u16) -> String {
    format!("{event_type}.v{schema_version}.hex")
}

fn update_requested() -> bool {
    std::env::var(UPDATE_ENV).is_ok_and(|value| value == "1")
}

/// Lowercase hex, [`HEX_LINE_WIDTH`] digits a line, each line ending in `\n`.
fn to_hex(bytes: &[u8]) -> String {
    let mut text = String::with_capacity(bytes.len() * 2 + bytes.len() / 32 + 1);
    for (index, byte) in bytes.iter().enumerate() {
        if index > 0 && index.is_multiple_of(HEX_LINE_WIDTH / 2) {
            text.push('\n');
        }
        write!(text, "{byte:02x}").expect("writing to a String cannot fail");
    }
    text.push('\n');
    text
}

/// Parses hex written by [`to_hex`]; line breaks and other ASCII whitespace are ignored.
fn from_hex(text: &str) -> Result<Vec<u8>, String> {
    let digits: Vec<u8> = text
        .bytes()
        .filter(|byte| !byte.is_ascii_whitespace())
        .collect();
    if !digits.len().is_multiple_of(2) {
        return Err(format!("odd number of hex digits ({})", digits.len()));
    }
    let nibble = |digit: u8| match digit {
        b'0'..=b'9' => Ok(digit - b'0'),
        b'a'..=b'f' => Ok(digit - b'a' + 10),
        _ => Err(format!(
            "{:?} is not a lowercase hex digit",
            char::from(digit)
        )),
    };
    digits
        .chunks_exact(2)
        .map(|pair| Ok((nibble(pair[0])? << 4) | nibble(pair[1])?))
        .collect()
}

/// Every sample, as (golden file name, envelope bytes), across all event enums.
fn all_golden_samples() -> Vec<(String, Vec<u8>)> {
    fn encoded<E: DomainEvent>(
        samples: Vec<(E, StreamId)>,
    ) -> impl Iterator<Item = (String, Vec<u8>)> {
        samples.into_iter().map(|(event, stream)| {
            let name = golden_file_name(event.event_type(), event.schema_version());
            let bytes = envelope(&event, stream)
                .to_bytes()
                .expect("sample envelope encodes");
            (name, bytes)
        })
    }
    encoded(conversation_samples())
        .chain(encoded(customer_samples()))
        .chain(encoded(desk_samples()))
        .chain(encoded(directory_samples()))
        .chain(encoded(agent_samples()))
        .chain(encoded(ticket_samples()))
        .chain(encoded(access_samples()))
        .chain(encoded(audit_samples()))
        .chain(encoded(kb_samples()))
        .chain(encoded(intent_samples()))
        .chain(encoded(channel_samples()))
        .chain(encoded(outbox_samples()))
        .chain(encoded(proactive_rules_samples()))
        .chain(encoded(proactive_samples()))
        .chain(encoded(lead_policy_samples()))
        .collect()
}

/// With `CREST_UPDATE_GOLDEN=1`, writes every golden file that does not exist yet, once per test
/// run, before any test reads the directory. Existing files are never touched.
fn write_missing_golden_files() {
    static DONE: OnceLock<()> = OnceLock::new();
    if !update_requested() {
        return;
    }
    DONE.get_or_init(|| {
        fs::create_dir_all(golden_dir()).expect("create tests/golden");
        for (name, bytes) in all_golden_samples() {
            let path = golden_dir().join(&name);
            // `create_new` refuses to open an existing file, so nothing is ever overwritten.
            match OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(mut file) => {
                    file.write_all(to_hex(&bytes).as_bytes())
                        .expect("write golden file");
                    eprintln!("{UPDATE_ENV}: wrote {}", path.display());
                }
                Err(error) if error.kind() == ErrorKind::AlreadyExists => {}
                Err(error) => panic!("cannot create {}: {error}", path.display()),
            }
        }
    });
}

/// Checks one sample against its golden file; returns a description of each problem found.
fn check_sample<E: DomainEvent + PartialEq + Debug>(event: &E, stream: StreamId) -> Vec<String> {
    let expected = envelope(event, stream);
    let name = golden_file_name(&expected.event_type, expected.schema_version);
    let golden = match fs::read_to_string(golden_dir().join(&name)) {
        Err(error) => {
            return vec![format!(
                "{name}: cannot read ({error}); new types need one: run with {UPDATE_ENV}=1"
            )];
        }
        Ok(text) => match from_hex(&text) {
            Ok(bytes) => bytes,
            Err(error) => return vec![format!("{name}: not valid hex: {error}")],
        },
    };
    let mut problems = Vec::new();

    // (1) The encoding is frozen byte for byte.
    let encoded = expected.to_bytes().expect("sample envelope encodes");
    if encoded != golden {
        let first_difference = encoded
            .iter()
            .zip(&golden)
            .position(|(a, b)| a != b)
            .unwrap_or(encoded.len().min(golden.len()));
        problems.push(format!(
            "{name}: encoding changed ({} bytes now, {} in the file, first difference at byte \
             {first_difference}); never edit a persisted payload, add a schema version\n  now: {}",
            encoded.len(),
            golden.len(),
            to_hex(&encoded).trim_end().replace('\n', "\n       "),
        ));
    }

    // (2) The golden bytes decode to exactly the sample envelope and event.
    match Envelope::from_bytes(&golden) {
        Err(error) => problems.push(format!("{name}: envelope does not decode: {error}")),
        Ok(decoded) => {
            if decoded != expected {
                problems.push(format!(
                    "{name}: decoded envelope differs\n  got:  {decoded:?}\n  want: {expected:?}"
                ));
            }
            match decoded.decode_event::<E>() {
                Ok(got) if got == *event => {}
                Ok(got) => problems.push(format!(
                    "{name}: decoded event differs\n  got:  {got:?}\n  want: {event:?}"
                )),
                Err(error) => problems.push(format!("{name}: payload does not decode: {error}")),
            }
        }
    }
    problems
}

/// Checks every sample of one event enum; fails once, listing every problem.
fn check_samples<E: DomainEvent + PartialEq + Debug>(samples: Vec<(E, StreamId)>) {
    write_missing_golden_files();
    let problems: Vec<String> = samples
        .into_iter()
        .flat_map(|(event, stream)| check_sample(&event, stream))
        .collect();
    assert!(
        problems.is_empty(),
        "golden file mismatches:\n{}",
        problems.join("\n")
    );
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

#[test]
fn conversation_events_match_golden_files() {
    check_samples(conversation_samples());
}

#[test]
fn customer_events_match_golden_files() {
    check_samples(customer_samples());
}

#[test]
fn desk_events_match_golden_files() {
    check_samples(desk_samples());
}

#[test]
fn directory_events_match_golden_files() {
    check_samples(directory_samples());
}

#[test]
fn agent_events_match_golden_files() {
    check_samples(agent_samples());
}

#[test]
fn ticket_events_match_golden_files() {
    check_samples(ticket_samples());
}

#[test]
fn access_events_match_golden_files() {
    check_samples(access_samples());
}

#[test]
fn audit_events_match_golden_files() {
    check_samples(audit_samples());
}

#[test]
fn kb_events_match_golden_files() {
    check_samples(kb_samples());
}

#[test]
fn intent_events_match_golden_files() {
    check_samples(intent_samples());
}

#[test]
fn channel_events_match_golden_files() {
    check_samples(channel_samples());
}

#[test]
fn outbox_events_match_golden_files() {
    check_samples(outbox_samples());
}

#[test]
fn proactive_rules_events_match_golden_files() {
    check_samples(proactive_rules_samples());
}

#[test]
fn proactive_events_match_golden_files() {
    check_samples(proactive_samples());
}

#[test]
fn lead_policy_events_match_golden_files() {
    check_samples(lead_policy_samples());
}

/// Every known type has exactly one sample and one golden file, and the golden directory holds
/// nothing else: adding an event type or version without a golden file fails here.
#[test]
fn every_known_type_has_a_sample_and_a_golden_file() {
    write_missing_golden_files();

    let known: Vec<(&str, u16)> = ConversationEvent::KNOWN_TYPES
        .iter()
        .chain(CustomerEvent::KNOWN_TYPES)
        .chain(DeskEvent::KNOWN_TYPES)
        .chain(DirectoryEvent::KNOWN_TYPES)
        .chain(AgentEvent::KNOWN_TYPES)
        .chain(TicketEvent::KNOWN_TYPES)
        .chain(AccessEvent::KNOWN_TYPES)
        .chain(AuditEvent::KNOWN_TYPES)
        .chain(KbEvent::KNOWN_TYPES)
        .chain(IntentEvent::KNOWN_TYPES)
        .chain(ChannelEvent::KNOWN_TYPES)
        .chain(OutboxEvent::KNOWN_TYPES)
        .chain(ProactiveRulesEvent::KNOWN_TYPES)
        .chain(ProactiveEvent::KNOWN_TYPES)
        .chain(LeadPolicyEvent::KNOWN_TYPES)
        .copied()
        .collect();
    let expected: BTreeSet<String> = known
        .iter()
        .map(|&(event_type, version)| golden_file_name(event_type, version))
        .collect();
    assert_eq!(
        expected.len(),
        known.len(),
        "KNOWN_TYPES lists a type twice: {known:?}"
    );

    let sampled: Vec<String> = all_golden_samples()
        .into_iter()
        .map(|(name, _)| name)
        .collect();
    let sampled_set: BTreeSet<String> = sampled.iter().cloned().collect();
    assert_eq!(
        sampled_set.len(),
        sampled.len(),
        "two samples share a type: {sampled:?}"
    );
    assert_eq!(
        sampled_set, expected,
        "the samples must cover KNOWN_TYPES exactly (left: sampled, right: known)"
    );

    let on_disk: BTreeSet<String> = fs::read_dir(golden_dir())
        .expect("read tests/golden")
        .map(|entry| {
            let entry = entry.expect("read tests/golden entry");
            entry
                .file_name()
                .into_string()
                .expect("golden file names are UTF-8")
        })
        .collect();
    let legacy: BTreeSet<String> = ConversationEvent::LEGACY_TYPES
        .iter()
        .chain(DeskEvent::LEGACY_TYPES)
        .chain(ChannelEvent::LEGACY_TYPES)
        .map(|&(event_type, version)| golden_file_name(event_type, version))
        .collect();
    assert!(
        legacy.is_disjoint(&expected),
        "a legacy version is also current"
    );
    let expected: BTreeSet<String> = expected.union(&legacy).cloned().collect();
    let missing: Vec<&String> = expected.difference(&on_disk).collect();
    let unknown: Vec<&String> = on_disk.difference(&expected).collect();
    assert!(
        missing.is_empty() && unknown.is_empty(),
        "golden files out of step with KNOWN_TYPES\n  \
         missing (run with {UPDATE_ENV}=1): {missing:?}\n  \
         not a known type (a stray file, or a type dropped from KNOWN_TYPES; persisted types \
         must stay decodable): {unknown:?}"
    );
}

/// Superseded versions keep their golden files, which must still decode: into the current
/// payload, through the upcaster.
#[test]
fn legacy_versions_still_decode_through_their_upcasters() {
    fn check<E: DomainEvent + PartialEq + Debug>(name: &str, legacy_payload: &[u8], want: &E) {
        let text = fs::read_to_string(golden_dir().join(name)).expect("legacy golden file");
        let bytes = from_hex(&text).expect("hex");
        let decoded = Envelope::from_bytes(&bytes).expect("envelope decodes");
        assert_eq!(
            decoded.payload, legacy_payload,
            "{name}: the legacy payload's encoding changed"
        );
        assert_eq!(
            &decoded.decode_event::<E>().expect("upcasts"),
            want,
            "{name}"
        );
    }
    let handoff_v1 = HandoffRequested {
        reason: HandoffReason::Escalation("客户连续两次表达不满".to_owned()),
        group: Some("after-sales".to_owned()),
    };
    check(
        "conversation.handoff_requested.v1.hex",
        &crest_proto::codec::encode(&handoff_v1).expect("encodes"),
        &ConversationEvent::HandoffRequested(HandoffRequestedV2 {
            reason: handoff_v1.reason.clone(),
            group: handoff_v1.group.clone(),
            customer: None,
            summary: HandoffSummary::from_reason(&handoff_v1.reason),
            take_over_by: None,
        }),
    );
    let closed_v1 = Closed {
        reason: "resolved".to_owned(),
    };
    check(
        "conversation.closed.v1.hex",
        &crest_proto::codec::encode(&closed_v1).expect("encodes"),
        &ConversationEvent::Closed(ClosedV2 {
            reason: "resolved".to_owned(),
            customer: None,
        }),
    );
    let configured_v1 = ChannelConfigured {
        name: "wx-main".to_owned(),
        kind: "webhook".to_owned(),
        sealed_secret: (0_u8..44).collect(),
        master_id: 3,
        outbound_url: Some("https://hooks.shop.example/crest".to_owned()),
        profile: Some("wechat_oa".to_owned()),
        max_attempts: 10,
        backoff_base_ms: 500,
        configured_by: "key:01JD5Q8R4S9T0V1W2X3Y4Z5A6C".to_owned(),
    };
    check(
        "channel.configured.v1.hex",
        &crest_proto::codec::encode(&configured_v1).expect("encodes"),
        &ChannelEvent::Configured(ChannelConfiguredV2 {
            name: configured_v1.name.clone(),
            kind: configured_v1.kind.clone(),
            sealed_secret: configured_v1.sealed_secret.clone(),
            master_id: 3,
            outbound_url: configured_v1.outbound_url.clone(),
            profile: configured_v1.profile.clone(),
            max_attempts: 10,
            backoff_base_ms: 500,
            configured_by: configured_v1.configured_by.clone(),
            app_id: None,
            sealed_app_secret: None,
        }),
    );
    let refused_v1 = ChatRefused {
        conversation: conversation(),
        group: "general".to_owned(),
        reason: "queue_full".to_owned(),
        handoff_seq: 12,
    };
    check(
        "desk.chat_refused.v1.hex",
        &crest_proto::codec::encode(&refused_v1).expect("encodes"),
        &DeskEvent::ChatRefused(ChatRefusedV2 {
            conversation: conversation(),
            group: "general".to_owned(),
            reason: "queue_full".to_owned(),
            handoff_seq: 12,
            text: String::new(),
        }),
    );
}

/// `HandoffReason` gained `Transferred` at the end: old variants keep their bytes (the golden
/// `conversation.handoff_requested` sample above is an `Escalation`), the new one round-trips.
#[test]
fn a_transferred_handoff_round_trips() {
    let event = ConversationEvent::HandoffRequested(HandoffRequestedV2 {
        reason: HandoffReason::Transferred("agent-007".to_owned()),
        group: Some("after_sales".to_owned()),
        customer: Some(customer()),
        summary: HandoffSummary::from_reason(&HandoffReason::Transferred("agent-007".to_owned())),
        take_over_by: None,
    });
    let bytes = envelope(&event, StreamId::conversation(&conversation()))
        .to_bytes()
        .expect("encodes");
    let decoded = Envelope::from_bytes(&bytes)
        .expect("envelope decodes")
        .decode_event::<ConversationEvent>()
        .expect("payload decodes");
    assert_eq!(decoded, event);
}

#[test]
fn hex_round_trips_and_wraps_lines() {
    let bytes: Vec<u8> = (0..=255).collect();
    let text = to_hex(&bytes);
    assert!(text.ends_with('\n'));
    assert!(text.lines().all(|line| line.len() == HEX_LINE_WIDTH));
    assert_eq!(from_hex(&text), Ok(bytes));
    assert_eq!(to_hex(&[]), "\n");
    assert_eq!(
        to_hex(&[0xab; 33])
            .lines()
            .map(str::len)
            .collect::<Vec<_>>(),
        [64, 2]
    );
    assert!(from_hex("abc").is_err());
    assert!(from_hex("AB").is_err());
    assert!(from_hex("zz").is_err());
}
