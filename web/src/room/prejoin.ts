// The pre-join screen: before entering a room a person sees their camera,
// hears that the microphone works (a level meter), picks the devices,
// chooses to join muted or with the camera off, and may check the network
// (connectivity.ts). The choices are kept on this device (localStorage) and
// are what the room starts with. Nothing is sent to the room before "Join now".
import type { Api, Room } from "../api";
import { connectivityCard } from "../connectivity";
import { alertBox, button, field, h, replace } from "../dom";
import { canCapture, describe, INSECURE_CONTEXT_TEXT, mediaDevices } from "../errors";
import { VIDEO } from "./local";

/** What the person chose before joining. */
export interface JoinChoices {
  micOn: boolean;
  cameraOn: boolean;
  /** The device ids picked ("" for the browser's default). */
  micId: string;
  cameraId: string;
}

const CHOICES_KEY = "vtp.prejoin";
/** The tab's marker that it is in a room: a reload goes straight back in, a new tab sees this screen. */
const IN_ROOM_KEY = "vtp.inRoom";
/** How often the level meter reads the microphone. */
const METER_EVERY_MS = 100;
/** A speaking voice's RMS is around 0.05–0.2: scaled so it fills most of the meter. */
const METER_GAIN = 4;

export function loadChoices(): JoinChoices {
  const fallback: JoinChoices = { micOn: true, cameraOn: true, micId: "", cameraId: "" };
  try {
    const s = JSON.parse(localStorage.getItem(CHOICES_KEY) ?? "{}") as Partial<Record<keyof JoinChoices, unknown>>;
    return {
      micOn: s.micOn !== false,
      cameraOn: s.cameraOn !== false,
      micId: typeof s.micId === "string" ? s.micId : "",
      cameraId: typeof s.cameraId === "string" ? s.cameraId : "",
    };
  } catch {
    return fallback;
  }
}

export function saveChoices(c: JoinChoices): void {
  try {
    localStorage.setItem(CHOICES_KEY, JSON.stringify(c));
  } catch {
    // Storage refused: the choices hold for this visit.
  }
}

/** This tab was in room `id` (a reload or a sign-in in between skips the pre-join screen). */
export function wasInRoom(id: string): boolean {
  try {
    return sessionStorage.getItem(IN_ROOM_KEY) === id;
  } catch {
    return false;
  }
}

/** Marks this tab as in room `id`, or (null) as having left. */
export function markInRoom(id: string | null): void {
  try {
    if (id) sessionStorage.setItem(IN_ROOM_KEY, id);
    else sessionStorage.removeItem(IN_ROOM_KEY);
  } catch {
    // Without storage a reload shows the pre-join screen again: harmless.
  }
}

/**
 * The pre-join page for `room`. `choices` resolves when the person presses
 * "Join now", or with null once `stop()` ran (they went elsewhere); either
 * way the preview's camera and microphone are released.
 */
