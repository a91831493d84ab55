//! The OpenAPI document tells the truth where it is cheap to check without
//! a server: every secured operation lists its 401, every operation the
//! extractors can refuse lists those answers, no field whose values are a
//! fixed set is documented as a free string, and the bounds the handlers
//! enforce are in the schema. The full check against a running server is
//! schemathesis (`web/tests/openapi.test.mjs`).

use serde_json::Value;

fn document() -> Value {
    serde_json::to_value(vtp_server::api::openapi()).expect("the document is JSON")
}

/// Every operation: (method, path, operation).
fn operations(doc: &Value) -> Vec<(String, String, Value)> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("path item") {
            if ["get", "post", "put", "patch", "delete"].contains(&method.as_str()) {
                out.push((method.to_uppercase(), path.clone(), op.clone()));
            }
        }
    }
    assert!(out.len() > 20, "too few operations: {}", out.len());
    out
}

fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    match schema["$ref"].as_str() {
        Some(name) => {
            let name = name.trim_start_matches("#/components/schemas/");
            resolve(doc, &doc["components"]["schemas"][name])
        }
        None => schema,
    }
}

/// The error answer `status` of `op`, which must be the API's error body.
fn error_response(doc: &Value, op: &Value, status: &str) -> Result<(), String> {
    let response = &op["responses"][status];
    if !response.is_object() {
        return Err(format!("no {status}"));
    }
    let schema = &response["content"]["application/json"]["schema"];
    if schema["$ref"] != "#/components/schemas/ErrorBody" {
        return Err(format!("{status} is not an ErrorBody: {response}"));
    }
    if !doc["components"]["schemas"]["ErrorBody"].is_object() {
        return Err("no ErrorBody component".into());
    }
    Ok(())
}

#[test]
fn every_secured_operation_documents_401() {
    let doc = document();
    let mut missing = Vec::new();
    let mut secured = 0;
    for (method, path, op) in operations(&doc) {
        let requires_token = op["security"]
            .as_array()
            .is_some_and(|reqs| reqs.iter().any(|r| r.get("bearer").is_some()));
        if requires_token {
            secured += 1;
            if let Err(e) = error_response(&doc, &op, "401") {
                missing.push(format!("{method} {path}: {e}"));
            }
        }
    }
    assert!(secured > 20, "only {secured} secured operations");
    assert!(missing.is_empty(), "{missing:#?}");
}

#[test]
fn operations_document_what_their_extractors_refuse() {
    let doc = document();
    let mut missing = Vec::new();
    for (method, path, op) in operations(&doc) {
        let params = op["parameters"]
            .as_array()
            .is_some_and(|ps| ps.iter().any(|p| p["in"] == "path" || p["in"] == "query"));
        let body = &op["requestBody"];
        let mut expected = Vec::new();
        if params || body.is_object() {
            expected.push("400");
        }
        if body.is_object() {
            expected.push("413");
        }
        if body["required"] == true {
            expected.push("415");
        }
        for status in expected {
            if let Err(e) = error_response(&doc, &op, status) {
                missing.push(format!("{method} {path}: {e}"));
            }
        }
    }
    assert!(missing.is_empty(), "{missing:#?}");
}

/// Field and parameter names whose values are a fixed set everywhere in
/// the API.
const ENUM_NAMES: [&str; 7] = [
    "role",
    "status",
    "state",
    "layout",
    "recordingAccess",
    "format",
    "kind",
];

/// Whether `schema` (through references and `oneOf`/`anyOf` with `null`)
/// lists its values.
fn is_enum(doc: &Value, schema: &Value) -> bool {
    let schema = resolve(doc, schema);
    if schema["enum"].is_array() {
        return true;
    }
    for key in ["oneOf", "anyOf"] {
        if let Some(options) = schema[key].as_array() {
            let non_null: Vec<&Value> = options.iter().filter(|o| o["type"] != "null").collect();
            return !non_null.is_empty() && non_null.iter().all(|o| is_enum(doc, o));
        }
    }
    false
}

