// The signalling connection (docs/protocol.md): one Socket.IO socket with an `auth`
// callback, so every reconnection presents a fresh access token, and a typed
// request helper that unwraps `{ ok, data | error }` acknowledgements.
import { io, type Socket } from "socket.io-client";
import type { Api } from "./api";
import { SignalError } from "./errors";

export type ConnectionState = "connecting" | "connected" | "reconnecting" | "failed";

/** How long a request may wait for its acknowledgement. */
const ACK_TIMEOUT_MS = 10_000;

export class Signalling {
  readonly socket: Socket;
  state: ConnectionState = "connecting";
  /** Handshakes refused since the last success: a token that keeps being refused is not retried forever. */
  private refused = 0;
  /** Called on every state change; `connected` after a drop means "rejoin now". */
  onState: (state: ConnectionState, detail?: string) => void = () => {};

  constructor(api: Api) {
    this.socket = io({
      // Websocket only: long-polling would add a second path for no gain here.
      transports: ["websocket"],
      reconnectionDelay: 500,
      reconnectionDelayMax: 4000,
      auth: (cb) => {
        api.token().then(
          (token) => cb({ token }),
          () => cb({}),
        );
      },
    });
    this.socket.on("connect", () => {
      this.refused = 0;
      this.set("connected");
    });
    this.socket.on("disconnect", (reason) => {
      // A server-side kick ("io server disconnect") does not reconnect by itself.
      if (reason === "io server disconnect") this.socket.connect();
      this.set("reconnecting", reason);
    });
    this.socket.on("connect_error", (err) => {
      if (err.message === "unauthorized" && ++this.refused <= 2) {
        // The token may have expired while the tab slept: refresh and retry.
        api.token().then(
          () => setTimeout(() => this.socket.connect(), 500),
          () => this.set("failed", "unauthorized"),
        );
        return;
      }
      if (err.message === "unauthorized") {
        this.set("failed", "unauthorized");
        return;
      }
      this.set(this.state === "connecting" ? "connecting" : "reconnecting", err.message);
    });
  }

  private set(state: ConnectionState, detail?: string): void {
    this.state = state;
    this.onState(state, detail);
  }

  /** Resolves once connected (or rejects after `ms`). */
  connected(ms = 15_000): Promise<void> {
    if (this.socket.connected) return Promise.resolve();
    return new Promise((ok, fail) => {
      const timer = setTimeout(() => {
        this.socket.off("connect", done);
        fail(new SignalError("unreachable", "server unreachable"));
      }, ms);
      const done = () => {
        clearTimeout(timer);
        ok();
      };
      this.socket.once("connect", done);
    });
  }

  async request<T = Record<string, unknown>>(event: string, data: object): Promise<T> {
    let answer: { ok: boolean; data?: T; error?: { code: string; message: string } };
    try {
      answer = await this.socket.timeout(ACK_TIMEOUT_MS).emitWithAck(event, data);
    } catch {
      throw new SignalError("unreachable", `${event}: no answer from the server`);
    }
    if (!answer?.ok) throw new SignalError(answer?.error?.code ?? "internal", answer?.error?.message ?? event);
    return answer.data as T;
  }

  on<T = Record<string, unknown>>(event: string, handler: (payload: T) => void): void {
    this.socket.on(event, handler as (payload: unknown) => void);
  }

  close(): void {
    this.socket.removeAllListeners();
    this.socket.disconnect();
  }
}
