// Issue 6, simulcast end to end in real Chromium: a page publishes its fake
// camera as three VP8 encodings (r0/r1/r2 at ¼, ½ and full size); one
// consuming page asks `set-preferred-layers` for the lowest layer, another
// keeps the default (the best). Each decodes the layer the SFU gives it, as
// `getStats()` frame widths show, and hears `consumer-layers-changed`.
//
// Sizes are compared with what the publisher's Chromium actually encodes
// (its outbound-rtp stats), not with fixed numbers: a busy machine or a low
// bandwidth estimate may make it send fewer or smaller layers.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { sleep } from "./harness.mjs";
import { startMediaPages } from "./media-pages.mjs";

let env;
before(async () => { env = await startMediaPages(); });
after(async () => { await env?.stop(); });

/** Polls `probe` until `done(value)` holds or `ms` pass; returns the last value. */
async function until(probe, done, ms = 60_000) {
  const deadline = Date.now() + ms;
  let value = await probe();
  while (!done(value) && Date.now() < deadline) {
    await sleep(300);
    value = await probe();
  }
  return value;
}

/** The encodings the publisher sends now, smallest first. */
function sending(outbound) {
  return Object.entries(outbound)
    .filter(([, o]) => o.frameWidth > 0)
    .map(([rid, o]) => ({ rid, width: o.frameWidth }))
    .sort((a, b) => a.width - b.width);
}

test("a consumer limited to the low layer decodes it, another the high one, and the limited one rises when allowed", { timeout: 180_000 }, async () => {
  const { vtp } = env;
  const teacher = await vtp.user("sim-teacher@example.org", "instructor");
  const low = await vtp.user("sim-low@example.org");
  const high = await vtp.user("sim-high@example.org");
  const roomId = await vtp.room(teacher.token);

  const a = await env.openPage();
  await a.evaluate(([base, token, room]) => window.vtp.start(base, token, room), [vtp.base, teacher.token, roomId]);
  await a.evaluate(() => window.vtp.publish({ simulcast: true }));
  // Chromium turns its encodings on as its bandwidth estimate grows.
  const outbound = await until(() => a.evaluate(() => window.vtp.outboundVideo()), (o) => sending(o).length >= 2);
  assert.ok(sending(outbound).length >= 2, `publisher sends at least two simulcast layers: ${JSON.stringify(outbound)}`);

  const join = async (user) => {
    const page = await env.openPage();
    await page.evaluate(([base, token, room]) => window.vtp.start(base, token, room), [vtp.base, user.token, roomId]);
    assert.equal(await page.evaluate(() => window.vtp.consumeAll()), 2, "video and audio producers");
    return { page, consumerId: await page.evaluate(() => window.vtp.consumerId("video")) };
  };
  const l = await join(low);
  await l.page.evaluate(([id]) => window.vtp.setPreferredLayers(id, 0), [l.consumerId]);
  const h = await join(high);

  const video = (p) => p.page.evaluate(([id]) => window.vtp.consumerVideo(id), [p.consumerId]);
  const layers = (p) => p.page.evaluate(([id]) => window.vtp.received("consumer-layers-changed").filter((e) => e.consumerId === id), [p.consumerId]);
  const state = async () => ({ out: sending(await a.evaluate(() => window.vtp.outboundVideo())), low: await video(l), high: await video(h) });

  // The limited page decodes the smallest encoding, the other the largest.
  const settled = await until(state, (s) =>
    s.out.length >= 2 && s.low.framesDecoded > 0 && s.high.framesDecoded > 0 &&
    s.low.frameWidth === s.out[0].width && s.high.frameWidth === s.out[s.out.length - 1].width);
  const report = JSON.stringify(settled);
  assert.ok(settled.low.framesDecoded > 0 && settled.high.framesDecoded > 0, `both decode video: ${report}`);
  assert.equal(settled.low.frameWidth, settled.out[0].width, `the limited page gets the low layer: ${report}`);
  assert.equal(settled.high.frameWidth, settled.out[settled.out.length - 1].width, `the other page gets the high layer: ${report}`);
  assert.ok(settled.low.frameWidth < settled.high.frameWidth, `the low layer is smaller: ${report}`);

  // The limited page keeps decoding the low layer.
  const later = await until(() => video(l), (v) => v.framesDecoded > settled.low.framesDecoded);
  assert.ok(later.framesDecoded > settled.low.framesDecoded, `the low layer keeps decoding: ${JSON.stringify(later)}`);

  // Each owner was told which layers its consumer receives.
  const lowLayers = await until(() => layers(l), (e) => e.some((x) => x.spatialLayer === 0));
  assert.ok(lowLayers.some((x) => x.spatialLayer === 0), `consumer-layers-changed to spatial 0: ${JSON.stringify(lowLayers)}`);
  const highLayers = await until(() => layers(h), (e) => e.some((x) => x.spatialLayer > 0));
  assert.ok(highLayers.some((x) => x.spatialLayer > 0), `consumer-layers-changed above spatial 0: ${JSON.stringify(highLayers)}`);
  for (const e of [...lowLayers, ...highLayers]) {
    assert.ok(Number.isInteger(e.spatialLayer) && Number.isInteger(e.temporalLayer), `layers are numbers: ${JSON.stringify(e)}`);
  }

  // Allowed the best, the limited page rises to the largest encoding.
  await l.page.evaluate(([id]) => window.vtp.setPreferredLayers(id, 2), [l.consumerId]);
  const risen = await until(state, (s) => s.out.length >= 2 && s.low.frameWidth === s.out[s.out.length - 1].width && s.low.frameWidth > settled.low.frameWidth);
  assert.ok(risen.low.frameWidth > settled.low.frameWidth, `the frame width rose: ${JSON.stringify({ settled, risen })}`);
  const rose = await until(() => layers(l), (e) => e.length > 0 && e[e.length - 1].spatialLayer > 0);
  assert.ok(rose[rose.length - 1].spatialLayer > 0, `consumer-layers-changed above spatial 0: ${JSON.stringify(rose)}`);
  const after = await until(() => video(l), (v) => v.framesDecoded > risen.low.framesDecoded);
  assert.ok(after.framesDecoded > risen.low.framesDecoded, `the high layer keeps decoding: ${JSON.stringify(after)}`);
});

test("set-preferred-layers refuses a layer out of range and changes nothing", { timeout: 90_000 }, async () => {
  const { vtp } = env;
  const teacher = await vtp.user("sim-bad-teacher@example.org", "instructor");
  const student = await vtp.user("sim-bad-student@example.org");
  const roomId = await vtp.room(teacher.token);
  const a = await env.openPage();
  await a.evaluate(([base, token, room]) => window.vtp.start(base, token, room), [vtp.base, teacher.token, roomId]);
  await a.evaluate(() => window.vtp.publish({ simulcast: true }));
  const b = await env.openPage();
  await b.evaluate(([base, token, room]) => window.vtp.start(base, token, room), [vtp.base, student.token, roomId]);
  await b.evaluate(() => window.vtp.consumeAll());
  const id = await b.evaluate(() => window.vtp.consumerId("video"));
  const error = await b.evaluate(([id]) => window.vtp.setPreferredLayers(id, 7).then(() => null, (e) => e.message), [id]);
  assert.match(error ?? "", /bad_request/, "spatial layer 7 is refused");
  const v = await until(() => b.evaluate(([id]) => window.vtp.consumerVideo(id), [id]), (v) => v.framesDecoded > 0);
  assert.ok(v.framesDecoded > 0, `the consumer still decodes: ${JSON.stringify(v)}`);
});
