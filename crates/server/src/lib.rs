//! The `vtp` program: configuration, the HTTP API, authentication, and the
//! wiring that starts and stops it all.
//!
//! Layering (one way only): `api` handlers → `auth` + `vtp_store`. Handlers
//! never reach around the store, and the store knows nothing of HTTP.

pub mod api;
pub mod auth;
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
pub mod state;
pub mod telemetry;
pub mod tls;
pub mod turn;

pub use server::Server;
