// The room page: composes the video grid (`tiles`), the controls
// (`controls`), the device picker (`devices`) and the side panels
// (`panels`) around a `RoomSession`, shows the connection banners, joins and
// publishes, and tears everything down when the person leaves.
import type { Api, Room } from "../api";
import { alertBox, button, h, replace } from "../dom";
import { canCapture, describe, INSECURE_CONTEXT_TEXT } from "../errors";
import { ControlBar, type SidePanel } from "./controls";
import { DevicePanel } from "./devices";
import { HostTools } from "./hosttools";
import { LocalMedia } from "./local";
import { chatPanel, peoplePanel } from "./panels";
import { markInRoom, type JoinChoices } from "./prejoin";
import { RoomSession, type EndReason } from "./session";
import { SpeakerDetector } from "./speaker";
import { TileGrid, type LayoutView } from "./tiles";

/** How often the room's settings are re-read while in it. */
const SETTINGS_EVERY_MS = 15_000;

const END_TEXT: Record<EndReason["kind"], string> = {
  left: "You left the room.",
  removed: "A host removed you from this session.",
  closed: "The host closed the room.",
  ended: "The host ended the class. The room stays open for the next one.",
  elsewhere: "You joined this room from another tab or device, so you left it here.",
  denied: "You were not admitted to this class. Ask your teacher if you think this is a mistake.",
  revoked: "You were signed out.",
  error: "",
};

/** Where this device keeps the person's layout (speaker view, self view). */
const LAYOUT_KEY = "vtp.layout";

function loadLayout(): { view: LayoutView; selfHidden: boolean } {
  try {
    const stored = JSON.parse(localStorage.getItem(LAYOUT_KEY) ?? "{}") as { view?: unknown; selfHidden?: unknown };
    return { view: stored.view === "speaker" ? "speaker" : "grid", selfHidden: stored.selfHidden === true };
  } catch {
    return { view: "grid", selfHidden: false };
  }
}

function saveLayout(layout: { view: LayoutView; selfHidden: boolean }): void {
  try {
    localStorage.setItem(LAYOUT_KEY, JSON.stringify(layout));
  } catch {
    // Storage refused (private mode, full): the layout holds for this visit.
  }
}

