// The HTTP API client (docs/protocol.md, "HTTP API"): keeps the tokens in localStorage so a
// reload stays signed in, and refreshes the 15-minute access token before it
// expires. Refresh tokens rotate and a re-used one ends the whole family, so
// only one refresh may be in flight at a time.

import type { components } from "./api/schema";

/** The server's own shapes, generated from its OpenAPI document (src/api/schema.ts). */
type Schemas = components["schemas"];
export type Schedule = Schemas["Schedule"];
export type ScheduleEntry = Schemas["ScheduleEntry"];
export type Weekday = Schemas["Weekday"];
export type SessionTime = Schemas["SessionTimeDto"];
export type CalendarLink = Schemas["CalendarLinkDto"];
export type CreateUserRequest = Schemas["CreateUserRequest"];
export type TemporaryPassword = Schemas["TemporaryPasswordDto"];

export type Role = Schemas["Role"];

export interface User {
  id: string;
  email: string;
  displayName: string;
  role: Role;
  disabled?: boolean;
  /** Signs in with a code from an authenticator app after the password. */
  twoFactor?: boolean;
  /** Has a temporary password that must be changed first. */
  passwordMustChange?: Schemas["UserDto"]["passwordMustChange"];
  createdAt?: string;
}

/** The start of a two-factor enrolment: the app reads the URI (or the QR code of it). */
export interface TwoFactorSetup {
  secret: string;
  otpauthUri: string;
  qrSvg: string;
}

export interface RoomSettings {
  maxParticipants: number;
  allowStudentVideo: boolean;
  allowStudentScreen: boolean;
  autoRecord: boolean;
  /** Who may find and join the room besides its owner and admins. */
  access: "members" | "signed_in";
  /** Whether students wait before they are in the room (hosts never do). */
  waitingRoom: WaitingRoomMode;
}

export type WaitingRoomMode = "off" | "until_host_present" | "host_admits";

export type MemberRole = "student" | "co_teacher";

export interface Member {
  userId: string;
  email: string;
  displayName: string;
  role: MemberRole;
  addedAt: string;
}

export interface Roster {
  members: Member[];
  pending: { email: string; role: MemberRole; addedAt: string }[];
}

export interface Invitation {
  id: string;
  roomId: string;
  role: MemberRole;
  createdAt: string;
  expiresAt: string;
  maxUses?: number;
  uses: number;
}

export interface ImportReport {
  added: number;
  invitedNotRegistered: number;
  errors: number;
  rows: { line: number; email: string; result: "added" | "invited_not_registered" | "error"; error?: string }[];
}

export interface Room {
  id: string;
  title: string;
  ownerId: string;
  status: "open" | "live" | "closed";
  settings: RoomSettings;
  createdAt: string;
  /** The caller's role on the roster (one room's answer only). */
  memberRole?: MemberRole;
  /** When its sessions happen, and the one in progress or next. */
  schedule?: Schemas["RoomDto"]["schedule"];
  nextSession?: Schemas["RoomDto"]["nextSession"];
}

export interface Page<T> {
  items: T[];
  page: number;
  perPage: number;
  total: number;
}

interface AuthResponse {
  accessToken: string;
  refreshToken: string;
  expiresIn: number;
  user: User;
  /** The role requires two-factor sign-in and the account has none yet: the token only enrols. */
  enrolmentRequired?: boolean;
  /** Signed in with a temporary password: the token only changes it. */
  passwordChangeRequired?: Schemas["AuthResponse"]["passwordChangeRequired"];
}

/** `/auth/login`'s answer when the account signs in with two factors. */
interface SecondFactorChallenge {
  secondFactorRequired: true;
  pendingToken: string;
  expiresIn: number;
}

interface Stored {
  accessToken: string;
  refreshToken: string;
  /** Epoch ms when the access token stops working. */
  expiresAt: number;
  /** Refresh when less than this is left (ms). */
  marginMs: number;
  user: User;
  enrolmentRequired?: boolean;
  passwordChangeRequired?: boolean;
}

