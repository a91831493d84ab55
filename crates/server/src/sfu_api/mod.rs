//! The SFU control API (docs/protocol.md, "SFU control API") over HTTP.
//!
//! `routes` serves any [`vtp_sfu_driver::SfuControl`] at `/sfu/v1` (on
//! nodes that run the SFU); `remote` implements the same trait as a client
//! of those routes (on API nodes whose media runs elsewhere). Both sides
//! use the request and answer types of `vtp_sfu_driver::control`, and the
//! in-process path calls the very trait the routes call, so the three
//! cannot drift apart.
//!
//! Knows nothing of users, rooms' settings or signalling: the caller (an
//! API node) has decided who may do what before it calls.

pub mod remote;
mod routes;

pub use remote::RemoteSfu;
pub use routes::{node_router, router};
