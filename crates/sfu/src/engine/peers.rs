//! Peers and snapshots, for the SFU control API (docs/protocol.md, "SFU control API").
//!
//! A peer is only an owner tag: the engine does not know who it is, only
//! which transports it owns, so that removing it closes them (and, through
//! them, its producers and consumers). Snapshots describe a router's
//! contents for `GET /sfu/v1/rooms[/{id}]`.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::{Engine, EngineError, StreamStats, TransportDirection};
use crate::rtp::MediaKind;

/// One router's contents (`GET /sfu/v1/rooms/{roomId}`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RouterSnapshot {
    pub router_id: String,
    pub peers: Vec<String>,
    pub transports: Vec<TransportSnapshot>,
    pub producers: Vec<ProducerSnapshot>,
    pub consumers: Vec<ConsumerSnapshot>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TransportSnapshot {
    pub id: String,
    pub peer_id: Option<String>,
    /// `None` until the transport is first used (or fixed at creation).
    pub direction: Option<TransportDirection>,
    /// ICE and DTLS are up.
    pub connected: bool,
    /// A receive transport's bandwidth estimate towards its client (bit/s),
    /// once the client's congestion-control feedback informs it (see the
    /// engine's module doc); what the consumers' layers are fitted into.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub available_outgoing_bitrate: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProducerSnapshot {
    pub id: String,
    pub transport_id: String,
    pub kind: MediaKind,
    pub paused: bool,
    /// Simulcast encodings (1 for a plain stream).
    pub encodings: usize,
    /// Each encoding as it arrives.
    pub layers: Vec<ProducerLayerSnapshot>,
}

/// One encoding (simulcast layer) of a producer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProducerLayerSnapshot {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rid: Option<String>,
    /// Known once its first packet arrived (or given by the client).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssrc: Option<u32>,
    /// Sending now (see `LAYER_INACTIVE_AFTER`).
    pub active: bool,
    /// Payload bits per second over the last whole second (0 when
    /// inactive).
    pub bitrate: u64,
    /// What arrives on it (see the `stats` module doc); absent from an
    /// SFU node without statistics.
    #[serde(default)]
    pub stats: StreamStats,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConsumerSnapshot {
    pub id: String,
    pub transport_id: String,
    pub producer_id: String,
    pub paused: bool,
    pub producer_paused: bool,
    /// The layers it asked for (`set-preferred-layers`; the best by default).
    pub preferred_layers: LayersSnapshot,
    /// The layers it gets now; absent before its first packet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_layers: Option<LayersSnapshot>,
    /// What it sent and its receiver reported; its score is never above
    /// its producer layer's (see the `stats` module doc).
    #[serde(default)]
    pub stats: StreamStats,
}

/// A spatial and a temporal layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LayersSnapshot {
    pub spatial_layer: u8,
    pub temporal_layer: u8,
}

/// Counts of one router (`GET /sfu/v1/rooms`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RouterSummary {
    pub router_id: String,
    pub peers: usize,
    pub transports: usize,
    pub producers: usize,
    pub consumers: usize,
}

impl Engine {
    /// Adds a peer to a router; transports created with its id as
    /// `TransportOptions::peer_id` belong to it.
    pub fn add_peer(&mut self, router_id: &str, peer_id: &str) -> Result<(), EngineError> {
        let max = self.config.max_peers_per_router;
        let router = self
            .routers
            .get_mut(router_id)
            .ok_or_else(|| EngineError::UnknownRouter(router_id.into()))?;
        if router.peers.contains_key(peer_id) {
            return Err(EngineError::DuplicateId {
                what: "peer",
                id: peer_id.into(),
            });
        }
        if peer_id.is_empty() {
            return Err(EngineError::Unsupported("an empty peer id".into()));
        }
        if router.peers.len() >= max {
            return Err(EngineError::LimitReached {
                what: "peers in the router",
                max,
            });
        }
        router.peers.insert(peer_id.to_owned(), BTreeSet::new());
        Ok(())
    }

    /// Removes a peer and closes every transport it owns (with events for
    /// what they carried, as `close_transport` does).
    pub fn remove_peer(&mut self, router_id: &str, peer_id: &str) -> Result<(), EngineError> {
        let router = self
            .routers
            .get_mut(router_id)
            .ok_or_else(|| EngineError::UnknownRouter(router_id.into()))?;
        let transports = router
            .peers
            .remove(peer_id)
            .ok_or_else(|| EngineError::UnknownPeer(peer_id.into()))?;
        for transport_id in transports {
            self.remove_transport(&transport_id, None);
        }
        Ok(())
    }

