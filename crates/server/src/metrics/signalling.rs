//! Socket.IO events: counted by name and result, and timed from arrival to
//! acknowledgement, at the one place every event passes
//! (`signalling::Signalling::event`).

use std::time::Duration;

use serde_json::Value;

use super::{EventLabels, EventName, Metrics};

/// The request events of docs/protocol.md; any other name counts as
/// `unknown`, so that clients cannot make new series.
pub const EVENTS: [&str; 39] = [
    "join-room",
    "leave-room",
    "get-participants",
    "get-room-info",
    "chat-message",
    "get-chat-history",
    "raise-hand",
    "lower-hand",
    "host-action",
    "set-spotlight",
    "admit",
    "deny",
    "send-reaction",
    "mute-all",
    "lower-all-hands",
    "ask-to-unmute",
    "close-room",
    "end-session",
    "start-recording",
    "stop-recording",
    "webrtc-offer",
    "webrtc-answer",
    "ice-candidate",
    "check-connectivity",
    "check-connectivity-connect",
    "check-connectivity-produce",
    "check-connectivity-end",
    "create-transport",
    "connect-transport",
    "restart-ice",
    "produce",
    "consume",
    "pause-consumer",
    "resume-consumer",
    "close-consumer",
    "set-preferred-layers",
    "pause-producer",
    "resume-producer",
    "close-producer",
];

/// The error codes of the acknowledgement envelope (`rooms::SignalCode`).
const CODES: [&str; 9] = [
    "bad_request",
    "unauthorized",
    "forbidden",
    "not_found",
    "conflict",
    "room_full",
    "room_closed",
    "rate_limited",
    "internal",
];

impl Metrics {
    /// One event answered with `answer` (the `{ ok, data | error }`
    /// envelope) after `elapsed`.
    pub fn signalling_event(&self, name: &str, answer: &Value, elapsed: Duration) {
        let event = EVENTS
            .iter()
            .find(|e| **e == name)
            .copied()
            .unwrap_or("unknown");
        self.events
            .get_or_create(&EventLabels {
                event,
                result: result_label(answer),
            })
            .inc();
        self.ack_duration
            .get_or_create(&EventName { event })
            .observe(elapsed.as_secs_f64());
    }
}

fn result_label(answer: &Value) -> &'static str {
    if answer["ok"] == Value::Bool(true) {
        return "ok";
    }
    let code = answer["error"]["code"].as_str().unwrap_or_default();
    CODES
        .iter()
        .find(|c| **c == code)
        .copied()
        .unwrap_or("other")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_handled_event_has_its_own_series() {
        // The handlers' match arms, read from their source: a new event
        // without a name here would be counted as `unknown`.
        let source = [
            include_str!("../signalling/handlers.rs"),
            include_str!("../signalling/handlers/host_tools.rs"),
        ]
        .concat();
        // An arm may name several events (`"admit" | "deny" => …`).
        let handled: Vec<&str> = source
            .lines()
            .filter_map(|l| l.trim().strip_prefix('"'))
            .filter_map(|l| l.split_once("\" => request!").map(|(names, _)| names))
            .flat_map(|names| names.split("\" | \""))
            .collect();
        assert!(handled.len() >= 20, "{handled:?}");
        for name in ["ask-to-unmute", "admit", "deny"] {
            assert!(handled.contains(&name), "{name} not read: {handled:?}");
        }
        for name in handled {
            assert!(EVENTS.contains(&name), "{name} is missing from EVENTS");
        }
    }

    #[test]
    fn results_are_ok_or_a_known_code() {
        assert_eq!(result_label(&serde_json::json!({"ok": true})), "ok");
        let refused = serde_json::json!({"ok": false, "error": {"code": "room_full"}});
        assert_eq!(result_label(&refused), "room_full");
        let odd = serde_json::json!({"ok": false, "error": {"code": "x".repeat(100)}});
        assert_eq!(result_label(&odd), "other");
    }

    #[test]
    fn unknown_event_names_share_one_series() {
        let m = Metrics::default();
        for i in 0..50 {
            m.signalling_event(&format!("junk-{i}"), &Value::Null, Duration::ZERO);
        }
        m.signalling_event("produce", &serde_json::json!({"ok": true}), Duration::ZERO);
        let mut registry = prometheus_client::registry::Registry::default();
        registry.register("e", "", m.events.clone());
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).expect("encodes");
        assert!(
            text.contains(r#"e_total{event="unknown",result="other"} 50"#),
            "{text}"
        );
        assert!(
            text.contains(r#"e_total{event="produce",result="ok"} 1"#),
            "{text}"
        );
        assert_eq!(text.lines().filter(|l| l.starts_with("e_total")).count(), 2);
    }
}
