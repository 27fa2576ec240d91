//! The API's contract, `docs/openapi.yaml` (issue 16), against the code:
//! - every route of the gateway's router is in the document, and every path and
//!   method of the document is a route;
//! - every error code the handlers can answer (`code: "..."` literals of the HTTP
//!   handlers, `ApiError`'s own codes, the quota refusals) is the document's
//!   `ErrorCode` enum, and every validation problem code is its `ProblemCode` enum,
//!   exactly: a code added to the handlers and not to the document fails, and so does
//!   a code the document lists that the handlers never emit;
//! - `GET /openapi.json` of a running `wa dev` is the YAML converted to JSON.

use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use wa_local::gateway::openapi_json;
use wa_local::{DevConfig, DevServer};
use wa_shared::app::http::ApiError;
use wa_shared::domain::quota::QuotaRefusal;

const KEY: &str = "key_openapi";

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn read(relative: &str) -> String {
    let path = repo_root().join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The source without its `#[cfg(test)]` module (tests use codes the code never emits).
fn without_tests(source: &str) -> &str {
    source
        .find("#[cfg(test)]")
        .map_or(source, |at| &source[..at])
}

/// Every string literal that follows `prefix` in `source`: `code: "x"` -> `x`.
fn literals_after<'a>(source: &'a str, prefix: &str) -> Vec<&'a str> {
    let mut found = Vec::new();
    let mut rest = source;
    while let Some(at) = rest.find(prefix) {
        rest = &rest[at + prefix.len()..];
        if let Some(end) = rest.find('"') {
            found.push(&rest[..end]);
            rest = &rest[end..];
        }
    }
    found
}

fn spec() -> Value {
    openapi_json().expect("docs/openapi.yaml is valid YAML")
}

const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// `(METHOD, path)` of every `.route(...)` of `Gateway::router`, read from its source.
fn router_routes() -> BTreeSet<(String, String)> {
    let source = read("local/src/gateway.rs");
    let source = without_tests(&source);
    let start = source
        .find("pub fn router(")
        .expect("Gateway::router in gateway.rs");
    let body = &source[start..];
    let body = &body[..body
        .find(".with_state(")
        .expect("router ends with .with_state")];
    let mut routes = BTreeSet::new();
    for call in body.split(".route(\"").skip(1) {
        let (path, handlers) = call.split_once('"').unwrap();
        let handlers = handlers.split(")\n").next().unwrap_or(handlers);
        let mut methods = 0;
        for method in METHODS {
            // `get(handler)` at the start or `.post(handler)` chained.
            let as_call = format!("{method}(");
            let starts = handlers
                .trim_start_matches([',', ' '])
                .starts_with(&as_call);
            if starts || handlers.contains(&format!(".{as_call}")) {
                routes.insert((method.to_uppercase(), path.to_owned()));
                methods += 1;
            }
        }
        assert!(methods > 0, "no method read for route {path}: {handlers}");
    }
    assert!(routes.len() >= 5, "too few routes read: {routes:?}");
    routes
}

