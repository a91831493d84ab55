// Reactions, the host's room-wide tools and keyboard shortcuts (issue 18):
// the reaction buttons and their floating emoji on the sender's tile, Mute
// all / Lower all hands for hosts, the "asks you to unmute" prompt, a sound
// and a toast for hosts when a hand goes up, and the shortcuts with their
// help dialog. Everything the server decides stays on the server
// (docs/protocol.md): this file only asks and shows.
import { button, h } from "../dom";
import { describe } from "../errors";
import type { RoomSession } from "./session";

/** The server's closed list (`rooms::REACTIONS`), in the order of the buttons and the keys 1–6. */
export const REACTIONS = ["👍", "👏", "😂", "😮", "❤️", "🎉"] as const;
const REACTION_NAMES = ["Thumbs up", "Applause", "Laughing", "Surprised", "Heart", "Celebrate"];

/** How long a reaction floats over a tile, and how many may float on one tile at once. */
const REACTION_MS = 2500;
const MAX_FLOATING = 6;
/** How long the "raised their hand" toast stays. */
const TOAST_MS = 5000;
/** Where this device keeps a host's choice of the hand sound. */
const SOUND_KEY = "vtp.handSound";

/** The shortcuts, as the help dialog lists them. */
export const SHORTCUTS: [key: string, what: string][] = [
  ["M", "Turn the microphone on or off"],
  ["V", "Turn the camera on or off"],
  ["H", "Raise or lower your hand"],
  ["C", "Open the chat"],
  ["1 – 6", `React: ${REACTIONS.join(" ")}`],
  ["?", "Show these shortcuts"],
];

export type Shortcut = "mic" | "camera" | "hand" | "chat" | "help" | { reaction: (typeof REACTIONS)[number] };

/**
 * The action of a key press, or null when the key is not a shortcut or the
 * person is typing (an input, a text area, a select, editable text) or
 * holding a modifier (the browser's own shortcuts stay theirs).
 */
export function shortcutFor(ev: Pick<KeyboardEvent, "key" | "ctrlKey" | "metaKey" | "altKey" | "repeat">, target: EventTarget | null): Shortcut | null {
  if (ev.ctrlKey || ev.metaKey || ev.altKey || ev.repeat) return null;
  // (HTMLElement is checked for first: the unit tests run this without a DOM.)
  if (typeof HTMLElement !== "undefined" && target instanceof HTMLElement && (target.isContentEditable || target.closest("input, textarea, select, [contenteditable]"))) return null;
  if (ev.key === "?") return "help";
  const digit = Number.parseInt(ev.key, 10);
  if (ev.key.length === 1 && digit >= 1 && digit <= REACTIONS.length) return { reaction: REACTIONS[digit - 1]! };
  const byKey: Record<string, Shortcut> = { m: "mic", v: "camera", h: "hand", c: "chat" };
  return byKey[ev.key.toLowerCase()] ?? null;
}

export interface HostToolsDeps {
  session: RoomSession;
  /** Presses a control of the bar, exactly as a click would (its checks included). */
  press: (which: "mic" | "camera" | "hand") => void;
  openChat: () => void;
  /** Turns the microphone on (the prompt's "Unmute"). */
  unmute: () => Promise<void>;
  notice: (text: string, kind?: "error" | "info") => void;
}

export class HostTools {
  /** The reaction buttons (in the control bar). */
  readonly reactions: HTMLElement;
  /** Hosts' buttons, at the top of the participants panel. */
  readonly hostBar: HTMLElement;
  /** Opens the shortcuts dialog (in the header). */
  readonly helpButton: HTMLButtonElement;
  readonly dialog: HTMLDialogElement;
  /** "The teacher asks you to unmute", with its two answers. */
  readonly unmutePrompt: HTMLElement;
  /** Hosts: who just raised a hand. */
  readonly toast: HTMLElement;
  private readonly soundButton: HTMLButtonElement;
  private sound = loadSound();
  private audio: AudioContext | null = null;
  private toastTimer: ReturnType<typeof setTimeout> | undefined;
  private readonly onKey = (ev: KeyboardEvent) => this.key(ev);

  constructor(private deps: HostToolsDeps) {
    const { session, notice } = deps;
    const ask = (what: () => Promise<unknown>) => () => void what().catch((e) => notice(describe(e)));
    this.reactions = h(
      "div",
      { class: "reactions", role: "group", "aria-label": "Reactions" },
      ...REACTIONS.map((emoji, i) => button(emoji, ask(() => this.react(emoji)), { class: "ctl reaction", "aria-label": `React: ${REACTION_NAMES[i]}`, title: `${REACTION_NAMES[i]} (${i + 1})` })),
    );
    this.soundButton = button("Hand sound on", () => {
      this.sound = !this.sound;
      saveSound(this.sound);
      this.sync();
    }, { class: "small", "aria-pressed": "true" });
    this.hostBar = h(
      "div",
      { class: "host-tools", hidden: true },
      button("Mute all", ask(async () => {
        const { muted } = await session.sig.request<{ muted: number }>("mute-all", { roomId: session.room.id });
        notice(muted === 1 ? "1 person muted." : `${muted} people muted.`, "info");
      }), { class: "small", "aria-label": "Mute all: everyone but the hosts" }),
      button("Lower all hands", ask(() => session.sig.request("lower-all-hands", { roomId: session.room.id })), { class: "small" }),
      this.soundButton,
    );
    this.helpButton = button("Shortcuts", () => this.openHelp(), { title: "Keyboard shortcuts (?)", "aria-haspopup": "dialog" });
    const close = button("Close", () => this.dialog.close(), { class: "primary" });
    this.dialog = h(
      "dialog",
      { class: "help-dialog", "aria-labelledby": "help-title" },
      h("h2", { id: "help-title" }, "Keyboard shortcuts"),
      h("p", { class: "muted" }, "They work anywhere in the room except while you type in a field."),
      h("table", {}, h("tbody", {}, ...SHORTCUTS.map(([key, what]) => h("tr", {}, h("th", { scope: "row" }, h("kbd", {}, key)), h("td", {}, what))))),
      close,
    );
    this.unmutePrompt = h("div", { class: "unmute-prompt", role: "alert", hidden: true });
    this.toast = h("div", { class: "toast", role: "status", hidden: true });
    this.listen();
    document.addEventListener("keydown", this.onKey);
  }

