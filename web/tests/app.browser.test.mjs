// The web app end to end, in headless Chromium against a real `vtp` serving
// the built app: an instructor signs in and creates a room through the UI,
// two students sign in and join, and then everything a class does is checked
// on the receiving side's real WebRTC statistics (never on what the UI says
// about itself): video decoded, chat delivered, a raised hand seen, a host's
// mute stopping the audio, a screen share arriving, a reload coming back.
// Screenshots of the room (desktop and phone) go to web/test-artifacts/.
import { test, before, after, afterEach } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createHmac } from "node:crypto";
import { existsSync, mkdirSync } from "node:fs";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { CHROMIUM_FLAGS, Vtp, waitFor, watchCsp } from "./harness.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const webRoot = join(here, "..");
const dist = join(webRoot, "dist");
const artifacts = join(webRoot, "test-artifacts");
const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";
// Chromium's fake-device flags (harness.mjs); the fake UI also answers getDisplayMedia with a fake
// screen (checked here: no picker, no user gesture needed), and sound may
// start without a click.
const FLAGS = CHROMIUM_FLAGS;

let vtp, browser;
const pageErrors = [];
/** Content-Security-Policy violations of any page: none is allowed. */
const cspViolations = [];
/** Every test's people leave at its end, so the next test runs on an idle machine. */
const contexts = [];

before(async () => {
  if (!existsSync(join(dist, "index.html"))) {
    execFileSync(process.execPath, [join(webRoot, "build.mjs")], { stdio: "inherit" });
  }
  mkdirSync(artifacts, { recursive: true });
  vtp = await Vtp.start(["--web-dir", dist, "--login-rate-per-ip", "1000"]);
  browser = await chromium.launch({ executablePath: CHROMIUM, args: FLAGS });
});

afterEach(async () => {
  await Promise.all(contexts.splice(0).map((c) => c.close()));
  assert.deepEqual(cspViolations.splice(0), [], "no Content-Security-Policy violation");
});

after(async () => {
  await browser?.close();
  vtp?.stop();
});

/**
 * A person in their own browser context (own storage, own fake devices).
 * `devices` replaces getUserMedia's answer: "no-camera" or "denied"; or
 * "insecure": the page is not a secure context (plain HTTP from another
 * host), so the browser offers no navigator.mediaDevices at all.
 */
async function person(name, { viewport = { width: 1280, height: 720 }, devices = "fake", errors = pageErrors } = {}) {
  const context = await browser.newContext({ viewport, permissions: ["camera", "microphone"] });
  contexts.push(context);
  const page = await context.newPage();
  await watchCsp(page, name, cspViolations);
  if (devices === "insecure") {
    // What Chromium does on http://<another host>: no mediaDevices, isSecureContext false.
    await page.addInitScript(() => {
      Object.defineProperty(Navigator.prototype, "mediaDevices", { get: () => undefined, configurable: true });
      Object.defineProperty(window, "isSecureContext", { get: () => false, configurable: true });
    });
  } else if (devices !== "fake") {
    // The fake UI grants everything; these stand in for a laptop without a
    // camera and for a person who clicked "Block".
    await page.addInitScript((mode) => {
      const real = navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices);
      navigator.mediaDevices.getUserMedia = (c) => {
        if (mode === "denied") return Promise.reject(new DOMException("Permission denied", "NotAllowedError"));
        if (c?.video) return Promise.reject(new DOMException("Requested device not found", "NotFoundError"));
        return real(c);
      };
    }, devices);
  }
  page.on("console", (m) => {
    if (m.type() === "error") errors.push(`[${name}] ${m.text()}`);
  });
  page.on("pageerror", (e) => errors.push(`[${name}] ${e.message}`));
  page.on("response", (r) => {
    if (r.status() >= 400) errors.push(`[${name}] ${r.status()} ${r.url()}`);
  });
  page.on("dialog", (d) => d.accept());
  page.name = name;
  return page;
}

async function signIn(page, email, password) {
  await page.goto(vtp.base + "/");
  await page.getByLabel("E-mail").fill(email);
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("heading", { name: "Rooms", exact: true }).waitFor();
}

async function joinFromLobby(page, title) {
  await page.getByRole("link", { name: `Join ${title}` }).click();
  await page.getByRole("button", { name: "Join now" }).click();
  await page.locator(".room[data-joined]").waitFor();
}

/** The receiving side's inbound stats, one entry per consumer. */
const stats = (page) => page.evaluate(() => window.vtpRoom.stats());

/**
 * Waits until every remote `<video>` on the page (`expected` of them, from
 * `source` tiles) has decoded frames according to its consumer's getStats().
 */
