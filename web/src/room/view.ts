// The room page: the video grid, the controls bar, the side panels and the
// connection banner. Tiles are kept by key and updated in place, so a video
// element is never recreated while it plays.
import type { Api, Room } from "../api";
import { alertBox, button, h, replace } from "../dom";
import { canCapture, describe, INSECURE_CONTEXT_TEXT } from "../errors";
import type { RemoteMedia } from "../media";
import { LocalMedia } from "./local";
import { chatPanel, peoplePanel } from "./panels";
import { RoomSession, type EndReason } from "./session";
import { TileLayers } from "./layers";
import { SpeakerDetector } from "./speaker";

interface Tile {
  el: HTMLElement;
  video: HTMLVideoElement;
  name: HTMLElement;
  badges: HTMLElement;
}

/** How often the room's settings are re-read while in it. */
const SETTINGS_EVERY_MS = 15_000;

const END_TEXT: Record<EndReason["kind"], string> = {
  left: "You left the room.",
  removed: "A host removed you from this session.",
  closed: "The host closed the room.",
  error: "",
};

/** Mounts the room in `root`; resolves with a function that tears it down. */
export async function roomView(root: HTMLElement, api: Api, room: Room, done: (message: string) => void): Promise<() => void> {
  const you = api.user?.displayName ?? "You";
  const session = new RoomSession(api, room);
  const local = new LocalMedia(session.media);
  const speaker = new SpeakerDetector(session);

  const grid = h("div", { class: "grid", role: "list", "aria-label": "Video" });
  const audios = h("div", { hidden: true });
  const banner = h("div", { class: "banner", role: "status", hidden: true });
  // Plain HTTP from another host: no camera or microphone, but watching,
  // listening and chat work. Said once, up front, instead of failing later.
  const insecure = h("div", { class: "banner", role: "status", hidden: canCapture() }, `${INSECURE_CONTEXT_TEXT} You can still watch, listen and chat.`);
  const notice = alertBox();
  const status = h("span", { class: "conn", role: "status" }, "Connecting…");
  const chat = chatPanel(session);
  const people = peoplePanel(session, you);
  const side = h("aside", { class: "side", "data-open": "chat" }, chat.el, people.el);
  const tiles = new Map<string, Tile>();
  const layers = new TileLayers(session.media);
  let settingsTimer: ReturnType<typeof setInterval> | undefined;

  /** Runs a control's action; a failure becomes a sentence, never an unhandled rejection. */
  const act = (action: () => Promise<unknown>) => () =>
    void action()
      .catch((e) => notice.show(describe(e, "media")))
      .finally(sync);
  // Controls. Each has a visible label and a pressed state for assistive tech.
  const micBtn = button("Mic", act(() => local.setMic(!local.state.micOn)), { class: "ctl" });
  const camBtn = button("Camera", act(() => local.setCamera(!local.state.cameraOn)), { class: "ctl" });
  const screenBtn = button("Share screen", act(() => local.setScreen(!local.state.screen)), { class: "ctl", "aria-pressed": "false" });
  const handBtn = button("Raise hand", act(() => session.setHand(!session.handRaised)), { class: "ctl", "aria-pressed": "false" });
  const devicesBtn = button("Devices", () => void toggleDevices(), { class: "ctl", "aria-expanded": "false" });
  const chatBtn = button("Chat", () => openSide("chat"), { class: "ctl side-toggle", "aria-pressed": "true" });
  const peopleBtn = button("People", () => openSide("people"), { class: "ctl side-toggle", "aria-pressed": "false" });
  const leaveBtn = button("Leave", () => void session.leave(), { class: "danger" });
  const linkBtn = button("Copy link", () => {
    // No clipboard API on plain-http origins other than localhost: show the link instead.
    const copied = navigator.clipboard ? navigator.clipboard.writeText(location.href) : Promise.reject(new Error("no clipboard"));
    copied.then(
      () => notice.show("Room link copied: send it to your students.", "info"),
      () => notice.show(`Room link: ${location.href}`, "info"),
    );
  }, { title: "Copy this room's address" });
  // Hosts record the class; everyone sees that it is being recorded.
  const recordBtn = button("Record", act(() => session.setRecording(!session.recording)), { "aria-pressed": "false", hidden: true });
  const recordingBadge = h("span", { class: "recording-badge", role: "status", hidden: true }, "● Recording");
  const closeBtn = button("Close room", () => {
    if (confirm("Close the room for everyone?")) act(() => session.closeRoom())();
  }, { class: "danger", hidden: true });
  const devices = h("div", { class: "devices", hidden: true, role: "group", "aria-label": "Devices" });
  const count = h("span", { class: "count" });
  const heading = h("h1", {}, room.title);

  replace(
    root,
    h(
      "main",
      { class: "room", id: "main" },
      h("header", { class: "room-bar" }, heading, count, status, recordingBadge, h("div", { class: "spacer" }), linkBtn, recordBtn, closeBtn, leaveBtn),
      banner,
      insecure,
      notice,
      h("div", { class: "room-body" }, h("section", { class: "stage", "aria-label": "Videos" }, grid), side),
      devices,
      h("nav", { class: "controls", "aria-label": "Room controls" }, micBtn, camBtn, screenBtn, handBtn, devicesBtn, chatBtn, peopleBtn),
      audios,
    ),
  );

  function openSide(which: "chat" | "people") {
    const same = side.dataset.open === which && root.querySelector(".room")?.classList.contains("side-shown");
    side.dataset.open = which;
    root.querySelector(".room")?.classList.toggle("side-shown", !same);
    chatBtn.setAttribute("aria-pressed", String(which === "chat"));
    peopleBtn.setAttribute("aria-pressed", String(which === "people"));
    if (which === "chat") chat.seen();
    sync();
    // Keyboard users land in the panel they opened (on phones it covers the videos).
    if (!same) side.querySelector<HTMLElement>(which === "chat" ? ".chat input" : ".people h2")?.focus();
  }

  async function toggleDevices() {
    const open = devices.hidden;
    devices.hidden = !open;
    devicesBtn.setAttribute("aria-expanded", String(open));
    if (!open) return;
    const found = await local.devices().catch((e: unknown) => {
      replace(devices, h("p", { class: "muted" }, describe(e, "media")));
      return null;
    });
    if (!found) return;
    const { mics, cameras } = found;
    const select = (label: string, list: MediaDeviceInfo[], current: string, use: (id: string) => Promise<void>) => {
      const id = `dev-${label}`;
      const sel = h("select", { id }, ...list.map((d, i) => h("option", { value: d.deviceId, selected: d.deviceId === current }, d.label || `${label} ${i + 1}`)));
      sel.addEventListener("change", () => void use(sel.value));
      return h("div", { class: "field" }, h("label", { for: id }, label), list.length ? sel : h("p", { class: "muted" }, `No ${label.toLowerCase()} found.`));
    };
    replace(
      devices,
      select("Microphone", mics, local.state.micId, (id) => local.useMic(id)),
      select("Camera", cameras, local.state.cameraId, (id) => local.useCamera(id)),
      button("Done", () => void toggleDevices()),
    );
  }

  function tile(key: string, peerId: string, source: "camera" | "screen"): Tile {
    let t = tiles.get(key);
    if (t) return t;
    const video = h("video", { autoplay: true, playsinline: true, muted: true });
    video.muted = true; // Sound plays from separate audio elements.
    const name = h("span", { class: "tile-name" });
    const badges = h("span", { class: "tile-badges" });
    const el = h(
      "figure",
      { class: `tile tile-${source}`, role: "listitem", "data-peer-id": peerId, "data-source": source },
      video,
      h("div", { class: "avatar", "aria-hidden": "true" }),
      h("figcaption", {}, name, badges),
    );
    t = { el, video, name, badges };
    tiles.set(key, t);
    if (!key.startsWith("self:")) layers.watch(video);
    grid.append(el);
    return t;
  }

  function setVideo(t: Tile, track: MediaStreamTrack | null, producerId = "") {
    const current = (t.video.srcObject as MediaStream | null)?.getVideoTracks()[0] ?? null;
    if (current !== track) {
      t.video.srcObject = track ? new MediaStream([track]) : null;
      if (track) t.video.play().catch(() => {});
    }
    if (t.video.dataset.producerId !== producerId || current !== track) {
      // A new consumer starts at the server's default (the best layer): ask for the one that fits.
      delete t.el.dataset.preferredLayer;
      t.video.dataset.producerId = producerId;
      if (producerId) layers.schedule(t.video);
    }
    quality(t, producerId);
    t.el.classList.toggle("no-video", !track);
  }

  /** What the SFU sends this tile now (`consumer-layers-changed`): a data attribute, and a hint when it is not the best. */
  function quality(t: Tile, producerId: string) {
    const got = session.media.remote.get(producerId)?.layers;
    if (!got) {
      delete t.el.dataset.spatialLayer;
      t.video.removeAttribute("title");
      return;
    }
    t.el.dataset.spatialLayer = String(got.spatialLayer);
    t.video.title = ["Low", "Medium", "High"][got.spatialLayer] ?? "High";
    t.video.title += " quality video";
  }

  function label(t: Tile, name: string, micOn: boolean, hand: boolean, peerId: string) {
    t.name.textContent = name;
    const avatar = t.el.querySelector(".avatar");
    if (avatar) avatar.textContent = initials(name);
    replace(
      t.badges,
      micOn ? null : h("span", { class: "badge", title: "Microphone off" }, "Mic off"),
      hand ? h("span", { class: "badge hand" }, "Hand raised") : null,
    );
    t.el.classList.toggle("speaking", session.activeSpeaker === peerId && micOn);
  }

  /** Brings the tiles in line with the session (cheap; runs on every change). */
  function renderTiles() {
    const wanted = new Set<string>();
    // Ourselves.
    const self = tile("self:camera", session.selfId, "camera");
    wanted.add("self:camera");
    setVideo(self, local.state.cameraOn ? local.state.camera : null);
    self.el.classList.add("self");
    self.el.dataset.peerId = session.selfId; // known only once joined
    label(self, `${you} (you)`, local.state.micOn, session.handRaised, session.selfId);
    if (local.state.screen) {
      const s = tile("self:screen", session.selfId, "screen");
      wanted.add("self:screen");
      s.el.classList.add("self");
      setVideo(s, local.state.screen);
      label(s, `Your screen`, true, false, "");
    }
    // Everyone else, in order of arrival.
    for (const peer of session.peers.values()) {
      const micOn = peer.producers.some((p) => p.kind === "audio" && !p.paused);
      const camera = findRemote(peer.peerId, "camera");
      const t = tile(`${peer.peerId}:camera`, peer.peerId, "camera");
      wanted.add(`${peer.peerId}:camera`);
      setVideo(t, camera && !camera.info.paused ? camera.track : null, camera?.info.producerId);
      label(t, peer.displayName, micOn, peer.handRaised, peer.peerId);
      const screen = findRemote(peer.peerId, "screen");
      if (screen) {
        const s = tile(`${peer.peerId}:screen`, peer.peerId, "screen");
        wanted.add(`${peer.peerId}:screen`);
        setVideo(s, screen.track, screen.info.producerId);
        label(s, `${peer.displayName}'s screen`, true, false, "");
      }
    }
    for (const [key, t] of tiles) {
      if (!wanted.has(key)) {
        layers.unwatch(t.video);
        t.video.srcObject = null;
        t.el.remove();
        tiles.delete(key);
      }
    }
    grid.dataset.count = String(Math.min(tiles.size, 9));
    grid.classList.toggle("has-screen", [...tiles.keys()].some((k) => k.endsWith(":screen")));
    count.textContent = `${session.peers.size + 1} in the room`;
  }

  function findRemote(peerId: string, source: "camera" | "screen"): RemoteMedia | undefined {
    for (const m of session.media.remote.values()) {
      if (m.info.peerId === peerId && m.consumer.kind === "video" && (m.info.appData?.source === "screen") === (source === "screen")) return m;
    }
    return undefined;
  }

  function sync() {
    local.syncMic();
    // The visible text says the state; the accessible name starts with it
    // and says what a press does. Mic and camera off are red: people should notice.
    const toggle = (b: HTMLButtonElement, on: boolean, onText: string, offText: string, what: string) => {
      b.textContent = on ? onText : offText;
      b.setAttribute("aria-label", `${b.textContent}, turn ${what} ${on ? "off" : "on"}`);
      b.classList.toggle("off", !on);
      b.classList.toggle("on", on);
    };
    toggle(micBtn, local.state.micOn, "Mic on", "Mic off", "microphone");
    toggle(camBtn, local.state.cameraOn, "Camera on", "Camera off", "camera");
    screenBtn.textContent = local.state.screen ? "Stop sharing" : "Share screen";
    screenBtn.setAttribute("aria-pressed", String(!!local.state.screen));
    handBtn.setAttribute("aria-pressed", String(session.handRaised));
    handBtn.textContent = session.handRaised ? "Lower hand" : "Raise hand";
    const student = session.role === "participant";
    camBtn.disabled = student && !room.settings.allowStudentVideo && !local.state.cameraOn;
    const noScreen = !canCapture() || !navigator.mediaDevices.getDisplayMedia;
    screenBtn.disabled = (student && !room.settings.allowStudentScreen) || noScreen;
    screenBtn.title = !screenBtn.disabled
      ? ""
      : !canCapture()
        ? INSECURE_CONTEXT_TEXT
        : noScreen
          ? "This browser cannot share its screen"
          : "Sharing is not allowed for students in this room";
    camBtn.title = camBtn.disabled ? "Cameras are not allowed for students in this room" : "";
    closeBtn.hidden = !session.isHost;
    recordBtn.hidden = !session.isHost;
    recordBtn.textContent = session.recording ? "Stop recording" : "Record";
    recordBtn.setAttribute("aria-pressed", String(session.recording));
    recordingBadge.hidden = !session.recording;
    const unread = chat.unread();
    chatBtn.textContent = unread > 0 && side.dataset.open !== "chat" ? `Chat (${unread})` : "Chat";
    // Raised hands show on the People button, so a host on the chat tab still notices them.
    const hands = [...session.peers.values()].filter((p) => p.handRaised).length;
    peopleBtn.textContent = hands > 0 ? `People (${hands} ${hands === 1 ? "hand" : "hands"})` : "People";
    heading.textContent = session.title || room.title;
    renderTiles();
  }

  // Session events to the page.
  session.onChange = (what) => {
    if (what === "chat") {
      chat.render();
      if (side.dataset.open === "chat") chat.seen();
    }
    if (what === "peers" || what === "self") people.render();
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
  local.onProblem = (text) => notice.show(text, "info");
  local.onChange = sync;
  session.onEnded = (reason) => {
    teardown();
    done(reason.kind === "error" ? describe(reason.error, "join") : END_TEXT[reason.kind]);
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
    layers.stop();
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
    if (!devices.hidden) {
      void toggleDevices();
      devicesBtn.focus();
    } else if (room?.classList.contains("side-shown")) {
      room.classList.remove("side-shown");
      (side.dataset.open === "chat" ? chatBtn : peopleBtn).focus();
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
  if (canCapture()) await local.start(mayVideo && session.media.canProduce("video")).catch((e) => notice.show(describe(e, "media")));
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

function initials(name: string): string {
  return name
    .replace(/\(you\)|'s screen/g, "")
    .trim()
    .split(/\s+/)
    .slice(0, 2)
    .map((w) => w[0]?.toUpperCase() ?? "")
    .join("");
}
