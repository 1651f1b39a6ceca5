//! Credentials: a tenant's API keys (`POST`, `GET /v1/tenants/{t}/api-keys`, `DELETE …/{key}`) and
//! agents' logins (`POST /v1/tenants/{t}/sessions`). Passwords are set with the seat
//! (`PUT …/agents/{agent}` `{"password":…}`, in [`super::agents`]).

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use crest_proto::access::{
    AccessEvent, AccessRole, KeyIssued, KeyRevoked, PasswordSet, SessionOpened,
};
use crest_proto::{AgentId, TenantId};
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};

use super::AppState;
use super::agents::agent_id;
use super::body::Object;
use super::error::ApiError;
use super::tenant;
use super::views::rfc3339;
use crate::access::secret::{self, TokenKind};
use crate::access::store::{AccessError, AccessState};
use crate::access::{Principal, now_ms};

/// Longest key name.
const MAX_KEY_NAME_CHARS: usize = 100;

/// Shortest and longest password accepted.
pub const PASSWORD_CHARS: std::ops::RangeInclusive<usize> = 8..=128;

/// Body of `POST …/api-keys`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PostApiKey {
    /// What the key may do.
    role: AccessRole,
    /// The seat the key acts as: required for an `agent` key, allowed for a `supervisor` key.
    #[schema(min_length = 1, max_length = 128, pattern = r"^[A-Za-z0-9._@+:-]+$")]
    agent: Option<String>,
    /// A label for people (at most 100 characters, no control characters).
    #[schema(max_length = 100, pattern = r"^[^\u0000-\u001F\u007F-\u009F]*$")]
    name: Option<String>,
}

fn access_failed<R>(error: AccessError<R>) -> ApiError {
    match error {
        AccessError::Journal(error) => ApiError::unavailable(
            "journal_unavailable",
            format!("not stored ({error}); retry"),
            1,
        ),
        AccessError::Busy => ApiError::unavailable("unavailable", "access stream busy; retry", 1),
        AccessError::Refused(_) => ApiError::bad_request("invalid", "refused"),
    }
}

fn secret_failed(error: &secret::SecretError) -> ApiError {
    tracing::error!(%error, "secret generation failed");
    ApiError::unavailable("unavailable", "no secret could be made; retry", 1)
}

/// `POST /v1/tenants/{t}/api-keys`: issues a key; its text is in this answer only.
#[utoipa::path(
    post,
    path = "/v1/tenants/{tenant}/api-keys",
    tag = "access",
    params(super::openapi::TenantPath),
    request_body = PostApiKey,
    responses(
        (status = 201, description = "Issued: the key record and, in `key`, its text (shown this once).", body = Object),
    )
)]
pub async fn post_api_key(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(raw_tenant): Path<String>,
    body: Result<Json<Object<PostApiKey>>, JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let tenant = tenant(&raw_tenant)?;
    let Json(Object(body)) = body?;
    let agent = body
        .agent
        .as_deref()
        .map(|raw| agent_id(&tenant, raw))
        .transpose()?;
    if body.role == AccessRole::Agent && agent.is_none() {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_fields",
            "an agent key needs \"agent\": the seat it acts as",
        ));
    }
    if agent.is_some() && !matches!(body.role, AccessRole::Agent | AccessRole::Supervisor) {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_fields",
            "only agent and supervisor keys act as a seat (\"agent\")",
        ));
    }
    if let Some(name) = &body.name
        && (name.chars().count() > MAX_KEY_NAME_CHARS || name.chars().any(char::is_control))
    {
        return Err(ApiError::bad_request(
            "invalid_name",
            format!(
                "a key name has at most {MAX_KEY_NAME_CHARS} characters and no control characters"
            ),
        ));
    }
    let key =
        secret::new_token(TokenKind::ApiKey, &tenant).map_err(|error| secret_failed(&error))?;
    let key_hash = secret::digest(&key).to_vec();
    let key_id = ulid::Ulid::new().to_string();
    let issued_by = principal.actor();
    let now = now_ms();
    let (_, after) = state
        .access
        .store
        .append(&tenant, now, |_: &AccessState| {
            Ok::<_, ()>(AccessEvent::KeyIssued(KeyIssued {
                key_id: key_id.clone(),
                role: body.role,
                agent: agent.clone(),
                name: body.name.clone(),
                key_hash: key_hash.clone(),
                issued_by: issued_by.clone(),
            }))
        })
        .await
        .map_err(access_failed)?;
    tracing::info!(tenant = %tenant, key_id, role = body.role.as_str(), by = issued_by, "api key issued");
    state
        .access
        .audit
        .record_or_log(
            &tenant,
            "api_key.issued",
            &issued_by,
            &format!("key:{key_id}"),
            &format!(
                "role {}{}",
                body.role.as_str(),
                agent
                    .as_ref()
                    .map(|agent| format!(", agent {}", agent.key()))
                    .unwrap_or_default()
            ),
        )
        .await;
    let record = after.keys.get(&key_id).map(key_view).unwrap_or_default();
    let mut answer = record;
    answer["key"] = json!(key);
    Ok((StatusCode::CREATED, Json(answer)))
}

