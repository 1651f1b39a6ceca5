//! One customer across channels: a customer's identities
//! (`PUT`/`GET /v1/tenants/{t}/customers/{customer}/identities`), merging one customer into another
//! on strong evidence (`POST /v1/tenants/{t}/customers/merge`) and undoing a merge
//! (`POST /v1/tenants/{t}/customers/merges/{id}/undo`). Identities are events of the customer's
//! stream; merges and undos are events of the tenant's routing desk, which routes a merged
//! customer's messages (see `crest_actors::customer::merges`). Both are audited.

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use crest_actors::command::CommandError;
use crest_actors::conversation::decide::Rejection;
use crest_actors::customer::merges::{WeakEvidence, check_evidence};
use crest_actors::desk::DeskCommand;
use crest_proto::commands::ConversationCommand;
use crest_proto::customers::{
    CustomerMergeUndone, CustomersMerged, EvidenceKind, Identity, IdentityKind, IdentityRecorded,
    MergeEvidence,
};
use crest_proto::envelope::EventMeta;
use crest_proto::{CustomerId, MergeId, StreamId, TenantId};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::body::Object;
use super::conversation_routing::effects_delivered;
use super::error::ApiError;
use super::{AppState, tenant};
use crate::access::Principal;

/// Longest identity value (an email, an external id).
const MAX_IDENTITY_LEN: usize = 254;
/// Longest reason of a merge.
const MAX_REASON_LEN: usize = 500;
/// Why a merged-away customer's open conversation was closed.
pub const MERGED_CLOSE_REASON: &str = "merged";

/// Body of `PUT …/customers/{customer}/identities`: one identity of the customer.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutIdentity {
    /// `channel` (a channel's own id of the customer), `phone`, `email`, `union_id` (a platform's
    /// id across its apps) or `order` (an order the customer owns).
    #[schema(example = "phone")]
    kind: IdentityKind,
    /// The value: the external id, the phone (digits, an optional leading `+`; spaces and dashes
    /// are dropped), the email (kept lowercase), the union id or the order id.
    #[schema(min_length = 1, max_length = 254, example = "+8613800138000")]
    value: String,
    /// The channel of a `channel` identity (`wechat`, `taobao`, …); only with `kind: channel`.
    #[schema(pattern = r"^[a-z0-9][a-z0-9_-]{0,63}$", example = "wechat")]
    channel: Option<String>,
    /// True if the merchant verified the phone or email (a code sent and typed back); only phones
    /// and emails can be verified. Default false. Recording the identity again with another value
    /// changes it.
    #[serde(default)]
    verified: bool,
}

/// One identity in an answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct IdentityView {
    /// `channel`, `phone`, `email`, `union_id` or `order`.
    pub kind: &'static str,
    /// The channel of a `channel` identity.
    pub channel: Option<String>,
    /// The value (phones and emails masked unless revealed).
    pub value: String,
    /// Whether the merchant verified it.
    pub verified: bool,
}

/// Answer of `GET`/`PUT …/customers/{customer}/identities`.
#[derive(Debug, Serialize, ToSchema)]
pub struct CustomerIdentities {
    /// The customer id.
    pub customer: String,
    /// Every identity, each as last recorded, in the order first recorded.
    pub identities: Vec<IdentityView>,
}

fn identities_view(customer: &CustomerId, found: &[IdentityRecorded]) -> CustomerIdentities {
    CustomerIdentities {
        customer: customer.key().to_owned(),
        identities: found
            .iter()
            .map(|recorded| IdentityView {
                kind: recorded.identity.kind.as_str(),
                channel: recorded.identity.channel.clone(),
                value: recorded.identity.value.clone(),
                verified: recorded.verified,
            })
            .collect(),
    }
}

/// Longest chain of merges followed.
const MAX_CHAIN: usize = 64;

