// Figures for docs/benchmarks.md (a benchmark, not a test): on loopback, a
// teacher publishes her camera from one browser; a student in another (or
// the same kind of) browser joins the room N times, and we time from the
// click on "Join" until the first frame of the teacher's video is decoded.
// Every pairing of Chromium and Firefox ESR, publisher and viewer.
//
//   node web/bench/first-frame.mjs [--runs 5]    (after npm run build; VTP_BIN as for the tests)
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { CHROMIUM_FLAGS, Vtp } from "../tests/harness.mjs";
import { launchFirefox } from "../tests/firefox.mjs";
import { clickButton, fill, joinFromLobby, selfId, signIn, until } from "../tests/app-steps.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const dist = join(here, "..", "dist");
const runs = Number(process.argv[process.argv.indexOf("--runs") + 1]) || 5;
const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

const vtp = await Vtp.start(["--web-dir", dist, "--login-rate-per-ip", "1000"]);
const chrome = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_FLAGS });
const firefox = await launchFirefox();

/** A fresh person (own storage) in `browser`. */
async function person(browser, name) {
  if (browser === "chromium") {
    const context = await chrome.newContext({ permissions: ["camera", "microphone"] });
    const page = await context.newPage();
    page.name = name;
    return { page, close: () => context.close() };
  }
  const page = await firefox.person(name);
  return { page, close: () => page.browserContext().close() };
}

const results = [];
try {
  for (const publisher of ["chromium", "firefox"]) {
    for (const viewer of ["chromium", "firefox"]) {
      const tag = `${publisher}-${viewer}`;
      const teacherEmail = `teacher-${tag}@example.org`;
      await vtp.user(teacherEmail, "instructor");
      const teacher = await person(publisher, `teacher-${tag}`);
      await signIn(teacher.page, vtp.base, teacherEmail);
      const title = `First frame ${tag}`;
      await fill(teacher.page, "Title", title);
      await clickButton(teacher.page, "Create room");
      await joinFromLobby(teacher.page, title);
      // Her camera is on before anyone is timed.
      await until(teacher.page, () => window.vtpRoom.session.media.producers.has("camera"), null, 30_000, "the teacher's camera");
      const teacherId = await selfId(teacher.page);
      const times = [];
      for (let i = 0; i < runs; i++) {
        const email = `student-${tag}-${i}@example.org`;
        await vtp.user(email);
        const student = await person(viewer, `student-${tag}-${i}`);
        await signIn(student.page, vtp.base, email);
        await until(student.page, (t) => document.querySelector(`a[aria-label="Join ${CSS.escape(t)}"]`) !== null, title, 30_000, "the Join link");
        const start = Date.now();
        await joinFromLobby(student.page, title);
        await until(
          student.page,
          async (id) => (await window.vtpRoom.stats()).some((s) => s.peerId === id && s.kind === "video" && s.framesDecoded > 0),
          teacherId,
          30_000,
          "the teacher's first decoded frame",
        );
        times.push(Date.now() - start);
        await student.close();
      }
      await teacher.close();
      results.push({ publisher, viewer, times });
      console.log(`${publisher} → ${viewer}: median ${median(times)} ms (min ${Math.min(...times)}, max ${Math.max(...times)}; ${times.join(", ")})`);
    }
  }
} finally {
  await chrome.close();
  await firefox.close();
  vtp.stop();
}
