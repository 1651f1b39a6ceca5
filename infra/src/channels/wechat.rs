//! The WeChat Official Account adapter: the platform's signatures and XML messages inbound, its
//! customer-service message API outbound.
//!
//! **Inbound** (plaintext mode): WeChat signs every request to the server URL with the channel's
//! token (the channel's `secret`): `signature` is the lowercase hex SHA-1 of the token, the
//! `timestamp` and the `nonce`, sorted and concatenated ([`signature`]). The URL check is a `GET`
//! whose `echostr` is echoed; messages are `POST`ed as XML ([`parse_message`]).
//!
//! **Outbound**: [`WechatClient`] sends texts through `POST {base}/cgi-bin/message/custom/send`
//! with an access token from `GET {base}/cgi-bin/token` (cached until shortly before it expires,
//! fetched by one caller at a time, refreshed and the send retried once when WeChat says the token
//! is invalid or expired). The base URL is the channel's `outbound_url` (default
//! [`DEFAULT_BASE_URL`]). [`WechatClient::deliver`] applies the channel's [`PlatformProfile`]
//! first: a reply outside the reply window (48 h after the customer's last message) or beyond its
//! quota is not sent but answered [`DeliveryOutcome::WindowClosed`], as is WeChat's own refusal
//! (errcode 45015), and the caller opens a callback ticket for it ([`open_callback_ticket`]):
//! such a reply is never dropped silently.
//!
//! **In the outbox**: a `wechat_oa` channel with an app id and an opened app secret has an outbox
//! whose entries go through [`WechatDelivery`] ([`super::transport::Transport::Wechat`]): a reply
//! refused by the window becomes its callback ticket there, and the entry is settled as delivered
//! with status 0; a permanent refusal (a wrong app secret, another errcode) is dead-lettered at
//! once; the rest is retried with the outbox's backoff, without resending the parts of a split
//! text already delivered.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, PoisonError, Weak};
use std::time::Duration;

use crest_actors::Node;
use crest_actors::ports::journal::{EventJournal, JournalError, read_all};
use crest_actors::shard::recorder::RecordError;
use crest_actors::ticket::{Due, NewTicket, TicketCommand, TicketRejection};
use crest_proto::channels::OutboxQueued;
use crest_proto::envelope::EventMeta;
use crest_proto::{ConversationId, CustomerId, MessageId, StreamId, TenantId, TicketId};
use quick_xml::events::Event;
use ring::digest;
use serde::Deserialize;
use subtle::ConstantTimeEq;

use super::profiles::PlatformProfile;
use super::transport::{Attempted, Verdict};
use super::{ChannelConfig, ChannelKind};

/// WeChat's API, when a channel names no `outbound_url`.
pub const DEFAULT_BASE_URL: &str = "https://api.weixin.qq.com";

/// A token is refreshed this long before WeChat says it expires (at most half its lifetime).
pub const TOKEN_MARGIN: Duration = Duration::from_secs(300);

/// Longest wait for one API request.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Largest XML message accepted inbound.
pub const MAX_XML_BYTES: usize = 64 * 1024;

/// WeChat's errcodes for an invalid, expired or not-latest access token.
pub const TOKEN_ERRCODES: [i64; 3] = [40001, 42001, 40014];

/// WeChat's errcode for "system busy": try again later.
pub const BUSY_ERRCODE: i64 = -1;

/// WeChat's errcode for a reply outside the customer-service window (or to an unsubscribed user).
pub const OUT_OF_WINDOW_ERRCODE: i64 = 45015;

/// WeChat's errcode for replies beyond the per-message quota.
pub const OUT_OF_QUOTA_ERRCODE: i64 = 45047;

// ---------------------------------------------------------------------------------------------
// Signatures
// ---------------------------------------------------------------------------------------------

/// The lowercase hex SHA-1 of `token`, `timestamp` and `nonce`, sorted and concatenated.
#[must_use]
pub fn signature(token: &str, timestamp: &str, nonce: &str) -> String {
    let mut parts = [token, timestamp, nonce];
    parts.sort_unstable();
    let digest = digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, parts.concat().as_bytes());
    digest
        .as_ref()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// Whether `presented` is [`signature`] of the rest (compared in constant time, either case).
#[must_use]
pub fn signature_matches(token: &str, timestamp: &str, nonce: &str, presented: &str) -> bool {
    let expected = signature(token, timestamp, nonce);
    let presented = presented.trim().to_ascii_lowercase();
    bool::from(expected.as_bytes().ct_eq(presented.as_bytes()))
}

// ---------------------------------------------------------------------------------------------
// Inbound XML
// ---------------------------------------------------------------------------------------------

