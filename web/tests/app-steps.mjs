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
  await fill(page, "E-mail", email);
  await fill(page, "Password", password);
  await clickButton(page, "Sign in");
  await until(page, () => [...document.querySelectorAll("h1")].some((h) => h.textContent === "Rooms"), null, 30_000, "the lobby");
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
