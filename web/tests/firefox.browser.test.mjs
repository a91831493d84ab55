// Every browser in one class: the web app in Debian's Firefox ESR (over
// WebDriver BiDi) with Chromium beside it, on one `vtp`. Firefox numbers
// payload types and header extensions differently from Chromium; each
// person publishes camera and microphone and the others decode the video
// and receive the audio, in every direction, and chat crosses over.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { CHROMIUM_FLAGS, Vtp } from "./harness.mjs";
import { FIREFOX, launchFirefox } from "./firefox.mjs";
import { clickButton, fill, joinFromLobby, receivesFrom, selfId, signIn, until } from "./app-steps.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const dist = join(here, "..", "dist");
const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";
const skip = existsSync(FIREFOX) ? false : "Debian's firefox-esr is not installed";

let vtp, firefox, chrome;
const errors = [];

before(async () => {
  if (skip) return;
  vtp = await Vtp.start(["--web-dir", dist, "--login-rate-per-ip", "1000"]);
  firefox = await launchFirefox();
  chrome = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_FLAGS });
});

after(async () => {
  await firefox?.close();
  await chrome?.close();
  vtp?.stop();
});

async function chromePerson(name) {
  const context = await chrome.newContext({ permissions: ["camera", "microphone"] });
  const page = await context.newPage();
  page.name = name;
  page.on("pageerror", (e) => errors.push(`[${name}] ${e.message}`));
  return page;
}

/** A teacher who opens a room called `title` and joins it. */
async function openRoom(page, email, title) {
  await signIn(page, vtp.base, email);
  await fill(page, "Title", title);
  await clickButton(page, "Create room");
  await joinFromLobby(page, title);
}

/** The room's notice line, if it shows a problem. */
const notice = (page) => page.evaluate(() => document.querySelector(".room [role=alert]:not([hidden])")?.textContent ?? "");

test("Firefox and Chromium see and hear each other, and chat", { skip, timeout: 120_000 }, async () => {
  await vtp.user("fox-teacher@example.org", "instructor");
  await vtp.user("chro-student@example.org");
  const fox = await firefox.person("fox-teacher", errors);
  await openRoom(fox, "fox-teacher@example.org", "Mixed class");
  const chro = await chromePerson("chro-student");
  await signIn(chro, vtp.base, "chro-student@example.org");
  await joinFromLobby(chro, "Mixed class");

  const [foxId, chroId] = [await selfId(fox), await selfId(chro)];
  await receivesFrom(chro, foxId).catch(async (e) => assert.fail(`${e.message}; Firefox's notice: ${await notice(fox)}`));
  await receivesFrom(fox, chroId);

  // Chat from Firefox reaches Chromium.
  await fill(fox, "Message", "hello from Firefox");
  await clickButton(fox, "Send");
  await until(chro, () => document.body.textContent.includes("hello from Firefox"), null, 10_000, "the chat message");
  assert.deepEqual(errors, []);
});

test("two Firefox students see and hear each other", { skip, timeout: 120_000 }, async () => {
  await vtp.user("fox-a@example.org", "instructor");
  await vtp.user("fox-b@example.org");
  const a = await firefox.person("fox-a", errors);
  await openRoom(a, "fox-a@example.org", "Firefox class");
  const b = await firefox.person("fox-b", errors);
  await signIn(b, vtp.base, "fox-b@example.org");
  await joinFromLobby(b, "Firefox class");
  await receivesFrom(b, await selfId(a));
  await receivesFrom(a, await selfId(b));
  assert.deepEqual(errors, []);
});
