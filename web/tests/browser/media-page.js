// A bare test page: the public mediasoup-client and socket.io-client talking
// to VTP directly, driven by tests/media.browser.test.mjs through window.vtp.
import { io } from "socket.io-client";
import { Device } from "mediasoup-client";
// The web app's own reaction to `producer-layers-needed`.
import { applyLayersNeeded } from "../../src/media";

/** mediasoup-client's transport options from a `create-transport` answer:
 * its TURN relays, and `relay` policy when the test asked for it. */
function transportOptions(ctx, params) {
  return { ...params, iceServers: params.iceServers ?? [], iceTransportPolicy: ctx.relay ? "relay" : "all" };
}

function connectTransport(transport, req, roomId, id) {
  transport.on("connect", ({ dtlsParameters }, done, fail) => {
    req("connect-transport", { roomId, transportId: id, dtlsParameters }).then(() => done(), fail);
  });
}

window.vtp = {
  /** `relay`: media only through the TURN relays the server names. */
  async start(base, token, roomId, { relay = false } = {}) {
    const socket = io(base, { auth: { token }, transports: ["websocket"] });
    await new Promise((ok, fail) => {
      socket.once("connect", ok);
      socket.once("connect_error", fail);
    });
    const req = async (event, data) => {
      const answer = await socket.emitWithAck(event, data);
      if (!answer.ok) throw new Error(`${event}: ${answer.error.code}: ${answer.error.message}`);
      return answer.data;
    };
    // Every server notification, for tests that wait on one
    // (`consumer-layers-changed`, `active-speaker`).
    const events = [];
    socket.onAny((event, payload) => events.push({ event, payload }));
    const join = await req("join-room", { roomId });
    const device = new Device();
    await device.load({ routerRtpCapabilities: join.routerRtpCapabilities });
    this.ctx = { socket, req, device, roomId, events, consumers: new Map(), relay };
    return join.peerId;
  },

  /** `simulcast`: the camera captured at 1280×720 and sent as three VP8
   * encodings r0/r1/r2 (¼, ½ and full size), as a classroom camera would.
   * `encodings` and `capture` (`{ width, height }`) replace those encodings
   * and that size, for tests that set their own bitrates. */
  async publish({ simulcast = false, encodings, capture } = {}) {
    const { req, device, roomId } = this.ctx;
    const params = await req("create-transport", { roomId, direction: "send" });
    const transport = device.createSendTransport(transportOptions(this.ctx, params));
    connectTransport(transport, req, roomId, params.id);
    transport.on("produce", ({ kind, rtpParameters, appData }, done, fail) => {
      req("produce", { roomId, transportId: params.id, kind, rtpParameters, appData }).then(({ id }) => done({ id }), fail);
    });
    simulcast ||= encodings !== undefined;
    const video = capture ?? (simulcast ? { width: 1280, height: 720 } : { width: 640, height: 360 });
    const stream = await navigator.mediaDevices.getUserMedia({ audio: true, video });
    const options = { track: stream.getVideoTracks()[0], appData: { source: "camera" } };
    if (simulcast) {
      options.encodings = encodings ?? [
        { rid: "r0", scaleResolutionDownBy: 4, maxBitrate: 150_000 },
        { rid: "r1", scaleResolutionDownBy: 2, maxBitrate: 500_000 },
        { rid: "r2", scaleResolutionDownBy: 1, maxBitrate: 2_500_000 },
      ];
      options.codec = device.rtpCapabilities.codecs.find((c) => c.mimeType.toLowerCase() === "video/vp8");
    }
    const producer = await transport.produce(options);
    // As the web app does: encode only the layers some consumer may use.
    this.ctx.socket.on("producer-layers-needed", ({ producerId, maxSpatialLayer }) => {
      if (producerId === producer.id) void applyLayersNeeded(producer, maxSpatialLayer);
    });
    this.ctx.videoProducerId = producer.id;
    if (simulcast) {
      // A busy test machine makes Chromium shrink what it encodes; keeping
      // the resolution (and dropping frames instead) keeps the three layers
      // at distinct, known sizes.
      const params = producer.rtpSender.getParameters();
      params.degradationPreference = "maintain-resolution";
      await producer.rtpSender.setParameters(params).catch(() => {});
    }
    await transport.produce({ track: stream.getAudioTracks()[0], appData: { source: "microphone" } });
    this.ctx.send = transport;
  },

  /** The microphone alone, on a send transport of its own. */
  async publishAudio() {
    const { req, device, roomId } = this.ctx;
    const params = await req("create-transport", { roomId, direction: "send" });
    const transport = device.createSendTransport(transportOptions(this.ctx, params));
    connectTransport(transport, req, roomId, params.id);
    transport.on("produce", ({ kind, rtpParameters, appData }, done, fail) => {
      req("produce", { roomId, transportId: params.id, kind, rtpParameters, appData }).then(({ id }) => done({ id }), fail);
    });
    const stream = await navigator.mediaDevices.getUserMedia({ audio: true });
    const producer = await transport.produce({ track: stream.getAudioTracks()[0], appData: { source: "microphone" } });
    this.ctx.send = transport;
    return producer.id;
  },

  async pauseProducer(producerId) {
    const { req, roomId } = this.ctx;
    await req("pause-producer", { roomId, producerId });
  },

  async consumeAll() {
    const { req, device, roomId } = this.ctx;
    const params = await req("create-transport", { roomId, direction: "recv" });
    const transport = device.createRecvTransport(transportOptions(this.ctx, params));
    connectTransport(transport, req, roomId, params.id);
    const info = await req("get-room-info", { roomId });
    for (const producer of info.producers) {
      const c = await req("consume", { roomId, transportId: params.id, producerId: producer.producerId, rtpCapabilities: device.rtpCapabilities });
      const consumer = await transport.consume({ id: c.id, producerId: c.producerId, kind: c.kind, rtpParameters: c.rtpParameters });
      this.ctx.consumers.set(c.id, consumer);
      const element = document.createElement(c.kind);
      element.srcObject = new MediaStream([consumer.track]);
      element.muted = true;
      element.autoplay = true;
      document.body.append(element);
      await req("resume-consumer", { roomId, consumerId: c.id });
      element.play().catch(() => {});
    }
    this.ctx.recv = transport;
    return info.producers.length;
  },

  /** The id of our consumer of `kind` (the only one in these tests). */
  consumerId(kind) {
    for (const [id, c] of this.ctx.consumers) if (c.kind === kind) return id;
    return null;
  },

  async setPreferredLayers(consumerId, spatialLayer, temporalLayer) {
    const { req, roomId } = this.ctx;
    await req("set-preferred-layers", { roomId, consumerId, spatialLayer, ...(temporalLayer === undefined ? {} : { temporalLayer }) });
  },

  /** Payloads of the server notifications named `event` received so far. */
  received(event) {
    return this.ctx.events.filter((e) => e.event === event).map((e) => e.payload);
  },

  /** What one consumer decodes now: its inbound-rtp frame size and count. */
  async consumerVideo(consumerId) {
    const report = await this.ctx.consumers.get(consumerId).getStats();
    const out = { frameWidth: 0, frameHeight: 0, framesDecoded: 0 };
    report.forEach((s) => {
      if (s.type !== "inbound-rtp" || s.kind !== "video") return;
      out.frameWidth = s.frameWidth || 0;
      out.frameHeight = s.frameHeight || 0;
      out.framesDecoded = s.framesDecoded || 0;
    });
    return out;
  },

  /** The publisher's video encodings as Chromium sends them now, by rid. */
  async outboundVideo() {
    const report = await this.ctx.send.getStats();
    const out = {};
    report.forEach((s) => {
      if (s.type === "outbound-rtp" && s.kind === "video") {
        out[s.rid ?? "-"] = { frameWidth: s.frameWidth || 0, framesEncoded: s.framesEncoded || 0, bytesSent: s.bytesSent || 0, active: s.active !== false };
      }
    });
    return out;
  },

  /** The send transport's bandwidth estimate: the selected pair's
   * `availableOutgoingBitrate` (bit/s; 0 before there is one). */
  async availableOutgoingBitrate() {
    const report = await this.ctx.send.getStats();
    let pairId = null;
    report.forEach((s) => { if (s.type === "transport") pairId = s.selectedCandidatePairId; });
    return (pairId && report.get(pairId)?.availableOutgoingBitrate) || 0;
  },

  /** The candidate types of the pair a transport (`send` or `recv`) uses now. */
  async selectedPair(which) {
    const report = await this.ctx[which].getStats();
    const byId = new Map();
    report.forEach((s) => byId.set(s.id, s));
    for (const s of byId.values()) {
      if (s.type !== "transport" || !s.selectedCandidatePairId) continue;
      const pair = byId.get(s.selectedCandidatePairId);
      const local = byId.get(pair?.localCandidateId);
      const remote = byId.get(pair?.remoteCandidateId);
      return { local: local?.candidateType, localProtocol: local?.protocol, relayProtocol: local?.relayProtocol, remote: remote?.candidateType };
    }
    return null;
  },

  async inbound() {
    const out = { framesDecoded: 0, videoBytes: 0, audioBytes: 0, state: this.ctx.recv.connectionState };
    const report = await this.ctx.recv.getStats();
    report.forEach((s) => {
      if (s.type !== "inbound-rtp") return;
      if (s.kind === "video") {
        out.framesDecoded += s.framesDecoded || 0;
        out.videoBytes += s.bytesReceived || 0;
      } else {
        out.audioBytes += s.bytesReceived || 0;
      }
    });
    return out;
  },
};
