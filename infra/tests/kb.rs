//! The tenants' knowledge bases over HTTP, behind a real node with the real brain: a document
//! uploaded through `POST …/kb/documents` answers a question only it can answer, with its
//! citation, before and after a restart; versions, listing, deletion, tenant isolation, roles and
//! bad uploads.

mod support;

use std::sync::{Arc, LazyLock};

use crest_brain::classifier::TextClassifier;
use crest_brain::engine::{Engine, engine_kb_config, train_default_intent_model};
use crest_brain::kb::KnowledgeBases;
use crest_infra::brain_adapter::EngineBrain;
use crest_infra::server::RunningServer;
use serde_json::{Value, json};
use support::{Client, config, roles};

static MODEL: LazyLock<TextClassifier> =
    LazyLock::new(|| train_default_intent_model().expect("default model trains"));

/// A fact no pack document knows, in a document of its own.
const KITE_DOC: &str = "---\nid: zephyr-kite\ntitle: Zephyr X9 kite warranty\n---\n# Zephyr X9 kite warranty\n\nThe Zephyr X9 kite has a warranty of 17 months, covering torn sails and broken spars.\n";

/// A question only [`KITE_DOC`] answers.
const KITE_QUESTION: &str = "How long is the warranty of the Zephyr X9 kite?";

/// Starts a node on `dir` whose bot answers from the knowledge bases the node indexes (a fresh
/// index each time, as a new process would have).
async fn start(dir: &std::path::Path) -> RunningServer {
    let knowledge = Arc::new(KnowledgeBases::new(engine_kb_config()));
    let engine = Engine::new(MODEL.clone())
        .expect("engine builds")
        .with_knowledge(Arc::clone(&knowledge));
    let brain = EngineBrain::new(Arc::new(engine));
    let mut config = config(dir);
    config.knowledge = knowledge;
    crest_infra::server::start(config, Arc::new(brain))
        .await
        .expect("node starts")
}

fn documents_path(tenant: &str) -> String {
    format!("/v1/tenants/{tenant}/kb/documents")
}

async fn upload_markdown(client: &Client, tenant: &str, text: &str) -> support::Answer {
    client
        .post(
            &documents_path(tenant),
            &json!({"format": "markdown", "body": text}),
        )
        .await
}

/// Asks `question` as a new customer and returns the bot's reply event's data.
async fn bot_reply(client: &Client, tenant: &str, customer: &str, question: &str) -> Value {
    let first = client.message(tenant, customer, "m-1", question).await;
    assert_eq!(first.status, 200, "{:?}", first.body);
    let id = first.conversation_id();
    client
        .conversation_until(tenant, &id, |body| roles(body).len() >= 2)
        .await;
    let events = client
        .get(&format!("/v1/tenants/{tenant}/conversations/{id}/events"))
        .await;
    events.body["events"]
        .as_array()
        .expect("events")
        .iter()
        .find(|event| event["type"] == "conversation.bot_replied")
        .map(|event| event["data"].clone())
        .expect("a bot reply")
}

