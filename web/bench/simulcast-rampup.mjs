// Figures for docs/benchmarks.md (a benchmark, not a test): how long a
// viewer who joins waits for a simulcast camera's top layer. A Chromium
// teacher publishes a 1280×720 fake camera as three VP8 encodings (100,
// 300 and 900 kbit/s, the public mediasoup-client on the bare test page)
// and waits alone long enough for VTP to tell her to drop the upper
// encodings (`producer-layers-needed`, after its 2 s hold), as a teacher
// waiting for the class does. Then a student joins at the default layers,
// and we time from the start of the join until the student's decoder shows
// the top encoding's width; also until the first decoded frame.
//
//   VTP_BIN=<target>/debug/vtp node web/bench/simulcast-rampup.mjs [--runs 5] [--firefox]
//
// `--firefox`: the students are Debian's Firefox ESR (tests/firefox.mjs)
// instead of Chromium. Medians and extremes, in milliseconds.
import { startMediaPages } from "../tests/media-pages.mjs";
import { launchFirefox } from "../tests/firefox.mjs";

const runs = Number(process.argv[process.argv.indexOf("--runs") + 1]) || 5;
const firefox = process.argv.includes("--firefox");
const CAPTURE = { width: 1280, height: 720 };
const ENCODINGS = [
  { rid: "r0", scaleResolutionDownBy: 4, maxBitrate: 100_000 },
  { rid: "r1", scaleResolutionDownBy: 2, maxBitrate: 300_000 },
  { rid: "r2", scaleResolutionDownBy: 1, maxBitrate: 900_000 },
];
/** Alone for longer than the SFU's 2 s hold: the upper encodings are off. */
const ALONE_MS = 6_000;
/** A run that has not seen the top layer by then counts as this long. */
const GIVE_UP_MS = 60_000;

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const wait = (ms) => new Promise((ok) => setTimeout(ok, ms));

const env = await startMediaPages();
const fx = firefox ? await launchFirefox() : null;
const firstFrame = [];
const topLayer = [];
try {
  const { vtp } = env;
  for (let run = 0; run < runs; run++) {
    const teacher = await vtp.user(`bench-t${run}@example.org`, "instructor");
    const student = await vtp.user(`bench-s${run}@example.org`);
    const roomId = await vtp.room(teacher.token);
    const a = await env.openPage();
    const origin = new URL(a.url()).origin;
    await a.evaluate(([base, token, room]) => window.vtp.start(base, token, room), [vtp.base, teacher.token, roomId]);
    await a.evaluate(([encodings, capture]) => window.vtp.publish({ encodings, capture }), [ENCODINGS, CAPTURE]);
    await wait(ALONE_MS); // the scenario: a teacher alone for a while

    let b;
    if (fx) {
      b = await fx.person(`student-${run}`);
      await b.goto(origin);
      await b.waitForFunction(() => window.vtp !== undefined);
    } else {
      b = await env.openPage();
    }
    const joined = Date.now();
    await b.evaluate(([base, token, room]) => window.vtp.start(base, token, room), [vtp.base, student.token, roomId]);
    await b.evaluate(() => window.vtp.consumeAll());
    const consumerId = await b.evaluate(() => window.vtp.consumerId("video"));
    let first = null;
    let top = null;
    while (Date.now() - joined < GIVE_UP_MS) {
      const v = await b.evaluate(([id]) => window.vtp.consumerVideo(id), [consumerId]);
      if (v.framesDecoded > 0 && first === null) first = Date.now() - joined;
      if (v.framesDecoded > 0 && v.frameWidth === CAPTURE.width) {
        top = Date.now() - joined;
        break;
      }
      await wait(50);
    }
    firstFrame.push(first ?? GIVE_UP_MS);
    topLayer.push(top ?? GIVE_UP_MS);
    console.error(`run ${run + 1}/${runs}: first frame ${first} ms, top layer ${top} ms`);
    await b.close();
    await a.close();
  }
} finally {
  await fx?.close();
  await env.stop();
}
const line = (name, xs) => `${name}: median ${median(xs)} ms (min ${Math.min(...xs)}, max ${Math.max(...xs)}, ${xs.length} runs)`;
console.log(`viewer: ${firefox ? "Firefox ESR" : "Chromium"}; publisher: Chromium, 3 encodings 100/300/900 kbit/s at 1280x720`);
console.log(line("join → first decoded frame", firstFrame));
console.log(line("join → top layer (1280 wide)", topLayer));
