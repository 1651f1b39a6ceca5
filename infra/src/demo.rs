//! Demo data for a fresh `crest serve`: two agents and a few conversations in the `demo` tenant,
//! posted through the same path as real traffic. Channel message ids are fixed, so seeding twice changes nothing.

use crest_actors::Node;
use crest_actors::conversation::CommandError;
use crest_actors::desk::{DeskCommand, DeskError};
use crest_proto::commands::InboundMessage;
use crest_proto::envelope::EventMeta;
use crest_proto::routing::Presence;
use crest_proto::{AgentId, CustomerId, IdError, MessageId, TenantId};

/// (customer, channel message id, text)
const DEMO_MESSAGES: &[(&str, &str, &str)] = &[
    ("alice", "demo-alice-1", "Hello, where is my order?"),
    ("alice", "demo-alice-2", "Thanks!"),
    ("wang-lei", "demo-wang-1", "你好，我的订单什么时候发货？"),
    ("wang-lei", "demo-wang-2", "我要转人工"),
    ("bob", "demo-bob-1", "I want a refund for my headphones"),
];

/// (agent, groups, capacity, languages): demo agent seats, online at the first start.
const DEMO_AGENTS: &[(&str, &[&str], u16, &[&str])] = &[
    ("mei", &["after_sales", "general"], 3, &["zh", "en"]),
    ("tom", &["pre_sales", "general"], 2, &["en"]),
];

/// Names of the keys the demo issues at each start (the previous start's are revoked then).
const DEMO_KEY_PREFIX: &str = "demo ";

/// A demo credential, printed at start (its text exists nowhere else).
#[derive(Debug, Clone)]
pub struct DemoKey {
    /// What it is for, e.g. `admin` or `agent mei`.
    pub label: String,
    /// The key's text.
    pub key: String,
}

/// Issues the demo tenant's keys for this run (the demo agents' console passwords, the widget's
/// website token, an admin key, an integration key for the web page
/// and one agent key per demo agent) after revoking those of earlier runs, so only the keys this
/// start printed work.
pub async fn issue_keys(access: &crate::access::Access) -> Result<Vec<DemoKey>, String> {
    use crate::access::secret::{self, TokenKind};
    use crest_proto::access::{AccessEvent, AccessRole, KeyIssued, KeyRevoked};
    let tenant = TenantId::new("demo").map_err(|error| error.to_string())?;
    let failed = |error: crate::access::store::AccessError<()>| error.to_string();
    loop {
        let state = access
            .store
            .refreshed(&tenant)
            .await
            .map_err(|error| error.to_string())?;
        let Some(stale) = state.keys.values().find(|key| {
            !key.revoked
                && key
                    .name
                    .as_deref()
                    .is_some_and(|name| name.starts_with(DEMO_KEY_PREFIX))
        }) else {
            break;
        };
        let key_id = stale.id.clone();
        access
            .store
            .append(&tenant, crate::access::now_ms(), |_| {
                Ok(AccessEvent::KeyRevoked(KeyRevoked {
                    key_id: key_id.clone(),
                    revoked_by: "demo".to_owned(),
                }))
            })
            .await
            .map_err(failed)?;
    }
    let mut wanted = vec![
        ("admin".to_owned(), AccessRole::Admin, None),
        ("web page".to_owned(), AccessRole::Integration, None),
    ];
    for (name, ..) in DEMO_AGENTS {
        wanted.push((
            format!("agent {name}"),
            AccessRole::Agent,
            Some(AgentId::new(&tenant, *name).map_err(|error| error.to_string())?),
        ));
    }
    let mut keys = Vec::new();
    keys.extend(set_logins(access, &tenant).await?);
    keys.extend(configure_widget(access, &tenant).await?);
    for (label, role, agent) in wanted {
        let key =
            secret::new_token(TokenKind::ApiKey, &tenant).map_err(|error| error.to_string())?;
        let key_hash = secret::digest(&key).to_vec();
        let key_id = ulid::Ulid::new().to_string();
        let name = format!("{DEMO_KEY_PREFIX}{label}");
        access
            .store
            .append(&tenant, crate::access::now_ms(), |_| {
                Ok(AccessEvent::KeyIssued(KeyIssued {
                    key_id: key_id.clone(),
                    role,
                    agent: agent.clone(),
                    name: Some(name.clone()),
                    key_hash: key_hash.clone(),
                    issued_by: "demo".to_owned(),
                }))
            })
            .await
            .map_err(failed)?;
        keys.push(DemoKey { label, key });
    }
    Ok(keys)
}