export function preJoinView(api: Api, room: Room, cameraAllowed: boolean): { el: HTMLElement; choices: Promise<JoinChoices | null>; stop(): void } {
  const choices = loadChoices();
  const video = h("video", { class: "prejoin-video", autoplay: true, playsinline: true, muted: true, "aria-label": "Your camera" });
  video.muted = true;
  const cameraOff = h("p", { class: "prejoin-off" }, "Camera is off");
  const meter = h("meter", { class: "prejoin-meter", min: 0, max: 1, low: 0.05, value: 0, "aria-label": "Microphone level" });
  const problem = alertBox();
  const mic = field("Microphone on", { name: "prejoinMic", type: "checkbox", checked: choices.micOn });
  const camera = field("Camera on", { name: "prejoinCamera", type: "checkbox", checked: choices.cameraOn && cameraAllowed, disabled: !cameraAllowed });
  mic.wrap.classList.add("check");
  camera.wrap.classList.add("check");
  const micSelect = h("select", { id: "prejoin-mic-device" });
  const cameraSelect = h("select", { id: "prejoin-camera-device" });
  const devices = h("div", { class: "prejoin-devices" });
  let stream: MediaStream | null = null;
  let audio: AudioContext | null = null;
  let meterTimer: ReturnType<typeof setInterval> | undefined;
  let stopped = false;
  /** Counts previews started: only the latest one's devices are kept. */
  let previews = 0;
  let resolve: (c: JoinChoices | null) => void = () => {};
  const result = new Promise<JoinChoices | null>((ok) => (resolve = ok));

  const release = () => {
    clearInterval(meterTimer);
    meter.value = 0;
    void audio?.close().catch(() => {});
    audio = null;
    for (const t of stream?.getTracks() ?? []) t.stop();
    stream = null;
    video.srcObject = null;
  };

  /** Measures the microphone's loudness for the meter (root mean square of the waveform). */
  const listen = (track: MediaStreamTrack) => {
    audio = new AudioContext();
    const analyser = audio.createAnalyser();
    analyser.fftSize = 1024;
    audio.createMediaStreamSource(new MediaStream([track])).connect(analyser);
    const samples = new Float32Array(analyser.fftSize);
    void audio.resume().catch(() => {});
    meterTimer = setInterval(() => {
      analyser.getFloatTimeDomainData(samples);
      let sum = 0;
      for (const v of samples) sum += v * v;
      meter.value = Math.min(1, Math.sqrt(sum / samples.length) * METER_GAIN);
    }, METER_EVERY_MS);
  };

  /** Opens what is switched on with the chosen devices and shows it; lists the devices once allowed. */
  const preview = async () => {
    const mine = ++previews;
    release();
    const wantMic = mic.input.checked;
    const wantCamera = camera.input.checked;
    cameraOff.hidden = wantCamera;
    video.hidden = !wantCamera;
    if (!canCapture() || (!wantMic && !wantCamera)) return;
    problem.clear();
    try {
      const s = await mediaDevices().getUserMedia({
        audio: wantMic ? (choices.micId ? { deviceId: { ideal: choices.micId } } : true) : false,
        // The room's own constraints: a camera still open from the preview when
        // the room asks for it keeps the format it was opened with.
        video: wantCamera ? (choices.cameraId ? { ...VIDEO, deviceId: { ideal: choices.cameraId } } : VIDEO) : false,
      });
      // Stopped, or another preview started meanwhile (a quick second click): this one is stale.
      if (stopped || mine !== previews) {
        for (const t of s.getTracks()) t.stop();
        return;
      }
      stream = s;
    } catch (err) {
      problem.show(`${describe(err, "media")} You can still join to watch, listen and chat.`);
      return;
    }
    const [micTrack] = stream.getAudioTracks();
    const [cameraTrack] = stream.getVideoTracks();
    if (cameraTrack) {
      video.srcObject = new MediaStream([cameraTrack]);
      video.play().catch(() => {});
    }
    if (micTrack) listen(micTrack);
    await listDevices(micTrack?.getSettings().deviceId, cameraTrack?.getSettings().deviceId);
  };

  const listDevices = async (micInUse?: string, cameraInUse?: string) => {
    const all = await mediaDevices().enumerateDevices().catch(() => [] as MediaDeviceInfo[]);
    const fillSelect = (sel: HTMLSelectElement, kind: MediaDeviceKind, current: string, label: string) => {
      const list = all.filter((d) => d.kind === kind && d.deviceId);
      replace(sel, ...list.map((d, i) => h("option", { value: d.deviceId, selected: d.deviceId === current }, d.label || `${label} ${i + 1}`)));
      return list.length > 0;
    };
    const haveMics = fillSelect(micSelect, "audioinput", micInUse ?? choices.micId, "Microphone");
    const haveCameras = fillSelect(cameraSelect, "videoinput", cameraInUse ?? choices.cameraId, "Camera");
    replace(
      devices,
      haveMics ? h("div", { class: "field" }, h("label", { for: micSelect.id }, "Microphone"), micSelect) : null,
      haveCameras ? h("div", { class: "field" }, h("label", { for: cameraSelect.id }, "Camera"), cameraSelect) : null,
    );
  };

  micSelect.addEventListener("change", () => {
    choices.micId = micSelect.value;
    void preview();
  });
  cameraSelect.addEventListener("change", () => {
    choices.cameraId = cameraSelect.value;
    void preview();
  });
  mic.input.addEventListener("change", () => void preview());
  camera.input.addEventListener("change", () => void preview());

  const join = button("Join now", () => {
    // A camera this room does not allow keeps the person's usual choice for other rooms.
    saveChoices({ ...choices, micOn: mic.input.checked, cameraOn: cameraAllowed ? camera.input.checked : choices.cameraOn });
    stopped = true;
    release();
    resolve({ ...choices, micOn: mic.input.checked, cameraOn: cameraAllowed && camera.input.checked });
  }, { class: "primary" });

  const el = h(
    "main",
    { id: "main", class: "page prejoin" },
    h("h1", {}, room.title),
    h("p", { class: "muted" }, "Check your camera and microphone, then join the class."),
    problem,
    canCapture() ? null : h("p", { class: "alert alert-info" }, `${INSECURE_CONTEXT_TEXT} You can still join to watch, listen and chat.`),
    h(
      "section",
      { class: "card prejoin-media", "aria-label": "Your camera and microphone" },
      h("div", { class: "prejoin-preview" }, video, cameraOff),
      h("div", { class: "field prejoin-level" }, h("span", { "aria-hidden": "true" }, "Microphone level"), meter),
      mic.wrap,
      camera.wrap,
      cameraAllowed ? null : h("p", { class: "muted" }, "Cameras are not allowed for students in this room."),
      devices,
      h("div", { class: "row" }, join, h("a", { href: "/", "data-link": true, class: "button" }, "Back to rooms")),
    ),
    connectivityCard(api),
  );
  void preview();
  return {
    el,
    choices: result,
    stop: () => {
      stopped = true;
      release();
      resolve(null);
    },
  };
}