fn spec_routes(spec: &Value) -> BTreeSet<(String, String)> {
    let mut routes = BTreeSet::new();
    for (path, item) in spec["paths"].as_object().expect("paths") {
        for method in METHODS {
            if item.get(method).is_some() {
                routes.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    routes
}

#[test]
fn every_route_of_the_gateway_is_in_the_contract_and_the_reverse() {
    let router = router_routes();
    let spec = spec_routes(&spec());
    let undocumented: Vec<_> = router.difference(&spec).collect();
    let unrouted: Vec<_> = spec.difference(&router).collect();
    assert!(
        undocumented.is_empty() && unrouted.is_empty(),
        "routes served but not in docs/openapi.yaml: {undocumented:?}; \
         in docs/openapi.yaml but not served: {unrouted:?}"
    );
    // Spot checks, so a parser that reads nothing cannot pass.
    for (method, path) in [
        ("POST", "/v1/messages"),
        ("GET", "/v1/messages/{id}"),
        ("GET", "/v1/events"),
        ("GET", "/webhook"),
        ("POST", "/webhook"),
        ("GET", "/openapi.json"),
    ] {
        assert!(
            router.contains(&(method.to_owned(), path.to_owned())),
            "{method} {path}"
        );
    }
}

/// Every `.rs` file under `dir`, recursively.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Names of the functions of `source` whose first parameter is `code: &'static str`.
fn helpers_taking_a_code(source: &str) -> Vec<String> {
    source
        .split("fn ")
        .skip(1)
        .filter_map(|rest| {
            let (name, params) = rest.split_once('(')?;
            let plain = name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            (plain && params.trim_start().starts_with("code: &'static str"))
                .then(|| name.to_owned())
        })
        .collect()
}

/// The codes of error answers the HTTP handlers can emit.
fn emitted_error_codes() -> BTreeSet<String> {
    let mut codes = BTreeSet::new();
    // `ApiError { code: "...", .. }` in the handlers (intake, webhook, the shared edge)
    // and in wa dev's gateway.
    let mut files = Vec::new();
    rust_files(&repo_root().join("shared/src/app"), &mut files);
    files.push(repo_root().join("local/src/gateway.rs"));
    for file in &files {
        let source = std::fs::read_to_string(file).unwrap();
        let source = without_tests(&source);
        for code in literals_after(source, "code: \"") {
            codes.insert(code.to_owned());
        }
        // Helpers that take the code first, `fn bad(code: &'static str, ...)`: the
        // literal each call passes.
        for helper in helpers_taking_a_code(source) {
            for call in source.split(&format!("{helper}(")).skip(1) {
                if let Some(rest) = call.trim_start().strip_prefix('"')
                    && let Some(end) = rest.find('"')
                {
                    codes.insert(rest[..end].to_owned());
                }
            }
        }
    }
    // The variants whose code is fixed by ApiError itself.
    let fixed = [
        ApiError::NotFound {
            message: String::new(),
        },
        ApiError::MethodNotAllowed,
        ApiError::PayloadTooLarge { size: 2, limit: 1 },
        ApiError::Validation(Vec::new()),
        ApiError::QuotaExceeded(QuotaRefusal::RateLimited {
            requests_per_second: 1,
            burst: 1,
            retry_after: std::time::Duration::from_secs(1),
        }),
        ApiError::QuotaExceeded(QuotaRefusal::DailyQuotaExceeded {
            messages_per_day: 1,
            retry_after: std::time::Duration::from_secs(1),
        }),
        ApiError::Internal,
    ];
    for error in fixed {
        codes.insert(error.code().to_owned());
    }
    codes
}

/// The validation problem codes: the constants of `validation::code`.
fn problem_codes() -> BTreeSet<String> {
    let source = read("shared/src/domain/validation/problem.rs");
    let module = &source[source.find("pub mod code").expect("pub mod code")..];
    let module = &module[..module.find("\n}").expect("end of mod code")];
    literals_after(module, ": &str = \"")
        .into_iter()
        .map(str::to_owned)
        .collect()
}

fn enum_of(spec: &Value, schema: &str) -> BTreeSet<String> {
    spec["components"]["schemas"][schema]["enum"]
        .as_array()
        .unwrap_or_else(|| panic!("components.schemas.{schema}.enum"))
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect()
}

fn assert_same(what: &str, emitted: &BTreeSet<String>, documented: &BTreeSet<String>) {
    let missing: Vec<_> = emitted.difference(documented).collect();
    let extra: Vec<_> = documented.difference(emitted).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{what}: emitted but not in docs/openapi.yaml: {missing:?}; \
         in docs/openapi.yaml but never emitted: {extra:?}"
    );
}

#[test]
fn every_error_code_the_handlers_emit_is_in_the_contract_and_the_reverse() {
    let emitted = emitted_error_codes();
    for known in ["malformed_json", "invalid_api_key", "invalid_signature"] {
        assert!(emitted.contains(known), "{known} not read: {emitted:?}");
    }
    assert_same("error codes", &emitted, &enum_of(&spec(), "ErrorCode"));
}

#[test]
fn every_validation_problem_code_is_in_the_contract_and_the_reverse() {
    let emitted = problem_codes();
    assert!(
        emitted.len() >= 20,
        "too few problem codes read: {emitted:?}"
    );
    assert_same("problem codes", &emitted, &enum_of(&spec(), "ProblemCode"));
}

async fn start(dir: &Path) -> DevServer {
    let path = dir.join("wa.toml");
    let text = format!(
        r#"data = "dev.sqlite"

[sandbox]
seed = 7

[[tenants]]
id = "acme"
api_keys = ["{KEY}"]
phone_number_id = "1000016"
waba_id = "20001000016"
"#
    );
    std::fs::write(&path, text).unwrap();
    let config = DevConfig::from_file_with_env(&path, &|_| None).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    wa_local::start(config, listener).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wa_dev_serves_the_yaml_contract_as_json() {
    let dir = tempfile::tempdir().unwrap();
    let dev = start(dir.path()).await;
    let resp = reqwest::get(format!("{}/openapi.json", dev.url()))
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let content_type = resp.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(
        content_type.starts_with("application/json"),
        "{content_type}"
    );
    let served: Value = resp.json().await.unwrap();
    assert_eq!(
        served,
        spec(),
        "GET /openapi.json differs from docs/openapi.yaml"
    );
    assert_eq!(served["openapi"], "3.1.0");
    // Status codes are strings in JSON (quoted in the YAML, so none is an integer key).
    assert!(served["paths"]["/v1/messages"]["post"]["responses"]["202"].is_object());
}
