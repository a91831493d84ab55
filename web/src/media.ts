// The media layer: one mediasoup-client Device, one send and one receive
// transport, our producers (by source) and our consumers (by producer id).
//
// When a transport fails we first restart ICE on it (new credentials; DTLS,
// producers and consumers carry on). When that is not possible (a server
// without `restart-ice` answers bad_request; one that forgot the transport,
// not_found) or the restarted transport fails again, we build a new one and
// move everything onto it: producers are produced again from the same
// tracks, consumers are consumed again.
//
// Our simulcast camera encodes only the layers the server says some consumer
// may use (`producer-layers-needed`, see `applyLayersNeeded`).
import { Device, type types } from "mediasoup-client";
import type { Signalling } from "./session";

export type Source = "mic" | "camera" | "screen";

/** `ProducerInfo` of docs/protocol.md. */
export interface ProducerInfo {
  producerId: string;
  peerId: string;
  kind: "audio" | "video";
  paused: boolean;
  appData: { source?: string } & Record<string, unknown>;
}

export interface RemoteMedia {
  info: ProducerInfo;
  consumer: types.Consumer;
  track: MediaStreamTrack;
  /** The spatial layer we last asked for (`set-preferred-layers`); absent: the server's default, the best. */
  preferredSpatial?: number;
  /** What the server says we receive now (`consumer-layers-changed`). */
  layers?: { spatialLayer: number; temporalLayer: number };
}

/**
 * The camera's simulcast encodings for a capture `height` pixels tall, as
 * Chromium would allow them (it sends three layers from 540 lines up, two
 * from 270, one below): each rid a quarter, half or the full size, so the
 * SFU can give a small tile the small layer (`set-preferred-layers` in docs/protocol.md).
 */
export function cameraEncodings(height: number): types.RtpEncodingParameters[] {
  if (height >= 540) {
    return [
      { rid: "r0", scaleResolutionDownBy: 4, maxBitrate: 150_000 },
      { rid: "r1", scaleResolutionDownBy: 2, maxBitrate: 500_000 },
      { rid: "r2", scaleResolutionDownBy: 1, maxBitrate: 1_500_000 },
    ];
  }
  if (height >= 270) {
    return [
      { rid: "r0", scaleResolutionDownBy: 2, maxBitrate: 200_000 },
      { rid: "r1", scaleResolutionDownBy: 1, maxBitrate: 800_000 },
    ];
  }
  return [{ maxBitrate: 500_000 }];
}

/** Each producer's `setMaxSpatialLayer` calls, in order (see `applyLayersNeeded`). */
const layerChains = new WeakMap<types.Producer, Promise<void>>();

/**
 * `producer-layers-needed { maxSpatialLayer }` for one of our producers: the
 * encodings above that layer stop (`encoding.active = false`, through
 * mediasoup-client's `setMaxSpatialLayer`), those up to it send. A producer
 * with one encoding (a screen share) or a value that is not a layer index
 * is left alone. Calls run one after the other, so the last one told wins
 * (mediasoup-client would skip a call that equals a value still being
 * applied).
 */
export function applyLayersNeeded(producer: types.Producer, maxSpatialLayer: number): Promise<void> {
  const count = producer.rtpParameters.encodings?.length ?? 1;
  if (producer.kind !== "video" || count < 2 || !Number.isInteger(maxSpatialLayer) || maxSpatialLayer < 0) {
    return Promise.resolve();
  }
  const layer = Math.min(maxSpatialLayer, count - 1);
  const next = (layerChains.get(producer) ?? Promise.resolve())
    .then(() => (producer.closed ? undefined : producer.setMaxSpatialLayer(layer)))
    .catch((err) => console.warn("setMaxSpatialLayer failed", producer.id, err));
  layerChains.set(producer, next);
  return next;
}

type TransportParams = {
  id: string;
  iceParameters: types.IceParameters;
  iceCandidates: types.IceCandidate[];
  dtlsParameters: types.DtlsParameters;
  /** TURN relays with this peer's credentials, when the server has some. */
  iceServers?: RTCIceServer[];
};