  /** Brings the host-only parts in line with the session's role. */
  sync(): void {
    this.hostBar.hidden = !this.deps.session.isHost;
    this.soundButton.textContent = this.sound ? "Hand sound on" : "Hand sound off";
    this.soundButton.setAttribute("aria-pressed", String(this.sound));
  }

  stop(): void {
    document.removeEventListener("keydown", this.onKey);
    clearTimeout(this.toastTimer);
    if (this.dialog.open) this.dialog.close();
    void this.audio?.close().catch(() => {});
  }

  private async react(emoji: string): Promise<void> {
    await this.deps.session.sig.request("send-reaction", { roomId: this.deps.session.room.id, emoji });
  }

  private listen(): void {
    const { session } = this.deps;
    session.sig.on<{ peerId: string; emoji: string }>("reaction", ({ peerId, emoji }) => this.float(peerId, emoji));
    session.sig.on<{ peerId: string }>("unmute-requested", ({ peerId }) => {
      const who = session.peers.get(peerId)?.displayName;
      this.showUnmutePrompt(who ? `${who} (the teacher) asks you to unmute.` : "The teacher asks you to unmute.");
    });
    session.sig.on<{ peerId: string }>("hand-raised", ({ peerId }) => {
      if (!session.isHost || peerId === session.selfId) return;
      const name = session.peers.get(peerId)?.displayName ?? "Someone";
      this.showToast(`${name} raised their hand.`);
      if (this.sound) this.beep();
    });
  }

  /** The emoji rises over the sender's camera tile (still, for those who ask for less motion: see style.css). */
  private float(peerId: string, emoji: string): void {
    if (!(REACTIONS as readonly string[]).includes(emoji)) return;
    const tile = document.querySelector<HTMLElement>(`.tile-camera[data-peer-id="${CSS.escape(peerId)}"]`);
    if (!tile) return;
    const floating = tile.querySelectorAll(".reaction-float");
    if (floating.length >= MAX_FLOATING) floating[0]?.remove();
    const el = h("span", { class: "reaction-float", "data-emoji": emoji, "aria-hidden": "true" }, emoji);
    el.style.left = `${15 + Math.random() * 60}%`;
    tile.append(el);
    setTimeout(() => el.remove(), REACTION_MS);
  }

  private showUnmutePrompt(text: string): void {
    const stay = button("Stay muted", () => {
      this.unmutePrompt.hidden = true;
    });
    const yes = button("Unmute", () => {
      this.unmutePrompt.hidden = true;
      void this.deps.unmute().catch((e) => this.deps.notice(describe(e, "media")));
    }, { class: "primary" });
    this.unmutePrompt.replaceChildren(h("p", {}, text), h("div", { class: "actions" }, yes, stay));
    this.unmutePrompt.hidden = false;
  }

  private showToast(text: string): void {
    this.toast.textContent = text;
    this.toast.hidden = false;
    clearTimeout(this.toastTimer);
    this.toastTimer = setTimeout(() => {
      this.toast.hidden = true;
    }, TOAST_MS);
  }

  /** A short two-note chime made on the spot: no audio file to fetch. */
  private beep(): void {
    try {
      this.audio ??= new AudioContext();
      const ctx = this.audio;
      void ctx.resume().catch(() => {});
      const gain = ctx.createGain();
      gain.connect(ctx.destination);
      const now = ctx.currentTime;
      gain.gain.setValueAtTime(0.0001, now);
      gain.gain.exponentialRampToValueAtTime(0.15, now + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, now + 0.35);
      [660, 880].forEach((freq, i) => {
        const osc = ctx.createOscillator();
        osc.frequency.value = freq;
        osc.connect(gain);
        osc.start(now + i * 0.12);
        osc.stop(now + 0.35);
      });
    } catch {
      // No Web Audio here: the toast still says it.
    }
  }

  private openHelp(): void {
    if (this.dialog.open) return;
    const back = document.activeElement instanceof HTMLElement ? document.activeElement : this.helpButton;
    // A modal dialog: the rest of the page is inert (focus stays inside) and Escape closes it.
    this.dialog.addEventListener("close", () => back.focus(), { once: true });
    this.dialog.showModal();
  }

  private key(ev: KeyboardEvent): void {
    if (ev.defaultPrevented || this.dialog.open) return;
    const action = shortcutFor(ev, ev.target);
    if (!action) return;
    ev.preventDefault();
    if (action === "help") this.openHelp();
    else if (action === "chat") this.deps.openChat();
    else if (typeof action === "object") void this.react(action.reaction).catch((e) => this.deps.notice(describe(e)));
    else this.deps.press(action);
  }
}

function loadSound(): boolean {
  try {
    return localStorage.getItem(SOUND_KEY) !== "off";
  } catch {
    return true;
  }
}

function saveSound(on: boolean): void {
  try {
    localStorage.setItem(SOUND_KEY, on ? "on" : "off");
  } catch {
    // Storage refused: the choice holds for this visit.
  }
}