/// A message WeChat pushed (plaintext mode), its fields as sent.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct WechatMessage {
    /// The Official Account's id.
    pub to_user: String,
    /// The customer's OpenID.
    pub from_user: String,
    /// Unix seconds.
    pub create_time: u64,
    /// `text`, `image`, `voice`, `video`, `location`, `link`, `event`, …
    pub msg_type: String,
    /// A text message's text.
    pub content: Option<String>,
    /// The message's id (absent on events).
    pub msg_id: Option<String>,
    /// An event's kind (`subscribe`, `unsubscribe`, `CLICK`, …).
    pub event: Option<String>,
}

/// Parses a pushed message: `<xml>` holding one element per field, text or CDATA.
pub fn parse_message(body: &[u8]) -> Result<WechatMessage, String> {
    if body.len() > MAX_XML_BYTES {
        return Err(format!("the message is larger than {MAX_XML_BYTES} bytes"));
    }
    let text = std::str::from_utf8(body).map_err(|_| "the message is not UTF-8".to_owned())?;
    let mut reader = quick_xml::Reader::from_str(text);
    let mut fields: HashMap<String, String> = HashMap::new();
    let mut depth = 0_usize;
    let mut root_seen = false;
    let mut current: Option<String> = None;
    loop {
        let event = reader
            .read_event()
            .map_err(|error| format!("malformed XML: {error}"))?;
        match event {
            Event::Start(start) => {
                depth += 1;
                let name = start.name().as_ref().to_owned();
                match depth {
                    1 if name == "xml" && !root_seen => root_seen = true,
                    1 => return Err("the root element must be <xml>".to_owned()),
                    2 => current = Some(name),
                    _ => current = None,
                }
            }
            Event::End(_) => {
                if depth == 0 {
                    return Err("malformed XML: an unopened element closes".to_owned());
                }
                depth -= 1;
                if depth <= 1 {
                    current = None;
                }
            }
            Event::Empty(empty) if depth == 1 => {
                let name = empty.name().as_ref().to_owned();
                fields.entry(name).or_default();
            }
            Event::Text(content) if depth == 2 => {
                if let Some(name) = &current {
                    fields
                        .entry(name.clone())
                        .or_default()
                        .push_str(&content.xml10_content());
                }
            }
            Event::GeneralRef(reference) if depth == 2 => {
                if let Some(name) = &current {
                    let resolved = match reference
                        .resolve_char_ref()
                        .map_err(|error| format!("malformed XML: {error}"))?
                    {
                        Some(character) => character.to_string(),
                        None => quick_xml::escape::resolve_predefined_entity(&reference)
                            .ok_or_else(|| "malformed XML: an unknown entity".to_owned())?
                            .to_owned(),
                    };
                    fields.entry(name.clone()).or_default().push_str(&resolved);
                }
            }
            Event::CData(data) if depth == 2 => {
                if let Some(name) = &current {
                    fields
                        .entry(name.clone())
                        .or_default()
                        .push_str(&data.xml10_content());
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if !root_seen || depth != 0 {
        return Err("malformed XML: expected one complete <xml> element".to_owned());
    }
    let mut take = |name: &str| fields.remove(name).map(|value| value.trim().to_owned());
    let required = |value: Option<String>, name: &str| {
        value
            .filter(|value| !value.is_empty())
            .ok_or_else(|| format!("<{name}> is missing"))
    };
    let to_user = required(take("ToUserName"), "ToUserName")?;
    let from_user = required(take("FromUserName"), "FromUserName")?;
    let create_time = required(take("CreateTime"), "CreateTime")?
        .parse()
        .map_err(|_| "<CreateTime> must be unix seconds".to_owned())?;
    let msg_type = required(take("MsgType"), "MsgType")?;
    let msg_id = take("MsgId").filter(|id| !id.is_empty());
    let event = take("Event").filter(|event| !event.is_empty());
    // The text is kept as sent (not trimmed).
    let content = fields.remove("Content");
    Ok(WechatMessage {
        to_user,
        from_user,
        create_time,
        msg_type,
        content,
        msg_id,
        event,
    })
}

// ---------------------------------------------------------------------------------------------
// Outbound
// ---------------------------------------------------------------------------------------------

/// What a channel needs to call WeChat's API.
#[derive(Clone, PartialEq, Eq)]
pub struct WechatCredentials {
    /// The AppID.
    pub app_id: String,
    /// The AppSecret.
    pub app_secret: Arc<str>,
    /// The API's base URL, without a trailing `/`.
    pub base_url: String,
}

impl std::fmt::Debug for WechatCredentials {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("WechatCredentials")
            .field("app_id", &self.app_id)
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

impl WechatCredentials {
    /// A `wechat_oa` channel's credentials: its app id and opened app secret, and its
    /// `outbound_url` or [`DEFAULT_BASE_URL`]; `None` for other kinds or without both.
    #[must_use]
    pub fn of(config: &ChannelConfig) -> Option<Self> {
        if config.kind != ChannelKind::WechatOa {
            return None;
        }
        Some(Self {
            app_id: config.app_id.clone()?,
            app_secret: Arc::clone(config.app_secret.as_ref()?),
            base_url: config
                .outbound_url
                .as_deref()
                .unwrap_or(DEFAULT_BASE_URL)
                .trim_end_matches('/')
                .to_owned(),
        })
    }
}

/// A reply to deliver to a WeChat customer.
#[derive(Debug, Clone, Copy)]
pub struct WechatReply<'a> {
    /// The customer's OpenID (their customer id on a WeChat channel).
    pub openid: &'a str,
    /// The reply's text.
    pub text: &'a str,
    /// When the customer last wrote (ms since the epoch): the reply window starts there.
    pub last_customer_message_at_ms: u64,
    /// Messages already sent to the customer since then (each part of a split text counts).
    pub sent_since_customer_message: u32,
    /// Parts of this reply already delivered by an earlier attempt (they are not sent again).
    pub skip_parts: usize,
}

/// How a delivery ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryOutcome {
    /// Every part was accepted.
    Delivered {
        /// Messages the text took.
        parts: usize,
    },
    /// The platform does not allow this reply now (outside its reply window or beyond its
    /// quota, judged from the profile or answered by WeChat): the caller opens a callback ticket
    /// ([`open_callback_ticket`]) instead of retrying.
    WindowClosed {
        /// Why, for the ticket and the logs.
        reason: String,
        /// Parts delivered before (counting those skipped).
        sent_parts: usize,
    },
    /// Worth another attempt later (network, 5xx, WeChat busy, a token still refused after a
    /// refresh).
    Retryable {
        /// What happened.
        error: String,
        /// Parts delivered before the failure (counting those skipped): the next attempt's
        /// [`WechatReply::skip_parts`].
        sent_parts: usize,
    },
    /// Never going to pass (a refused credential, a malformed request, another errcode).
    Permanent {
        /// What happened.
        error: String,
        /// Parts delivered before the failure (counting those skipped).
        sent_parts: usize,
    },
}

/// Why a request to WeChat failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// The token is invalid or expired (errcode 40001, 42001 or 40014).
    #[error("access token refused (errcode {errcode}: {errmsg})")]
    Token {
        /// The errcode.
        errcode: i64,
        /// WeChat's words.
        errmsg: String,
    },
    /// Outside the reply window (errcode 45015) or beyond the quota (45047).
    #[error("reply refused by the platform's window (errcode {errcode}: {errmsg})")]
    Window {
        /// The errcode.
        errcode: i64,
        /// WeChat's words.
        errmsg: String,
    },
    /// Worth retrying later.
    #[error("{0}")]
    Retryable(String),
    /// Never going to pass.
    #[error("{0}")]
    Permanent(String),
}

/// WeChat's answer envelope.
#[derive(Debug, Deserialize)]
struct ApiAnswer {
    #[serde(default)]
    errcode: i64,
    #[serde(default)]
    errmsg: String,
    access_token: Option<String>,
    expires_in: Option<u64>,
}

#[derive(Debug, Clone)]
struct CachedToken {
    token: String,
    refresh_at: tokio::time::Instant,
}

/// A WeChat Official Account's API client: see the module's documentation.
pub struct WechatClient {
    http: reqwest::Client,
    credentials: WechatCredentials,
    /// Held while a token is fetched, so concurrent senders wait for one fetch.
    token: tokio::sync::Mutex<Option<CachedToken>>,
}

impl std::fmt::Debug for WechatClient {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("WechatClient")
            .field("credentials", &self.credentials)
            .finish_non_exhaustive()
    }
}

impl WechatClient {
    /// A client for `credentials` over `http`.
    #[must_use]
    pub fn new(http: reqwest::Client, credentials: WechatCredentials) -> Self {
        Self {
            http,
            credentials,
            token: tokio::sync::Mutex::new(None),
        }
    }

    /// Its credentials.
    #[must_use]
    pub fn credentials(&self) -> &WechatCredentials {
        &self.credentials
    }

    /// A valid access token: the cached one, or a fresh one when there is none, it is due for
    /// refresh, or it is `stale` (the one WeChat just refused; a token fetched meanwhile by
    /// another caller is kept).
    pub async fn access_token(&self, stale: Option<&str>) -> Result<String, SendError> {
        let mut cached = self.token.lock().await;
        if let Some(token) = cached.as_ref()
            && tokio::time::Instant::now() < token.refresh_at
            && stale != Some(token.token.as_str())
        {
            return Ok(token.token.clone());
        }
        let fresh = self.fetch_token().await?;
        let token = fresh.token.clone();
        *cached = Some(fresh);
        Ok(token)
    }

    async fn fetch_token(&self) -> Result<CachedToken, SendError> {
        let url = format!("{}/cgi-bin/token", self.credentials.base_url);
        let request = self.http.get(url).timeout(REQUEST_TIMEOUT).query(&[
            ("grant_type", "client_credential"),
            ("appid", self.credentials.app_id.as_str()),
            ("secret", &self.credentials.app_secret),
        ]);
        let answer = call(request).await?;
        match (answer.errcode, answer.access_token, answer.expires_in) {
            (0, Some(token), Some(expires_in)) if !token.is_empty() && expires_in > 0 => {
                let lifetime = Duration::from_secs(expires_in);
                let margin = TOKEN_MARGIN.min(lifetime / 2);
                tracing::info!(app_id = %self.credentials.app_id, expires_in, "wechat access token fetched");
                Ok(CachedToken {
                    token,
                    refresh_at: tokio::time::Instant::now() + lifetime - margin,
                })
            }
            (BUSY_ERRCODE, _, _) => Err(SendError::Retryable(format!(
                "token: wechat busy ({})",
                answer.errmsg
            ))),
            (0, _, _) => Err(SendError::Retryable(
                "token: the answer has no access_token and expires_in".to_owned(),
            )),
            (errcode, _, _) => Err(SendError::Permanent(format!(
                "token: errcode {errcode}: {}",
                answer.errmsg
            ))),
        }
    }

    /// Sends one text message to `openid` (no splitting, no window check), refreshing the token
    /// and retrying once if WeChat refuses it.
    pub async fn send_text(&self, openid: &str, text: &str) -> Result<(), SendError> {
        let token = self.access_token(None).await?;
        match self.send_with(&token, openid, text).await {
            Err(SendError::Token { errcode, .. }) => {
                tracing::info!(app_id = %self.credentials.app_id, errcode, "wechat access token refused; refreshing");
                let fresh = self.access_token(Some(&token)).await?;
                self.send_with(&fresh, openid, text).await
            }
            other => other,
        }
    }

    async fn send_with(&self, token: &str, openid: &str, text: &str) -> Result<(), SendError> {
        let url = format!("{}/cgi-bin/message/custom/send", self.credentials.base_url);
        let body = serde_json::json!({
            "touser": openid,
            "msgtype": "text",
            "text": { "content": text },
        });
        let request = self
            .http
            .post(url)
            .timeout(REQUEST_TIMEOUT)
            .query(&[("access_token", token)])
            .json(&body);
        let answer = call(request).await?;
        match answer.errcode {
            0 => Ok(()),
            errcode if TOKEN_ERRCODES.contains(&errcode) => Err(SendError::Token {
                errcode,
                errmsg: answer.errmsg,
            }),
            OUT_OF_WINDOW_ERRCODE | OUT_OF_QUOTA_ERRCODE => Err(SendError::Window {
                errcode: answer.errcode,
                errmsg: answer.errmsg,
            }),
            BUSY_ERRCODE => Err(SendError::Retryable(format!(
                "wechat busy ({})",
                answer.errmsg
            ))),
            errcode => Err(SendError::Permanent(format!(
                "errcode {errcode}: {}",
                answer.errmsg
            ))),
        }
    }

    /// Delivers `reply` under `profile` at `now_ms`: refused before any request when the
    /// profile's window or quota forbids it, else sent in as many parts as its text limit needs
    /// (see [`DeliveryOutcome`]).
    pub async fn deliver(
        &self,
        profile: &PlatformProfile,
        reply: &WechatReply<'_>,
        now_ms: u64,
    ) -> DeliveryOutcome {
        let parts = profile.parts(reply.text);
        let skip = reply.skip_parts.min(parts.len());
        let to_send = u32::try_from(parts.len() - skip).unwrap_or(u32::MAX);
        let allowed = profile.reply_allowed(
            reply.last_customer_message_at_ms,
            reply
                .sent_since_customer_message
                .saturating_add(to_send.saturating_sub(1)),
            now_ms,
        );
        if let Err(refusal) = allowed {
            return DeliveryOutcome::WindowClosed {
                reason: format!("{}: {refusal}", profile.name),
                sent_parts: skip,
            };
        }
        for (index, part) in parts.iter().enumerate().skip(skip) {
            match self.send_text(reply.openid, part).await {
                Ok(()) => {}
                Err(SendError::Window { errcode, errmsg }) => {
                    return DeliveryOutcome::WindowClosed {
                        reason: format!("wechat refused the reply (errcode {errcode}: {errmsg})"),
                        sent_parts: index,
                    };
                }
                Err(error @ (SendError::Token { .. } | SendError::Retryable(_))) => {
                    return DeliveryOutcome::Retryable {
                        error: error.to_string(),
                        sent_parts: index,
                    };
                }
                Err(SendError::Permanent(error)) => {
                    return DeliveryOutcome::Permanent {
                        error,
                        sent_parts: index,
                    };
                }
            }
        }
        DeliveryOutcome::Delivered { parts: parts.len() }
    }

    /// Delivers an outbox entry's reply (`text` being the text of its source event): the
    /// customer's OpenID is the entry's customer, the window and quota are judged on the
    /// conversation's [`reply_context`] (no customer message: the window is closed).
    pub async fn deliver_queued(
        &self,
        journal: &dyn EventJournal,
        profile: &PlatformProfile,
        entry: &OutboxQueued,
        text: &str,
        skip_parts: usize,
        now_ms: u64,
    ) -> Result<DeliveryOutcome, JournalError> {
        let context = reply_context(journal, &entry.source_stream, entry.source_seq).await?;
        let reply = WechatReply {
            openid: entry.customer.key(),
            text,
            last_customer_message_at_ms: context.last_customer_message_at_ms.unwrap_or(0),
            sent_since_customer_message: context.sent_since_customer_message,
            skip_parts,
        };
        Ok(self.deliver(profile, &reply, now_ms).await)
    }
}

/// Sends `request` and reads WeChat's JSON answer; network failures, 5xx and 429 are retryable,
/// other non-2xx answers and unreadable bodies permanent.
async fn call(request: reqwest::RequestBuilder) -> Result<ApiAnswer, SendError> {
    // The URLs carry the app secret or the access token: never in an error.
    let response = request
        .send()
        .await
        .map_err(|error| SendError::Retryable(format!("request: {}", error.without_url())))?;
    let status = response.status();
    if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
        return Err(SendError::Retryable(format!("status {}", status.as_u16())));
    }
    if !status.is_success() {
        return Err(SendError::Permanent(format!("status {}", status.as_u16())));
    }
    let body = response
        .bytes()
        .await
        .map_err(|error| SendError::Retryable(format!("answer: {}", error.without_url())))?;
    serde_json::from_slice(&body)
        .map_err(|error| SendError::Permanent(format!("the answer is not WeChat's JSON: {error}")))
}

