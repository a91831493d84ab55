//! HTTPS in `vtp serve`: a real server on 127.0.0.1:0 with certificates
//! made here by a test CA. HTTPS with HSTS, Socket.IO over `wss://`,
//! certificate reloads (file change and SIGHUP) without a restart, a bad
//! replacement kept out of service, the plain-HTTP redirect, the handshake
//! deadline, and start-up refusals of bad files.

use crate::common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::pki::{CertFiles, Leaf, Pki, replace};
use common::{Home, wait_until};
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;
use vtp_server::Server;
use vtp_server::config::ServeArgs;
use vtp_server::tls::ReloadCounters;

/// Generous: the machine may be busy.
const WAIT: Duration = Duration::from_secs(20);

struct TlsServer {
    addr: SocketAddr,
    redirect: Option<SocketAddr>,
    counters: Arc<ReloadCounters>,
    files: CertFiles,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
    _home: Arc<Home>,
}

impl TlsServer {
    async fn start(first: &Leaf, configure: impl FnOnce(&mut ServeArgs)) -> TlsServer {
        let home = Home::new().await;
        let files = CertFiles::new(first);
        let mut args = home.args();
        args.tls.tls_cert = Some(files.cert.clone());
        args.tls.tls_key = Some(files.key.clone());
        args.tls.tls_reload_interval = Duration::from_millis(50);
        configure(&mut args);
        let server = Server::build(&args).await.expect("server builds");
        let counters = server.tls().expect("TLS on").counters().clone();
        let redirect = server.redirect_addr();
        let listener = tokio::net::TcpListener::bind(args.bind).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(server.run(listener, async move {
            let _ = stopped.await;
        }));
        TlsServer {
            addr,
            redirect,
            counters,
            files,
            stop: Some(stop),
            task: Some(task),
            _home: home,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.addr.port())
    }

    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        self.task
            .take()
            .unwrap()
            .await
            .unwrap()
            .expect("server ran cleanly");
    }
}

/// One HTTP/1.1 request on an open stream; the response head and body as text.
async fn raw_request<S>(stream: &mut S, request: &str) -> String
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + WAIT;
    loop {
        let n = tokio::time::timeout_at(deadline.into(), stream.read(&mut buf))
            .await
            .expect("an answer in time")
            .unwrap();
        answer.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&answer);
        if n == 0 || complete_response(&text) {
            return text.into_owned();
        }
    }
}

/// A head, plus as much body as its content-length says.
fn complete_response(text: &str) -> bool {
    let Some((head, body)) = text.split_once("\r\n\r\n") else {
        return false;
    };
    let length = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse::<usize>().ok())?
        })
        .unwrap_or(0);
    body.len() >= length
}

/// The next text message of a websocket.
async fn next_text<S>(ws: &mut S) -> String
where
    S: futures_util::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    loop {
        match tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("a message in time")
        {
            Some(Ok(Message::Text(t))) => return t.to_string(),
            Some(Ok(_)) => continue,
            other => panic!("websocket ended: {other:?}"),
        }
    }
}

#[tokio::test]
async fn https_serves_the_api_with_hsts_and_socketio_over_wss() {
    let pki = Pki::new();
    let s = TlsServer::start(&pki.leaf(1), |_| {}).await;
    let http = pki.http();

    let health = http
        .get(s.url("/health"))
        .send()
        .await
        .expect("HTTPS works");
    assert_eq!(health.status(), 200);
    assert_eq!(
        health.headers()["strict-transport-security"],
        "max-age=31536000"
    );
    let registered = http
        .post(s.url("/api/v1/auth/register"))
        .json(&json!({ "email": "ann@example.org", "password": "plum tiger orbit 41", "displayName": "Ann" }))
        .send()
        .await
        .unwrap();
    assert_eq!(registered.status(), 201);
    assert!(
        registered
            .headers()
            .contains_key("strict-transport-security")
    );
    let token = registered.json::<serde_json::Value>().await.unwrap()["accessToken"]
        .as_str()
        .unwrap()
        .to_string();

    // Socket.IO over wss://: the websocket upgrade inside TLS, the Engine.IO
    // open packet, and an authenticated Socket.IO CONNECT.
    let tls = pki.connect(s.addr).await.unwrap();
    let (mut ws, response) = tokio_tungstenite::client_async(
        format!(
            "wss://localhost:{}/socket.io/?EIO=4&transport=websocket",
            s.addr.port()
        ),
        tls,
    )
    .await
    .expect("websocket upgrade over TLS");
    assert_eq!(response.status(), 101);
    let open = next_text(&mut ws).await;
    assert!(open.starts_with("0{") && open.contains("\"sid\""), "{open}");
    ws.send(Message::text(format!("40{}", json!({ "token": token }))))
        .await
        .unwrap();
    let connected = next_text(&mut ws).await;
    assert!(
        connected.starts_with("40{") && connected.contains("\"sid\""),
        "{connected}"
    );
    drop(ws);

    // Plain HTTP on the HTTPS port gets no answer.
    assert!(
        reqwest::get(format!("http://{}/health", s.addr))
            .await
            .is_err()
    );
    s.stop().await;
}