/** An API failure with the server's stable code (or `unreachable`). */
/** A request body sent as `text/csv` rather than JSON. */
export class CsvBody {
  constructor(readonly text: string) {}
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

const KEY = "vtp.session";
/** Refresh at most this long before expiry, so a request never races the deadline. */
const MARGIN_MS = 60_000;

export class Api {
  private stored: Stored | null = null;
  /** Between the password and the code of a two-factor sign-in. */
  private pendingToken: string | null = null;
  private refreshing: Promise<void> | null = null;
  /** Called when the session ends (signed out, refresh refused). */
  onSignedOut: () => void = () => {};

  constructor() {
    try {
      const raw = localStorage.getItem(KEY);
      if (raw) this.stored = JSON.parse(raw) as Stored;
    } catch {
      this.stored = null;
    }
  }

  get user(): User | null {
    return this.stored?.user ?? null;
  }

  /** Signed in with a token that is good only for enrolling in two-factor sign-in. */
  get enrolmentRequired(): boolean {
    return this.stored?.enrolmentRequired ?? false;
  }

  /** Signed in with a temporary password an admin set: it must be changed first. */
  get passwordChangeRequired(): boolean {
    return this.stored?.passwordChangeRequired ?? false;
  }

  private save(auth: AuthResponse): void {
    this.stored = {
      accessToken: auth.accessToken,
      refreshToken: auth.refreshToken,
      expiresAt: Date.now() + auth.expiresIn * 1000,
      // A minute before expiry, or a quarter of the lifetime when tokens are short.
      marginMs: Math.min(MARGIN_MS, (auth.expiresIn * 1000) / 4),
      user: auth.user,
      enrolmentRequired: auth.enrolmentRequired ?? false,
      passwordChangeRequired: auth.passwordChangeRequired ?? false,
    };
    localStorage.setItem(KEY, JSON.stringify(this.stored));
  }

  private forget(): void {
    this.stored = null;
    localStorage.removeItem(KEY);
  }

  /** Signs in; `"second-factor"` when a code must follow ({@link verifySecondFactor}). */
  async login(email: string, password: string): Promise<"signed-in" | "second-factor"> {
    const answer = await this.raw<AuthResponse | SecondFactorChallenge>("POST", "/auth/login", { email, password });
    if ("pendingToken" in answer) {
      this.pendingToken = answer.pendingToken;
      return "second-factor";
    }
    this.save(answer);
    return "signed-in";
  }

  /** The second step of a two-factor sign-in: a code from the app, or a recovery code. */
  async verifySecondFactor(code: string): Promise<void> {
    if (!this.pendingToken) throw new ApiError(401, "unauthorized", "the sign-in has expired: enter your password again");
    this.save(await this.raw<AuthResponse>("POST", "/auth/2fa/verify", { pendingToken: this.pendingToken, code: code.trim() }));
    this.pendingToken = null;
  }

  setupTwoFactor(): Promise<TwoFactorSetup> {
    return this.call<TwoFactorSetup>("POST", "/auth/2fa/setup", {});
  }

  /** Turns two-factor sign-in on with a first code; resolves with the recovery codes (shown once). */
  async confirmTwoFactor(code: string): Promise<string[]> {
    const answer = await this.call<{ recoveryCodes: string[]; tokens: AuthResponse }>("POST", "/auth/2fa/confirm", { code: code.trim() });
    this.save(answer.tokens);
    return answer.recoveryCodes;
  }

  /** Turns two-factor sign-in off, proven by a code (or recovery code) or the password. */
  async disableTwoFactor(proof: { code: string } | { password: string }): Promise<void> {
    await this.call("POST", "/auth/2fa/disable", proof);
    if (this.stored) {
      this.stored.user = { ...this.stored.user, twoFactor: false };
      localStorage.setItem(KEY, JSON.stringify(this.stored));
    }
  }

  async register(email: string, password: string, displayName: string): Promise<User> {
    const auth = await this.raw<AuthResponse>("POST", "/auth/register", { email, password, displayName });
    this.save(auth);
    return auth.user;
  }

