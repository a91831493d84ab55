// The pre-class connectivity check: a throw-away send transport to the SFU
// (`check-connectivity`, see docs/protocol.md) carrying a small generated
// video, so a student learns before the class — in words — whether audio
// and video can flow from this network, and by which path: directly over
// UDP, over TCP (UDP blocked), or through the relay (only HTTPS allowed).
// It needs no camera or microphone permission.
import { Device, types } from "mediasoup-client";
import type { Api } from "./api";
import { alertBox, button, h, replace } from "./dom";
import { describe } from "./errors";
import { relayOnly } from "./media";
import { Signalling } from "./session";

export type Path = "udp" | "tcp" | "relay" | "none";

export type CheckResult = { path: Path; relayProtocol?: string; ms: number };

/** How long the browser may take to connect before the check says "no". */
const CONNECT_DEADLINE_MS = 15_000;
/** Looks at the selected path after connecting (every 250 ms: 3 s). */
const SETTLE_SAMPLES = 12;

type ProbeAnswer = {
  routerRtpCapabilities: types.RtpCapabilities;
  transport: {
    id: string;
    iceParameters: types.IceParameters;
    iceCandidates: types.IceCandidate[];
    dtlsParameters: types.DtlsParameters;
    iceServers?: RTCIceServer[];
  };
};

/** What the check found, for a student. */
export function explain(result: CheckResult): string {
  switch (result.path) {
    case "udp":
      return "Your connection is ready: audio and video reach the class directly.";
    case "tcp":
      return "Audio and video can reach the class over TCP (this network blocks UDP). Expect a little more delay.";
    case "relay":
      return "Audio and video can reach the class through the relay server (this network lets little through). Expect more delay.";
    case "none":
      return "Audio and video cannot reach the class from this network. Try another network (a phone's hotspot), or ask your school's IT to allow this site's media ports.";
  }
}

/** A small moving picture: media to send without asking for the camera. */
function generatedTrack(): { track: MediaStreamTrack; stop(): void } {
  const canvas = document.createElement("canvas");
  canvas.width = 160;
  canvas.height = 90;
  const ctx = canvas.getContext("2d");
  let frame = 0;
  const draw = () => {
    if (!ctx) return;
    ctx.fillStyle = `hsl(${(frame++ * 7) % 360} 60% 50%)`;
    ctx.fillRect(0, 0, canvas.width, canvas.height);
  };
  draw();
  const timer = setInterval(draw, 100);
  const stream = canvas.captureStream(10);
  const track = stream.getVideoTracks()[0];
  return { track, stop: () => { clearInterval(timer); track.stop(); } };
}

/** The candidate pair the transport uses now, as a path. */
async function selectedPath(transport: types.Transport): Promise<{ path: Path; relayProtocol?: string }> {
  const stats = await transport.getStats();
  const byId = new Map<string, Record<string, unknown>>();
  stats.forEach((s: Record<string, unknown>) => byId.set(s.id as string, s));
  for (const s of byId.values()) {
    if (s.type !== "transport" || !s.selectedCandidatePairId) continue;
    const pair = byId.get(s.selectedCandidatePairId as string);
    const local = byId.get(pair?.localCandidateId as string);
    if (!local) break;
    if (local.candidateType === "relay") return { path: "relay", relayProtocol: local.relayProtocol as string | undefined };
    return { path: local.protocol === "tcp" ? "tcp" : "udp" };
  }
  return { path: "none" };
}

/** Runs one check over its own signalling connection. */
export async function checkConnectivity(api: Api): Promise<CheckResult> {
  const started = performance.now();
  const sig = new Signalling(api);
  const generated = generatedTrack();
  let transport: types.Transport | null = null;
  try {
    await sig.connected();
    const answer = await sig.request<ProbeAnswer>("check-connectivity", {});
    const device = new Device();
    await device.load({ routerRtpCapabilities: answer.routerRtpCapabilities });
    const t = device.createSendTransport({
      ...answer.transport,
      iceServers: answer.transport.iceServers ?? [],
      iceTransportPolicy: relayOnly() ? "relay" : "all",
    });
    transport = t;
    t.on("connect", ({ dtlsParameters }, done, fail) => {
      sig.request("check-connectivity-connect", { transportId: t.id, dtlsParameters }).then(() => done(), fail);
    });
    t.on("produce", ({ kind, rtpParameters }, done, fail) => {
      sig.request<{ id: string }>("check-connectivity-produce", { transportId: t.id, kind, rtpParameters }).then(({ id }) => done({ id }), fail);
    });
    const connected = new Promise<boolean>((ok) => {
      const timer = setTimeout(() => ok(false), CONNECT_DEADLINE_MS);
      t.on("connectionstatechange", (state) => {
        if (state === "connected") { clearTimeout(timer); ok(true); }
        if (state === "failed") { clearTimeout(timer); ok(false); }
      });
    });
    await t.produce({ track: generated.track, encodings: [{ maxBitrate: 100_000 }] });
    if (!(await connected)) return { path: "none", ms: performance.now() - started };
    const ms = performance.now() - started;
    // The first pair to work is not always the one ICE settles on (a relay
    // can answer before ICE-TCP does): watch briefly, keep the best seen.
    const rank: Record<Path, number> = { udp: 3, tcp: 2, relay: 1, none: 0 };
    let best = await selectedPath(t);
    for (let i = 0; i < SETTLE_SAMPLES && best.path !== "udp"; i++) {
      await new Promise((r) => setTimeout(r, 250));
      const now = await selectedPath(t);
      if (rank[now.path] > rank[best.path]) best = now;
    }
    return { ...best, ms };
  } finally {
    generated.stop();
    transport?.close();
    await sig.request("check-connectivity-end", {}).catch(() => {});
    sig.close();
  }
}

/** The lobby's card: a button, then the answer in words. */
export function connectivityCard(api: Api): HTMLElement {
  const result = h("p", { class: "connectivity-result", role: "status", "aria-live": "polite" });
  const problem = alertBox();
  const run = button("Check my connection", async () => {
    run.disabled = true;
    problem.clear();
    replace(result, "Checking… (up to 15 seconds)");
    try {
      const found = await checkConnectivity(api);
      result.dataset.path = found.path;
      replace(result, explain(found));
    } catch (err) {
      replace(result);
      problem.show(describe(err));
    } finally {
      run.disabled = false;
    }
  });
  return h(
    "section",
    { class: "card connectivity", "aria-label": "Connection check" },
    h("h2", {}, "Before class"),
    h("p", { class: "muted" }, "Check that audio and video can reach the class from this network. It uses no camera or microphone."),
    problem,
    h("div", { class: "row" }, run),
    result,
  );
}
