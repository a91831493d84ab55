// Every browser in one class: the web app in Debian's Firefox ESR (over
// WebDriver BiDi) with Chromium beside it, on one `vtp`. Firefox numbers
// payload types and header extensions differently from Chromium; each
// person publishes camera and microphone and the others decode the video
// and receive the audio, in every direction, and chat crosses over;
// screen shares cross both ways, and simulcast layers follow the tile size
// whichever browser publishes.
import { test, before, after, afterEach } from "node:test";
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
/** Each test's browser contexts, closed after it so that its media stops loading the machine. */
let contexts = [];

before(async () => {
  if (skip) return;
  vtp = await Vtp.start(["--web-dir", dist, "--login-rate-per-ip", "1000"]);
  firefox = await launchFirefox();
  chrome = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_FLAGS });
});

afterEach(async () => {
  await Promise.all(contexts.map((c) => c.close().catch(() => {})));
  contexts = [];
});

after(async () => {
  await firefox?.close();
  await chrome?.close();
  vtp?.stop();
});

async function chromePerson(name) {
  const context = await chrome.newContext({ permissions: ["camera", "microphone"] });
  contexts.push(context);
  const page = await context.newPage();
  page.name = name;
  page.on("pageerror", (e) => errors.push(`[${name}] ${e.message}`));
  return page;
}

async function foxPerson(name) {
  const page = await firefox.person(name, errors);
  contexts.push(page.browserContext());
  return page;
}

/**
 * Headless Firefox has no screen and no picker (getDisplayMedia answers
 * NotFoundError), so the picker's answer is stood in for by a capture of
 * the tab (Firefox's `mediaSource: "browser"`, allowed by the
 * media.getusermedia.browser.enabled pref): from the click on, the app's
 * own path, encodings and all, is Firefox's.
 */
const tabAsScreen = (page) =>
  page.evaluate(() => {
    navigator.mediaDevices.getDisplayMedia = (c) =>
      navigator.mediaDevices.getUserMedia({ video: { mediaSource: "browser", frameRate: c?.video?.frameRate ?? 15 } });
  });

/** A teacher who opens a room called `title` and joins it. */
async function openRoom(page, email, title) {
  await signIn(page, vtp.base, email);
  await fill(page, "Title", title);
  await fill(page, "Who may join", "signed_in");
  await clickButton(page, "Create room");
  await joinFromLobby(page, title);
}

/** The room's notice line, if it shows a problem. */
const notice = (page) => page.evaluate(() => document.querySelector(".room [role=alert]:not([hidden])")?.textContent ?? "");

