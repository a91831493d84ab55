// The room's controls: the bar at the bottom (mic, camera, screen, hand,
// devices, chat, people) and the host's buttons in the header (copy link,
// record, end class, leave). Each button has a visible label that says its
// state; its accessible name starts with that and says what a press does.
import type { Room } from "../api";
import { button, h } from "../dom";
import { canCapture, describe, INSECURE_CONTEXT_TEXT } from "../errors";
import type { DevicePanel } from "./devices";
import type { LocalMedia } from "./local";
import type { RoomSession } from "./session";
import type { TileGrid } from "./tiles";

export type SidePanel = "chat" | "people";

/** Why the screen-share button is disabled, in words (empty: it is not). */
export function screenShareBlock(o: { secure: boolean; browserCanShare: boolean; student: boolean; allowStudentScreen: boolean }): string {
  if (!o.secure) return INSECURE_CONTEXT_TEXT;
  if (!o.browserCanShare) return "This browser cannot share its screen";
  if (o.student && !o.allowStudentScreen) return "Sharing is not allowed for students in this room";
  return "";
}

/** The Chat button's label: the unread count, unless the chat is what is open. */
export function chatLabel(unread: number, chatOpen: boolean): string {
  return unread > 0 && !chatOpen ? `Chat (${unread})` : "Chat";
}

/**
 * The People button's label: raised hands and (hosts) people waiting to be
 * let in show on it, so a host on the chat tab still notices them.
 */
export function peopleLabel(hands: number, waiting = 0): string {
  const parts: string[] = [];
  if (waiting > 0) parts.push(`${waiting} waiting`);
  if (hands > 0) parts.push(`${hands} ${hands === 1 ? "hand" : "hands"}`);
  return parts.length ? `People (${parts.join(", ")})` : "People";
}

export interface ControlDeps {
  room: Room;
  session: RoomSession;
  local: LocalMedia;
  devices: DevicePanel;
  /** Says a failure or a piece of information to the person. */
  notice: (text: string, kind?: "error" | "info") => void;
  /** Opens (or, when open, closes) a side panel. */
  openSide: (which: SidePanel) => void;
  /** Brings the whole page in line after an action. */
  sync: () => void;
  /** The videos, whose layout (speaker view, self view) the bar switches. */
  grid: TileGrid;
  /** The layout changed: keep it on this device. */
  layoutChanged: () => void;
}

export class ControlBar {
  private readonly mic: HTMLButtonElement;
  private readonly camera: HTMLButtonElement;
  private readonly screen: HTMLButtonElement;
  private readonly hand: HTMLButtonElement;
  private readonly chat: HTMLButtonElement;
  private readonly people: HTMLButtonElement;
  private readonly record: HTMLButtonElement;
  private readonly close: HTMLButtonElement;
  private readonly speakerView: HTMLButtonElement;
  private readonly selfView: HTMLButtonElement;
  /** The header's buttons, in order: copy link, record, end class, leave. */
  readonly headerButtons: HTMLElement[];
  readonly recordingBadge = h("span", { class: "recording-badge", role: "status", hidden: true }, "● Recording");
  readonly nav: HTMLElement;

  constructor(private deps: ControlDeps) {
    const { session, local, notice, openSide } = deps;
    /** Runs a control's action; a failure becomes a sentence, never an unhandled rejection. */
    const act = (action: () => Promise<unknown>) => () =>
      void action()
        .catch((e) => notice(describe(e, "media")))
        .finally(deps.sync);
    this.mic = button("Mic", act(() => local.setMic(!local.state.micOn)), { class: "ctl" });
    this.camera = button("Camera", act(() => local.setCamera(!local.state.cameraOn)), { class: "ctl" });
    this.screen = button("Share screen", act(() => local.setScreen(!local.state.screen)), { class: "ctl", "aria-pressed": "false" });
    this.hand = button("Raise hand", act(() => session.setHand(!session.handRaised)), { class: "ctl", "aria-pressed": "false" });
    this.chat = button("Chat", () => openSide("chat"), { class: "ctl side-toggle", "aria-pressed": "true" });
    this.people = button("People", () => openSide("people"), { class: "ctl side-toggle", "aria-pressed": "false" });
    const layout = (change: () => void) => () => {
      change();
      deps.layoutChanged();
      deps.sync();
    };
    this.speakerView = button("Speaker view", layout(() => {
      deps.grid.view = deps.grid.view === "speaker" ? "grid" : "speaker";
    }), { class: "ctl", "aria-pressed": "false" });
    this.selfView = button("Hide self view", layout(() => {
      deps.grid.selfHidden = !deps.grid.selfHidden;
    }), { class: "ctl" });
    const leave = button("Leave", () => void session.leave(), { class: "danger" });
    const link = button("Copy link", () => {
      // No clipboard API on plain-http origins other than localhost: show the link instead.
      const copied = navigator.clipboard ? navigator.clipboard.writeText(location.href) : Promise.reject(new Error("no clipboard"));
      copied.then(
        () => notice("Room link copied: send it to your students.", "info"),
        () => notice(`Room link: ${location.href}`, "info"),
      );
    }, { title: "Copy this room's address" });
    // Hosts record the class; everyone sees that it is being recorded.
    this.record = button("Record", act(() => session.setRecording(!session.recording)), { "aria-pressed": "false", hidden: true });
    // Ends today's class; the room stays open for next time (archiving is in the lobby).
    this.close = button("End class", () => {
      if (confirm("End the class for everyone? The room stays open for the next class.")) act(() => session.endClass())();
    }, { class: "danger", hidden: true });
    this.headerButtons = [link, this.record, this.close, leave];
    this.nav = h(
      "nav",
      { class: "controls", "aria-label": "Room controls" },
      this.mic,
      this.camera,
      this.screen,
      this.hand,
      deps.devices.toggleButton,
      this.speakerView,
      this.selfView,
      this.chat,
      this.people,
    );
  }

