//! How one outbox entry becomes an HTTP request, and how the receiver's answer is judged.
//!
//! The durable outbox ([`super::outbox`]) knows nothing of what it delivers: it keeps entries,
//! retries them with backoff and dead-letters them. What goes over the wire is the
//! [`Transport`]'s business, given the entry and its [`Payload`] (read from the conversation event
//! the entry names):
//!
//! - [`Transport::Webhook`]: a channel's outbound message as Crest's JSON, signed with
//!   `X-Crest-Timestamp` and `X-Crest-Signature` ([`signature`]); any 2xx is accepted.
//! - [`Transport::Crm`]: a captured lead for the tenant's CRM, in one of the [`CrmFormat`]s. The
//!   chat platforms' robots answer HTTP 200 with an error code in the body when they refuse a
//!   message (bad signature, rate limit): a non-zero `errcode` or `code` is a failed attempt,
//!   retried like a 5xx.
//! - [`Transport::Wechat`]: a `wechat_oa` channel's replies through WeChat's customer-service API
//!   ([`super::wechat::WechatDelivery`]: the access token, the reply window, splitting, and a
//!   callback ticket for a reply the window refuses).
//!
//! [`deliver`] is the one attempt the engine makes, whatever the transport: a signed `POST` for
//! the webhook and CRM transports, the platform's client for WeChat.
//!
//! A new platform is a new variant (or [`CrmFormat`]) with its request and its judgement here;
//! the outbox engine stays as it is.

use std::sync::Arc;

use base64::Engine as _;
use crest_actors::ports::journal::EventJournal;
use crest_proto::channels::OutboxQueued;
use crest_proto::events::ConversationEvent;
use crest_proto::leads::LeadCaptured;
use ring::hmac;

use super::outbox::{DeliverySettings, REQUEST_TIMEOUT};
use super::signature;

/// What an outbox entry delivers (a message's text, or a captured lead), read from the
/// conversation event it names; it travels between nodes, so it is defined with the outbound port.
pub use crest_actors::ports::outbound::OutboxPayload as Payload;

/// The payload a conversation event holds, if it holds one.
pub fn payload_of(event: ConversationEvent) -> Result<Payload, String> {
    match event {
        ConversationEvent::BotReplied(replied) => Ok(Payload::Message(replied.text)),
        ConversationEvent::AgentReplied(replied) => Ok(Payload::Message(replied.text)),
        ConversationEvent::ProactiveSent(sent) => Ok(Payload::Message(sent.text)),
        ConversationEvent::LeadCaptured(lead) => Ok(Payload::Lead(lead)),
        _ => Err("the queued event holds nothing to deliver".to_owned()),
    }
}

/// The formats a CRM integration speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CrmFormat {
    /// Crest's own JSON (`{"id","type":"lead.captured",…}`), for a merchant's CRM endpoint.
    Generic,
    /// A WeCom (企业微信) group robot: a markdown message.
    Wecom,
    /// A Feishu (飞书) custom bot: a text message, signed with its `timestamp` and `sign`.
    Feishu,
    /// A DingTalk (钉钉) robot: a markdown message, signed with `timestamp` and `sign` query
    /// parameters.
    Dingtalk,
}

impl CrmFormat {
    /// Every format, in the API's order.
    pub const ALL: [Self; 4] = [Self::Generic, Self::Wecom, Self::Feishu, Self::Dingtalk];

    /// Parses `generic`, `wecom`, `feishu` or `dingtalk`.
    #[must_use]
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|format| format.as_str() == text)
    }

    /// The format's name (the API's and the metrics' label).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Generic => "generic",
            Self::Wecom => "wecom",
            Self::Feishu => "feishu",
            Self::Dingtalk => "dingtalk",
        }
    }
}