/// Checks that `reply` cites `document` at `version` on a passage of `text` holding `fact`.
fn assert_cites(reply: &Value, document: &str, version: u64, text: &str, fact: &str) {
    let citation = &reply["citations"][0];
    assert_eq!(citation["document_id"], document, "{reply}");
    assert_eq!(citation["version"], version, "{reply}");
    let start = usize::try_from(citation["start"].as_u64().expect("start")).expect("fits");
    let end = usize::try_from(citation["end"].as_u64().expect("end")).expect("fits");
    let passage = text.get(start..end).expect("the span lies in the text");
    assert!(passage.contains(fact), "passage {passage:?} of {reply}");
    assert!(
        reply["text"].as_str().expect("reply text").contains(fact),
        "{reply}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_uploaded_markdown_document_answers_with_its_citation_before_and_after_a_restart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let node = start(dir.path()).await;
    let client = Client::new(node.addr);

    let before = bot_reply(&client, "kite-shop", "c-0", KITE_QUESTION).await;
    assert!(
        before["citations"]
            .as_array()
            .is_none_or(|citations| citations.iter().all(|c| c["document_id"] != "zephyr-kite")),
        "{before}"
    );
    let uploaded = upload_markdown(&client, "kite-shop", KITE_DOC).await;
    assert_eq!(uploaded.status, 201, "{:?}", uploaded.body);
    assert_eq!(uploaded.body, json!({"id": "zephyr-kite", "version": 1}));
    let document = client
        .get(&format!("{}/zephyr-kite", documents_path("kite-shop")))
        .await;
    assert_eq!(document.status, 200, "{:?}", document.body);
    let text = document.body["text"].as_str().expect("text").to_owned();

    let reply = bot_reply(&client, "kite-shop", "c-1", KITE_QUESTION).await;
    assert_cites(&reply, "zephyr-kite", 1, &text, "17 months");
    node.stop().await.expect("clean stop");

    // A new process: the index is rebuilt from the journal.
    let node = start(dir.path()).await;
    let client = Client::new(node.addr);
    let reply = bot_reply(&client, "kite-shop", "c-2", KITE_QUESTION).await;
    assert_cites(&reply, "zephyr-kite", 1, &text, "17 months");
    let listed = client.get(&documents_path("kite-shop")).await;
    assert_eq!(listed.body["documents"][0]["id"], "zephyr-kite");
    node.stop().await.expect("clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn versions_list_and_deletion() {
    let dir = tempfile::tempdir().expect("temp dir");
    let node = start(dir.path()).await;
    let client = Client::new(node.addr);
    let path = documents_path("versions");

    assert_eq!(client.get(&path).await.body, json!({"documents": []}));
    let first = upload_markdown(&client, "versions", KITE_DOC).await;
    assert_eq!(first.body["version"], 1, "{:?}", first.body);
    let second_text = KITE_DOC.replace("17 months", "23 months");
    let second = client
        .post(
            &path,
            &json!({
                "format": "markdown",
                "body": second_text,
                "title": "Kite warranty (2027)",
                "effective_from": "2026-01-01",
            }),
        )
        .await;
    assert_eq!(second.status, 201, "{:?}", second.body);
    assert_eq!(second.body, json!({"id": "zephyr-kite", "version": 2}));
    // Without an id, the title names the document.
    let faq = client
        .post(
            &path,
            &json!({
                "format": "csv",
                "title": "Gift cards",
                "body": "id,question,answer\nq1,Can gift cards be refunded?,Gift cards are not refundable.\n",
            }),
        )
        .await;
    assert_eq!(faq.body, json!({"id": "gift-cards", "version": 1}));

    let listed = client.get(&path).await;
    let documents = listed.body["documents"].as_array().expect("documents");
    assert_eq!(documents.len(), 2, "{:?}", listed.body);
    assert_eq!(documents[0]["id"], "gift-cards");
    assert_eq!(documents[0]["format"], "csv");
    assert_eq!(documents[1]["id"], "zephyr-kite");
    assert_eq!(documents[1]["version"], 2);
    assert_eq!(documents[1]["title"], "Kite warranty (2027)");
    assert_eq!(documents[1]["effective_from"], "2026-01-01");
    assert_eq!(documents[1]["effective_to"], Value::Null);

    let one = client.get(&format!("{path}/zephyr-kite")).await;
    assert_eq!(one.status, 200);
    let versions = one.body["versions"].as_array().expect("versions");
    assert_eq!(versions.len(), 2);
    assert_eq!(versions[0]["version"], 1);
    assert_eq!(versions[0]["title"], "Zephyr X9 kite warranty");
    assert_eq!(versions[1]["version"], 2);
    assert!(
        versions[1]["published_by"]
            .as_str()
            .expect("actor")
            .starts_with("key:")
    );
    let text = one.body["text"].as_str().expect("text").to_owned();
    assert!(text.contains("23 months"), "{text}");

    let reply = bot_reply(&client, "versions", "c-1", KITE_QUESTION).await;
    assert_cites(&reply, "zephyr-kite", 2, &text, "23 months");

    let deleted = client.delete(&format!("{path}/zephyr-kite")).await;
    assert_eq!(deleted.status, 204, "{:?}", deleted.body);
    assert_eq!(client.get(&format!("{path}/zephyr-kite")).await.status, 404);
    assert_eq!(
        client.delete(&format!("{path}/zephyr-kite")).await.status,
        404
    );
    let listed = client.get(&path).await;
    assert_eq!(listed.body["documents"].as_array().map(Vec::len), Some(1));
    let reply = bot_reply(&client, "versions", "c-2", KITE_QUESTION).await;
    assert!(
        reply["citations"]
            .as_array()
            .is_none_or(|citations| citations.iter().all(|c| c["document_id"] != "zephyr-kite")),
        "{reply}"
    );
    // Uploading the id again goes on from the last version.
    let again = upload_markdown(&client, "versions", KITE_DOC).await;
    assert_eq!(again.body, json!({"id": "zephyr-kite", "version": 3}));
    node.stop().await.expect("clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenants_documents_never_answer_another_tenant() {
    let dir = tempfile::tempdir().expect("temp dir");
    let node = start(dir.path()).await;
    let client = Client::new(node.addr);
    let uploaded = upload_markdown(&client, "owner", KITE_DOC).await;
    assert_eq!(uploaded.status, 201, "{:?}", uploaded.body);

    let other = bot_reply(&client, "stranger", "c-1", KITE_QUESTION).await;
    assert!(
        other["citations"]
            .as_array()
            .is_none_or(|citations| citations.iter().all(|c| c["document_id"] != "zephyr-kite")),
        "{other}"
    );
    assert!(
        !other["text"]
            .as_str()
            .unwrap_or_default()
            .contains("17 months"),
        "{other}"
    );
    let listed = client.get(&documents_path("stranger")).await;
    assert_eq!(listed.body, json!({"documents": []}));
    assert_eq!(
        client
            .get(&format!("{}/zephyr-kite", documents_path("stranger")))
            .await
            .status,
        404
    );
    // The owner's credential cannot reach the other tenant's knowledge base, nor the reverse.
    let owner_key = client.issue_key("owner", "admin", None).await;
    let as_owner = Client::with_token(node.addr, &owner_key);
    assert_eq!(as_owner.get(&documents_path("stranger")).await.status, 403);
    node.stop().await.expect("clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_read_and_admins_write() {
    let dir = tempfile::tempdir().expect("temp dir");
    let node = start(dir.path()).await;
    let client = Client::new(node.addr);
    let path = documents_path("roles");
    let agent = Client::with_token(
        node.addr,
        &client.issue_key("roles", "agent", Some("alice")).await,
    );
    let supervisor = Client::with_token(
        node.addr,
        &client.issue_key("roles", "supervisor", None).await,
    );
    let integration = Client::with_token(
        node.addr,
        &client.issue_key("roles", "integration", None).await,
    );
    let body = json!({"format": "text", "title": "Opening hours", "body": "We open at nine."});
    assert_eq!(agent.post(&path, &body).await.status, 403);
    assert_eq!(integration.post(&path, &body).await.status, 403);
    assert_eq!(integration.get(&path).await.status, 403);
    let published = supervisor.post(&path, &body).await;
    assert_eq!(published.status, 201, "{:?}", published.body);
    assert_eq!(published.body["id"], "opening-hours");
    let listed = agent.get(&path).await;
    assert_eq!(listed.status, 200);
    assert_eq!(listed.body["documents"][0]["id"], "opening-hours");
    assert_eq!(
        agent.delete(&format!("{path}/opening-hours")).await.status,
        403
    );
    let audit = client.get("/v1/tenants/roles/audit").await;
    assert!(
        audit.body.to_string().contains("kb.document_published"),
        "{:?}",
        audit.body
    );
    node.stop().await.expect("clean stop");
}

/// A `multipart/form-data` body with the given text parts and one file part.
fn multipart(parts: &[(&str, &str)], file_name: &str, file: &[u8]) -> (String, Vec<u8>) {
    let boundary = "crest-test-boundary-7f3a";
    let mut body = Vec::new();
    for (name, value) in parts {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\ncontent-disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
            )
            .as_bytes(),
        );
    }
    body.extend_from_slice(
        format!(
            "--{boundary}\r\ncontent-disposition: form-data; name=\"file\"; filename=\"{file_name}\"\r\ncontent-type: application/octet-stream\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(file);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

async fn post_form(
    node: &RunningServer,
    tenant: &str,
    content_type: &str,
    body: Vec<u8>,
) -> (u16, Value) {
    let client = Client::new(node.addr);
    let path = documents_path(tenant);
    let token = client.token_for(&path).await.expect("admin key");
    let response = reqwest::Client::new()
        .post(format!("http://{}{path}", node.addr))
        .bearer_auth(token)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .expect("request sent");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multipart_uploads_take_the_format_from_the_file_name() {
    let dir = tempfile::tempdir().expect("temp dir");
    let node = start(dir.path()).await;
    let client = Client::new(node.addr);
    let html = "<html><body><h1>Zephyr X9 kite warranty</h1><p>The Zephyr X9 kite has a warranty of <b>17 months</b>, covering torn sails.</p></body></html>";
    let (content_type, body) = multipart(&[("id", "kite-page")], "warranty.html", html.as_bytes());
    let (status, answer) = post_form(&node, "forms", &content_type, body).await;
    assert_eq!(status, 201, "{answer}");
    assert_eq!(answer, json!({"id": "kite-page", "version": 1}));
    let document = client
        .get(&format!("{}/kite-page", documents_path("forms")))
        .await;
    assert_eq!(document.body["format"], "html");
    assert_eq!(document.body["title"], "Zephyr X9 kite warranty");
    let text = document.body["text"].as_str().expect("text").to_owned();
    assert!(!text.contains("<b>"), "{text}");
    let reply = bot_reply(&client, "forms", "c-1", KITE_QUESTION).await;
    assert_cites(&reply, "kite-page", 1, &text, "17 months");

    let (content_type, body) = multipart(&[], "notes.docm", b"text");
    let (status, answer) = post_form(&node, "forms", &content_type, body).await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["error"], "invalid_format", "{answer}");
    node.stop().await.expect("clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_uploads_are_refused_with_their_reason() {
    let dir = tempfile::tempdir().expect("temp dir");
    let node = start(dir.path()).await;
    let client = Client::new(node.addr);
    let path = documents_path("bad");
    let cases = [
        (
            json!({"format": "pdfx", "body": "x", "title": "t"}),
            400,
            "invalid_format",
        ),
        (
            json!({"format": "markdown", "body": "  \n", "title": "t"}),
            400,
            "invalid_document",
        ),
        (
            json!({"format": "text", "body": "x", "title": "t", "effective_to": "2026-02-30"}),
            400,
            "invalid_dates",
        ),
        (
            json!({"format": "text", "body": "x", "title": "t", "effective_from": "2026-05-01", "effective_to": "2026-04-01"}),
            400,
            "invalid_dates",
        ),
        (
            json!({"format": "text", "body": "x", "id": "a/b"}),
            400,
            "invalid_id",
        ),
        (
            json!({"format": "csv", "body": "id,question\nq1,Why?\n", "title": "t"}),
            400,
            "invalid_document",
        ),
        (
            json!({"format": "text", "body": "x".repeat(600 * 1024), "title": "t"}),
            413,
            "document_too_large",
        ),
        (
            json!({"format": "text", "body": "x", "colour": "red"}),
            422,
            "invalid_fields",
        ),
    ];
    for (body, status, error) in cases {
        let answer = client.post(&path, &body).await;
        assert_eq!(answer.status, status, "{:?}", answer.body);
        assert_eq!(answer.body["error"], error, "{:?}", answer.body);
        assert!(
            answer.body["reason"]
                .as_str()
                .is_some_and(|reason| !reason.is_empty()),
            "{:?}",
            answer.body
        );
    }
    assert_eq!(client.get(&path).await.body, json!({"documents": []}));
    node.stop().await.expect("clean stop");
}

/// A one-page PDF showing `lines` in Helvetica, with a correct cross-reference table.
fn pdf(lines: &[&str]) -> Vec<u8> {
    let mut content = String::from("BT /F1 12 Tf 72 720 Td 14 TL\n");
    for line in lines {
        content.push_str(&format!("({line}) Tj T*\n"));
    }
    content.push_str("ET");
    let objects = [
        "<< /Type /Catalog /Pages 2 0 R >>".to_owned(),
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_owned(),
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>".to_owned(),
        format!("<< /Length {} >>\nstream\n{content}\nendstream", content.len()),
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>"
            .to_owned(),
    ];
    let mut file = String::from("%PDF-1.4\n");
    let mut offsets = Vec::new();
    for (index, object) in objects.iter().enumerate() {
        offsets.push(file.len());
        file.push_str(&format!("{} 0 obj\n{object}\nendobj\n", index + 1));
    }
    let xref = file.len();
    file.push_str(&format!(
        "xref\n0 {}\n0000000000 65535 f \n",
        objects.len() + 1
    ));
    for offset in offsets {
        file.push_str(&format!("{offset:010} 00000 n \n"));
    }
    file.push_str(&format!(
        "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
        objects.len() + 1
    ));
    file.into_bytes()
}

/// A DOCX archive whose document has a heading and a paragraph.
fn docx(heading: &str, paragraph: &str) -> Vec<u8> {
    use std::io::Write as _;
    let document = format!(
        r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body><w:p><w:pPr><w:pStyle w:val="Heading1"/></w:pPr><w:r><w:t>{heading}</w:t></w:r></w:p><w:p><w:r><w:t>{paragraph}</w:t></w:r></w:p></w:body></w:document>"#
    );
    let mut archive = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    archive
        .start_file(
            "word/document.xml",
            zip::write::SimpleFileOptions::default()
                .compression_method(zip::CompressionMethod::Deflated),
        )
        .expect("start entry");
    archive.write_all(document.as_bytes()).expect("write entry");
    archive.finish().expect("finish archive").into_inner()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pdf_and_docx_documents_are_read_and_cited() {
    use base64::Engine as _;
    let dir = tempfile::tempdir().expect("temp dir");
    let node = start(dir.path()).await;
    let client = Client::new(node.addr);
    let path = documents_path("binary");

    let file = pdf(&[
        "Zephyr X9 kite warranty",
        "The Zephyr X9 kite has a warranty of 17 months.",
    ]);
    let published = client
        .post(
            &path,
            &json!({
                "id": "kite-pdf",
                "format": "pdf",
                "body": base64::engine::general_purpose::STANDARD.encode(&file),
            }),
        )
        .await;
    assert_eq!(published.status, 201, "{:?}", published.body);
    let document = client.get(&format!("{path}/kite-pdf")).await;
    assert_eq!(document.body["format"], "pdf");
    let text = document.body["text"].as_str().expect("text").to_owned();
    let reply = bot_reply(&client, "binary", "c-1", KITE_QUESTION).await;
    assert_cites(&reply, "kite-pdf", 1, &text, "17 months");

    let (content_type, body) = multipart(
        &[],
        "Gift cards.docx",
        &docx("Gift card rules", "Gift cards of Zephyr shop never expire."),
    );
    let (status, answer) = post_form(&node, "binary", &content_type, body).await;
    assert_eq!(status, 201, "{answer}");
    assert_eq!(answer, json!({"id": "gift-card-rules", "version": 1}));
    let document = client.get(&format!("{path}/gift-card-rules")).await;
    assert_eq!(document.body["format"], "docx");
    assert_eq!(
        document.body["text"],
        "# Gift card rules\n\nGift cards of Zephyr shop never expire.\n\n"
    );

    let not_base64 = client
        .post(
            &path,
            &json!({"format": "pdf", "body": "%PDF-1.4 raw", "title": "t"}),
        )
        .await;
    assert_eq!(not_base64.status, 400, "{:?}", not_base64.body);
    assert_eq!(not_base64.body["error"], "invalid_document");
    let (content_type, body) = multipart(&[("title", "Broken")], "broken.pdf", b"%PDF-1.4 no");
    let (status, answer) = post_form(&node, "binary", &content_type, body).await;
    assert_eq!(status, 400, "{answer}");
    assert!(
        answer["reason"]
            .as_str()
            .is_some_and(|reason| reason.contains("PDF")),
        "{answer}"
    );
    node.stop().await.expect("clean stop");
}
