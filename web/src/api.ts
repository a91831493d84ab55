// The HTTP API client (docs/protocol.md, "HTTP API"): keeps the tokens in localStorage so a
// reload stays signed in, and refreshes the 15-minute access token before it
// expires. Refresh tokens rotate and a re-used one ends the whole family, so
// only one refresh may be in flight at a time.

export type Role = "admin" | "instructor" | "student";

export interface User {
  id: string;
  email: string;
  displayName: string;
  role: Role;
  disabled?: boolean;
  createdAt?: string;
}

export interface RoomSettings {
  maxParticipants: number;
  allowStudentVideo: boolean;
  allowStudentScreen: boolean;
  autoRecord: boolean;
}

export interface Room {
  id: string;
  title: string;
  ownerId: string;
  status: "open" | "live" | "closed";
  settings: RoomSettings;
  createdAt: string;
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
}

interface Stored {
  accessToken: string;
  refreshToken: string;
  /** Epoch ms when the access token stops working. */
  expiresAt: number;
  /** Refresh when less than this is left (ms). */
  marginMs: number;
  user: User;
}

/** An API failure with the server's stable code (or `unreachable`). */
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

  private save(auth: AuthResponse): void {
    this.stored = {
      accessToken: auth.accessToken,
      refreshToken: auth.refreshToken,
      expiresAt: Date.now() + auth.expiresIn * 1000,
      // A minute before expiry, or a quarter of the lifetime when tokens are short.
      marginMs: Math.min(MARGIN_MS, (auth.expiresIn * 1000) / 4),
      user: auth.user,
    };
    localStorage.setItem(KEY, JSON.stringify(this.stored));
  }

  private forget(): void {
    this.stored = null;
    localStorage.removeItem(KEY);
  }

  async login(email: string, password: string): Promise<User> {
    const auth = await this.raw<AuthResponse>("POST", "/auth/login", { email, password });
    this.save(auth);
    return auth.user;
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
    try {
      res = await fetch(`/api/v1${path}`, {
        method,
        headers: {
          ...(body === undefined ? {} : { "content-type": "application/json" }),
          ...(token ? { authorization: `Bearer ${token}` } : {}),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
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
  rooms(q = ""): Promise<Page<Room>> {
    return this.call("GET", `/rooms?perPage=100${q ? `&q=${encodeURIComponent(q)}` : ""}`);
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
}
