// Issue 6, active speaker end to end in real Chromium: the SFU reads the
// `ssrc-audio-level` header extension Chromium writes on each microphone's
// packets and tells the room who speaks (`active-speaker`).
//
// One page's fake microphone plays a speech-like WAV file (voiced syllables
// with pauses); the other keeps Chromium's own fake microphone, a tone twice
// a second that fades out (about -55 dBov on average): quieter than a voice.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pollUntil } from "./harness.mjs";
import { startMediaPages } from "./media-pages.mjs";

let env, dir, speech;
before(async () => {
  dir = mkdtempSync(join(tmpdir(), "vtp-speech-"));
  speech = join(dir, "speech.wav");
  writeFileSync(speech, speechLikeWav(8));
  env = await startMediaPages();
});
after(async () => {
  await env?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** `seconds` of 48 kHz mono 16-bit PCM: a 150 Hz voice with harmonics,
 * in syllables of 180 ms with 120 ms pauses, peaking at half full scale. */
function speechLikeWav(seconds) {
  const rate = 48_000;
  const samples = rate * seconds;
  const data = Buffer.alloc(samples * 2);
  for (let i = 0; i < samples; i++) {
    const t = i / rate;
    const inSyllable = (t % 0.3) < 0.18;
    const envelope = inSyllable ? Math.sin((Math.PI * (t % 0.3)) / 0.18) : 0;
    let v = 0;
    for (let h = 1; h <= 6; h++) v += Math.sin(2 * Math.PI * 150 * h * t) / h;
    data.writeInt16LE(Math.round(0.5 * envelope * (v / 2.45) * 32767), i * 2);
  }
  const header = Buffer.alloc(44);
  header.write("RIFF", 0);
  header.writeUInt32LE(36 + data.length, 4);
  header.write("WAVEfmt ", 8);
  header.writeUInt32LE(16, 16);
  header.writeUInt16LE(1, 20); // PCM
  header.writeUInt16LE(1, 22); // mono
  header.writeUInt32LE(rate, 24);
  header.writeUInt32LE(rate * 2, 28);
  header.writeUInt16LE(2, 32);
  header.writeUInt16LE(16, 34);
  header.write("data", 36);
  header.writeUInt32LE(data.length, 40);
  return Buffer.concat([header, data]);
}

/** Polls `probe` until `done(value)` holds or `ms` pass; returns the last value. */
const until = (probe, done, ms = 30_000) => pollUntil(probe, done, { ms, every: 300 });

async function joined(user, roomId, options) {
  const page = await env.openPage(options);
  const peerId = await page.evaluate(([base, token, room]) => window.vtp.start(base, token, room), [env.vtp.base, user.token, roomId]);
  return { page, peerId, speakers: () => page.evaluate(() => window.vtp.received("active-speaker")) };
}

test("the louder microphone becomes the active speaker, and the other takes over when it pauses", { timeout: 120_000 }, async () => {
  const { vtp } = env;
  const teacher = await vtp.user("speak-teacher@example.org", "instructor");
  const student = await vtp.user("speak-student@example.org");
  const roomId = await vtp.room(teacher.token);

  // Chromium's own fake microphone (a fading tone twice a second) is heard.
  const beeper = await joined(teacher, roomId);
  const beeperProducer = await beeper.page.evaluate(() => window.vtp.publishAudio());
  const first = await until(beeper.speakers, (e) => e.length > 0);
  assert.equal(first[0]?.peerId, beeper.peerId, `the only sound leads: ${JSON.stringify(first)}`);
  assert.equal(first[0].producerId, beeperProducer);
  assert.ok(Number.isInteger(first[0].volume) && first[0].volume <= 0 && first[0].volume >= -60, `a level in dBov: ${JSON.stringify(first[0])}`);

  // A louder voice (syllables with pauses) takes over, everyone is told.
  const speaker = await joined(student, roomId, { audioFile: speech });
  const producerId = await speaker.page.evaluate(() => window.vtp.publishAudio());
  const heard = await until(beeper.speakers, (e) => e.length > 1);
  assert.equal(heard[1]?.peerId, speaker.peerId, `the louder peer: ${JSON.stringify(heard)}`);
  assert.equal(heard[1].producerId, producerId);
  assert.ok(heard[1].volume > heard[0].volume, `louder than the beeps: ${JSON.stringify(heard)}`);
  const own = await until(speaker.speakers, (e) => e.some((x) => x.peerId === speaker.peerId));
  assert.ok(own.some((x) => x.peerId === speaker.peerId), "the speaker is told too");

  // Talking on changes nothing (for two seconds of it); a paused
  // microphone hands the turn back.
  const during = await until(beeper.speakers, (e) => e.length !== 2, 2000);
  assert.equal(during.length, 2, `no change while the louder one talks: ${JSON.stringify(during)}`);
  await speaker.page.evaluate(([id]) => window.vtp.pauseProducer(id), [producerId]);
  const back = await until(beeper.speakers, (e) => e.length > 2);
  assert.equal(back[2]?.peerId, beeper.peerId, `the beeper again: ${JSON.stringify(back)}`);
});

test("a microphone produced after the camera on the same transport still carries its audio level", { timeout: 120_000 }, async () => {
  const { vtp } = env;
  const teacher = await vtp.user("speak-cam-teacher@example.org", "instructor");
  const student = await vtp.user("speak-cam-student@example.org");
  const roomId = await vtp.room(teacher.token);

  // The teacher opens the class (students cannot start a session alone).
  const speaker = await joined(teacher, roomId, { audioFile: speech });
  const listener = await joined(student, roomId);
  // Camera first, then the microphone, on one send transport.
  await speaker.page.evaluate(() => window.vtp.publish());
  const heard = await until(listener.speakers, (e) => e.length > 0);
  assert.equal(heard[0]?.peerId, speaker.peerId, `active-speaker names the teacher: ${JSON.stringify(heard)}`);
});
