//! The API contract is generated from the code (`crest_infra::http::openapi`), and these tests
//! keep it whole: the generated document lists exactly the routes the router serves (every
//! `.route("/…", …)` of `infra/src/http/mod.rs` with each of its methods, nothing else), the
//! permission table covers the same routes, and `docs/openapi.yaml` is the generated document
//! byte for byte.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

const ROUTER: &str = include_str!("../src/http/mod.rs");
const OPENAPI_YAML: &str = include_str!("../../docs/openapi.yaml");
const REGENERATE: &str = "cargo run -p crest-infra --bin crest -- openapi > docs/openapi.yaml";

/// Methods of axum's method routers, as OpenAPI names them.
const METHODS: [&str; 8] = [
    "get", "post", "put", "patch", "delete", "head", "options", "trace",
];

type Routes = BTreeMap<String, BTreeSet<String>>;

/// The text of `source` with `//` comments blanked out (string literals kept).
fn without_comments(source: &str) -> String {
    let mut out = String::with_capacity(source.len());
    let mut chars = source.chars().peekable();
    let mut in_string = false;
    while let Some(c) = chars.next() {
        if in_string {
            out.push(c);
            if c == '\\' {
                if let Some(next) = chars.next() {
                    out.push(next);
                }
            } else if c == '"' {
                in_string = false;
            }
        } else if c == '"' {
            in_string = true;
            out.push(c);
        } else if c == '/' && chars.peek() == Some(&'/') {
            for skipped in chars.by_ref() {
                if skipped == '\n' {
                    out.push('\n');
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The arguments of the call whose `(` ends just before `start`: up to the matching `)`.
fn call_arguments(source: &str, start: usize) -> Result<&str, String> {
    let mut depth = 1usize;
    let mut in_string = false;
    let mut escaped = false;
    for (offset, c) in source[start..].char_indices() {
        if in_string {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
            continue;
        }
        match c {
            '"' => in_string = true,
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    return Ok(&source[start..start + offset]);
                }
            }
            _ => {}
        }
    }
    Err(format!("unbalanced parentheses after byte {start}"))
}

/// Methods called in `chain` (`get(h)`, `get(h).put(h)`, `axum::routing::post(h)`, …).
fn methods_in(chain: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for method in METHODS {
        let pattern = format!("{method}(");
        for (index, _) in chain.match_indices(&pattern) {
            let before = chain[..index].chars().next_back();
            let identifier_continues = before.is_some_and(|c| c.is_alphanumeric() || c == '_');
            if !identifier_continues {
                found.insert(method.to_owned());
            }
        }
    }
    found
}

/// Every `.route(PATH, METHODS)` of the router source: path → methods.
fn router_routes(source: &str) -> Result<Routes, String> {
    let source = without_comments(source);
    for unsupported in [".nest(", ".merge(", ".nest_service(", ".route_service("] {
        if source.contains(unsupported) {
            return Err(format!(
                "the router uses `{unsupported}`: teach infra/tests/openapi.rs to read it"
            ));
        }
    }
    let mut routes = Routes::new();
    for (index, _) in source.match_indices(".route(") {
        let arguments = call_arguments(&source, index + ".route(".len())?;
        let trimmed = arguments.trim_start();
        let Some(rest) = trimmed.strip_prefix('"') else {
            return Err(format!(
                "a route's path is not a string literal: .route({})",
                arguments.trim()
            ));
        };
        let end = rest
            .find('"')
            .ok_or_else(|| format!("unterminated path in .route({arguments})"))?;
        let path = &rest[..end];
        if !path.starts_with('/') {
            return Err(format!("route path {path:?} does not start with '/'"));
        }
        let chain = &rest[end + 1..];
        if chain.contains("any(") {
            return Err(format!(
                "route {path} uses any(): list its methods explicitly"
            ));
        }
        let methods = methods_in(chain);
        if methods.is_empty() {
            return Err(format!(
                "no method found for route {path}: {}",
                chain.trim()
            ));
        }
        if routes.insert(path.to_owned(), methods).is_some() {
            return Err(format!("route {path} is registered twice"));
        }
    }
    if routes.is_empty() {
        return Err("no .route(\"/…\", …) found in the router source".to_owned());
    }
    Ok(routes)
}

/// The `paths` of an OpenAPI document: path → methods.
fn openapi_routes(document: &Value) -> Result<Routes, String> {
    let paths = document
        .get("paths")
        .and_then(Value::as_object)
        .ok_or("no `paths` object")?;
    let mut routes = Routes::new();
    for (path, item) in paths {
        let item = item
            .as_object()
            .ok_or_else(|| format!("path item {path} is not an object"))?;
        let methods = item
            .keys()
            .filter(|key| METHODS.contains(&key.as_str()))
            .cloned()
            .collect();
        routes.insert(path.clone(), methods);
    }
    Ok(routes)
}

/// What differs between the router and the document, one line each.
fn mismatches(router_source: &str, document: &Value) -> Result<Vec<String>, String> {
    let router = router_routes(router_source)?;
    let documented = openapi_routes(document)?;
    let mut problems = Vec::new();
    for (path, methods) in &router {
        let Some(documented_methods) = documented.get(path) else {
            problems.push(format!("{path} is routed but missing from the document"));
            continue;
        };
        for method in methods.difference(documented_methods) {
            problems.push(format!(
                "{} {path} is routed but not documented",
                method.to_uppercase()
            ));
        }
        for method in documented_methods.difference(methods) {
            problems.push(format!(
                "{} {path} is documented but not routed",
                method.to_uppercase()
            ));
        }
    }
    for path in documented.keys().filter(|path| !router.contains_key(*path)) {
        problems.push(format!("{path} is documented but not routed"));
    }
    Ok(problems)
}

#[test]
fn openapi_documents_every_route_and_nothing_else() {
    let document = crest_infra::http::openapi::document();
    let problems = mismatches(ROUTER, &document).expect("router and document parse");
    assert!(
        problems.is_empty(),
        "the generated document and infra/src/http/mod.rs disagree (annotate the handler with \
         #[utoipa::path] and list it in infra/src/http/openapi.rs):\n{}",
        problems.join("\n")
    );
}

/// `docs/openapi.yaml` is the generated document, so a change of a handler or a type shows in
/// review as a change of the contract.
#[test]
fn docs_openapi_yaml_is_the_generated_document() {
    let generated = crest_infra::http::openapi::to_yaml();
    if OPENAPI_YAML != generated {
        let line = OPENAPI_YAML
            .lines()
            .zip(generated.lines())
            .position(|(committed, fresh)| committed != fresh)
            .map_or_else(
                || OPENAPI_YAML.lines().count().min(generated.lines().count()) + 1,
                |index| index + 1,
            );
        panic!(
            "docs/openapi.yaml differs from the document the code generates (first at line \
             {line}); regenerate it with `{REGENERATE}` and commit it"
        );
    }
}

/// The YAML copy says the same as the JSON the node serves.
#[test]
fn the_yaml_copy_parses_to_the_served_document() {
    let parsed: Value = serde_yaml_ng::from_str(OPENAPI_YAML).expect("docs/openapi.yaml parses");
    let served: Value =
        serde_json::from_str(&crest_infra::http::openapi::to_json()).expect("the JSON parses");
    assert!(
        parsed == served,
        "docs/openapi.yaml does not parse to the served document; regenerate with `{REGENERATE}`"
    );
}

/// Every operation but the public ones needs the bearer credential, and the public ones are
/// exactly the table's `Public` rows.
#[test]
fn security_follows_the_permission_table() {
    use crest_infra::http::permissions::{Permission, ROUTES};
    let document = crest_infra::http::openapi::document();
    assert_eq!(document["security"], serde_json::json!([{ "bearer": [] }]));
    for rule in ROUTES {
        let operation = &document["paths"][rule.path][rule.method.to_lowercase()];
        let public = operation.get("security") == Some(&serde_json::json!([]));
        assert_eq!(
            public,
            rule.permission == Permission::Public,
            "{} {}: security {:?}",
            rule.method,
            rule.path,
            operation.get("security")
        );
        if !public {
            assert!(
                operation["responses"].get("401").is_some(),
                "{} {} does not document 401",
                rule.method,
                rule.path
            );
        }
    }
}

/// Request bodies state the limits the handlers enforce (a sample of them).
#[test]
fn request_schemas_state_the_handlers_limits() {
    let document = crest_infra::http::openapi::document();
    let schemas = &document["components"]["schemas"];
    let field = |schema: &str, field: &str| schemas[schema]["properties"][field].clone();
    assert_eq!(field("PostCsat", "score")["minimum"], 1);
    assert_eq!(field("PostCsat", "score")["maximum"], 5);
    assert_eq!(field("PutAgent", "capacity")["maximum"], 100);
    assert_eq!(field("PutQueue", "offer_timeout_s")["maximum"], 3600);
    assert_eq!(field("PostMessageRequest", "text")["maxLength"], 4096);
    assert_eq!(schemas["PostMessageRequest"]["additionalProperties"], false);
    let voc = &document["paths"]["/v1/tenants/{tenant}/voc"]["get"]["parameters"];
    let hours = voc
        .as_array()
        .and_then(|parameters| parameters.iter().find(|p| p["name"] == "hours"))
        .expect("hours documented");
    assert_eq!(hours["schema"]["maximum"], 744);
}

/// The permission table names every route of the router with each of its methods, and nothing
/// else: a new route cannot be served without a declared permission.
#[test]
fn the_permission_table_covers_exactly_the_routers_routes() {
    let router = router_routes(ROUTER).expect("router parses");
    let mut table = Routes::new();
    for rule in crest_infra::http::permissions::ROUTES {
        let fresh = table
            .entry(rule.path.to_owned())
            .or_default()
            .insert(rule.method.to_lowercase());
        assert!(fresh, "{} {} is in the table twice", rule.method, rule.path);
    }
    assert_eq!(
        table, router,
        "infra/src/http/permissions.rs ROUTES (left) and the router (right) disagree"
    );
}

#[test]
fn the_router_parser_finds_the_known_routes() {
    let routes = router_routes(ROUTER).expect("router parses");
    assert!(routes.len() >= 24, "only {} routes found", routes.len());
    let methods = |path: &str| routes[path].iter().map(String::as_str).collect::<Vec<_>>();
    assert_eq!(methods("/v1/tenants/{tenant}/messages"), ["post"]);
    assert_eq!(
        methods("/v1/tenants/{tenant}/agents/{agent}"),
        ["get", "put"]
    );
    assert_eq!(
        methods("/v1/tenants/{tenant}/tickets/{id}"),
        ["get", "patch"]
    );
    assert_eq!(methods("/"), ["get"]);
}

const SAMPLE_ROUTER: &str = r#"
    let api = Router::new()
        .route("/v1/a/{x}", get(a::get_a).put(a::put_a)) // .route("/commented", get(x))
        .route(
            "/v1/b",
            post(b::post_b),
        )
        .route("/healthz", axum::routing::get(ops::healthz))
        .fallback(ops::not_found);
"#;

const SAMPLE_YAML: &str = "openapi: 3.1.0
paths:
  /v1/a/{x}:
    parameters:
      - name: x
    get:
      summary: a
      responses:
        '200':
          description: ok
    put:
      responses: {}
  /v1/b:
    post:
      responses: {}
  /healthz:
    get:
      responses: {}
components:
  schemas:
    get:
      type: object
";

fn sample(yaml: &str) -> Value {
    serde_yaml_ng::from_str(yaml).expect("the sample parses")
}

#[test]
fn matching_router_and_document_agree() {
    assert_eq!(
        mismatches(SAMPLE_ROUTER, &sample(SAMPLE_YAML)).expect("parses"),
        Vec::<String>::new()
    );
}

#[test]
fn a_route_missing_from_the_document_is_reported() {
    let yaml = SAMPLE_YAML.replace("  /v1/b:\n    post:\n      responses: {}\n", "");
    assert_eq!(
        mismatches(SAMPLE_ROUTER, &sample(&yaml)).expect("parses"),
        ["/v1/b is routed but missing from the document"]
    );
}

#[test]
fn a_missing_or_extra_method_is_reported() {
    let yaml = SAMPLE_YAML.replace("    put:\n", "    patch:\n");
    assert_eq!(
        mismatches(SAMPLE_ROUTER, &sample(&yaml)).expect("parses"),
        [
            "PUT /v1/a/{x} is routed but not documented",
            "PATCH /v1/a/{x} is documented but not routed",
        ]
    );
}

#[test]
fn a_documented_path_the_router_lacks_is_reported() {
    let yaml = SAMPLE_YAML.replace(
        "components:",
        "  /v1/gone:\n    delete:\n      responses: {}\ncomponents:",
    );
    assert_eq!(
        mismatches(SAMPLE_ROUTER, &sample(&yaml)).expect("parses"),
        ["/v1/gone is documented but not routed"]
    );
}

#[test]
fn a_path_that_is_not_a_literal_is_refused() {
    let router = r#".route(PATH, get(h))"#;
    assert!(router_routes(router).is_err());
}