/**
 * `?relay=1` in the page's address sends all media through the TURN relays
 * (`iceTransportPolicy: "relay"`): a way to check that the relay works for
 * someone whose direct path does.
 */
export function relayOnly(): boolean {
  const value = new URLSearchParams(location.search).get("relay");
  return value === "1" || value === "true";
}

export class Media {
  readonly device = new Device();
  private send: types.Transport | null = null;
  private recv: types.Transport | null = null;
  private sendPending: Promise<types.Transport> | null = null;
  private recvPending: Promise<types.Transport> | null = null;
  readonly producers = new Map<Source, types.Producer>();
  /** Remote media by producer id. */
  readonly remote = new Map<string, RemoteMedia>();
  /** Producers we were told about, consumed or not (to consume again after a failure). */
  private known = new Map<string, ProducerInfo>();
  private closed = false;
  /** Transports whose ICE was restarted once: a second failure builds a new one. */
  private restarted = new WeakSet<types.Transport>();
  /** Consumes under way, by producer id. */
  private consuming = new Map<string, Promise<void>>();
  /** Transports that failed while the socket was down: rebuilt once we are back in the room. */
  private deferred = new Set<"send" | "recv">();

  onRemote: (media: RemoteMedia) => void = () => {};
  onRemoteGone: (producerId: string) => void = () => {};
  /** A transport failed and is being rebuilt (true), or is back (false). */
  onRebuilding: (rebuilding: boolean) => void = () => {};
  onError: (err: unknown) => void = () => {};

  constructor(
    private sig: Signalling,
    private roomId: string,
  ) {}

  async load(routerRtpCapabilities: types.RtpCapabilities): Promise<void> {
    if (!this.device.loaded) await this.device.load({ routerRtpCapabilities });
  }

  canProduce(kind: "audio" | "video"): boolean {
    return this.device.loaded && this.device.canProduce(kind);
  }

  private async createTransport(direction: "send" | "recv"): Promise<types.Transport> {
    const params = await this.sig.request<TransportParams>("create-transport", { roomId: this.roomId, direction });
    if (relayOnly() && !params.iceServers?.length) {
      throw new Error("this server offers no TURN relay, so ?relay=1 cannot work: open the room without it");
    }
    const options = {
      ...params,
      iceServers: params.iceServers ?? [],
      iceTransportPolicy: (relayOnly() ? "relay" : "all") as RTCIceTransportPolicy,
    };
    const transport =
      direction === "send" ? this.device.createSendTransport(options) : this.device.createRecvTransport(options);
    transport.on("connect", ({ dtlsParameters }, done, fail) => {
      this.sig
        .request("connect-transport", { roomId: this.roomId, transportId: transport.id, dtlsParameters })
        .then(() => done(), fail);
    });
    if (direction === "send") {
      transport.on("produce", ({ kind, rtpParameters, appData }, done, fail) => {
        this.sig
          .request<{ id: string }>("produce", { roomId: this.roomId, transportId: transport.id, kind, rtpParameters, appData })
          .then(({ id }) => done({ id }), fail);
      });
    }
    transport.on("connectionstatechange", (state) => {
      if (state === "failed" && !this.closed) void this.recover(direction, transport);
      if (state === "connected") this.onRebuilding(false);
    });
    return transport;
  }

  private sendTransport(): Promise<types.Transport> {
    if (this.send && !this.send.closed) return Promise.resolve(this.send);
    this.sendPending ??= this.createTransport("send")
      .then((t) => (this.send = t))
      .finally(() => (this.sendPending = null));
    return this.sendPending;
  }

  private recvTransport(): Promise<types.Transport> {
    if (this.recv && !this.recv.closed) return Promise.resolve(this.recv);
    this.recvPending ??= this.createTransport("recv")
      .then((t) => (this.recv = t))
      .finally(() => (this.recvPending = null));
    return this.recvPending;
  }

