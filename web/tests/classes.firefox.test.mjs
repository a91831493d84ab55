// The class flows in Debian's Firefox ESR (puppeteer-core over WebDriver
// BiDi) against a real `vtp`, as the Chromium suites run them
// (app.browser "classes:", classroom.browser "pre-join", afterclass.browser):
// an invitation link makes a member who joins while a non-member is refused;
// joining muted with the camera off, kept over a reload; the host ends the
// class and everyone joins the next one; after class the recording plays,
// the chat transcript follows it and the attendance CSV downloads. One
// Firefox for the file; each test closes its contexts; no CSP violation.
import { test, before, after, afterEach } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { Vtp, closeAndCheck, waitFor, watchCsp } from "./harness.mjs";
import { FIREFOX, downloadPrefs, launchFirefox } from "./firefox.mjs";
import {
  clickButton, clickLink, createRoom, invitationLink, isChecked, joinFromLobby, joinNow, openLastSession, playPast,
  receivesFrom, recordShortClass, seesMutedWithoutCamera, selfId, setChecked, signIn, signInHere, transcriptNow, until, waitForText,
} from "./app-steps.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const dist = join(here, "..", "dist");
const skip = existsSync(FIREFOX) ? false : "Debian's firefox-esr is not installed";
const AXE = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");

let vtp, firefox, downloads;
const contexts = [];
const errors = [];
const cspViolations = [];

before(async () => {
  if (skip) return;
  vtp = await Vtp.start(["--web-dir", dist, "--login-rate-per-ip", "1000"]);
  downloads = mkdtempSync(join(tmpdir(), "vtp-fox-downloads-"));
  firefox = await launchFirefox({ prefs: downloadPrefs(downloads) });
});

afterEach(() => closeAndCheck(contexts, errors, cspViolations));

after(async () => {
  await firefox?.close();
  vtp?.stop();
  if (downloads) rmSync(downloads, { recursive: true, force: true });
});

/** A person in their own Firefox context; confirmations are accepted and counted in `page.confirmed`. */
async function person(name) {
  const page = await firefox.person(name, errors);
  contexts.push(page.browserContext());
  page.confirmed = [];
  page.on("dialog", (d) => {
    page.confirmed.push(d.message());
    void d.accept();
  });
  await watchCsp(page, name, cspViolations);
  return page;
}

/** Axe's violations on `page` now, as "rule: targets" (none expected): the pages in Firefox too. */
async function axeViolations(page) {
  // Evaluated by the driver, not an inline <script> (the CSP refuses those).
  if (!(await page.evaluate(() => "axe" in window))) await page.evaluate(AXE);
  return page.evaluate(async () => (await window.axe.run(document)).violations.map((v) => `${v.id}: ${v.nodes.map((n) => n.target).join(" ")}`));
}
/** Axe's findings in Firefox, by page: printed for docs/benchmarks.md, and all must be empty. */
const axeFound = {};

/** The room's Mic and Camera controls that show "off". */
const offControls = (page) => page.evaluate(() => [...document.querySelectorAll(".controls .ctl.off")].map((b) => b.textContent.trim()).sort());

test("Firefox: an invitation link makes a member who joins muted (kept over a reload), an outsider is refused, next week's class", { skip, timeout: 180_000 }, async () => {
  await vtp.user("fox-kim@example.org", "instructor");
  await vtp.user("fox-lou@example.org");
  await vtp.user("fox-mia@example.org");
  // The teacher makes a class (members only, the default) and an invitation link.
  const kim = await person("kim");
  await signIn(kim, vtp.base, "fox-kim@example.org");
  await createRoom(kim, "Biology 3");
  const link = await invitationLink(kim, "Biology 3", 5);
  assert.match(link, /\/invite\/[A-Za-z0-9_-]{43}$/);
  await joinFromLobby(kim, "Biology 3");
  const roomUrl = kim.url();

  // A student who is no member neither sees the class nor gets in by its address.
  const lou = await person("lou");
  await signIn(lou, vtp.base, "fox-lou@example.org");
  await until(lou, () => !document.body.textContent.includes("Loading rooms…"), null, 15_000, "the lobby's list");
  assert.equal(await lou.evaluate(() => document.querySelector('a[aria-label="Join Biology 3"]')), null);
  await lou.goto(roomUrl);
  await waitForText(lou, "you are not one of its members");
  axeFound["lobby (refused)"] = await axeViolations(lou);

  // A student opens the link, signs in, is a member, and joins muted with her camera off.
  const mia = await person("mia");
  await mia.goto(link);
  await signInHere(mia, "fox-mia@example.org");
  await until(mia, () => document.querySelector(".prejoin-video")?.videoWidth > 0, null, 15_000, "the camera preview");
  await setChecked(mia, "Microphone on", false);
  await setChecked(mia, "Camera on", false);
  await until(mia, () => document.querySelector(".prejoin-video").srcObject === null, null, 5_000, "the preview to stop");
  axeFound["pre-join"] = await axeViolations(mia);
  await joinNow(mia);
  assert.equal(new URL(mia.url()).pathname, new URL(roomUrl).pathname);
  assert.deepEqual(await offControls(mia), ["Camera off", "Mic off"]);
  await seesMutedWithoutCamera(kim, await selfId(mia));
  await receivesFrom(mia, await selfId(kim));
  axeFound["room"] = await axeViolations(kim);

  // A reload goes straight back in, still muted with the camera off.
  await mia.reload();
  await until(mia, () => document.querySelector(".room[data-joined]") !== null, null, 30_000, "back in the room");
  assert.deepEqual(await offControls(mia), ["Camera off", "Mic off"]);
  await seesMutedWithoutCamera(kim, await selfId(mia));

  // The teacher ends the class (after a confirmation): the room stays open.
  await clickButton(kim, "End class");
  assert.equal(kim.confirmed.length, 1, "asked to confirm");
  await waitForText(mia, "The host ended the class. The room stays open for the next one.");
  // Next week: the teacher and the student join again; her choices are remembered.
  await joinFromLobby(kim, "Biology 3");
  await clickLink(mia, "Join Biology 3");
  await until(mia, () => document.querySelector(".prejoin-meter") !== null, null, 15_000, "the pre-join screen");
  assert.equal(await isChecked(mia, "Microphone on"), false);
  assert.equal(await isChecked(mia, "Camera on"), false);
  await joinNow(mia);
  await receivesFrom(mia, await selfId(kim));
  await seesMutedWithoutCamera(kim, await selfId(mia));
  assert.deepEqual(axeFound, { "lobby (refused)": [], "pre-join": [], room: [] }, "axe finds nothing in Firefox");
});