async function waitForDecodedVideos(page, expected, source = "camera", ms = 30_000) {
  let last;
  const decoding = async () => {
    const ids = await page.$$eval(`.tile-${source}:not(.self) video`, (vs) => vs.map((v) => v.dataset.producerId).filter(Boolean));
    const all = await stats(page);
    last = { ids, decoded: ids.map((id) => all.find((s) => s.producerId === id)?.framesDecoded ?? 0) };
    return ids.length === expected && last.decoded.every((n) => n > 0) && last;
  };
  const what = () => `${page.name}: ${expected} decoding ${source} videos (got ${JSON.stringify(last)})`;
  return waitFor(decoding, { ms, every: 250, what });
}

/** Audio bytes received from `peerId` (summed over its audio consumers). */
async function audioBytesFrom(page, peerId) {
  return (await stats(page)).filter((s) => s.kind === "audio" && s.peerId === peerId).reduce((n, s) => n + s.bytesReceived, 0);
}

/** Drops expected failures (a request refused on purpose) from the page errors. */
function forgive(pattern) {
  for (let i = pageErrors.length - 1; i >= 0; i--) if (pattern.test(pageErrors[i])) pageErrors.splice(i, 1);
}

const peerIdOf = (page) => page.evaluate(() => window.vtpRoom.session.selfId);

// Media checks poll rather than sample a fixed window, so a loaded CI
// machine slows them down instead of failing them.
/** Resolves once `read()` grows past its first value. */
async function grows(read, what, ms = 10_000) {
  const first = await read();
  await waitFor(async () => (await read()) > first, { ms, every: 250, what: `${what} (stayed at ${first})` });
}

/** Resolves once `read()` stays the same while `clock()`, a flow that goes
 * on meanwhile, counts 15 more (packets in flight may still land first). */
async function stops(read, clock, what, ms = 10_000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const [before, from] = [await read(), await clock()];
    await waitFor(async () => (await clock()) >= from + 15, { ms, what: `${what}: the clock to run on` });
    const after = await read();
    if (after === before) return;
    if (Date.now() > deadline) assert.fail(`${what}: still growing (${before} to ${after})`);
  }
}

