// Issue 6, simulcast end to end in real Chromium: a page publishes its fake
// camera as three VP8 encodings (r0/r1/r2 at ¼, ½ and full size); one
// consuming page asks `set-preferred-layers` for the lowest layer, another
// keeps the default (the best). Each decodes the layer the SFU gives it, as
// `getStats()` frame widths show, and hears `consumer-layers-changed`. The
// publisher stops the encodings nobody needs (`producer-layers-needed`) and
// starts them again when a consumer wants them.
//
// Sizes are compared with what the publisher's Chromium actually encodes
// (its outbound-rtp stats), not with fixed numbers: a busy machine or a low
// bandwidth estimate may make it send fewer or smaller layers.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { pollUntil } from "./harness.mjs";
import { startMediaPages } from "./media-pages.mjs";

let env;
before(async () => { env = await startMediaPages(); });
after(async () => { await env?.stop(); });

/** Polls `probe` until `done(value)` holds or `ms` pass; returns the last value. */
const until = (probe, done, ms = 60_000) => pollUntil(probe, done, { ms, every: 300 });

/** The encodings the publisher sends now (active ones), smallest first. */
function sending(outbound) {
  return Object.entries(outbound)
    .filter(([, o]) => o.active && o.frameWidth > 0)
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
  // (Nobody watches yet: the SFU may tell the publisher to send only r0
  // until the pages below join, so its layers are compared once they have.)

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

// Issue 6, the publisher's side: a publisher nobody watches, or whose only
// consumer wants the lowest layer, is told so (`producer-layers-needed`,
// after the SFU's hold) and stops encoding the upper encodings; when a
// consumer wants the best, they come back and it decodes the largest.
test("a publisher stops the encodings nobody needs and starts them again when needed", { timeout: 180_000 }, async () => {
  const { vtp } = env;
  const teacher = await vtp.user("need-teacher@example.org", "instructor");
  const student = await vtp.user("need-student@example.org");
  const roomId = await vtp.room(teacher.token);

  const a = await env.openPage();
  await a.evaluate(([base, token, room]) => window.vtp.start(base, token, room), [vtp.base, teacher.token, roomId]);
  await a.evaluate(() => window.vtp.publish({ simulcast: true }));
  const producerId = await a.evaluate(() => window.vtp.ctx.videoProducerId);
  const outbound = () => a.evaluate(() => window.vtp.outboundVideo());
  const told = () => a.evaluate(([id]) => window.vtp.received("producer-layers-needed").filter((e) => e.producerId === id), [producerId]);
  const last = (e) => e[e.length - 1]?.maxSpatialLayer;
  const upperOff = (o) => o.r1?.active === false && o.r2?.active === false;

  // Nobody watches: told 0, the upper encodings go inactive.
  const alone = await until(told, (e) => last(e) === 0);
  assert.deepEqual(alone.map((x) => x.maxSpatialLayer), [0], `told 0 once: ${JSON.stringify(alone)}`);
  const idle = await until(outbound, upperOff);
  assert.ok(upperOff(idle), `r1 and r2 inactive: ${JSON.stringify(idle)}`);

  // A consumer with the default preference (the best): told 2 at once, the
  // encodings come back and it decodes the largest.
  const b = await env.openPage();
  await b.evaluate(([base, token, room]) => window.vtp.start(base, token, room), [vtp.base, student.token, roomId]);
  assert.equal(await b.evaluate(() => window.vtp.consumeAll()), 2, "video and audio producers");
  const consumerId = await b.evaluate(() => window.vtp.consumerId("video"));
  const video = () => b.evaluate(([id]) => window.vtp.consumerVideo(id), [consumerId]);
  const state = async () => ({ out: sending(await outbound()), v: await video() });
  const largest = (s) => s.out.length >= 2 && s.v.framesDecoded > 0 && s.v.frameWidth === s.out[s.out.length - 1].width;
  const watched = await until(told, (e) => last(e) === 2, 10_000);
  assert.equal(last(watched), 2, `told 2 when watched: ${JSON.stringify(watched)}`);
  const best = await until(state, largest);
  assert.ok(largest(best), `the consumer decodes the largest encoding: ${JSON.stringify(best)}`);

  // Limited to layer 0: told 0 after the hold; r1 and r2 stop sending while
  // r0 carries on and the consumer keeps decoding it.
  await b.evaluate(([id]) => window.vtp.setPreferredLayers(id, 0), [consumerId]);
  const zero = await until(told, (e) => e.length > watched.length && last(e) === 0);
  assert.equal(last(zero), 0, `producer-layers-needed 0: ${JSON.stringify(zero)}`);
  const off = await until(outbound, upperOff);
  assert.ok(upperOff(off), `r1 and r2 inactive: ${JSON.stringify(off)}`);
  // r0 goes on and is the clock: while it encodes 30 frames, what was in
  // flight when r1 and r2 went inactive lands; while it encodes 60 more
  // (about two seconds), they would have sent too.
  const r0Past = (from, frames) => (o) => o.r0.framesEncoded >= from.r0.framesEncoded + frames;
  const settled = await until(outbound, r0Past(off, 30));
  assert.ok(r0Past(off, 30)(settled), `r0 keeps encoding: ${JSON.stringify({ off, settled })}`);
  const stopped = await outbound();
  const low = await video();
  const still = await until(outbound, r0Past(stopped, 60));
  const lowLater = await video();
  const report = JSON.stringify({ stopped, still, low, lowLater });
  assert.ok(r0Past(stopped, 60)(still), `r0 keeps encoding: ${report}`);
  assert.equal(still.r1.bytesSent, stopped.r1.bytesSent, `r1 sends nothing: ${report}`);
  assert.equal(still.r2.bytesSent, stopped.r2.bytesSent, `r2 sends nothing: ${report}`);
  assert.ok(still.r0.bytesSent > stopped.r0.bytesSent, `r0 keeps sending: ${report}`);
  assert.ok(lowLater.framesDecoded > low.framesDecoded, `the consumer keeps decoding: ${report}`);
  assert.equal(lowLater.frameWidth, still.r0.frameWidth, `on the low layer: ${report}`);

  // Back to the best: told 2 at once, the encodings come back and the
  // consumer decodes the largest one again.
  await b.evaluate(([id]) => window.vtp.setPreferredLayers(id, 2), [consumerId]);
  const two = await until(told, (e) => e.length > zero.length && last(e) === 2, 10_000);
  assert.equal(last(two), 2, `producer-layers-needed 2: ${JSON.stringify(two)}`);
  const back = await until(state, (s) => largest(s) && s.v.frameWidth > lowLater.frameWidth);
  const backReport = JSON.stringify({ back, lowLater });
  assert.ok(largest(back), `the consumer decodes the largest encoding again: ${backReport}`);
  assert.ok(back.v.frameWidth > lowLater.frameWidth, `wider than the low layer: ${backReport}`);
  const on = await outbound();
  assert.ok(on.r1.active && on.r2.active, `r1 and r2 active again: ${JSON.stringify(on)}`);
});