#[test]
fn no_enum_is_a_free_string() {
    let doc = document();
    let mut free = Vec::new();
    let mut checked = 0;
    for (name, schema) in doc["components"]["schemas"].as_object().expect("schemas") {
        let Some(properties) = schema["properties"].as_object() else {
            continue;
        };
        for (field, property) in properties {
            if ENUM_NAMES.contains(&field.as_str()) {
                checked += 1;
                if !is_enum(&doc, property) {
                    free.push(format!("{name}.{field}: {property}"));
                }
            }
        }
    }
    for (method, path, op) in operations(&doc) {
        for param in op["parameters"].as_array().into_iter().flatten() {
            let name = param["name"].as_str().unwrap_or_default();
            if ENUM_NAMES.contains(&name) {
                checked += 1;
                if !is_enum(&doc, &param["schema"]) {
                    free.push(format!("{method} {path} ?{name}: {}", param["schema"]));
                }
            }
        }
    }
    assert!(checked >= 15, "only {checked} enum-valued fields found");
    assert!(free.is_empty(), "free strings: {free:#?}");
    // The values are the ones the server speaks.
    let values = |name: &str| doc["components"]["schemas"][name]["enum"].clone();
    assert_eq!(
        values("Role"),
        serde_json::json!(["admin", "instructor", "student"])
    );
    assert_eq!(
        values("RoomStatus"),
        serde_json::json!(["open", "live", "closed"])
    );
    assert_eq!(
        values("ExportLayout"),
        serde_json::json!(["grid", "speaker", "audio"])
    );
    assert_eq!(
        values("ExportState"),
        serde_json::json!(["queued", "running", "ready", "failed"])
    );
}

/// The first non-null schema of a property (`oneOf` with `null` for
/// optional body fields).
fn property<'a>(doc: &'a Value, component: &str, field: &str) -> &'a Value {
    let schema = resolve(
        doc,
        &doc["components"]["schemas"][component]["properties"][field],
    );
    assert!(!schema.is_null(), "{component}.{field} is missing");
    schema
}

#[test]
fn the_bounds_the_server_enforces_are_in_the_schema() {
    let doc = document();
    // Paging parameters of every list.
    for (method, path, op) in operations(&doc) {
        for param in op["parameters"].as_array().into_iter().flatten() {
            let name = param["name"].as_str().unwrap_or_default();
            if ["limit", "perPage", "page"].contains(&name) {
                let schema = &param["schema"];
                assert_eq!(schema["minimum"], 1, "{method} {path} ?{name}: {schema}");
                assert!(
                    schema["maximum"].as_u64().is_some_and(|m| m >= 100),
                    "{method} {path} ?{name}: {schema}"
                );
            }
        }
    }
    let max_participants = vtp_server::server::MAX_ROOM_PARTICIPANTS;
    for component in ["RoomSettingsDto", "RoomSettingsInput"] {
        let schema = property(&doc, component, "maxParticipants");
        assert_eq!(schema["minimum"], 1, "{component}: {schema}");
        assert_eq!(schema["maximum"], max_participants, "{component}: {schema}");
    }
    for (component, field) in [
        ("CreateRoomRequest", "title"),
        ("RoomPatchRequest", "title"),
        ("RegisterRequest", "displayName"),
        ("UserPatchRequest", "displayName"),
    ] {
        // The length after trimming is in the pattern (web/tests/openapi.test.mjs
        // checks the pattern against the server).
        let schema = property(&doc, component, field);
        assert_eq!(schema["minLength"], 1, "{component}.{field}: {schema}");
        assert!(
            schema["pattern"]
                .as_str()
                .is_some_and(|p| p.contains("{0,")),
            "{component}.{field}: {schema}"
        );
    }
    let slug = property(&doc, "CreateRoomRequest", "slug");
    assert_eq!(
        (&slug["minLength"], &slug["maxLength"]),
        (&Value::from(3), &Value::from(48)),
        "{slug}"
    );
    assert!(slug["pattern"].is_string(), "{slug}");
    for component in ["RegisterRequest", "LoginRequest"] {
        let email = property(&doc, component, "email");
        assert_eq!(email["format"], "email", "{component}: {email}");
    }
    let password = property(&doc, "RegisterRequest", "password");
    assert_eq!(password["minLength"], 8, "{password}");
}
