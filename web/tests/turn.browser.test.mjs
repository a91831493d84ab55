// Media relayed through a real TURN server (Debian's coturn): two Chromium
// pages that may use relay candidates only (`iceTransportPolicy: "relay"`)
// publish and receive through VTP with the credentials VTP hands out in
// `create-transport`. coturn knows nothing of VTP but the shared secret,
// so a relayed call proves the credentials are the ones coturn derives.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { pollUntil } from "./harness.mjs";
import { startMediaPages } from "./media-pages.mjs";
import { startCoturn } from "./coturn.mjs";

const SECRET = "coturn-and-vtp-share-this";
let env, vtp, turn;
before(async () => {
  turn = await startCoturn(SECRET);
  env = await startMediaPages({
    vtpArgs: ["--turn-url", turn.urls.join(","), "--turn-secret", SECRET],
  });
  vtp = env.vtp;
});
after(async () => {
  await env?.stop();
  await turn?.stop();
});

test("camera and microphone flow through the TURN relay only", { timeout: 60_000 }, async () => {
  const teacher = await vtp.user("relay-teacher@example.org", "instructor");
  const student = await vtp.user("relay-student@example.org");
  const roomId = await vtp.room(teacher.token);

  const a = await env.openPage();
  await a.evaluate(([base, token, room]) => window.vtp.start(base, token, room, { relay: true }), [vtp.base, teacher.token, roomId]);
  await a.evaluate(() => window.vtp.publish());
  const b = await env.openPage();
  await b.evaluate(([base, token, room]) => window.vtp.start(base, token, room, { relay: true }), [vtp.base, student.token, roomId]);
  assert.equal(await b.evaluate(() => window.vtp.consumeAll()), 2);

  const flowing = (s) => s.framesDecoded > 0 && s.audioBytes > 0;
  const last = await pollUntil(() => b.evaluate(() => window.vtp.inbound()), flowing, { ms: 20_000, every: 250 });
  assert.ok(last.framesDecoded > 0 && last.audioBytes > 0, `media through the relay: ${JSON.stringify(last)}`);
  const sendPair = await a.evaluate(() => window.vtp.selectedPair("send"));
  const recvPair = await b.evaluate(() => window.vtp.selectedPair("recv"));
  assert.equal(sendPair?.local, "relay", `publisher's path: ${JSON.stringify(sendPair)}`);
  assert.equal(recvPair?.local, "relay", `viewer's path: ${JSON.stringify(recvPair)}`);
});

test("a credential VTP did not sign is refused by coturn", { timeout: 40_000 }, async () => {
  const teacher = await vtp.user("forger@example.org", "instructor");
  const roomId = await vtp.room(teacher.token);
  const page = await env.openPage();
  await page.evaluate(([base, token, room]) => window.vtp.start(base, token, room, { relay: true }), [vtp.base, teacher.token, roomId]);
  // The candidate types a bare RTCPeerConnection gathers through the relay
  // with VTP's credential, or with its password altered.
  const gather = (forge) =>
    page.evaluate(async ([urls, forge]) => {
      const params = await window.vtp.ctx.req("create-transport", { roomId: window.vtp.ctx.roomId, direction: "send" });
      const server = params.iceServers[0];
      const credential = forge ? server.credential.slice(0, -2) + "x=" : server.credential;
      const pc = new RTCPeerConnection({ iceServers: [{ urls, username: server.username, credential }], iceTransportPolicy: "relay" });
      pc.createDataChannel("probe");
      const types = [];
      pc.onicecandidate = (e) => { if (e.candidate) types.push(e.candidate.type); };
      await pc.setLocalDescription(await pc.createOffer());
      await new Promise((ok) => {
        if (pc.iceGatheringState === "complete") return ok();
        pc.onicegatheringstatechange = () => pc.iceGatheringState === "complete" && ok();
        setTimeout(ok, 15_000); // sleep-ok: a deadline (gathering normally completes at once)
      });
      pc.close();
      return types;
    }, [turn.urls, forge]);
  assert.ok((await gather(false)).includes("relay"), "VTP's credential allocates");
  assert.deepEqual(await gather(true), [], "no relay candidate with a forged credential");
});
