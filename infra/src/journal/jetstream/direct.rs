//! Batched direct gets (server 2.11+): many messages of one subject filter in a single request.
//!
//! async-nats 0.51 sends direct gets for one message only, so the journal makes the request itself:
//! it subscribes to a fresh inbox, publishes `{"seq", "next_by_subj", "batch"}` to
//! `$JS.API.DIRECT.GET.<stream>` with that inbox as the reply subject (the subscription goes out
//! first on the same connection, so the server knows it before the request), and collects the
//! replies until the server's end-of-batch marker (status 204), or a 404 when nothing matches.
//!
//! Direct gets may be answered by any replica of the stream, including one that has not applied the
//! latest writes yet: callers that need read-after-write use the stream leader to confirm the end of
//! what they read (see `JetStreamJournal::read`).

use std::time::Duration;

use async_nats::HeaderMap;
use bytes::Bytes;
use futures::StreamExt;

/// One message returned by a direct get.
#[derive(Debug, Clone)]
pub struct DirectMessage {
    /// The message's stream sequence number.
    pub sequence: u64,
    /// Its headers (the publisher's, plus the server's `Nats-*` ones).
    pub headers: HeaderMap,
    /// Its payload.
    pub payload: Bytes,
    /// Its subject.
    pub subject: String,
}

/// Why a batched direct get failed (the message is lowercase text for storage errors).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("direct get from {stream}: {reason}")]
pub struct DirectGetFailed {
    stream: String,
    reason: String,
}

/// Attempts of a direct get that found no responder: a stream just created (or whose replicas
/// are re-forming after a server restart) answers direct gets only after a moment.
const NO_RESPONDER_ATTEMPTS: u32 = 12;
/// First pause after "no responders"; doubles up to 1 s (about 6 s in all).
const NO_RESPONDER_PAUSE: Duration = Duration::from_millis(50);

/// Up to `batch` messages of `stream` whose subject matches `filter`, starting at stream sequence
/// `start`, in stream order; empty if none. Each reply must arrive within `timeout`.
pub async fn batch_get(
    client: &async_nats::Client,
    api_prefix: &str,
    stream: &str,
    filter: &str,
    start: u64,
    batch: usize,
    timeout: Duration,
) -> Result<Vec<DirectMessage>, DirectGetFailed> {
    let mut pause = NO_RESPONDER_PAUSE;
    let mut attempt = 1;
    loop {
        match batch_get_once(client, api_prefix, stream, filter, start, batch, timeout).await {
            Err(Unanswered::NoResponders(failed)) if attempt >= NO_RESPONDER_ATTEMPTS => {
                return Err(failed);
            }
            Err(Unanswered::NoResponders(_)) => {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(1));
                attempt += 1;
            }
            Err(Unanswered::Failed(failed)) => return Err(failed),
            Ok(messages) => return Ok(messages),
        }
    }
}

/// Why one direct get brought nothing.
enum Unanswered {
    /// No server answers direct gets of the stream (yet).
    NoResponders(DirectGetFailed),
    /// Anything else.
    Failed(DirectGetFailed),
}

impl From<DirectGetFailed> for Unanswered {
    fn from(failed: DirectGetFailed) -> Self {
        Self::Failed(failed)
    }
}

async fn batch_get_once(
    client: &async_nats::Client,
    api_prefix: &str,
    stream: &str,
    filter: &str,
    start: u64,
    batch: usize,
    timeout: Duration,
) -> Result<Vec<DirectMessage>, Unanswered> {
    let failed = |reason: String| DirectGetFailed {
        stream: stream.to_owned(),
        reason,
    };
    let inbox = client.new_inbox();
    let mut replies = client
        .subscribe(inbox.clone())
        .await
        .map_err(|error| failed(error.to_string()))?;
    let request = serde_json::json!({
        "seq": start.max(1),
        "next_by_subj": filter,
        "batch": batch.max(1),
    });
    let body = serde_json::to_vec(&request).map_err(|error| failed(error.to_string()))?;
    client
        .publish_with_reply(
            format!("{api_prefix}.DIRECT.GET.{stream}"),
            inbox,
            Bytes::from(body),
        )
        .await
        .map_err(|error| failed(error.to_string()))?;
    let mut messages = Vec::new();
    loop {
        let reply = tokio::time::timeout(timeout, replies.next())
            .await
            .map_err(|_| failed("timed out waiting for the server".to_owned()))?
            .ok_or_else(|| failed("reply subscription closed".to_owned()))?;
        match reply.status.map(|status| status.as_u16()) {
            None | Some(200) => {}
            // End of the batch, or nothing matched.
            Some(204 | 404) => break,
            Some(503) if messages.is_empty() => {
                return Err(Unanswered::NoResponders(failed(
                    "no responders (is the stream there?)".to_owned(),
                )));
            }
            Some(503) => {
                return Err(failed("no responders (is the stream there?)".to_owned()).into());
            }
            Some(status) => {
                let description = reply.description.unwrap_or_default();
                return Err(failed(format!("status {status} {description}")).into());
            }
        }
        let headers = reply.headers.unwrap_or_default();
        let sequence = headers
            .get(async_nats::header::NATS_SEQUENCE)
            .and_then(|value| value.as_str().parse::<u64>().ok())
            .ok_or_else(|| failed("reply without a sequence number".to_owned()))?;
        let subject = headers
            .get(async_nats::header::NATS_SUBJECT)
            .map(|value| value.as_str().to_owned())
            .ok_or_else(|| failed("reply without a subject".to_owned()))?;
        messages.push(DirectMessage {
            sequence,
            headers,
            payload: reply.payload,
            subject,
        });
    }
    let _ = replies.unsubscribe().await;
    Ok(messages)
}
