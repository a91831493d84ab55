// Debian's coturn started for a test: TURN over UDP and TCP on one free
// loopback port, credentials in the TURN REST API scheme (the secret VTP
// derives them from), relaying to loopback peers (the SFU listens there).
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import net from "node:net";
import { freePort, waitFor } from "./harness.mjs";

const TURNSERVER = process.env.TURNSERVER ?? "/usr/bin/turnserver";


/** Resolves once something accepts TCP connections on 127.0.0.1:port. */
async function listening(port, ms) {
  const up = () => new Promise((ok) => {
    const s = net.connect(port, "127.0.0.1", () => { s.destroy(); ok(true); });
    s.on("error", () => ok(false));
  });
  await waitFor(up, { ms, what: `turnserver to listen on ${port}` });
}

/** `{ port, urls, stop }`; `secret` is coturn's static-auth-secret. */
export async function startCoturn(secret) {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), "vtp-coturn-"));
  const relayBase = 50000 + Math.floor(Math.random() * 10000);
  const child = spawn(TURNSERVER, [
    "-n", "--no-cli", "--no-tls", "--no-dtls", "--fingerprint",
    "--listening-ip", "127.0.0.1", "--listening-port", String(port),
    "--relay-ip", "127.0.0.1", "--min-port", String(relayBase), "--max-port", String(relayBase + 200),
    "--use-auth-secret", "--static-auth-secret", secret, "--realm", "vtp.test",
    "--allow-loopback-peers", "--no-multicast-peers",
    "--pidfile", join(dir, "turnserver.pid"), "--log-file", join(dir, "turn.log"), "--simple-log", "--no-stdout-log",
  ], { stdio: "ignore" });
  const exited = new Promise((ok) => child.once("exit", ok));
  await Promise.race([
    listening(port, 10_000),
    exited.then((code) => { throw new Error(`turnserver exited with ${code}`); }),
  ]);
  return {
    port,
    urls: [`turn:127.0.0.1:${port}?transport=udp`, `turn:127.0.0.1:${port}?transport=tcp`],
    async stop() {
      child.kill("SIGTERM");
      await exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
