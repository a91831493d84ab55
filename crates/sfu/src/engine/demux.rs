//! Datagram and timer input: routing a datagram to its transport (STUN by
//! local ufrag, the rest by source address), holding it if the `Rtc` is not
//! built yet, and draining every touched `Rtc` into outputs and events.

use std::net::SocketAddr;
use std::time::Instant;

use str0m::bwe::BweKind;
use str0m::net::Protocol;
use str0m::{Event, IceConnectionState, IceCreds, Input, Output};

use super::transport::feed;
use super::{
    CloseReason, Engine, EngineEvent, EngineOutput, FailureReason, IceProtocol,
    MAX_EARLY_DATAGRAMS, wire,
};

impl Engine {
    /// One UDP datagram that arrived from `source` on the engine's port.
    /// Datagrams nobody claims are dropped.
    pub fn handle_datagram(&mut self, now: Instant, source: SocketAddr, bytes: &[u8]) {
        self.handle_receive(now, IceProtocol::Udp, source, bytes);
    }

    /// One packet from `source` over `protocol`: a UDP datagram, or one
    /// RFC 4571 frame's payload read from the ICE-TCP connection whose
    /// remote address is `source`. Packets nobody claims are dropped.
    pub fn handle_receive(
        &mut self,
        now: Instant,
        protocol: IceProtocol,
        source: SocketAddr,
        bytes: &[u8],
    ) {
        self.handle_receive_arrived(now, now, protocol, source, bytes);
    }

    /// [`Engine::handle_receive`] of a packet that reached the host at
    /// `arrived` (a kernel receive timestamp), handled at `now`. str0m is
    /// given the arrival time, which its TWCC feedback reports to the
    /// publisher: a publisher's congestion control reads those times, and
    /// packets that waited while this thread was busy would look bunched up
    /// (a false queue, a bandwidth probe taken for invalid). Everything the
    /// packet causes (forwarding, pacing, timers) runs at `now`.
    pub fn handle_receive_arrived(
        &mut self,
        now: Instant,
        arrived: Instant,
        protocol: IceProtocol,
        source: SocketAddr,
        bytes: &[u8],
    ) {
        let key = (protocol, source);
        let stun = wire::parse_stun(bytes).and_then(|s| Some((s.ufrags()?, s.binding_request)));
        let transport_id = match stun {
            Some(((local, remote), is_request)) => {
                let Some(id) = self.ufrags.get(local).cloned() else {
                    return;
                };
                if let Some(old) = self.addrs.insert(key, id.clone())
                    && old != id
                    && let Some(t) = self.transports.get_mut(&old)
                {
                    t.sources.remove(&key);
                }
                if let Some(t) = self.transports.get_mut(&id) {
                    t.sources.insert(key);
                    if is_request && t.remote_ufrag.as_deref() != Some(remote) {
                        if let Some(rtc) = t.rtc.as_mut() {
                            rtc.direct_api().set_remote_ice_credentials(IceCreds {
                                ufrag: remote.to_owned(),
                                pass: String::new(),
                            });
                        }
                        t.remote_ufrag = Some(remote.to_owned());
                    }
                }
                id
            }
            None => match self.addrs.get(&key) {
                Some(id) => id.clone(),
                None => return,
            },
        };
        let Some(transport) = self.transports.get_mut(&transport_id) else {
            return;
        };
        if transport.rtc.is_none() {
            if transport.early.len() >= MAX_EARLY_DATAGRAMS {
                transport.early.pop_front();
            }
            transport
                .early
                .push_back((protocol, source, bytes.to_vec()));
            return;
        }
        if let Some(rtc) = transport.rtc.as_mut()
            && let Some(found) =
                // RID streams str0m cannot map itself (see `rtpmap`).
                transport
                        .send_tables
                        .discover(rtc, bytes, &transport.ssrcs, &transport_id)
        {
            transport.ssrcs.insert(found);
        }
        feed(
            &self.config,
            transport,
            arrived.min(now),
            protocol,
            source,
            bytes,
        );
        self.dirty.insert(transport_id);
        self.pump(now);
    }

    /// Time has reached `now`: runs every transport whose timeout passed.
    pub fn handle_timeout(&mut self, now: Instant) {
        for (id, t) in self.transports.iter_mut() {
            let due = t.timeout.is_none_or(|at| at <= now);
            if let (true, Some(rtc)) = (due, t.rtc.as_mut()) {
                let _ = rtc.handle_input(Input::Timeout(now));
                self.dirty.insert(id.clone());
            }
        }
        self.check_connect_deadlines(now);
        self.check_layers(now);
        self.check_speakers(now);
        let producers: Vec<String> = self.producers.keys().cloned().collect();
        for producer_id in producers {
            self.flush_keyframes(&producer_id, now);
        }
        self.pump(now);
    }

    /// When [`Engine::handle_timeout`] should be called next.
    pub fn next_timeout(&self) -> Option<Instant> {
        let rtc = self
            .transports
            .values()
            .filter(|t| t.rtc.is_some())
            .filter_map(|t| t.timeout);
        let deadlines = self
            .transports
            .values()
            .filter_map(|t| self.connect_deadline(t));
        rtc.chain(deadlines).min()
    }

