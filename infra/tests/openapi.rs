//! `docs/openapi.yaml` documents exactly the routes the router serves: every `.route("/…", …)` of
//! `infra/src/http/mod.rs` with each of its methods is a path item of the document, and the
//! document has no path or method the router lacks. No YAML crate: the line structure of the
//! `paths:` block (path keys indented by two spaces, methods by four) is read by hand.

use std::collections::{BTreeMap, BTreeSet};

const ROUTER: &str = include_str!("../src/http/mod.rs");
const OPENAPI: &str = include_str!("../../docs/openapi.yaml");

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

fn indent(line: &str) -> usize {
    line.len() - line.trim_start_matches(' ').len()
}

/// The `paths:` block of an OpenAPI document: path → methods.
fn openapi_routes(yaml: &str) -> Result<Routes, String> {
    let mut lines = yaml.lines().enumerate();
    if !lines.any(|(_, line)| line.trim_end() == "paths:") {
        return Err("no top-level `paths:` key".to_owned());
    }
    let mut routes = Routes::new();
    let mut current: Option<String> = None;
    for (number, raw) in lines {
        let line = raw.trim_end();
        let content = line.trim_start();
        if content.is_empty() || content.starts_with('#') {
            continue;
        }
        if raw.starts_with('\t') {
            return Err(format!("line {}: tab indentation", number + 1));
        }
        match indent(line) {
            0 => break, // the next top-level key: `paths:` is over
            2 => {
                let key = content.strip_suffix(':').ok_or_else(|| {
                    format!("line {}: expected `  <path>:`, got {line:?}", number + 1)
                })?;
                let key = key.trim_matches(|c| c == '\'' || c == '"');
                if !key.starts_with('/') {
                    return Err(format!(
                        "line {}: path key {key:?} does not start with '/'",
                        number + 1
                    ));
                }
                if routes.insert(key.to_owned(), BTreeSet::new()).is_some() {
                    return Err(format!("line {}: path {key} listed twice", number + 1));
                }
                current = Some(key.to_owned());
            }
            4 => {
                let Some(key) = content.strip_suffix(':') else {
                    continue;
                };
                if !METHODS.contains(&key) {
                    continue; // parameters:, summary:, …
                }
                let path = current
                    .as_ref()
                    .ok_or_else(|| format!("line {}: method outside a path", number + 1))?;
                let methods = routes.get_mut(path).expect("path inserted above");
                if !methods.insert(key.to_owned()) {
                    return Err(format!(
                        "line {}: {key} listed twice under {path}",
                        number + 1
                    ));
                }
            }
            _ => {}
        }
    }
    Ok(routes)
}

/// What differs between the router and the document, one line each.
fn mismatches(router_source: &str, yaml: &str) -> Result<Vec<String>, String> {
    let router = router_routes(router_source)?;
    let documented = openapi_routes(yaml)?;
    let mut problems = Vec::new();
    for (path, methods) in &router {
        let Some(documented_methods) = documented.get(path) else {
            problems.push(format!(
                "{path} is routed but missing from docs/openapi.yaml"
            ));
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
    let problems = mismatches(ROUTER, OPENAPI).expect("router and document parse");
    assert!(
        problems.is_empty(),
        "docs/openapi.yaml and infra/src/http/mod.rs disagree:\n{}",
        problems.join("\n")
    );
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

#[test]
fn matching_router_and_document_agree() {
    assert_eq!(
        mismatches(SAMPLE_ROUTER, SAMPLE_YAML).expect("parses"),
        Vec::<String>::new()
    );
}

#[test]
fn a_route_missing_from_the_document_is_reported() {
    let yaml = SAMPLE_YAML.replace("  /v1/b:\n    post:\n      responses: {}\n", "");
    assert_eq!(
        mismatches(SAMPLE_ROUTER, &yaml).expect("parses"),
        ["/v1/b is routed but missing from docs/openapi.yaml"]
    );
}

#[test]
fn a_missing_or_extra_method_is_reported() {
    let yaml = SAMPLE_YAML.replace("    put:\n", "    patch:\n");
    assert_eq!(
        mismatches(SAMPLE_ROUTER, &yaml).expect("parses"),
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
        mismatches(SAMPLE_ROUTER, &yaml).expect("parses"),
        ["/v1/gone is documented but not routed"]
    );
}

#[test]
fn a_path_that_is_not_a_literal_is_refused() {
    let router = r#".route(PATH, get(h))"#;
    assert!(router_routes(router).is_err());
}