test("a class in the browser: join, see everyone, chat, hands, mute, screen share, reload", { timeout: 180_000 }, async () => {
  const started = Date.now();
  const teacherAccount = await vtp.user("teacher@example.org", "instructor");
  void teacherAccount;
  await vtp.user("ada@example.org");
  await vtp.user("bo@example.org");

  // The instructor signs in and creates a room through the UI.
  const teacher = await person("teacher");
  await signIn(teacher, "teacher@example.org", "Tq7-vB2k-9wZr-teacher@example.org");
  await teacher.getByLabel("Title").fill("Physics 101");
  await teacher.getByLabel("Students may share their screen").check();
  await teacher.getByLabel("Who may join").selectOption("signed_in");
  await teacher.getByRole("button", { name: "Create room" }).click();
  await joinFromLobby(teacher, "Physics 101");
  // Nobody watches the teacher yet: the SFU tells her page (after its hold)
  // that layer 0 is enough, and her camera (three encodings at 720 lines)
  // stops its upper ones (producer-layers-needed → setMaxSpatialLayer).
  const cameraEncodings = (check) => teacher.waitForFunction((check) => {
    const encodings = window.vtpRoom.session.media.producers.get("camera")?.rtpSender?.getParameters().encodings ?? [];
    const active = encodings.map((e) => e.active !== false);
    return encodings.length === 3 && active[0] && (check === "low only" ? !active[1] && !active[2] : active[1]);
  }, check, { timeout: 30_000 });
  await cameraEncodings("low only");

  // Two students sign in (one on a phone-sized screen) and join.
  const ada = await person("ada");
  const bo = await person("bo", { viewport: { width: 390, height: 844 } });
  for (const [page, email] of [[ada, "ada@example.org"], [bo, "bo@example.org"]]) {
    await signIn(page, email, `Tq7-vB2k-9wZr-${email}`);
    await page.locator(".room-state", { hasText: "Live" }).waitFor();
    await joinFromLobby(page, "Physics 101");
  }
  const [teacherId, adaId, boId] = await Promise.all([teacher, ada, bo].map(peerIdOf));

  // Everyone decodes everyone else's camera, and plays each microphone once.
  for (const page of [teacher, ada, bo]) {
    await waitForDecodedVideos(page, 2);
    await page.waitForFunction(() => document.querySelectorAll("audio").length >= 2);
    assert.equal(await page.locator("audio").count(), 2, `${page.name}: one audio element per other person`);
    const ids = (await stats(page)).map((x) => x.producerId);
    assert.equal(new Set(ids).size, ids.length, `${page.name}: one consumer per producer`);
  }
  // Ada's desktop tile wants a larger layer of the teacher: it is sent again.
  await cameraEncodings("upper on");

  // Bo's phone shows small tiles: each asks the SFU for the low simulcast
  // layer and is told it receives it (consumer-layers-changed).
  for (const id of [teacherId, adaId]) {
    await bo.locator(`.tile[data-peer-id="${id}"][data-preferred-layer="0"][data-spatial-layer="0"]`).waitFor({ timeout: 30_000 });
  }

  // Chat from one student reaches the others.
  await ada.getByRole("textbox", { name: "Message" }).fill("Hello from Ada");
  await ada.getByRole("button", { name: "Send" }).click();
  await teacher.locator(".chat-list", { hasText: "Hello from Ada" }).waitFor();
  await bo.getByRole("button", { name: /^Chat/ }).click(); // the panel is an overlay on phones
  await bo.locator(".chat-list", { hasText: "Hello from Ada" }).waitFor();
  await bo.screenshot({ path: join(artifacts, "room-phone-chat-390x844.png") });
  assert.ok(await bo.getByRole("textbox", { name: "Message" }).evaluate((el) => el === document.activeElement), "focus in the chat");
  await bo.keyboard.press("Escape"); // closes the overlay, focus back on its button
  await bo.locator(".room:not(.side-shown)").waitFor();
  assert.ok(await bo.getByRole("button", { name: "Chat" }).evaluate((el) => el === document.activeElement), "focus back on Chat");

  // A raised hand shows for the instructor, on the tile and in the list.
  await bo.getByRole("button", { name: "Raise hand" }).click();
  await teacher.locator(`.tile[data-peer-id="${boId}"] .hand`).waitFor();
  await teacher.getByRole("button", { name: "People (1 hand)" }).click();
  await teacher.locator(`.person[data-peer-id="${boId}"] .hand`).waitFor();
  await bo.getByRole("button", { name: "Lower hand" }).click();
  await teacher.locator(`.tile[data-peer-id="${boId}"] .hand`).waitFor({ state: "detached" });
  await bo.getByRole("button", { name: "Raise hand" }).click(); // up again for the screenshots
  await teacher.locator(`.tile[data-peer-id="${boId}"] .hand`).waitFor();

  // The instructor mutes Ada: her audio stops reaching Bo.
  const adaToBo = () => audioBytesFrom(bo, adaId);
  await grows(adaToBo, "Ada's audio reaches Bo before the mute");
  await teacher.getByRole("button", { name: "Mute ada" }).click();
  await ada.getByRole("button", { name: "Turn microphone on" }).waitFor(); // her own UI says so
  // Ada's video at Bo goes on, and is the clock.
  const adaVideoAtBo = async () => (await stats(bo)).find((s) => s.kind === "video" && s.peerId === adaId)?.framesDecoded ?? 0;
  await stops(adaToBo, adaVideoAtBo, "Ada's audio at Bo after the mute");
  const adaAudio = (await stats(bo)).find((s) => s.kind === "audio" && s.peerId === adaId);
  assert.ok(adaAudio?.paused, "Bo's consumer of Ada's audio is paused");
  // She turns it back on herself, and is heard again.
  await ada.getByRole("button", { name: "Turn microphone on" }).click();
  await ada.getByRole("button", { name: "Turn microphone off" }).waitFor();
  await grows(adaToBo, "Ada heard again after unmuting");

  // Ada picks another microphone in the device panel: she is still heard.
  await ada.getByRole("button", { name: "Devices" }).click();
  const mics = ada.getByRole("combobox", { name: "Microphone" });
  await mics.waitFor();
  const options = await mics.locator("option").evaluateAll((os) => os.map((o) => o.value));
  assert.ok(options.length >= 2, `fake microphones to choose from: ${options.length}`);
  const current = await mics.inputValue();
  await mics.selectOption(options.find((o) => o !== current));
  await ada.waitForFunction(
    (id) => window.vtpRoom.session.media.producers.get("mic")?.track?.getSettings().deviceId === id,
    await mics.inputValue(),
  );
  await ada.getByRole("button", { name: "Done" }).click();
  await grows(adaToBo, "Ada heard on her new microphone");

  // Somebody's tile is highlighted as the active speaker (the fake
  // microphones beep; levels come from the receivers' stats).
  await teacher.locator(".tile.speaking").first().waitFor();

  // The instructor shares a screen: a screen tile decodes for the others.
  await teacher.getByRole("button", { name: "Share screen" }).click();
  for (const page of [ada, bo]) {
    await waitForDecodedVideos(page, 1, "screen");
    assert.ok(await page.locator(".grid.has-screen").count(), "the grid makes room for the screen");
  }
  await teacher.locator(".tile-screen.self").waitFor();

  // The instructor records the class: everyone sees the indicator; students
  // have no recording control.
  assert.equal(await ada.getByRole("button", { name: "Record" }).count(), 0, "students cannot record");
  await teacher.getByRole("button", { name: "Record" }).click();
  for (const page of [teacher, ada, bo]) await page.locator(".recording-badge:not([hidden])").waitFor();
  // Painted: two animation frames after the badge appeared.
  const painted = () => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
  for (const page of [teacher, bo]) await page.evaluate(painted);
  await teacher.screenshot({ path: join(artifacts, "room-desktop-1280x720.png") });
  await bo.screenshot({ path: join(artifacts, "room-phone-390x844.png") });

  // Ada reloads: she is back in the room with her place, and everyone sees her again.
  await ada.reload();
  await ada.locator(".room[data-joined]").waitFor();
  assert.equal(await peerIdOf(ada), adaId, "same place (peer id) after the reload");
  await ada.locator(".chat-list", { hasText: "Hello from Ada" }).waitFor(); // the session's chat history
  await waitForDecodedVideos(ada, 2);
  await waitForDecodedVideos(ada, 1, "screen");
  for (const page of [teacher, bo]) {
    await page.waitForFunction(
      (id) => [...document.querySelectorAll(`.tile-camera[data-peer-id="${id}"] video`)].some((v) => v.dataset.producerId),
      adaId,
    );
    await waitForDecodedVideos(page, 2);
  }
  assert.equal(await teacher.locator(".tile-camera").count(), 3, "one camera tile per person, no leftovers");

  // A reloaded page still shows the recording; stopping it clears the indicator.
  await ada.locator(".recording-badge:not([hidden])").waitFor();
  await teacher.getByRole("button", { name: "Stop recording" }).click();
  for (const page of [teacher, ada, bo]) await page.locator(".recording-badge[hidden]").waitFor({ state: "attached" });

  assert.deepEqual(pageErrors, [], "no errors in the pages' consoles");
  console.log(`# web app end to end: ${((Date.now() - started) / 1000).toFixed(1)} s`);
  void teacherId;
});

