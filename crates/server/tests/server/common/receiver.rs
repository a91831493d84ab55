//! A webhook receiver: a real HTTP server on loopback that keeps what it
//! was sent (headers, body, arrival time) and answers 204 to every POST of
//! `/hook`.

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use tokio::net::TcpListener;

/// Headers, body, and when it arrived.
pub type Request = (HeaderMap, String, chrono::DateTime<chrono::Utc>);

/// What the receiver got, in order of arrival.
#[derive(Clone, Default)]
pub struct Received(pub Arc<Mutex<Vec<Request>>>);

impl Received {
    pub fn all(&self) -> Vec<Request> {
        self.0.lock().unwrap().clone()
    }

    pub fn len(&self) -> usize {
        self.0.lock().unwrap().len()
    }
}

async fn receive(State(got): State<Received>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let body = String::from_utf8_lossy(&body).into_owned();
    got.0
        .lock()
        .unwrap()
        .push((headers, body, chrono::Utc::now()));
    StatusCode::NO_CONTENT
}

/// A receiver on `listener`, answering 204 to every POST of `/hook`.
pub fn start_receiver(listener: TcpListener) -> Received {
    let got = Received::default();
    let app = axum::Router::new()
        .route("/hook", axum::routing::post(receive))
        .with_state(got.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    got
}