  /** Publishes a track as `source`, replacing the track of an existing producer. */
  async produce(source: Source, track: MediaStreamTrack): Promise<types.Producer> {
    const existing = this.producers.get(source);
    if (existing && !existing.closed) {
      await existing.replaceTrack({ track });
      return existing;
    }
    const transport = await this.sendTransport();
    let encodings: types.RtpEncodingParameters[] | undefined;
    let codec: types.RtpCodecCapability | undefined;
    if (source === "screen") {
      // Screens carry text: one high-bitrate layer at full size keeps it
      // readable; when bandwidth is short, fewer frames rather than blur.
      // VP8 with three temporal layers lets the SFU lower the frame rate
      // for a viewer on a slow link while everyone keeps the resolution.
      track.contentHint = "detail";
      encodings = [{ maxBitrate: 2_500_000, scalabilityMode: "L1T3" }];
      codec = this.device.rtpCapabilities.codecs?.find((c) => c.mimeType.toLowerCase() === "video/vp8");
    } else if (source === "camera") {
      encodings = cameraEncodings(track.getSettings().height ?? 0);
      // The SFU switches VP8 (and H.264) simulcast layers; VP9/AV1 would
      // stay on the first encoding, so a simulcast camera asks for VP8.
      if (encodings.length > 1) codec = this.device.rtpCapabilities.codecs?.find((c) => c.mimeType.toLowerCase() === "video/vp8");
    }
    const producer = await transport.produce({ track, appData: { source }, encodings, codec, stopTracks: false });
    if (source === "screen") {
      const params = producer.rtpSender?.getParameters();
      if (params) {
        params.degradationPreference = "maintain-resolution";
        await producer.rtpSender?.setParameters(params).catch(() => {}); // a hint only: browsers may refuse it
      }
    }
    this.producers.set(source, producer);
    return producer;
  }

  /** Stops publishing `source` (the server tells the others). */
  async stopProducing(source: Source): Promise<void> {
    const producer = this.producers.get(source);
    if (!producer) return;
    this.producers.delete(source);
    producer.close();
    await this.sig.request("close-producer", { roomId: this.roomId, producerId: producer.id }).catch(() => {});
  }

  /** Pauses or resumes our own producer here and on the server. */
  async setPaused(source: Source, paused: boolean): Promise<void> {
    const producer = this.producers.get(source);
    if (!producer) return;
    if (paused) producer.pause();
    else producer.resume();
    await this.sig.request(paused ? "pause-producer" : "resume-producer", { roomId: this.roomId, producerId: producer.id });
  }

  /**
   * Consumes a remote producer, then resumes it. Idempotent, also while a
   * consume of the same producer is under way (a `new-producer` can arrive
   * while the join's own list is being consumed): one consumer per producer.
   */
  consume(info: ProducerInfo): Promise<void> {
    this.known.set(info.producerId, info);
    if (this.remote.has(info.producerId)) return Promise.resolve();
    let pending = this.consuming.get(info.producerId);
    if (!pending) {
      pending = this.consumeNow(info).finally(() => this.consuming.delete(info.producerId));
      this.consuming.set(info.producerId, pending);
    }
    return pending;
  }

  private async consumeNow(info: ProducerInfo): Promise<void> {
    const transport = await this.recvTransport();
    const c = await this.sig.request<{ id: string; producerId: string; kind: "audio" | "video"; rtpParameters: types.RtpParameters }>(
      "consume",
      { roomId: this.roomId, transportId: transport.id, producerId: info.producerId, rtpCapabilities: this.device.rtpCapabilities },
    );
    if (!this.known.has(info.producerId)) {
      // Closed while we were asking: let the server forget it too.
      await this.sig.request("close-consumer", { roomId: this.roomId, consumerId: c.id }).catch(() => {});
      return;
    }
    const consumer = await transport.consume({ id: c.id, producerId: c.producerId, kind: c.kind, rtpParameters: c.rtpParameters });
    const media: RemoteMedia = { info, consumer, track: consumer.track };
    this.remote.set(info.producerId, media);
    this.onRemote(media);
    await this.sig.request("resume-consumer", { roomId: this.roomId, consumerId: c.id });
  }

