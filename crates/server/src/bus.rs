//! The room event bus: how the room logic tells connections what happened.
//!
//! Room logic never touches sockets. It publishes [`Delivery`]s (an event, a
//! payload, and the connections that must receive it) on a [`Bus`]; the
//! signalling layer subscribes and writes them to sockets. In one process the
//! bus is a channel ([`LocalBus`]); across nodes a Redis implementation of the
//! same trait routes each delivery to the node holding the connection.

use std::sync::Mutex;

use serde_json::Value;
use tokio::sync::mpsc;

/// Identifies one signalling connection (a Socket.IO socket id).
pub type ConnId = String;

/// One notification for a set of connections.
#[derive(Clone, Debug, PartialEq)]
pub struct Delivery {
    pub conns: Vec<ConnId>,
    pub event: &'static str,
    pub payload: Value,
}

/// Where room events go. Implementations must keep the order of deliveries
/// published by one caller.
pub trait Bus: Send + Sync + 'static {
    fn publish(&self, delivery: Delivery);
    /// A receiver of every delivery published from now on (one per
    /// signalling front end).
    fn subscribe(&self) -> mpsc::UnboundedReceiver<Delivery>;
    /// Whether the bus can deliver (for readiness probes).
    fn is_healthy(&self) -> bool {
        true
    }
    fn describe(&self) -> String;
}

/// The in-process bus: deliveries go to every subscriber through unbounded
/// channels (a delivery is small, and each subscriber drains continuously).
#[derive(Default)]
pub struct LocalBus {
    subscribers: Mutex<Vec<mpsc::UnboundedSender<Delivery>>>,
}

impl Bus for LocalBus {
    fn publish(&self, delivery: Delivery) {
        if delivery.conns.is_empty() {
            return;
        }
        let mut subscribers = self.subscribers.lock().unwrap_or_else(|p| p.into_inner());
        subscribers.retain(|tx| tx.send(delivery.clone()).is_ok());
    }

    fn subscribe(&self) -> mpsc::UnboundedReceiver<Delivery> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.subscribers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(tx);
        rx
    }

    fn describe(&self) -> String {
        "in-process".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn delivers_in_order_to_every_subscriber() {
        let bus = LocalBus::default();
        let mut a = bus.subscribe();
        let mut b = bus.subscribe();
        for i in 0..3 {
            bus.publish(Delivery {
                conns: vec!["c".into()],
                event: "e",
                payload: Value::from(i),
            });
        }
        bus.publish(Delivery {
            conns: vec![],
            event: "nobody",
            payload: Value::Null,
        });
        for rx in [&mut a, &mut b] {
            for i in 0..3 {
                assert_eq!(rx.recv().await.unwrap().payload, Value::from(i));
            }
            assert!(rx.try_recv().is_err(), "empty deliveries are dropped");
        }
    }
}
