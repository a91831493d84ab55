// After class, in Chromium (Playwright) against a real `vtp`: a short class
// is recorded through the app with a chat, then the after-class page plays
// the recording from signed links (no Authorization header on a <video>),
// the chat transcript follows the playback, the attendance CSV downloads
// from the page, and axe finds nothing; then it is exported to MP4 (a
// progress bar, the composed MP4 plays) and deleted (confirmed, its files
// 404). Also measures the time from opening
// the page to the first played frame (docs/benchmarks.md).
import { test, before, after, afterEach } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { CHROMIUM_FLAGS, Vtp, closeAndCheck, watchCsp } from "./harness.mjs";
import { joinFromLobby, playPast, recordShortClass, signIn } from "./app-steps.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const dist = join(here, "..", "dist");
const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";
const AXE = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");

let vtp, browser;
const contexts = [];
const errors = [];
const cspViolations = [];

before(async () => {
  vtp = await Vtp.start(["--web-dir", dist, "--login-rate-per-ip", "1000"]);
  browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_FLAGS });
});

afterEach(() => closeAndCheck(contexts, errors, cspViolations));

after(async () => {
  await browser?.close();
  vtp?.stop();
});

async function person(name, viewport = { width: 1280, height: 800 }) {
  const context = await browser.newContext({ viewport, permissions: ["camera", "microphone"], acceptDownloads: true });
  contexts.push(context);
  const page = await context.newPage();
  page.name = name;
  page.on("pageerror", (e) => errors.push(`[${name}] ${e.message}`));
  page.on("dialog", (d) => d.accept());
  await watchCsp(page, name, cspViolations);
  return page;
}