test("errors in plain words, host controls, reconnection", { timeout: 180_000 }, async () => {
  const started = Date.now();
  await vtp.user("prof@example.org", "instructor");
  for (const who of ["cy", "di", "eve"]) await vtp.user(`${who}@example.org`);
  const expected = []; // this page's failed requests are the point

  // Wrong password, then a server that cannot be reached.
  const eve = await person("eve", { errors: expected });
  await eve.goto(vtp.base + "/");
  await eve.getByLabel("E-mail").fill("eve@example.org");
  await eve.getByLabel("Password").fill("not her password");
  await eve.getByRole("button", { name: "Sign in" }).click();
  await eve.getByRole("alert").filter({ hasText: "Wrong e-mail or password." }).waitFor();
  await eve.screenshot({ path: join(artifacts, "signin-wrong-password-1280x720.png") });
  await eve.route("**/api/v1/auth/login", (route) => route.abort("connectionrefused"));
  await eve.getByLabel("Password").fill("Tq7-vB2k-9wZr-eve@example.org");
  await eve.getByRole("button", { name: "Sign in" }).click();
  await eve.getByRole("alert").filter({ hasText: "The server cannot be reached" }).waitFor();
  await eve.unroute("**/api/v1/auth/login");

  // A room for one: a student is told it is full; the instructor raises the limit in the lobby.
  const prof = await person("prof");
  await signIn(prof, "prof@example.org", "Tq7-vB2k-9wZr-prof@example.org");
  await prof.getByLabel("Title").fill("   "); // passes the browser's check, not the server's
  await prof.getByLabel("Who may join").selectOption("signed_in");
  await prof.getByRole("button", { name: "Create room" }).click();
  await prof.getByRole("alert").filter({ hasText: "The title must not be empty." }).waitFor();
  forgive(/422/); // that refusal was the point
  await prof.getByLabel("Title").fill("Office hours");
  await prof.getByLabel("Most participants").fill("1");
  await prof.getByLabel("Who may join").selectOption("signed_in");
  await prof.getByRole("button", { name: "Create room" }).click();
  await joinFromLobby(prof, "Office hours");
  await signIn(eve, "eve@example.org", "Tq7-vB2k-9wZr-eve@example.org");
  await eve.getByRole("link", { name: "Join Office hours" }).click();
  await eve.getByRole("button", { name: "Join now" }).click();
  await eve.getByRole("alert").filter({ hasText: "This room is full" }).waitFor();
  const lobbyOfProf = await person("prof-lobby");
  await signIn(lobbyOfProf, "prof@example.org", "Tq7-vB2k-9wZr-prof@example.org");
  await lobbyOfProf.getByRole("button", { name: "Edit Office hours" }).click();
  await lobbyOfProf.getByLabel("Most participants").last().fill("10");
  await lobbyOfProf.getByRole("button", { name: "Save" }).click();
  await lobbyOfProf.getByRole("button", { name: "Edit Office hours" }).waitFor();
  await lobbyOfProf.close();

  // No camera: audio only, said so. Camera blocked: watching still works.
  const cy = await person("cy", { devices: "no-camera" });
  const di = await person("di", { devices: "denied" });
  await signIn(cy, "cy@example.org", "Tq7-vB2k-9wZr-cy@example.org");
  await joinFromLobby(cy, "Office hours");
  await cy.getByRole("alert").filter({ hasText: "No camera was found: you joined with audio only." }).waitFor();
  await signIn(di, "di@example.org", "Tq7-vB2k-9wZr-di@example.org");
  await joinFromLobby(di, "Office hours");
  await di.getByRole("alert").filter({ hasText: "The browser blocked the camera or microphone" }).waitFor();
  await waitForDecodedVideos(di, 1); // the instructor's camera (cy has none)
  const [cyId, diId] = await Promise.all([cy, di].map(peerIdOf));
  await grows(() => audioBytesFrom(prof, cyId), "cy heard with audio only");
  assert.equal(await prof.locator(`.tile[data-peer-id="${cyId}"].no-video`).count(), 1, "cy's tile shows her name, no video");

  // The signalling connection drops: a banner, then back in the same place, media still flowing.
  await di.evaluate(() => window.vtpRoom.session.sig.socket.io.engine.close());
  await di.getByText("Connection lost. Reconnecting").waitFor();
  await di.locator(".room[data-joins='2']").waitFor(); // joined again
  await di.getByText("Connection lost. Reconnecting").waitFor({ state: "hidden" });
  assert.equal(await peerIdOf(di), diId, "same place after the reconnect");
  await grows(async () => (await stats(di)).find((x) => x.kind === "video")?.framesDecoded ?? 0, "di decoding after the reconnect");

  // The instructor turns the camera off (the others see the name) and on again (video again).
  const profId = await peerIdOf(prof);
  await prof.getByRole("button", { name: "Turn camera off" }).click();
  await di.locator(`.tile-camera[data-peer-id="${profId}"].no-video`).waitFor();
  await prof.getByRole("button", { name: "Turn camera on" }).click();
  await di.locator(`.tile-camera[data-peer-id="${profId}"]:not(.no-video)`).waitFor();
  await waitForDecodedVideos(di, 1);

  // A failed transport first gets an ICE restart: same consumers, video goes on.
  const consumerIds = () => di.evaluate(() => [...window.vtpRoom.session.media.remote.values()].map((m) => m.consumer.id).join());
  const beforeRestart = await consumerIds();
  await di.evaluate(() => {
    const media = window.vtpRoom.session.media;
    return media.recover("recv", media.recv);
  });
  await grows(async () => (await stats(di)).find((x) => x.kind === "video")?.framesDecoded ?? 0, "di decoding after the ICE restart");
  assert.equal(await consumerIds(), beforeRestart, "the ICE restart kept the consumers");

  // When that cannot help, a new transport carries everything again.
  const oldConsumer = await di.evaluate(() => [...window.vtpRoom.session.media.remote.values()].map((m) => m.consumer.id).join());
  await di.evaluate(() => window.vtpRoom.session.media.rebuild("recv"));
  await waitForDecodedVideos(di, 1);
  assert.notEqual(await di.evaluate(() => [...window.vtpRoom.session.media.remote.values()].map((m) => m.consumer.id).join()), oldConsumer);

  // Host controls: promote, remove (and the removed person cannot come back), end the class.
  await prof.getByRole("button", { name: "People" }).click();
  await prof.getByRole("button", { name: "Make di a presenter" }).click();
  await di.getByRole("alert").filter({ hasText: "A host made you a presenter" }).waitFor();
  await prof.locator(`.person[data-peer-id="${diId}"] .role`, { hasText: "Presenter" }).waitFor();
  await prof.getByRole("button", { name: "Remove cy" }).click();
  await cy.getByRole("alert").filter({ hasText: "A host removed you from this session." }).waitFor();
  await cy.getByRole("link", { name: "Join Office hours" }).click();
  await cy.getByRole("button", { name: "Join now" }).click();
  await cy.getByRole("alert").filter({ hasText: "A host removed you from this session." }).waitFor();
  // Ending the class sends everyone out but keeps the room open: the next
  // session starts when the host comes back, and Di joins it (closing the
  // room used to leave it without a Join link).
  await prof.getByRole("button", { name: "End class" }).click();
  await di.getByRole("alert").filter({ hasText: "The host ended the class. The room stays open for the next one." }).waitFor();
  await di.locator(".room-item", { hasText: "Office hours" }).locator(".room-state", { hasText: "Open" }).waitFor();
  await joinFromLobby(prof, "Office hours");
  await joinFromLobby(di, "Office hours");
  assert.equal(await di.locator(".room[data-joined]").count(), 1, "joined the next session");

  // Only the refused requests of this test (sign-in, full, removed) show as errors; nothing else.
  assert.deepEqual(pageErrors, [], "no unexpected errors in the pages' consoles");
  console.log(`# web app errors and host controls: ${((Date.now() - started) / 1000).toFixed(1)} s`);
});

