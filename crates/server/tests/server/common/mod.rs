//! A real VTP server on 127.0.0.1:0 for integration tests, on a throw-away
//! database (SQLite, or PostgreSQL when `VTP_TEST_POSTGRES_URL` is set).
#![allow(dead_code)] // each test binary uses a different part of this harness

pub mod media;
pub mod pki;
pub mod receiver;
pub mod recordings;
pub mod wait;

#[allow(unused_imports)] // each test binary uses a different part
pub use wait::{wait_for, wait_for_blocking, wait_until, wait_until_blocking};

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use vtp_server::Server;
use vtp_server::config::{Secret, ServeArgs};
use vtp_store::testing::{TempDir, TestDatabase};
use vtp_store::{NewUser, Role, Store};

/// The `vtp` binary with `args`, on the home's database and data directory,
/// its output captured.
pub fn vtp_command(home: &Home, args: &[&str]) -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_vtp"));
    cmd.args(args)
        .arg("--data-dir")
        .arg(home.data_dir.path())
        .env("VTP_DATABASE_URL", home.db.url())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    cmd
}

pub const PASSWORD: &str = "correct horse battery";

/// Where a server keeps its state; outlives server restarts.
pub struct Home {
    pub db: TestDatabase,
    pub data_dir: TempDir,
}

impl Home {
    pub async fn new() -> Arc<Home> {
        Arc::new(Home {
            db: TestDatabase::new().await.expect("test database"),
            data_dir: TempDir::new("vtp-test-data").expect("temp dir"),
        })
    }

    pub fn args(&self) -> ServeArgs {
        let mut args = ServeArgs::defaults_for(self.data_dir.path().to_path_buf());
        args.bind = "127.0.0.1:0".parse().unwrap();
        args.store.database_url = Some(Secret::new(self.db.url()));
        args.store.database_max_connections = 4;
        args.rtc_bind = "127.0.0.1:0".parse().unwrap();
        args.sfu_workers = Some(1);
        args
    }
}

pub struct TestServer {
    pub addr: SocketAddr,
    /// Where `/metrics` listens when `--metrics-bind` is set.
    pub metrics_addr: Option<SocketAddr>,
    pub home: Arc<Home>,
    pub store: Store,
    /// The server's own recordings' storage (its `local_copy` seam).
    pub recording_files: Arc<vtp_server::recording::storage::RecordingFiles>,
    pub http: reqwest::Client,
    /// The SFU the server's rooms use (to see what exists there).
    pub media: Arc<dyn vtp_sfu_driver::SfuControl>,
    /// The clock access tokens are checked against: a test moves it
    /// forward to see them expire.
    pub token_clock: vtp_server::auth::tokens::TokenClock,
    /// Connections the server has accepted and not yet closed.
    open_connections: Arc<AtomicUsize>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
}

impl TestServer {
    pub async fn start() -> TestServer {
        Self::start_in(Home::new().await, |_| {}).await
    }

    pub async fn start_with(configure: impl FnOnce(&mut ServeArgs)) -> TestServer {
        Self::start_in(Home::new().await, configure).await
    }