/// How an outbox's entries travel (see the module's documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// A channel's webhook.
    Webhook,
    /// A CRM integration.
    Crm(CrmFormat),
    /// A WeChat Official Account's customer-service API (the client and the profile are the
    /// [`DeliverySettings::wechat`]).
    Wechat,
}

/// What one delivery attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The receiver accepted the entry (its HTTP status).
    Delivered(u16),
    /// The platform refused the reply for its window; a `callback` ticket (this id) was opened for
    /// it instead: the entry is settled.
    ByTicket(String),
    /// Failed; worth another attempt later.
    Failed(String),
    /// Never going to pass: dead-lettered at once.
    Refused(String),
}

/// One attempt's result: its [`Verdict`] and the parts of a split text delivered so far (the next
/// attempt does not send them again).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempted {
    /// What it came to.
    pub verdict: Verdict,
    /// Parts delivered so far (0 for transports that do not split).
    pub sent_parts: usize,
}

impl From<Result<u16, String>> for Attempted {
    fn from(result: Result<u16, String>) -> Self {
        Self {
            verdict: result.map_or_else(Verdict::Failed, Verdict::Delivered),
            sent_parts: 0,
        }
    }
}

/// One delivery attempt of `entry` with `payload` under `settings` (`sent_parts`: parts a former
/// attempt delivered).
pub async fn deliver(
    settings: &DeliverySettings,
    http: &reqwest::Client,
    journal: &dyn EventJournal,
    entry: &OutboxQueued,
    payload: &Payload,
    sent_parts: usize,
) -> Attempted {
    let now_ms = crate::access::now_ms();
    match (settings.transport, payload) {
        (Transport::Wechat, Payload::Message(text)) => match &settings.wechat {
            Some(wechat) => {
                wechat
                    .deliver(journal, entry, text, sent_parts, now_ms)
                    .await
            }
            None => Err("the channel's WeChat client is not ready".to_owned()).into(),
        },
        (Transport::Wechat, _) => Attempted {
            verdict: Verdict::Refused("this outbox does not deliver such entries".to_owned()),
            sent_parts,
        },
        (transport, _) => post(transport, settings, http, entry, payload, now_ms)
            .await
            .into(),
    }
}

/// Posts one entry, signed, and judges the answer.
async fn post(
    transport: Transport,
    settings: &DeliverySettings,
    http: &reqwest::Client,
    entry: &OutboxQueued,
    payload: &Payload,
    now_ms: u64,
) -> Result<u16, String> {
    let outgoing = transport.outgoing(&settings.url, &settings.secret, entry, payload, now_ms)?;
    let mut request = http
        .post(&outgoing.url)
        .header("content-type", "application/json")
        .timeout(REQUEST_TIMEOUT);
    for (name, value) in crest_headers(&settings.secret, &outgoing.body, now_ms) {
        request = request.header(name, value);
    }
    let response = request
        .body(outgoing.body)
        .send()
        .await
        .map_err(|error| format!("request failed: {error}"))?;
    let status = response.status().as_u16();
    let answer = if transport.reads_answer() {
        response.text().await.unwrap_or_default()
    } else {
        String::new()
    };
    transport.judge(status, &answer)
}

/// One request, ready to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    /// Where it goes (the configured URL, with a platform's signature parameters added).
    pub url: String,
    /// The JSON body.
    pub body: String,
}

impl Transport {
    /// Whether the receiver's body must be read to judge the answer.
    #[must_use]
    pub fn reads_answer(self) -> bool {
        matches!(
            self,
            Self::Crm(CrmFormat::Wecom | CrmFormat::Feishu | CrmFormat::Dingtalk)
        )
    }

