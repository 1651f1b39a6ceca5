//! Optional LLM: an OpenAI-compatible chat-completions client, used only when configured, grounded on
//! the knowledge-base passages retrieved for the question. Every call has a timeout and a retry
//! budget; on any failure the caller keeps the retrieval answer (the LLM never blocks an answer).
//!
//! Request: `POST {base_url}/chat/completions` with `{"model", "messages":[{"role","content"}],
//! "temperature", "max_tokens"}` and `Authorization: Bearer {api_key}` when a key is set.
//! Response: `{"choices":[{"message":{"content": "..."}}]}`.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// How to reach the LLM. Off unless a base URL and model are given.
#[derive(Debug, Clone)]
pub struct LlmConfig {
    /// e.g. `http://127.0.0.1:8000/v1`.
    pub base_url: String,
    /// Model name.
    pub model: String,
    /// Bearer token, if the server wants one.
    pub api_key: Option<String>,
    /// Per-attempt timeout.
    pub timeout: Duration,
    /// Attempts after the first one.
    pub retries: u32,
    /// Most tokens in an answer.
    pub max_tokens: u32,
}

impl Default for LlmConfig {
    fn default() -> Self {
        Self {
            base_url: String::new(),
            model: String::new(),
            api_key: None,
            timeout: Duration::from_secs(3),
            retries: 1,
            max_tokens: 300,
        }
    }
}

/// Why the LLM gave no answer (the caller falls back to retrieval).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LlmError {
    /// The client could not be built.
    #[error("llm client: {0}")]
    Client(String),
    /// Every attempt failed or timed out.
    #[error("llm unavailable after {attempts} attempts: {last}")]
    Unavailable {
        /// Attempts made.
        attempts: u32,
        /// The last failure.
        last: String,
    },
    /// The answer had no text.
    #[error("llm answer was empty")]
    Empty,
}

/// A passage the answer must be grounded on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grounding {
    /// Document title.
    pub title: String,
    /// Passage text.
    pub text: String,
}

#[derive(Debug, Serialize)]
struct ChatRequest<'a> {
    model: &'a str,
    messages: Vec<ChatMessage>,
    temperature: f32,
    max_tokens: u32,
}

#[derive(Debug, Serialize, Deserialize)]
struct ChatMessage {
    role: String,
    content: String,
}

#[derive(Debug, Deserialize)]
struct ChatResponse {
    choices: Vec<Choice>,
}

#[derive(Debug, Deserialize)]
struct Choice {
    message: ChatMessage,
}

/// The chat-completions client.
#[derive(Debug, Clone)]
pub struct LlmClient {
    config: LlmConfig,
    http: reqwest::blocking::Client,
}

impl LlmClient {
    /// Builds the client.
    pub fn new(config: LlmConfig) -> Result<Self, LlmError> {
        let http = reqwest::blocking::Client::builder()
            .timeout(config.timeout)
            .build()
            .map_err(|error| LlmError::Client(error.to_string()))?;
        Ok(Self { config, http })
    }

    /// The system prompt: answer only from the passages, in the customer's language.
    #[must_use]
    pub fn grounded_messages(
        question: &str,
        passages: &[Grounding],
        lang: &str,
    ) -> Vec<(String, String)> {
        let mut context = String::new();
        for (index, passage) in passages.iter().enumerate() {
            context.push_str(&format!(
                "[{}] {}\n{}\n\n",
                index + 1,
                passage.title,
                passage.text
            ));
        }
        let language = if lang == "zh" { "Chinese" } else { "English" };
        let system = format!(
            "You are a customer-service assistant of an online shop. Answer only from the passages \
             below; if they do not contain the answer, say you do not know and offer a human agent. \
             Answer in {language}, briefly and politely.\n\nPassages:\n{context}"
        );
        vec![
            ("system".to_owned(), system),
            ("user".to_owned(), question.to_owned()),
        ]
    }

    /// Asks for an answer grounded on `passages`, within the timeout and retry budget.
    pub fn answer(
        &self,
        question: &str,
        passages: &[Grounding],
        lang: &str,
    ) -> Result<String, LlmError> {
        let messages = Self::grounded_messages(question, passages, lang)
            .into_iter()
            .map(|(role, content)| ChatMessage { role, content })
            .collect();
        let request = ChatRequest {
            model: &self.config.model,
            messages,
            temperature: 0.2,
            max_tokens: self.config.max_tokens,
        };
        let url = format!(
            "{}/chat/completions",
            self.config.base_url.trim_end_matches('/')
        );
        let attempts = self.config.retries + 1;
        let mut last = String::new();
        for _ in 0..attempts {
            let mut call = self.http.post(&url).json(&request);
            if let Some(key) = &self.config.api_key {
                call = call.bearer_auth(key);
            }
            let response = match call.send() {
                Ok(response) => response,
                Err(error) => {
                    last = error.to_string();
                    continue;
                }
            };
            if !response.status().is_success() {
                last = format!("status {}", response.status());
                continue;
            }
            match response.json::<ChatResponse>() {
                Ok(parsed) => {
                    let text = parsed
                        .choices
                        .into_iter()
                        .next()
                        .map(|choice| choice.message.content.trim().to_owned())
                        .unwrap_or_default();
                    if text.is_empty() {
                        return Err(LlmError::Empty);
                    }
                    return Ok(text);
                }
                Err(error) => last = error.to_string(),
            }
        }
        Err(LlmError::Unavailable { attempts, last })
    }
}