/// The customers `customer`'s messages go to, in order: the customer it is merged into, the one
/// that one is merged into, … (empty unless `customer` was merged away).
pub async fn merge_chain(
    state: &AppState,
    customer: &CustomerId,
) -> Result<Vec<CustomerId>, ApiError> {
    let mut chain: Vec<CustomerId> = Vec::new();
    let mut current = customer.clone();
    while chain.len() < MAX_CHAIN {
        let Some(into) = state.node.routing().merged_into(&current).await? else {
            break;
        };
        chain.push(into.clone());
        current = into;
    }
    Ok(chain)
}

fn customer_id(tenant: &TenantId, raw: &str) -> Result<CustomerId, ApiError> {
    CustomerId::new(tenant, raw).map_err(|error| ApiError::invalid_id(&error))
}

/// Checks and normalises an identity from the API.
fn identity(body: PutIdentity) -> Result<(Identity, bool), ApiError> {
    let invalid = |reason: String| ApiError::bad_request("invalid_identity", reason);
    let trimmed = body.value.trim();
    if trimmed.is_empty() || trimmed.len() > MAX_IDENTITY_LEN {
        return Err(invalid(format!(
            "value must be 1-{MAX_IDENTITY_LEN} characters"
        )));
    }
    if trimmed.chars().any(char::is_control) {
        return Err(invalid(
            "value must not contain control characters".to_owned(),
        ));
    }
    if body.verified && !body.kind.can_be_verified() {
        return Err(invalid(format!(
            "only phones and emails can be verified, not a {} identity",
            body.kind.as_str()
        )));
    }
    let value = match body.kind {
        IdentityKind::Phone => {
            crest_proto::customers::normalise_phone(trimmed).ok_or_else(|| {
                invalid("a phone is 5-20 digits with an optional leading +".to_owned())
            })?
        }
        IdentityKind::Email => {
            if !trimmed.contains('@') || trimmed.chars().any(char::is_whitespace) {
                return Err(invalid("an email is local@domain".to_owned()));
            }
            trimmed.to_lowercase()
        }
        IdentityKind::Channel | IdentityKind::UnionId | IdentityKind::Order => trimmed.to_owned(),
    };
    let channel = match (body.kind, body.channel) {
        (IdentityKind::Channel, Some(channel)) => {
            crest_proto::ids::validate_channel(&channel)
                .map_err(|error| invalid(error.to_string()))?;
            Some(channel)
        }
        (IdentityKind::Channel, None) => {
            return Err(invalid("a channel identity names its channel".to_owned()));
        }
        (_, Some(_)) => {
            return Err(invalid(
                "only a channel identity names a channel".to_owned(),
            ));
        }
        (_, None) => None,
    };
    Ok((
        Identity {
            kind: body.kind,
            channel,
            value,
        },
        body.verified,
    ))
}

/// `PUT /v1/tenants/{t}/customers/{customer}/identities`: records one identity of the customer
/// (again, to change whether it is verified).
#[utoipa::path(
    put,
    path = "/v1/tenants/{tenant}/customers/{customer}/identities",
    tag = "customers",
    params(super::openapi::TenantPath, super::openapi::CustomerPath),
    request_body = PutIdentity,
    responses(
        (status = 200, description = "Every identity of the customer, this one included.", body = CustomerIdentities),
    )
)]
pub async fn put_identity(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path((raw_tenant, raw_customer)): Path<(String, String)>,
    body: Result<Json<Object<PutIdentity>>, JsonRejection>,
) -> Result<Json<CustomerIdentities>, ApiError> {
    let tenant = tenant(&raw_tenant)?;
    let customer = customer_id(&tenant, &raw_customer)?;
    let Json(Object(body)) = body?;
    let (identity, verified) = identity(body)?;
    let detail = format!(
        "kind={} verified={verified}{}",
        identity.kind.as_str(),
        identity
            .channel
            .as_deref()
            .map(|channel| format!(" channel={channel}"))
            .unwrap_or_default()
    );
    let found = state
        .node
        .region()
        .customer_identities(&customer, Some((identity, verified)))
        .await?;
    state
        .access
        .audit
        .record_or_log(
            &tenant,
            "customer.identity_recorded",
            &principal.actor(),
            &format!("customer:{}", customer.key()),
            &detail,
        )
        .await;
    Ok(Json(identities_view(&customer, &found)))
}

