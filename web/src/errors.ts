// Turns failures into sentences a student or instructor understands. The
// server's codes are stable (DESIGN §3/§5); its messages are for developers.
import { ApiError } from "./api";

/** A signalling request that failed with `{ ok: false, error }`. */
export class SignalError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export function describe(err: unknown, context: "login" | "register" | "join" | "media" | "other" = "other"): string {
  if (err instanceof ApiError || err instanceof SignalError) {
    switch (err.code) {
      case "unreachable":
        return "The server cannot be reached. Check your connection and try again.";
      case "unauthorized":
        if (context === "login") return "Wrong e-mail or password.";
        if (err.message.includes("current password")) return "Your current password is wrong.";
        return "Your session has ended. Please sign in again.";
      case "rate_limited":
        return context === "login"
          ? "Too many sign-in attempts. Wait a minute and try again."
          : "You are going too fast. Wait a moment and try again.";
      case "room_full":
        return "This room is full. Ask the instructor to raise its limit.";
      case "room_closed":
        return "This room is closed. The instructor has to reopen it before anyone can join.";
      case "not_found":
        return context === "join" ? "This room does not exist (check the link)." : "That was not found.";
      case "forbidden":
        if (context === "join" && /removed/i.test(err.message)) return "A host removed you from this session.";
        return "You are not allowed to do that.";
      case "conflict":
        return context === "register" ? "An account with this e-mail already exists." : capitalise(err.message);
      case "validation_failed":
      case "bad_request":
        return capitalise(err.message.replace(/^[a-zA-Z.]+: /, ""));
      default:
        return "Something went wrong on the server. Try again in a moment.";
    }
  }
  if (err instanceof DOMException || (err instanceof Error && /^(NotAllowed|NotFound|NotReadable|Overconstrained)Error$/.test(err.name))) {
    switch ((err as Error).name) {
      case "NotAllowedError":
        return context === "media"
          ? "The browser blocked the camera or microphone. Allow them in the address bar's site settings, then try again."
          : "The browser did not allow this.";
      case "NotFoundError":
        return "No camera or microphone was found on this device.";
      case "NotReadableError":
        return "The camera or microphone is in use by another application.";
      case "OverconstrainedError":
        return "The selected device cannot be used. Pick another one.";
    }
  }
  if (err instanceof Error && err.message) return capitalise(err.message);
  return "Something went wrong. Try again.";
}

function capitalise(text: string): string {
  const t = text.trim();
  return t ? t[0].toUpperCase() + t.slice(1) + (/[.!?]$/.test(t) ? "" : ".") : "Something went wrong.";
}