/// One [`WechatClient`] per WeChat channel (so its token is fetched once), made on first use and
/// remade when the channel's credentials change.
#[derive(Debug)]
pub struct WechatClients {
    http: reqwest::Client,
    clients: Mutex<HashMap<(TenantId, String), Arc<WechatClient>>>,
}

impl WechatClients {
    /// Clients sharing `http`.
    #[must_use]
    pub fn new(http: reqwest::Client) -> Self {
        Self {
            http,
            clients: Mutex::new(HashMap::new()),
        }
    }

    /// The client of `tenant`'s channel `config`; `None` unless it is a `wechat_oa` channel with
    /// an app id and an opened app secret.
    #[must_use]
    pub fn client_for(
        &self,
        tenant: &TenantId,
        config: &ChannelConfig,
    ) -> Option<Arc<WechatClient>> {
        let credentials = WechatCredentials::of(config)?;
        let mut clients = self.clients.lock().unwrap_or_else(PoisonError::into_inner);
        let key = (tenant.clone(), config.name.clone());
        if let Some(client) = clients.get(&key)
            && client.credentials == credentials
        {
            return Some(Arc::clone(client));
        }
        let client = Arc::new(WechatClient::new(self.http.clone(), credentials));
        clients.insert(key, Arc::clone(&client));
        Some(client)
    }