fn key_view(key: &crate::access::store::KeyRecord) -> Value {
    json!({
        "id": key.id,
        "role": key.role.as_str(),
        "agent": key.agent.as_ref().map(AgentId::key),
        "name": key.name,
        "issued_by": key.issued_by,
        "issued_at": rfc3339(key.issued_at_ms),
        "revoked": key.revoked,
    })
}

/// `GET /v1/tenants/{t}/api-keys`: every key (never their text), revoked ones included.
#[utoipa::path(
    get,
    path = "/v1/tenants/{tenant}/api-keys",
    tag = "access",
    params(super::openapi::TenantPath),
    responses(
        (status = 200, description = "The keys: `{\"keys\": [{id, role, agent, name, issued_by, issued_at, revoked}]}`.", body = Object),
    )
)]
pub async fn list_api_keys(
    State(state): State<AppState>,
    Path(raw_tenant): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let tenant = tenant(&raw_tenant)?;
    let access = state
        .access
        .store
        .refreshed(&tenant)
        .await
        .map_err(|error| access_failed::<()>(AccessError::Journal(error)))?;
    let mut keys: Vec<_> = access.keys.values().collect();
    keys.sort_by(|left, right| left.id.cmp(&right.id));
    Ok(Json(json!({
        "keys": keys.into_iter().map(key_view).collect::<Vec<_>>(),
    })))
}

/// `DELETE /v1/tenants/{t}/api-keys/{key}`: revokes a key at once (other nodes within a second).
#[utoipa::path(
    delete,
    path = "/v1/tenants/{tenant}/api-keys/{key}",
    tag = "access",
    params(super::openapi::TenantPath, super::openapi::KeyPath),
    responses(
        (status = 200, description = "Revoked: the key record.", body = Object),
    )
)]
pub async fn revoke_api_key(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path((raw_tenant, key_id)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let tenant = tenant(&raw_tenant)?;
    let revoked_by = principal.actor();
    let result = state
        .access
        .store
        .append(&tenant, now_ms(), |access: &AccessState| {
            match access.keys.get(&key_id) {
                None => Err(ApiError::not_found(format!("no key {key_id}"))),
                Some(key) if key.revoked => Err(ApiError::new(
                    StatusCode::CONFLICT,
                    "already_revoked",
                    format!("key {key_id} is already revoked"),
                )),
                Some(_) => Ok(AccessEvent::KeyRevoked(KeyRevoked {
                    key_id: key_id.clone(),
                    revoked_by: revoked_by.clone(),
                })),
            }
        })
        .await;
    let after = match result {
        Ok((_, after)) => after,
        Err(AccessError::Refused(error)) => return Err(error),
        Err(other) => return Err(access_failed(other)),
    };
    tracing::info!(tenant = %tenant, key_id, by = revoked_by, "api key revoked");
    state
        .access
        .audit
        .record_or_log(
            &tenant,
            "api_key.revoked",
            &revoked_by,
            &format!("key:{key_id}"),
            "",
        )
        .await;
    Ok(Json(
        after.keys.get(&key_id).map(key_view).unwrap_or_default(),
    ))
}

/// Sets a seat's password (from `PUT …/agents/{agent}`): hashes it off the async workers and
/// appends `access.password_set`, which also ends the seat's open sessions.
pub async fn set_password(
    state: &AppState,
    principal: &Principal,
    agent: &AgentId,
    password: String,
    role: AccessRole,
) -> Result<(), ApiError> {
    let length = password.chars().count();
    if !PASSWORD_CHARS.contains(&length) {
        return Err(ApiError::bad_request(
            "invalid_password",
            format!(
                "a password has {} to {} characters",
                PASSWORD_CHARS.start(),
                PASSWORD_CHARS.end()
            ),
        ));
    }
    let hash = tokio::task::spawn_blocking(move || secret::hash_password(&password))
        .await
        .map_err(|_| ApiError::unavailable("unavailable", "password hashing stopped; retry", 1))?
        .map_err(|error| secret_failed(&error))?;
    let set_by = principal.actor();
    state
        .access
        .store
        .append(agent.tenant(), now_ms(), |_: &AccessState| {
            Ok::<_, ()>(AccessEvent::PasswordSet(PasswordSet {
                agent: agent.clone(),
                role,
                password_hash: hash.clone(),
                set_by: set_by.clone(),
            }))
        })
        .await
        .map_err(access_failed)?;
    tracing::info!(tenant = %agent.tenant(), agent = agent.key(), by = set_by, "password set");
    state
        .access
        .audit
        .record_or_log(
            agent.tenant(),
            "password.set",
            &set_by,
            &format!("agent:{}", agent.key()),
            &format!("login role {}", role.as_str()),
        )
        .await;
    Ok(())
}

/// Body of `POST …/sessions`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PostSession {
    /// The seat.
    #[schema(min_length = 1, max_length = 128, pattern = r"^[A-Za-z0-9._@+:-]+$")]
    agent: String,
    /// The seat's password.
    password: String,
}