  /** Presses a control as a click would, its checks included (keyboard shortcuts, hosttools.ts). */
  press(which: "mic" | "camera" | "hand"): void {
    const b = which === "mic" ? this.mic : which === "camera" ? this.camera : this.hand;
    if (!b.disabled) b.click();
  }

  /** The button that opened a side panel, where focus returns when it closes. */
  sideButton(which: SidePanel): HTMLButtonElement {
    return which === "chat" ? this.chat : this.people;
  }

  /** Shows which side panel is open. */
  showSide(which: SidePanel): void {
    this.chat.setAttribute("aria-pressed", String(which === "chat"));
    this.people.setAttribute("aria-pressed", String(which === "people"));
  }

  /** Brings every label, pressed state and permission in line with the session. */
  sync(unreadChat: number, chatOpen: boolean): void {
    const { session, local, room } = this.deps;
    // Mic and camera off are red: people should notice.
    const toggle = (b: HTMLButtonElement, on: boolean, onText: string, offText: string, what: string) => {
      b.textContent = on ? onText : offText;
      b.setAttribute("aria-label", `${b.textContent}, turn ${what} ${on ? "off" : "on"}`);
      b.classList.toggle("off", !on);
      b.classList.toggle("on", on);
    };
    toggle(this.mic, local.state.micOn, "Mic on", "Mic off", "microphone");
    toggle(this.camera, local.state.cameraOn, "Camera on", "Camera off", "camera");
    this.screen.textContent = local.state.screen ? "Stop sharing" : "Share screen";
    this.screen.setAttribute("aria-pressed", String(!!local.state.screen));
    this.hand.setAttribute("aria-pressed", String(session.handRaised));
    this.hand.textContent = session.handRaised ? "Lower hand" : "Raise hand";
    const student = session.role === "participant";
    this.camera.disabled = student && !room.settings.allowStudentVideo && !local.state.cameraOn;
    this.camera.title = this.camera.disabled ? "Cameras are not allowed for students in this room" : "";
    this.screen.title = screenShareBlock({
      secure: canCapture(),
      browserCanShare: canCapture() && !!navigator.mediaDevices.getDisplayMedia,
      student,
      allowStudentScreen: room.settings.allowStudentScreen,
    });
    this.screen.disabled = this.screen.title !== "";
    this.close.hidden = !session.isHost;
    this.record.hidden = !session.isHost;
    this.record.textContent = session.recording ? "Stop recording" : "Record";
    this.record.setAttribute("aria-pressed", String(session.recording));
    this.recordingBadge.hidden = !session.recording;
    this.speakerView.setAttribute("aria-pressed", String(this.deps.grid.view === "speaker"));
    // Others still see us: only this page stops showing our own camera.
    this.selfView.textContent = this.deps.grid.selfHidden ? "Show self view" : "Hide self view";
    this.chat.textContent = chatLabel(unreadChat, chatOpen);
    const waiting = session.isHost ? session.waiting.length : 0;
    this.people.textContent = peopleLabel([...session.peers.values()].filter((p) => p.handRaised).length, waiting);
    // The badge: a host sees at a glance (without sound) that someone waits.
    this.people.classList.toggle("attention", waiting > 0);
  }
}
