// Reactions, the host's room-wide tools and keyboard shortcuts (issue 18),
// in Chromium (Playwright) against a real `vtp`: a student reacts and the
// host sees it on the student's tile; the host mutes everyone and the
// student's page shows its microphone off; the host asks the student to
// unmute and the student accepts; a raised hand gives the host a toast;
// M toggles the microphone (not while typing); `?` opens the shortcuts
// dialog, Escape closes it and focus returns; axe finds nothing.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { CHROMIUM_FLAGS, Vtp, closeAndCheck, watchCsp } from "./harness.mjs";
import { clickButton, fill, joinFromLobby, selfId, signIn, until, waitForText } from "./app-steps.mjs";

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

after(async () => {
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

const micText = (page) => page.evaluate(() => [...document.querySelectorAll(".controls .ctl")].find((b) => b.textContent.startsWith("Mic"))?.textContent);
const axe = async (page) => {
  if (!(await page.evaluate(() => "axe" in window))) await page.evaluate(AXE);
  return page.evaluate(async () => (await window.axe.run(document)).violations.map((v) => `${v.id}: ${v.nodes.map((n) => n.target.join(" ")).join(", ")}`));
};

test("reactions, mute all, ask to unmute, hand toast, shortcuts and their help dialog", async () => {
  await vtp.user("tools-teacher@example.org", "instructor");
  await vtp.user("tools-student@example.org");
  const teacher = await person("teacher");
  await signIn(teacher, vtp.base, "tools-teacher@example.org");
  await fill(teacher, "Title", "Tools class");
  await fill(teacher, "Who may join", "signed_in");
  await clickButton(teacher, "Create room");
  await joinFromLobby(teacher, "Tools class");
  const student = await person("student");
  await signIn(student, vtp.base, "tools-student@example.org");
  await joinFromLobby(student, "Tools class");
  const studentId = await selfId(student);
  await until(student, () => document.querySelector(".controls .ctl")?.textContent === "Mic on", null, 15_000, "the microphone on");
  await until(teacher, (id) => window.vtpRoom.session.peers.get(id)?.producers.some((p) => p.kind === "audio" && !p.paused), studentId, 15_000, "the student's microphone");

  // A reaction floats over the sender's tile, on the host's page and on the
  // sender's own; the host asked for less motion, so there it stands still.
  await teacher.emulateMedia({ reducedMotion: "reduce" });
  await student.getByRole("button", { name: "React: Thumbs up" }).click();
  const float = (id) => {
    const el = document.querySelector(`.tile-camera[data-peer-id="${id}"] .reaction-float[data-emoji="👍"]`);
    return el && getComputedStyle(el).animationName;
  };
  assert.equal(await until(teacher, float, studentId, 10_000, "👍 on the student's tile"), "none", "no animation under prefers-reduced-motion");
  assert.equal(await until(student, float, studentId, 10_000, "👍 on the sender's own tile"), "reaction-rise");

  // Mute all: the student's page shows its microphone off.
  await teacher.getByRole("button", { name: "People", exact: true }).click();
  await teacher.getByRole("button", { name: "Mute all: everyone but the hosts" }).click();
  await until(student, () => document.querySelector(".controls .ctl")?.textContent === "Mic off", null, 10_000, "Mic off after mute all");
  await waitForText(student, "A host muted your microphone.");

  // Ask to unmute: a prompt on the student's page; accepting turns the microphone on.
  await teacher.getByRole("button", { name: "Ask to unmute: tools-student" }).click();
  const prompt = student.getByRole("alert").filter({ hasText: "asks you to unmute" });
  await prompt.waitFor({ timeout: 10_000 });
  assert.equal(await micText(student), "Mic off", "nothing is unmuted before the student says so");
  await prompt.getByRole("button", { name: "Unmute" }).click();
  await until(teacher, (id) => window.vtpRoom.session.peers.get(id)?.producers.some((p) => p.kind === "audio" && !p.paused), studentId, 10_000, "the student unmuted");
  await until(student, () => document.querySelector(".controls .ctl")?.textContent === "Mic on", null, 10_000, "Mic on after accepting");

  // Shortcuts: M toggles the microphone, but not while typing in the chat.
  await student.keyboard.press("m");
  await until(student, () => document.querySelector(".controls .ctl")?.textContent === "Mic off", null, 10_000, "M turns the microphone off");
  await student.getByRole("textbox", { name: /message/i }).focus();
  await student.keyboard.press("m");
  assert.equal(await micText(student), "Mic off", "typing M in the chat does not toggle the microphone");
  await student.keyboard.press("Escape");
  await student.evaluate(() => document.activeElement?.blur());

  // H raises the hand: the host gets a toast.
  await student.keyboard.press("h");
  await teacher.getByRole("status").filter({ hasText: "tools-student raised their hand." }).waitFor({ timeout: 10_000 });
  assert.deepEqual(await axe(teacher), [], "axe: the host's page with the host tools and the toast");

  // `?` opens the shortcuts dialog: focus inside, Escape closes it, focus returns.
  const help = student.getByRole("button", { name: "Shortcuts" });
  await help.focus();
  await student.keyboard.press("?");
  const dialog = student.getByRole("dialog", { name: "Keyboard shortcuts" });
  await dialog.waitFor({ timeout: 5_000 });
  assert.ok(await dialog.evaluate((d) => d.contains(document.activeElement)), "focus moves into the dialog");
  assert.match(await dialog.textContent(), /Turn the microphone on or off/);
  assert.deepEqual(await axe(student), [], "axe: the student's page with the dialog open");
  await student.keyboard.press("m");
  assert.equal(await micText(student), "Mic off", "shortcuts wait while the dialog is open");
  await student.keyboard.press("Escape");
  await dialog.waitFor({ state: "hidden", timeout: 5_000 });
  assert.ok(await help.evaluate((b) => b === document.activeElement), "focus returns to the Shortcuts button");

  await closeAndCheck(contexts, errors, cspViolations);
});
