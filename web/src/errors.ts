// Turns failures into sentences a student or instructor understands. The
// server's codes are stable (docs/protocol.md); its messages are for developers.
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

/**
 * The browser gives camera, microphone and screen only to pages in a secure
 * context (HTTPS, or localhost); elsewhere `navigator.mediaDevices` is
 * missing altogether, which would otherwise surface as a TypeError.
 */
export class InsecureContextError extends Error {
  constructor() {
    super("camera and microphone need a secure context (HTTPS)");
    this.name = "InsecureContextError";
  }
}

export const INSECURE_CONTEXT_TEXT = "This page must be opened over HTTPS to use your camera and microphone.";

/** Whether this page may ask for camera, microphone and screen at all. */
export function canCapture(): boolean {
  return window.isSecureContext !== false && typeof navigator.mediaDevices !== "undefined";
}

/** `navigator.mediaDevices`, or an `InsecureContextError` saying why there is none. */
export function mediaDevices(): MediaDevices {
  if (!canCapture()) throw new InsecureContextError();
  return navigator.mediaDevices;
}

export function describe(err: unknown, context: "login" | "code" | "register" | "join" | "invite" | "media" | "screen" | "other" = "other"): string {
  if (err instanceof ApiError || err instanceof SignalError) {
    switch (err.code) {
      case "unreachable":
        return "The server cannot be reached. Check your connection and try again.";
      case "unauthorized":
        if (context === "login") return "Wrong e-mail or password.";
        if (context === "code") {
          return /expired/i.test(err.message)
            ? "The sign-in has expired. Enter your e-mail and password again."
            : "That code is wrong or was already used. Wait for the next code and try again.";
        }
        if (err.message.includes("current password")) return "Your current password is wrong.";
        return "Your session has ended. Please sign in again.";
      case "rate_limited":
        if (context === "code") return "Too many wrong codes. Wait a few minutes and try again.";
        return context === "login"
          ? "Too many sign-in attempts. Wait a minute and try again."
          : "You are going too fast. Wait a moment and try again.";
      case "room_full":
        return "This room is full. Ask the instructor to raise its limit.";
      case "not_started":
        return "The class has not started yet: it opens when the instructor joins.";
      case "limit_reached":
        return "This room has reached a limit on what it can carry. Close something you share, or ask the instructor.";
      case "room_closed":
        return "This room is closed. The instructor has to reopen it before anyone can join.";
      case "not_found":
        if (context === "join") return "This class does not exist, or you are not one of its members. Ask your teacher for an invitation link.";
        // The server says why a link does not work (expired, withdrawn, used up) in words meant for people.
        if (context === "invite") return capitalise(err.message);
        return "That was not found.";
      case "forbidden":
        if (context === "join" && /removed/i.test(err.message)) return "A host removed you from this session.";
        if (/disabled/i.test(err.message)) return "This account is disabled. Ask an administrator to enable it.";
        if (/two-factor/i.test(err.message)) return capitalise(err.message);
        if (context === "register") return "This server does not take new accounts. Ask an administrator for one.";
        return "You are not allowed to do that.";
      case "conflict":
        return context === "register" ? "An account with this e-mail already exists." : capitalise(err.message);
      case "validation_failed":
      case "bad_request":
        return fieldMessage(err.message);
      default:
        return "Something went wrong on the server. Try again in a moment.";
    }
  }
  // A plain-HTTP page on another host: the TypeError case covers code that
  // reached navigator.mediaDevices without asking mediaDevices() first.
  if (err instanceof InsecureContextError || (err instanceof TypeError && context === "media" && !canCapture())) {
    return INSECURE_CONTEXT_TEXT;
  }
  if (err instanceof DOMException || (err instanceof Error && /^(NotAllowed|NotFound|NotReadable|Overconstrained)Error$/.test(err.name))) {
    switch ((err as Error).name) {
      case "NotAllowedError":
        return context === "media"
          ? "The browser blocked the camera or microphone. Allow them in the address bar's site settings, then try again."
          : "The browser did not allow this.";
      case "NotFoundError":
        // Firefox answers getDisplayMedia this way when it has nothing it may share.
        return context === "screen"
          ? "There is no screen or window this browser can share."
          : "No camera or microphone was found on this device.";
      case "NotReadableError":
        return context === "screen"
          ? "The screen could not be captured. Close other apps that record the screen and try again."
          : "The camera or microphone is in use by another application.";
      case "OverconstrainedError":
        return "The selected device cannot be used. Pick another one.";
    }
  }
  if (err instanceof Error && err.message) return capitalise(err.message);
  return "Something went wrong. Try again.";
}

/** The server's field names, as the forms label them. */
const FIELDS: Record<string, string> = {
  email: "The e-mail address",
  password: "The password",
  code: "The code",
  newPassword: "The new password",
  displayName: "The name",
  title: "The title",
  "settings.maxParticipants": "The number of participants",
  text: "The message",
};

/** `password: must be at least 8 characters` → `The password must be at least 8 characters.` */
function fieldMessage(message: string): string {
  const m = /^([a-zA-Z.]+): (.*)$/.exec(message);
  if (!m) return capitalise(message);
  const field = FIELDS[m[1]];
  // "must …" and "too …" read well after the field's name; anything else stands alone.
  if (field && m[2].startsWith("must")) return capitalise(`${field} ${m[2]}`);
  if (field && m[2].startsWith("too ")) return capitalise(`${field} is ${m[2]}`);
  return capitalise(m[2]);
}

function capitalise(text: string): string {
  const t = text.trim();
  return t ? t[0].toUpperCase() + t.slice(1) + (/[.!?]$/.test(t) ? "" : ".") : "Something went wrong.";
}