test("Firefox and Chromium see and hear each other, and chat", { skip, timeout: 120_000 }, async () => {
  await vtp.user("fox-teacher@example.org", "instructor");
  await vtp.user("chro-student@example.org");
  const fox = await foxPerson("fox-teacher");
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

test("two Firefoxes: see and hear each other, chat, a screen share and a phone tile on the small layer", { skip, timeout: 150_000 }, async () => {
  await vtp.user("fox-a@example.org", "instructor");
  await vtp.user("fox-b@example.org");
  const a = await foxPerson("fox-a");
  await openRoom(a, "fox-a@example.org", "Firefox class");
  const b = await foxPerson("fox-b");
  await signIn(b, vtp.base, "fox-b@example.org");
  await joinFromLobby(b, "Firefox class");
  const [aId, bId] = [await selfId(a), await selfId(b)];
  await receivesFrom(b, aId);
  await receivesFrom(a, bId);
  // Chat, a screen share and a phone-sized tile between two Firefoxes too.
  await fill(b, "Message", "hello from the other Firefox");
  await clickButton(b, "Send");
  await until(a, () => document.body.textContent.includes("hello from the other Firefox"), null, 10_000, "the chat message");
  await tabAsScreen(a);
  await a.locator("::-p-text(Share screen)").click();
  await decodesScreenFrom(b, aId);
  await b.setViewport({ width: 390, height: 844 });
  await tileLayer(b, aId, [0, 0], "the phone-sized tile on the other Firefox's layer 0");
  assert.deepEqual(errors, []);
});

/** Until `page` decodes a screen share from `peerId`; resolves with its stats. */
async function decodesScreenFrom(page, peerId, ms = 30_000) {
  return until(
    page,
    async (peerId) => {
      const s = (await window.vtpRoom.stats()).find((s) => s.peerId === peerId && s.source === "screen");
      return s && s.framesDecoded > 5 ? s : null;
    },
    peerId,
    ms,
    `a decoded screen share from ${peerId}`,
  );
}

test("screen shares cross between Firefox and Chromium both ways", { skip, timeout: 150_000 }, async () => {
  await vtp.user("fox-presenter@example.org", "instructor");
  // A host here too, to share back: an admin (instructors host only their own rooms).
  await vtp.user("chro-viewer@example.org", "admin");
  const fox = await foxPerson("fox-presenter");
  await openRoom(fox, "fox-presenter@example.org", "Shared screens");
  const chro = await chromePerson("chro-viewer");
  await signIn(chro, vtp.base, "chro-viewer@example.org");
  await joinFromLobby(chro, "Shared screens");
  const [foxId, chroId] = [await selfId(fox), await selfId(chro)];
  await receivesFrom(chro, foxId);

  // Firefox shares (its tab stands in for a screen); the click is a trusted one.
  await tabAsScreen(fox);
  await until(fox, () => [...document.querySelectorAll("button")].some((b) => b.textContent.trim() === "Share screen" && !b.disabled), null, 30_000, "the Share screen button");
  await fox.locator("::-p-text(Share screen)").click();
  await until(fox, () => document.querySelector(".tile-screen.self") !== null, null, 30_000, "Firefox's own screen tile").catch(async (e) =>
    assert.fail(`${e.message}; Firefox's notice: ${await notice(fox)}`),
  );
  await decodesScreenFrom(chro, foxId);

  // Chromium shares back; Firefox decodes it.
  await clickButton(chro, "Share screen");
  await decodesScreenFrom(fox, chroId);
  assert.deepEqual(errors, []);
});

/**
 * Until `page`'s tile of `peerId`'s camera has asked for a layer and
 * receives a spatial layer in `min..=max` (the page's CSP forbids eval, so
 * bounds rather than a predicate); resolves with `[layer, tile text]`.
 */
async function tileLayer(page, peerId, [min, max], what) {
  return until(
    page,
    ([peerId, min, max]) => {
      const tile = document.querySelector(`.tile-camera[data-peer-id="${CSS.escape(peerId)}"]`);
      if (!tile || tile.dataset.preferredLayer === undefined || tile.dataset.spatialLayer === undefined) return null;
      const got = Number(tile.dataset.spatialLayer);
      return got >= min && got <= max ? got + 1 : null; // layer 0 is falsy
    },
    [peerId, min, max],
    30_000,
    what,
  );
}

/** What a page's camera encodings send, for failure messages: rid, width, bytes, and why the browser limits it. */
const cameraSends = (page) =>
  page.evaluate(async () => {
    const camera = window.vtpRoom.session.media.producers.get("camera");
    if (!camera) return "nothing (no camera producer)";
    const out = [];
    (await camera.getStats()).forEach((s) => {
      if (s.type === "outbound-rtp") out.push(`${s.rid ?? "-"}:${s.frameWidth ?? 0}px/${s.bytesSent}B/${s.qualityLimitationReason ?? "?"}`);
    });
    return out.join(" ");
  });

test("simulcast layers follow the tile size in both browsers", { skip, timeout: 150_000 }, async () => {
  await vtp.user("fox-phone@example.org", "instructor");
  await vtp.user("chro-phone@example.org");
  const fox = await foxPerson("fox-phone");
  await fox.setViewport({ width: 390, height: 844 });
  await openRoom(fox, "fox-phone@example.org", "Layered class");
  const context = await chrome.newContext({ viewport: { width: 390, height: 844 }, permissions: ["camera", "microphone"] });
  contexts.push(context);
  const chro = await context.newPage();
  chro.name = "chro-phone";
  chro.on("pageerror", (e) => errors.push(`[chro-phone] ${e.message}`));
  await signIn(chro, vtp.base, "chro-phone@example.org");
  await joinFromLobby(chro, "Layered class");
  const [foxId, chroId] = [await selfId(fox), await selfId(chro)];
  await receivesFrom(chro, foxId);
  await receivesFrom(fox, chroId);

  // Phone-sized tiles ask for the small layer and get it, each way.
  await tileLayer(fox, chroId, [0, 0], "Firefox's phone tile on Chromium's layer 0");
  await tileLayer(chro, foxId, [0, 0], "Chromium's phone tile on Firefox's layer 0");
  // On a desktop-sized window the tile asks for more and climbs: each
  // publisher sends its upper layers again once they are needed.
  await fox.setViewport({ width: 1600, height: 1000 });
  await chro.setViewportSize({ width: 1600, height: 1000 });
  await tileLayer(fox, chroId, [1, 2], "Firefox's desktop tile above Chromium's layer 0").catch(async (e) =>
    assert.fail(`${e.message}; Chromium's camera sends ${await cameraSends(chro)}`),
  );
  await tileLayer(chro, foxId, [1, 2], "Chromium's desktop tile above Firefox's layer 0").catch(async (e) =>
    assert.fail(`${e.message}; Firefox's camera sends ${await cameraSends(fox)}`),
  );
  assert.deepEqual(errors, []);
});
