//! The `vtp` program: configuration, HTTP API, authentication, Socket.IO
//! signalling, live rooms, recording, and the wiring that starts and stops
//! it all (one process, or an API node and SFU nodes by `--role`).
//!
//! Layering (one way only): the edges (`api`, `signalling`, `sfu_api`) →
//! `state` → `auth` → `rooms` → `recording` → leaves → `config`, with the
//! wiring (`server`, `sfu_node`) and the subcommands above it all; the full
//! list is in docs/ARCHITECTURE.md and `tests/layering.rs` enforces it.
//! The store and the SFU below know nothing of HTTP.

pub mod api;
pub mod audit;
pub mod auth;
pub mod backup;
pub mod bus;
pub mod commands;
pub mod config;
pub mod doctor;
pub mod error;
pub mod metrics;
pub mod rate_limit;
pub mod recording;
pub mod rooms;
pub mod serve;
pub mod server;
pub mod sfu_api;
pub mod sfu_node;
pub mod signalling;
pub mod state;
pub mod telemetry;
pub mod tls;
pub mod turn;
pub mod webhooks;

pub use server::Server;
