//! The receiving thread: reads every datagram of the shared socket and hands
//! it to the worker that owns its transport, without locks.
//!
//! Routing: a STUN datagram with a USERNAME goes to the worker registered
//! for its local ufrag (workers send `RouteUpdate`s when they create and
//! close transports) and teaches the thread its source address; anything
//! else goes by source address. Unknown datagrams are dropped and counted,
//! and so are datagrams for a worker whose bounded queue is full.

use std::collections::HashMap;
use std::io::ErrorKind;
use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError, TrySendError};
use std::time::{Duration, Instant};

use vtp_sfu::engine::parse_stun;

use crate::rxtime;
use crate::worker::{Msg, WorkerCounters};

/// The socket's read timeout: a backstop so that shutdown is noticed even if
/// the wake-up datagram is lost.
pub(crate) const READ_TIMEOUT: Duration = Duration::from_millis(250);

/// Sent by workers when a transport appears or goes away.
#[derive(Debug)]
pub(crate) enum RouteUpdate {
    Add { ufrag: String, worker: usize },
    Remove { ufrag: String },
}

/// Counters of the receiving thread.
#[derive(Debug, Default)]
pub(crate) struct DemuxCounters {
    pub received: AtomicU64,
    pub dropped_unknown: AtomicU64,
    pub recv_errors: AtomicU64,
}

pub(crate) struct Demux {
    pub socket: Arc<UdpSocket>,
    pub stop: Arc<AtomicBool>,
    pub workers: Vec<SyncSender<Msg>>,
    pub worker_counters: Vec<Arc<WorkerCounters>>,
    pub routes: Receiver<RouteUpdate>,
    pub counters: Arc<DemuxCounters>,
}

#[derive(Default)]
struct Table {
    ufrags: HashMap<String, usize>,
    /// Source address → (worker, ufrag it was learnt from).
    addrs: HashMap<SocketAddr, (usize, String)>,
}

impl Table {
    fn apply(&mut self, update: RouteUpdate) {
        match update {
            RouteUpdate::Add { ufrag, worker } => {
                self.ufrags.insert(ufrag, worker);
            }
            RouteUpdate::Remove { ufrag } => {
                self.ufrags.remove(&ufrag);
                self.addrs.retain(|_, (_, u)| *u != ufrag);
            }
        }
    }

    fn route(&mut self, source: SocketAddr, bytes: &[u8]) -> Option<usize> {
        match parse_stun(bytes).and_then(|s| s.local_ufrag()) {
            Some(ufrag) => {
                let worker = *self.ufrags.get(ufrag)?;
                match self.addrs.get_mut(&source) {
                    Some(entry) if entry.1 == ufrag => entry.0 = worker,
                    _ => {
                        self.addrs.insert(source, (worker, ufrag.to_owned()));
                    }
                }
                Some(worker)
            }
            None => self.addrs.get(&source).map(|(w, _)| *w),
        }
    }
}

