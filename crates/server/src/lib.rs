//! The `vtp` program: configuration, HTTP API, authentication, Socket.IO
//! signalling, live rooms, recording, and the wiring that starts and stops
//! it all (one process, or an API node and SFU nodes by `--role`).
//!
//! Requests flow one way: the edges (`api` over HTTP, `signalling` over
//! Socket.IO, `sfu_api` for other nodes) call the room logic (`rooms`,
//! `recording`), which uses the store and the SFU through
//! `vtp_sfu_driver::SfuControl`; what rooms tell people goes out through
//! the `bus`. docs/ARCHITECTURE.md has the map of every module.

pub mod api;
pub mod auth;
pub mod backup;
pub mod bus;
pub mod commands;
pub mod config;
pub mod doctor;
pub mod error;
pub mod recording;
pub mod rooms;
pub mod serve;
pub mod server;
pub mod sfu_api;
pub mod sfu_node;
pub mod signalling;
pub mod sio;
pub mod state;
pub mod telemetry;
pub mod tls;
pub mod turn;

pub use server::Server;
