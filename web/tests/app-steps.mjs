// Steps a person takes in the web app, shared by the suites that drive it
// (Playwright pages in Chromium, Puppeteer pages in Firefox). Only `goto`
// and `evaluate` with one argument, which both have alike, are used. Steps
// use the labels a person sees.
import { waitFor } from "./harness.mjs";

/** Resolves once `fn(arg)` is truthy in the page (polled), or throws after `ms`. */
export function until(page, fn, arg, ms = 30_000, what = "condition") {
  return waitFor(() => page.evaluate(fn, arg).catch(() => undefined), { ms, what: `${page.name ?? "page"}: ${what}` });
}

/** Signs in at `base` and waits for the lobby. */
export async function signIn(page, base, email, password = `Tq7-vB2k-9wZr-${email}`) {
  await page.goto(base + "/");
  await signInHere(page, email, password);
  await until(page, () => [...document.querySelectorAll("h1")].some((h) => h.textContent === "Rooms"), null, 30_000, "the lobby");
}

/** On the sign-in page the app shows now (e.g. after an invitation link), signs in; the app goes on where it was going. */
export async function signInHere(page, email, password = `Tq7-vB2k-9wZr-${email}`) {
  await fill(page, "E-mail", email);
  await fill(page, "Password", password);
  await clickButton(page, "Sign in");
}

/** Clicks "Join <title>" in the lobby, then "Join now" on the pre-join screen, and waits until the room is joined. */
export async function joinFromLobby(page, title) {
  await until(page, (title) => document.querySelector(`a[aria-label="Join ${CSS.escape(title)}"]`) !== null, title, 30_000, `a Join ${title} link`);
  await page.evaluate((title) => document.querySelector(`a[aria-label="Join ${CSS.escape(title)}"]`).click(), title);
  await joinNow(page);
}

/** On the pre-join screen of a room (reached from a link), presses "Join now" and waits until the room is joined. */
export async function joinNow(page) {
  await clickButton(page, "Join now");
  await until(page, () => document.querySelector(".room[data-joined]") !== null, null, 30_000, "joining the room");
}

/** Types into the input labelled `label` (as a person would: focus, then keys). */
export async function fill(page, label, value) {
  await page.evaluate(([label, value]) => {
    const l = [...document.querySelectorAll("label")].find((l) => l.textContent.trim().startsWith(label));
    const input = l?.control ?? l?.querySelector("input") ?? document.querySelector(`[aria-label="${CSS.escape(label)}"]`);
    if (!input) throw new Error(`no field labelled ${label}`);
    input.focus();
    input.value = value;
    input.dispatchEvent(new Event("input", { bubbles: true }));
  }, [label, value]);
}

/** Clicks the button named `name`. */
export async function clickButton(page, name) {
  await until(page, (name) => [...document.querySelectorAll("button")].some((b) => b.textContent.trim() === name && !b.disabled), name, 30_000, `a ${name} button`);
  await page.evaluate((name) => [...document.querySelectorAll("button")].find((b) => b.textContent.trim() === name && !b.disabled).click(), name);
}

/** Until `page` decodes video and receives audio from peer `peerId`. */
export async function receivesFrom(page, peerId, ms = 30_000) {
  let last;
  const receives = async () => {
    last = (await page.evaluate(() => window.vtpRoom.stats())).filter((s) => s.peerId === peerId);
    const video = last.some((s) => s.kind === "video" && s.framesDecoded > 0);
    const audio = last.some((s) => s.kind === "audio" && s.bytesReceived > 0);
    return video && audio && last;
  };
  const what = () => `${page.name ?? "page"}: video and audio from ${peerId} (got ${JSON.stringify(last)})`;
  return waitFor(receives, { ms, every: 250, what });
}

export const selfId = (page) => page.evaluate(() => window.vtpRoom.session.selfId);

/** Clicks the link named `name` (its aria-label, else its text). */
export async function clickLink(page, name) {
  await until(page, (name) => [...document.querySelectorAll("a")].some((a) => (a.getAttribute("aria-label") ?? a.textContent.trim()) === name), name, 30_000, `a ${name} link`);
  await page.evaluate((name) => [...document.querySelectorAll("a")].find((a) => (a.getAttribute("aria-label") ?? a.textContent.trim()) === name).click(), name);
}

/** Until the page's text contains `text`. */
export const waitForText = (page, text, ms = 15_000) => until(page, (text) => document.body.textContent.includes(text), text, ms, `"${text}" on the page`);

/** Whether the checkbox labelled `label` is checked. */
export const isChecked = (page, label) =>
  page.evaluate((label) => [...document.querySelectorAll("label")].find((l) => l.textContent.trim().startsWith(label))?.control?.checked, label);

