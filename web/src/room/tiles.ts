// The video grid: one tile per camera and per screen share, ours first,
// then everyone else in order of arrival. Tiles are kept by key and updated
// in place, so a video element is never recreated while it plays.
import { button, h, replace } from "../dom";
import type { RemoteMedia } from "../media";
import { TileLayers } from "./layers";
import type { LocalMedia } from "./local";
import type { RoomSession } from "./session";

type VideoSource = "camera" | "screen";

interface Tile {
  el: HTMLElement;
  video: HTMLVideoElement;
  name: HTMLElement;
  badges: HTMLElement;
  /** Fit the whole picture (default) or fill the tile, cropping. */
  fill: HTMLButtonElement;
  /** Shows this tile large for this viewer (spotlight). */
  pin: HTMLButtonElement;
}

/** How the grid is laid out: everyone alike, or the speaker (or a shared screen) large. */
export type LayoutView = "grid" | "speaker";

/** Most tiles in a row of the strip under the large tile (more wrap to further rows). */
const STRIP_COLS = 6;
/** The same on a phone. */
const STRIP_COLS_NARROW = 3;

/**
 * The tile shown large, by key: the pinned one while it is there, else
 * the one a host put in the spotlight; in
 * speaker view a shared screen (someone else's first), else the person
 * speaking (the last other speaker when it is us), else the first other
 * camera; nothing when we are alone or in grid view.
 */
export function mainTile(o: { keys: string[]; pinned: string | null; spotlight: string | null; view: LayoutView; speaker: string | null; selfId: string; lastSpeaker: string | null }): string | null {
  const { keys, pinned, spotlight, view, speaker, selfId, lastSpeaker } = o;
  if (pinned && keys.includes(pinned)) return pinned;
  if (spotlight && keys.length > 1 && keys.includes(spotlight)) return spotlight;
  if (view !== "speaker" || keys.length < 2) return null;
  const screens = keys.filter((k) => k.endsWith(":screen"));
  const otherScreen = screens.find((k) => !k.startsWith("self:"));
  if (otherScreen ?? screens[0]) return otherScreen ?? screens[0];
  for (const peer of [speaker, lastSpeaker]) {
    if (peer && peer !== selfId && keys.includes(`${peer}:camera`)) return `${peer}:camera`;
  }
  return keys.find((k) => !k.startsWith("self:")) ?? null;
}

/** What the layer hint on a tile says for a spatial layer the SFU sends (`consumer-layers-changed`). */
export function qualityText(spatialLayer: number): string {
  return `${["Low", "Medium", "High"][spatialLayer] ?? "High"} quality video`;
}

