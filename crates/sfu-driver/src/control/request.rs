//! Every operation of the SFU control API, written once (the table at the
//! end of this file): its request ([`SfuRequest`]), its REST form (method,
//! path under `/sfu/v1`, JSON body; docs/protocol.md, "SFU control API")
//! and the shape of its answer ([`SfuResponse`]).
//!
//! The in-process SFU answers a request directly (module `local`); the
//! server crate serves the table's routes and, as an HTTP client, turns a
//! request into its route and the answer back ([`SfuRequest::to_rest`],
//! [`SfuRequest::from_rest`], [`Route::decode`]). An operation added to the
//! table is therefore served and called over HTTP without more code; only
//! its in-process implementation is written by hand.
//!
//! A row of the table reads
//! `Method "/path/{param}" => Variant { param, … } + Body -> Answer;`:
//! path parameters are the variant's `String` fields of the same names, in
//! the path; `+ Body` (optional) is the JSON body, the variant's `body`
//! field (its own type, with its unknown fields refused); `Answer` is the
//! [`SfuResponse`] variant it answers with.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use vtp_sfu::engine::TransportDirection;
use vtp_sfu::rtp::MediaKind;

use super::response::SfuResponse;
use super::{SfuError, SfuErrorCode, SfuResult};

/// An HTTP method of the REST form (named here so that the driver needs no
/// HTTP crate).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RestMethod {
    Get,
    Put,
    Post,
    Delete,
}

/// How one operation is spelled in REST.
#[derive(Clone, Copy, Debug)]
pub struct Route {
    /// The operation's name (its [`SfuRequest`] variant), for logs.
    pub op: &'static str,
    pub method: RestMethod,
    /// Under [`REST_PREFIX`]; each `{name}` is the request's field `name`.
    pub path: &'static str,
    /// Whether the call takes a JSON body (the others ignore theirs).
    pub has_body: bool,
    decode: fn(&[u8]) -> serde_json::Result<SfuResponse>,
}

impl Route {
    /// The operation's answer from the JSON body of a success.
    pub fn decode(&self, body: &[u8]) -> serde_json::Result<SfuResponse> {
        (self.decode)(body)
    }
}

/// Where the REST form lives on a node.
pub const REST_PREFIX: &str = "/sfu/v1";

/// One call in its REST form.
#[derive(Clone, Debug)]
pub struct RestCall {
    pub route: Route,
    /// Under [`REST_PREFIX`], parameters filled in and percent-encoded.
    pub path: String,
    /// The JSON body, for the calls that take one.
    pub body: Option<Value>,
}

impl SfuRequest {
    /// This request as an HTTP call of the REST form.
    pub fn to_rest(&self) -> SfuResult<RestCall> {
        let route = self.route();
        let mut params = self.path_params();
        let mut path = String::with_capacity(route.path.len() + 64);
        let mut rest = route.path;
        while let Some(open) = rest.find('{') {
            let close = rest[open..]
                .find('}')
                .map(|c| open + c)
                .ok_or_else(|| table_error(route.op, "an unclosed `{` in the path"))?;
            let name = &rest[open + 1..close];
            let at = params
                .iter()
                .position(|(n, _)| *n == name)
                .ok_or_else(|| table_error(route.op, "a path parameter the request lacks"))?;
            path.push_str(&rest[..open]);
            push_segment(&mut path, params.swap_remove(at).1);
            rest = &rest[close + 1..];
        }
        path.push_str(rest);
        if !params.is_empty() {
            // Would be lost on the way: the table forgot it in the path.
            return Err(table_error(route.op, "a field the path does not carry"));
        }
        Ok(RestCall {
            route,
            path,
            body: self.body()?,
        })
    }

    /// The request a REST call of `route` stands for: its path parameters
    /// by name (decoded) and, for routes that take one, its JSON body.
    /// Refused (`bad_request`) when the body does not fit.
    pub fn from_rest(
        route: &Route,
        mut params: HashMap<String, String>,
        body: Option<Value>,
    ) -> SfuResult<SfuRequest> {
        let mut param = |name: &str| {
            params
                .remove(name)
                .ok_or_else(|| table_error(route.op, "a path parameter the route lacks"))
        };
        Self::build(route.op, &mut param, body)
    }
}

/// Escaped in a path segment: everything but RFC 3986's unreserved characters.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// A path segment with everything but unreserved characters escaped.
fn push_segment(out: &mut String, id: &str) {
    out.extend(utf8_percent_encode(id, SEGMENT));
}

/// A route's body, refused as the API refuses malformed JSON.
fn parse_body<T: serde::de::DeserializeOwned>(body: Option<Value>) -> SfuResult<T> {
    serde_json::from_value(body.unwrap_or(Value::Object(Default::default())))
        .map_err(|e| SfuError::bad_request(format!("invalid body: {e}")))
}

fn to_body<T: Serialize>(body: &T) -> SfuResult<Option<Value>> {
    serde_json::to_value(body)
        .map(Some)
        .map_err(|e| SfuError::new(SfuErrorCode::Internal, e.to_string()))
}

