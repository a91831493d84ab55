//! [`SfuControl`] for the driver in this process: each operation of the
//! control API's table, answered here. Ids are made here; each call checks
//! that its objects are in the named room (and, for produce and consume,
//! that the transport is the named peer's), then runs on the room's worker.

use std::sync::atomic::Ordering;
use std::time::Instant;

use async_trait::async_trait;
use serde_json::Value;
use tokio::sync::mpsc::UnboundedReceiver;
use vtp_sfu::engine::{ConsumerInfo, EngineError, ProducerInfo, RouterSummary, TransportOptions};
use vtp_sfu::rtp::RtpCapabilities;

use crate::control::{
    Connect, Consume, CreateTransport, Done, IceRestarted, NewPeer, PeerAdded, Produce, RoomOpened,
    SfuControl, SfuHealth, SfuRequest, SfuResponse, SfuResult, TAP_CAPACITY, Tap,
};
use crate::worker::{IdKind, Worker};
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

    async fn call(&self, request: SfuRequest) -> SfuResult<SfuResponse> {
        use IdKind::{Consumer, Producer, Transport};
        use SfuRequest as R;
        use SfuResponse as A;
        let done = |()| A::Done(Done {});
        Ok(match request {
            R::Health {} => A::Health(self.control_health().await),
            R::Rooms {} => A::Rooms(self.router_summaries().await?),
            R::Room { room_id } => A::Room(
                self.on_room(&room_id, |w, room| w.engine().router_snapshot(room))
                    .await?,
            ),
            R::OpenRoom { room_id } => {
                let rtp_capabilities = self.open_router(&room_id).await?;
                A::RoomOpened(RoomOpened {
                    room_id,
                    rtp_capabilities,
                })
            }
            R::CloseRoom { room_id } => done(
                self.on_room(&room_id, |w, room| w.close_router(room))
                    .await?,
            ),
            R::AddPeer {
                room_id,
                body: NewPeer { peer_id },
            } => {
                let rtp_capabilities = self.open_router(&room_id).await?;
                let peer = peer_id.clone();
                self.on_room(&room_id, move |w, room| w.engine().add_peer(room, &peer))
                    .await?;
                A::PeerAdded(PeerAdded {
                    peer_id,
                    rtp_capabilities,
                })
            }
            R::RemovePeer { room_id, peer_id } => done(
                self.on_room(&room_id, move |w, room| w.remove_peer(room, &peer_id))
                    .await?,
            ),
            R::CreateTransport { room_id, body } => {
                let CreateTransport {
                    peer_id,
                    direction,
                    enable_sctp,
                } = body;
                let options = TransportOptions {
                    enable_sctp,
                    peer_id: Some(peer_id),
                    direction: Some(direction),
                };
                let id = new_id();
                A::Transport(
                    self.on_room(&room_id, move |w, room| {
                        w.create_transport(room, &id, options)
                    })
                    .await?,
                )
            }
            R::ConnectTransport {
                room_id,
                transport_id,
                body: Connect { dtls_parameters },
            } => done(
                self.in_room(&room_id, Transport, &transport_id, move |w, id| {
                    w.engine()
                        .connect_transport(id, &dtls_parameters, Instant::now())
                })
                .await?,
            ),
            R::RestartIce {
                room_id,
                transport_id,
            } => A::IceRestarted(IceRestarted {
                ice_parameters: self
                    .in_room(&room_id, Transport, &transport_id, |w, id| {
                        w.restart_ice(id)
                    })
                    .await?,
            }),
            R::CloseTransport {
                room_id,
                transport_id,
            } => done(
                self.in_room(&room_id, Transport, &transport_id, |w, id| {
                    w.close_transport(id)
                })
                .await?,
            ),
            R::Produce { room_id, body } => A::Producer(self.produce_in(&room_id, body).await?),
            R::PauseProducer {
                room_id,
                producer_id,
            } => done(
                self.in_room(&room_id, Producer, &producer_id, |w, id| {
                    w.engine().pause_producer(id)
                })
                .await?,
            ),
            R::ResumeProducer {
                room_id,
                producer_id,
            } => done(
                self.in_room(&room_id, Producer, &producer_id, |w, id| {
                    w.engine().resume_producer(id, Instant::now())
                })
                .await?,
            ),
            R::CloseProducer {
                room_id,
                producer_id,
            } => done(
                self.in_room(&room_id, Producer, &producer_id, |w, id| {
                    w.close_producer(id)
                })
                .await?,
            ),
            R::Consume { room_id, body } => A::Consumer(self.consume_in(&room_id, body).await?),
            R::PauseConsumer {
                room_id,
                consumer_id,
            } => done(
                self.in_room(&room_id, Consumer, &consumer_id, |w, id| {
                    w.engine().pause_consumer(id)
                })
                .await?,
            ),
            R::ResumeConsumer {
                room_id,
                consumer_id,
            } => done(
                self.in_room(&room_id, Consumer, &consumer_id, |w, id| {
                    w.engine().resume_consumer(id, Instant::now())
                })
                .await?,
            ),
            R::SetConsumerLayers {
                room_id,
                consumer_id,
                body,
            } => done(
                self.in_room(&room_id, Consumer, &consumer_id, move |w, id| {
                    w.engine().set_consumer_preferred_layers(
                        id,
                        body.spatial_layer,
                        body.temporal_layer,
                        Instant::now(),
                    )
                })
                .await?,
            ),
            R::CloseConsumer {
                room_id,
                consumer_id,
            } => done(
                self.in_room(&room_id, Consumer, &consumer_id, |w, id| {
                    w.close_consumer(id)
                })
                .await?,
            ),
        })
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
        self.on_room(room_id, move |w, room| w.remove_tap(room, &tap))
            .await
    }

    async fn request_tap_keyframe(&self, room_id: &str, tap_id: &str) -> SfuResult<()> {
        let tap = tap_id.to_owned();
        self.on_room(room_id, move |w, room| w.request_tap_keyframe(room, &tap))
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

impl SfuHandle {
    /// Runs `f` on the worker of `kind`/`id` after checking that the
    /// object is in `room_id`.
    async fn in_room<T, F>(&self, room_id: &str, kind: IdKind, id: &str, f: F) -> SfuResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Worker, &str) -> Result<T, EngineError> + Send + 'static,
    {
        let worker = self.worker_of(kind, id)?;
        let (room, id) = (room_id.to_owned(), id.to_owned());
        Ok(self
            .run_on_worker(worker, move |w| {
                w.check_router(kind, &id, &room)?;
                f(w, &id)
            })
            .await?)
    }

    /// Runs `f` on the worker of room `room_id` (given its id).
    async fn on_room<T, F>(&self, room_id: &str, f: F) -> SfuResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Worker, &str) -> Result<T, EngineError> + Send + 'static,
    {
        self.in_room(room_id, IdKind::Router, room_id, f).await
    }

    async fn control_health(&self) -> SfuHealth {
        let health = SfuHandle::health(self);
        let rooms = self.router_summaries().await.unwrap_or_default();
        let cpu_seconds = process_cpu_seconds();
        SfuHealth {
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
        }
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

    async fn router_summaries(&self) -> SfuResult<Vec<RouterSummary>> {
        let mut all = Vec::new();
        for worker in 0..self.workers() {
            let summaries = self.run_on_worker(worker, |w| Ok(w.engine().router_summaries()));
            all.extend(summaries.await?);
        }
        all.sort_by(|a, b| a.router_id.cmp(&b.router_id));
        Ok(all)
    }

    /// Opens the router of `room_id` unless it is open; its capabilities.
    async fn open_router(&self, room_id: &str) -> SfuResult<RtpCapabilities> {
        if room_id.is_empty() {
            return Err(EngineError::UnknownRouter(String::new()).into());
        }
        let capabilities =
            |room: String| move |w: &mut Worker| w.engine().router_rtp_capabilities(&room).cloned();
        let worker = match self.worker_of(IdKind::Router, room_id) {
            Ok(worker) => worker,
            Err(EngineError::UnknownRouter(_)) => match self.create_router(room_id).await {
                Ok(caps) => return Ok(caps),
                // Two callers raced to open it: the room is open either way.
                Err(EngineError::DuplicateId { .. }) => self.worker_of(IdKind::Router, room_id)?,
                Err(e) => return Err(e.into()),
            },
            Err(e) => return Err(e.into()),
        };
        Ok(self
            .run_on_worker(worker, capabilities(room_id.to_owned()))
            .await?)
    }

    async fn produce_in(&self, room_id: &str, body: Produce) -> SfuResult<ProducerInfo> {
        let id = new_id();
        let Produce {
            peer_id,
            transport_id,
            kind,
            rtp_parameters,
            app_data,
        } = body;
        // The web app tags its screen share `appData.source = "screen"`:
        // the engine gives it the screen-share bandwidth rules.
        let screen = app_data.get("source").and_then(Value::as_str) == Some("screen");
        self.in_room(room_id, IdKind::Transport, &transport_id, move |w, t| {
            w.check_owner(t, &peer_id)?;
            let info = w.produce(t, &id, kind, &rtp_parameters)?;
            if screen {
                w.engine().set_producer_screen(&id, true, Instant::now())?;
            }
            Ok(info)
        })
        .await
    }

    async fn consume_in(&self, room_id: &str, body: Consume) -> SfuResult<ConsumerInfo> {
        let id = new_id();
        let Consume {
            peer_id,
            transport_id,
            producer_id,
            rtp_capabilities,
        } = body;
        // The producer must be in this room too (and so on this worker).
        self.worker_of(IdKind::Producer, &producer_id)?;
        self.in_room(room_id, IdKind::Transport, &transport_id, move |w, t| {
            w.check_owner(t, &peer_id)?;
            let room = w
                .transport_router(t)
                .map(str::to_owned)
                .ok_or_else(|| EngineError::UnknownTransport(t.into()))?;
            w.check_router(IdKind::Producer, &producer_id, &room)?;
            w.consume(t, &id, &producer_id, &rtp_capabilities)
        })
        .await
    }
}