#[cfg(test)]
mod tests {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::TcpListener;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// A real HTTP server on loopback answering `responses` in turn (status, body); records bodies.
    fn serve(
        responses: Vec<(u16, String)>,
    ) -> (String, Arc<std::sync::Mutex<Vec<String>>>, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let count = Arc::new(AtomicUsize::new(0));
        let (seen_by_server, count_by_server) = (Arc::clone(&seen), Arc::clone(&count));
        std::thread::spawn(move || {
            for (stream, (status, body)) in listener.incoming().zip(responses) {
                let Ok(mut stream) = stream else { return };
                let mut reader = BufReader::new(stream.try_clone().expect("clone"));
                let mut length = 0;
                loop {
                    let mut line = String::new();
                    reader.read_line(&mut line).expect("header");
                    if line == "\r\n" || line.is_empty() {
                        break;
                    }
                    if let Some(value) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        length = value.trim().parse().expect("length");
                    }
                }
                let mut request = vec![0; length];
                reader.read_exact(&mut request).expect("body");
                seen_by_server
                    .lock()
                    .expect("lock")
                    .push(String::from_utf8_lossy(&request).into_owned());
                count_by_server.fetch_add(1, Ordering::SeqCst);
                let answer = format!(
                    "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                stream.write_all(answer.as_bytes()).expect("write");
            }
        });
        (format!("http://{addr}/v1"), seen, count)
    }

    fn config(base_url: String) -> LlmConfig {
        LlmConfig {
            base_url,
            model: "test-model".to_owned(),
            api_key: Some("secret".to_owned()),
            timeout: Duration::from_secs(2),
            retries: 1,
            max_tokens: 50,
        }
    }

    #[test]
    fn answers_grounded_on_the_passages() {
        let (url, seen, _) = serve(vec![(
            200,
            r#"{"choices":[{"message":{"role":"assistant","content":" 7 days. "}}]}"#.to_owned(),
        )]);
        let client = LlmClient::new(config(url)).expect("client");
        let passages = [Grounding {
            title: "Returns".to_owned(),
            text: "Returns are accepted within 7 days.".to_owned(),
        }];
        assert_eq!(
            client.answer("how long to return?", &passages, "en"),
            Ok("7 days.".to_owned())
        );
        let body = seen.lock().expect("lock")[0].clone();
        assert!(
            body.contains("Returns are accepted within 7 days."),
            "{body}"
        );
        assert!(body.contains("\"model\":\"test-model\""));
    }

    #[test]
    fn retries_within_its_budget_then_gives_up() {
        let (url, _, count) = serve(vec![
            (500, "{}".to_owned()),
            (
                200,
                r#"{"choices":[{"message":{"role":"assistant","content":"ok"}}]}"#.to_owned(),
            ),
        ]);
        let client = LlmClient::new(config(url)).expect("client");
        assert_eq!(client.answer("q", &[], "zh"), Ok("ok".to_owned()));
        assert_eq!(count.load(Ordering::SeqCst), 2);

        let (url, _, count) = serve(vec![
            (500, "{}".to_owned()),
            (503, "{}".to_owned()),
            (200, "{}".to_owned()),
        ]);
        let client = LlmClient::new(config(url)).expect("client");
        assert!(matches!(
            client.answer("q", &[], "en"),
            Err(LlmError::Unavailable { attempts: 2, .. })
        ));
        assert_eq!(count.load(Ordering::SeqCst), 2, "the budget is one retry");
    }

    #[test]
    fn an_unreachable_server_fails_fast() {
        let port = TcpListener::bind("127.0.0.1:0")
            .expect("bind")
            .local_addr()
            .expect("addr")
            .port();
        let client = LlmClient::new(config(format!("http://127.0.0.1:{port}/v1"))).expect("client");
        assert!(matches!(
            client.answer("q", &[], "en"),
            Err(LlmError::Unavailable { .. })
        ));
    }
}
