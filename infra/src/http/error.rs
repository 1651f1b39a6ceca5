//! The API's error answer: a status and `{"error": code, "reason": explanation}`.

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use crest_actors::conversation::{CommandError, Rejection};
use crest_actors::customer::merges::MergeRefusal;
use crest_actors::desk::{DeskError, DeskRejection};
use crest_proto::IdError;
use crest_proto::api::ErrorBody;

/// An error answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Short machine-readable code.
    pub error: &'static str,
    /// What to fix.
    pub reason: String,
    /// Seconds after which a retry is welcome (503 answers).
    pub retry_after: Option<u32>,
}

impl ApiError {
    /// A 4xx/5xx answer.
    pub fn new(status: StatusCode, error: &'static str, reason: impl Into<String>) -> Self {
        Self {
            status,
            error,
            reason: reason.into(),
            retry_after: None,
        }
    }

    /// 400 with `error`.
    pub fn bad_request(error: &'static str, reason: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, error, reason)
    }

    /// 404.
    pub fn not_found(reason: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", reason)
    }

    /// 403 `forbidden`: the credential may not do this.
    pub fn forbidden(reason: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", reason)
    }

    /// 503 with Retry-After.
    pub fn unavailable(error: &'static str, reason: impl Into<String>, retry_after: u32) -> Self {
        Self {
            retry_after: Some(retry_after),
            ..Self::new(StatusCode::SERVICE_UNAVAILABLE, error, reason)
        }
    }

    /// 400 for an invalid id.
    pub fn invalid_id(error: &IdError) -> Self {
        Self::bad_request("invalid_id", error.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: self.error.to_owned(),
            reason: self.reason,
        };
        let mut response = (self.status, Json(body)).into_response();
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        match rejection {
            JsonRejection::JsonSyntaxError(error) => {
                Self::bad_request("invalid_json", error.body_text())
            }
            JsonRejection::JsonDataError(error) => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_fields",
                error.body_text(),
            ),
            JsonRejection::MissingJsonContentType(_) => Self::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the body as JSON with the header content-type: application/json",
            ),
            JsonRejection::BytesRejection(error)
                if error.status() == StatusCode::PAYLOAD_TOO_LARGE =>
            {
                Self::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "body_too_large",
                    format!(
                        "request bodies are limited to {} bytes",
                        crest_proto::api::MAX_BODY_BYTES
                    ),
                )
            }
            other => Self::new(other.status(), "invalid_body", other.body_text()),
        }
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        Self::bad_request("invalid_query", rejection.body_text())
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        Self::bad_request("invalid_path", rejection.body_text())
    }
}

impl From<CommandError> for ApiError {
    fn from(error: CommandError) -> Self {
        match error {
            CommandError::Rejected(Rejection::NotStarted) => {
                Self::not_found("conversation not found")
            }
            CommandError::Rejected(rejection) => {
                Self::new(StatusCode::CONFLICT, "rejected", rejection.to_string())
            }
            CommandError::Journal(error) => Self::unavailable(
                "journal_unavailable",
                format!("not stored ({error}); retry with the same id"),
                1,
            ),
            CommandError::Unavailable => Self::unavailable(
                "unavailable",
                "the conversation is restarting; retry with the same id",
                1,
            ),
        }
    }
}

impl From<DeskError> for ApiError {
    fn from(error: DeskError) -> Self {
        match error {
            DeskError::Rejected(rejection) => match &rejection {
                DeskRejection::UnknownAgent(_) => Self::not_found(rejection.to_string()),
                DeskRejection::NoSuchOffer { .. } => {
                    Self::new(StatusCode::CONFLICT, "no_offer", rejection.to_string())
                }
                DeskRejection::AgentUnavailable { .. } => Self::new(
                    StatusCode::CONFLICT,
                    "agent_unavailable",
                    rejection.to_string(),
                ),
                DeskRejection::NotInRouting(_) => Self::new(
                    StatusCode::CONFLICT,
                    "not_in_routing",
                    rejection.to_string(),
                ),
                DeskRejection::Invalid(reason) => Self::bad_request("invalid", reason.clone()),
                DeskRejection::Merge(MergeRefusal::UnknownMerge(_) | MergeRefusal::OtherTenant) => {
                    Self::not_found(rejection.to_string())
                }
                DeskRejection::Merge(MergeRefusal::AlreadyUndone(_)) => Self::new(
                    StatusCode::CONFLICT,
                    "already_undone",
                    rejection.to_string(),
                ),
                DeskRejection::Merge(_) => {
                    Self::new(StatusCode::CONFLICT, "merge_refused", rejection.to_string())
                }
            },
            DeskError::Journal(error) => Self::unavailable(
                "journal_unavailable",
                format!("not stored ({error}); retry"),
                1,
            ),
            DeskError::Unavailable => {
                Self::unavailable("unavailable", "routing is restarting; retry", 1)
            }
        }
    }
}
