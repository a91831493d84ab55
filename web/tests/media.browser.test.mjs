// The media requests of docs/protocol.md end to end: two Chromium pages use the public mediasoup-client
// and socket.io-client directly against VTP. Page A publishes its fake
// camera and microphone; page B consumes them and decodes video.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { pollUntil } from "./harness.mjs";
import { startMediaPages } from "./media-pages.mjs";

let env, vtp;
before(async () => {
  env = await startMediaPages();
  vtp = env.vtp;
});
after(async () => { await env?.stop(); });
const openPage = () => env.openPage();

test("a published camera and microphone reach another browser", { timeout: 60_000 }, async () => {
  const teacher = await vtp.user("cam-teacher@example.org", "instructor");
  const student = await vtp.user("cam-student@example.org");
  const roomId = await vtp.room(teacher.token);

  const a = await openPage();
  await a.evaluate(([base, token, room]) => window.vtp.start(base, token, room), [vtp.base, teacher.token, roomId]);
  await a.evaluate(() => window.vtp.publish());

  const b = await openPage();
  await b.evaluate(([base, token, room]) => window.vtp.start(base, token, room), [vtp.base, student.token, roomId]);
  const consumed = await b.evaluate(() => window.vtp.consumeAll());
  assert.equal(consumed, 2, "video and audio producers");

  let first = null;
  const inbound = async () => {
    const now = await b.evaluate(() => window.vtp.inbound());
    if (!first && now.audioBytes > 0) first = now;
    return now;
  };
  const last = await pollUntil(inbound, (s) => s.framesDecoded > 0 && first && s.audioBytes > first.audioBytes, { ms: 15_000, every: 250 });
  assert.ok(last.framesDecoded > 0, `video decoded: ${JSON.stringify(last)}`);
  assert.ok(first && last.audioBytes > first.audioBytes, `audio bytes growing: ${JSON.stringify({ first, last })}`);
});
