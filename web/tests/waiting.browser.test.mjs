// The waiting room as students and a teacher meet it: a student who opens a
// class with a waiting room sees in words what they wait for, the teacher
// sees who waits (a notice and a badge) and admits one, all, or turns one
// away, and the student comes in by themselves. Chromium (Playwright), and
// one scenario in Firefox (puppeteer-core over BiDi), against a real `vtp`.
import { test, before, after, afterEach } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { CHROMIUM_FLAGS, Vtp, watchCsp } from "./harness.mjs";
import { FIREFOX, launchFirefox } from "./firefox.mjs";
import { clickButton, joinFromLobby, signIn, until } from "./app-steps.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const dist = join(here, "..", "dist");
const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";
const AXE = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");
const noFirefox = existsSync(FIREFOX) ? false : "Debian's firefox-esr is not installed";

let vtp, browser, firefox;
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
  await firefox?.close();
  await browser?.close();
  vtp?.stop();
});

async function person(name) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, permissions: ["camera", "microphone"] });
  contexts.push(context);
  const page = await context.newPage();
  page.name = name;
  page.on("pageerror", (e) => errors.push(`[${name}] ${e.message}`));
  await watchCsp(page, name, cspViolations);
  return page;
}

/** A teacher's room with a waiting room (`mode`), titled `title`; the teacher's token. */
async function waitingRoom(teacher, title, mode) {
  const t = await vtp.user(`${teacher}@example.org`, "instructor");
  const r = await vtp.http("POST", "/api/v1/rooms", { title, settings: { access: "signed_in", waitingRoom: mode } }, t.token);
  assert.equal(r.status, 201, JSON.stringify(r.body));
  return t;
}

/** A student signed in who opens the class and presses "Join now": they wait. */
async function studentWaits(page, name, title) {
  await vtp.user(`${name}@example.org`);
  await signIn(page, vtp.base, `${name}@example.org`);
  await until(page, (title) => document.querySelector(`a[aria-label="Join ${CSS.escape(title)}"]`) !== null, title, 30_000, `a Join ${title} link`);
  await page.evaluate((title) => document.querySelector(`a[aria-label="Join ${CSS.escape(title)}"]`).click(), title);
  await clickButton(page, "Join now");
}

/** The waiting card's heading, once it says `text`. */
const cardSays = (page, text) =>
  until(page, (text) => {
    const card = document.querySelector(".waiting-card:not([hidden]) h2");
    return card?.textContent === text;
  }, text, 30_000, `the waiting card saying "${text}"`);

const joined = (page) => until(page, () => document.querySelector(".room[data-joined]") !== null, null, 30_000, "joining the room");

async function axeViolations(page) {
  if (!(await page.evaluate(() => "axe" in window))) await page.evaluate(AXE);
  return page.evaluate(async () => (await window.axe.run(document)).violations.map((v) => `${v.id}: ${v.nodes.map((n) => n.target).join(" ")}`));
}

test("a student waits in words, the teacher is told and admits them, and they come in", async () => {
  await waitingRoom("wr-teacher", "Waiting class", "host_admits");
  const ann = await person("wr-ann");
  await studentWaits(ann, "wr-ann", "Waiting class");
  await cardSays(ann, "The class has not started yet");
  // Waiting is not being in the room: no videos, no chat.
  assert.equal(await ann.evaluate(() => document.querySelector(".room-body")?.hidden), true);
  assert.deepEqual(await axeViolations(ann), [], "axe finds nothing on the waiting card");

  const teacher = await person("wr-teacher");
  await signIn(teacher, vtp.base, "wr-teacher@example.org");
  await joinFromLobby(teacher, "Waiting class");
  await cardSays(ann, "Waiting for the teacher to let you in");
  // The teacher is told without sound: a notice and a badge on People.
  await until(teacher, () => [...document.querySelectorAll(".room [role=alert]")].some((a) => /wr-ann is waiting to be let in/.test(a.textContent)), null, 30_000, "the notice");
  await clickButton(teacher, "People (1 waiting)");
  assert.equal(await teacher.evaluate(() => document.querySelector(".controls .attention")?.textContent), "People (1 waiting)");
  await until(teacher, () => document.querySelector('button[aria-label="Admit wr-ann"]')?.offsetParent != null, null, 30_000, "Admit wr-ann shown");
  assert.deepEqual(await axeViolations(teacher), [], "axe finds nothing in the room with the waiting list");
  await teacher.evaluate(() => document.querySelector('button[aria-label="Admit wr-ann"]').click());

  await joined(ann);
  assert.equal(await ann.evaluate(() => document.querySelector(".waiting-card").hidden), true);
  await until(teacher, () => [...document.querySelectorAll(".people-list .person-name")].some((n) => n.textContent === "wr-ann"), null, 30_000, "wr-ann in the participants");
  await until(teacher, () => document.querySelector(".people .waiting").hidden, null, 30_000, "the waiting list gone");
});

test("the teacher admits everyone at once, and a student turned away is told so", async () => {
  await waitingRoom("wa-teacher", "Busy class", "host_admits");
  const teacher = await person("wa-teacher");
  await signIn(teacher, vtp.base, "wa-teacher@example.org");
  await joinFromLobby(teacher, "Busy class");
  const [bea, cal, dan] = await Promise.all(["wa-bea", "wa-cal", "wa-dan"].map((n) => person(n)));
  await studentWaits(dan, "wa-dan", "Busy class");
  await cardSays(dan, "Waiting for the teacher to let you in");
  await clickButton(teacher, "People (1 waiting)");
  await clickButton(teacher, "Deny");
  await until(dan, () => /You were not admitted/.test(document.body.textContent), null, 30_000, "told they were not admitted");

  await studentWaits(bea, "wa-bea", "Busy class");
  await studentWaits(cal, "wa-cal", "Busy class");
  await Promise.all([bea, cal].map((p) => cardSays(p, "Waiting for the teacher to let you in")));
  await until(teacher, () => document.querySelectorAll(".waiting-list li").length === 2, null, 30_000, "two waiting");
  await clickButton(teacher, "Admit all");
  await Promise.all([joined(bea), joined(cal)]);
  await until(teacher, () => document.querySelector(".room .count")?.textContent === "3 in the room", null, 30_000, "3 in the room");
});

test("Firefox: a student waits until the teacher is in the room, then comes in", { skip: noFirefox, timeout: 120_000 }, async () => {
  firefox ??= await launchFirefox();
  await waitingRoom("wf-teacher", "Fox class", "until_host_present");
  const fox = await firefox.person("wf-student", errors);
  contexts.push(fox.browserContext());
  await studentWaits(fox, "wf-student", "Fox class");
  await cardSays(fox, "The class has not started yet");
  const teacher = await person("wf-teacher");
  await signIn(teacher, vtp.base, "wf-teacher@example.org");
  await joinFromLobby(teacher, "Fox class");
  await joined(fox);
  await until(teacher, () => document.querySelector(".room .count")?.textContent === "2 in the room", null, 30_000, "2 in the room");
});