    /// When a transport not yet connected will be reported late.
    fn connect_deadline(&self, t: &super::Transport) -> Option<Instant> {
        if t.connected || t.failure.is_some() {
            return None;
        }
        Some(t.connect_requested? + self.config.connect_deadline)
    }

    /// Reports the transports whose connect deadline passed (once each).
    fn check_connect_deadlines(&mut self, now: Instant) {
        let late: Vec<(String, FailureReason)> = self
            .transports
            .iter()
            .filter(|(_, t)| self.connect_deadline(t).is_some_and(|at| at <= now))
            .map(|(id, t)| {
                let reason = if t.ice_connected {
                    FailureReason::DtlsTimeout
                } else {
                    FailureReason::IceTimeout
                };
                (id.clone(), reason)
            })
            .collect();
        for (id, reason) in late {
            self.report_failure(&id, reason);
        }
    }

    /// Logs and counts a transport's failure, once per transport.
    fn report_failure(&mut self, transport_id: &str, reason: FailureReason) {
        let Some(t) = self.transports.get_mut(transport_id) else {
            return;
        };
        if t.failure.is_some() {
            return;
        }
        t.failure = Some(reason);
        self.failures.count(reason);
        tracing::warn!(
            router_id = %t.router_id,
            transport_id,
            reason = reason.as_str(),
            ice_connected = t.ice_connected,
            sources = t.sources.len(),
            "transport failed"
        );
    }

    /// The next datagram to send or event to report.
    pub fn poll_output(&mut self) -> Option<EngineOutput> {
        self.outputs.pop_front()
    }

    // ------------------------------------------------------------------
    // Draining

    /// Drains every touched `Rtc` until all are quiet, handling the events
    /// (which may touch further `Rtc`s).
    pub(super) fn pump(&mut self, now: Instant) {
        while let Some(id) = self.dirty.pop_first() {
            let Some(transport) = self.transports.get_mut(&id) else {
                continue;
            };
            let Some(rtc) = transport.rtc.as_mut() else {
                continue;
            };
            let mut events = Vec::new();
            let mut failed = false;
            loop {
                match rtc.poll_output() {
                    Ok(Output::Timeout(at)) => {
                        transport.timeout = Some(at);
                        break;
                    }
                    Ok(Output::Transmit(t)) => {
                        let protocol = match t.proto {
                            Protocol::Udp => IceProtocol::Udp,
                            Protocol::Tcp => IceProtocol::Tcp,
                            // Never nominated: the engine has no such
                            // candidates.
                            Protocol::SslTcp | Protocol::Tls => continue,
                        };
                        self.outputs.push_back(EngineOutput::Transmit {
                            protocol,
                            destination: t.destination,
                            bytes: t.contents.to_vec(),
                        })
                    }
                    Ok(Output::Event(e)) => events.push(e),
                    Err(_) => {
                        failed = true;
                        break;
                    }
                }
            }
            let alive = rtc.is_alive();
            for event in events {
                self.handle_event(&id, event, now);
            }
            if failed || !alive {
                if let Some(t) = self.transports.get(&id) {
                    let reason = if t.connected {
                        FailureReason::Disconnected
                    } else if t.ice_connected {
                        FailureReason::DtlsFailed
                    } else {
                        FailureReason::IceFailed
                    };
                    self.report_failure(&id, reason);
                }
                self.remove_transport(&id, Some(CloseReason::Failed));
            }
        }
    }

    fn handle_event(&mut self, transport_id: &str, event: Event, now: Instant) {
        match event {
            Event::Connected => {
                let Some(t) = self.transports.get_mut(transport_id) else {
                    return;
                };
                t.connected = true;
                let wanted: Vec<(String, usize)> = t
                    .consumers
                    .iter()
                    .filter_map(|c| self.consumers.get(c))
                    .filter(|c| c.active())
                    .filter_map(|c| Some((c.producer_id.clone(), c.layers.keyframe_layer()?)))
                    .collect();
                self.outputs
                    .push_back(EngineOutput::Event(EngineEvent::TransportConnected {
                        transport_id: transport_id.to_owned(),
                    }));
                for (producer_id, layer) in wanted {
                    self.want_keyframe(&producer_id, layer, now);
                }
            }
            Event::IceConnectionStateChange(state) => {
                if matches!(
                    state,
                    IceConnectionState::Connected | IceConnectionState::Completed
                ) && let Some(t) = self.transports.get_mut(transport_id)
                {
                    t.ice_connected = true;
                }
            }
            Event::RtpPacket(packet) => self.forward(transport_id, &packet, now),
            Event::MediaIngressStats(s) => self.ingress_stats(transport_id, &s),
            Event::MediaEgressStats(s) => self.egress_stats(transport_id, &s),
            Event::EgressBitrateEstimate(BweKind::Twcc {
                estimate,
                can_probe,
            }) => self.on_estimate(transport_id, estimate, can_probe, now),
            Event::KeyframeRequest(req) => {
                let Some(t) = self.transports.get(transport_id) else {
                    return;
                };
                let Some(consumer) = t.mids.get(&*req.mid).and_then(|id| self.consumers.get(id))
                else {
                    return;
                };
                if consumer.active()
                    && let Some(layer) = consumer.layers.keyframe_layer()
                {
                    let producer_id = consumer.producer_id.clone();
                    self.want_keyframe(&producer_id, layer, now);
                }
            }
            _ => {}
        }
    }
}