#[tokio::test]
async fn changed_files_replace_the_certificate_without_a_restart() {
    let pki = Pki::new();
    let (first, second) = (pki.leaf(1), pki.leaf(2));
    let s = TlsServer::start(&first, |_| {}).await;
    assert_eq!(pki.served(s.addr).await, first.der);
    // A connection open before the change keeps working after it.
    let mut old = pki.connect(s.addr).await.unwrap();
    let health = "GET /health HTTP/1.1\r\nhost: localhost\r\n\r\n";
    assert!(
        raw_request(&mut old, health)
            .await
            .starts_with("HTTP/1.1 200")
    );

    s.files.install(&second);
    wait_until(WAIT, "the new certificate to be served", async || {
        pki.served(s.addr).await == second.der
    })
    .await;
    assert!(
        raw_request(&mut old, health)
            .await
            .starts_with("HTTP/1.1 200")
    );
    let reloaded = s.counters.reloaded.load(Ordering::Relaxed);
    assert!(reloaded >= 1);

    // Not PEM: refused, the second certificate stays.
    let failed = s.counters.failed.load(Ordering::Relaxed);
    replace(&s.files.cert, "not a certificate\n");
    wait_until(WAIT, "the bad file to be refused", async || {
        s.counters.failed.load(Ordering::Relaxed) > failed
    })
    .await;
    assert_eq!(pki.served(s.addr).await, second.der);
    // A certificate whose key is not the one beside it: refused too.
    let third = pki.leaf(3);
    let failed = s.counters.failed.load(Ordering::Relaxed);
    replace(&s.files.cert, &third.cert_pem);
    wait_until(WAIT, "the mismatched pair to be refused", async || {
        s.counters.failed.load(Ordering::Relaxed) > failed
    })
    .await;
    assert_eq!(pki.served(s.addr).await, second.der);
    assert_eq!(s.counters.reloaded.load(Ordering::Relaxed), reloaded);
    let ok = pki.http().get(s.url("/health")).send().await.unwrap();
    assert_eq!(ok.status(), 200);

    // Fixed: the third goes into service.
    replace(&s.files.key, &third.key_pem);
    wait_until(WAIT, "the third certificate to be served", async || {
        pki.served(s.addr).await == third.der
    })
    .await;
    s.stop().await;
}

#[cfg(unix)]
#[tokio::test]
async fn sighup_reloads_the_certificate() {
    let pki = Pki::new();
    let (first, second) = (pki.leaf(1), pki.leaf(2));
    // Files are not looked at for an hour: only the signal can reload.
    let s = TlsServer::start(&first, |a| {
        a.tls.tls_reload_interval = Duration::from_secs(3600)
    })
    .await;
    s.files.install(&second);
    assert_eq!(pki.served(s.addr).await, first.der);
    // The server listens for SIGHUP from `Server::build` on, so the signal
    // cannot end this process. Other servers of this binary reload too,
    // which they survive.
    // SAFETY: kill(2) on our own pid with a signal we handle.
    let sent = unsafe { libc::kill(libc::getpid(), libc::SIGHUP) };
    assert_eq!(sent, 0);
    wait_until(WAIT, "SIGHUP to reload the certificate", async || {
        pki.served(s.addr).await == second.der
    })
    .await;
    s.stop().await;
}

