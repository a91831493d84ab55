//! [`SfuControl`] for the driver in this process: ids are made here, each
//! call checks that its objects are in the named room (and, for transports,
//! owned by the named peer), then runs on the room's worker.

use std::sync::atomic::Ordering;
use std::time::Instant;

use async_trait::async_trait;
use serde_json::Value;
use tokio::sync::mpsc::UnboundedReceiver;
use vtp_sfu::engine::{
    ConsumerInfo, EngineError, IceParameters, ProducerInfo, RouterSnapshot, RouterSummary,
    TransportInfo, TransportOptions,
};
use vtp_sfu::rtp::RtpCapabilities;

use crate::control::{
    Consume, CreateTransport, PreferredLayers, Produce, SfuControl, SfuHealth, SfuResult,
    TAP_CAPACITY, Tap,
};
use crate::worker::IdKind;
use crate::{DriverEvent, SfuHandle};

/// A fresh id for an SFU object.
fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// This process's CPU time in seconds (user + system, every thread), from
/// `/proc/self/stat`; `None` where there is no `/proc`.
pub fn process_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name may hold spaces; fields resume after its ')'.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 here.
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    // /proc counts in USER_HZ, which is 100 on Linux.
    Some((utime + stime) / 100.0)
}

impl SfuHandle {
    /// Runs `f` on the worker of `kind`/`id` after checking that the
    /// object is in `room_id`.
    async fn in_room<T, F>(&self, room_id: &str, kind: IdKind, id: &str, f: F) -> SfuResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut crate::worker::Worker, &str) -> Result<T, EngineError> + Send + 'static,
    {
        let worker = self.worker_of(kind, id)?;
        let (room, id) = (room_id.to_owned(), id.to_owned());
        Ok(self
            .call(worker, move |w| {
                w.check_router(kind, &id, &room)?;
                f(w, &id)
            })
            .await?)
    }

    fn cpu_percent(&self, cpu_now: Option<f64>) -> Option<f64> {
        let now = Instant::now();
        let cpu_now = cpu_now?;
        let mut last = self
            .inner
            .cpu_sample
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let (then, cpu_then) = last.replace((now, cpu_now))?;
        let wall = now.duration_since(then).as_secs_f64();
        (wall > 0.0).then(|| 100.0 * (cpu_now - cpu_then) / wall)
    }
}

#[async_trait]
impl SfuControl for SfuHandle {
    fn describe(&self) -> String {
        format!(
            "in process: udp {}, tcp {}, announcing {}, {} worker(s)",
            self.bound_addr(),
            self.tcp_addr().map_or("off".to_owned(), |a| a.to_string()),
            crate::describe_candidates(self.candidates()),
            self.workers()
        )
    }

    async fn health(&self) -> SfuResult<SfuHealth> {
        let health = SfuHandle::health(self);
        let rooms = SfuControl::rooms(self).await.unwrap_or_default();
        let cpu_seconds = process_cpu_seconds();
        Ok(SfuHealth {
            running: health.running,
            local_addr: health.local_addr,
            rooms: rooms.len(),
            peers: rooms.iter().map(|r| r.peers).sum(),
            transports: health.stats.transports,
            producers: health.stats.producers,
            consumers: health.stats.consumers,
            cpu_seconds,
            cpu_percent: self.cpu_percent(cpu_seconds),
            stats: health.stats,
        })
    }

    async fn rooms(&self) -> SfuResult<Vec<RouterSummary>> {
        let mut all = Vec::new();
        for worker in 0..self.workers() {
            all.extend(self.call(worker, |w| Ok(w.router_summaries())).await?);
        }
        all.sort_by(|a, b| a.router_id.cmp(&b.router_id));
        Ok(all)
    }

    async fn room(&self, room_id: &str) -> SfuResult<RouterSnapshot> {
        self.in_room(room_id, IdKind::Router, room_id, |w, id| {
            w.router_snapshot(id)
        })
        .await
    }

    async fn open_room(&self, room_id: &str) -> SfuResult<RtpCapabilities> {
        if room_id.is_empty() {
            return Err(EngineError::UnknownRouter(String::new()).into());
        }
        match self.router_rtp_capabilities(room_id).await {
            Ok(caps) => Ok(caps),
            Err(EngineError::UnknownRouter(_)) => match self.create_router(room_id).await {
                // Two callers raced to open it: the room is open either way.
                Err(EngineError::DuplicateId { .. }) => {
                    Ok(self.router_rtp_capabilities(room_id).await?)
                }
                other => Ok(other?),
            },
            Err(e) => Err(e.into()),
        }
    }

    async fn close_room(&self, room_id: &str) -> SfuResult<()> {
        Ok(self.close_router(room_id).await?)
    }

    async fn add_peer(&self, room_id: &str, peer_id: &str) -> SfuResult<RtpCapabilities> {
        let caps = self.open_room(room_id).await?;
        let peer = peer_id.to_owned();
        self.in_room(room_id, IdKind::Router, room_id, move |w, room| {
            w.add_peer(room, &peer)
        })
        .await?;
        Ok(caps)
    }

    async fn remove_peer(&self, room_id: &str, peer_id: &str) -> SfuResult<()> {
        let peer = peer_id.to_owned();
        self.in_room(room_id, IdKind::Router, room_id, move |w, room| {
            w.remove_peer(room, &peer)
        })
        .await
    }

    async fn create_transport(
        &self,
        room_id: &str,
        request: CreateTransport,
    ) -> SfuResult<TransportInfo> {
        let options = TransportOptions {
            enable_sctp: request.enable_sctp,
            peer_id: Some(request.peer_id),
            direction: Some(request.direction),
        };
        let id = new_id();
        self.in_room(room_id, IdKind::Router, room_id, move |w, room| {
            w.create_transport(room, &id, options)
        })
        .await
    }

