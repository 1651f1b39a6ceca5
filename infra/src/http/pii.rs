//! PII in API answers: masked for everyone by default, revealed on request to the roles that hold
//! `pii:reveal` (admins and supervisors) — and every reveal is written to the tenant's audit log
//! before the answer leaves.
//!
//! The middleware runs inside the permission check (it needs the request's [`Principal`]). It
//! decides the request's [`PiiView`] from `?reveal=pii`, hands it to the handler as an extension
//! (the WebSocket routes mask their frames with it), and masks the strings of JSON answers.

use axum::body::{Body, to_bytes};
use axum::extract::ws::{Message, WebSocket};
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::borrow::Cow;

use crest_brain::entities::mask_pii_cow;
use crest_proto::access::AccessRole;
use serde::Serialize;
use serde_json::Value;

use super::AppState;
use super::error::ApiError;
use crate::access::Principal;

/// The query parameter (and its one value) that asks for PII in clear.
const REVEAL: &str = "reveal=pii";

/// Largest answer the middleware masks in memory (event pages are far below it).
const MAX_MASKED_BYTES: usize = 16 * 1024 * 1024;

/// How a request sees PII.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PiiView {
    /// Phones, emails, ID cards, bank cards and addresses masked (`138****5678`).
    Masked,
    /// In clear, audited.
    Revealed,
}

impl PiiView {
    /// `value` as this view shows it.
    pub fn apply(self, value: &mut Value) {
        if self == Self::Masked {
            mask_value(value);
        }
    }
}

/// Marks an answer that holds only identifiers the API made (an acknowledgement): the middleware
/// passes it through without parsing it. Handlers on the ingest path add it.
#[derive(Debug, Clone, Copy)]
pub struct IdentifiersOnly;

/// Whether `role` holds `pii:reveal`.
#[must_use]
pub fn may_reveal(role: AccessRole) -> bool {
    matches!(role, AccessRole::Admin | AccessRole::Supervisor)
}

/// Object keys whose string values are identifiers, codes or labels the API itself defines: never
/// free text a customer wrote, and needed in clear to address what was read.
fn is_identifier_key(key: &str) -> bool {
    const KEYS: &[&str] = &[
        "id",
        "type",
        "kind",
        "status",
        "state",
        "role",
        "intent",
        "language",
        "channel",
        "tenant",
        "conversation",
        "agent",
        "group",
        "ticket",
        "emotion",
        "label",
        "priority",
        "tier",
        "at",
        "action",
        "actor",
    ];
    KEYS.contains(&key) || key.ends_with("_id") || key.ends_with("_at")
}