fn invalid_credentials() -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "invalid_credentials",
        "unknown seat or wrong password",
    )
}

/// `POST /v1/tenants/{t}/sessions`: an agent or supervisor logs in with their password and gets a
/// session token (`Authorization: Bearer <token>` until it expires).
#[utoipa::path(
    post,
    path = "/v1/tenants/{tenant}/sessions",
    tag = "access",
    params(super::openapi::TenantPath),
    request_body = PostSession,
    responses(
        (status = 201, description = "Logged in: `token` (a bearer credential), `expires_at`, the seat and its role.", body = Object),
        (status = 401, description = "Unknown seat or wrong password (`invalid_credentials`).", body = crest_proto::api::ErrorBody),
    )
)]
pub async fn post_session(
    State(state): State<AppState>,
    Path(raw_tenant): Path<String>,
    body: Result<Json<Object<PostSession>>, JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let tenant: TenantId = tenant(&raw_tenant)?;
    let Json(Object(body)) = body?;
    let agent = agent_id(&tenant, &body.agent)?;
    if body.password.len() > PASSWORD_CHARS.end() * 4 {
        return Err(invalid_credentials());
    }
    let access = state
        .access
        .store
        .refreshed(&tenant)
        .await
        .map_err(|error| access_failed::<()>(AccessError::Journal(error)))?;
    let record = access.passwords.get(&agent).cloned();
    let (hash, role) = record.map_or_else(
        || (secret::DECOY_PASSWORD_HASH.to_owned(), None),
        |record| (record.hash, Some(record.role)),
    );
    let password = body.password;
    let matches = tokio::task::spawn_blocking(move || secret::verify_password(&password, &hash))
        .await
        .unwrap_or(false);
    let Some(role) = role.filter(|_| matches) else {
        tracing::info!(tenant = %tenant, agent = agent.key(), "login refused");
        state
            .access
            .audit
            .record_or_log(
                &tenant,
                "login.refused",
                "anonymous",
                &format!("agent:{}", agent.key()),
                "unknown seat or wrong password",
            )
            .await;
        return Err(invalid_credentials());
    };
    let token =
        secret::new_token(TokenKind::Session, &tenant).map_err(|error| secret_failed(&error))?;
    let token_hash = secret::digest(&token).to_vec();
    let session_id = ulid::Ulid::new().to_string();
    let now = now_ms();
    let ttl_ms = u64::try_from(state.access.session_ttl.as_millis()).unwrap_or(u64::MAX);
    let expires_at_ms = now.saturating_add(ttl_ms);
    state
        .access
        .store
        .append(&tenant, now, |_: &AccessState| {
            Ok::<_, ()>(AccessEvent::SessionOpened(SessionOpened {
                session_id: session_id.clone(),
                agent: agent.clone(),
                role,
                token_hash: token_hash.clone(),
                expires_at_ms,
            }))
        })
        .await
        .map_err(access_failed)?;
    tracing::info!(tenant = %tenant, agent = agent.key(), session_id, "login");
    state
        .access
        .audit
        .record_or_log(
            &tenant,
            "login",
            &format!("session:{session_id}"),
            &format!("agent:{}", agent.key()),
            &format!("role {}", role.as_str()),
        )
        .await;
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "token": token,
            "session_id": session_id,
            "agent": agent.key(),
            "role": role.as_str(),
            "expires_at": rfc3339(expires_at_ms),
        })),
    ))
}

/// Query of `GET …/audit`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// Records after this sequence number (default 0).
    #[serde(default)]
    #[param(maximum = 18446744073709551615_u64)]
    after: u64,
    /// At most this many (default and maximum 1000; clamped to 1-1000).
    #[param(maximum = 18446744073709551615_u64)]
    limit: Option<usize>,
}

/// Most records one `GET …/audit` returns.
const MAX_AUDIT_PAGE: usize = 1000;

/// `GET /v1/tenants/{t}/audit?after=&limit=`: the tenant's audit log, oldest first (admins only).
#[utoipa::path(
    get,
    path = "/v1/tenants/{tenant}/audit",
    tag = "access",
    params(super::openapi::TenantPath, AuditQuery),
    responses(
        (status = 200, description = "`{\"records\": [...], \"last_seq\": n}`, oldest first.", body = Object),
    )
)]
pub async fn get_audit(
    State(state): State<AppState>,
    Path(raw_tenant): Path<String>,
    query: Result<axum::extract::Query<AuditQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let tenant = tenant(&raw_tenant)?;
    let axum::extract::Query(query) = query?;
    let limit = query
        .limit
        .unwrap_or(MAX_AUDIT_PAGE)
        .clamp(1, MAX_AUDIT_PAGE);
    let records = state
        .access
        .audit
        .read(&tenant, query.after, limit)
        .await
        .map_err(|error| access_failed::<()>(AccessError::Journal(error)))?;
    let last_seq = records.last().map_or(query.after, |record| record.seq);
    Ok(Json(json!({ "records": records, "last_seq": last_seq })))
}