/// A row of the table contradicts itself (caught by the contract tests).
fn table_error(op: &str, what: &str) -> SfuError {
    SfuError::new(
        SfuErrorCode::Internal,
        format!("the SFU operation {op} has {what}"),
    )
}

macro_rules! has_body {
    () => {
        false
    };
    ($body:ident) => {
        true
    };
}

macro_rules! route {
    ($method:ident $path:literal $op:ident $answer:ident $($body:ident)?) => {
        Route {
            op: stringify!($op),
            method: RestMethod::$method,
            path: $path,
            has_body: has_body!($($body)?),
            decode: |bytes| serde_json::from_slice(bytes).map(SfuResponse::$answer),
        }
    };
}

/// The JSON body of a request of variant `$op`, if the variant has one.
macro_rules! body_of {
    ($request:expr, $op:ident) => {
        Ok(None)
    };
    ($request:expr, $op:ident, $body:ident) => {
        match $request {
            SfuRequest::$op { body, .. } => to_body::<$body>(body),
            _ => Ok(None),
        }
    };
}

macro_rules! operations {
    ($(
        $(#[doc = $doc:literal])*
        $method:ident $path:literal => $op:ident { $($param:ident),* } $(+ $body:ident)? -> $answer:ident;
    )*) => {
        /// One operation of the SFU control API (one row of the table in
        /// `control/request.rs`). What each is for: docs/protocol.md.
        #[derive(Clone, Debug, PartialEq)]
        pub enum SfuRequest {
            $(
                $(#[doc = $doc])*
                $op { $($param: String,)* $(body: $body,)? },
            )*
        }

        impl SfuRequest {
            /// Every operation's REST form, in the order of the table.
            pub const ROUTES: &'static [Route] = &[$(route!($method $path $op $answer $($body)?)),*];

            /// This request's REST form.
            pub fn route(&self) -> Route {
                match self {
                    $(SfuRequest::$op { .. } => route!($method $path $op $answer $($body)?),)*
                }
            }

            /// The request's path parameters, by name.
            fn path_params(&self) -> Vec<(&'static str, &str)> {
                match self {
                    $(SfuRequest::$op { $($param,)* .. } => vec![$((stringify!($param), $param.as_str())),*],)*
                }
            }

            fn body(&self) -> SfuResult<Option<Value>> {
                match self {
                    $(SfuRequest::$op { .. } => body_of!(self, $op $(, $body)?),)*
                }
            }

            /// The request of operation `op` from its parameters and body.
            fn build(
                op: &str,
                param: &mut dyn FnMut(&str) -> SfuResult<String>,
                body: Option<Value>,
            ) -> SfuResult<SfuRequest> {
                match op {
                    $(stringify!($op) => Ok(SfuRequest::$op {
                        $($param: param(stringify!($param))?,)*
                        $(body: parse_body::<$body>(body)?,)?
                    }),)*
                    _ => Err(SfuError::new(SfuErrorCode::NotFound, format!("no SFU operation {op}"))),
                }
            }
        }
    };
}

/// `AddPeer`'s body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewPeer {
    pub peer_id: String,
}

/// `CreateTransport`'s body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateTransport {
    pub peer_id: String,
    pub direction: TransportDirection,
    /// Answer `sctpParameters` (the client sent `sctpCapabilities`).
    #[serde(default)]
    pub enable_sctp: bool,
}

/// `ConnectTransport`'s body.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Connect {
    pub dtls_parameters: Value,
}

/// `Produce`'s body.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Produce {
    pub peer_id: String,
    pub transport_id: String,
    pub kind: MediaKind,
    pub rtp_parameters: Value,
    /// Kept by the API node; here only `source: "screen"` matters: a
    /// screen share gets the engine's screen-share bandwidth rules.
    #[serde(default)]
    pub app_data: Value,
}

/// `Consume`'s body.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Consume {
    pub peer_id: String,
    pub transport_id: String,
    pub producer_id: String,
    pub rtp_capabilities: Value,
}

/// `SetConsumerLayers`'s body: the best layers the consumer wants
/// (`set-preferred-layers`; 0 to 2 each, every temporal layer when
/// `temporalLayer` is absent).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PreferredLayers {
    pub spatial_layer: u8,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temporal_layer: Option<u8>,
}