    /// The transports a peer owns.
    pub fn peer_transports(&self, router_id: &str, peer_id: &str) -> Vec<String> {
        self.routers
            .get(router_id)
            .and_then(|r| r.peers.get(peer_id))
            .map(|t| t.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// The router a transport belongs to.
    pub fn transport_router(&self, transport_id: &str) -> Option<&str> {
        self.transports
            .get(transport_id)
            .map(|t| t.router_id.as_str())
    }

    /// The owner of a transport, if it has one.
    pub fn transport_peer(&self, transport_id: &str) -> Option<&str> {
        self.transports
            .get(transport_id)
            .and_then(|t| t.peer_id.as_deref())
    }

    /// The router a producer belongs to.
    pub fn producer_router(&self, producer_id: &str) -> Option<&str> {
        self.producers
            .get(producer_id)
            .map(|p| p.router_id.as_str())
    }

    /// The router a consumer belongs to (through its transport).
    pub fn consumer_router(&self, consumer_id: &str) -> Option<&str> {
        self.consumers
            .get(consumer_id)
            .and_then(|c| self.transport_router(&c.transport_id))
    }

    /// Everything in one router, sorted by id.
    pub fn router_snapshot(&self, router_id: &str) -> Result<RouterSnapshot, EngineError> {
        let router = self
            .routers
            .get(router_id)
            .ok_or_else(|| EngineError::UnknownRouter(router_id.into()))?;
        let mut snapshot = RouterSnapshot {
            router_id: router_id.to_owned(),
            peers: router.peers.keys().cloned().collect(),
            transports: Vec::new(),
            producers: Vec::new(),
            consumers: Vec::new(),
        };
        for transport_id in &router.transports {
            let Some(t) = self.transports.get(transport_id) else {
                continue;
            };
            snapshot.transports.push(TransportSnapshot {
                id: transport_id.clone(),
                peer_id: t.peer_id.clone(),
                direction: t.direction,
                connected: t.connected,
                available_outgoing_bitrate: self.egress_estimate(transport_id),
            });
            for id in &t.producers {
                if let Some(p) = self.producers.get(id) {
                    snapshot.producers.push(ProducerSnapshot {
                        id: id.clone(),
                        transport_id: transport_id.clone(),
                        kind: p.negotiation.kind,
                        paused: p.paused,
                        encodings: p.layers.len(),
                        layers: p
                            .layers
                            .iter()
                            .map(|l| ProducerLayerSnapshot {
                                rid: l.rid.clone(),
                                ssrc: l.ssrc,
                                active: l.active,
                                bitrate: if l.active { l.bitrate.bitrate() } else { 0 },
                                stats: l.stats.snapshot(l.active, l.bitrate.bitrate()),
                            })
                            .collect(),
                    });
                }
            }
            for id in &t.consumers {
                if let Some(c) = self.consumers.get(id) {
                    let producer = self.producers.get(&c.producer_id);
                    let producer_score = producer
                        .zip(c.layers.current_layer())
                        .and_then(|(p, layer)| p.layers.get(layer))
                        .map_or(0, |l| l.stats.snapshot(l.active, 0).score);
                    let clock_rate = producer.map_or(0, |p| p.clock_rate);
                    snapshot.consumers.push(ConsumerSnapshot {
                        id: id.clone(),
                        transport_id: transport_id.clone(),
                        producer_id: c.producer_id.clone(),
                        paused: c.paused,
                        producer_paused: c.producer_paused,
                        preferred_layers: c.layers.preferred(),
                        current_layers: c.layers.current(),
                        stats: c.stats.snapshot(producer_score, clock_rate),
                    });
                }
            }
        }
        snapshot.producers.sort_by(|a, b| a.id.cmp(&b.id));
        snapshot.consumers.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(snapshot)
    }

    /// Counts of every router, sorted by id.
    pub fn router_summaries(&self) -> Vec<RouterSummary> {
        let mut out: Vec<RouterSummary> = self
            .routers
            .iter()
            .map(|(id, r)| {
                let (mut producers, mut consumers) = (0, 0);
                for t in r.transports.iter().filter_map(|t| self.transports.get(t)) {
                    producers += t.producers.len();
                    consumers += t.consumers.len();
                }
                RouterSummary {
                    router_id: id.clone(),
                    peers: r.peers.len(),
                    transports: r.transports.len(),
                    producers,
                    consumers,
                }
            })
            .collect();
        out.sort_by(|a, b| a.router_id.cmp(&b.router_id));
        out
    }
}