  /**
   * Asks the server for at most `spatialLayer` of a remote video (only when
   * it differs from what we last asked: tiles resize often). A consumer of a
   * single-encoding producer just keeps its one layer.
   */
  async setPreferredSpatial(producerId: string, spatialLayer: number): Promise<void> {
    const media = this.remote.get(producerId);
    if (!media || media.consumer.kind !== "video" || media.preferredSpatial === spatialLayer) return;
    const before = media.preferredSpatial;
    media.preferredSpatial = spatialLayer;
    try {
      await this.sig.request("set-preferred-layers", { roomId: this.roomId, consumerId: media.consumer.id, spatialLayer });
    } catch (err) {
      if (media.preferredSpatial === spatialLayer) media.preferredSpatial = before; // so the next ask is sent
      throw err;
    }
  }

  /**
   * `producer-layers-needed`: our producer encodes only the simulcast layers
   * some consumer may use. Producers we no longer have are ignored.
   */
  layersNeeded(producerId: string, maxSpatialLayer: number): Promise<void> {
    const producer = [...this.producers.values()].find((p) => p.id === producerId && !p.closed);
    return producer ? applyLayersNeeded(producer, maxSpatialLayer) : Promise.resolve();
  }

  /**
   * Every encoding of our producers on again: after the socket was away, a
   * `producer-layers-needed` that asked for more may have been lost (the
   * server tells only changes), and sending too much is better than a
   * consumer stuck on a small layer.
   */
  allLayersAgain(): void {
    for (const producer of this.producers.values()) {
      if (!producer.closed) void applyLayersNeeded(producer, (producer.rtpParameters.encodings?.length ?? 1) - 1);
    }
  }

  /** `consumer-layers-changed`: records what one of our consumers receives now. */
  layersChanged(consumerId: string, layers: { spatialLayer: number; temporalLayer: number }): RemoteMedia | undefined {
    for (const media of this.remote.values()) {
      if (media.consumer.id === consumerId) {
        media.layers = layers;
        return media;
      }
    }
    return undefined;
  }

  /** The producer is gone (closed, or its owner left). */
  dropRemote(producerId: string): void {
    this.known.delete(producerId);
    const media = this.remote.get(producerId);
    if (!media) return;
    this.remote.delete(producerId);
    media.consumer.close();
    this.onRemoteGone(producerId);
  }

  /** The server closed one of our consumers. */
  dropConsumer(consumerId: string): void {
    for (const [producerId, media] of this.remote) {
      if (media.consumer.id === consumerId) this.dropRemote(producerId);
    }
  }

  /** Remote producers we hold that the server no longer lists. */
  forgetAllBut(live: Set<string>): void {
    for (const id of [...this.known.keys()]) if (!live.has(id)) this.dropRemote(id);
  }

  /** A failed transport: an ICE restart first, a new transport when that cannot help. */
  async recover(direction: "send" | "recv", transport: types.Transport): Promise<void> {
    if (this.closed || (transport !== this.send && transport !== this.recv)) return;
    if (!this.sig.socket.connected) {
      this.deferred.add(direction); // after the rejoin
      return;
    }
    if (this.restarted.has(transport)) return this.rebuild(direction, transport); // restarted once already
    this.restarted.add(transport);
    this.onRebuilding(true);
    try {
      const { iceParameters } = await this.sig.request<{ iceParameters: types.IceParameters }>("restart-ice", {
        roomId: this.roomId,
        transportId: transport.id,
      });
      await transport.restartIce({ iceParameters });
    } catch {
      await this.rebuild(direction, transport);
    }
  }