test("a page that is not a secure context: told HTTPS is needed, still watches and chats", { timeout: 90_000 }, async () => {
  await vtp.user("host@example.org", "instructor");
  await vtp.user("una@example.org");
  const host = await person("host");
  await signIn(host, "host@example.org", "Tq7-vB2k-9wZr-host@example.org");
  await host.getByLabel("Title").fill("Plain HTTP class");
  await host.getByLabel("Who may join").selectOption("signed_in");
  await host.getByRole("button", { name: "Create room" }).click();
  await joinFromLobby(host, "Plain HTTP class");

  const una = await person("una", { devices: "insecure" });
  await signIn(una, "una@example.org", "Tq7-vB2k-9wZr-una@example.org");
  await joinFromLobby(una, "Plain HTTP class");
  const text = "This page must be opened over HTTPS to use your camera and microphone.";
  await una.locator(".banner", { hasText: text }).waitFor();
  await una.screenshot({ path: join(artifacts, "room-insecure-context-1280x720.png") });
  // Pressing the microphone says the same in words, not a TypeError.
  await una.getByRole("button", { name: "Turn microphone on" }).click();
  await una.getByRole("alert").filter({ hasText: text }).waitFor();
  assert.ok(await una.getByRole("button", { name: "Share screen" }).isDisabled(), "no screen sharing either");
  // Receiving and chat work.
  await waitForDecodedVideos(una, 1);
  await una.getByRole("textbox", { name: "Message" }).fill("Hello over plain HTTP");
  await una.getByRole("button", { name: "Send" }).click();
  await host.locator(".chat-list", { hasText: "Hello over plain HTTP" }).waitFor();
  assert.deepEqual(pageErrors, [], "no unexpected errors in the pages' consoles");
});

