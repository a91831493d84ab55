// The classroom around the video, as teachers and students met it: defects
// found by trying the app, each with the scenario that showed it. Chromium
// (Playwright) against a real `vtp`; each test opens its own contexts and
// closes them.
import { test, before, after, afterEach } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { CHROMIUM_FLAGS, Vtp, watchCsp } from "./harness.mjs";
import { clickButton, fill, joinFromLobby, joinNow, seesMutedWithoutCamera, selfId, signIn, until } from "./app-steps.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const dist = join(here, "..", "dist");
const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";
const AXE = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");

let vtp, browser;
let contexts = [];
const errors = [];
/** Content-Security-Policy violations of any page: none is allowed. */
const cspViolations = [];

before(async () => {
  // A small chat budget, so "going too fast" is quick to reach.
  vtp = await Vtp.start(["--web-dir", dist, "--login-rate-per-ip", "1000", "--chat-burst", "2"]);
  browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_FLAGS });
});

afterEach(async () => {
  await Promise.all(contexts.map((c) => c.close().catch(() => {})));
  contexts = [];
  assert.deepEqual(errors.splice(0), [], "no uncaught errors in the pages");
  assert.deepEqual(cspViolations.splice(0), [], "no Content-Security-Policy violation");
});

after(async () => {
  await browser?.close();
  vtp?.stop();
});

async function person(name, viewport = { width: 1280, height: 800 }) {
  const context = await browser.newContext({ viewport, permissions: ["camera", "microphone"] });
  contexts.push(context);
  const page = await context.newPage();
  page.name = name;
  page.on("pageerror", (e) => errors.push(`[${name}] ${e.message}`));
  await watchCsp(page, name, cspViolations);
  return page;
}

/** An instructor signed in, with a room called `title` created and joined. */
async function teacherInRoom(name, title) {
  const email = `${name}@example.org`;
  await vtp.user(email, "instructor");
  const page = await person(name);
  await signIn(page, vtp.base, email);
  await fill(page, "Title", title);
  await fill(page, "Who may join", "signed_in");
  await clickButton(page, "Create room");
  await joinFromLobby(page, title);
  return page;
}

async function studentInRoom(name, title, viewport) {
  const email = `${name}@example.org`;
  await vtp.user(email);
  const page = await person(name, viewport);
  await signIn(page, vtp.base, email);
  await joinFromLobby(page, title);
  return page;
}

test("a server without rooms says so in the lobby instead of loading forever", async () => {
  await vtp.user("first-teacher@example.org", "instructor");
  const page = await person("first-teacher");
  await signIn(page, vtp.base, "first-teacher@example.org");
  await page.getByText("No rooms yet: create the first one above.").waitFor({ timeout: 15_000 });
  assert.equal(await page.getByText("Loading rooms…").count(), 0);
});

test("a disabled account is told that it is disabled", async () => {
  const admin = await vtp.user("the-admin@example.org", "admin");
  const student = await vtp.user("disabled-student@example.org");
  const r = await vtp.http("PATCH", `/api/v1/users/${student.id}`, { disabled: true }, admin.token);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  const page = await person("disabled-student");
  await page.goto(vtp.base + "/");
  await fill(page, "E-mail", "disabled-student@example.org");
  await fill(page, "Password", "Tq7-vB2k-9wZr-disabled-student@example.org");
  await clickButton(page, "Sign in");
  await page.getByRole("alert").filter({ hasText: "This account is disabled" }).waitFor({ timeout: 15_000 });
});

