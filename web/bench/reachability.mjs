// Figures for docs/benchmarks.md (a benchmark, not a test): in the network
// namespaces of tests/netns.mjs, a teacher on another host publishes her
// camera; a student behind the school's NAT joins the room N times over
// each path the school's firewall leaves open, and we time, from the click
// on "Join", until the receive transport is connected (ICE and DTLS) and
// until the first frame of the teacher's video is decoded.
//
//   sudo node web/bench/reachability.mjs [--runs 5]    (after npm run build)
//
// Paths: UDP (nothing blocked), ICE-TCP (outbound UDP dropped), TURN over
// TLS on 443 (nothing out but HTTPS). Medians and extremes per path.
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { VTP_BIN } from "../tests/harness.mjs";
import { ADDR, Network, testCertificate } from "../tests/netns.mjs";
import { joinFromLobby, signIn } from "../tests/app-steps.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const dist = join(here, "..", "dist");
const runs = Number(process.argv[process.argv.indexOf("--runs") + 1]) || 5;
const SECRET = "bench-secret";
const FLAGS = [
  "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync",
  "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
  "--autoplay-policy=no-user-gesture-required", "--disable-features=WebRtcHideLocalIpsWithMdns",
  `--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE ${ADDR.server} , EXCLUDE ${ADDR.turn}`,
];

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

const net = Network.create();
const data = mkdtempSync(join(tmpdir(), "vtp-bench-"));
const children = [];
const browsers = [];
try {
  const cert = testCertificate(net.dir, ADDR.server, "vtp.test");
  const turnCert = testCertificate(net.dir, ADDR.turn, "turn.test");
  children.push(net.spawn(net.ns.turn, "/usr/bin/turnserver", [
    "-n", "--no-cli", "--no-dtls", "--fingerprint", "--listening-ip", ADDR.turn, "--relay-ip", ADDR.turn,
    "--listening-port", "3478", "--tls-listening-port", "443", "--cert", turnCert.cert, "--pkey", turnCert.key,
    "--use-auth-secret", "--static-auth-secret", SECRET, "--realm", "turn.test", "--log-file", "stdout", "--no-stdout-log",
    "--pidfile", join(net.dir, "turn.pid"),
  ], { stdio: "ignore" }));
  // A new student for every join: nobody comes back into a place kept for them.
  const accounts = [["t@example.org", "instructor"], ...Array.from({ length: 3 * runs }, (_, i) => [`s${i}@example.org`, "student"])];
  for (const [email, role] of accounts) {
    execFileSync(VTP_BIN, ["user", "create", "--email", email, "--password", `Tq7-vB2k-9wZr-${email}`, "--role", role, "--data-dir", data], { stdio: "ignore" });
  }
  children.push(net.spawn(net.ns.server, VTP_BIN, [
    "serve", "--data-dir", data, "--web-dir", dist, "--log-level", "error",
    "--bind", `${ADDR.server}:443`, "--tls-cert", cert.cert, "--tls-key", cert.key,
    "--rtc-bind", `${ADDR.server}:40000`, "--login-rate-per-ip", "1000",
    "--turn-url", `turns:${ADDR.turn}:443?transport=tcp`, "--turn-secret", SECRET,
  ], { stdio: "ignore" }));
  const origin = `https://${ADDR.server}`;
  for (let i = 0; ; i++) {
    try {
      net.exec(net.ns.studentA, "curl", ["-skf", "-o", "/dev/null", `${origin}/health`]);
      break;
    } catch {
      if (i > 100) throw new Error("vtp did not start");
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  const open = async (host) => {
    const browser = await chromium.launch({ executablePath: net.chromiumIn(net.ns[host]), args: [...FLAGS, `--ignore-certificate-errors-spki-list=${cert.spki},${turnCert.spki}`] });
    browsers.push(browser);
    return (await browser.newContext({ permissions: ["camera", "microphone"] })).newPage();
  };
  const teacher = await open("studentA");
  await signIn(teacher, origin, "t@example.org");
  await teacher.getByLabel("Title").fill("Bench");
  await teacher.getByRole("button", { name: "Create room" }).click();
  await joinFromLobby(teacher, "Bench");

  const rows = [];
  let nextStudent = 0;
  for (const [path, firewall] of [["UDP", "open"], ["ICE-TCP", "no-udp-no-relay"], ["TURN/TLS 443", "https-only"]]) {
    net.schoolFirewall(firewall);
    const connect = [], frame = [];
    const seen = new Set();
    for (let run = 0; run < runs; run++) {
      const student = await open("studentB");
      await signIn(student, origin, `s${nextStudent++}@example.org`);
      await student.waitForSelector('a[aria-label="Join Bench"]');
      const t0 = Date.now();
      await student.click('a[aria-label="Join Bench"]');
      let connectedAt = null, frameAt = null;
      while (Date.now() - t0 < 30_000 && frameAt === null) {
        const state = await student.evaluate(async () => {
          const media = window.vtpRoom?.session.media;
          const recv = media?.recv;
          const stats = media ? await window.vtpRoom.stats() : [];
          let pair = null;
          if (recv) {
            const byId = new Map();
            (await recv.getStats()).forEach((s) => byId.set(s.id, s));
            for (const s of byId.values()) {
              if (s.type === "transport" && s.selectedCandidatePairId) {
                const local = byId.get(byId.get(s.selectedCandidatePairId)?.localCandidateId);
                pair = `${local?.candidateType}/${local?.protocol}${local?.relayProtocol ? "/" + local.relayProtocol : ""}`;
              }
            }
          }
          return { connected: recv?.connectionState === "connected", decoded: stats.some((s) => s.kind === "video" && s.framesDecoded > 0), pair };
        }).catch(() => ({}));
        if (state.connected && connectedAt === null) connectedAt = Date.now();
        if (state.decoded) { frameAt = Date.now(); seen.add(state.pair); }
        await new Promise((r) => setTimeout(r, 20));
      }
      if (connectedAt !== null) connect.push(connectedAt - t0);
      if (frameAt !== null) frame.push(frameAt - t0);
      await student.context().browser().close();
      browsers.pop();
    }
    rows.push({ path, pairs: [...seen].join(" "), runs, connected: connect.length, connectMedian: median(connect), connectMax: Math.max(...connect), frameMedian: median(frame), frameMax: Math.max(...frame) });
  }
  net.schoolFirewall("open");
  console.log("| path | selected pair | runs | join → ICE+DTLS connected, median (max) | join → first decoded frame, median (max) |");
  console.log("|---|---|---|---|---|");
  for (const r of rows) {
    console.log(`| ${r.path} | ${r.pairs} | ${r.connected}/${r.runs} | ${Math.round(r.connectMedian)} ms (${r.connectMax}) | ${Math.round(r.frameMedian)} ms (${r.frameMax}) |`);
  }
} finally {
  for (const b of browsers) await b.close().catch(() => {});
  for (const c of children) c.kill("SIGTERM");
  net.destroy();
  rmSync(data, { recursive: true, force: true });
}