    /// Forgets the client of a removed channel.
    pub fn forget(&self, tenant: &TenantId, name: &str) {
        self.clients
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&(tenant.clone(), name.to_owned()));
    }
}

/// The node a channel store's outboxes open callback tickets on: set once the node has started
/// (the outboxes recover before it does; until then a window refusal is retried).
pub type NodeSlot = Arc<OnceLock<Weak<Node>>>;

/// How a WeChat channel's outbox delivers: see the module's documentation.
pub struct WechatDelivery {
    /// The channel's API client.
    pub client: Arc<WechatClient>,
    /// The channel's platform profile.
    pub profile: &'static PlatformProfile,
    /// The channel's name.
    pub channel: String,
    /// Where callback tickets are opened.
    pub node: NodeSlot,
}

impl std::fmt::Debug for WechatDelivery {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("WechatDelivery")
            .field("client", &self.client)
            .field("profile", &self.profile.name)
            .field("channel", &self.channel)
            .finish_non_exhaustive()
    }
}

impl WechatDelivery {
    /// One attempt at outbox entry `entry` (its reply's `text`; `sent_parts` delivered before).
    pub async fn deliver(
        &self,
        journal: &dyn EventJournal,
        entry: &OutboxQueued,
        text: &str,
        sent_parts: usize,
        now_ms: u64,
    ) -> Attempted {
        let outcome = match self
            .client
            .deliver_queued(journal, self.profile, entry, text, sent_parts, now_ms)
            .await
        {
            Ok(outcome) => outcome,
            Err(error) => {
                return Attempted {
                    verdict: Verdict::Failed(format!("reading the conversation: {error}")),
                    sent_parts,
                };
            }
        };
        let (verdict, sent_parts) = match outcome {
            DeliveryOutcome::Delivered { parts } => (Verdict::Delivered(200), parts),
            DeliveryOutcome::Retryable { error, sent_parts } => {
                (Verdict::Failed(self.scrubbed(&error)), sent_parts)
            }
            DeliveryOutcome::Permanent { error, sent_parts } => {
                (Verdict::Refused(self.scrubbed(&error)), sent_parts)
            }
            DeliveryOutcome::WindowClosed { reason, sent_parts } => {
                (self.callback(entry, &reason, text).await, sent_parts)
            }
        };
        Attempted {
            verdict,
            sent_parts,
        }
    }