/// Masks every free-text string in `value`, keeping identifier fields (see
/// [`is_identifier_key`]) as they are.
pub fn mask_value(value: &mut Value) {
    match value {
        Value::String(text) => {
            if let Cow::Owned(masked) = mask_pii_cow(text) {
                *text = masked;
            }
        }
        Value::Array(items) => items.iter_mut().for_each(mask_value),
        Value::Object(fields) => {
            for (key, field) in fields.iter_mut() {
                if field.is_string() && is_identifier_key(key) {
                    continue;
                }
                mask_value(field);
            }
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

/// Sends `value` as a JSON text frame, as `view` shows it.
pub async fn send_frame(
    socket: &mut WebSocket,
    value: &impl Serialize,
    view: PiiView,
) -> Result<(), ()> {
    let mut value = serde_json::to_value(value).map_err(|_| ())?;
    view.apply(&mut value);
    let text = serde_json::to_string(&value).map_err(|_| ())?;
    socket
        .send(Message::Text(text.into()))
        .await
        .map_err(|_| ())
}

/// The query without `reveal=pii`, and whether it was there.
fn without_reveal(query: &str) -> (String, bool) {
    let mut found = false;
    let kept: Vec<&str> = query
        .split('&')
        .filter(|pair| {
            let reveal = *pair == REVEAL;
            found |= reveal;
            !reveal && !pair.is_empty()
        })
        .collect();
    (kept.join("&"), found)
}

/// The middleware (see the module's documentation).
pub async fn protect(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let (kept_query, asked) = request
        .uri()
        .query()
        .map_or((String::new(), false), without_reveal);
    let view = if asked {
        let principal = request.extensions().get::<Principal>().cloned();
        match principal {
            Some(Principal::Tenant {
                tenant,
                role,
                actor,
                ..
            }) if may_reveal(role) => {
                let target = request.uri().path().to_owned();
                if let Err(error) = state
                    .access
                    .audit
                    .record(&tenant, "pii.revealed", &actor, &target, "?reveal=pii")
                    .await
                {
                    return ApiError::unavailable(
                        "unavailable",
                        format!("the reveal cannot be audited ({error}); retry"),
                        1,
                    )
                    .into_response();
                }
                PiiView::Revealed
            }
            Some(Principal::Tenant { role, .. }) => {
                return ApiError::new(
                    StatusCode::FORBIDDEN,
                    "forbidden",
                    format!(
                        "the {} role may not reveal PII (pii:reveal belongs to admins and supervisors)",
                        role.as_str()
                    ),
                )
                .into_response();
            }
            _ => {
                return ApiError::new(
                    StatusCode::FORBIDDEN,
                    "forbidden",
                    "only a tenant's admin or supervisor may reveal PII",
                )
                .into_response();
            }
        }
    } else {
        PiiView::Masked
    };
    if asked {
        let path = request.uri().path();
        let rebuilt = if kept_query.is_empty() {
            path.to_owned()
        } else {
            format!("{path}?{kept_query}")
        };
        if let Ok(uri) = rebuilt.parse() {
            *request.uri_mut() = uri;
        }
    }
    request.extensions_mut().insert(view);
    let response = next.run(request).await;
    if view == PiiView::Revealed
        || !is_json(&response)
        || response.extensions().get::<IdentifiersOnly>().is_some()
    {
        return response;
    }
    mask_response(response).await
}

fn is_json(response: &Response) -> bool {
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/json"))
}

async fn mask_response(response: Response) -> Response {
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = to_bytes(body, MAX_MASKED_BYTES).await else {
        return ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the answer could not be read to mask it",
        )
        .into_response();
    };
    let Ok(mut value) = serde_json::from_slice::<Value>(&bytes) else {
        return Response::from_parts(parts, Body::from(bytes));
    };
    mask_value(&mut value);
    let Ok(masked) = serde_json::to_vec(&value) else {
        return Response::from_parts(parts, Body::from(bytes));
    };
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(masked))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn free_text_is_masked_and_identifiers_are_kept() {
        let mut value = json!({
            "conversation_id": "01JB3ZD1QK2C3Y4X5W6V7T8S9R",
            "customer": "13812345678",
            "messages": [{"role": "customer", "text": "call 13812345678 or mail alice@shop.com"}],
            "seq": 3
        });
        mask_value(&mut value);
        assert_eq!(
            value,
            json!({
                "conversation_id": "01JB3ZD1QK2C3Y4X5W6V7T8S9R",
                "customer": "138****5678",
                "messages": [{"role": "customer", "text": "call 138****5678 or mail a***@shop.com"}],
                "seq": 3
            })
        );
    }

    #[test]
    fn the_reveal_parameter_is_taken_out_and_others_kept() {
        assert_eq!(
            without_reveal("after=3&reveal=pii&limit=5"),
            ("after=3&limit=5".to_owned(), true)
        );
        assert_eq!(without_reveal("after=3"), ("after=3".to_owned(), false));
        assert_eq!(
            without_reveal("reveal=all"),
            ("reveal=all".to_owned(), false)
        );
    }

    #[test]
    fn only_admins_and_supervisors_reveal() {
        assert!(may_reveal(AccessRole::Admin));
        assert!(may_reveal(AccessRole::Supervisor));
        assert!(!may_reveal(AccessRole::Agent));
        assert!(!may_reveal(AccessRole::Integration));
    }
}
