//! The tenant's knowledge base: upload documents (JSON or multipart), list them, read one with
//! its versions, delete one. The bot answers from the live version of each document and cites it
//! (document id, version and the passage's byte span in the document's text). See
//! [`crate::knowledge`] for how documents are journaled and indexed.

use axum::extract::{FromRequest, Multipart, Path, Request, State};
use axum::http::{StatusCode, header};
use axum::{Extension, Json};
use crest_brain::kb::{Date, UploadFormat};
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};

use super::body::Object;
use super::error::ApiError;
use super::views::rfc3339;
use super::{AppState, tenant};
use crate::access::Principal;
use crate::knowledge::{
    DocumentRecord, KnowledgeError, MAX_TEXT_BYTES, Upload, VersionRecord, check_id,
};

/// Largest request body of an upload (the file, or the JSON that holds it), in bytes.
pub const MAX_UPLOAD_BYTES: usize = 2 * 1024 * 1024;

/// The `{id}` of a knowledge-base document.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)] // read by the derive only
pub struct DocumentPath {
    /// The document id: 1-128 characters of `A-Z a-z 0-9 - _ . :`.
    #[param(
        min_length = 1,
        max_length = 128,
        pattern = r"^[A-Za-z0-9._:-]+$",
        example = "returns-policy"
    )]
    id: String,
}

/// Body of `POST …/kb/documents` as JSON.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PostDocument {
    /// The document id (default: the front matter's `id`, else derived from the title: the same
    /// title makes a new version of the same document).
    #[schema(min_length = 1, max_length = 128, pattern = r"^[A-Za-z0-9._:-]+$")]
    id: Option<String>,
    /// The title shown with citations (default: the front matter's, else the first heading or
    /// line).
    #[schema(min_length = 1, max_length = 300)]
    title: Option<String>,
    /// `markdown`, `text`, `html`, `csv` (FAQ: `id,question,answer`), `json` (FAQ: an array or
    /// JSON Lines of `{"id","question","answer"}`), `pdf` or `docx`.
    #[schema(value_type = DocumentFormat)]
    format: String,
    /// The document itself: its text, or for `pdf` and `docx` the file in base64. Its normalized
    /// text is at most 512 KiB.
    #[schema(min_length = 1)]
    body: String,
    /// First day (inclusive) the document applies, `YYYY-MM-DD` (default: the front matter's,
    /// else since always).
    #[schema(format = Date, example = "2026-10-20")]
    effective_from: Option<String>,
    /// Last day (inclusive) the document applies, `YYYY-MM-DD` (default: the front matter's,
    /// else without end).
    #[schema(format = Date, example = "2026-11-12")]
    effective_to: Option<String>,
}

/// Body of `POST …/kb/documents` as `multipart/form-data`.
#[derive(Debug, ToSchema)]
#[allow(dead_code)] // the contract's description of the form; the handler reads its parts
pub struct UploadDocumentForm {
    /// The file; its name's extension gives the format unless `format` is sent.
    #[schema(format = Binary, value_type = String)]
    file: Vec<u8>,
    /// The format (see the JSON body).
    #[schema(value_type = Option<DocumentFormat>)]
    format: Option<String>,
    /// The document id.
    id: Option<String>,
    /// The title.
    title: Option<String>,
    /// First day, `YYYY-MM-DD`.
    effective_from: Option<String>,
    /// Last day, `YYYY-MM-DD`.
    effective_to: Option<String>,
}

/// The format of an uploaded document.
#[derive(Debug, ToSchema)]
#[serde(rename_all = "snake_case")]
#[allow(dead_code)] // the contract's list of [`UploadFormat::ALL`]
pub enum DocumentFormat {
    /// Markdown with optional front matter.
    Markdown,
    /// Plain text with optional front matter.
    Text,
    /// An HTML page.
    Html,
    /// An FAQ list as CSV.
    Csv,
    /// An FAQ list as JSON.
    Json,
    /// A PDF file (its text is extracted).
    Pdf,
    /// A Word document (its paragraphs are extracted; headings stay headings).
    Docx,
}

/// `POST /v1/tenants/{t}/kb/documents` → 201 `{"id","version"}`.
#[utoipa::path(
    post,
    path = "/v1/tenants/{tenant}/kb/documents",
    tag = "knowledge",
    params(super::openapi::TenantPath),
    request_body(content(
        (PostDocument = "application/json"),
        (UploadDocumentForm = "multipart/form-data"),
    )),
    responses(
        (status = 201, description = "Published: `{id, version}`; a document id uploaded before gets the next version.", body = Object),
    )
)]
pub async fn post_document(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(raw_tenant): Path<String>,
    request: Request,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let tenant = tenant(&raw_tenant)?;
    let multipart = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("multipart/form-data"));
    let upload = if multipart {
        let form = Multipart::from_request(request, &state)
            .await
            .map_err(|rejection| {
                ApiError::new(rejection.status(), "invalid_body", rejection.body_text())
            })?;
        upload_from_form(form).await?
    } else {
        let Json(Object(body)) = Json::<Object<PostDocument>>::from_request(request, &state)
            .await
            .map_err(upload_rejection)?;
        upload_from_json(body)?
    };
    let (id, version) = state
        .knowledge
        .publish(&tenant, upload, &principal.actor())
        .await
        .map_err(knowledge_error)?;
    state
        .access
        .audit
        .record_or_log(
            &tenant,
            "kb.document_published",
            &principal.actor(),
            &format!("kb:{id}"),
            &format!("version {version}"),
        )
        .await;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "id": id, "version": version })),
    ))
}

