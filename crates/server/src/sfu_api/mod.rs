//! The SFU control API (docs/protocol.md, "SFU control API") over HTTP.
//!
//! Neither side spells out an operation: both follow the control API's
//! table (`vtp_sfu_driver::control`, [`vtp_sfu_driver::SfuRequest`]).
//! `routes` serves any [`vtp_sfu_driver::SfuControl`] at `/sfu/v1` (on
//! nodes that run the SFU), one route per row, each handing its request to
//! `SfuControl::call`; `remote` implements the trait's `call` as a client
//! of those routes (on API nodes whose media runs elsewhere). The
//! in-process path answers the very requests the routes build, so the
//! three cannot drift apart.
//!
//! Knows nothing of users, rooms' settings or signalling: the caller (an
//! API node) has decided who may do what before it calls.

pub mod remote;
mod routes;

pub use remote::RemoteSfu;
pub use routes::{node_router, router};
