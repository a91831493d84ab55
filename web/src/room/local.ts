// Our own microphone, camera and screen: asking the browser for them, falling
// back to audio only when there is no camera, switching devices, and
// publishing through the media layer.
import { describe, mediaDevices } from "../errors";
import type { Media } from "../media";

export interface LocalState {
  mic: MediaStreamTrack | null;
  camera: MediaStreamTrack | null;
  screen: MediaStreamTrack | null;
  micOn: boolean;
  cameraOn: boolean;
  micId: string;
  cameraId: string;
}

// 720p when the camera has it: three simulcast layers (see cameraEncodings),
// of which the publisher only encodes those some viewer needs
// (`producer-layers-needed`).
export const VIDEO: MediaTrackConstraints = { width: { ideal: 1280 }, height: { ideal: 720 }, frameRate: { ideal: 24 } };

/** What the pre-join screen chose (see prejoin.ts). */
export interface StartChoices {
  micOn: boolean;
  micId: string;
  cameraId: string;
}

export class LocalMedia {
  readonly state: LocalState = { mic: null, camera: null, screen: null, micOn: false, cameraOn: false, micId: "", cameraId: "" };
  onChange: () => void = () => {};
  /** A problem to show the person, in plain words. */
  onProblem: (text: string) => void = () => {};

  constructor(private media: Media) {}

  /**
   * Asks for the microphone and (when allowed) the camera, and publishes them.
   * No camera: audio only, with a note. Refused: the room still works, to watch.
   */
  async start(wantCamera: boolean, choices: StartChoices = { micOn: true, micId: "", cameraId: "" }): Promise<void> {
    let stream: MediaStream | null = null;
    // The devices picked before joining, when they are still there (`ideal`: else the default).
    const audio: MediaTrackConstraints | boolean = choices.micId ? { deviceId: { ideal: choices.micId } } : true;
    const video: MediaTrackConstraints = choices.cameraId ? { ...VIDEO, deviceId: { ideal: choices.cameraId } } : VIDEO;
    try {
      stream = await mediaDevices().getUserMedia({ audio, video: wantCamera ? video : false });
    } catch (err) {
      const name = (err as Error).name;
      if (wantCamera && (name === "NotFoundError" || name === "OverconstrainedError" || name === "NotReadableError")) {
        try {
          stream = await mediaDevices().getUserMedia({ audio });
          this.onProblem(
            name === "NotReadableError"
              ? "Your camera is in use by another application: you joined with audio only."
              : "No camera was found: you joined with audio only.",
          );
        } catch (err2) {
          this.onProblem(`${describe(err2, "media")} You can still watch, listen and chat.`);
        }
      } else {
        this.onProblem(`${describe(err, "media")} You can still watch, listen and chat.`);
      }
    }
    // Turned on later in the room, the camera (or microphone) is the one picked before joining.
    this.state.micId = choices.micId;
    this.state.cameraId = choices.cameraId;
    if (!stream) return;
    const [mic] = stream.getAudioTracks();
    const [camera] = stream.getVideoTracks();
    if (mic) {
      this.state.mic = mic;
      this.state.micId = mic.getSettings().deviceId ?? "";
      // Joining muted: the track is silent before the producer exists, and
      // the producer is paused on the server at once, so no sound gets out.
      if (!choices.micOn) mic.enabled = false;
      await this.media.produce("mic", mic);
      if (!choices.micOn) await this.media.setPaused("mic", true);
      this.state.micOn = choices.micOn;
    }
    if (camera) {
      this.state.camera = camera;
      this.state.cameraId = camera.getSettings().deviceId ?? "";
      await this.media.produce("camera", camera);
      this.state.cameraOn = true;
    }
    this.onChange();
  }

  async setMic(on: boolean): Promise<void> {
    if (!this.state.mic) {
      if (!on) return;
      try {
        const s = await mediaDevices().getUserMedia({ audio: this.state.micId ? { deviceId: { exact: this.state.micId } } : true });
        this.state.mic = s.getAudioTracks()[0] ?? null;
        if (this.state.mic) await this.media.produce("mic", this.state.mic);
      } catch (err) {
        this.onProblem(describe(err, "media"));
        return;
      }
    } else {
      await this.media.setPaused("mic", !on);
    }
    this.state.micOn = on;
    this.onChange();
  }

  /** The mic's real state after a host muted us. */
  syncMic(): void {
    const p = this.media.producers.get("mic");
    if (p) this.state.micOn = !p.paused;
  }

  async setCamera(on: boolean): Promise<void> {
    if (on) {
      try {
        const s = await mediaDevices().getUserMedia({
          video: this.state.cameraId ? { ...VIDEO, deviceId: { exact: this.state.cameraId } } : VIDEO,
        });
        this.state.camera = s.getVideoTracks()[0] ?? null;
        if (this.state.camera) await this.media.produce("camera", this.state.camera);
      } catch (err) {
        this.onProblem(describe(err, "media"));
        return;
      }
    } else {
      // Off means off: the light goes out, the others see our name instead.
      await this.media.stopProducing("camera");
      this.state.camera?.stop();
      this.state.camera = null;
    }
    this.state.cameraOn = on;
    this.onChange();
  }

  async devices(): Promise<{ mics: MediaDeviceInfo[]; cameras: MediaDeviceInfo[] }> {
    const all = await mediaDevices().enumerateDevices();
    return { mics: all.filter((d) => d.kind === "audioinput"), cameras: all.filter((d) => d.kind === "videoinput") };
  }

  async useMic(deviceId: string): Promise<void> {
    this.state.micId = deviceId;
    if (!this.state.mic) return;
    try {
      const s = await mediaDevices().getUserMedia({ audio: { deviceId: { exact: deviceId } } });
      const track = s.getAudioTracks()[0];
      const old = this.state.mic;
      this.state.mic = track;
      await this.media.produce("mic", track);
      old.stop();
    } catch (err) {
      this.onProblem(describe(err, "media"));
    }
    this.onChange();
  }

  async useCamera(deviceId: string): Promise<void> {
    this.state.cameraId = deviceId;
    if (!this.state.camera) return;
    try {
      const s = await mediaDevices().getUserMedia({ video: { ...VIDEO, deviceId: { exact: deviceId } } });
      const track = s.getVideoTracks()[0];
      const old = this.state.camera;
      this.state.camera = track;
      await this.media.produce("camera", track);
      old.stop();
    } catch (err) {
      this.onProblem(describe(err, "media"));
    }
    this.onChange();
  }

  async setScreen(on: boolean): Promise<void> {
    if (on) {
      let stream: MediaStream;
      try {
        stream = await mediaDevices().getDisplayMedia({ video: { frameRate: { ideal: 15 } }, audio: false });
      } catch (err) {
        if ((err as Error).name !== "NotAllowedError") this.onProblem(describe(err, "screen"));
        return; // Cancelled in the picker: nothing to say.
      }
      const track = stream.getVideoTracks()[0];
      if (!track) return;
      // The browser's own "Stop sharing" bar ends the track.
      track.addEventListener("ended", () => void this.setScreen(false));
      this.state.screen = track;
      try {
        await this.media.produce("screen", track);
      } catch (err) {
        track.stop();
        this.state.screen = null;
        this.onProblem(describe(err, "media"));
        this.onChange();
        return;
      }
    } else {
      if (!this.state.screen) return;
      await this.media.stopProducing("screen");
      this.state.screen.stop();
      this.state.screen = null;
    }
    this.onChange();
  }

  stop(): void {
    for (const t of [this.state.mic, this.state.camera, this.state.screen]) t?.stop();
  }
}
