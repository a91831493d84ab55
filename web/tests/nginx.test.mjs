// The reverse-proxy alternative of docs/deploy.md, tested: Debian's nginx
// with deploy/nginx-vtp.conf (names, ports and certificate paths replaced)
// in front of a real `vtp`. The official socket.io-client connects through
// it over HTTPS and upgrades to a websocket; sign-in limits count each
// client behind the proxy by its own address (X-Forwarded-For from a
// trusted proxy); plain HTTP is redirected.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from "node:fs";
import https from "node:https";
import http from "node:http";
import net from "node:net";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { io } from "socket.io-client";
import { Vtp, freePort, pollUntil } from "./harness.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const NGINX = process.env.NGINX ?? "/usr/sbin/nginx";
const skip = existsSync(NGINX) ? false : "Debian's nginx is not installed";


let vtp, nginx, dir, httpsPort, httpPort;

before(async () => {
  if (skip) return;
  dir = mkdtempSync(join(tmpdir(), "vtp-nginx-"));
  vtp = await Vtp.start(["--trust-forwarded-for", "127.0.0.1/32", "--login-rate-per-ip", "2"]);
  [httpsPort, httpPort] = [await freePort(), await freePort()];
  execFileSync("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
    "-keyout", join(dir, "key.pem"), "-out", join(dir, "cert.pem"), "-days", "1", "-subj", "/CN=class.example.org"], { stdio: "ignore" });
  const site = readFileSync(join(here, "../../deploy/nginx-vtp.conf"), "utf8")
    .replace(/^\s*listen \[::\]:.*$/gm, "")
    .replace("listen 80;", `listen 127.0.0.1:${httpPort};`)
    .replace("listen 443 ssl;", `listen 127.0.0.1:${httpsPort} ssl;`)
    .replace("server 127.0.0.1:8080;", `server ${new URL(vtp.base).host};`)
    .replace(/ssl_certificate\s+\S+;/, `ssl_certificate ${join(dir, "cert.pem")};`)
    .replace(/ssl_certificate_key\s+\S+;/, `ssl_certificate_key ${join(dir, "key.pem")};`);
  writeFileSync(join(dir, "vtp.conf"), site);
  writeFileSync(join(dir, "nginx.conf"), `
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
daemon off;
events { worker_connections 256; }
http {
  access_log off;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  include ${dir}/vtp.conf;
}
`);
  nginx = spawn(NGINX, ["-p", dir, "-c", join(dir, "nginx.conf"), "-e", join(dir, "error.log")], { stdio: ["ignore", "ignore", "inherit"] });
  const up = () => new Promise((ok) => {
    const s = net.connect(httpsPort, "127.0.0.1", () => { s.destroy(); ok(true); });
    s.on("error", () => ok(false));
  });
  // Up, or nginx gave up (its error log says why).
  if (await pollUntil(up, (ready) => ready || nginx.exitCode !== null)) return;
  throw new Error(`nginx did not start: ${existsSync(join(dir, "error.log")) ? readFileSync(join(dir, "error.log"), "utf8") : ""}`);
});

after(async () => {
  if (nginx && nginx.exitCode === null) {
    const exited = new Promise((ok) => nginx.once("exit", ok));
    nginx.kill("SIGTERM");
    await exited;
  }
  vtp?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** POST /api/v1/auth/login through nginx from the local address `from`. */
function loginVia(from, email, password) {
  return new Promise((ok, fail) => {
    const body = JSON.stringify({ email, password });
    const req = https.request({
      host: "127.0.0.1", port: httpsPort, path: "/api/v1/auth/login", method: "POST", localAddress: from,
      rejectUnauthorized: false, headers: { "content-type": "application/json", "content-length": Buffer.byteLength(body) },
    }, (res) => { res.resume(); res.on("end", () => ok(res.statusCode)); });
    req.on("error", fail);
    req.end(body);
  });
}

test("socket.io through nginx over HTTPS: polling, then a websocket, then a room", { skip, timeout: 30_000 }, async () => {
  const u = await vtp.user("proxied@example.org", "instructor");
  const roomId = await vtp.room(u.token);
  const socket = io(`https://127.0.0.1:${httpsPort}`, { auth: { token: u.token }, reconnection: false, rejectUnauthorized: false });
  try {
    await new Promise((ok, fail) => { socket.once("connect", ok); socket.once("connect_error", fail); });
    // The upgrade from long-polling to a websocket went through the proxy.
    await new Promise((ok, fail) => {
      if (socket.io.engine.transport.name === "websocket") return ok();
      const t = setTimeout(() => fail(new Error("no websocket upgrade through nginx")), 10_000); // sleep-ok: a deadline
      socket.io.engine.once("upgrade", () => { clearTimeout(t); ok(); });
    });
    const joined = await socket.emitWithAck("join-room", { roomId });
    assert.equal(joined.ok, true, JSON.stringify(joined));
    const said = await socket.emitWithAck("chat-message", { roomId, text: "through the proxy" });
    assert.equal(said.ok, true, JSON.stringify(said));
  } finally {
    socket.disconnect();
  }
});

test("each student behind the proxy has their own sign-in budget", { skip, timeout: 30_000 }, async () => {
  await vtp.user("limited@example.org");
  // 127.0.0.2 guesses twice, then is stopped (--login-rate-per-ip 2)...
  assert.equal(await loginVia("127.0.0.2", "limited@example.org", "wrong-1"), 401);
  assert.equal(await loginVia("127.0.0.2", "limited@example.org", "wrong-2"), 401);
  assert.equal(await loginVia("127.0.0.2", "limited@example.org", "Tq7-vB2k-9wZr-limited@example.org"), 429);
  // ...while 127.0.0.3, through the same proxy, signs in.
  assert.equal(await loginVia("127.0.0.3", "limited@example.org", "Tq7-vB2k-9wZr-limited@example.org"), 200);
});

test("plain HTTP is redirected to HTTPS", { skip, timeout: 10_000 }, async () => {
  const res = await new Promise((ok, fail) => {
    http.get({ host: "127.0.0.1", port: httpPort, path: "/rooms/x?y=1", headers: { host: "class.example.org" } }, ok).on("error", fail);
  });
  res.resume();
  assert.equal(res.statusCode, 308);
  assert.equal(res.headers.location, "https://class.example.org/rooms/x?y=1");
});