    /// The request delivering `entry` with `payload` to `url` at `now_ms`.
    pub fn outgoing(
        self,
        url: &str,
        secret: &[u8],
        entry: &OutboxQueued,
        payload: &Payload,
        now_ms: u64,
    ) -> Result<Outgoing, String> {
        let at = crate::http::views::rfc3339(entry.at_ms);
        match (self, payload) {
            (Self::Webhook, Payload::Message(text)) => Ok(Outgoing {
                url: url.to_owned(),
                body: serde_json::json!({
                    "id": entry.id,
                    "conversation": entry.conversation.to_string(),
                    "customer": entry.customer.key(),
                    "role": entry.role,
                    "text": text,
                    "at": at,
                })
                .to_string(),
            }),
            (Self::Crm(format), Payload::Lead(lead)) => {
                Ok(crm_request(format, url, secret, entry, lead, &at, now_ms))
            }
            _ => Err("this outbox does not deliver such entries".to_owned()),
        }
    }

    /// Judges the receiver's answer: `Ok(status)` when it accepted the entry.
    pub fn judge(self, status: u16, answer: &str) -> Result<u16, String> {
        if !(200..300).contains(&status) {
            return Err(format!("status {status}"));
        }
        if !self.reads_answer() {
            return Ok(status);
        }
        let Ok(parsed) = serde_json::from_str::<serde_json::Value>(answer) else {
            return Err(format!("status {status} with an answer that is not JSON"));
        };
        // WeCom and DingTalk say `errcode`, Feishu `code` (older Feishu bots `StatusCode`).
        let code = ["errcode", "code", "StatusCode"]
            .iter()
            .find_map(|field| parsed.get(*field).and_then(serde_json::Value::as_i64));
        match code {
            Some(0) | None => Ok(status),
            Some(code) => {
                let message = ["errmsg", "msg", "StatusMessage"]
                    .iter()
                    .find_map(|field| parsed.get(*field).and_then(serde_json::Value::as_str))
                    .unwrap_or_default();
                Err(format!("status {status}, code {code}: {message}"))
            }
        }
    }
}

/// The markdown of a lead, for people reading a group chat.
fn lead_markdown(entry: &OutboxQueued, lead: &LeadCaptured, at: &str) -> String {
    format!(
        "**新销售线索 New lead**\n> 姓名 Name: {}\n> 电话 Phone: {}\n> 意向 Intent: {}\n> 渠道 Channel: {}\n> 会话 Conversation: {}\n> 时间 At: {at}",
        lead.name, lead.phone, lead.intent, lead.channel, entry.conversation
    )
}

fn crm_request(
    format: CrmFormat,
    url: &str,
    secret: &[u8],
    entry: &OutboxQueued,
    lead: &LeadCaptured,
    at: &str,
    now_ms: u64,
) -> Outgoing {
    match format {
        CrmFormat::Generic => Outgoing {
            url: url.to_owned(),
            body: serde_json::json!({
                "id": entry.id,
                "type": "lead.captured",
                "tenant": entry.conversation.tenant().as_str(),
                "customer": entry.customer.key(),
                "conversation": entry.conversation.to_string(),
                "name": lead.name,
                "phone": lead.phone,
                "intent": lead.intent,
                "channel": lead.channel,
                "at": at,
            })
            .to_string(),
        },
        CrmFormat::Wecom => Outgoing {
            url: url.to_owned(),
            body: serde_json::json!({
                "msgtype": "markdown",
                "markdown": {"content": lead_markdown(entry, lead, at)},
            })
            .to_string(),
        },
        CrmFormat::Feishu => {
            let timestamp = (now_ms / 1000).to_string();
            Outgoing {
                url: url.to_owned(),
                body: serde_json::json!({
                    "timestamp": timestamp,
                    "sign": feishu_sign(secret, &timestamp),
                    "msg_type": "text",
                    "content": {"text": lead_markdown(entry, lead, at).replace("**", "").replace("> ", "")},
                })
                .to_string(),
            }
        }
        CrmFormat::Dingtalk => {
            let timestamp = now_ms.to_string();
            let signed = match reqwest::Url::parse(url) {
                Ok(mut parsed) => {
                    parsed
                        .query_pairs_mut()
                        .append_pair("timestamp", &timestamp)
                        .append_pair("sign", &dingtalk_sign(secret, &timestamp));
                    parsed.to_string()
                }
                Err(_) => url.to_owned(),
            };
            Outgoing {
                url: signed,
                body: serde_json::json!({
                    "msgtype": "markdown",
                    "markdown": {"title": "新销售线索 New lead", "text": lead_markdown(entry, lead, at)},
                })
                .to_string(),
            }
        }
    }
}