test("after the session ended, signing in again goes back to the room link", async () => {
  const teacher = await teacherInRoom("link-teacher", "Weekly maths");
  const roomPath = new URL(teacher.url()).pathname;
  assert.match(roomPath, /^\/rooms\//);
  // The session ends by itself: the stored tokens are no longer good (as
  // after their lifetime, or a sign-out everywhere elsewhere).
  await teacher.evaluate(() => {
    for (const key of Object.keys(localStorage)) {
      const stored = JSON.parse(localStorage.getItem(key) ?? "null");
      if (stored?.refreshToken) localStorage.setItem(key, JSON.stringify({ ...stored, accessToken: "x", refreshToken: "gone", expiresAt: 0 }));
    }
  });
  await teacher.reload();
  await until(teacher, () => location.pathname === "/signin", null, 15_000, "the sign-in page");
  assert.equal(new URL(teacher.url()).searchParams.get("next"), roomPath);
  await fill(teacher, "E-mail", "link-teacher@example.org");
  await fill(teacher, "Password", "Tq7-vB2k-9wZr-link-teacher@example.org");
  await clickButton(teacher, "Sign in");
  await until(teacher, () => document.querySelector(".room[data-joined]") !== null, null, 30_000, "back in the room");
  assert.equal(new URL(teacher.url()).pathname, roomPath);
});

test("chat: links open, and a refused message neither stays nor hides the newest one", async () => {
  const teacher = await teacherInRoom("chat-teacher", "Chatty class");
  const student = await studentInRoom("chat-student", "Chatty class");
  await fill(teacher, "Message", "Slides at https://example.org/slides?week=3.");
  await clickButton(teacher, "Send");
  const link = student.locator(".chat-text a", { hasText: "https://example.org/slides?week=3" });
  await link.waitFor({ timeout: 15_000 });
  assert.equal(await link.getAttribute("href"), "https://example.org/slides?week=3", "the sentence's full stop is not part of the link");
  assert.equal(await link.getAttribute("target"), "_blank");
  assert.match(await link.getAttribute("rel"), /noopener/);

  // Faster than the budget allows: refused, said, and the newest message still in view.
  let refused = false;
  for (let i = 0; i < 8 && !refused; i++) {
    await fill(student, "Message", `message ${i}`);
    await clickButton(student, "Send");
    refused = await until(student, () => document.querySelector(".chat [role=alert]:not([hidden])") !== null || document.querySelector(".chat input").value === "", null, 5_000, "an answer")
      .then(() => student.evaluate(() => document.querySelector(".chat [role=alert]:not([hidden])") !== null));
  }
  assert.ok(refused, "the chat budget refused a message");
  await student.getByRole("alert").filter({ hasText: "going too fast" }).waitFor();
  const newestVisible = await student.evaluate(() => {
    const list = document.querySelector(".chat-list").getBoundingClientRect();
    const items = document.querySelectorAll(".chat-list .chat-msg");
    const last = items[items.length - 1].getBoundingClientRect();
    return last.bottom <= list.bottom + 1 && last.top >= list.top - 1;
  });
  assert.ok(newestVisible, "the newest message is in view under the alert");
  // The explanation goes away by itself.
  await until(student, () => document.querySelector(".chat [role=alert]:not([hidden])") === null, null, 15_000, "the alert to go");
});

test("tiles show the whole camera picture unless filled, and the room passes axe", async () => {
  const teacher = await teacherInRoom("tile-teacher", "Tiles");
  await studentInRoom("tile-student", "Tiles");
  const tile = teacher.locator(".tile.tile-camera:not(.self)");
  await tile.locator("video").waitFor();
  const fit = () => tile.locator("video").evaluate((v) => getComputedStyle(v).objectFit);
  assert.equal(await fit(), "contain", "the whole frame by default");
  const fillButton = tile.getByRole("button", { name: /^Fill the tile with/ });
  await fillButton.click();
  assert.equal(await fit(), "cover");
  assert.equal(await fillButton.getAttribute("aria-pressed"), "true");
  await fillButton.click();
  assert.equal(await fit(), "contain");

  // Evaluated by the test driver, not added as an inline <script>: the
  // server's Content-Security-Policy (rightly) refuses inline scripts.
  await teacher.evaluate(AXE);
  const violations = await teacher.evaluate(async () => (await window.axe.run(document)).violations.map((v) => `${v.id}: ${v.nodes.length}`));
  assert.deepEqual(violations, [], "axe finds nothing in the room");
});

test("two screen shares sit side by side, neither squeezed into a strip", async () => {
  const a = await teacherInRoom("screen-a", "Two screens");
  const bEmail = "screen-b@example.org";
  // Another host: an admin (an instructor is a host of their own rooms only).
  await vtp.user(bEmail, "admin");
  const b = await person("screen-b");
  await signIn(b, vtp.base, bEmail);
  await joinFromLobby(b, "Two screens");
  await clickButton(a, "Share screen");
  await clickButton(b, "Share screen");
  await until(a, () => document.querySelectorAll(".tile-screen").length === 2, null, 30_000, "two screen tiles");
  const sizes = await a.evaluate(() => {
    const grid = document.querySelector(".grid").getBoundingClientRect();
    return [...document.querySelectorAll(".tile-screen")].map((t) => {
      const r = t.getBoundingClientRect();
      return { w: r.width / grid.width, h: r.height };
    });
  });
  for (const s of sizes) {
    assert.ok(s.w > 0.35 && s.w < 0.65, `each screen about half the width: ${JSON.stringify(sizes)}`);
    assert.ok(s.h > 200, `and tall enough to read: ${JSON.stringify(sizes)}`);
  }
});

test("keyboard: Tab reaches the room's controls before the videos and the chat", async () => {
  const page = await teacherInRoom("keys-teacher", "Keyboard");
  await page.locator(".room-bar h1").evaluate((h) => {
    h.tabIndex = -1;
    h.focus();
  });
  const seen = [];
  for (let i = 0; i < 20; i++) {
    await page.keyboard.press("Tab");
    const where = await page.evaluate(() => {
      const el = document.activeElement;
      return { text: el?.textContent?.trim() ?? "", inVideos: !!el?.closest(".stage"), inSide: !!el?.closest(".side") };
    });
    if (/^Mic/.test(where.text)) break;
    seen.push(where);
  }
  assert.ok(seen.length < 20, "Tab reached the Mic button");
  assert.deepEqual(seen.filter((s) => s.inVideos || s.inSide), [], `nothing in the videos or side panel before it: ${JSON.stringify(seen)}`);
});

test("on a phone, the Chat button counts messages that arrived while it was closed", async () => {
  const teacher = await teacherInRoom("phone-teacher", "Phone class");
  const phone = await studentInRoom("phone-student", "Phone class", { width: 390, height: 844 });
  await fill(teacher, "Message", "Page 12, everyone");
  await clickButton(teacher, "Send");
  await phone.getByRole("button", { name: "Chat (1)" }).waitFor({ timeout: 15_000 });
  await phone.getByRole("button", { name: "Chat (1)" }).click();
  await phone.locator(".chat-list", { hasText: "Page 12, everyone" }).waitFor();
  await until(phone, () => [...document.querySelectorAll("button")].some((b) => b.textContent === "Chat"), null, 5_000, "the count to clear once read");
  assert.ok(await selfId(phone));
});

test("the same account in a second tab takes the place over; the first tab stops sending and says why", async () => {
  const first = await teacherInRoom("two-tabs", "Two tabs");
  const student = await studentInRoom("two-tabs-student", "Two tabs");
  const teacherId = await selfId(first);
  await until(student, (id) => document.querySelector(`.tile-camera[data-peer-id="${CSS.escape(id)}"]`) !== null, teacherId, 15_000, "the teacher's tile");
  // A second tab of the same browser profile (same sign-in) opens the room link.
  const second = await first.context().newPage();
  second.name = "two-tabs (second tab)";
  second.on("pageerror", (e) => errors.push(`[${second.name}] ${e.message}`));
  await watchCsp(second, second.name, cspViolations);
  await second.goto(first.url());
  await joinNow(second);
  assert.equal(await selfId(second), teacherId, "the same place in the room");
  // The first tab is told why, and is back in the lobby (leaving the room stops its devices).
  await first.getByText("You joined this room from another tab or device").waitFor({ timeout: 15_000 });
  assert.equal(await first.evaluate(() => document.querySelector(".room") === null), true);
  // The student sees one teacher, whose video comes from the second tab.
  await until(
    student,
    async (id) => document.querySelectorAll(`.tile-camera[data-peer-id="${CSS.escape(id)}"]`).length === 1 &&
      (await window.vtpRoom.stats()).some((s) => s.peerId === id && s.kind === "video" && s.framesDecoded > 0),
    teacherId,
    30_000,
    "one teacher tile, decoding the second tab's camera",
  );
  assert.equal(await student.locator(".count").textContent(), "2 in the room");
});

/** Axe's violations on `page` now, as "rule: nodes" (none expected). */
async function axeViolations(page) {
  // Evaluated by the test driver, not an inline <script> (the CSP refuses those).
  if (!(await page.evaluate(() => "axe" in window))) await page.evaluate(AXE);
  return page.evaluate(async () => (await window.axe.run(document)).violations.map((v) => `${v.id}: ${v.nodes.map((n) => n.target).join(" ")}`));
}

test("axe finds nothing on any page: sign-in, register, lobby, account, users, pre-join, members, invitations", async () => {
  const found = {};
  const visitor = await person("axe-visitor");
  for (const path of ["/signin", "/register"]) {
    await visitor.goto(vtp.base + path);
    await visitor.locator("main h1").waitFor();
    found[path] = await axeViolations(visitor);
  }
  await vtp.user("axe-admin@example.org", "admin");
  const admin = await person("axe-admin");
  await signIn(admin, vtp.base, "axe-admin@example.org");
  await fill(admin, "Title", "Axe class");
  await clickButton(admin, "Create room");
  await admin.getByRole("link", { name: "Join Axe class" }).waitFor();
  found["/ (lobby)"] = await axeViolations(admin);
  for (const [path, heading] of [["/account", "Account"], ["/admin", "Users"]]) {
    await admin.evaluate((p) => document.querySelector(`a[href="${p}"]`).click(), path);
    await admin.getByRole("heading", { name: heading, level: 1 }).waitFor();
    found[path] = await axeViolations(admin);
  }
  await admin.evaluate(() => document.querySelector('a[href="/"]').click());
  await admin.getByRole("link", { name: "Join Axe class" }).click();
  await admin.getByRole("meter", { name: "Microphone level" }).waitFor();
  found["pre-join"] = await axeViolations(admin);
  // The class's members page with a new invitation link shown, and invitation pages: one that no longer works, and a good one opened signed out.
  await admin.goto(vtp.base + "/");
  await admin.getByRole("link", { name: "Members of Axe class" }).click();
  await admin.getByRole("heading", { name: "Members of Axe class", level: 1 }).waitFor();
  await admin.getByRole("button", { name: "Make a link" }).click();
  const link = await admin.getByLabel("The new invitation link").inputValue();
  found["members"] = await axeViolations(admin);
  await admin.goto(`${vtp.base}/invite/${"A".repeat(43)}`);
  await admin.getByRole("alert").filter({ hasText: /\w/ }).waitFor();
  found["/invite (dead link)"] = await axeViolations(admin);
  await visitor.goto(link);
  await visitor.getByLabel("E-mail").waitFor();
  found["/invite (signed out)"] = await axeViolations(visitor);
  console.log(`# axe violations per page: ${JSON.stringify(found)}`);
  assert.deepEqual(found, {
    "/signin": [], "/register": [], "/ (lobby)": [], "/account": [], "/admin": [], "pre-join": [], "members": [], "/invite (dead link)": [], "/invite (signed out)": [],
  });
});

test("pre-join: camera preview and microphone meter; joining muted with the camera off really does, and is remembered", async () => {
  const teacher = await teacherInRoom("prejoin-teacher", "Pre-join");
  await vtp.user("prejoin-student@example.org");
  const student = await person("prejoin-student");
  await signIn(student, vtp.base, "prejoin-student@example.org");
  await student.getByRole("link", { name: "Join Pre-join" }).click();
  // The preview plays the camera, and the meter moves with the (fake) microphone's beeps.
  await until(student, () => document.querySelector(".prejoin-video")?.videoWidth > 0, null, 15_000, "the camera preview");
  await until(student, () => document.querySelector(".prejoin-meter")?.value > 0.01, null, 15_000, "the level meter to move");
  assert.ok(await student.getByLabel("Microphone", { exact: true }).count(), "a microphone to pick");
  await student.getByLabel("Microphone on").uncheck();
  await student.getByLabel("Camera on").uncheck();
  // The camera light goes out: no live video track left in the preview.
  await until(student, () => document.querySelector(".prejoin-video").srcObject === null, null, 5_000, "the preview to stop");
  await joinNow(student);
  assert.equal(await student.evaluate(() => document.body.dataset.page), "room", "the room's own page style");
  const studentId = await selfId(student);
  assert.equal(await student.locator(".controls .ctl.off", { hasText: "Mic off" }).count(), 1);
  assert.equal(await student.locator(".controls .ctl.off", { hasText: "Camera off" }).count(), 1);
  // The teacher sees a muted student without video: the server holds a paused microphone and no camera.
  await seesMutedWithoutCamera(teacher, studentId);
  const tile = teacher.locator(`.tile-camera[data-peer-id="${studentId}"]`);
  await tile.filter({ hasText: "Mic off" }).waitFor();
  assert.equal(await tile.evaluate((t) => t.classList.contains("no-video")), true);
  // Back in the lobby and in again: the choices are remembered on this device.
  await clickButton(student, "Leave");
  await student.getByRole("link", { name: "Join Pre-join" }).click();
  await student.getByLabel("Microphone on").waitFor();
  assert.equal(await student.getByLabel("Microphone on").isChecked(), false);
  assert.equal(await student.getByLabel("Camera on").isChecked(), false);
});

test("layout: pin a tile, speaker view, hide self view (kept over a reload)", async () => {
  const teacher = await teacherInRoom("layout-teacher", "Layout");
  const student = await studentInRoom("layout-student", "Layout");
  const studentId = await selfId(student);
  const theirs = teacher.locator(`.tile-camera[data-peer-id="${studentId}"]`);
  await theirs.locator("video").waitFor();
  const share = () => theirs.evaluate((t) => t.getBoundingClientRect().width / t.parentElement.getBoundingClientRect().width);
  assert.ok((await share()) < 0.6, "the grid: two tiles side by side");
  // Pinned: the student's tile spans the stage, ours sits in the strip under it.
  await teacher.getByRole("button", { name: "Pin layout-student" }).click();
  assert.equal(await teacher.getByRole("button", { name: "Pin layout-student" }).getAttribute("aria-pressed"), "true");
  assert.ok((await share()) > 0.95, `pinned: full width (${await share()})`);
  const self = await teacher.locator(".tile.self.tile-camera").boundingBox();
  const pinned = await theirs.boundingBox();
  assert.ok(self.y >= pinned.y + pinned.height - 1 && self.height < pinned.height, "our tile in the strip under it");
  await teacher.getByRole("button", { name: "Pin layout-student" }).click();
  assert.ok((await share()) < 0.6, "unpinned: the grid again");
  // The host spotlights themselves: large on the student's page too, until taken away.
  const teacherId = await selfId(teacher);
  const onStudent = student.locator(`.tile-camera[data-peer-id="${teacherId}"]`);
  await clickButton(teacher, "People");
  await teacher.getByRole("button", { name: "Spotlight layout-teacher for everyone" }).click();
  await until(student, (id) => document.querySelector(`.tile-camera[data-peer-id="${CSS.escape(id)}"]`)?.classList.contains("main"), teacherId, 10_000, "the spotlit teacher large");
  await teacher.getByRole("button", { name: "Remove the spotlight from layout-teacher" }).click();
  await until(student, () => document.querySelector(".grid.focused") === null, null, 10_000, "the grid again");
  assert.equal(await onStudent.evaluate((t) => t.classList.contains("main")), false);
  // Speaker view shows the other person large; hiding self view keeps sending.
  await clickButton(teacher, "Speaker view");
  assert.ok((await share()) > 0.95, "speaker view: the other person large");
  await clickButton(teacher, "Hide self view");
  await until(teacher, () => document.querySelector(".tile.self.tile-camera") === null, null, 5_000, "our tile to go");
  await until(student, (id) => window.vtpRoom.stats().then((s) => s.some((x) => x.peerId === id && x.kind === "video" && x.framesDecoded > 0)), teacherId, 15_000, "the teacher's video still reaching the student");
  // The layout is this device's: a reload keeps it (and goes straight back into the room).
  await teacher.reload();
  await until(teacher, () => document.querySelector(".room[data-joined]") !== null, null, 30_000, "back in the room without the pre-join screen");
  await teacher.getByRole("button", { name: "Show self view" }).waitFor();
  assert.equal(await teacher.getByRole("button", { name: "Speaker view" }).getAttribute("aria-pressed"), "true");
  assert.equal(await teacher.locator(".tile.self.tile-camera").count(), 0);
});