/// `GET /v1/tenants/{t}/customers/{customer}/identities`
#[utoipa::path(
    get,
    path = "/v1/tenants/{tenant}/customers/{customer}/identities",
    tag = "customers",
    params(super::openapi::TenantPath, super::openapi::CustomerPath),
    responses(
        (status = 200, description = "Every identity of the customer (none for an unknown customer).", body = CustomerIdentities),
    )
)]
pub async fn get_identities(
    State(state): State<AppState>,
    Path((raw_tenant, raw_customer)): Path<(String, String)>,
) -> Result<Json<CustomerIdentities>, ApiError> {
    let tenant = tenant(&raw_tenant)?;
    let customer = customer_id(&tenant, &raw_customer)?;
    let found = state
        .node
        .region()
        .customer_identities(&customer, None)
        .await?;
    Ok(Json(identities_view(&customer, &found)))
}

/// The evidence of a merge.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EvidenceBody {
    /// `verified_phone` (a phone both customers have as a verified identity) or `shared_order`
    /// (an order both own: recorded as an `order` identity, or owned by the customer in the
    /// merchant's order system). Anything else, a name above all, is refused with 422.
    #[schema(example = "verified_phone")]
    kind: String,
    /// The phone or the order id.
    #[schema(min_length = 1, max_length = 254, example = "+8613800138000")]
    value: String,
}

/// Body of `POST …/customers/merge`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PostMerge {
    /// The customer merged away: its messages go to `into`'s conversation from now on.
    #[schema(min_length = 1, max_length = 128, pattern = r"^[A-Za-z0-9._@+:-]+$")]
    from: String,
    /// The customer that remains.
    #[schema(min_length = 1, max_length = 128, pattern = r"^[A-Za-z0-9._@+:-]+$")]
    into: String,
    /// Why, in the words of whoever merges (kept with the merge and in the audit log).
    #[schema(min_length = 1, max_length = 500)]
    reason: String,
    /// What proves they are one person.
    #[schema(value_type = EvidenceBody)]
    evidence: Object<EvidenceBody>,
}

/// Answer of `POST …/customers/merge` and of its undo.
#[derive(Debug, Serialize, ToSchema)]
pub struct MergeView {
    /// The merge id (undo it with `POST …/customers/merges/{id}/undo`).
    pub id: String,
    /// The customer merged away.
    pub from: String,
    /// The customer that remains.
    pub into: String,
    /// True once undone.
    pub undone: bool,
    /// The open conversation of `from` closed by the merge (reason `merged`), if it had one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub closed_conversation: Option<String>,
}

fn weak(reason: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "weak_evidence", reason)
}

fn evidence_kind(kind: &str) -> Result<EvidenceKind, ApiError> {
    match kind {
        "verified_phone" => Ok(EvidenceKind::VerifiedPhone),
        "shared_order" => Ok(EvidenceKind::SharedOrder),
        "name" => Err(weak(
            "a name is never evidence that two customers are one person; use a verified_phone \
             both have or a shared_order both own",
        )),
        other => Err(weak(format!(
            "{other:?} is not evidence; use verified_phone or shared_order"
        ))),
    }
}

/// `customer`'s identities, with the order `order` added when the merchant's order system says
/// the customer owns it (and no identity says so already).
async fn identities_with_order(
    state: &AppState,
    customer: &CustomerId,
    order: Option<&str>,
) -> Result<Vec<IdentityRecorded>, ApiError> {
    let mut found = state
        .node
        .region()
        .customer_identities(customer, None)
        .await?;
    let Some(order) = order else {
        return Ok(found);
    };
    let recorded = found
        .iter()
        .any(|known| known.identity.kind == IdentityKind::Order && known.identity.value == order);
    if recorded {
        return Ok(found);
    }
    let commerce = state.commerce.adapter();
    let tenant = customer.tenant().clone();
    let order_id = order.to_owned();
    // The adapter blocks (an HTTP call to the merchant): off the async workers.
    let owner = tokio::task::spawn_blocking(move || commerce.order(&tenant, &order_id))
        .await
        .map_err(|error| ApiError::unavailable("commerce_unavailable", error.to_string(), 1))?
        .map_err(|error| super::orders::commerce_error(&error))?
        .map(|found| found.customer);
    if owner.as_deref() == Some(customer.key()) {
        found.push(IdentityRecorded {
            identity: Identity {
                kind: IdentityKind::Order,
                channel: None,
                value: order.to_owned(),
            },
            verified: false,
        });
    }
    Ok(found)
}

