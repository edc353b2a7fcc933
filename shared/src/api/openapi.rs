//! The OpenAPI 3.1 description of the HTTP API, served at `/v1/openapi.json`.
//!
//! The tests below keep it in step with the router: every route of
//! `api/mod.rs` (path and method) is described, and nothing else is; those
//! of `openapi_fields.rs`, with the views the handlers answer.

use axum::http::header;
use axum::response::IntoResponse;

const SPEC: &str = include_str!("openapi.json");

pub async fn spec() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], SPEC)
}

#[cfg(test)]
#[path = "openapi_fields.rs"]
mod fields;

#[cfg(test)]
mod tests {
    use super::SPEC;
    use serde_json::Value;
    use std::collections::BTreeSet;

    /// The router's source: its routes are read from here.
    const ROUTER: &str = include_str!("mod.rs");
    const ERRORS: &str = include_str!("../error.rs");

    const METHODS: [&str; 8] = [
        "get", "put", "post", "delete", "options", "head", "patch", "trace",
    ];

    fn spec() -> Value {
        serde_json::from_str(SPEC).expect("openapi.json is JSON")
    }

    /// (path, method) of every operation in the description.
    fn described() -> BTreeSet<(String, String)> {
        let spec = spec();
        let mut pairs = BTreeSet::new();
        for (path, item) in spec["paths"].as_object().expect("paths is an object") {
            for method in item.as_object().expect("a path item is an object").keys() {
                if METHODS.contains(&method.as_str()) {
                    pairs.insert((path.clone(), method.clone()));
                }
            }
        }
        pairs
    }

    /// (path, method) of every `.route("...", get(..).post(..))` in the
    /// source of `router()`, with the prefix of the router it is nested under.
    fn routed() -> BTreeSet<(String, String)> {
        let start = ROUTER
            .find("pub fn router(")
            .expect("mod.rs has `pub fn router(`");
        let body = &ROUTER[start..];
        let body = &body[..body.find("\n}\n").expect("router() ends")];
        // `.nest("/v1", v1)`: the routes of `let v1 = Router::new()...;` get the prefix.
        let mut nested: Vec<(&str, &str)> = Vec::new();
        let mut rest = body;
        while let Some(at) = rest.find(".nest(") {
            let args = &rest[at + ".nest(".len()..];
            let (prefix, after) = string_literal(args).expect(".nest takes a literal prefix");
            let name = after
                .trim_start()
                .trim_start_matches(',')
                .trim_start()
                .split(|c: char| !(c.is_alphanumeric() || c == '_'))
                .next()
                .unwrap_or_default();
            let decl = format!("let {name} = ");
            let from = body
                .find(&decl)
                .unwrap_or_else(|| panic!("no `{decl}` for the nested router `{name}`"));
            let to = from + body[from..].find(";\n").expect("the declaration ends");
            nested.push((&body[from..to], prefix));
            rest = &args[prefix.len()..];
        }
        let prefix_of = |offset: usize| {
            nested
                .iter()
                .find(|(decl, _)| {
                    let decl_start = decl.as_ptr() as usize - body.as_ptr() as usize;
                    (decl_start..decl_start + decl.len()).contains(&offset)
                })
                .map_or("", |(_, prefix)| *prefix)
        };
        let mut pairs = BTreeSet::new();
        let mut offset = 0;
        while let Some(at) = body[offset..].find(".route(") {
            let args_at = offset + at + ".route(".len();
            let (path, after) = string_literal(&body[args_at..]).expect(".route takes a literal");
            let methods = handler_methods(after.trim_start().trim_start_matches(','));
            assert!(!methods.is_empty(), "no handler method found for {path:?}");
            let full = format!("{}{}", prefix_of(args_at), path);
            for method in methods {
                pairs.insert((full.clone(), method));
            }
            offset = args_at;
        }
        pairs
    }

    /// The contents of the string literal `text` starts with (after spaces
    /// and newlines), and what follows it.
    fn string_literal(text: &str) -> Option<(&str, &str)> {
        let text = text.trim_start();
        let inner = text.strip_prefix('"')?;
        let end = inner.find('"')?;
        Some((&inner[..end], &inner[end + 1..]))
    }

    /// The methods of a method router expression `get(a).patch(b).delete(c)`,
    /// up to the `)` that closes `.route(`: the calls at nesting depth 0.
    fn handler_methods(expression: &str) -> Vec<String> {
        let mut methods = Vec::new();
        let mut depth = 0usize;
        let mut word = String::new();
        let mut chars = expression.chars().peekable();
        let mut in_string = false;
        while let Some(c) = chars.next() {
            if in_string {
                match c {
                    '\\' => {
                        chars.next();
                    }
                    '"' => in_string = false,
                    _ => {}
                }
                continue;
            }
            match c {
                '"' => in_string = true,
                '(' | '[' | '{' => {
                    if depth == 0 && METHODS.contains(&word.as_str()) {
                        methods.push(word.clone());
                    }
                    depth += 1;
                }
                ')' | ']' | '}' => {
                    if depth == 0 {
                        break;
                    }
                    depth -= 1;
                }
                _ => {}
            }
            if c.is_alphanumeric() || c == '_' {
                word.push(c);
            } else {
                word.clear();
            }
        }
        methods
    }

    #[test]
    fn the_route_reader_reads_chained_methods_and_nesting() {
        assert_eq!(
            handler_methods(" get(h::a).patch(h::b)\n .delete(h::c),\n )"),
            ["get", "patch", "delete"]
        );
        assert_eq!(
            handler_methods(" get(|| async { Json(json!({\"a\": \"get(\"})) }))"),
            ["get"]
        );
        let routes = routed();
        assert!(routes.contains(&("/healthz".into(), "get".into())));
        assert!(routes.contains(&("/v1/notifications/{id}".into(), "delete".into())));
        assert!(
            routes.len() > 15,
            "the route reader found too few routes: {routes:?}"
        );
    }