/** Mounts the room in `root`; resolves with a function that tears it down. */
export async function roomView(root: HTMLElement, api: Api, room: Room, choices: JoinChoices, done: (message: string) => void): Promise<() => void> {
  const you = api.user?.displayName ?? "You";
  const session = new RoomSession(api, room);
  const local = new LocalMedia(session.media);
  const speaker = new SpeakerDetector(session);

  const grid = new TileGrid(session, local, you);
  const audios = h("div", { hidden: true });
  const banner = h("div", { class: "banner", role: "status", hidden: true });
  // Plain HTTP from another host: no camera or microphone, but watching,
  // listening and chat work. Said once, up front, instead of failing later.
  const insecure = h("div", { class: "banner", role: "status", hidden: canCapture() }, `${INSECURE_CONTEXT_TEXT} You can still watch, listen and chat.`);
  const notice = alertBox();
  // The waiting room: what the student waits for, in words, until a host lets them in.
  const waitTitle = h("h2", {}, "");
  const waitText = h("p", {}, "");
  const waitCard = h(
    "section",
    { class: "card waiting-card", role: "status", "aria-live": "polite", hidden: true },
    waitTitle,
    waitText,
    button("Leave", () => void session.leave(), { class: "danger" }),
  );
  const status = h("span", { class: "conn", role: "status" }, "Connecting…");
  const chat = chatPanel(session);
  const people = peoplePanel(session, you);
  const side = h("aside", { class: "side", "data-open": "chat" }, chat.el, people.el);
  const devices = new DevicePanel(local);
  const saved = loadLayout();
  grid.view = saved.view;
  grid.selfHidden = saved.selfHidden;
  const layoutChanged = () => saveLayout({ view: grid.view, selfHidden: grid.selfHidden });
  const controls = new ControlBar({ room, session, local, devices, notice: (text, kind) => notice.show(text, kind), openSide, sync, grid, layoutChanged });
  const tools = new HostTools({
    session,
    press: (which) => controls.press(which),
    openChat: () => openSide("chat"),
    unmute: async () => {
      await local.setMic(true);
      sync();
    },
    notice: (text, kind) => notice.show(text, kind),
  });
  controls.nav.append(tools.reactions);
  people.el.querySelector("h2")?.after(tools.hostBar);
  let settingsTimer: ReturnType<typeof setInterval> | undefined;
  const count = h("span", { class: "count" });
  const heading = h("h1", {}, room.title);

  replace(
    root,
    h(
      "main",
      { class: "room", id: "main" },
      h("header", { class: "room-bar" }, heading, count, status, controls.recordingBadge, h("div", { class: "spacer" }), tools.helpButton, ...controls.headerButtons),
      // The controls come right after the header for keyboard and screen
      // reader users (Tab reaches Mic and Camera before every tile and the
      // chat); the stylesheet shows them at the bottom.
      controls.nav,
      devices.el,
      banner,
      insecure,
      notice,
      waitCard,
      tools.unmutePrompt,
      h("div", { class: "room-body" }, h("section", { class: "stage", "aria-label": "Videos" }, grid.el), side),
      audios,
      tools.toast,
      tools.dialog,
    ),
  );

  /** Whether the chat can be read now: it is the open panel, and the panel shows (on phones it is an overlay). */
  function chatVisible(): boolean {
    return side.dataset.open === "chat" && getComputedStyle(side).display !== "none";
  }

  function openSide(which: SidePanel) {
    const same = side.dataset.open === which && root.querySelector(".room")?.classList.contains("side-shown");
    side.dataset.open = which;
    root.querySelector(".room")?.classList.toggle("side-shown", !same);
    controls.showSide(which);
    if (which === "chat") chat.seen();
    sync();
    // Keyboard users land in the panel they opened (on phones it covers the videos).
    if (!same) side.querySelector<HTMLElement>(which === "chat" ? ".chat input" : ".people h2")?.focus();
  }

  function sync() {
    local.syncMic();
    tools.sync();
    controls.sync(chat.unread(), chatVisible());
    heading.textContent = session.title || room.title;
    grid.render();
    count.textContent = `${session.peers.size + 1} in the room`;
  }

  // Session events to the page.
  session.onChange = (what) => {
    if (what === "chat") {
      chat.render();
      if (chatVisible()) chat.seen();
    }
    if (what === "peers" || what === "self" || what === "waiting") people.render();
    if (what === "waiting") showWaiting();
    if (what === "self") root.querySelector(".room")?.setAttribute("data-joins", String(session.joins));
    if (what === "connection") {
      const reconnecting = session.connection === "reconnecting";
      banner.hidden = !reconnecting;
      banner.textContent = "Connection lost. Reconnecting… You will be back in the room automatically.";
      status.textContent = { connecting: "Connecting…", connected: "Connected", reconnecting: "Reconnecting…", failed: "Disconnected" }[session.connection];
      status.dataset.state = session.connection;
    }
    sync();
  };
  session.media.onRemote = (m) => {
    if (m.consumer.kind === "audio") {
      const audio = h("audio", { autoplay: true, "data-producer-id": m.info.producerId });
      audio.srcObject = new MediaStream([m.track]);
      audios.append(audio);
      audio.play().catch(() => showSoundPrompt());
    }
    sync();
  };
  session.media.onRemoteGone = (producerId) => {
    audios.querySelector(`audio[data-producer-id="${CSS.escape(producerId)}"]`)?.remove();
    sync();
  };
  session.media.onRebuilding = (on) => {
    banner.hidden = !on;
    banner.textContent = "Media connection lost. Reconnecting audio and video…";
  };
  session.media.onError = (err) => notice.show(describe(err));
  session.onNotice = (text) => notice.show(text, "info");
  // Only hosts get `waiting-changed` (the first may come before our join's answer says we are one).
  session.onWaitingArrived = (arrived) => {
    const names = arrived.map((w) => w.displayName).join(", ");
    notice.show(`${names} ${arrived.length === 1 ? "is" : "are"} waiting to be let in. Open People to admit.`, "info");
  };

  /** Shows the waiting card instead of the room while the waiting room keeps us out. */
  function showWaiting() {
    const waiting = session.waitStatus;
    waitCard.hidden = waiting === null;
    root.querySelector<HTMLElement>(".room-body")?.toggleAttribute("hidden", waiting !== null);
    controls.nav.hidden = waiting !== null;
    count.hidden = waiting !== null; // not in the room: nobody to count yet
    root.querySelector(".room")?.setAttribute("data-waiting", waiting ?? "");
    if (waiting === "not_started") {
      waitTitle.textContent = "The class has not started yet";
      waitText.textContent = "You will join as soon as your teacher is in the room. Keep this page open.";
    } else if (waiting === "waiting_for_host") {
      waitTitle.textContent = "Waiting for the teacher to let you in";
      waitText.textContent = "Your teacher has been told that you are here. Keep this page open.";
    }
  }
  local.onProblem = (text) => notice.show(text, "info");
  local.onChange = sync;
  session.onEnded = (reason) => {
    teardown();
    // Signed out: this tab comes back to the room after signing in, without the pre-join screen.
    if (reason.kind !== "revoked") markInRoom(null);
    if (reason.kind === "revoked") done(`You were signed out: ${reason.reason}.`);
    else done(reason.kind === "error" ? describe(reason.error, "join") : END_TEXT[reason.kind]);
  };

  function showSoundPrompt() {
    if (root.querySelector(".sound-prompt")) return;
    const b = button("Turn on sound", () => {
      audios.querySelectorAll("audio").forEach((a) => void a.play().catch(() => {}));
      b.remove();
    }, { class: "sound-prompt primary" });
    banner.after(b);
  }

  function teardown() {
    clearInterval(settingsTimer);
    speaker.stop();
    tools.stop();
    grid.stop();
    local.stop();
    window.removeEventListener("beforeunload", unload);
    document.removeEventListener("keydown", onKey);
    delete (window as unknown as { vtpRoom?: unknown }).vtpRoom;
  }
  // Closing the tab: the server keeps our place for the grace period, so a reload comes back.
  const unload = () => local.stop();
  window.addEventListener("beforeunload", unload);
  // Escape closes what covers the room (the device panel, the side panel on phones).
  const onKey = (ev: KeyboardEvent) => {
    if (ev.key !== "Escape") return;
    const room = root.querySelector(".room");
    if (devices.open) {
      void devices.toggle();
      devices.toggleButton.focus();
    } else if (room?.classList.contains("side-shown")) {
      room.classList.remove("side-shown");
      controls.sideButton(side.dataset.open === "chat" ? "chat" : "people").focus();
    }
  };
  document.addEventListener("keydown", onKey);

  // What the browser tests read: the receiving side's real statistics.
  (window as unknown as { vtpRoom?: unknown }).vtpRoom = {
    session,
    stats: () => session.media.inboundStats(),
  };

  // Join, then publish what the room allows.
  try {
    await session.join();
  } catch (err) {
    // onEnded takes the person back to the lobby with the reason in words.
    session.end({ kind: "error", error: err });
    return () => {};
  }
  chat.render();
  people.render();
  sync();
  // Marks the page as in the room (what tests and styles can wait for).
  root.querySelector(".room")?.setAttribute("data-joined", "true");
  const mayVideo = session.role !== "participant" || room.settings.allowStudentVideo;
  // Without a secure context the banner above has said why: no request to fail.
  markInRoom(room.id);
  if (canCapture()) {
    await local
      .start(mayVideo && choices.cameraOn && session.media.canProduce("video"), choices)
      .catch((e) => notice.show(describe(e, "media")));
  }
  sync();
  speaker.start();
  // The server does not announce settings changes yet: re-read the room now
  // and then, so a newly allowed camera or screen share becomes available.
  settingsTimer = setInterval(() => {
    api.room(room.id).then((fresh) => {
      room.settings = fresh.settings;
      sync();
    }, () => {});
  }, SETTINGS_EVERY_MS);
  return () => {
    if (!session.ended) void session.leave();
    teardown();
  };
}