    pub async fn start_in(home: Arc<Home>, configure: impl FnOnce(&mut ServeArgs)) -> TestServer {
        let mut args = home.args();
        configure(&mut args);
        let server = Server::build(&args).await.expect("server builds");
        let store = server.state().store.clone();
        let recording_files = server.state().recording_files.clone();
        let media = server.state().hub.media().clone();
        let token_clock = server.state().tokens.clock().clone();
        let open_connections = server.state().metrics.open_connections.clone();
        let metrics_addr = server.metrics_addr();
        let listener = tokio::net::TcpListener::bind(args.bind)
            .await
            .expect("bind");
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(server.run(listener, async move {
            let _ = stopped.await;
        }));
        TestServer {
            addr,
            metrics_addr,
            home,
            store,
            recording_files,
            http: reqwest::Client::new(),
            media,
            token_clock,
            open_connections,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Connections the server has accepted and not yet closed.
    pub fn open_connections(&self) -> usize {
        self.open_connections.load(Ordering::Relaxed)
    }

    /// The server's `/metrics` page.
    pub async fn metrics(&self) -> String {
        let resp = self.http.get(self.url("/metrics")).send().await;
        resp.expect("/metrics answers")
            .text()
            .await
            .expect("/metrics body")
    }

    /// The value of one series of `/metrics` (`name` with its labels, as
    /// written there).
    pub async fn metric(&self, name: &str) -> f64 {
        let text = self.metrics().await;
        metric_in(&text, name).unwrap_or_else(|| panic!("{name} missing from /metrics:\n{text}"))
    }

    /// Graceful shutdown; returns the home so that a new server can reuse it.
    pub async fn stop(mut self) -> Arc<Home> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await
                .expect("server task")
                .expect("server ran cleanly");
        }
        self.home.clone()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Sends a request with an optional bearer token and JSON body; returns
    /// the status and the JSON body (Null when empty).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self.http.request(method, self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("request sent");
        let status = resp.status();
        let bytes = resp.bytes().await.expect("body");
        let value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or(Value::String(String::from_utf8_lossy(&bytes).into()))
        };
        (status, value)
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> (StatusCode, Value) {
        self.call(Method::GET, path, token, None).await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, path, token, Some(body)).await
    }

    /// Signs in through the API; panics unless it works.
    pub async fn login(&self, email: &str, password: &str) -> Value {
        let (status, body) = self
            .post(
                "/api/v1/auth/login",
                None,
                json!({ "email": email, "password": password }),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "login {email}: {body}");
        body
    }

    /// A user with `role` created in the store (the API only makes students),
    /// signed in through the API. Returns (user id, access token).
    pub async fn user(&self, email: &str, role: Role) -> (String, String) {
        let user = create_user(&self.store, email, role).await;
        let auth = self.login(email, PASSWORD).await;
        (
            user.id.to_string(),
            auth["accessToken"].as_str().unwrap().to_string(),
        )
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

impl TestServer {
    /// A Socket.IO connection authenticated with `token`.
    pub async fn socket(&self, token: &str) -> vtp_client::SocketIoClient {
        vtp_client::SocketIoClient::connect(&self.url(""), Some(token))
            .await
            .expect("socket connects")
    }

    /// Creates a room owned by the holder of `token`; returns its id. The
    /// room is open to anyone signed in unless `settings` says otherwise
    /// (`access`): most suites are about what happens inside a room, not
    /// about who may enter it (that is `membership.rs`).
    pub async fn room(&self, token: &str, mut settings: Value) -> String {
        if let Some(object) = settings.as_object_mut() {
            object.entry("access").or_insert(json!("signed_in"));
        } else if settings.is_null() {
            settings = json!({ "access": "signed_in" });
        }
        let (status, room) = self
            .post(
                "/api/v1/rooms",
                Some(token),
                json!({ "title": "Test room", "settings": settings }),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{room}");
        room["id"].as_str().unwrap().to_string()
    }
}

/// A user with `role` and [`PASSWORD`] created in `store`, named after
/// their e-mail's local part.
pub async fn create_user(store: &Store, email: &str, role: Role) -> vtp_store::User {
    let hash = vtp_server::auth::password::hash_password(PASSWORD.into())
        .await
        .unwrap();
    store
        .create_user(
            NewUser {
                email: email.into(),
                display_name: email.split('@').next().unwrap().into(),
                password_hash: hash,
                role,
            },
            chrono::Utc::now(),
        )
        .await
        .expect("create user")
}

/// Joins a room and returns the ack's `data`.
pub async fn join(socket: &vtp_client::SocketIoClient, room_id: &str) -> Value {
    socket
        .request("join-room", json!({ "roomId": room_id }))
        .await
        .expect("join-room")
}

/// The error code of a refused request.
pub fn refused(result: Result<Value, vtp_client::ClientError>) -> String {
    match result {
        Err(vtp_client::ClientError::Server { code, .. }) => code,
        other => panic!("expected an error ack, got {other:?}"),
    }
}

/// The value of the series `name` (with its labels) in a `/metrics` page.
pub fn metric_in(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

pub const WAIT: std::time::Duration = std::time::Duration::from_secs(3);

/// The `error.code` of an API error body.
pub fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("<no error code>")
}

/// A media-only node (`vtp serve --role sfu`) on 127.0.0.1:0.
pub struct TestSfuNode {
    pub addr: SocketAddr,
    pub secret: String,
    pub http: reqwest::Client,
    _dir: TempDir,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
}

impl TestSfuNode {
    pub async fn start(secret: &str) -> TestSfuNode {
        let dir = TempDir::new("vtp-test-sfu").expect("temp dir");
        let mut args = ServeArgs::defaults_for(dir.path().to_path_buf());
        args.bind = "127.0.0.1:0".parse().unwrap();
        args.rtc_bind = "127.0.0.1:0".parse().unwrap();
        args.sfu_workers = Some(1);
        args.role = vtp_server::config::NodeRole::Sfu;
        args.sfu_secret = Some(Secret::new(secret));
        let node = vtp_server::sfu_node::SfuNode::build(&args).expect("sfu node builds");
        let listener = tokio::net::TcpListener::bind(args.bind)
            .await
            .expect("bind");
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(node.run(listener, async move {
            let _ = stopped.await;
        }));
        TestSfuNode {
            addr,
            secret: secret.to_string(),
            http: reqwest::Client::new(),
            _dir: dir,
            stop: Some(stop),
            task: Some(task),
        }
    }

    pub fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A control API call with the node's secret; (status, JSON body).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base()))
            .bearer_auth(&self.secret);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("request sent");
        let status = resp.status();
        let bytes = resp.bytes().await.expect("body");
        let value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        (status, value)
    }

    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.expect("node task").expect("node ran cleanly");
        }
    }
}

impl Drop for TestSfuNode {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// What the public mediasoup-client sends from Chromium (the SFU's fixture).
pub fn chromium_fixture() -> Value {
    serde_json::from_str(include_str!(
        "../../../../sfu/tests/fixtures/mediasoup-client-chromium156.json"
    ))
    .expect("the fixture is JSON")
}

/// `produce`'s `rtpParameters` of a simulcast `kind` track from the fixture.
pub fn produce_params(kind: &str) -> Value {
    let fixture = chromium_fixture();
    let list = fixture["rid-simulcast"]["produce"]
        .as_array()
        .expect("produce parameters");
    list.iter()
        .find(|p| p["kind"] == kind)
        .expect("one of this kind")["rtpParameters"]
        .clone()
}