  async changePassword(currentPassword: string, newPassword: string): Promise<void> {
    const auth = await this.call<AuthResponse>("POST", "/auth/change-password", { currentPassword, newPassword });
    this.save(auth);
  }

  async logout(everywhere: boolean): Promise<void> {
    const refreshToken = this.stored?.refreshToken;
    try {
      await this.call("POST", "/auth/logout", everywhere ? { everywhere: true } : { refreshToken });
    } finally {
      // The caller shows where to go next; onSignedOut is for sessions that end by themselves.
      this.forget();
    }
  }

  /**
   * The server ended this session (the account was disabled, the password changed elsewhere…):
   * forget it here too — unless another tab of this browser has signed in again since (its new
   * tokens, in the shared storage, are still good).
   */
  endSession(): void {
    let shared: Stored | null = null;
    try {
      shared = JSON.parse(localStorage.getItem(KEY) ?? "null") as Stored | null;
    } catch {
      shared = null;
    }
    if (shared && this.stored && shared.accessToken !== this.stored.accessToken) {
      this.stored = null;
      return;
    }
    this.forget();
  }

  /** A usable access token (refreshed when close to expiry). */
  async token(): Promise<string> {
    if (!this.stored) throw new ApiError(401, "unauthorized", "Please sign in.");
    if (Date.now() > this.stored.expiresAt - (this.stored.marginMs ?? MARGIN_MS)) await this.refresh();
    if (!this.stored) throw new ApiError(401, "unauthorized", "Please sign in.");
    return this.stored.accessToken;
  }

  private refresh(): Promise<void> {
    this.refreshing ??= (async () => {
      const refreshToken = this.stored?.refreshToken;
      if (!refreshToken) throw new ApiError(401, "unauthorized", "Please sign in.");
      try {
        this.save(await this.raw<AuthResponse>("POST", "/auth/refresh", { refreshToken }));
      } catch (e) {
        if (e instanceof ApiError && e.status === 401) {
          this.forget();
          this.onSignedOut();
        }
        throw e;
      }
    })().finally(() => {
      this.refreshing = null;
    });
    return this.refreshing;
  }

  /** An authenticated call; one retry after a refresh on 401. */
  async call<T>(method: string, path: string, body?: unknown): Promise<T> {
    try {
      return await this.raw<T>(method, path, body, await this.token());
    } catch (e) {
      if (!(e instanceof ApiError) || e.status !== 401 || !this.stored) throw e;
      await this.refresh();
      return this.raw<T>(method, path, body, await this.token());
    }
  }

  private async raw<T>(method: string, path: string, body?: unknown, token?: string): Promise<T> {
    let res: Response;
    // A CSV file goes as it is; everything else as JSON.
    const csv = body instanceof CsvBody;
    try {
      res = await fetch(`/api/v1${path}`, {
        method,
        headers: {
          ...(body === undefined ? {} : { "content-type": csv ? "text/csv" : "application/json" }),
          ...(token ? { authorization: `Bearer ${token}` } : {}),
        },
        body: body === undefined ? undefined : csv ? (body as CsvBody).text : JSON.stringify(body),
      });
    } catch {
      throw new ApiError(0, "unreachable", "The server cannot be reached. Check your connection and try again.");
    }
    const text = await res.text();
    let json: unknown = null;
    try {
      json = text ? JSON.parse(text) : null;
    } catch {
      json = null;
    }
    if (!res.ok) {
      const err = (json as { error?: { code?: string; message?: string } } | null)?.error;
      throw new ApiError(res.status, err?.code ?? "internal", err?.message ?? `HTTP ${res.status}`);
    }
    return json as T;
  }