/** Ticks or unticks the checkbox labelled `label` with a click (as a person would), if it is not so already. */
export async function setChecked(page, label, on) {
  await until(page, (label) => [...document.querySelectorAll("label")].some((l) => l.textContent.trim().startsWith(label) && l.control), label, 15_000, `a ${label} checkbox`);
  await page.evaluate(([label, on]) => {
    const box = [...document.querySelectorAll("label")].find((l) => l.textContent.trim().startsWith(label)).control;
    if (box.checked !== on) box.click();
  }, [label, on]);
}

/** In the lobby: creates a room called `title` (members only unless `access` says otherwise) and waits for its Join link. */
export async function createRoom(page, title, access) {
  await fill(page, "Title", title);
  if (access) await fill(page, "Who may join", access);
  await clickButton(page, "Create room");
  await until(page, (title) => document.querySelector(`a[aria-label="Join ${CSS.escape(title)}"]`) !== null, title, 30_000, `a Join ${title} link`);
}

/** From the lobby: makes an invitation link to `title` on its members page (at most `maxUses` uses), back in the lobby; resolves with the link. */
export async function invitationLink(page, title, maxUses) {
  await clickLink(page, `Members of ${title}`);
  await until(page, (t) => [...document.querySelectorAll("h1")].some((h) => h.textContent === t), `Members of ${title}`, 15_000, "the members page");
  if (maxUses) await fill(page, "Most uses", String(maxUses));
  await clickButton(page, "Make a link");
  const link = await until(page, () => document.querySelector('input[aria-label="The new invitation link"]')?.value, null, 15_000, "the new invitation link");
  await clickLink(page, "Back to the rooms");
  return link;
}

/** In a room: sends `text` to the chat and waits until the chat shows it. */
export async function say(page, text) {
  await fill(page, "Message", text);
  await clickButton(page, "Send");
  await until(page, (text) => document.querySelector(".chat-list")?.textContent.includes(text), text, 15_000, `"${text}" in the chat`);
}

/** A host in a room: starts (`on`) or stops recording and waits until the badge says so. */
export async function setRecording(page, on) {
  await clickButton(page, on ? "Record" : "Stop recording");
  await until(page, (on) => document.querySelector(".recording-badge")?.hidden === !on, on, 15_000, on ? "the recording badge" : "the recording badge to go");
}

/** From the lobby: opens the after-class page of `title`'s newest session and waits for its player. */
export async function openLastSession(page, title) {
  await clickLink(page, `After class: ${title}`);
  await until(page, () => document.querySelector(".session-item a") !== null, null, 15_000, "a past session");
  await page.evaluate(() => document.querySelector(".session-item a").click());
  await until(page, () => document.querySelector("article.recording video.main-track") !== null, null, 15_000, "the recording's player");
}

/** Plays the after-class page's main track; resolves with its currentTime once past `seconds`. */
export async function playPast(page, seconds, ms = 30_000) {
  await page.evaluate(() => document.querySelector("video.main-track").play());
  return until(page, (s) => {
    const t = document.querySelector("video.main-track").currentTime;
    return t > s && t;
  }, seconds, ms, `the recording played past ${seconds} s`);
}

/** The chat message the after-class transcript marks as now (its text), or null. */
export const transcriptNow = (page) => page.evaluate(() => document.querySelector(".transcript li.now[aria-current=time]")?.textContent ?? null);

/**
 * A host records about nine seconds of class in which `student` writes
 * "first words" at the start and "later words" six seconds in; resolves
 * once the API (as the host, `token`) says the room's recordings are
 * ready and both have left the room.
 */
export async function recordShortClass(vtp, { token, roomId }, host, student) {
  await setRecording(host, true);
  const started = Date.now();
  await say(student, "first words");
  await waitFor(() => Date.now() - started > 6000, { ms: 10_000, what: "six seconds of class" });
  await say(student, "later words");
  await waitFor(() => Date.now() - started > 9000, { ms: 10_000, what: "nine seconds of class" });
  await setRecording(host, false);
  await waitFor(
    async () => {
      const { items } = (await vtp.http("GET", `/api/v1/recordings?roomId=${roomId}`, undefined, token)).body;
      return items.length > 0 && items.every((r) => r.state === "ready");
    },
    { ms: 60_000, what: "the recording to be ready" },
  );
  for (const page of [student, host]) await clickButton(page, "Leave");
}

/** Until `page` sees `peerId` with a paused microphone and no camera on the server (joined muted with the camera off). */
export const seesMutedWithoutCamera = (page, peerId) =>
  until(
    page,
    (id) => {
      const peer = window.vtpRoom.session.peers.get(id);
      const mic = peer?.producers.find((p) => p.kind === "audio");
      return mic?.paused === true && !peer.producers.some((p) => p.kind === "video");
    },
    peerId,
    15_000,
    `${peerId}'s paused microphone and no camera`,
  );
