//! What the OpenAPI document says beyond the types: the lengths, patterns,
//! bounds and values the handlers enforce on fields that are strings or
//! numbers in Rust (the store's enums document themselves: they derive
//! `ToSchema`), and the error answers every operation can give whatever its
//! handler does ([`CommonResponses`]).
//!
//! Why: clients and tools (schemathesis in `web/tests/openapi.test.mjs`)
//! take the document as the contract. A free string where the server
//! accepts three words, or a 401 a secured operation answers but does not
//! list, makes generated clients and fuzzers wrong in the same way.
//!
//! The functions are used with `#[schema(schema_with = …)]` and
//! `#[param(schema_with = …)]`; those ending in `_or_null` are for optional
//! body fields, which the server also accepts as `null`.

use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::schema::{KnownFormat, Object, ObjectBuilder, SchemaFormat, SchemaType, Type};
use utoipa::openapi::security::SecurityRequirement;
use utoipa::openapi::{ContentBuilder, OpenApi, Ref, ResponseBuilder};
use utoipa::{Modify, PartialSchema, ToSchema};
use vtp_store::{
    MAX_DISPLAY_NAME_CHARS, MAX_EMAIL_CHARS, MAX_ROOM_PARTICIPANTS, MAX_TITLE_CHARS, RoomStatus,
};

use crate::auth::password::{MAX_PASSWORD_CHARS, MIN_PASSWORD_CHARS};
use crate::error::ErrorBody;
use crate::rooms::MEDIA_KINDS;

/// A string that is one of `values`.
fn one_of<'a>(values: impl IntoIterator<Item = &'a str>) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(values))
}

/// `schema`, also accepting `null` (the server takes an optional body field
/// sent as `null` as absent).
fn or_null(schema: ObjectBuilder) -> Object {
    let mut object = schema.build();
    if let SchemaType::Type(ty) = object.schema_type {
        object.schema_type = SchemaType::Array(vec![ty, Type::Null]);
    }
    if let Some(values) = object.enum_values.as_mut() {
        values.push(serde_json::Value::Null);
    }
    object
}

/// What a client may set: a room becomes `live` only when people join.
pub fn settable_room_status_or_null() -> Object {
    or_null(one_of(
        [RoomStatus::Open, RoomStatus::Closed].map(RoomStatus::as_str),
    ))
}

/// A recording file's kind: a track's, or `null` for the manifest.
pub fn media_kind_or_null() -> Object {
    or_null(one_of(MEDIA_KINDS))
}

/// A probe's answer.
pub fn health_status() -> Object {
    one_of(["ok", "unavailable"]).build()
}

/// The attendance report's formats.
pub fn attendance_format() -> Object {
    one_of(["json", "csv"]).build()
}

/// Control characters: C0, DEL, C1 (Rust's `char::is_control`).
const CONTROLS: &str = r"\u0000-\u001f\u007f-\u009f";
/// White space that is not a control character (the rest of Rust's
/// `White_Space`: `\t`–`\r` and U+0085 are controls).
const SPACES: &str = r" \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000";

/// A single line of text as `clean_text` takes it: trimmed of white space
/// (Rust's, spelled out: regex dialects disagree on `\s`), then 1 to `max`
/// characters, none of them a control character. The length is in the
/// pattern, not in `maxLength`, because the server counts after trimming.
fn line(max: usize) -> ObjectBuilder {
    let white = format!(r"[\t-\r\u0085{SPACES}]*");
    let visible = format!("[^{CONTROLS}{SPACES}]");
    let inner = max.saturating_sub(2);
    let pattern = format!("^{white}{visible}(?:[^{CONTROLS}]{{0,{inner}}}{visible})?{white}$");
    ObjectBuilder::new()
        .schema_type(Type::String)
        .min_length(Some(1))
        .pattern(Some(pattern))
}

pub fn title() -> Object {
    line(MAX_TITLE_CHARS).build()
}