/// The demo agents' console passwords for this run (`login mei` is an agent, `login tom` a
/// supervisor): a fresh random password per start, like the keys, so only the printed ones work.
async fn set_logins(
    access: &crate::access::Access,
    tenant: &TenantId,
) -> Result<Vec<DemoKey>, String> {
    use crate::access::secret::{self, random_bytes};
    use base64::Engine as _;
    use crest_proto::access::{AccessEvent, AccessRole, PasswordSet};
    let mut logins = Vec::new();
    for (name, role) in [("mei", AccessRole::Agent), ("tom", AccessRole::Supervisor)] {
        let agent = AgentId::new(tenant, name).map_err(|error| error.to_string())?;
        let password = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(random_bytes::<9>().map_err(|error| error.to_string())?);
        let hash = {
            let password = password.clone();
            tokio::task::spawn_blocking(move || secret::hash_password(&password))
                .await
                .map_err(|error| error.to_string())?
                .map_err(|error| error.to_string())?
        };
        access
            .store
            .append(tenant, crate::access::now_ms(), |_| {
                Ok::<_, ()>(AccessEvent::PasswordSet(PasswordSet {
                    agent: agent.clone(),
                    role,
                    password_hash: hash.clone(),
                    set_by: "demo".to_owned(),
                }))
            })
            .await
            .map_err(|error| error.to_string())?;
        logins.push(DemoKey {
            label: format!("login {name}"),
            key: password,
        });
    }
    Ok(logins)
}

/// Configures the demo tenant's widget (this node's own pages only) unless it is configured, and
/// gives its public website token as `widget token`.
async fn configure_widget(
    access: &crate::access::Access,
    tenant: &TenantId,
) -> Result<Option<DemoKey>, String> {
    use crate::access::secret::random_bytes;
    use crest_proto::access::{AccessEvent, WidgetConfigured};
    let existing = access
        .store
        .widget(tenant)
        .await
        .map_err(|error| error.to_string())?;
    let website_token = match existing {
        Some(widget) => widget.website_token,
        None => {
            let website_token = crate::access::widget::new_website_token(tenant)
                .map_err(|error| error.to_string())?;
            let salt = random_bytes::<16>().map_err(|error| error.to_string())?;
            let master_id = access.masters.current().id;
            access
                .store
                .append(tenant, crate::access::now_ms(), |_| {
                    Ok::<_, ()>(AccessEvent::WidgetConfigured(WidgetConfigured {
                        website_token: website_token.clone(),
                        origins: Vec::new(),
                        identity_required: false,
                        salt: salt.to_vec(),
                        master_id,
                        configured_by: "demo".to_owned(),
                    }))
                })
                .await
                .map_err(|error| error.to_string())?;
            website_token
        }
    };
    Ok(Some(DemoKey {
        label: "widget token".to_owned(),
        key: website_token,
    }))
}

/// Why seeding failed.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// A demo id is invalid (a programming error).
    #[error(transparent)]
    Id(#[from] IdError),
    /// A demo message was not accepted.
    #[error(transparent)]
    Command(#[from] CommandError),
    /// A demo agent was not set.
    #[error(transparent)]
    Routing(#[from] DeskError),
}

/// Seeds the `demo` tenant. Returns how many messages were new.
pub async fn seed(node: &Node) -> Result<usize, DemoError> {
    let tenant = TenantId::new("demo")?;
    seed_agents(node, &tenant).await?;
    let mut new_messages = 0;
    for (customer, id, text) in DEMO_MESSAGES {
        let message = InboundMessage {
            customer: CustomerId::new(&tenant, *customer)?,
            channel: "web".to_owned(),
            channel_message_id: (*id).to_owned(),
            text: (*text).to_owned(),
            message_id: MessageId::generate(&tenant),
        };
        let meta = EventMeta {
            idempotency_key: Some(message.idempotency_key()),
            ..EventMeta::default()
        };
        let ack = node.region().customer_message(message, meta).await?;
        if !ack.duplicate {
            new_messages += 1;
        }
    }
    Ok(new_messages)
}

/// Creates the demo agents (online) unless they exist: a later start keeps what users changed.
async fn seed_agents(node: &Node, tenant: &TenantId) -> Result<(), DemoError> {
    for (name, groups, capacity, languages) in DEMO_AGENTS {
        let agent = AgentId::new(tenant, *name)?;
        let exists = node.routing().seat(tenant, &agent).await?.is_some();
        if exists {
            continue;
        }
        let command = DeskCommand::SetAgent {
            agent,
            status: Some(Presence::Online),
            groups: Some(groups.iter().map(|group| (*group).to_owned()).collect()),
            capacity: Some(*capacity),
            languages: Some(
                languages
                    .iter()
                    .map(|language| (*language).to_owned())
                    .collect(),
            ),
        };
        node.routing().command(tenant, command).await?;
    }
    Ok(())
}