    /// Opens the callback ticket of a reply the window refused.
    async fn callback(&self, entry: &OutboxQueued, reason: &str, text: &str) -> Verdict {
        let Some(node) = self.node.get().and_then(Weak::upgrade) else {
            return Verdict::Failed(format!(
                "{reason}; the callback ticket waits for the node to start"
            ));
        };
        let request = CallbackRequest {
            conversation: &entry.conversation,
            customer: &entry.customer,
            message: &entry.message,
            channel: &self.channel,
            reason,
            text,
        };
        match open_callback_ticket(&node, &request).await {
            Ok(ticket) => Verdict::ByTicket(ticket.to_string()),
            Err(error @ CallbackError::Unavailable(_)) => {
                Verdict::Failed(format!("{reason}; callback ticket {error}"))
            }
            Err(error @ CallbackError::Rejected(_)) => {
                Verdict::Refused(format!("{reason}; callback ticket {error}"))
            }
        }
    }

    /// `error` without the app secret, should WeChat ever echo it.
    fn scrubbed(&self, error: &str) -> String {
        let secret = &*self.client.credentials().app_secret;
        if secret.is_empty() {
            error.to_owned()
        } else {
            error.replace(secret, "***")
        }
    }
}

// ---------------------------------------------------------------------------------------------
// A reply's place in its conversation
// ---------------------------------------------------------------------------------------------