test("accounts: register, admin changes a role, change password, sign out everywhere", { timeout: 60_000 }, async () => {
  await vtp.user("root@example.org", "admin");
  const refused = []; // a wrong current password and signed-out tokens are refused on purpose
  // Registration through the UI lands in the lobby.
  const fay = await person("fay", { viewport: { width: 390, height: 844 }, errors: refused });
  await fay.goto(vtp.base + "/register");
  await fay.getByLabel("Your name").fill("Fay Lin");
  await fay.getByLabel("E-mail").fill("fay@example.org");
  await fay.getByLabel("Password").fill("Fay keeps 4 violet canoes");
  await fay.getByRole("button", { name: "Create account" }).click();
  await fay.getByRole("heading", { name: "Rooms", exact: true }).waitFor();
  assert.equal(await fay.getByRole("button", { name: "Create room" }).count(), 0, "students cannot create rooms");

  // The admin makes her an instructor.
  // The admin signs in with the keyboard only.
  const root = await person("root");
  await root.goto(vtp.base + "/");
  await root.keyboard.type("root@example.org"); // the e-mail field has the focus
  await root.keyboard.press("Tab");
  await root.keyboard.type("Tq7-vB2k-9wZr-root@example.org");
  await root.keyboard.press("Enter");
  await root.getByRole("heading", { name: "Rooms", exact: true }).waitFor();
  await root.getByRole("link", { name: "Users" }).click();
  await root.getByRole("searchbox", { name: "Search users" }).fill("fay");
  await root.getByRole("combobox", { name: "Role of Fay Lin" }).selectOption("instructor");
  // A role change is confirmed in a dialog first.
  await root.getByRole("dialog").getByRole("button", { name: "Change role" }).click();
  await root.getByRole("alert").filter({ hasText: "Fay Lin is now an instructor." }).waitFor();
  await root.screenshot({ path: join(artifacts, "admin-users-1280x720.png") });

  // She changes her password (a wrong current one is refused in words), then signs out everywhere.
  await fay.goto(vtp.base + "/account");
  await fay.getByLabel("Current password").fill("wrong-password");
  await fay.getByLabel("New password").fill("Fay keeps 5 orange kites");
  await fay.getByRole("button", { name: "Change password" }).click();
  await fay.getByRole("alert").filter({ hasText: "Your current password is wrong." }).waitFor();
  await fay.getByLabel("Current password").fill("Fay keeps 4 violet canoes");
  await fay.getByRole("button", { name: "Change password" }).click();
  await fay.getByRole("alert").filter({ hasText: "Password changed." }).waitFor();
  await fay.getByRole("button", { name: "Sign out everywhere" }).click();
  await fay.getByRole("alert").filter({ hasText: "You are signed out on every device." }).waitFor();
  // The new password works, and she is an instructor now.
  await signIn(fay, "fay@example.org", "Fay keeps 5 orange kites");
  await fay.getByRole("button", { name: "Create room" }).waitFor();
  await fay.locator(".room-item").first().waitFor();
  await fay.screenshot({ path: join(artifacts, "lobby-phone-390x844.png"), fullPage: true });
  assert.deepEqual(pageErrors, [], "no errors in the admin's console");
});