/// Closes `customer`'s open conversation, if any, so that only the surviving customer's is open;
/// answers it. A conversation that closed meanwhile is no matter.
async fn close_open_conversation(
    state: &AppState,
    customer: &CustomerId,
) -> Result<Option<String>, ApiError> {
    let Some(open) = state.node.region().open_conversation(customer).await? else {
        return Ok(None);
    };
    let command = ConversationCommand::Close {
        reason: MERGED_CLOSE_REASON.to_owned(),
    };
    match state
        .node
        .region()
        .conversation_command(&open, command, EventMeta::default())
        .await
    {
        Ok(_) | Err(CommandError::Rejected(Rejection::Closed)) => Ok(Some(open.key())),
        Err(error) => Err(error.into()),
    }
}

/// `POST /v1/tenants/{t}/customers/merge`: merges customer `from` into `into` on strong
/// evidence. From then on `from`'s messages, whatever their channel, go to `into`'s one open
/// conversation (`from`'s own open conversation, if any, is closed with reason `merged`), and
/// `into`'s history lists `from`'s conversations. Never automatic: a person asks, with a reason.
#[utoipa::path(
    post,
    path = "/v1/tenants/{tenant}/customers/merge",
    tag = "customers",
    params(super::openapi::TenantPath),
    request_body = PostMerge,
    responses(
        (status = 201, description = "Merged: `{id, from, into, undone: false, closed_conversation?}`.", body = MergeView),
        (status = 409, description = "The merges refuse it (`merge_refused`): the same customer, `from` already merged away, `into` merged away, or a loop.", body = crest_proto::api::ErrorBody),
        (status = 422, description = "The evidence does not prove one person (`weak_evidence`): a name, a phone not verified on both, an order not owned by both.", body = crest_proto::api::ErrorBody),
    )
)]
pub async fn post_merge(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(raw_tenant): Path<String>,
    body: Result<Json<Object<PostMerge>>, JsonRejection>,
) -> Result<(StatusCode, Json<MergeView>), ApiError> {
    let tenant = tenant(&raw_tenant)?;
    let Json(Object(body)) = body?;
    // Both customers are read within the credential's tenant: another tenant's customer is
    // never named, so never merged.
    let from = customer_id(&tenant, &body.from)?;
    let into = customer_id(&tenant, &body.into)?;
    let reason = body.reason.trim().to_owned();
    if reason.is_empty() || reason.len() > MAX_REASON_LEN {
        return Err(ApiError::bad_request(
            "invalid_reason",
            format!("reason must be 1-{MAX_REASON_LEN} characters"),
        ));
    }
    if from == into {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "merge_refused",
            "a customer cannot be merged into itself",
        ));
    }
    let Object(evidence) = body.evidence;
    let kind = evidence_kind(&evidence.kind)?;
    let value = match kind {
        EvidenceKind::VerifiedPhone => {
            crest_proto::customers::normalise_phone(evidence.value.trim())
                .ok_or_else(|| weak("the evidence's phone is not a phone number"))?
        }
        EvidenceKind::SharedOrder => evidence.value.trim().to_owned(),
    };
    let order = (kind == EvidenceKind::SharedOrder).then_some(value.as_str());
    let from_identities = identities_with_order(&state, &from, order).await?;
    let into_identities = identities_with_order(&state, &into, order).await?;
    let evidence = MergeEvidence { kind, value };
    check_evidence(
        &evidence,
        (&from, &from_identities),
        (&into, &into_identities),
    )
    .map_err(|error: WeakEvidence| weak(error.to_string()))?;
    let merge = MergeId::generate(&tenant);
    let merged = CustomersMerged {
        merge: merge.clone(),
        from: from.clone(),
        into: into.clone(),
        reason: reason.clone(),
        evidence,
        by: principal.actor(),
    };
    // The reactor tells `from`'s actor that its messages go elsewhere now; the answer waits for
    // that (bounded), so the next message after the answer joins `into`'s conversation.
    let watch = state.node.reactor().watch(&StreamId::desk(&tenant));
    let appended_to = state
        .node
        .routing()
        .command(&tenant, DeskCommand::MergeCustomers(Box::new(merged)))
        .await?;
    effects_delivered(watch, appended_to).await;
    state
        .access
        .audit
        .record_or_log(
            &tenant,
            "customer.merged",
            &principal.actor(),
            &format!("customer:{}", from.key()),
            &format!(
                "merge={} into={} evidence={} reason={reason}",
                merge.key(),
                into.key(),
                kind.as_str()
            ),
        )
        .await;
    let closed_conversation = close_open_conversation(&state, &from).await?;
    Ok((
        StatusCode::CREATED,
        Json(MergeView {
            id: merge.key(),
            from: from.key().to_owned(),
            into: into.key().to_owned(),
            undone: false,
            closed_conversation,
        }),
    ))
}