/// The event type of a customer's message.
pub const CUSTOMER_MESSAGE_EVENT: &str = "conversation.customer_message_received";

/// The event types of replies that go out to the customer.
pub const REPLY_EVENTS: [&str; 2] = ["conversation.bot_replied", "conversation.agent_replied"];

/// What a platform's reply window and quota are judged on, read from the conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplyContext {
    /// When the customer last wrote (`None`: never; no window is open).
    pub last_customer_message_at_ms: Option<u64>,
    /// Replies written after that message and before the reply being delivered.
    pub sent_since_customer_message: u32,
}

/// The [`ReplyContext`] of the reply at `reply_seq` of `conversation_stream` (an outbox entry's
/// `source_stream` and `source_seq`): the customer's latest message in the whole stream (a message
/// written after the reply was queued opens a new window), and the replies between it and this
/// one (each counted once, however many parts it took). Reads event types and timestamps only:
/// no text is opened.
pub async fn reply_context(
    journal: &dyn EventJournal,
    conversation_stream: &StreamId,
    reply_seq: u64,
) -> Result<ReplyContext, JournalError> {
    let events = read_all(journal, conversation_stream, 0).await?;
    let mut context = ReplyContext {
        last_customer_message_at_ms: None,
        sent_since_customer_message: 0,
    };
    for stored in events {
        let envelope = stored.envelope()?;
        if envelope.event_type == CUSTOMER_MESSAGE_EVENT {
            context.last_customer_message_at_ms = Some(envelope.timestamp_ms);
            context.sent_since_customer_message = 0;
        } else if REPLY_EVENTS.contains(&envelope.event_type.as_str()) && envelope.seq < reply_seq {
            context.sent_since_customer_message =
                context.sent_since_customer_message.saturating_add(1);
        }
    }
    Ok(context)
}

