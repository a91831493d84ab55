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
import { clickButton, fill, joinFromLobby, selfId, signIn, until } from "./app-steps.mjs";

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
  await until(second, () => document.querySelector(".room[data-joined]") !== null, null, 30_000, "the second tab in the room");
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
