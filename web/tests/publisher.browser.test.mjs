// Issue 15, the publisher's side of simulcast: a Chromium publisher with the
// public mediasoup-client sends every encoding it was given when the link
// allows, within seconds. Three VP8 encodings summing to 1.3 Mbit/s from a
// 1280×720 camera: within 10 s all three rids are sending (their bytes
// rising), the publisher's own bandwidth estimate (the nominated pair's
// `availableOutgoingBitrate`) is above their sum, and a viewer at the
// default layers decodes the top encoding's width.
//
// The estimate is Chromium's GoogCC, fed by the TWCC feedback the SFU sends;
// it is only as good as the arrival times in it (the driver reads them from
// the kernel, `sfu-driver::rxtime`). A 640×480 camera would not do here:
// Chromium itself sends at most two simulcast layers below 960×540
// ("Reducing simulcast layer count from 3 to 2" in its log), whatever the
// bandwidth.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startMediaPages } from "./media-pages.mjs";
import { pollUntil } from "./harness.mjs";

let env;
before(async () => { env = await startMediaPages(); });
after(async () => { await env?.stop(); });

const CAPTURE = { width: 1280, height: 720 };
const ENCODINGS = [
  { rid: "r0", scaleResolutionDownBy: 4, maxBitrate: 100_000 },
  { rid: "r1", scaleResolutionDownBy: 2, maxBitrate: 300_000 },
  { rid: "r2", scaleResolutionDownBy: 1, maxBitrate: 900_000 },
];
const SUM = ENCODINGS.reduce((s, e) => s + e.maxBitrate, 0);

/** Polls `probe` until `done(value)` holds or `ms` pass; the last value. */
const until = (probe, done, ms) => pollUntil(probe, done, { ms, every: 200 });

test("a publisher whose encodings need 1.3 Mbit/s sends all three within 10 s, and a viewer decodes the top one", { timeout: 120_000 }, async () => {
  const { vtp } = env;
  const teacher = await vtp.user("pub-teacher@example.org", "instructor");
  const student = await vtp.user("pub-student@example.org");
  const roomId = await vtp.room(teacher.token);

  const a = await env.openPage();
  await a.evaluate(([base, token, room]) => window.vtp.start(base, token, room), [vtp.base, teacher.token, roomId]);
  const b = await env.openPage();
  await b.evaluate(([base, token, room]) => window.vtp.start(base, token, room), [vtp.base, student.token, roomId]);

  await a.evaluate(([encodings, capture]) => window.vtp.publish({ encodings, capture }), [ENCODINGS, CAPTURE]);
  const published = Date.now();
  // The viewer at the default layers (the best) from the start, so the SFU
  // never tells the publisher to drop a layer (`producer-layers-needed`).
  assert.equal(await b.evaluate(() => window.vtp.consumeAll()), 2, "video and audio producers");
  const consumerId = await b.evaluate(() => window.vtp.consumerId("video"));

  const publisher = async () => ({
    out: await a.evaluate(() => window.vtp.outboundVideo()),
    estimate: await a.evaluate(() => window.vtp.availableOutgoingBitrate()),
    at: Date.now(),
  });
  const first = await publisher();
  // Every rid sending (bytes rising since the first look) and the estimate
  // above what the three need together.
  const rising = (s) => ["r0", "r1", "r2"].every((rid) => (s.out[rid]?.bytesSent ?? 0) > (first.out[rid]?.bytesSent ?? 0));
  const sending = await until(publisher, (s) => rising(s) && s.estimate > SUM, 10_000 - (Date.now() - published));
  const report = JSON.stringify({ first, sending, afterMs: sending.at - published });
  assert.ok(rising(sending), `all three rids send within 10 s: ${report}`);
  assert.ok(sending.estimate > SUM, `availableOutgoingBitrate above ${SUM}: ${report}`);
  // And they keep sending.
  const later = await until(publisher, (s) => ["r0", "r1", "r2"].every((rid) => s.out[rid].bytesSent > sending.out[rid].bytesSent), 5_000);
  for (const rid of ["r0", "r1", "r2"]) {
    assert.ok(later.out[rid].bytesSent > sending.out[rid].bytesSent, `${rid} keeps sending: ${JSON.stringify({ sending, later })}`);
  }
  assert.equal(later.out.r2.frameWidth, CAPTURE.width, `r2 is the full size: ${JSON.stringify(later)}`);

  // The viewer decodes the top encoding's width.
  const video = await until(
    () => b.evaluate(([id]) => window.vtp.consumerVideo(id), [consumerId]),
    (v) => v.framesDecoded > 0 && v.frameWidth === CAPTURE.width,
    20_000,
  );
  assert.equal(video.frameWidth, CAPTURE.width, `the viewer decodes the top layer: ${JSON.stringify(video)}`);
});