// ---------------------------------------------------------------------------------------------
// Callback tickets
// ---------------------------------------------------------------------------------------------

/// A reply the platform's window refused, to become a callback ticket.
#[derive(Debug, Clone)]
pub struct CallbackRequest<'a> {
    /// The conversation the reply belongs to (its tenant is the ticket's).
    pub conversation: &'a ConversationId,
    /// The customer to call back.
    pub customer: &'a CustomerId,
    /// The reply's message: the ticket's id is derived from it, so asking twice opens one ticket.
    pub message: &'a MessageId,
    /// The channel's name.
    pub channel: &'a str,
    /// Why it was refused ([`DeliveryOutcome::WindowClosed`]'s reason).
    pub reason: &'a str,
    /// The reply's text.
    pub text: &'a str,
}

/// Longest ticket subject, in bytes.
const MAX_SUBJECT_BYTES: usize = 500;

/// Why a callback ticket was not opened.
#[derive(Debug, thiserror::Error)]
pub enum CallbackError {
    /// The ticket refused the command.
    #[error("the ticket refused: {0}")]
    Rejected(String),
    /// Not stored (journal or shard unavailable): retry.
    #[error("not stored: {0}")]
    Unavailable(String),
}

/// The id of the callback ticket of `message` (the same ULID in the same tenant).
#[must_use]
pub fn callback_ticket_id(message: &MessageId) -> TicketId {
    TicketId::parse(message.tenant(), &message.key())
        .unwrap_or_else(|_| TicketId::generate(message.tenant()))
}

/// The subject of a callback ticket: one line of at most 500 bytes.
#[must_use]
pub fn callback_subject(channel: &str, reason: &str, text: &str) -> String {
    let one_line = |text: &str| text.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut subject = format!(
        "call back the customer: a reply on {channel} was not sent ({}): {}",
        one_line(reason),
        one_line(text)
    );
    if subject.len() > MAX_SUBJECT_BYTES {
        let mut end = MAX_SUBJECT_BYTES - '…'.len_utf8();
        while !subject.is_char_boundary(end) {
            end -= 1;
        }
        subject.truncate(end);
        subject.push('…');
    }
    subject
}

