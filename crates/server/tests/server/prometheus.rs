//! A real Prometheus (Debian's `prometheus`, which scripts/test installs)
//! scrapes two `vtp` servers every second: one with a class in progress
//! (a teacher publishing audio and video to a student, with the Rust
//! client), one with HTTPS (so that the certificate's expiry exists). It
//! loads deploy/prometheus/alerts.yml. The test asserts that every query of
//! deploy/grafana/vtp.json and every metric named in an alert expression
//! returns data (no typo'd names), that every rule evaluates cleanly, and
//! that a forced fault — a recording failing because the disk is "full" —
//! fires its alert.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::media::{publish, subscribe};
use common::pki::{CertFiles, Pki};
use common::*;
use serde_json::{Value, json};
use vtp_server::config::Secret;
use vtp_store::Role;
use vtp_store::testing::TempDir;

const TOKEN: &str = "prometheus-scrapes-with-this-token";
/// Rate windows of the dashboard's queries here (Grafana's
/// `$__rate_interval`): a few 1 s scrapes.
const RATE_WINDOW: &str = "10s";
const DATA_WAIT: Duration = Duration::from_secs(40);

fn repo_file(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(path)
}

/// Prometheus, stopped when dropped.
struct Prometheus {
    child: Child,
    base: String,
    http: reqwest::Client,
    _dir: TempDir,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Prometheus {
    /// Scrapes `targets` (job `vtp`, with the token) every second and
    /// evaluates alerts.yml every second, each `for:` set to 0 s so that
    /// a fault fires at once.
    async fn start(targets: &[String]) -> Prometheus {
        let dir = TempDir::new("vtp-prometheus").unwrap();
        let rules = std::fs::read_to_string(repo_file("deploy/prometheus/alerts.yml")).unwrap();
        let rules: Vec<String> = rules
            .lines()
            .map(|l| match l.trim_start().strip_prefix("for:") {
                Some(_) => format!("{}for: 0s", &l[..l.len() - l.trim_start().len()]),
                None => l.to_owned(),
            })
            .collect();
        std::fs::write(dir.path().join("alerts.yml"), rules.join("\n")).unwrap();
        std::fs::write(dir.path().join("token"), TOKEN).unwrap();
        let config = format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
             rule_files: [{rules:?}]\n\
             scrape_configs:\n  - job_name: vtp\n    authorization:\n      credentials_file: {token:?}\n\
             \x20   static_configs:\n      - targets: {targets:?}\n",
            rules = dir.path().join("alerts.yml"),
            token = dir.path().join("token"),
        );
        std::fs::write(dir.path().join("prometheus.yml"), config).unwrap();
        // A free port on loopback for its web API.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(std::env::var("PROMETHEUS").unwrap_or("prometheus".into()))
            .arg(format!(
                "--config.file={}",
                dir.path().join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus runs (scripts/test installs Debian's prometheus)");
        let p = Prometheus {
            child,
            base: format!("http://127.0.0.1:{port}"),
            http: reqwest::Client::new(),
            _dir: dir,
        };
        wait_until(
            Duration::from_secs(20),
            "prometheus to be ready",
            async || {
                let ready = p.http.get(format!("{}/-/ready", p.base)).send().await;
                ready.is_ok_and(|r| r.status().is_success())
            },
        )
        .await;
        p
    }

    async fn api(&self, path: &str, query: &[(&str, &str)]) -> Value {
        let resp = self
            .http
            .get(format!("{}/api/v1/{path}", self.base))
            .query(query)
            .send()
            .await
            .expect("prometheus answers");
        let body: Value = resp.json().await.expect("JSON");
        assert_eq!(body["status"], "success", "{path} {query:?}: {body}");
        body["data"].clone()
    }

    /// The series an instant query returns.
    async fn query(&self, expr: &str) -> Vec<Value> {
        let data = self.api("query", &[("query", expr)]).await;
        data["result"].as_array().cloned().unwrap_or_default()
    }
}

/// The queries of every panel of the dashboard, with Grafana's variables
/// replaced as Grafana would (all nodes).
fn dashboard_queries() -> Vec<String> {
    let text = std::fs::read_to_string(repo_file("deploy/grafana/vtp.json")).unwrap();
    let dashboard: Value = serde_json::from_str(&text).unwrap();
    let mut exprs = Vec::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().into_iter().flatten() {
            let expr = target["expr"].as_str().unwrap();
            exprs.push(
                expr.replace("$__rate_interval", RATE_WINDOW)
                    .replace("$instance", ".*"),
            );
        }
    }
    assert!(exprs.len() >= 20, "{exprs:?}");
    exprs
}

/// The metric names in a PromQL expression: identifiers that are not
/// functions, keywords, label names (in `{…}` or `by (…)`) or numbers.
fn metric_names(expr: &str) -> Vec<String> {
    // Aggregations may be followed by `by (…)` before their parenthesis.
    const KEYWORDS: [&str; 22] = [
        "and",
        "or",
        "unless",
        "bool",
        "offset",
        "by",
        "without",
        "on",
        "ignoring",
        "inf",
        "sum",
        "min",
        "max",
        "avg",
        "count",
        "group",
        "stddev",
        "stdvar",
        "topk",
        "bottomk",
        "quantile",
        "count_values",
    ];
    let chars: Vec<char> = expr.chars().collect();
    let mut names = Vec::new();
    let mut i = 0;
    let mut skip_group = false;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '{' | '[' | '"' | '\'' => {
                let close = match c {
                    '{' => '}',
                    '[' => ']',
                    other => other,
                };
                i += 1;
                while i < chars.len() && chars[i] != close {
                    i += 1;
                }
                i += 1;
            }
            '(' if skip_group => {
                while i < chars.len() && chars[i] != ')' {
                    i += 1;
                }
                skip_group = false;
                i += 1;
            }
            c if c.is_ascii_digit() || c == '.' => {
                while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                    i += 1;
                }
            }
            c if c.is_ascii_alphabetic() || c == '_' || c == ':' => {
                let start = i;
                while i < chars.len()
                    && (chars[i].is_ascii_alphanumeric() || chars[i] == '_' || chars[i] == ':')
                {
                    i += 1;
                }
                let word: String = chars[start..i].iter().collect();
                let next = chars[i..].iter().find(|c| !c.is_whitespace());
                if [
                    "by",
                    "without",
                    "on",
                    "ignoring",
                    "group_left",
                    "group_right",
                ]
                .contains(&word.as_str())
                {
                    skip_group = true;
                } else if next != Some(&'(') && !KEYWORDS.contains(&word.as_str()) {
                    names.push(word);
                }
            }
            _ => i += 1,
        }
    }
    names
}

