// Starts a real `vtp` binary on a free port with a throw-away data directory,
// and offers the few HTTP calls the Socket.IO tests need.
import assert from "node:assert/strict";
import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import net from "node:net";
import { io } from "socket.io-client";

const here = dirname(fileURLToPath(import.meta.url));
export const VTP_BIN = process.env.VTP_BIN ?? resolve(here, "../../target/debug/vtp");

/** A TCP port free on 127.0.0.1 now. */
export async function freePort() {
  return new Promise((ok, fail) => {
    const srv = net.createServer();
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => ok(port));
    });
    srv.on("error", fail);
  });
}

/** Headless Chromium as the browser suites run it: fake camera and
 * microphone without prompts, loopback candidates, no name lookups that
 * would leave the machine. */
export const CHROMIUM_FLAGS = [
  "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync",
  "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
  "--allow-loopback-in-peer-connection", "--autoplay-policy=no-user-gesture-required",
  "--disable-features=WebRtcHideLocalIpsWithMdns",
  "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE localhost , EXCLUDE 127.0.0.1 , EXCLUDE [::1]",
];

/**
 * Records in `sink` every Content-Security-Policy violation of `page`
 * (Chromium logs each on the console; the `securitypolicyviolation` event
 * is logged too, for what the console would word differently): the
 * browser suites fail on any, so the server's CSP is proven not to break
 * the app.
 */
export async function watchCsp(page, name, sink) {
  page.on("console", (m) => {
    if (/Content.Security.Policy/i.test(m.text())) sink.push(`[${name}] ${m.text()}`);
  });
  // Playwright's name, else Puppeteer's (Firefox): the same script before each document.
  const onEveryDocument = (page.addInitScript ?? page.evaluateOnNewDocument).bind(page);
  await onEveryDocument(() => {
    document.addEventListener("securitypolicyviolation", (e) =>
      console.error(`Content-Security-Policy violation: ${e.violatedDirective} ${e.blockedURI}`),
    );
  });
}

/** After a browser test: closes its contexts (so its media stops loading the machine) and fails on any page error or CSP violation it collected. */
export async function closeAndCheck(contexts, errors, cspViolations) {
  await Promise.all(contexts.splice(0).map((c) => c.close().catch(() => {})));
  assert.deepEqual(errors.splice(0), [], "no uncaught errors in the pages");
  assert.deepEqual(cspViolations.splice(0), [], "no Content-Security-Policy violation");
}

export class Vtp {
  /** A `vtp` on a fresh data directory, or on `dir` (a restart of one that was killed). */
  static async start(extraArgs = [], { dir = mkdtempSync(join(tmpdir(), "vtp-js-")) } = {}) {
    const port = await freePort();
    const base = `http://127.0.0.1:${port}`;
    const child = spawn(VTP_BIN, ["serve", "--bind", `127.0.0.1:${port}`, "--rtc-bind", "127.0.0.1:0", "--data-dir", dir, "--log-level", "warn", ...extraArgs], {
      stdio: ["ignore", "inherit", "inherit"],
    });
    const vtp = new Vtp(dir, base, child);
    vtp.args = extraArgs;
    const healthy = () => fetch(`${base}/health`).then((r) => r.ok, () => false);
    try {
      await waitFor(healthy, { what: "vtp to answer /health" });
    } catch (e) {
      vtp.stop();
      throw e;
    }
    return vtp;
  }

  constructor(dir, base, child) {
    this.dir = dir;
    this.base = base;
    this.child = child;
    this.sockets = [];
  }