/** The code an authenticator app shows for the otpauth URI's secret at time step `step` (RFC 6238). */
function totp(uri, step) {
  const secret = new URL(uri).searchParams.get("secret");
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  const bits = [...secret].map((c) => alphabet.indexOf(c).toString(2).padStart(5, "0")).join("");
  const key = Buffer.from(bits.match(/.{8}/g).map((b) => parseInt(b, 2)));
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(step));
  const mac = createHmac("sha1", key).update(counter).digest();
  return String((mac.readUInt32BE(mac[19] & 15) & 0x7fffffff) % 1_000_000).padStart(6, "0");
}

test("two-factor sign-in: enrol on the account page, sign out, sign in with a code", { timeout: 60_000 }, async () => {
  await vtp.user("ivy@example.org");
  const ivy = await person("ivy");
  await signIn(ivy, "ivy@example.org", "Tq7-vB2k-9wZr-ivy@example.org");
  await ivy.getByRole("link", { name: "Account" }).click();
  await ivy.getByRole("button", { name: "Turn on two-factor sign-in" }).click();
  await ivy.locator("svg.qr").waitFor();
  const uri = await ivy.locator("a.otpauth").getAttribute("href");
  const step = Math.floor(Date.now() / 30_000);
  await ivy.getByLabel("Code from the app").fill(totp(uri, step));
  await ivy.getByRole("button", { name: "Confirm" }).click();
  await ivy.locator(".recovery-codes li").nth(9).waitFor();
  assert.equal(await ivy.locator(".recovery-codes li").count(), 10, "ten recovery codes");
  await ivy.getByRole("button", { name: "I have kept them" }).click();
  await ivy.getByRole("button", { name: "Sign out", exact: true }).click();
  await ivy.getByLabel("E-mail").fill("ivy@example.org");
  await ivy.getByLabel("Password").fill("Tq7-vB2k-9wZr-ivy@example.org");
  await ivy.getByRole("button", { name: "Sign in" }).click();
  // The confirming code was used; the app's next one (within the server's window) signs her in.
  await ivy.getByLabel("Code from your authenticator app").fill(totp(uri, step + 1));
  await ivy.getByRole("button", { name: "Verify" }).click();
  await ivy.getByRole("heading", { name: "Rooms", exact: true }).waitFor();
  assert.deepEqual(pageErrors, [], "no errors in the console");
});