impl Demux {
    pub fn run(self) {
        let mut table = Table::default();
        let mut receiver = rxtime::BatchReceiver::new();
        if !rxtime::enable(&self.socket) {
            tracing::debug!("no kernel receive timestamps: arrival is when a datagram is read");
        }
        loop {
            let received = receiver.recv(&self.socket);
            if self.stop.load(Ordering::Acquire) {
                return;
            }
            let count = match received {
                Ok(n) => n,
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    continue;
                }
                Err(e) => {
                    // E.g. ECONNREFUSED reported for an earlier send; the
                    // socket stays usable. Pause briefly so a persistent
                    // error cannot spin.
                    self.counters.recv_errors.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(error = %e, "sfu socket receive error");
                    std::thread::sleep(Duration::from_millis(1));
                    continue;
                }
            };
            loop {
                match self.routes.try_recv() {
                    Ok(update) => table.apply(update),
                    Err(TryRecvError::Empty) => break,
                    // Every worker is gone: shutting down.
                    Err(TryRecvError::Disconnected) => return,
                }
            }
            for i in 0..count {
                let Some((meta, bytes)) = receiver.get(i) else {
                    break;
                };
                let (Some(source), false) = (meta.source, meta.truncated) else {
                    // Not from an IP address, or longer than any WebRTC
                    // datagram: nothing an engine could use.
                    self.counters.recv_errors.fetch_add(1, Ordering::Relaxed);
                    continue;
                };
                self.counters.received.fetch_add(1, Ordering::Relaxed);
                self.route(&mut table, source, bytes, meta.arrived);
            }
        }
    }

    fn route(&self, table: &mut Table, source: SocketAddr, bytes: &[u8], arrived: Instant) {
        let Some(worker) = table.route(source, bytes) else {
            self.counters
                .dropped_unknown
                .fetch_add(1, Ordering::Relaxed);
            return;
        };
        let msg = Msg::Datagram {
            source,
            bytes: bytes.to_vec(),
            arrived,
        };
        match self.workers[worker].try_send(msg) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                self.worker_counters[worker]
                    .dropped_queue_full
                    .fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    /// A STUN Binding request with a USERNAME (and no more: routing reads
    /// nothing else).
    fn stun(username: &str) -> Vec<u8> {
        let mut attrs = vec![0x00, 0x06];
        attrs.extend_from_slice(&(username.len() as u16).to_be_bytes());
        attrs.extend_from_slice(username.as_bytes());
        attrs.resize(attrs.len().div_ceil(4) * 4, 0);
        let mut m = vec![0x00, 0x01];
        m.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
        m.extend_from_slice(&[0x21, 0x12, 0xA4, 0x42]);
        m.extend_from_slice(&[7; 12]);
        m.extend_from_slice(&attrs);
        m
    }

    #[test]
    fn a_full_worker_queue_drops_and_counts() {
        let socket = Arc::new(UdpSocket::bind("127.0.0.1:0").unwrap());
        socket.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
        let addr = socket.local_addr().unwrap();
        // A worker that never reads, with room for two datagrams.
        let (queue_tx, queue_rx) = mpsc::sync_channel(2);
        let (route_tx, route_rx) = mpsc::channel();
        route_tx
            .send(RouteUpdate::Add {
                ufrag: "u1".into(),
                worker: 0,
            })
            .unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let counters = Arc::new(DemuxCounters::default());
        let worker = Arc::new(WorkerCounters::default());
        let demux = Demux {
            socket,
            stop: stop.clone(),
            workers: vec![queue_tx],
            worker_counters: vec![worker.clone()],
            routes: route_rx,
            counters: counters.clone(),
        };
        let thread = std::thread::spawn(move || demux.run());
        let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
        for _ in 0..10 {
            peer.send_to(&stun("u1:r"), addr).unwrap();
        }
        let end = Instant::now() + Duration::from_secs(5);
        while counters.received.load(Ordering::Relaxed) < 10 {
            assert!(Instant::now() < end, "datagrams not received");
            std::thread::sleep(Duration::from_millis(2)); // sleep-ok: the poll interval
        }
        stop.store(true, Ordering::Release);
        peer.send_to(b"wake", addr).unwrap();
        thread.join().unwrap();
        assert_eq!(worker.dropped_queue_full.load(Ordering::Relaxed), 8);
        assert_eq!(queue_rx.try_iter().count(), 2);
        assert_eq!(counters.dropped_unknown.load(Ordering::Relaxed), 0);
        drop(route_tx);
    }

    #[test]
    fn stun_teaches_addresses_and_removal_forgets_them() {
        let mut table = Table::default();
        let a: SocketAddr = "10.0.0.1:1000".parse().unwrap();
        let b: SocketAddr = "10.0.0.2:1000".parse().unwrap();
        let rtp = [0x80u8, 96, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1];
        assert_eq!(table.route(a, &stun("u1:r")), None, "unknown ufrag");
        assert_eq!(table.route(a, &rtp), None, "unknown address");
        table.apply(RouteUpdate::Add {
            ufrag: "u1".into(),
            worker: 1,
        });
        table.apply(RouteUpdate::Add {
            ufrag: "u2".into(),
            worker: 0,
        });
        assert_eq!(table.route(a, &rtp), None, "not learnt yet");
        assert_eq!(table.route(a, &stun("u1:r")), Some(1));
        assert_eq!(table.route(a, &rtp), Some(1));
        assert_eq!(table.route(b, &stun("u2:r")), Some(0));
        assert_eq!(table.route(b, &rtp), Some(0));
        // An address that moves to another transport follows it.
        assert_eq!(table.route(a, &stun("u2:r")), Some(0));
        assert_eq!(table.route(a, &rtp), Some(0));
        table.apply(RouteUpdate::Remove { ufrag: "u2".into() });
        assert_eq!(table.route(a, &rtp), None);
        assert_eq!(table.route(b, &rtp), None);
        assert_eq!(table.route(b, &stun("u2:r")), None);
    }
}
