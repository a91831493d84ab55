// Who is speaking. The server's `active-speaker` is preferred: it hears every
// producer's `ssrc-audio-level` (ours included, before any loss on the way
// to us), debounced the same for everyone, so all pages highlight the same
// person. Once it has sent one, this local guess stays quiet. The guess is
// the fallback for a server that sends none (the level extension was not
// negotiated, or an older server): the loudest audio we receive (or our own
// microphone), from the audio levels WebRTC already measures. No
// AudioContext: it would need a click before it runs, and the levels are
// there anyway.
import type { RoomSession } from "./session";

const EVERY_MS = 400;
/** Below this level (0–1) nobody is speaking. */
const THRESHOLD = 0.03;
/** A new speaker must be loudest this long before the highlight moves. */
const HOLD_MS = 800;
/** How much of a peer's smoothed level is left after one tick of silence. */
const DECAY = 0.6;

export class SpeakerDetector {
  private timer: ReturnType<typeof setInterval> | null = null;
  private candidate: string | null = null;
  private since = 0;
  /** Smoothed level per peer: speech (and a beep) comes in bursts, and a
   * pause between words must not hand the highlight to someone else. */
  private smoothed = new Map<string, number>();

  constructor(private session: RoomSession) {}

  start(): void {
    this.timer ??= setInterval(() => void this.tick(), EVERY_MS);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  private async tick(): Promise<void> {
    if (this.session.serverSpeaker) return;
    const levels = new Map<string, number>();
    for (const s of await this.session.media.inboundStats("audio")) {
      if (!s.paused) levels.set(s.peerId, Math.max(levels.get(s.peerId) ?? 0, s.audioLevel));
    }
    levels.set(this.session.selfId, await this.session.media.localAudioLevel());
    // A peak counts at once; silence fades out over a few ticks.
    for (const peerId of new Set([...levels.keys(), ...this.smoothed.keys()])) {
      const level = levels.get(peerId) ?? 0;
      const previous = (this.smoothed.get(peerId) ?? 0) * DECAY;
      this.smoothed.set(peerId, Math.max(level, previous));
    }
    let loudest: string | null = null;
    let best = THRESHOLD;
    for (const [peerId, level] of this.smoothed) {
      if (!levels.has(peerId)) this.smoothed.delete(peerId);
      else if (level > best) {
        best = level;
        loudest = peerId;
      }
    }
    const now = Date.now();
    // Silence keeps the last speaker highlighted until someone else speaks up.
    if (!loudest || loudest === this.session.activeSpeaker) {
      this.candidate = null;
      return;
    }
    if (loudest !== this.candidate) {
      this.candidate = loudest;
      this.since = now;
    }
    if (now - this.since >= HOLD_MS) this.session.setSpeaker(loudest);
  }
}