test("after class: the recording plays, the chat follows it, attendance downloads; export to MP4, delete", { timeout: 240_000 }, async () => {
  const teacherAccount = await vtp.user("teacher@example.org", "instructor");
  await vtp.user("ada@example.org");
  const roomId = await vtp.room(teacherAccount.token);

  const teacher = await person("teacher");
  const ada = await person("ada");
  await signIn(teacher, vtp.base, "teacher@example.org");
  await joinFromLobby(teacher, "JS room");
  await signIn(ada, vtp.base, "ada@example.org");
  await joinFromLobby(ada, "JS room");

  // Record: one message at the start, one some seconds later.
  await recordShortClass(vtp, { token: teacherAccount.token, roomId }, teacher, ada);

  // The teacher opens the room's after-class page from the lobby.
  await teacher.getByRole("link", { name: "After class: JS room" }).click();
  await teacher.getByRole("heading", { name: "After class: JS room" }).waitFor();
  await teacher.locator(".session-item a").first().waitFor();
  // Evaluated by the driver: the CSP refuses inline scripts.
  await teacher.evaluate(AXE);
  const onSessions = await teacher.evaluate(async () => (await window.axe.run(document)).violations.map((v) => `${v.id}: ${v.nodes.length}`));
  assert.deepEqual(onSessions, [], "axe finds nothing on the room's sessions list");
  await teacher.locator(".session-item a").first().click();
  await teacher.locator("article.recording video.main-track").waitFor();
  const src = await teacher.locator("video.main-track").getAttribute("src");
  assert.match(src, /sig=/, "played from a signed link");

  // Playback advances past 2 s; the transcript marks the first message, not the later one.
  const t = await playPast(teacher, 2.2);
  assert.ok(t > 2, `currentTime ${t}`);
  await teacher.locator(".transcript li.now", { hasText: "first words" }).waitFor();
  assert.equal(await teacher.locator(".transcript li", { hasText: "later words" }).getAttribute("aria-current"), null);
  // Further on, the later message is the current one.
  await teacher.locator("video.main-track").evaluate((v) => {
    v.currentTime = Math.max(7.5, v.duration - 0.5);
  });
  await teacher.locator(".transcript li.now", { hasText: "later words" }).waitFor({ timeout: 30_000 });

  // Speed control.
  await teacher.getByRole("combobox", { name: "Playback speed" }).selectOption("1.5");
  assert.equal(await teacher.locator("video.main-track").evaluate((v) => v.playbackRate), 1.5);

  // Attendance: shown, and its CSV downloads from the page.
  await teacher.locator("table.attendance tbody tr").nth(1).waitFor();
  const [download] = await Promise.all([teacher.waitForEvent("download"), teacher.getByRole("button", { name: "Download attendance (CSV)" }).click()]);
  const csv = readFileSync(await download.path(), "utf8");
  const rows = csv.trim().split("\n");
  assert.equal(rows[0], "user_id,display_name,role,first_joined_at,last_left_at,total_minutes,visits");
  assert.equal(rows.length, 3, csv);
  assert.ok(rows.some((r) => r.includes('"ada"') && r.includes(",participant,")), csv);
  assert.ok(rows.some((r) => r.includes('"teacher"') && r.includes(",host,")), csv);
  // The chat transcript downloads too.
  const [chatFile] = await Promise.all([teacher.waitForEvent("download"), teacher.getByRole("button", { name: "Download chat" }).click()]);
  const transcript = readFileSync(await chatFile.path(), "utf8");
  assert.match(transcript, /ada: first words\n.*ada: later words\n$/s);

  // axe: nothing on the page (axe is still loaded: the app navigated without a reload).
  if (!(await teacher.evaluate(() => "axe" in window))) await teacher.evaluate(AXE);
  const violations = await teacher.evaluate(async () => (await window.axe.run(document)).violations.map((v) => `${v.id}: ${v.nodes.length}`));
  assert.deepEqual(violations, [], "axe finds nothing on the after-class page");

  // Ada, a student who attended, sees the recording and the chat, not the attendance.
  const sessionPath = new URL(teacher.url()).pathname;
  await ada.goto(vtp.base + sessionPath);
  await ada.locator("video.main-track").waitFor();
  await ada.locator(".transcript li", { hasText: "first words" }).waitFor();
  assert.equal(await ada.locator("table.attendance").count(), 0, "no attendance for students");
  assert.equal(await ada.getByRole("button", { name: "Delete recording" }).count(), 0, "students cannot delete");
  // On a phone-sized screen the page fits its width.
  await ada.setViewportSize({ width: 390, height: 844 });
  const overflow = await ada.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
  assert.ok(overflow <= 0, `no sideways scrolling on a phone (${overflow}px too wide)`);

  // The figure: opening the page to the first played frame, median of 5.
  const times = [];
  for (let i = 0; i < 5; i++) {
    const opened = Date.now();
    await teacher.goto(vtp.base + sessionPath);
    const video = teacher.locator("video.main-track");
    await video.waitFor();
    await video.evaluate((v) => new Promise((resolve, reject) => {
      v.requestVideoFrameCallback(() => resolve());
      v.play().catch(reject);
    }));
    times.push(Date.now() - opened);
  }
  times.sort((a, b) => a - b);
  console.log(`# after-class page to first played frame: median ${times[2]} ms (of ${times.join(", ")} ms)`);

  // /recordings is the after-class index, not the lobby.
  await teacher.goto(vtp.base + "/recordings");
  await teacher.getByRole("heading", { name: "After class", exact: true }).waitFor();
  await teacher.getByRole("link", { name: "JS room" }).waitFor();
  await teacher.evaluate(AXE);
  assert.deepEqual(await teacher.evaluate(async () => (await window.axe.run(document)).violations.map((v) => v.id)), [], "axe finds nothing on /recordings");

  // Export to MP4: a progress bar shows while it runs, then the composed MP4 plays in the player.
  await teacher.goto(vtp.base + sessionPath);
  const card = teacher.locator("article.recording").first();
  await card.locator("video.main-track").waitFor();
  const trackLinks = await card.evaluate((c) => [...c.querySelectorAll("video, audio")].map((m) => m.src));
  assert.ok(trackLinks.length >= 2, `the tracks play from signed links: ${trackLinks}`);
  // Seen by an observer, not polled: a short export may finish between two polls.
  await card.evaluate((c) => {
    window.progressSeen = [];
    new MutationObserver(() => {
      const bar = c.querySelector('progress[aria-label="Export progress"]');
      if (bar && !bar.hidden) window.progressSeen.push(bar.value);
    }).observe(c, { subtree: true, attributes: true, childList: true });
  });
  await card.getByRole("button", { name: "Export to MP4" }).click();
  const composed = card.locator('video.main-track[aria-label="Recording (composed)"]');
  await composed.waitFor({ timeout: 120_000 });
  assert.ok((await teacher.evaluate(() => window.progressSeen.length)) > 0, "the progress bar showed");
  const mp4 = await composed.getAttribute("src");
  assert.match(mp4, /sig=/);
  await card.getByRole("link", { name: "MP4 (speaker)" }).waitFor();
  const played = await playPast(teacher, 2.2);
  assert.ok(played > 2, `the composed MP4 plays: currentTime ${played}`);

  // Delete: asked to confirm, gone from the list, and its files (which answer now) answer 404.
  for (const link of [...trackLinks, mp4]) assert.ok((await fetch(new URL(link, vtp.base), { method: "HEAD" })).ok, `${link} before deletion`);
  const asked = [];
  teacher.on("dialog", (d) => asked.push(d.message()));
  await card.getByRole("button", { name: "Delete recording" }).click();
  await teacher.locator("article.recording").waitFor({ state: "detached" });
  assert.equal(asked.length, 1, "a confirmation was asked");
  for (const link of [...trackLinks, mp4]) assert.equal((await fetch(new URL(link, vtp.base))).status, 404, `${link} after deletion`);
  assert.deepEqual((await vtp.http("GET", `/api/v1/recordings?roomId=${roomId}`, undefined, teacherAccount.token)).body.items, []);
  await teacher.reload();
  await teacher.getByText("This class was not recorded").waitFor();
});