    #[test]
    fn it_is_openapi_3_1_and_every_operation_answers() {
        let spec = spec();
        assert_eq!(spec["openapi"], "3.1.0");
        assert!(spec["info"]["title"].is_string() && spec["info"]["version"].is_string());
        for (path, method) in described() {
            let operation = &spec["paths"][&path][&method];
            let responses = operation["responses"]
                .as_object()
                .unwrap_or_else(|| panic!("{} {path} has no responses", method.to_uppercase()));
            assert!(
                responses.keys().any(|status| status.starts_with('2')),
                "{} {path} has no 2xx response",
                method.to_uppercase()
            );
            for (status, response) in responses {
                let response = resolve(&spec, response);
                assert!(
                    response["description"].is_string(),
                    "{} {path} {status} has no description",
                    method.to_uppercase()
                );
                // `/metrics` answers in the text format Prometheus reads.
                let media = match (path.as_str(), status.as_str()) {
                    ("/metrics", "200") => "application/openmetrics-text",
                    _ => "application/json",
                };
                let has_body = response["content"][media]["schema"].is_object();
                assert_eq!(
                    has_body,
                    status != "204",
                    "{} {path} {status}: a {media} body for every status but 204",
                    method.to_uppercase()
                );
            }
        }
    }

    #[test]
    fn every_router_route_is_described_and_nothing_else() {
        // The page and its assets come from `page::routes()` (merged in, not
        // a `.route` of mod.rs) and are not part of the API.
        let routed = routed();
        let described = described();
        let undescribed: Vec<String> = routed
            .difference(&described)
            .map(|(path, method)| format!("{} {path}", method.to_uppercase()))
            .collect();
        let unrouted: Vec<String> = described
            .difference(&routed)
            .map(|(path, method)| format!("{} {path}", method.to_uppercase()))
            .collect();
        assert!(
            undescribed.is_empty() && unrouted.is_empty(),
            "api/openapi.json is out of step with the router in api/mod.rs:\n  \
             routed but missing from the description: {undescribed:?}\n  \
             described but not routed: {unrouted:?}"
        );
    }

    #[test]
    fn v1_needs_the_bearer_key_and_says_401() {
        let spec = spec();
        let scheme = &spec["components"]["securitySchemes"]["bearerAuth"];
        assert_eq!(
            (&scheme["type"], &scheme["scheme"]),
            (&"http".into(), &"bearer".into())
        );
        assert_eq!(spec["security"], serde_json::json!([{"bearerAuth": []}]));
        for (path, method) in described() {
            let operation = &spec["paths"][&path][&method];
            let open = path == "/healthz" || path == "/v1/openapi.json";
            if open {
                assert_eq!(
                    operation["security"],
                    serde_json::json!([]),
                    "{path} is open"
                );
            } else {
                assert!(
                    operation.get("security").is_none(),
                    "{} {path} keeps the bearer key",
                    method.to_uppercase()
                );
                assert!(
                    operation["responses"]["401"].is_object(),
                    "{} {path} documents 401",
                    method.to_uppercase()
                );
            }
        }
    }

    #[test]
    fn path_parameters_match_the_template() {
        let spec = spec();
        for (path, method) in described() {
            let item = &spec["paths"][&path];
            let mut declared = BTreeSet::new();
            for list in [&item["parameters"], &item[&method]["parameters"]] {
                for parameter in list.as_array().into_iter().flatten() {
                    let parameter = resolve(&spec, parameter);
                    if parameter["in"] == "path" {
                        assert_eq!(parameter["required"], true, "{path}");
                        declared.insert(parameter["name"].as_str().unwrap().to_string());
                    }
                }
            }
            let templated: BTreeSet<String> = path
                .split('/')
                .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
                .map(str::to_string)
                .collect();
            assert_eq!(
                declared,
                templated,
                "{} {path}: path parameters",
                method.to_uppercase()
            );
        }
    }

    #[test]
    fn every_reference_resolves_and_error_codes_exist() {
        let spec = spec();
        let mut references = Vec::new();
        collect_refs(&spec, &mut references);
        assert!(!references.is_empty());
        for reference in references {
            let pointer = reference
                .strip_prefix('#')
                .unwrap_or_else(|| panic!("only local references: {reference}"));
            assert!(
                spec.pointer(pointer).is_some(),
                "{reference} does not resolve"
            );
        }
        for (name, response) in spec["components"]["responses"].as_object().unwrap() {
            let schema = &response["content"]["application/json"]["schema"];
            let code = schema["allOf"][1]["properties"]["error"]["properties"]["code"]["const"]
                .as_str()
                .unwrap_or_else(|| panic!("response {name} names its error code"));
            let literal = format!("\"{code}\"");
            assert!(
                ERRORS.contains(&literal) || ROUTER.contains(&literal),
                "response {name}: no error code {literal} in error.rs or api/mod.rs"
            );
        }
    }

    fn resolve<'a>(spec: &'a Value, value: &'a Value) -> &'a Value {
        match value["$ref"].as_str() {
            Some(reference) => spec
                .pointer(reference.trim_start_matches('#'))
                .unwrap_or_else(|| panic!("{reference} does not resolve")),
            None => value,
        }
    }

    fn collect_refs(value: &Value, out: &mut Vec<String>) {
        match value {
            Value::Object(object) => {
                for (key, value) in object {
                    match (key.as_str(), value) {
                        ("$ref", Value::String(reference)) => out.push(reference.clone()),
                        _ => collect_refs(value, out),
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|v| collect_refs(v, out)),
            _ => {}
        }
    }
}
