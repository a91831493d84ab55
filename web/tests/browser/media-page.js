// A bare test page: the public mediasoup-client and socket.io-client talking
// to VTP directly, driven by tests/media.browser.test.mjs through window.vtp.
import { io } from "socket.io-client";
import { Device } from "mediasoup-client";

function connectTransport(transport, req, roomId, id) {
  transport.on("connect", ({ dtlsParameters }, done, fail) => {
    req("connect-transport", { roomId, transportId: id, dtlsParameters }).then(() => done(), fail);
  });
}

window.vtp = {
  async start(base, token, roomId) {
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
    const join = await req("join-room", { roomId });
    const device = new Device();
    await device.load({ routerRtpCapabilities: join.routerRtpCapabilities });
    this.ctx = { socket, req, device, roomId };
    return join.peerId;
  },

  async publish() {
    const { req, device, roomId } = this.ctx;
    const params = await req("create-transport", { roomId, direction: "send" });
    const transport = device.createSendTransport(params);
    connectTransport(transport, req, roomId, params.id);
    transport.on("produce", ({ kind, rtpParameters, appData }, done, fail) => {
      req("produce", { roomId, transportId: params.id, kind, rtpParameters, appData }).then(({ id }) => done({ id }), fail);
    });
    const stream = await navigator.mediaDevices.getUserMedia({ audio: true, video: { width: 640, height: 360 } });
    await transport.produce({ track: stream.getVideoTracks()[0], appData: { source: "camera" } });
    await transport.produce({ track: stream.getAudioTracks()[0], appData: { source: "microphone" } });
    this.ctx.send = transport;
  },

  async consumeAll() {
    const { req, device, roomId } = this.ctx;
    const params = await req("create-transport", { roomId, direction: "recv" });
    const transport = device.createRecvTransport(params);
    connectTransport(transport, req, roomId, params.id);
    const info = await req("get-room-info", { roomId });
    for (const producer of info.producers) {
      const c = await req("consume", { roomId, transportId: params.id, producerId: producer.producerId, rtpCapabilities: device.rtpCapabilities });
      const consumer = await transport.consume({ id: c.id, producerId: c.producerId, kind: c.kind, rtpParameters: c.rtpParameters });
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