pub fn title_or_null() -> Object {
    or_null(line(MAX_TITLE_CHARS))
}

pub fn display_name() -> Object {
    line(MAX_DISPLAY_NAME_CHARS).build()
}

pub fn display_name_or_null() -> Object {
    or_null(line(MAX_DISPLAY_NAME_CHARS))
}

/// A room's slug (`validate_slug`).
pub fn slug_or_null() -> Object {
    or_null(
        ObjectBuilder::new()
            .schema_type(Type::String)
            .min_length(Some(3))
            .max_length(Some(48))
            .pattern(Some("^[a-z0-9]([a-z0-9-]*[a-z0-9])?$"))
            .examples(["physics-101"]),
    )
}

/// An e-mail address (`normalize_email`: compared trimmed and lower-case).
pub fn email() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .format(Some(SchemaFormat::Custom("email".into())))
        .max_length(Some(MAX_EMAIL_CHARS))
        .examples(["ann@example.org"])
        .build()
}

/// A password being set.
pub fn new_password() -> Object {
    new_password_builder().build()
}

pub fn new_password_or_null() -> Object {
    or_null(new_password_builder())
}

fn new_password_builder() -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Password)))
        .min_length(Some(MIN_PASSWORD_CHARS))
        .max_length(Some(MAX_PASSWORD_CHARS))
}

fn max_participants_builder() -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int32)))
        .minimum(Some(1))
        .maximum(Some(MAX_ROOM_PARTICIPANTS))
}

pub fn max_participants() -> Object {
    max_participants_builder().build()
}

pub fn max_participants_or_null() -> Object {
    or_null(max_participants_builder())
}

/// The error answers an operation can give besides its own: 401 on every
/// secured operation (no, a bad or an expired token), 400 on every one with
/// path or query parameters (a malformed id, an unknown parameter) or a
/// body (malformed JSON, wrong types, unknown fields), 413 on every one
/// with a body and 415 where the body is a required JSON document.
pub struct CommonResponses;

impl Modify for CommonResponses {
    fn modify(&self, openapi: &mut OpenApi) {
        for item in openapi.paths.paths.values_mut() {
            for operation in [
                &mut item.get,
                &mut item.post,
                &mut item.put,
                &mut item.patch,
                &mut item.delete,
            ]
            .into_iter()
            .flatten()
            {
                add_common_responses(operation);
            }
        }
        let components = openapi.components.get_or_insert_with(Default::default);
        components
            .schemas
            .entry(ErrorBody::name().into_owned())
            .or_insert_with(ErrorBody::schema);
    }
}

fn add_common_responses(operation: &mut Operation) {
    let secured = operation
        .security
        .as_ref()
        .is_some_and(|s| s.iter().any(|r| *r != SecurityRequirement::default()));
    let has_params = operation.parameters.as_ref().is_some_and(|params| {
        params
            .iter()
            .any(|p| matches!(p.parameter_in, ParameterIn::Path | ParameterIn::Query))
    });
    let body = operation.request_body.as_ref();
    let json_body_required = body.is_some_and(|b| {
        b.required == Some(utoipa::openapi::Required::True)
            && b.content.contains_key("application/json")
    });
    let mut add = |status: &str, description: &str| {
        operation
            .responses
            .responses
            .entry(status.to_string())
            .or_insert_with(|| error_response(description).into());
    };
    if secured {
        add(
            "401",
            "no bearer token, or one that is invalid, expired or revoked",
        );
    }
    if has_params || body.is_some() {
        add(
            "400",
            "a malformed parameter or body (an id that is not a UUID, an unknown query \
             parameter, malformed JSON, a wrong type, an unknown field)",
        );
    }
    if body.is_some() {
        add("413", "the body is larger than the server accepts");
    }
    if json_body_required {
        add("415", "the body is not sent as application/json");
    }
}

fn error_response(description: &str) -> utoipa::openapi::Response {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name(ErrorBody::name())))
                .build(),
        )
        .build()
}