  /**
   * After a transport failed (or the server forgot our transports because we
   * were away past the grace period): new transports, everything moved onto them.
   */
  async rebuild(which: "send" | "recv" | "both", failed?: types.Transport): Promise<void> {
    if (this.closed) return;
    if (failed && failed !== this.send && failed !== this.recv) return; // already replaced
    if (!this.sig.socket.connected && which !== "both") {
      // Requests now would reach the server before we are back in the room.
      this.deferred.add(which);
      return;
    }
    if (which === "both") this.deferred.clear();
    this.onRebuilding(true);
    try {
      if (which !== "recv") {
        const tracks = [...this.producers].map(([source, p]) => ({ source, track: p.track, paused: p.paused }));
        for (const [, p] of this.producers) {
          p.close();
          await this.sig.request("close-producer", { roomId: this.roomId, producerId: p.id }).catch(() => {});
        }
        this.producers.clear();
        this.send?.close();
        this.send = null;
        for (const { source, track, paused } of tracks) {
          if (!track || track.readyState === "ended") continue;
          try {
            await this.produce(source, track);
            if (paused) await this.setPaused(source, true);
          } catch (err) {
            this.onError(err);
          }
        }
      }
      if (which !== "send") {
        const infos = [...this.known.values()];
        for (const id of [...this.remote.keys()]) {
          const media = this.remote.get(id);
          media?.consumer.close();
          this.remote.delete(id);
          this.onRemoteGone(id);
        }
        this.recv?.close();
        this.recv = null;
        for (const info of infos) {
          // One producer gone meanwhile must not keep the others away.
          await this.consume(info).catch((err) => console.warn("consume after rebuild failed", info.producerId, err));
        }
      }
      this.onRebuilding(false);
    } catch (err) {
      this.onError(err);
    }
  }

  /** After a rejoin that kept our place: rebuild what failed while we were away. */
  async rebuildDeferred(): Promise<void> {
    const which = [...this.deferred];
    this.deferred.clear();
    if (which.length === 2) await this.rebuild("both");
    else if (which.length === 1) {
      const transport = which[0] === "send" ? this.send : this.recv;
      if (transport) await this.recover(which[0], transport);
      else await this.rebuild(which[0]);
    }
  }

  /** Inbound statistics of every consumer, or of one kind (what the tests and the speaker detector read). */
  async inboundStats(kind?: "audio" | "video"): Promise<
    { producerId: string; peerId: string; kind: string; source: string; framesDecoded: number; bytesReceived: number; audioLevel: number; paused: boolean }[]
  > {
    const out = [];
    for (const [producerId, m] of this.remote) {
      if (kind && m.consumer.kind !== kind) continue;
      let framesDecoded = 0,
        bytesReceived = 0,
        audioLevel = 0;
      try {
        const report = await m.consumer.getStats();
        report.forEach((s) => {
          if (s.type !== "inbound-rtp") return;
          framesDecoded += s.framesDecoded ?? 0;
          bytesReceived += s.bytesReceived ?? 0;
          audioLevel = Math.max(audioLevel, s.audioLevel ?? 0);
        });
      } catch {
        // A consumer closing under us: no numbers this time.
      }
      out.push({
        producerId,
        peerId: m.info.peerId,
        kind: m.consumer.kind,
        source: String(m.info.appData?.source ?? ""),
        framesDecoded,
        bytesReceived,
        audioLevel,
        paused: m.consumer.paused || m.info.paused,
      });
    }
    return out;
  }

  /** Our microphone's level (0–1), from the sender's media-source stats. */
  async localAudioLevel(): Promise<number> {
    const mic = this.producers.get("mic");
    if (!mic || mic.paused || mic.closed) return 0;
    let level = 0;
    try {
      (await mic.getStats()).forEach((s) => {
        if (s.type === "media-source" && typeof s.audioLevel === "number") level = Math.max(level, s.audioLevel);
      });
    } catch {
      return 0;
    }
    return level;
  }

  close(): void {
    this.closed = true;
    for (const p of this.producers.values()) p.close();
    for (const m of this.remote.values()) m.consumer.close();
    this.send?.close();
    this.recv?.close();
    this.producers.clear();
    this.remote.clear();
    this.known.clear();
  }
}
