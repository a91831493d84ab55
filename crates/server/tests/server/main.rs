//! The server's integration tests, one module per subject, in one test
//! binary: the helpers in `common` are compiled once and the binary linked
//! once, where one binary per file compiled `common` 40 times and linked 43
//! binaries of about 80 MB each (see docs/ARCHITECTURE.md, "Tests"). Run one
//! subject with `cargo test --workspace --test server -- membership::`.

mod common;

mod account_security;
mod acme;
mod admin_users;
mod auth;
mod backup;
mod cli;
mod connection_limits;
mod cross_origin;
mod doctor;
mod end_session;
mod host_tools;
mod http_errors;
mod json_logs;
mod layering;
mod lockout;
mod media_signalling;
mod media_tcp;
mod media_udp;
mod membership;
mod metrics;
mod openapi;
mod operations;
mod ops;
mod paging;
mod presence;
mod prometheus;
mod recording;
mod recording_downloads;
mod recording_export;
mod recording_links;
mod recording_s3;
mod recording_simulcast;
mod recordings_api;
mod restart;
mod role_matrix;
mod room_access;
mod room_limits;
mod rooms_api;
mod schedule;
mod sfu_control;
mod sfu_node;
mod signalling;
mod socketio_engine;
mod tls;
mod token_attacks;
mod two_factor;
mod users_api;
mod waiting_room;
mod web_app;