/// `POST /v1/tenants/{t}/customers/merges/{id}/undo`: reverses a merge exactly. Both customers'
/// histories are separate again and `from`'s next message goes to a conversation of its own.
#[utoipa::path(
    post,
    path = "/v1/tenants/{tenant}/customers/merges/{id}/undo",
    tag = "customers",
    params(super::openapi::TenantPath, super::openapi::UlidPath),
    responses(
        (status = 200, description = "Undone: `{id, from, into, undone: true}`.", body = MergeView),
        (status = 404, description = "No such merge in this tenant.", body = crest_proto::api::ErrorBody),
        (status = 409, description = "Undone already (`already_undone`).", body = crest_proto::api::ErrorBody),
    )
)]
pub async fn post_undo(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path((raw_tenant, raw_merge)): Path<(String, String)>,
) -> Result<Json<MergeView>, ApiError> {
    let tenant = tenant(&raw_tenant)?;
    let merge =
        MergeId::parse(&tenant, &raw_merge).map_err(|error| ApiError::invalid_id(&error))?;
    let record = state
        .node
        .routing()
        .merge(&tenant, &merge)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no merge {}", merge.key())))?;
    let undone = CustomerMergeUndone {
        merge: merge.clone(),
        from: record.from.clone(),
        into: record.into.clone(),
        by: principal.actor(),
    };
    let watch = state.node.reactor().watch(&StreamId::desk(&tenant));
    let appended_to = state
        .node
        .routing()
        .command(&tenant, DeskCommand::UndoMerge(undone))
        .await?;
    effects_delivered(watch, appended_to).await;
    state
        .access
        .audit
        .record_or_log(
            &tenant,
            "customer.merge_undone",
            &principal.actor(),
            &format!("customer:{}", record.from.key()),
            &format!("merge={} into={}", merge.key(), record.into.key()),
        )
        .await;
    Ok(Json(MergeView {
        id: merge.key(),
        from: record.from.key().to_owned(),
        into: record.into.key().to_owned(),
        undone: true,
        closed_conversation: None,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crest_proto::customers::normalise_phone;

    #[test]
    fn phones_keep_digits_and_a_leading_plus_only() {
        assert_eq!(
            normalise_phone("+86 138-0013-8000").as_deref(),
            Some("+8613800138000")
        );
        assert_eq!(normalise_phone("(010) 1234").as_deref(), Some("0101234"));
        assert_eq!(normalise_phone("1234"), None);
        assert_eq!(normalise_phone("Zhang San"), None);
        assert_eq!(normalise_phone("+"), None);
    }

    #[test]
    fn a_name_is_never_evidence() {
        let error = evidence_kind("name").expect_err("a name is refused");
        assert_eq!(error.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(evidence_kind("email").is_err());
        assert_eq!(
            evidence_kind("verified_phone").expect("a kind"),
            EvidenceKind::VerifiedPhone
        );
    }
}