    async fn connect_transport(
        &self,
        room_id: &str,
        transport_id: &str,
        dtls_parameters: Value,
    ) -> SfuResult<()> {
        self.in_room(room_id, IdKind::Transport, transport_id, move |w, id| {
            w.connect(id, &dtls_parameters)
        })
        .await
    }

    async fn restart_ice(&self, room_id: &str, transport_id: &str) -> SfuResult<IceParameters> {
        self.in_room(room_id, IdKind::Transport, transport_id, |w, id| {
            w.restart_ice(id)
        })
        .await
    }

    async fn close_transport(&self, room_id: &str, transport_id: &str) -> SfuResult<()> {
        self.in_room(room_id, IdKind::Transport, transport_id, |w, id| {
            w.close_transport(id)
        })
        .await
    }

    async fn produce(&self, room_id: &str, request: Produce) -> SfuResult<ProducerInfo> {
        let id = new_id();
        let Produce {
            peer_id,
            transport_id,
            kind,
            rtp_parameters,
            app_data,
        } = request;
        // The web app tags its screen share `appData.source = "screen"`:
        // the engine gives it the screen-share bandwidth rules.
        let screen = app_data.get("source").and_then(Value::as_str) == Some("screen");
        self.in_room(room_id, IdKind::Transport, &transport_id, move |w, t| {
            w.check_owner(t, &peer_id)?;
            let info = w.produce(t, &id, kind, &rtp_parameters)?;
            if screen {
                w.set_producer_screen(&id, true)?;
            }
            Ok(info)
        })
        .await
    }

    async fn set_producer_paused(
        &self,
        room_id: &str,
        producer_id: &str,
        paused: bool,
    ) -> SfuResult<()> {
        self.in_room(room_id, IdKind::Producer, producer_id, move |w, id| {
            if paused {
                w.pause_producer(id)
            } else {
                w.resume_producer(id)
            }
        })
        .await
    }

    async fn close_producer(&self, room_id: &str, producer_id: &str) -> SfuResult<()> {
        self.in_room(room_id, IdKind::Producer, producer_id, |w, id| {
            w.close_producer(id)
        })
        .await
    }

    async fn consume(&self, room_id: &str, request: Consume) -> SfuResult<ConsumerInfo> {
        let id = new_id();
        let Consume {
            peer_id,
            transport_id,
            producer_id,
            rtp_capabilities,
        } = request;
        // The producer must be in this room too (and so on this worker).
        self.worker_of(IdKind::Producer, &producer_id)?;
        self.in_room(room_id, IdKind::Transport, &transport_id, move |w, t| {
            w.check_owner(t, &peer_id)?;
            w.check_router(IdKind::Producer, &producer_id, &w_room(w, t)?)?;
            w.consume(t, &id, &producer_id, &rtp_capabilities)
        })
        .await
    }

    async fn set_consumer_paused(
        &self,
        room_id: &str,
        consumer_id: &str,
        paused: bool,
    ) -> SfuResult<()> {
        self.in_room(room_id, IdKind::Consumer, consumer_id, move |w, id| {
            if paused {
                w.pause_consumer(id)
            } else {
                w.resume_consumer(id)
            }
        })
        .await
    }

    async fn set_consumer_preferred_layers(
        &self,
        room_id: &str,
        consumer_id: &str,
        layers: PreferredLayers,
    ) -> SfuResult<()> {
        self.in_room(room_id, IdKind::Consumer, consumer_id, move |w, id| {
            w.set_consumer_preferred_layers(id, layers.spatial_layer, layers.temporal_layer)
        })
        .await
    }

    async fn close_consumer(&self, room_id: &str, consumer_id: &str) -> SfuResult<()> {
        self.in_room(room_id, IdKind::Consumer, consumer_id, |w, id| {
            w.close_consumer(id)
        })
        .await
    }

    async fn open_tap(&self, room_id: &str, producer_id: &str) -> SfuResult<Tap> {
        let (sender, packets) = std::sync::mpsc::sync_channel(TAP_CAPACITY);
        let tap_id = new_id();
        let producer = producer_id.to_owned();
        let info = self
            .in_room(room_id, IdKind::Router, room_id, move |w, room| {
                w.add_tap(room, &producer, &tap_id, sender)
            })
            .await?;
        Ok(Tap { info, packets })
    }

    async fn close_tap(&self, room_id: &str, tap_id: &str) -> SfuResult<()> {
        let tap = tap_id.to_owned();
        self.in_room(room_id, IdKind::Router, room_id, move |w, room| {
            w.remove_tap(room, &tap)
        })
        .await
    }

    async fn request_tap_keyframe(&self, room_id: &str, tap_id: &str) -> SfuResult<()> {
        let tap = tap_id.to_owned();
        self.in_room(room_id, IdKind::Router, room_id, move |w, room| {
            w.request_tap_keyframe(room, &tap)
        })
        .await
    }

    fn events(&self) -> UnboundedReceiver<DriverEvent> {
        self.subscribe_events()
    }

    async fn shutdown(&self) {
        if !self.inner.stopped.load(Ordering::Acquire) {
            SfuHandle::shutdown(self).await;
        }
    }
}

/// The room of a transport on this worker.
fn w_room(w: &crate::worker::Worker, transport_id: &str) -> Result<String, EngineError> {
    w.transport_router(transport_id)
        .map(str::to_owned)
        .ok_or_else(|| EngineError::UnknownTransport(transport_id.into()))
}
