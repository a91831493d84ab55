// The device panel: pick the microphone and camera in use. Opened from the
// controls bar; the browser lists devices only once it may capture.
import { button, h, replace } from "../dom";
import { describe } from "../errors";
import type { LocalMedia } from "./local";

export class DevicePanel {
  readonly el = h("div", { class: "devices", hidden: true, role: "group", "aria-label": "Devices" });
  /** The controls-bar button that opens and closes the panel. */
  readonly toggleButton = button("Devices", () => void this.toggle(), { class: "ctl", "aria-expanded": "false" });

  constructor(private local: LocalMedia) {}

  get open(): boolean {
    return !this.el.hidden;
  }

  /** Opens the panel (listing the devices afresh) or closes it. */
  async toggle(): Promise<void> {
    const open = this.el.hidden;
    this.el.hidden = !open;
    this.toggleButton.setAttribute("aria-expanded", String(open));
    if (!open) return;
    const found = await this.local.devices().catch((e: unknown) => {
      replace(this.el, h("p", { class: "muted" }, describe(e, "media")));
      return null;
    });
    if (!found) return;
    const { mics, cameras } = found;
    replace(
      this.el,
      deviceSelect("Microphone", mics, this.local.state.micId, (id) => this.local.useMic(id)),
      deviceSelect("Camera", cameras, this.local.state.cameraId, (id) => this.local.useCamera(id)),
      button("Done", () => void this.toggle()),
    );
  }
}

/** A labelled list of devices of one kind, the one in use selected; a plain sentence when there is none. */
function deviceSelect(label: string, list: MediaDeviceInfo[], current: string, use: (id: string) => Promise<void>): HTMLElement {
  const id = `dev-${label}`;
  const sel = h("select", { id }, ...list.map((d, i) => h("option", { value: d.deviceId, selected: d.deviceId === current }, d.label || `${label} ${i + 1}`)));
  sel.addEventListener("change", () => void use(sel.value));
  return h("div", { class: "field" }, h("label", { for: id }, label), list.length ? sel : h("p", { class: "muted" }, `No ${label.toLowerCase()} found.`));
}