/// Feishu's custom-bot signature: base64 of HMAC-SHA256 keyed with `"<timestamp>\n<secret>"`
/// over an empty message.
#[must_use]
pub fn feishu_sign(secret: &[u8], timestamp_s: &str) -> String {
    let mut key = Vec::with_capacity(timestamp_s.len() + 1 + secret.len());
    key.extend_from_slice(timestamp_s.as_bytes());
    key.push(b'\n');
    key.extend_from_slice(secret);
    let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, &key), b"");
    base64::engine::general_purpose::STANDARD.encode(tag.as_ref())
}

/// DingTalk's robot signature: base64 of HMAC-SHA256 keyed with the secret over
/// `"<timestamp>\n<secret>"` (URL-encoded when it is put in the query).
#[must_use]
pub fn dingtalk_sign(secret: &[u8], timestamp_ms: &str) -> String {
    let mut message = Vec::with_capacity(timestamp_ms.len() + 1 + secret.len());
    message.extend_from_slice(timestamp_ms.as_bytes());
    message.push(b'\n');
    message.extend_from_slice(secret);
    let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, secret), &message);
    base64::engine::general_purpose::STANDARD.encode(tag.as_ref())
}

/// The headers every request carries: Crest's own signature of the body, whatever the format.
#[must_use]
pub fn crest_headers(secret: &Arc<[u8]>, body: &str, now_ms: u64) -> [(&'static str, String); 2] {
    let timestamp = now_ms / 1000;
    [
        ("x-crest-timestamp", timestamp.to_string()),
        (
            "x-crest-signature",
            signature::sign(secret, timestamp, body.as_bytes()),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_parse_by_name() {
        for format in CrmFormat::ALL {
            assert_eq!(CrmFormat::parse(format.as_str()), Some(format));
        }
        assert_eq!(CrmFormat::parse("slack"), None);
    }

    #[test]
    fn platforms_refuse_with_a_code_in_a_200() {
        let wecom = Transport::Crm(CrmFormat::Wecom);
        assert_eq!(wecom.judge(200, r#"{"errcode":0,"errmsg":"ok"}"#), Ok(200));
        assert!(
            wecom
                .judge(200, r#"{"errcode":45009,"errmsg":"api freq out of limit"}"#)
                .is_err()
        );
        let feishu = Transport::Crm(CrmFormat::Feishu);
        assert_eq!(feishu.judge(200, r#"{"code":0,"msg":"success"}"#), Ok(200));
        assert!(
            feishu
                .judge(200, r#"{"code":19021,"msg":"sign match fail"}"#)
                .is_err()
        );
        assert!(feishu.judge(200, "<html>").is_err());
        assert!(Transport::Crm(CrmFormat::Generic).judge(503, "").is_err());
        assert_eq!(Transport::Crm(CrmFormat::Generic).judge(204, ""), Ok(204));
        assert_eq!(Transport::Webhook.judge(200, "whatever"), Ok(200));
    }

    fn entry_and_lead() -> (OutboxQueued, LeadCaptured) {
        let tenant = crest_proto::TenantId::new("shop").expect("valid tenant");
        let conversation = crest_proto::ConversationId::from_parts(tenant.clone(), 42);
        let customer = crest_proto::CustomerId::new(&tenant, "c-1").expect("valid customer");
        let entry = OutboxQueued {
            id: format!("lead-{}", conversation.key()),
            conversation: conversation.clone(),
            customer: customer.clone(),
            role: "lead".to_owned(),
            message: crest_proto::MessageId::from_parts(tenant, 42),
            source_stream: crest_proto::StreamId::conversation(&conversation),
            source_seq: 9,
            at_ms: 1_732_190_400_000,
        };
        let lead = LeadCaptured {
            customer,
            intent: "product_inquiry".to_owned(),
            name: "王小明".to_owned(),
            phone: "13800138000".to_owned(),
            channel: "web".to_owned(),
        };
        (entry, lead)
    }

    #[test]
    fn each_format_builds_its_platforms_request() {
        let (entry, lead) = entry_and_lead();
        let payload = Payload::Lead(lead);
        let now_ms = 1_599_360_473_123;
        let build = |format, url: &str| {
            let outgoing = Transport::Crm(format)
                .outgoing(url, b"secret", &entry, &payload, now_ms)
                .expect("a lead is deliverable");
            let body: serde_json::Value = serde_json::from_str(&outgoing.body).expect("JSON body");
            (outgoing.url, body)
        };
        let (url, generic) = build(CrmFormat::Generic, "https://crm.example/leads");
        assert_eq!(url, "https://crm.example/leads");
        assert_eq!(generic["type"], "lead.captured");
        assert_eq!(generic["id"], entry.id);
        assert_eq!(generic["tenant"], "shop");
        assert_eq!(generic["customer"], "c-1");
        assert_eq!(generic["phone"], "13800138000");
        assert_eq!(generic["at"], "2024-11-21T12:00:00.000Z");
        let (_, wecom) = build(
            CrmFormat::Wecom,
            "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k",
        );
        assert_eq!(wecom["msgtype"], "markdown");
        let content = wecom["markdown"]["content"].as_str().expect("markdown");
        assert!(
            content.contains("王小明") && content.contains("13800138000"),
            "{content}"
        );
        let (_, feishu) = build(
            CrmFormat::Feishu,
            "https://open.feishu.cn/open-apis/bot/v2/hook/x",
        );
        assert_eq!(feishu["msg_type"], "text");
        assert_eq!(feishu["timestamp"], "1599360473");
        assert_eq!(feishu["sign"], feishu_sign(b"secret", "1599360473"));
        let (url, dingtalk) = build(
            CrmFormat::Dingtalk,
            "https://oapi.dingtalk.com/robot/send?access_token=t",
        );
        assert_eq!(dingtalk["msgtype"], "markdown");
        assert!(dingtalk["markdown"]["title"].is_string());
        let parsed = reqwest::Url::parse(&url).expect("a URL");
        let query: std::collections::HashMap<String, String> =
            parsed.query_pairs().into_owned().collect();
        assert_eq!(query["access_token"], "t");
        assert_eq!(query["timestamp"], "1599360473123");
        assert_eq!(query["sign"], dingtalk_sign(b"secret", "1599360473123"));
        assert!(
            !url.contains('+') && !url.contains("=="),
            "the base64 sign is URL-encoded: {url}"
        );
        assert!(
            Transport::Webhook
                .outgoing("https://x.example", b"s", &entry, &payload, now_ms)
                .is_err(),
            "a channel does not deliver leads"
        );
    }

    #[test]
    fn platform_signatures_follow_their_documented_recipes() {
        // Recomputed with the recipe: HMAC-SHA256, then standard base64 (44 characters).
        let feishu = feishu_sign(b"secret", "1599360473");
        let dingtalk = dingtalk_sign(b"secret", "1599360473000");
        assert_eq!(feishu.len(), 44);
        assert_eq!(dingtalk.len(), 44);
        let key = hmac::Key::new(hmac::HMAC_SHA256, b"1599360473\nsecret");
        assert_eq!(
            feishu,
            base64::engine::general_purpose::STANDARD.encode(hmac::sign(&key, b"").as_ref())
        );
        assert_ne!(feishu, dingtalk);
    }
}
