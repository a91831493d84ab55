// Figure for docs/benchmarks.md (a benchmark, not a test): the time from
// opening a session's after-class page to the first played frame of a
// 10-minute recording, median of N page loads, in Chromium and Firefox ESR.
//
//   node web/bench/afterclass-first-frame.mjs [--runs 5] [--minutes 10]
//   (after npm run build; VTP_BIN as for the tests; needs Debian's ffmpeg)
//
// A 10-minute recording without waiting 10 minutes: a teacher starts
// recording through the app (the server makes the recording, its folder and
// manifest, with one video and one audio track of her), the server is
// killed as a crash would, and each track file the manifest names is
// overwritten by ffmpeg with `--minutes` of the same codec (VP8 / Opus: a
// 20 s test pattern encoded once, then repeated by stream copy), written to
// a pipe so that it is an unfinished live WebM like the recorder's own
// after a crash (unknown sizes, no index). The restarted server's start-up
// repair then does what it does to every crashed recording: indexes the
// files, writes their durations in the manifest, marks the recording ready.
// The page is then opened N times by a signed-in teacher, timed from
// `goto` to the first frame the <video> presents after play()
// (requestVideoFrameCallback).
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { CHROMIUM_FLAGS, Vtp, waitFor } from "../tests/harness.mjs";
import { launchFirefox } from "../tests/firefox.mjs";
import { joinFromLobby, setRecording, signIn, until } from "../tests/app-steps.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const dist = join(here, "..", "dist");
const arg = (name, fallback) => (process.argv.includes(name) ? Number(process.argv[process.argv.indexOf(name) + 1]) : fallback);
const runs = arg("--runs", 5);
const minutes = arg("--minutes", 10);
const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";
const SEGMENT_S = 20;

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

const ffmpeg = (args) => execFileSync("ffmpeg", ["-hide_banner", "-loglevel", "error", "-y", ...args], { maxBuffer: 1 << 30 });

/** `minutes` of `kind` (VP8 video or Opus audio) as an unfinished live WebM (written to a pipe: no sizes, no index). */
function longTrack(work, kind) {
  const segment = join(work, `segment-${kind}.webm`);
  if (kind === "video") {
    ffmpeg(["-f", "lavfi", "-i", `testsrc2=size=640x360:rate=15`, "-t", String(SEGMENT_S), "-c:v", "libvpx", "-deadline", "realtime", "-cpu-used", "8", "-b:v", "300k", "-g", "30", segment]);
  } else {
    ffmpeg(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", String(SEGMENT_S), "-ac", "2", "-c:a", "libopus", "-b:a", "32k", segment]);
  }
  const loops = Math.ceil((minutes * 60) / SEGMENT_S) - 1;
  return ffmpeg(["-stream_loop", String(loops), "-i", segment, "-t", String(minutes * 60), "-c", "copy", "-f", "webm", "pipe:1"]);
}

const work = mkdtempSync(join(tmpdir(), "vtp-bench-afterclass-"));
let vtp = await Vtp.start(["--web-dir", dist, "--login-rate-per-ip", "1000"]);
const chrome = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_FLAGS });
let firefox;
try {
  const email = "bench-teacher@example.org";
  const account = await vtp.user(email, "instructor");
  const roomId = await vtp.room(account.token);

  // Recording through the app, until the manifest names her camera and microphone.
  const context = await chrome.newContext({ permissions: ["camera", "microphone"] });
  const page = await context.newPage();
  await signIn(page, vtp.base, email);
  await joinFromLobby(page, "JS room");
  await setRecording(page, true);
  const recording = await waitFor(
    async () => (await vtp.http("GET", `/api/v1/recordings?roomId=${roomId}`, undefined, account.token)).body.items[0],
    { what: "the recording" },
  );
  const folder = join(vtp.dir, "recordings", recording.id);
  const manifest = await waitFor(() => {
    const m = JSON.parse(readFileSync(join(folder, "manifest.json"), "utf8"));
    const kinds = new Set(m.tracks.map((t) => t.kind));
    return kinds.has("video") && kinds.has("audio") && m;
  }, { ms: 30_000, what: "a manifest with a video and an audio track" });

  // The crash, and ffmpeg's long tracks in place of the recorded ones.
  await vtp.crash();
  await context.close();
  const made = { video: null, audio: null };
  for (const track of manifest.tracks) {
    const codec = track.codec.toLowerCase();
    if (!["vp8", "opus"].includes(codec)) throw new Error(`this bench makes VP8 and Opus tracks, not ${track.codec}`);
    made[track.kind] ??= longTrack(work, track.kind);
    writeFileSync(join(folder, track.file), made[track.kind]);
  }

  // The restart repairs it: ready, and as long as made.
  vtp = await vtp.restart();
  const teacher = await vtp.http("POST", "/api/v1/auth/login", { email, password: `Tq7-vB2k-9wZr-${email}` });
  const token = teacher.body.accessToken;
  const ready = await waitFor(
    async () => (await vtp.http("GET", `/api/v1/recordings/${recording.id}`, undefined, token)).body,
    { ms: 60_000, what: "the repaired recording" },
  );
  if (ready.state !== "ready") throw new Error(`the recording is ${ready.state}, not ready: ${JSON.stringify(ready)}`);
  console.log(`recording ${recording.id}: ${ready.state}, ${(ready.durationMs / 60_000).toFixed(2)} min, ${(ready.bytes / 1e6).toFixed(1)} MB, ${manifest.tracks.length} tracks`);
  const sessionUrl = `${vtp.base}/rooms/${roomId}/sessions/${recording.sessionId}`;

  firefox = await launchFirefox();
  for (const browser of ["chromium", "firefox"]) {
    let p, close;
    if (browser === "chromium") {
      const c = await chrome.newContext();
      p = await c.newPage();
      close = () => c.close();
    } else {
      p = await firefox.person("bench");
      close = () => p.browserContext().close();
    }
    await signIn(p, vtp.base, email);
    const times = [];
    const seeks = [];
    for (let i = 0; i < runs; i++) {
      const opened = Date.now();
      await p.goto(sessionUrl);
      await until(p, () => document.querySelector("video.main-track") !== null, null, 30_000, "the player");
      await p.evaluate(() => new Promise((resolve, reject) => {
        const v = document.querySelector("video.main-track");
        v.requestVideoFrameCallback(() => resolve());
        v.play().catch(reject);
      }));
      times.push(Date.now() - opened);
      // And a seek near the end: the player jumps there through the index.
      const seekStart = Date.now();
      await p.evaluate(() => new Promise((resolve) => {
        const v = document.querySelector("video.main-track");
        v.requestVideoFrameCallback(() => resolve());
        v.currentTime = v.duration - 30;
      }));
      seeks.push(Date.now() - seekStart);
    }
    const duration = await p.evaluate(() => document.querySelector("video.main-track").duration);
    await close();
    console.log(`${browser}: after-class page to first played frame of a ${minutes}-minute recording (<video> duration ${duration.toFixed(1)} s): median ${median(times)} ms (${times.join(", ")} ms); a seek to 30 s before the end, to its frame: median ${median(seeks)} ms (${seeks.join(", ")} ms)`);
  }
} finally {
  await chrome.close();
  await firefox?.close();
  vtp.stop();
  rmSync(work, { recursive: true, force: true });
}