#[test]
fn metric_names_are_read_from_promql() {
    let expr = r#"sum by (instance, direction) (rate(vtp_media_packets_lost_total{direction="in"}[5m]))
        / sum by (instance) (rate(vtp_media_packets_total[5m])) > 0.05 and up{job="vtp"} == 0
        or vtp_tls_certificate_expiry_timestamp_seconds - time() < 14 * 86400"#;
    assert_eq!(
        metric_names(expr),
        [
            "vtp_media_packets_lost_total",
            "vtp_media_packets_total",
            "up",
            "vtp_tls_certificate_expiry_timestamp_seconds"
        ]
    );
}

#[tokio::test]
async fn prometheus_scrapes_a_class_and_fires_an_alert() {
    // A: the class; no recording can start (the disk is "full"), which is
    // the forced fault.
    let a = TestServer::start_with(|args| {
        args.metrics.metrics_bind = Some("127.0.0.1:0".parse().unwrap());
        args.metrics.metrics_token = Some(Secret::new(TOKEN));
        args.recording_min_free_bytes = u64::MAX;
    })
    .await;
    // B: HTTPS, so that the certificate's expiry is exported.
    let pki = Pki::new();
    let files = CertFiles::new(&pki.leaf(1));
    let b = TestServer::start_with(|args| {
        args.tls.tls_cert = Some(files.cert.clone());
        args.tls.tls_key = Some(files.key.clone());
        args.metrics.metrics_bind = Some("127.0.0.1:0".parse().unwrap());
        args.metrics.metrics_token = Some(Secret::new(TOKEN));
    })
    .await;
    let targets: Vec<String> = [&a, &b]
        .iter()
        .map(|s| s.metrics_addr.unwrap().to_string())
        .collect();
    let prometheus = Prometheus::start(&targets).await;

    let (_, teacher) = a.user("teacher@example.org", Role::Instructor).await;
    let (_, ann) = a.user("ann@example.org", Role::Student).await;
    let room = a.room(&teacher, json!({})).await;
    let publisher = publish(&a, &teacher, &room).await;
    let _student = subscribe(&a, &ann, &room, &publisher.ids).await;
    publisher.video.start();
    publisher.audio.start();

    // Every dashboard query and every metric an alert names has data.
    let rules = prometheus.api("rules", &[]).await;
    let mut alert_metrics = Vec::new();
    for group in rules["groups"].as_array().unwrap() {
        for rule in group["rules"].as_array().unwrap() {
            alert_metrics.extend(metric_names(rule["query"].as_str().unwrap()));
        }
    }
    alert_metrics.sort();
    alert_metrics.dedup();
    assert!(alert_metrics.len() >= 10, "{alert_metrics:?}");
    let mut queries = dashboard_queries();
    queries.extend(alert_metrics.iter().map(|m| format!("count({m})")));
    // Media in and out, so that rates are above zero where it matters.
    queries.push(format!(
        "sum(rate(vtp_media_packets_total{{direction=\"out\"}}[{RATE_WINDOW}])) > 0"
    ));
    wait_for(DATA_WAIT, "every query to return data", async || {
        let mut empty = Vec::new();
        for q in &queries {
            if prometheus.query(q).await.is_empty() {
                empty.push(q.clone());
            }
        }
        if empty.is_empty() { Ok(()) } else { Err(empty) }
    })
    .await;
    let both = prometheus.query(r#"up{job="vtp"} == 1"#).await;
    assert_eq!(both.len(), 2, "both servers scraped: {both:?}");

    // No rule fails to evaluate (a bad expression would say so here).
    let rules = prometheus.api("rules", &[]).await;
    for group in rules["groups"].as_array().unwrap() {
        for rule in group["rules"].as_array().unwrap() {
            assert_eq!(rule["health"], "ok", "{rule}");
        }
    }
    let firing = |alerts: &Value, name: &str| {
        alerts["alerts"].as_array().is_some_and(|list| {
            list.iter()
                .any(|a| a["labels"]["alertname"] == name && a["state"] == "firing")
        })
    };
    assert!(!firing(
        &prometheus.api("alerts", &[]).await,
        "VtpRecordingFailed"
    ));

    // The fault: the teacher starts a recording, which fails for want of
    // disk, and the alert fires.
    let refused = publisher
        .socket
        .request("start-recording", json!({ "roomId": room }))
        .await;
    assert!(refused.is_err(), "the recording cannot start: {refused:?}");
    wait_until(DATA_WAIT, "VtpRecordingFailed to fire", async || {
        firing(&prometheus.api("alerts", &[]).await, "VtpRecordingFailed")
    })
    .await;
    let alerts = prometheus.api("alerts", &[]).await;
    let fired = alerts["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["labels"]["alertname"] == "VtpRecordingFailed")
        .cloned()
        .unwrap();
    assert_eq!(fired["labels"]["instance"], targets[0].as_str(), "{fired}");

    drop(prometheus);
    publisher.video.stop();
    publisher.audio.stop();
    b.stop().await;
    a.stop().await;
}