operations! {
    /// Liveness and load.
    Get "/health" => Health {} -> Health;
    /// Every open room, counted.
    Get "/rooms" => Rooms {} -> Rooms;
    /// One room in detail, with media statistics.
    Get "/rooms/{room_id}" => Room { room_id } -> Room;
    /// Opens a room (a router) if it is not open yet.
    Put "/rooms/{room_id}" => OpenRoom { room_id } -> RoomOpened;
    /// Closes a room and everything in it.
    Delete "/rooms/{room_id}" => CloseRoom { room_id } -> Done;
    /// Adds a peer, opening the room if needed (`conflict` if it is there).
    Post "/rooms/{room_id}/peers" => AddPeer { room_id } + NewPeer -> PeerAdded;
    /// Removes a peer and everything it owns.
    Post "/rooms/{room_id}/peers/{peer_id}/leave" => RemovePeer { room_id, peer_id } -> Done;
    /// A transport owned by a peer of the room.
    Post "/rooms/{room_id}/transports" => CreateTransport { room_id } + CreateTransport -> Transport;
    Post "/rooms/{room_id}/transports/{transport_id}/connect" => ConnectTransport { room_id, transport_id } + Connect -> Done;
    /// New ICE credentials; DTLS and media carry on.
    Post "/rooms/{room_id}/transports/{transport_id}/restart-ice" => RestartIce { room_id, transport_id } -> IceRestarted;
    Post "/rooms/{room_id}/transports/{transport_id}/close" => CloseTransport { room_id, transport_id } -> Done;
    /// A producer on a send transport of the named peer.
    Post "/rooms/{room_id}/producers" => Produce { room_id } + Produce -> Producer;
    Post "/rooms/{room_id}/producers/{producer_id}/pause" => PauseProducer { room_id, producer_id } -> Done;
    Post "/rooms/{room_id}/producers/{producer_id}/resume" => ResumeProducer { room_id, producer_id } -> Done;
    Post "/rooms/{room_id}/producers/{producer_id}/close" => CloseProducer { room_id, producer_id } -> Done;
    /// A consumer (created paused) on a receive transport of the named peer.
    Post "/rooms/{room_id}/consumers" => Consume { room_id } + Consume -> Consumer;
    Post "/rooms/{room_id}/consumers/{consumer_id}/pause" => PauseConsumer { room_id, consumer_id } -> Done;
    Post "/rooms/{room_id}/consumers/{consumer_id}/resume" => ResumeConsumer { room_id, consumer_id } -> Done;
    /// What the consumer then gets is told by `ConsumerLayersChanged` events.
    Post "/rooms/{room_id}/consumers/{consumer_id}/layers" => SetConsumerLayers { room_id, consumer_id } + PreferredLayers -> Done;
    Post "/rooms/{room_id}/consumers/{consumer_id}/close" => CloseConsumer { room_id, consumer_id } -> Done;
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;
    use serde_json::json;

    /// A body for each operation that takes one.
    fn body_of(op: &str) -> Option<Value> {
        Some(match op {
            "AddPeer" => json!({ "peerId": "p?" }),
            "CreateTransport" => json!({ "peerId": "p", "direction": "recv", "enableSctp": true }),
            "ConnectTransport" => json!({ "dtlsParameters": { "role": "client" } }),
            "Produce" => json!({ "peerId": "p", "transportId": "t", "kind": "audio",
                "rtpParameters": {}, "appData": { "source": "mic" } }),
            "Consume" => json!({ "peerId": "p?", "transportId": "t/1", "producerId": "ä",
                "rtpCapabilities": {} }),
            "SetConsumerLayers" => json!({ "spatialLayer": 1 }),
            _ => return None,
        })
    }

    /// Each route's path parameters, with values that need escaping.
    fn params_of(route: &Route) -> HashMap<String, String> {
        let names = route.path.split('{').skip(1);
        let names = names.filter_map(|rest| rest.split_once('}').map(|(name, _)| name));
        names.map(|n| (n.to_owned(), format!("{n} 1/ä?"))).collect()
    }

    #[test]
    fn every_operation_goes_to_rest_and_back_unchanged() {
        for route in SfuRequest::ROUTES {
            let body = body_of(route.op);
            assert_eq!(body.is_some(), route.has_body, "{}", route.op);
            let request = SfuRequest::from_rest(route, params_of(route), body.clone()).unwrap();
            let call = request.to_rest().unwrap();
            assert_eq!((call.route.op, call.route.method), (route.op, route.method));
            assert_eq!(call.body, body, "{}", route.op);
            assert!(!call.path.contains(['{', ' ', '?', 'ä']), "{}", call.path);
            let back = SfuRequest::from_rest(route, params_of(route), call.body);
            assert_eq!(back.unwrap(), request);
        }
    }

    #[test]
    fn paths_are_filled_in_escaped_and_unique() {
        let call = SfuRequest::RemovePeer {
            room_id: "r 1".into(),
            peer_id: "a/b".into(),
        }
        .to_rest()
        .unwrap();
        assert_eq!(call.path, "/rooms/r%201/peers/a%2Fb/leave");
        assert_eq!((call.route.method, call.body), (RestMethod::Post, None));
        let (mut paths, mut ops) = (HashSet::new(), HashSet::new());
        for route in SfuRequest::ROUTES {
            assert!(paths.insert((route.method, route.path)), "{route:?} twice");
            assert!(ops.insert(route.op), "{} twice", route.op);
        }
    }

    #[test]
    fn bodies_refuse_unknown_missing_and_mistyped_fields() {
        let route = SfuRequest::ROUTES
            .iter()
            .find(|r| r.op == "SetConsumerLayers")
            .unwrap();
        for body in [
            json!({ "spatialLayer": 1, "extra": true }),
            json!({}),
            json!({ "spatialLayer": "one" }),
        ] {
            let err = SfuRequest::from_rest(route, params_of(route), Some(body)).unwrap_err();
            assert_eq!(err.code, SfuErrorCode::BadRequest, "{err}");
        }
    }
}
