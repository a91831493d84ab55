// Scheduled sessions and admin user management in Chromium (Playwright)
// against a real `vtp` (issue 17): a host schedules a weekly class and the
// lobby shows the next time with Join; ending the session leaves the Join
// button and the student starts the next session; an admin creates a user
// with a temporary password that must be changed at first sign-in; the
// admin page fits a phone (375 px, no sideways scrolling); axe finds
// nothing on the new pages; no CSP violation anywhere.
import { test, before, after, afterEach } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { CHROMIUM_FLAGS, Vtp, watchCsp } from "./harness.mjs";
import { clickButton, fill, joinFromLobby, signIn, until } from "./app-steps.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const dist = join(here, "..", "dist");
const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";
const AXE = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");

let vtp, browser;
let contexts = [];
const errors = [];
const cspViolations = [];

before(async () => {
  vtp = await Vtp.start(["--web-dir", dist, "--login-rate-per-ip", "1000"]);
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
  const context = await browser.newContext({ viewport, permissions: ["camera", "microphone", "clipboard-read", "clipboard-write"] });
  contexts.push(context);
  const page = await context.newPage();
  page.name = name;
  page.on("pageerror", (e) => errors.push(`[${name}] ${e.message}`));
  page.on("dialog", (d) => d.accept());
  await watchCsp(page, name, cspViolations);
  return page;
}

async function axe(page) {
  // Evaluated by the driver: the CSP refuses inline scripts.
  await page.evaluate(AXE);
  return page.evaluate(async () => (await window.axe.run(document)).violations.map((v) => `${v.id}: ${v.nodes.length}`));
}

/** The state line of `title` in the lobby's "My classes". */
const stateOf = (page, title) =>
  page.evaluate((title) => {
    const item = [...document.querySelectorAll('ul[aria-label="My classes"] .room-item')].find((li) => li.querySelector("h3")?.textContent === title);
    return item?.querySelector(".room-state")?.textContent ?? null;
  }, title);

test("a host schedules a weekly class; the lobby shows the next time; end the session, then join the next", { timeout: 120_000 }, async () => {
  const teacher = await vtp.user("teacher@example.org", "instructor");
  const student = await vtp.user("student@example.org");
  const create = await vtp.http("POST", "/api/v1/rooms", { title: "Weekly maths", settings: { access: "members" } }, teacher.token);
  const roomId = create.body.id;
  await vtp.http("POST", `/api/v1/rooms/${roomId}/members`, { email: student.email }, teacher.token);

  const t = await person("teacher");
  await signIn(t, vtp.base, teacher.email);
  await t.getByRole("button", { name: "Edit Weekly maths" }).click();
  // The first session: tomorrow at 14:00 here, weekly.
  const tomorrow = await t.evaluate(() => {
    const d = new Date(Date.now() + 86_400_000);
    const pad = (n) => String(n).padStart(2, "0");
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T14:00`;
  });
  await t.getByLabel("First session (date and time)").fill(tomorrow);
  await t.getByLabel("Length in minutes").fill("45");
  await t.getByLabel("Number of sessions (empty: no end)").fill("12");
  await clickButton(t, "Set schedule");
  await until(t, () => [...document.querySelectorAll(".room-state")].some((s) => s.textContent.includes("Next class: Tomorrow 14:00")), null, 10_000, "the next class in the lobby");
  const stored = (await vtp.http("GET", `/api/v1/rooms/${roomId}`, undefined, teacher.token)).body.schedule;
  assert.equal(stored.entries[0].durationMinutes, 45);
  assert.equal(stored.entries[0].recurrence.kind, "weekly");
  assert.equal(stored.entries[0].recurrence.count, 12);

  // The calendar link: shown, copied, and it serves the class.
  await t.getByRole("button", { name: "Edit Weekly maths" }).click();
  await clickButton(t, "Show calendar link");
  await until(t, () => document.querySelector("input.calendar-url")?.value !== "", null, 10_000, "the calendar link");
  const url = await t.getByLabel("Subscribe link (keep it private)").inputValue();
  assert.match(url, /^http:\/\/127\.0\.0\.1:\d+\/api\/v1\/calendar-feeds\/.+\/calendar\.ics\?u=/);
  await clickButton(t, "Copy link");
  assert.equal(await t.evaluate(() => navigator.clipboard.readText()), url);
  const ics = await (await fetch(url)).text();
  assert.match(ics, /RRULE:FREQ=WEEKLY;BYDAY=[A-Z]{2};COUNT=12/);
  assert.deepEqual(await axe(t), [], "axe finds nothing on the lobby with the schedule form open");
  await t.getByRole("button", { name: "Cancel editing Weekly maths" }).click();

  // The student's lobby: the next time and a Join button.
  const s = await person("student");
  await signIn(s, vtp.base, student.email);
  await until(s, () => document.querySelector('ul[aria-label="My classes"] .room-item') !== null, null, 10_000, "the student's classes");
  assert.match(await stateOf(s, "Weekly maths"), /Next class: Tomorrow 14:00/);
  assert.deepEqual(await axe(s), [], "axe finds nothing on the student's lobby");

  // Today's session, then the teacher ends it.
  await joinFromLobby(t, "Weekly maths");
  await joinFromLobby(s, "Weekly maths");
  await clickButton(t, "End class");
  await until(s, () => [...document.querySelectorAll("h1")].some((h) => h.textContent === "Rooms"), null, 30_000, "the student back in the lobby");
  // "Next week": the Join button is still there; the student waits for the
  // teacher, who opens the next session by joining.
  await s.getByRole("link", { name: "Join Weekly maths" }).click();
  await clickButton(s, "Join now");
  await until(s, () => document.body.textContent.includes("The class has not started yet"), null, 30_000, "the waiting notice");
  await until(t, () => [...document.querySelectorAll("h1")].some((h) => h.textContent === "Rooms"), null, 30_000, "the teacher back in the lobby");
  await joinFromLobby(t, "Weekly maths");
  await until(s, () => document.querySelector(".room[data-joined]") !== null, null, 30_000, "the student in the next session");
  const sessions = (await vtp.http("GET", `/api/v1/rooms/${roomId}/sessions`, undefined, teacher.token)).body;
  assert.equal(sessions.items.length, 2, JSON.stringify(sessions));
  assert.ok(sessions.items.some((x) => !x.endedAt), "a new session is running");
});

test("an admin creates a user with a temporary password; the user must change it", { timeout: 60_000 }, async () => {
  const admin = await vtp.user("admin@example.org", "admin");
  const a = await person("admin");
  await signIn(a, vtp.base, admin.email);
  await a.goto(vtp.base + "/admin");
  await fill(a, "E-mail", "newbie@example.org");
  await fill(a, "Name", "Newbie");
  await a.getByLabel("Role", { exact: true }).selectOption("instructor");
  await clickButton(a, "Create user");
  const temporary = await a.locator(".temporary-password").textContent();
  assert.match(temporary, /^[A-Z2-7]{16}$/);
  assert.deepEqual(await axe(a), [], "axe finds nothing on the admin page");

  const n = await person("newbie");
  await n.goto(vtp.base + "/");
  await fill(n, "E-mail", "newbie@example.org");
  await fill(n, "Password", temporary);
  await clickButton(n, "Sign in");
  await until(n, () => document.body.textContent.includes("You signed in with a temporary password"), null, 10_000, "the must-change notice");
  assert.equal(new URL(n.url()).pathname, "/account");
  // Nothing else opens until it is changed.
  await n.goto(vtp.base + "/");
  await until(n, () => location.pathname === "/account", null, 10_000, "kept on the account page");
  await fill(n, "Current password", temporary);
  await fill(n, "New password", "violet harbour compass 72");
  await clickButton(n, "Change password");
  await until(n, () => [...document.querySelectorAll("h1")].some((h) => h.textContent === "Rooms"), null, 10_000, "the lobby after the change");
  const me = await vtp.http("POST", "/api/v1/auth/login", { email: "newbie@example.org", password: "violet harbour compass 72" });
  assert.equal(me.body.passwordChangeRequired, false);
  assert.equal(me.body.user.role, "instructor");
});

test("the admin page fits a phone and asks before deleting", { timeout: 60_000 }, async () => {
  const admin = await vtp.user("admin2@example.org", "admin");
  const victim = await vtp.user("victim-with-a-rather-long-address@example.org");
  const p = await person("phone", { width: 375, height: 740 });
  await signIn(p, vtp.base, admin.email);
  await p.goto(vtp.base + "/admin");
  await p.getByRole("button", { name: "Delete victim-with-a-rather-long-address" }).waitFor();
  const overflow = await p.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
  assert.ok(overflow <= 0, `no horizontal scrolling at 375 px (overflow ${overflow} px)`);
  // Delete asks in a dialog; Cancel keeps the account.
  await p.getByRole("button", { name: "Delete victim-with-a-rather-long-address" }).click();
  const dialog = p.getByRole("dialog");
  await dialog.waitFor();
  assert.match(await dialog.textContent(), /cannot be undone/);
  assert.deepEqual(await axe(p), [], "axe finds nothing with the dialog open");
  await dialog.getByRole("button", { name: "Cancel" }).click();
  assert.equal((await vtp.http("GET", `/api/v1/users/${victim.id}`, undefined, admin.token)).status, 200);
  await p.getByRole("button", { name: "Delete victim-with-a-rather-long-address" }).click();
  await p.getByRole("dialog").getByRole("button", { name: "Delete account" }).click();
  await until(p, () => document.body.textContent.includes("account is deleted"), null, 10_000, "the deletion");
  assert.equal((await vtp.http("GET", `/api/v1/users/${victim.id}`, undefined, admin.token)).status, 404);
});
