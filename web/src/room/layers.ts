// Each remote camera tile asks the SFU for the simulcast layer that fits the
// size it is shown at (`set-preferred-layers` in docs/protocol.md): a thumbnail on a
// phone needs a quarter-size picture, not the full one, and receiving less
// saves the viewer's bandwidth and CPU and the server's uplink. Screen shares
// are one full-size encoding and are left alone.
import type { Media } from "../media";

/** A tile settles for this long before we ask: a resizing window fires many times. */
const DEBOUNCE_MS = 300;

/**
 * The spatial layer for a video shown `width` CSS pixels wide. The
 * publisher's layers are a quarter, half and the full capture (320, 640 and
 * 1280 wide for a 720p camera): a tile up to 400 pixels wide (a thumbnail,
 * a phone) takes layer 0, up to 800 layer 1, a larger one layer 2. CSS
 * pixels, not device pixels: on a phone the bandwidth and the decoder are
 * what is short, and a quarter-size picture in a small tile looks fine.
 */
export function layerForSize(width: number): number {
  if (width <= 400) return 0;
  if (width <= 800) return 1;
  return 2;
}

export class TileLayers {
  private observer: ResizeObserver | null = null;
  private timers = new Map<HTMLVideoElement, ReturnType<typeof setTimeout>>();

  constructor(private media: Media) {
    if (typeof ResizeObserver !== "undefined") {
      this.observer = new ResizeObserver((entries) => {
        for (const e of entries) this.schedule(e.target as HTMLVideoElement);
      });
    }
  }

  /** Follows a tile's video element from now on (its size, and its producer in `data-producer-id`). */
  watch(video: HTMLVideoElement): void {
    this.observer?.observe(video);
  }

  unwatch(video: HTMLVideoElement): void {
    this.observer?.unobserve(video);
    clearTimeout(this.timers.get(video));
    this.timers.delete(video);
  }

  stop(): void {
    this.observer?.disconnect();
    for (const timer of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
  }

  /** Asks again soon (the tile got a new video, or changed size). */
  schedule(video: HTMLVideoElement): void {
    clearTimeout(this.timers.get(video));
    this.timers.set(
      video,
      setTimeout(() => {
        this.timers.delete(video);
        void this.apply(video);
      }, DEBOUNCE_MS),
    );
  }

  private async apply(video: HTMLVideoElement): Promise<void> {
    const remote = this.media.remote.get(video.dataset.producerId ?? "");
    if (!remote || remote.consumer.kind !== "video" || remote.info.appData?.source === "screen") return;
    const { width } = video.getBoundingClientRect();
    if (width === 0) return; // hidden: keep what we asked before
    const layer = layerForSize(width);
    const tile = video.closest<HTMLElement>(".tile");
    try {
      await this.media.setPreferredSpatial(remote.info.producerId, layer);
      if (tile) tile.dataset.preferredLayer = String(layer);
    } catch (err) {
      // The consumer went meanwhile, or the server refused: the default (best) layer stays.
      console.warn("set-preferred-layers failed", remote.info.producerId, err);
    }
  }
}
