//! The CRM integration: where a tenant's captured leads go (`lead.captured`), signed, with the
//! channels' durable retries and dead letters.
//!
//! It is stored among the tenant's channel connections (`chan:<tenant>:config`), as a
//! configuration of kind `crm` under the reserved name [`CRM_NAME`], its format in the `profile`
//! field: so the secret is sealed, other nodes follow it, and the outbox (`chan:<tenant>:out._crm`)
//! recovers after a crash exactly like a channel's. No channel can take the name (a channel's
//! name starts with a letter or a digit), and the channels API neither lists nor changes it.
//!
//! Each lead is one outbox entry whose id, `lead-<conversation>`, is the same on every attempt and
//! after every restart (a conversation captures at most one lead), for the CRM to de-duplicate.

use crest_actors::ports::outbound::OutboundLead;
use crest_proto::channels::OutboxQueued;
use crest_proto::{MessageId, TenantId};

use super::outbox::DeadLetter;
use super::transport::CrmFormat;
use super::{ChannelConfig, ChannelError, ChannelKind, ChannelRequest, ChannelStore};

/// The reserved configuration name of the CRM integration.
pub const CRM_NAME: &str = "_crm";

/// A CRM integration as the API received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrmRequest {
    /// Where leads are posted.
    pub url: String,
    /// The shared secret requests are signed with (and a platform robot's signing secret).
    pub secret: String,
    /// `generic`, `wecom`, `feishu` or `dingtalk`.
    pub format: String,
    /// Attempts before a lead is dead-lettered.
    pub max_attempts: Option<u32>,
    /// The first retry's delay.
    pub backoff_base_ms: Option<u64>,
}

impl CrmRequest {
    fn as_channel(&self) -> ChannelRequest {
        ChannelRequest {
            kind: ChannelKind::Webhook.as_str().to_owned(),
            secret: self.secret.clone(),
            outbound_url: Some(self.url.clone()),
            profile: None,
            max_attempts: self.max_attempts,
            backoff_base_ms: self.backoff_base_ms,
            app_id: None,
            app_secret: None,
        }
    }
}

/// Every reason `request` cannot be stored (empty: it can). The URL, secret and retry budget
/// follow the channels' rules.
#[must_use]
pub fn validate(request: &CrmRequest) -> Vec<String> {
    let mut reasons: Vec<String> = super::validate("crm", &request.as_channel())
        .into_iter()
        .map(|reason| reason.replace("outbound_url", "url"))
        .collect();
    if CrmFormat::parse(&request.format).is_none() {
        reasons.push("format must be generic, wecom, feishu or dingtalk".to_owned());
    }
    reasons
}

/// The outbox entry of a captured lead.
#[must_use]
pub fn entry_of(lead: &OutboundLead) -> OutboxQueued {
    let conversation = lead.conversation.key();
    OutboxQueued {
        id: format!("lead-{conversation}"),
        conversation: lead.conversation.clone(),
        customer: lead.lead.customer.clone(),
        role: "lead".to_owned(),
        // A lead is no message: the entry names the conversation's id in its place.
        message: MessageId::parse(lead.conversation.tenant(), &conversation)
            .unwrap_or_else(|_| MessageId::from_parts(lead.conversation.tenant().clone(), 0)),
        source_stream: lead.source_stream.clone(),
        source_seq: lead.source_seq,
        at_ms: lead.at_ms,
    }
}

impl ChannelStore {
    /// Creates or replaces `tenant`'s CRM integration; returns it and whether it is new.
    pub async fn configure_crm(
        &self,
        tenant: &TenantId,
        request: &CrmRequest,
        configured_by: &str,
    ) -> Result<(ChannelConfig, bool), ChannelError> {
        let reasons = validate(request);
        if !reasons.is_empty() {
            return Err(ChannelError::Invalid(reasons));
        }
        let mut stored = request.as_channel();
        stored.profile = Some(request.format.clone());
        self.store(tenant, CRM_NAME, ChannelKind::Crm, &stored, configured_by)
            .await
    }

    /// `tenant`'s CRM integration, if configured.
    pub async fn crm(
        &self,
        tenant: &TenantId,
    ) -> Result<Option<ChannelConfig>, crest_actors::ports::journal::JournalError> {
        self.config_of(tenant, CRM_NAME).await
    }

    /// Removes `tenant`'s CRM integration (what is queued stays in the journal).
    pub async fn remove_crm(
        &self,
        tenant: &TenantId,
        removed_by: &str,
    ) -> Result<(), ChannelError> {
        self.remove_named(tenant, CRM_NAME, removed_by).await
    }

    /// The leads in the CRM integration's dead letters, oldest first.
    pub async fn crm_dead_letters(
        &self,
        tenant: &TenantId,
        limit: usize,
    ) -> Result<Vec<DeadLetter>, ChannelError> {
        self.dead_letters_named(tenant, CRM_NAME, limit).await
    }

    /// Queues dead letter `id` of the CRM integration again; `NotFound` if there is none.
    pub async fn retry_crm(
        &self,
        tenant: &TenantId,
        id: &str,
        requeued_by: &str,
    ) -> Result<(), ChannelError> {
        self.retry_named(tenant, CRM_NAME, id, requeued_by).await
    }
}
