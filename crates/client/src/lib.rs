//! Client of VTP.
//!
//! * [`SocketIoClient`]: a Socket.IO v4 client (websocket transport) for the
//!   signalling protocol of DESIGN.md §3, used by the integration tests and the
//!   load generator.

pub mod socketio;

pub use socketio::{ClientError, SocketIoClient};