/// `GET /v1/tenants/{t}/kb/documents`: the live documents, by id.
#[utoipa::path(
    get,
    path = "/v1/tenants/{tenant}/kb/documents",
    tag = "knowledge",
    params(super::openapi::TenantPath),
    responses(
        (status = 200, description = "`{documents: [{id, title, format, version, effective_from, effective_to, updated_at, bytes}]}`.", body = Object),
    )
)]
pub async fn list_documents(
    State(state): State<AppState>,
    Path(raw_tenant): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let tenant = tenant(&raw_tenant)?;
    let kb = state
        .knowledge
        .refreshed(&tenant)
        .await
        .map_err(|error| knowledge_error(error.into()))?;
    let documents: Vec<Value> = kb.live().filter_map(summary).collect();
    Ok(Json(json!({ "documents": documents })))
}

/// `GET /v1/tenants/{t}/kb/documents/{id}`: the document's live version with its text, and every
/// version it had.
#[utoipa::path(
    get,
    path = "/v1/tenants/{tenant}/kb/documents/{id}",
    tag = "knowledge",
    params(super::openapi::TenantPath, DocumentPath),
    responses(
        (status = 200, description = "The summary of the list plus `lang`, `structure`, `text` (what citations' byte offsets point into) and `versions: [{version, title, format, effective_from, effective_to, at, published_by, bytes}]`, oldest first.", body = Object),
    )
)]
pub async fn get_document(
    State(state): State<AppState>,
    Path((raw_tenant, id)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let tenant = tenant(&raw_tenant)?;
    check_id(&id).map_err(knowledge_error)?;
    let kb = state
        .knowledge
        .refreshed(&tenant)
        .await
        .map_err(|error| knowledge_error(error.into()))?;
    let document = kb
        .document(&id)
        .ok_or_else(|| knowledge_error(KnowledgeError::NotFound(id.clone())))?;
    let mut view = summary(document).unwrap_or_else(|| json!({}));
    if let (Some(object), Some(latest)) = (view.as_object_mut(), document.latest()) {
        object.insert("lang".to_owned(), json!(latest.lang));
        object.insert("structure".to_owned(), json!(document.structure));
        object.insert("text".to_owned(), json!(document.text));
        let versions: Vec<Value> = document.versions.iter().map(version_view).collect();
        object.insert("versions".to_owned(), json!(versions));
    }
    Ok(Json(view))
}

/// `DELETE /v1/tenants/{t}/kb/documents/{id}` → 204: every version; the bot stops citing it.
#[utoipa::path(
    delete,
    path = "/v1/tenants/{tenant}/kb/documents/{id}",
    tag = "knowledge",
    params(super::openapi::TenantPath, DocumentPath),
    responses(
        (status = 204, description = "Deleted."),
    )
)]
pub async fn delete_document(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path((raw_tenant, id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let tenant = tenant(&raw_tenant)?;
    check_id(&id).map_err(knowledge_error)?;
    let version = state
        .knowledge
        .delete(&tenant, &id, &principal.actor())
        .await
        .map_err(knowledge_error)?;
    state
        .access
        .audit
        .record_or_log(
            &tenant,
            "kb.document_deleted",
            &principal.actor(),
            &format!("kb:{id}"),
            &format!("version {version}"),
        )
        .await;
    Ok(StatusCode::NO_CONTENT)
}

/// The list's view of a document.
fn summary(document: &DocumentRecord) -> Option<Value> {
    let latest = document.latest()?;
    Some(json!({
        "id": document.id,
        "title": latest.title,
        "format": latest.format,
        "version": latest.version,
        "effective_from": latest.effective_from,
        "effective_to": latest.effective_to,
        "updated_at": rfc3339(latest.at_ms),
        "bytes": latest.bytes,
    }))
}

fn version_view(version: &VersionRecord) -> Value {
    json!({
        "version": version.version,
        "title": version.title,
        "format": version.format,
        "effective_from": version.effective_from,
        "effective_to": version.effective_to,
        "at": rfc3339(version.at_ms),
        "published_by": version.published_by,
        "bytes": version.bytes,
    })
}

fn upload_from_json(body: PostDocument) -> Result<Upload, ApiError> {
    use base64::Engine as _;
    let format = format(&body.format)?;
    let bytes = if format.is_binary() {
        let compact: String = body.body.split_whitespace().collect();
        base64::engine::general_purpose::STANDARD
            .decode(compact)
            .map_err(|error| {
                ApiError::bad_request(
                    "invalid_document",
                    format!(
                        "the body of a {} upload is the file in base64: {error}",
                        format.as_str()
                    ),
                )
            })?
    } else {
        body.body.into_bytes()
    };
    Ok(Upload {
        format,
        id: body.id,
        title: body.title,
        bytes,
        effective_from: day("effective_from", body.effective_from.as_deref())?,
        effective_to: day("effective_to", body.effective_to.as_deref())?,
    })
}

/// Reads the parts of an upload form: `file` and the optional `format`, `id`, `title`,
/// `effective_from`, `effective_to`.
async fn upload_from_form(mut form: Multipart) -> Result<Upload, ApiError> {
    let invalid = |error: axum::extract::multipart::MultipartError| {
        ApiError::new(error.status(), "invalid_body", error.body_text())
    };
    let mut file: Option<(Option<String>, Vec<u8>)> = None;
    let mut fields = std::collections::HashMap::new();
    while let Some(field) = form.next_field().await.map_err(invalid)? {
        let name = field.name().unwrap_or_default().to_owned();
        match name.as_str() {
            "file" => {
                let file_name = field.file_name().map(str::to_owned);
                let bytes = field.bytes().await.map_err(invalid)?;
                file = Some((file_name, bytes.to_vec()));
            }
            "format" | "id" | "title" | "effective_from" | "effective_to" => {
                let text = field.text().await.map_err(invalid)?;
                fields.insert(name, text);
            }
            other => {
                return Err(ApiError::bad_request(
                    "invalid_fields",
                    format!(
                        "unknown part {other:?}: send file, and optionally format, id, title, effective_from, effective_to"
                    ),
                ));
            }
        }
    }
    let Some((file_name, bytes)) = file else {
        return Err(ApiError::bad_request(
            "invalid_fields",
            "the form has no part named file",
        ));
    };
    let named = |key: &str| fields.get(key).filter(|value| !value.trim().is_empty());
    let format = match (named("format"), file_name.as_deref()) {
        (Some(name), _) => format(name)?,
        (None, Some(file_name)) => UploadFormat::from_file_name(file_name).ok_or_else(|| {
            ApiError::bad_request(
                "invalid_format",
                format!(
                    "the file name {file_name:?} does not tell the format: send a format part ({})",
                    format_names()
                ),
            )
        })?,
        (None, None) => {
            return Err(ApiError::bad_request(
                "invalid_format",
                format!("send a format part ({})", format_names()),
            ));
        }
    };
    Ok(Upload {
        format,
        id: named("id").cloned(),
        title: named("title").cloned(),
        bytes,
        effective_from: day(
            "effective_from",
            named("effective_from").map(String::as_str),
        )?,
        effective_to: day("effective_to", named("effective_to").map(String::as_str))?,
    })
}

fn format_names() -> String {
    UploadFormat::ALL
        .iter()
        .map(|format| format.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

fn format(name: &str) -> Result<UploadFormat, ApiError> {
    UploadFormat::parse(name).ok_or_else(|| {
        ApiError::bad_request(
            "invalid_format",
            format!("format {name:?} is not one of {}", format_names()),
        )
    })
}

fn day(field: &str, text: Option<&str>) -> Result<Option<Date>, ApiError> {
    let Some(text) = text.map(str::trim).filter(|text| !text.is_empty()) else {
        return Ok(None);
    };
    Date::parse(text).map(Some).ok_or_else(|| {
        ApiError::bad_request(
            "invalid_dates",
            format!("{field} {text:?} is not a date YYYY-MM-DD"),
        )
    })
}

/// A JSON body's rejection, with this route's size limit.
fn upload_rejection(rejection: axum::extract::rejection::JsonRejection) -> ApiError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        return ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("uploads are limited to {MAX_UPLOAD_BYTES} bytes"),
        );
    }
    rejection.into()
}

fn knowledge_error(error: KnowledgeError) -> ApiError {
    match error {
        KnowledgeError::Invalid { code, reason } => ApiError::bad_request(code, reason),
        KnowledgeError::TooLarge { .. } => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "document_too_large",
            format!("{error} (limit {MAX_TEXT_BYTES} bytes)"),
        ),
        KnowledgeError::NotFound(_) => ApiError::not_found(error.to_string()),
        KnowledgeError::Busy => ApiError::unavailable("unavailable", error.to_string(), 1),
        KnowledgeError::Journal(journal) => super::conversations::journal_error(journal),
    }
}