#[tokio::test]
async fn plain_http_is_redirected_to_https() {
    let pki = Pki::new();
    let s = TlsServer::start(&pki.leaf(1), |a| {
        a.tls.http_redirect_bind = Some("127.0.0.1:0".parse().unwrap())
    })
    .await;
    let plain = s.redirect.expect("the redirect listener");
    let mut conn = TcpStream::connect(plain).await.unwrap();
    let answer = raw_request(
        &mut conn,
        "POST /room/7?x=1 HTTP/1.1\r\nHost: Class.Example.org:8080\r\ncontent-length: 0\r\n\r\n",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 308"), "{answer}");
    let location = format!(
        "location: https://class.example.org:{}/room/7?x=1\r\n",
        s.addr.port()
    );
    assert!(answer.to_ascii_lowercase().contains(&location), "{answer}");
    assert!(
        !answer
            .to_ascii_lowercase()
            .contains("strict-transport-security")
    );

    let mut conn = TcpStream::connect(plain).await.unwrap();
    let answer = raw_request(&mut conn, "GET / HTTP/1.1\r\nHost: evil.example/x\r\n\r\n").await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    s.stop().await;
}

#[tokio::test]
async fn a_silent_client_is_dropped_after_the_handshake_timeout() {
    let pki = Pki::new();
    let s = TlsServer::start(&pki.leaf(1), |a| {
        a.tls.tls_handshake_timeout = Duration::from_millis(500);
        a.max_connections = 3;
    })
    .await;
    let started = Instant::now();
    let mut silent = TcpStream::connect(s.addr).await.unwrap();
    // Others are served meanwhile.
    let http = pki.http();
    let ok = http.get(s.url("/health")).send().await.unwrap();
    assert_eq!(ok.status(), 200);
    let mut byte = [0u8; 1];
    let read = tokio::time::timeout(WAIT, silent.read(&mut byte))
        .await
        .expect("the server closes the silent connection");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    assert!(started.elapsed() >= Duration::from_millis(500));
    // Its place is free again: with the client's pooled connection still
    // open, two more fit under the cap of three only if it was released.
    let mut open = Vec::new();
    for _ in 0..2 {
        let mut c = pki.connect(s.addr).await.expect("a free place");
        let answer = raw_request(&mut c, "GET /health HTTP/1.1\r\nhost: localhost\r\n\r\n").await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        open.push(c);
    }
    drop((open, http));
    s.stop().await;
}

#[tokio::test]
async fn slow_heads_and_bodies_are_cut_off_inside_tls_too() {
    let pki = Pki::new();
    let limit = Duration::from_secs(1);
    let s = TlsServer::start(&pki.leaf(1), |a| {
        a.header_read_timeout = limit;
        a.body_read_timeout = limit;
    })
    .await;
    // How long the server keeps a connection after `sent`, inside TLS.
    async fn kept_for(s: &TlsServer, pki: &Pki, sent: &[u8]) -> Duration {
        let mut tls = pki.connect(s.addr).await.unwrap();
        let started = Instant::now();
        tls.write_all(sent).await.unwrap();
        let mut rest = Vec::new();
        tokio::time::timeout(WAIT, async {
            let mut buf = [0u8; 1024];
            while let Ok(n) = tls.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                rest.extend_from_slice(&buf[..n]);
            }
        })
        .await
        .expect("the server ends the connection");
        started.elapsed()
    }
    let head = kept_for(&s, &pki, b"GET /health HTTP/1.1\r\nhost: localhost\r\n").await;
    let body = kept_for(
        &s,
        &pki,
        b"POST /api/v1/auth/login HTTP/1.1\r\nhost: localhost\r\n\
          content-type: application/json\r\ncontent-length: 100\r\n\r\n{",
    )
    .await;
    eprintln!(
        "over TLS: half a head kept {head:?}, half a body kept {body:?} (deadlines {limit:?})"
    );
    for kept in [head, body] {
        assert!(kept >= limit && kept < WAIT, "{kept:?}");
    }
    s.stop().await;
}

/// `vtp serve` with `args`; its exit status and standard error. It must
/// stop by itself (a refusal), well before the deadline.
async fn vtp_serve(home: &Home, args: &[&std::ffi::OsStr]) -> (bool, String) {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_vtp"));
    cmd.arg("serve")
        .args(["--bind", "127.0.0.1:0", "--rtc-bind", "127.0.0.1:0"])
        .arg("--data-dir")
        .arg(home.data_dir.path())
        .args(args)
        .env("VTP_DATABASE_URL", home.db.url())
        .env_remove("VTP_TLS_CERT")
        .env_remove("VTP_TLS_KEY")
        .kill_on_drop(true)
        .stdin(std::process::Stdio::null());
    let out = tokio::time::timeout(WAIT, cmd.output())
        .await
        .expect("vtp serve refuses at once")
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn bad_certificate_files_stop_the_start_with_a_clear_message() {
    let pki = Pki::new();
    let home = Home::new().await;
    let (first, second) = (pki.leaf(1), pki.leaf(2));
    let files = CertFiles::new(&first);
    let other_key = files.key.with_file_name("other-key.pem");
    std::fs::write(&other_key, &second.key_pem).unwrap();

    let (ok, err) = vtp_serve(
        &home,
        &[
            "--tls-cert".as_ref(),
            files.cert.as_os_str(),
            "--tls-key".as_ref(),
            other_key.as_os_str(),
        ],
    )
    .await;
    assert!(!ok);
    assert!(
        err.contains("does not belong to the certificate")
            && err.contains(&*other_key.to_string_lossy()),
        "{err}"
    );
    assert!(!err.contains("PRIVATE KEY"), "no key material: {err}");

    let (ok, err) = vtp_serve(&home, &["--tls-cert".as_ref(), files.cert.as_os_str()]).await;
    assert!(!ok);
    assert!(err.contains("--tls-key"), "{err}");

    let garbage = files.cert.with_file_name("garbage.pem");
    std::fs::write(&garbage, "hello\n").unwrap();
    let (ok, err) = vtp_serve(
        &home,
        &[
            "--tls-cert".as_ref(),
            garbage.as_os_str(),
            "--tls-key".as_ref(),
            files.key.as_os_str(),
        ],
    )
    .await;
    assert!(!ok);
    assert!(
        err.contains("holds no PEM certificate") && err.contains(&*garbage.to_string_lossy()),
        "{err}"
    );

    let missing = files.cert.with_file_name("missing.pem");
    let (ok, err) = vtp_serve(
        &home,
        &[
            "--tls-cert".as_ref(),
            files.cert.as_os_str(),
            "--tls-key".as_ref(),
            missing.as_os_str(),
        ],
    )
    .await;
    assert!(!ok);
    assert!(
        err.contains("cannot read the TLS key file") && err.contains(&*missing.to_string_lossy()),
        "{err}"
    );
}
