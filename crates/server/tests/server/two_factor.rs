//! Two-factor sign-in (TOTP, RFC 6238): enrolment, signing in with a
//! code, replay, recovery codes, the attempt limit, the requirement per
//! role and the operators' reset.

use crate::common;

use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};
use vtp_server::auth::totp;
use vtp_server::config::Secret;
use vtp_store::Role;

fn now_step() -> u64 {
    totp::step_of(u64::try_from(chrono::Utc::now().timestamp()).unwrap())
}

/// The code of the otpauth URI's secret for `step`, as an app shows it.
fn code(uri: &str, step: u64) -> String {
    let secret = uri
        .split(['?', '&'])
        .find_map(|p| p.strip_prefix("secret="))
        .expect("secret= in the otpauth URI");
    totp::code_at(&Secret::new(secret), step).unwrap()
}

/// Enrols the holder of `token`; returns the otpauth URI, the step of
/// the confirming code, and the answer (recovery codes, tokens).
async fn enrol(s: &TestServer, token: &str) -> (String, u64, Value) {
    let (status, setup) = s
        .post("/api/v1/auth/2fa/setup", Some(token), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{setup}");
    let uri = setup["otpauthUri"].as_str().unwrap().to_string();
    let step = now_step();
    let (status, confirmed) = s
        .post(
            "/api/v1/auth/2fa/confirm",
            Some(token),
            json!({ "code": code(&uri, step) }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{confirmed}");
    (uri, step, confirmed)
}

async fn password_step(s: &TestServer, email: &str) -> String {
    let body = s.login(email, PASSWORD).await;
    assert_eq!(body["secondFactorRequired"], true, "{body}");
    assert!(
        body.get("accessToken").is_none(),
        "no token before the code"
    );
    body["pendingToken"].as_str().unwrap().to_string()
}

async fn verify(s: &TestServer, pending: &str, code: &str) -> (StatusCode, Value) {
    s.post(
        "/api/v1/auth/2fa/verify",
        None,
        json!({ "pendingToken": pending, "code": code }),
    )
    .await
}

#[tokio::test]
async fn enrol_then_sign_in_with_a_code_once_and_a_recovery_code_once() {
    let s = TestServer::start().await;
    let (_, token) = s.user("ann@example.org", Role::Student).await;

    let (status, setup) = s
        .post("/api/v1/auth/2fa/setup", Some(&token), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);
    let uri = setup["otpauthUri"].as_str().unwrap();
    assert!(
        uri.starts_with("otpauth://totp/VTP:ann%40example%2Eorg?secret="),
        "{uri}"
    );
    assert!(uri.contains(setup["secret"].as_str().unwrap()));
    assert!(setup["qrSvg"].as_str().unwrap().starts_with("<svg"));
    // A wrong first code turns nothing on.
    let (status, body) = s
        .post(
            "/api/v1/auth/2fa/confirm",
            Some(&token),
            json!({ "code": "000000" }),
        )
        .await;
    assert_eq!(
        (status, code_of(&body)),
        (StatusCode::UNPROCESSABLE_ENTITY, "validation_failed")
    );
    assert_eq!(
        s.login("ann@example.org", PASSWORD).await["user"]["twoFactor"],
        false
    );

    let (uri, step, confirmed) = enrol(&s, &token).await;
    let recovery: Vec<String> = confirmed["recoveryCodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_string())
        .collect();
    assert_eq!(recovery.len(), 10);
    assert_eq!(confirmed["tokens"]["user"]["twoFactor"], true);

    // The password alone gives a pending token, good for nothing else.
    let pending = password_step(&s, "ann@example.org").await;
    let (status, _) = s.get("/api/v1/auth/me", Some(&pending)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        vtp_client::SocketIoClient::connect(&s.url(""), Some(&pending))
            .await
            .is_err(),
        "no signalling with a pending token"
    );
    // The confirming code again (its step is used): refused.
    let (status, _) = verify(&s, &pending, &code(&uri, step)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "replay refused");
    // The next step's code (within the window): signed in, once.
    let next = code(&uri, step + 1);
    let (status, signed_in) = verify(&s, &pending, &next).await;
    assert_eq!(status, StatusCode::OK, "{signed_in}");
    let access = signed_in["accessToken"].as_str().unwrap();
    let (status, me) = s.get("/api/v1/auth/me", Some(access)).await;
    assert_eq!(
        (status, me["twoFactor"].as_bool()),
        (StatusCode::OK, Some(true))
    );
    let pending = password_step(&s, "ann@example.org").await;
    let (status, _) = verify(&s, &pending, &next).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "a used code is refused");

    // A recovery code (typed in capitals, without the dash) works once.
    let typed = recovery[3].to_uppercase().replace('-', "");
    let (status, _) = verify(&s, &pending, &typed).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = verify(&s, &pending, &recovery[3]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "spent");
    assert_eq!(
        s.store
            .recovery_codes_left(
                s.store
                    .credentials_by_email("ann@example.org")
                    .await
                    .unwrap()
                    .user
                    .id
            )
            .await
            .unwrap(),
        9
    );
    // The store holds recovery codes hashed: the codes as given match no row.
    let user_id = s
        .store
        .credentials_by_email("ann@example.org")
        .await
        .unwrap()
        .user
        .id;
    for code in &recovery {
        assert!(
            !s.store
                .use_recovery_code(user_id, code, chrono::Utc::now())
                .await
                .unwrap(),
            "a recovery code is never stored as given"
        );
    }

    // Off with a recovery code; then the password alone signs in.
    let (status, _) = s
        .post(
            "/api/v1/auth/2fa/disable",
            Some(access),
            json!({ "code": recovery[0] }),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(s.login("ann@example.org", PASSWORD).await["accessToken"].is_string());
}

fn code_of(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("<none>")
}

#[tokio::test]
async fn code_attempts_are_limited_per_account() {
    let s = TestServer::start().await;
    let (_, token) = s.user("bo@example.org", Role::Student).await;
    let (uri, step, _) = enrol(&s, &token).await;
    let pending = password_step(&s, "bo@example.org").await;
    let mut statuses = Vec::new();
    for guess in ["111111", "222222", "333333", "444444", "555555"] {
        statuses.push(verify(&s, &pending, guess).await.0);
    }
    assert_eq!(statuses, [StatusCode::UNAUTHORIZED; 5]);
    // Even the right code now waits: guessing a million codes is out of reach.
    let (status, body) = verify(&s, &pending, &code(&uri, step + 1)).await;
    assert_eq!(
        (status, code_of(&body)),
        (StatusCode::TOO_MANY_REQUESTS, "rate_limited")
    );
}

#[tokio::test]
async fn roles_that_require_it_get_an_enrolment_only_token_until_enrolled() {
    let s = TestServer::start_with(|a| {
        a.require_2fa_for = vec![
            vtp_server::config::CliRole::Admin,
            vtp_server::config::CliRole::Instructor,
        ];
    })
    .await;
    let (_, student) = s.user("kid@example.org", Role::Student).await;
    let (status, _) = s.get("/api/v1/rooms", Some(&student)).await;
    assert_eq!(status, StatusCode::OK, "students are not required to");

    let (_, teacher) = s.user("teach@example.org", Role::Instructor).await;
    let signed_in = s.login("teach@example.org", PASSWORD).await;
    assert_eq!(signed_in["enrolmentRequired"], true);
    let (status, body) = s
        .post("/api/v1/rooms", Some(&teacher), json!({ "title": "Maths" }))
        .await;
    assert_eq!(
        (status, code_of(&body)),
        (StatusCode::FORBIDDEN, "forbidden"),
        "{body}"
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("two-factor"),
        "{body}"
    );
    assert!(
        vtp_client::SocketIoClient::connect(&s.url(""), Some(&teacher))
            .await
            .is_err(),
        "no signalling before enrolling"
    );
    let (status, me) = s.get("/api/v1/auth/me", Some(&teacher)).await;
    assert_eq!(
        (status, me["role"].as_str()),
        (StatusCode::OK, Some("instructor"))
    );
    // A refresh does not get around it.
    let (status, refreshed) = s
        .post(
            "/api/v1/auth/refresh",
            None,
            json!({ "refreshToken": signed_in["refreshToken"] }),
        )
        .await;
    assert_eq!(
        (status, refreshed["enrolmentRequired"].as_bool()),
        (StatusCode::OK, Some(true))
    );

    let (_, _, confirmed) = enrol(&s, &teacher).await;
    let tokens = &confirmed["tokens"];
    assert_eq!(tokens["enrolmentRequired"], false);
    let full = tokens["accessToken"].as_str().unwrap();
    let (status, _) = s
        .post("/api/v1/rooms", Some(full), json!({ "title": "Maths" }))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    // And it cannot be turned off while the role requires it.
    let (status, _) = s
        .post(
            "/api/v1/auth/2fa/disable",
            Some(full),
            json!({ "password": PASSWORD }),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn operators_reset_two_factor_from_the_command_line() {
    let s = TestServer::start().await;
    let (_, token) = s.user("lost@example.org", Role::Instructor).await;
    enrol(&s, &token).await;
    password_step(&s, "lost@example.org").await;
    let home = s.stop().await;

    let out = vtp_command(&home, &["user", "reset-2fa", "--email", "Lost@Example.org"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("two-factor sign-in is off"));
    let out = vtp_command(
        &home,
        &["user", "reset-2fa", "--email", "nobody@example.org"],
    )
    .output()
    .unwrap();
    assert!(!out.status.success());

    let s = TestServer::start_in(home, |_| {}).await;
    let (status, _) = s.get("/api/v1/auth/me", Some(&token)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "its sessions ended");
    let signed_in = s.login("lost@example.org", PASSWORD).await;
    assert_eq!(signed_in["user"]["twoFactor"], false);
    assert!(signed_in["accessToken"].is_string());
}

/// Secrets are sealed before they are stored: the database alone (a dump,
/// a backup file) does not give the second factor. Secrets stored in the
/// clear by an earlier version are sealed at start and keep working; with
/// another secrets key they no longer open.
#[tokio::test]
async fn secrets_are_sealed_at_rest_and_old_ones_sealed_at_start() {
    let s = TestServer::start().await;
    let (id, token) = s.user("ann@example.org", Role::Student).await;
    let id: uuid::Uuid = id.parse().unwrap();
    let (uri, step, _) = enrol(&s, &token).await;
    let plain = uri
        .split(['?', '&'])
        .find_map(|p| p.strip_prefix("secret="))
        .unwrap()
        .to_string();
    let stored = s.store.totp_of(id).await.unwrap().unwrap().secret;
    assert!(stored.starts_with("v1."), "sealed: {stored}");
    assert!(!stored.contains(&plain), "the secret is not in the row");

    // What an earlier version left: the secret in the clear.
    assert!(
        s.store
            .replace_totp_secret(id, &stored, &plain)
            .await
            .unwrap()
    );
    let home = s.stop().await;
    let s = TestServer::start_in(home, |_| {}).await;
    let resealed = s.store.totp_of(id).await.unwrap().unwrap().secret;
    assert!(resealed.starts_with("v1.") && !resealed.contains(&plain));

    // Another secrets key: the sealed secret does not open, so no code
    // works (`vtp user reset-2fa` is the way back) and nothing changes.
    let home = s.stop().await;
    let s = TestServer::start_in(home, |args| {
        args.secrets_key = Some(Secret::new("another key of at least thirty-two bytes"));
    })
    .await;
    let next = now_step() + 1;
    assert!(next > step, "not a replay of the enrolling code");
    let pending = password_step(&s, "ann@example.org").await;
    let (status, _) = verify(&s, &pending, &code(&uri, next)).await;
    assert_ne!(status, StatusCode::OK);
    assert_eq!(s.store.totp_of(id).await.unwrap().unwrap().secret, resealed);

    // Back on the server's own key, the same code signs in: the secret
    // sealed at start is the one the app holds.
    let home = s.stop().await;
    let s = TestServer::start_in(home, |_| {}).await;
    let pending = password_step(&s, "ann@example.org").await;
    let (status, body) = verify(&s, &pending, &code(&uri, next)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}