  // Rooms and users.
  rooms(q = "", mine = false): Promise<Page<Room>> {
    return this.call("GET", `/rooms?perPage=100${q ? `&q=${encodeURIComponent(q)}` : ""}${mine ? "&mine=true" : ""}`);
  }
  // A room's roster and invitation links.
  roster(id: string): Promise<Roster> {
    return this.call("GET", `/rooms/${encodeURIComponent(id)}/members`);
  }
  addMember(id: string, email: string, role: MemberRole): Promise<{ result: "added" | "invited_not_registered" }> {
    return this.call("POST", `/rooms/${encodeURIComponent(id)}/members`, { email, role });
  }
  removeMember(id: string, userId: string): Promise<void> {
    return this.call("DELETE", `/rooms/${encodeURIComponent(id)}/members/${encodeURIComponent(userId)}`);
  }
  removePending(id: string, email: string): Promise<void> {
    return this.call("DELETE", `/rooms/${encodeURIComponent(id)}/pending-members/${encodeURIComponent(email)}`);
  }
  importRoster(id: string, csv: string): Promise<ImportReport> {
    return this.call("POST", `/rooms/${encodeURIComponent(id)}/members/import`, new CsvBody(csv));
  }
  invitations(id: string): Promise<Invitation[]> {
    return this.call("GET", `/rooms/${encodeURIComponent(id)}/invitations`);
  }
  createInvitation(id: string, options: { role: MemberRole; expiresInHours: number; maxUses?: number }): Promise<{ invitation: Invitation; token: string; path: string }> {
    return this.call("POST", `/rooms/${encodeURIComponent(id)}/invitations`, options);
  }
  revokeInvitation(id: string, invitationId: string): Promise<void> {
    return this.call("DELETE", `/rooms/${encodeURIComponent(id)}/invitations/${encodeURIComponent(invitationId)}`);
  }
  acceptInvitation(token: string): Promise<{ roomId: string; title: string; role?: MemberRole }> {
    return this.call("POST", `/invitations/${encodeURIComponent(token)}/accept`);
  }
  room(id: string): Promise<Room> {
    return this.call("GET", `/rooms/${encodeURIComponent(id)}`);
  }
  createRoom(title: string, settings: Partial<RoomSettings>, slug?: string): Promise<Room> {
    return this.call("POST", "/rooms", { title, settings, ...(slug ? { slug } : {}) });
  }
  updateRoom(id: string, patch: { title?: string; status?: "open" | "closed"; settings?: Partial<RoomSettings> }): Promise<Room> {
    return this.call("PATCH", `/rooms/${encodeURIComponent(id)}`, patch);
  }
  participants(id: string): Promise<{ peers: unknown[] }> {
    return this.call("GET", `/rooms/${encodeURIComponent(id)}/participants`);
  }
  users(q = "", page = 1): Promise<Page<User>> {
    return this.call("GET", `/users?perPage=50&page=${page}${q ? `&q=${encodeURIComponent(q)}` : ""}`);
  }
  updateUser(id: string, patch: { role?: Role; disabled?: boolean; displayName?: string }): Promise<User> {
    return this.call("PATCH", `/users/${id}`, patch);
  }
  createUser(body: CreateUserRequest): Promise<TemporaryPassword> {
    return this.call("POST", "/users", body);
  }
  resetPassword(id: string): Promise<TemporaryPassword> {
    return this.call("POST", `/users/${id}/password-reset`, {});
  }
  deleteUser(id: string): Promise<void> {
    return this.call("DELETE", `/users/${id}`);
  }
  // Scheduled sessions and the calendar feed.
  setSchedule(id: string, schedule: Schedule): Promise<Room> {
    return this.call("PUT", `/rooms/${encodeURIComponent(id)}/schedule`, schedule);
  }
  clearSchedule(id: string): Promise<Room> {
    return this.call("DELETE", `/rooms/${encodeURIComponent(id)}/schedule`);
  }
  calendarLink(id: string): Promise<CalendarLink> {
    return this.call("POST", `/rooms/${encodeURIComponent(id)}/calendar-link`, {});
  }
  revokeCalendarLink(id: string): Promise<void> {
    return this.call("DELETE", `/rooms/${encodeURIComponent(id)}/calendar-link`);
  }
}