  stop() {
    for (const s of this.sockets) s.disconnect();
    this.child.kill("SIGTERM");
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** Kills the server as a crash would (SIGKILL), keeping its data directory; resolves once it is gone. */
  async crash() {
    for (const s of this.sockets) s.disconnect();
    const gone = new Promise((ok) => this.child.once("exit", ok));
    this.child.kill("SIGKILL");
    await gone;
  }

  /** A new server on the same data directory (after `crash()`), with the same arguments. */
  restart() {
    return Vtp.start(this.args, { dir: this.dir });
  }

  async http(method, path, body, token) {
    const res = await fetch(this.base + path, {
      method,
      headers: { "content-type": "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : null };
  }

  /** The value of the series `name` (with its labels) on `/metrics`. */
  async metric(name) {
    const text = await (await fetch(`${this.base}/metrics`)).text();
    const line = text.split("\n").find((l) => l.startsWith(name + " "));
    if (!line) throw new Error(`${name} missing from /metrics`);
    return Number(line.slice(name.length + 1));
  }

  /** A signed-in user; instructors and admins are made with `vtp user create`. */
  async user(email, role = "student") {
    const password = "Tq7-vB2k-9wZr-" + email;
    if (role === "student") {
      const r = await this.http("POST", "/api/v1/auth/register", { email, password, displayName: email.split("@")[0] });
      if (r.status !== 201) throw new Error(`register ${email}: ${JSON.stringify(r.body)}`);
    } else {
      execFileSync(VTP_BIN, ["user", "create", "--email", email, "--password", password, "--role", role, "--data-dir", this.dir]);
    }
    const login = await this.http("POST", "/api/v1/auth/login", { email, password });
    return { token: login.body.accessToken, id: login.body.user.id, email };
  }

  /** A room of the holder of `token`, open to anyone signed in unless `settings.access` says otherwise. */
  async room(token, settings) {
    const r = await this.http("POST", "/api/v1/rooms", { title: "JS room", settings: { access: "signed_in", ...(settings ?? {}) } }, token);
    if (r.status !== 201) throw new Error(JSON.stringify(r.body));
    return r.body.id;
  }

  /** A connected socket (resolves on connect, rejects on connect_error). */
  socket(token, options = {}) {
    const socket = io(this.base, { auth: token === undefined ? undefined : { token }, reconnection: false, ...options });
    this.sockets.push(socket);
    const events = [];
    socket.onAny((event, payload) => events.push({ event, payload }));
    socket.events = events;
    socket.next = (event, ms = 3000) => nextEvent(socket, event, ms);
    return new Promise((ok, fail) => {
      socket.once("connect", () => ok(socket));
      socket.once("connect_error", (err) => fail(err));
    });
  }
}

/** Resolves with the next `event` payload (already received ones first). */
function nextEvent(socket, event, ms) {
  const i = socket.events.findIndex((e) => e.event === event);
  if (i >= 0) return Promise.resolve(socket.events.splice(i, 1)[0].payload);
  return new Promise((ok, fail) => {
    const timer = setTimeout(() => fail(new Error(`no ${event} within ${ms} ms`)), ms); // sleep-ok: a deadline
    const listener = (name, payload) => {
      if (name !== event) return;
      clearTimeout(timer);
      socket.offAny(listener);
      const j = socket.events.findIndex((e) => e.event === event);
      if (j >= 0) socket.events.splice(j, 1);
      ok(payload);
    };
    socket.onAny(listener);
  });
}

// Tests wait for what they expect: they poll for it under a deadline, and
// never sleep a fixed time hoping that it has happened by then.

/** Polls `probe()` until `done(value)` holds or `ms` pass, and returns the
 * last value either way (for an assertion that shows it). */
export async function pollUntil(probe, done, { ms = 10_000, every = 100 } = {}) {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await probe();
    if (done(value) || Date.now() > deadline) return value;
    await new Promise((r) => setTimeout(r, every)); // sleep-ok: the poll interval
  }
}

/** Resolves with the first truthy value of `probe()`; throws naming `what`
 * (a string, or a function of the last value) after `ms`. */
export async function waitFor(probe, { ms = 10_000, every = 100, what = "a condition" } = {}) {
  const value = await pollUntil(probe, Boolean, { ms, every });
  if (value) return value;
  const said = typeof what === "function" ? what(value) : `${what} (last: ${JSON.stringify(value)})`;
  throw new Error(`waited ${ms} ms in vain for ${said}`);
}