/** The letters shown on a tile without video: the first two words' initials. */
export function initials(name: string): string {
  return name
    .replace(/\(you\)|'s screen/g, "")
    .trim()
    .split(/\s+/)
    .slice(0, 2)
    .map((w) => w[0]?.toUpperCase() ?? "")
    .join("");
}

/** A peer's camera or screen among what we receive: video consumers, told apart by the producer's `appData.source`. */
export function findRemote(remote: Iterable<RemoteMedia>, peerId: string, source: VideoSource): RemoteMedia | undefined {
  for (const m of remote) {
    if (m.info.peerId === peerId && m.consumer.kind === "video" && (m.info.appData?.source === "screen") === (source === "screen")) return m;
  }
  return undefined;
}

export class TileGrid {
  readonly el = h("div", { class: "grid", role: "list", "aria-label": "Video" });
  private tiles = new Map<string, Tile>();
  /** Asks the SFU for the layer that fits each remote tile's size. */
  private layers: TileLayers;
  /** The tile this viewer pinned (its key): shown large whatever the view. */
  pinned: string | null = null;
  /** Grid or speaker view (a choice of this viewer, kept on this device by the room view). */
  view: LayoutView = "grid";
  /** Our own camera tile is hidden here (we still send it). */
  selfHidden = false;
  /** The last other person who spoke: speaker view keeps them large while we talk. */
  private lastSpeaker: string | null = null;
  /** A viewer pinned or unpinned a tile. */
  onPin: () => void = () => {};

  constructor(
    private session: RoomSession,
    private local: LocalMedia,
    /** Our own display name. */
    private you: string,
  ) {
    this.layers = new TileLayers(session.media);
  }

  /** How many tiles are shown now (ours included). */
  get size(): number {
    return this.tiles.size;
  }

  /** Brings the tiles in line with the session (cheap; runs on every change). */
  render(): void {
    const { session, local } = this;
    const wanted = new Set<string>();
    // Ourselves, unless we hid our own view.
    if (!this.selfHidden) {
      const self = this.tile("self:camera", session.selfId, "camera");
      wanted.add("self:camera");
      this.setVideo(self, local.state.cameraOn ? local.state.camera : null);
      self.el.classList.add("self");
      self.el.dataset.peerId = session.selfId; // known only once joined
      this.label(self, `${this.you} (you)`, local.state.micOn, session.handRaised, session.selfId);
    }
    if (local.state.screen) {
      const s = this.tile("self:screen", session.selfId, "screen");
      wanted.add("self:screen");
      s.el.classList.add("self");
      this.setVideo(s, local.state.screen);
      this.label(s, `Your screen`, true, false, "");
    }
    // Everyone else, in order of arrival.
    const remote = [...session.media.remote.values()];
    for (const peer of session.peers.values()) {
      const micOn = peer.producers.some((p) => p.kind === "audio" && !p.paused);
      const camera = findRemote(remote, peer.peerId, "camera");
      const t = this.tile(`${peer.peerId}:camera`, peer.peerId, "camera");
      wanted.add(`${peer.peerId}:camera`);
      this.setVideo(t, camera && !camera.info.paused ? camera.track : null, camera?.info.producerId);
      this.label(t, peer.displayName, micOn, peer.handRaised, peer.peerId);
      const screen = findRemote(remote, peer.peerId, "screen");
      if (screen) {
        const s = this.tile(`${peer.peerId}:screen`, peer.peerId, "screen");
        wanted.add(`${peer.peerId}:screen`);
        this.setVideo(s, screen.track, screen.info.producerId);
        this.label(s, `${peer.displayName}'s screen`, true, false, "");
      }
    }
    for (const [key, t] of this.tiles) {
      if (!wanted.has(key)) {
        this.layers.unwatch(t.video);
        t.video.srcObject = null;
        t.el.remove();
        this.tiles.delete(key);
      }
    }
    this.el.dataset.count = String(Math.min(this.tiles.size, 9));
    // Screen shares take the top rows: one across, two or more side by side.
    const screens = [...this.tiles.keys()].filter((k) => k.endsWith(":screen")).length;
    this.el.classList.toggle("has-screen", screens > 0);
    this.el.dataset.screens = String(Math.min(screens, 4));
    this.el.style.setProperty("--screen-rows", String(Math.ceil(screens / 2)));
    this.el.style.setProperty("--screens", String(screens));
    this.arrange();
  }

  /** Pins the tile `key` (or unpins it when it is the pinned one). */
  togglePin(key: string): void {
    this.pinned = this.pinned === key ? null : key;
    this.render();
    this.onPin();
  }

  /** One tile large with the others in a strip under it, or the plain grid. */
  private arrange(): void {
    const speaker = this.session.activeSpeaker;
    if (speaker && speaker !== this.session.selfId && this.session.peers.has(speaker)) this.lastSpeaker = speaker;
    const keys = [...this.tiles.keys()];
    // A pinned tile that left unpins itself.
    if (this.pinned && !keys.includes(this.pinned)) this.pinned = null;
    // The host's spotlight as a tile key (ours is "self:…" here).
    const spot = this.session.spotlight;
    const spotlight = spot ? `${spot.peerId === this.session.selfId ? "self" : spot.peerId}:${spot.source}` : null;
    const main = mainTile({ keys, pinned: this.pinned, spotlight, view: this.view, speaker, selfId: this.session.selfId, lastSpeaker: this.lastSpeaker });
    for (const [key, t] of this.tiles) {
      t.el.classList.toggle("main", key === main);
      t.pin.setAttribute("aria-pressed", String(key === this.pinned));
      t.el.classList.toggle("spotlit", key === spotlight);
    }
    this.el.classList.toggle("focused", main !== null);
    this.el.dataset.view = this.view;
    const others = Math.max(keys.length - 1, 1);
    this.el.style.setProperty("--strip-cols", String(Math.min(others, STRIP_COLS)));
    this.el.style.setProperty("--strip-cols-narrow", String(Math.min(others, STRIP_COLS_NARROW)));
  }

  stop(): void {
    this.layers.stop();
  }

  private tile(key: string, peerId: string, source: VideoSource): Tile {
    let t = this.tiles.get(key);
    if (t) return t;
    const video = h("video", { autoplay: true, playsinline: true, muted: true });
    video.muted = true; // Sound plays from separate audio elements.
    const name = h("span", { class: "tile-name" });
    const badges = h("span", { class: "tile-badges" });
    // Cameras show the whole picture by default (a 16:9 camera in a narrow
    // tile keeps its sides); a person may fill the tile instead, cropping.
    const fill = button("Fill", () => {
      const on = !el.classList.contains("fill");
      el.classList.toggle("fill", on);
      fill.setAttribute("aria-pressed", String(on));
    }, { class: "tile-fill small", "aria-pressed": "false" });
    // Pinned: this tile large for this viewer, whoever speaks.
    const pin = button("Pin", () => this.togglePin(key), { class: "tile-pin small", "aria-pressed": "false" });
    // A list item holding a figure: `figure` itself may not take the listitem role.
    const el = h(
      "div",
      { class: `tile tile-${source}`, role: "listitem", "data-peer-id": peerId, "data-source": source },
      h(
        "figure",
        { class: "tile-frame" },
        video,
        h("div", { class: "avatar", "aria-hidden": "true" }),
        h("figcaption", {}, name, badges, h("span", { class: "tile-actions" }, pin, source === "camera" ? fill : null)),
      ),
    );
    t = { el, video, name, badges, fill, pin };
    this.tiles.set(key, t);
    if (!key.startsWith("self:")) this.layers.watch(video);
    this.el.append(el);
    return t;
  }

  private setVideo(t: Tile, track: MediaStreamTrack | null, producerId = ""): void {
    const current = (t.video.srcObject as MediaStream | null)?.getVideoTracks()[0] ?? null;
    if (current !== track) {
      t.video.srcObject = track ? new MediaStream([track]) : null;
      if (track) t.video.play().catch(() => {});
    }
    if (t.video.dataset.producerId !== producerId || current !== track) {
      // A new consumer starts at the server's default (the best layer): ask for the one that fits.
      delete t.el.dataset.preferredLayer;
      t.video.dataset.producerId = producerId;
      if (producerId) this.layers.schedule(t.video);
    }
    this.quality(t, producerId);
    t.el.classList.toggle("no-video", !track);
  }

  /** What the SFU sends this tile now (`consumer-layers-changed`): a data attribute, and a hint when it is not the best. */
  private quality(t: Tile, producerId: string): void {
    const got = this.session.media.remote.get(producerId)?.layers;
    if (!got) {
      delete t.el.dataset.spatialLayer;
      t.video.removeAttribute("title");
      return;
    }
    t.el.dataset.spatialLayer = String(got.spatialLayer);
    t.video.title = qualityText(got.spatialLayer);
  }

  private label(t: Tile, name: string, micOn: boolean, hand: boolean, peerId: string): void {
    t.name.textContent = name;
    t.fill.setAttribute("aria-label", `Fill the tile with ${name}'s video`);
    t.pin.setAttribute("aria-label", `Pin ${name}`);
    const avatar = t.el.querySelector(".avatar");
    if (avatar) avatar.textContent = initials(name);
    replace(
      t.badges,
      micOn ? null : h("span", { class: "badge", title: "Microphone off" }, "Mic off"),
      hand ? h("span", { class: "badge hand" }, "Hand raised") : null,
    );
    t.el.classList.toggle("speaking", this.session.activeSpeaker === peerId && micOn);
  }
}