/** Until a finished download named like `pattern` is in the downloads folder; resolves with its text. */
async function downloaded(pattern) {
  const name = await waitFor(() => readdirSync(downloads).find((f) => pattern.test(f) && !readdirSync(downloads).some((p) => p === `${f}.part`)), {
    ms: 15_000,
    what: `a download named like ${pattern}`,
  });
  // Firefox writes to a .part file and renames it when done: once named, it is whole.
  return readFileSync(join(downloads, name), "utf8");
}

test("Firefox after class: the recording plays past 2 s, the chat follows it, attendance and chat download", { skip, timeout: 180_000 }, async () => {
  const teacherAccount = await vtp.user("fox-rec-teacher@example.org", "instructor");
  await vtp.user("fox-rec-ada@example.org");
  const roomId = await vtp.room(teacherAccount.token);
  const teacher = await person("teacher");
  const ada = await person("ada");
  await signIn(teacher, vtp.base, "fox-rec-teacher@example.org");
  await joinFromLobby(teacher, "JS room");
  await signIn(ada, vtp.base, "fox-rec-ada@example.org");
  await joinFromLobby(ada, "JS room");

  // Record: one message at the start, one some seconds later.
  await recordShortClass(vtp, { token: teacherAccount.token, roomId }, teacher, ada);

  await openLastSession(teacher, "JS room");
  assert.match(await teacher.evaluate(() => document.querySelector("video.main-track").getAttribute("src")), /sig=/, "played from a signed link");
  const t = await playPast(teacher, 2.2);
  assert.ok(t > 2, `currentTime ${t}`);
  await until(teacher, () => document.querySelector(".transcript li.now")?.textContent.includes("first words"), null, 15_000, "the first message marked");
  assert.doesNotMatch(await transcriptNow(teacher), /later words/);
  await teacher.evaluate(() => {
    const v = document.querySelector("video.main-track");
    v.currentTime = Math.max(7.5, v.duration - 0.5);
  });
  await until(teacher, () => document.querySelector(".transcript li.now")?.textContent.includes("later words"), null, 30_000, "the later message marked");

  // Attendance and chat download from the page.
  await until(teacher, () => document.querySelectorAll("table.attendance tbody tr").length === 2, null, 15_000, "two attendees");
  await clickButton(teacher, "Download attendance (CSV)");
  const csv = await downloaded(/^attendance-.*\.csv$/);
  const rows = csv.trim().split("\n");
  assert.equal(rows[0], "user_id,display_name,role,first_joined_at,last_left_at,total_minutes,visits");
  assert.equal(rows.length, 3, csv);
  assert.ok(rows.some((r) => r.includes('"fox-rec-ada"') && r.includes(",participant,")), csv);
  assert.ok(rows.some((r) => r.includes('"fox-rec-teacher"') && r.includes(",host,")), csv);
  await clickButton(teacher, "Download chat");
  assert.match(await downloaded(/^chat-.*\.txt$/), /fox-rec-ada: first words\n.*fox-rec-ada: later words\n$/s);
  axeFound["after-class"] = await axeViolations(teacher);
  console.log(`# axe violations per page in Firefox: ${JSON.stringify(axeFound)}`);
  assert.deepEqual(axeFound["after-class"], [], "axe finds nothing on the after-class page in Firefox");
});