test("away longer than the reconnect grace and the token's life: back as a new peer, media rebuilt both ways", { timeout: 90_000 }, async () => {
  // A server of its own with a one-second grace and four-second access
  // tokens, so the test need not wait 15 s (grace) or 15 min (tokens).
  const short = await Vtp.start(["--web-dir", dist, "--reconnect-grace", "1s", "--access-token-ttl", "4s", "--login-rate-per-ip", "1000"]);
  try {
    await short.user("gil@example.org", "instructor");
    await short.user("hal@example.org");
    const signInAt = async (page, email) => {
      await page.goto(short.base + "/");
      await page.getByLabel("E-mail").fill(email);
      await page.getByLabel("Password").fill(`Tq7-vB2k-9wZr-${email}`);
      await page.getByRole("button", { name: "Sign in" }).click();
      await page.getByRole("heading", { name: "Rooms", exact: true }).waitFor();
    };
    const gil = await person("gil");
    await signInAt(gil, "gil@example.org");
    await gil.getByLabel("Title").fill("Late lab");
    await gil.getByLabel("Who may join").selectOption("signed_in");
    await gil.getByRole("button", { name: "Create room" }).click();
    await joinFromLobby(gil, "Late lab");
    const hal = await person("hal");
    await signInAt(hal, "hal@example.org");
    await joinFromLobby(hal, "Late lab");
    await waitForDecodedVideos(gil, 1);
    await waitForDecodedVideos(hal, 1);
    const halBefore = await peerIdOf(hal);

    // Hal's connection is gone for longer than the grace (and than the
    // token he connected with): the room sees him leave.
    await hal.evaluate(() => window.vtpRoom.session.sig.socket.disconnect());
    await hal.getByText("Connection lost. Reconnecting").waitFor();
    await gil.locator(`.tile[data-peer-id="${halBefore}"]`).waitFor({ state: "detached" });
    // The newest access token Hal's page holds (the one he connected with,
    // or a later one) runs out: the server refuses it.
    const held = await hal.evaluate(() => JSON.parse(localStorage.getItem("vtp.session")).accessToken);
    await waitFor(async () => (await short.http("GET", "/api/v1/auth/me", undefined, held)).status === 401,
      { ms: 15_000, every: 250, what: "Hal's access token to expire" });
    await hal.evaluate(() => window.vtpRoom.session.sig.socket.connect());

    // He is back as a new peer, told so, and media flows both ways on new transports.
    await hal.locator(".room[data-joins='2']").waitFor();
    await hal.getByRole("alert").filter({ hasText: "You were away for a while" }).waitFor();
    await hal.getByText("Connection lost. Reconnecting").waitFor({ state: "hidden" });
    assert.notEqual(await peerIdOf(hal), halBefore, "a new place after the grace period");
    await waitForDecodedVideos(gil, 1);
    await waitForDecodedVideos(hal, 1);
    assert.equal(await gil.locator(".tile-camera").count(), 2, "no tile left over from before");

    // Leaving: back in the lobby, and gone from the others' grid.
    const halNow = await peerIdOf(hal);
    await hal.getByRole("button", { name: "Leave" }).click();
    await hal.getByRole("alert").filter({ hasText: "You left the room." }).waitFor();
    await gil.locator(`.tile[data-peer-id="${halNow}"]`).waitFor({ state: "detached" });
    assert.deepEqual(pageErrors, [], "no errors in the pages' consoles");
  } finally {
    await Promise.all(contexts.splice(0).map((c) => c.close()));
    short.stop();
  }
});

test("classes: an invitation link makes a member who joins; a non-member is refused in words", { timeout: 90_000 }, async () => {
  await vtp.user("kim@example.org", "instructor");
  await vtp.user("lou@example.org");
  await vtp.user("mia@example.org");
  const refused = []; // the outsider's 404s are the point
  // The teacher makes a class (members only, the default) and an invitation link for it.
  const kim = await person("kim");
  await signIn(kim, "kim@example.org", "Tq7-vB2k-9wZr-kim@example.org");
  await kim.getByLabel("Title").fill("Biology 2");
  await kim.getByRole("button", { name: "Create room" }).click();
  await kim.getByRole("link", { name: "Members of Biology 2" }).click();
  await kim.getByRole("heading", { name: "Members of Biology 2" }).waitFor();
  await kim.getByLabel("Most uses (empty: no limit)").fill("5");
  await kim.getByRole("button", { name: "Make a link" }).click();
  const link = await kim.getByLabel("The new invitation link").inputValue();
  assert.match(link, /\/invite\/[A-Za-z0-9_-]{43}$/);
  await kim.getByRole("link", { name: "Back to the rooms" }).click();
  await joinFromLobby(kim, "Biology 2");
  const roomUrl = kim.url();

  // A student who is no member neither sees the class nor gets in by its address.
  const lou = await person("lou", { errors: refused });
  await signIn(lou, "lou@example.org", "Tq7-vB2k-9wZr-lou@example.org");
  assert.equal(await lou.getByRole("link", { name: "Join Biology 2" }).count(), 0);
  await lou.goto(roomUrl);
  await lou.getByText("you are not one of its members").waitFor();

  // A student who opens the link signs in, becomes a member and is in the room.
  const mia = await person("mia", { errors: refused });
  await mia.goto(link);
  await mia.getByLabel("E-mail").fill("mia@example.org");
  await mia.getByLabel("Password").fill("Tq7-vB2k-9wZr-mia@example.org");
  await mia.getByRole("button", { name: "Sign in" }).click();
  await mia.getByRole("button", { name: "Join now" }).click();
  await mia.locator(".room[data-joined]").waitFor();
  assert.equal(new URL(mia.url()).pathname, new URL(roomUrl).pathname);
  await kim.getByText("mia", { exact: false }).first().waitFor();
});