/// Opens a `callback` ticket for a reply the platform's window refused, linked to its customer
/// and conversation, with the node's default SLA; its id is [`callback_ticket_id`], so a second
/// call for the same reply finds the first ticket (and succeeds).
pub async fn open_callback_ticket(
    node: &Node,
    request: &CallbackRequest<'_>,
) -> Result<TicketId, CallbackError> {
    let ticket = callback_ticket_id(request.message);
    let settings = node.routing().settings();
    let command = TicketCommand::Open(NewTicket {
        kind: "callback".to_owned(),
        subject: callback_subject(request.channel, request.reason, request.text),
        customer: Some(request.customer.clone()),
        conversation: Some(request.conversation.clone()),
        assignee: None,
        created_by: format!("channel:{}", request.channel),
        due: Due::After {
            first_response_s: settings.first_response_sla_s,
            resolution_s: settings.resolution_sla_s,
        },
    });
    match node
        .region()
        .ticket_command(&ticket, command, EventMeta::default())
        .await
    {
        Ok(_) | Err(RecordError::Rejected(TicketRejection::AlreadyOpened)) => {
            tracing::info!(tenant = %ticket.tenant(), ticket = %ticket, channel = request.channel, "callback ticket opened for a reply outside the platform's window");
            Ok(ticket)
        }
        Err(RecordError::Rejected(rejection)) => {
            Err(CallbackError::Rejected(rejection.to_string()))
        }
        Err(RecordError::Journal(error)) => Err(CallbackError::Unavailable(error.to_string())),
        Err(RecordError::Unavailable) => Err(CallbackError::Unavailable(
            "the ticket is restarting".to_owned(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_sha1_of_the_sorted_parts() {
        // sorted: "1409659813", "1372623149", "token" → "13726231491409659813token"... by string
        // order "1372623149" < "1409659813" < "token".
        let expected: String = digest::digest(
            &digest::SHA1_FOR_LEGACY_USE_ONLY,
            b"13726231491409659813token",
        )
        .as_ref()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
        assert_eq!(signature("token", "1409659813", "1372623149"), expected);
        assert_eq!(signature("1372623149", "token", "1409659813"), expected);
        assert_eq!(expected.len(), 40);
        assert!(signature_matches(
            "token",
            "1409659813",
            "1372623149",
            &expected
        ));
        assert!(signature_matches(
            "token",
            "1409659813",
            "1372623149",
            &expected.to_ascii_uppercase()
        ));
        assert!(!signature_matches(
            "token",
            "1409659814",
            "1372623149",
            &expected
        ));
        assert!(!signature_matches(
            "other",
            "1409659813",
            "1372623149",
            &expected
        ));
        assert!(!signature_matches("token", "1409659813", "1372623149", ""));
    }

    #[test]
    fn a_text_message_parses_with_cdata_and_entities() {
        let xml = "<xml><ToUserName><![CDATA[gh_123]]></ToUserName>\
            <FromUserName><![CDATA[oUser-_42]]></FromUserName><CreateTime>1348831860</CreateTime>\
            <MsgType><![CDATA[text]]></MsgType><Content><![CDATA[订单 <A1024> 呢]]></Content>\
            <MsgId>1234567890123456</MsgId></xml>";
        let message = parse_message(xml.as_bytes()).expect("parses");
        assert_eq!(
            message,
            WechatMessage {
                to_user: "gh_123".to_owned(),
                from_user: "oUser-_42".to_owned(),
                create_time: 1_348_831_860,
                msg_type: "text".to_owned(),
                content: Some("订单 <A1024> 呢".to_owned()),
                msg_id: Some("1234567890123456".to_owned()),
                event: None,
            }
        );
        let escaped = "<xml><ToUserName>gh</ToUserName><FromUserName>o1</FromUserName>\
            <CreateTime>1</CreateTime><MsgType>text</MsgType><Content>a &amp; b &#x4F60;</Content>\
            <MsgId>9</MsgId></xml>";
        assert_eq!(
            parse_message(escaped.as_bytes())
                .expect("parses")
                .content
                .as_deref(),
            Some("a & b 你")
        );
    }

    #[test]
    fn an_event_parses_without_a_message_id() {
        let xml = "<xml><ToUserName>gh</ToUserName><FromUserName>o1</FromUserName>\
            <CreateTime>1</CreateTime><MsgType>event</MsgType><Event>subscribe</Event></xml>";
        let message = parse_message(xml.as_bytes()).expect("parses");
        assert_eq!(message.msg_type, "event");
        assert_eq!(message.event.as_deref(), Some("subscribe"));
        assert_eq!(message.msg_id, None);
    }

    #[test]
    fn malformed_messages_are_refused_with_a_reason() {
        for (xml, reason) in [
            ("<xml><ToUserName>gh</xml>", "malformed"),
            ("not xml at all", "malformed"),
            ("<root><a>1</a></root>", "<xml>"),
            (
                "<xml><FromUserName>o</FromUserName><CreateTime>1</CreateTime><MsgType>text</MsgType></xml>",
                "ToUserName",
            ),
            (
                "<xml><ToUserName>g</ToUserName><FromUserName>o</FromUserName><CreateTime>soon</CreateTime><MsgType>text</MsgType></xml>",
                "CreateTime",
            ),
            ("<xml></xml><xml></xml>", "<xml>"),
        ] {
            let error = parse_message(xml.as_bytes()).expect_err(xml);
            assert!(error.contains(reason), "{xml}: {error}");
        }
        assert!(parse_message(&[0xff, 0xfe]).is_err());
    }

    #[test]
    fn a_callback_subject_is_one_bounded_line() {
        let subject = callback_subject("wx", "wechat_oa: window\nclosed", &"好".repeat(400));
        assert!(subject.len() <= MAX_SUBJECT_BYTES);
        assert!(!subject.contains('\n'));
        assert!(subject.ends_with('…'));
        assert!(subject.starts_with("call back the customer: a reply on wx was not sent"));
    }

    #[test]
    fn the_event_types_read_are_the_conversations() {
        use crest_proto::events::ConversationEvent;
        for event_type in REPLY_EVENTS.iter().chain([&CUSTOMER_MESSAGE_EVENT]) {
            assert!(
                ConversationEvent::KNOWN_TYPES
                    .iter()
                    .any(|(known, _)| known == event_type),
                "{event_type}"
            );
        }
    }

    #[test]
    fn a_callback_ticket_id_follows_its_message() {
        let tenant = TenantId::new("shop").expect("valid");
        let message = MessageId::generate(&tenant);
        let ticket = callback_ticket_id(&message);
        assert_eq!(ticket.key(), message.key());
        assert_eq!(ticket.tenant(), &tenant);
    }
}
