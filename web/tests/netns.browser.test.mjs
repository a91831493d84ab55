// VTP reached as students reach it: the server, a student on another host
// and a student behind a school's NAT are network namespaces (netns.mjs),
// each browser is headless Chromium running inside its own host, and the
// people use the web app over HTTPS. Checked on the receiving side's real
// WebRTC statistics: frames decoded, audio received, and which path
// (UDP, ICE-TCP, TURN) the connection took.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { VTP_BIN, pollUntil, waitFor } from "./harness.mjs";
import { joinFromLobby as joinRoom, receivesFrom, selfId, signIn } from "./app-steps.mjs";
import { ADDR, Network, caSignedLoopbackCertificate, canCreateNamespaces, spkiOf, testCertificate } from "./netns.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const dist = join(here, "..", "dist");
const skip = canCreateNamespaces() ? false : "needs root, ip and nft to create network namespaces";

const FLAGS = [
  "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync",
  "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
  "--autoplay-policy=no-user-gesture-required", "--disable-features=WebRtcHideLocalIpsWithMdns",
  // No name lookups leave a host (the servers are reached by address).
  `--host-resolver-rules=MAP vtp.test ${ADDR.server} , MAP * ~NOTFOUND , EXCLUDE ${ADDR.server} , EXCLUDE ${ADDR.turn}`,
];

const TURN_SECRET = "shared-by-vtp-and-coturn";
let net, dir, vtp, cert, turnCert, coturn, pebble, origin;
/** The people of the first test, who stay in the room for the later ones. */
let teacher, sam;
const browsers = [];
const logs = [];

/** `vtp serve` inside the server's namespace; resolves once it answers. */
async function startVtp(args, url, dataDir = dir) {
  const child = net.spawn(net.ns.server, VTP_BIN, ["serve", "--data-dir", dataDir, "--web-dir", dist, "--log-level", "warn", ...args], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  const log = { text: "" };
  child.stdout.on("data", (d) => (log.text += d));
  child.stderr.on("data", (d) => (log.text += d));
  logs.push(log);
  const answers = () => {
    try {
      net.exec(net.ns.studentA, "curl", ["-skf", "--resolve", `vtp.test:443:${ADDR.server}`, "-o", "/dev/null", `${url}/health`]);
      return true;
    } catch {
      return false;
    }
  };
  // It answers, or it stopped (its log says why).
  if (await pollUntil(answers, (up) => up || child.exitCode !== null, { ms: 30_000, every: 200 })) return { child, log };
  child.kill("SIGKILL");
  throw new Error(`vtp did not answer at ${url}: ${log.text}`);
}

async function stopVtp(v) {
  if (!v || v.child.exitCode !== null) return;
  const exited = new Promise((ok) => v.child.once("exit", ok));
  v.child.kill("SIGTERM");
  await exited;
}

/** A person's browser inside the namespace of their host. */
async function person(host, name) {
  const browser = await chromium.launch({
    executablePath: net.chromiumIn(net.ns[host]),
    args: [...FLAGS, `--ignore-certificate-errors-spki-list=${cert.spki},${turnCert.spki}`],
  });
  browsers.push(browser);
  // A desktop Chrome's user agent: headless Chromium says "HeadlessChrome",
  // which mediasoup-client only recognises through navigator.userAgentData,
  // and that exists in secure contexts only (the plain-HTTP case below).
  const major = browser.version().split(".")[0];
  const userAgent = `Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/${major}.0.0.0 Safari/537.36`;
  const context = await browser.newContext({ permissions: ["camera", "microphone"], userAgent });
  const page = await context.newPage();
  page.name = name;
  page.on("pageerror", (e) => console.error(`[${name}] ${e.message}`));
  return page;
}

function user(email, role, dataDir = dir) {
  execFileSync(VTP_BIN, ["user", "create", "--email", email, "--password", `Tq7-vB2k-9wZr-${email}`, "--role", role, "--data-dir", dataDir], { stdio: "ignore" });
}



/** Runs the lobby's connection check; resolves with the path it found. */
async function connectionCheck(page) {
  await page.getByRole("button", { name: "Check my connection" }).click();
  const result = page.locator(".connectivity-result[data-path]");
  await result.waitFor({ timeout: 30_000 });
  return { path: await result.getAttribute("data-path"), text: await result.textContent() };
}

/** Until `page` decodes video and receives audio from everyone else: its stats. */
async function receivesEveryone(page, others, ms = 30_000) {
  let last;
  const receives = async () => {
    last = await page.evaluate(() => window.vtpRoom.stats());
    const video = last.filter((s) => s.kind === "video" && s.framesDecoded > 0);
    const audio = last.filter((s) => s.kind === "audio" && s.bytesReceived > 0);
    return video.length >= others && audio.length >= others && last;
  };
  const what = () => `${page.name}: video and audio from ${others} (got ${JSON.stringify(last)})`;
  return waitFor(receives, { ms, every: 250, what });
}


/** The path a page's transport (`send` or `recv`) uses, once it has one. */
function selectedPath(page, which, ms = 15_000) {
  return pollUntil(() => currentPath(page, which), Boolean, { ms });
}

function currentPath(page, which) {
  return page.evaluate(async (which) => {
    const transport = window.vtpRoom.session.media[which];
    if (!transport) return null;
    const byId = new Map();
    (await transport.getStats()).forEach((s) => byId.set(s.id, s));
    for (const s of byId.values()) {
      if (s.type !== "transport" || !s.selectedCandidatePairId) continue;
      const pair = byId.get(s.selectedCandidatePairId);
      const local = byId.get(pair?.localCandidateId);
      const remote = byId.get(pair?.remoteCandidateId);
      return { local: local?.candidateType, protocol: local?.protocol, relayProtocol: local?.relayProtocol, remote: remote?.candidateType, remoteAddress: remote?.address };
    }
    return null;
  }, which);
}

before(async () => {
  if (skip) return;
  if (!existsSync(join(dist, "index.html"))) throw new Error("build the web app first (npm run build)");
  net = Network.create();
  dir = mkdtempSync(join(tmpdir(), "vtp-netns-data-"));
  // pebble, the ACME test CA, on the server host's own loopback: VTP gets
  // its certificate for vtp.test from it at start (validation skipped:
  // pebble cannot resolve vtp.test), and the browsers trust pebble's
  // intermediate by its key.
  const pebbleTls = caSignedLoopbackCertificate(net.dir, "pebble");
  writeFileSync(join(net.dir, "pebble.json"), JSON.stringify({ pebble: {
    listenAddress: "127.0.0.1:14000", managementListenAddress: "127.0.0.1:15000",
    certificate: pebbleTls.cert, privateKey: pebbleTls.key, httpPort: 80, tlsPort: 443,
    ocspResponderURL: "", externalAccountBindingRequired: false,
  } }));
  pebble = net.spawn(net.ns.server, "pebble", ["-config", join(net.dir, "pebble.json")], {
    stdio: "ignore",
    env: { ...process.env, PEBBLE_VA_ALWAYS_VALID: "1", PEBBLE_VA_NOSLEEP: "1", PEBBLE_WFE_NONCEREJECT: "0" },
  });
  const intermediate = join(net.dir, "pebble-intermediate.pem");
  let fetchError;
  const fetched = () => {
    try {
      net.exec(net.ns.server, "curl", ["-skf", "-o", intermediate, "https://127.0.0.1:15000/intermediates/0"]);
      return true;
    } catch (e) {
      fetchError = e.message;
      return false;
    }
  };
  await waitFor(fetched, { what: () => `pebble to hand out its intermediate (${fetchError})` });
  cert = { spki: spkiOf(intermediate) };
  origin = "https://vtp.test";
  // coturn on its own host, TURN over TLS on 443 (what gets through a
  // network that lets out nothing but HTTPS).
  turnCert = testCertificate(net.dir, ADDR.turn, "turn.test");
  coturn = net.spawn(net.ns.turn, "/usr/bin/turnserver", [
    "-n", "--no-cli", "--no-dtls", "--fingerprint",
    "--listening-ip", ADDR.turn, "--relay-ip", ADDR.turn, "--listening-port", "3478", "--tls-listening-port", "443",
    "--cert", turnCert.cert, "--pkey", turnCert.key,
    "--use-auth-secret", "--static-auth-secret", TURN_SECRET, "--realm", "turn.test",
    "--no-multicast-peers", "--pidfile", join(net.dir, "turnserver.pid"), "--log-file", "stdout", "--no-stdout-log",
  ], { stdio: "ignore" });
  vtp = await startVtp([
    "--bind", `${ADDR.server}:443`, "--http-redirect-bind", `${ADDR.server}:80`,
    "--acme-domain", "vtp.test", "--acme-directory", "https://127.0.0.1:14000/dir", "--acme-ca-cert", pebbleTls.ca,
    // No announced address: the SFU announces the host's own (192.0.2.10).
    "--rtc-bind", "0.0.0.0:40000", "--login-rate-per-ip", "1000",
    "--turn-url", `turns:${ADDR.turn}:443?transport=tcp`, "--turn-secret", TURN_SECRET,
  ], origin);
  user("teacher@example.org", "instructor");
  user("sam@example.org", "student");
  user("ada@example.org", "student");
});

after(async () => {
  for (const b of browsers) await b.close().catch(() => {});
  await stopVtp(vtp);
  coturn?.kill("SIGTERM");
  pebble?.kill("SIGTERM");
  net?.destroy();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test("over HTTPS (a certificate VTP got from pebble over ACME) from another host and from behind a NAT: both publish, both decode", { skip, timeout: 120_000 }, async () => {
  teacher = await person("studentA", "teacher");
  await signIn(teacher, origin, "teacher@example.org");
  // Before the class: the check says media flows directly.
  const check = await connectionCheck(teacher);
  assert.equal(check.path, "udp", JSON.stringify(check));
  assert.match(check.text, /reach the class directly/);
  await teacher.getByLabel("Title").fill("Geography");
  await teacher.getByLabel("Who may join").selectOption("signed_in");
  await teacher.getByRole("button", { name: "Create room" }).click();
  await joinRoom(teacher, "Geography");

  sam = await person("studentB", "sam");
  await signIn(sam, origin, "sam@example.org");
  await joinRoom(sam, "Geography");

  await receivesEveryone(teacher, 1);
  await receivesEveryone(sam, 1);
  // Sam's packets reach the SFU from the school's public address.
  const path = await selectedPath(sam, "send");
  assert.equal(path?.protocol, "udp", JSON.stringify(path));
  assert.equal(path?.remote, "host", JSON.stringify(path));
  assert.equal(path?.remoteAddress, ADDR.server, "the SFU announces its real address");
});

test("a school that blocks UDP: media flows over ICE-TCP", { skip, timeout: 90_000 }, async () => {
  // With TURN over TLS also reachable the browser may take either path;
  // here the relay is out of reach, so this is ICE-TCP or nothing.
  net.schoolFirewall("no-udp-no-relay");
  try {
    await sam.context().close();
    sam = await person("studentB", "sam (tcp)");
    await signIn(sam, origin, "sam@example.org");
    const check = await connectionCheck(sam);
    assert.equal(check.path, "tcp", JSON.stringify(check));
    assert.match(check.text, /over TCP/);
    await joinRoom(sam, "Geography");
    await receivesFrom(sam, await selfId(teacher));
    for (const which of ["send", "recv"]) {
      const path = await selectedPath(sam, which);
      assert.equal(path?.protocol, "tcp", `${which}: ${JSON.stringify(path)}`);
      assert.notEqual(path?.local, "relay", `${which}: not relayed: ${JSON.stringify(path)}`);
      assert.equal(path?.remoteAddress, ADDR.server, `${which}: ${JSON.stringify(path)}`);
    }
    await receivesFrom(teacher, await selfId(sam));
  } finally {
    net.schoolFirewall("open");
  }
});

test("a school that lets out only HTTPS: media relayed through TURN over TLS", { skip, timeout: 90_000 }, async () => {
  net.schoolFirewall("https-only");
  try {
    // Sam comes back in a new browser behind the closed firewall.
    await sam.context().close();
    sam = await person("studentB", "sam (relayed)");
    await signIn(sam, origin, "sam@example.org");
    const check = await connectionCheck(sam);
    assert.equal(check.path, "relay", JSON.stringify(check));
    assert.match(check.text, /through the relay server/);
    await joinRoom(sam, "Geography");
    await receivesEveryone(sam, 1);
    for (const which of ["send", "recv"]) {
      const path = await selectedPath(sam, which);
      assert.equal(path?.local, "relay", `${which}: ${JSON.stringify(path)}`);
      assert.equal(path?.relayProtocol, "tls", `${which}: ${JSON.stringify(path)}`);
    }
    // The teacher, outside the school, receives the relayed Sam.
    await receivesFrom(teacher, await selfId(sam));
  } finally {
    net.schoolFirewall("open");
  }
  // With nothing blocked, `?relay=1` on a room link forces the relay too.
  const ada = await person("studentA", "ada (relay forced)");
  await signIn(ada, origin, "ada@example.org");
  await ada.goto(`${teacher.url()}?relay=1`);
  await ada.getByRole("button", { name: "Join now" }).click();
  await ada.locator(".room[data-joined]").waitFor();
  await receivesFrom(ada, await selfId(teacher));
  const path = await selectedPath(ada, "recv");
  assert.equal(path?.local, "relay", JSON.stringify(path));
});

test("plain HTTP off loopback: the server warns, the page says HTTPS is needed", { skip, timeout: 60_000 }, async () => {
  // The README's defaults, except the address: a second server with its own data.
  const plainDir = mkdtempSync(join(tmpdir(), "vtp-netns-plain-"));
  user("ida@example.org", "instructor", plainDir);
  const plain = await startVtp(["--bind", `${ADDR.server}:8080`, "--rtc-bind", `${ADDR.server}:40100`], `http://${ADDR.server}:8080`, plainDir);
  try {
    // The log arrives through a pipe: wait for the line rather than race it.
    const warning = /plain HTTP on a non-loopback address: browsers allow camera and microphone/;
    await pollUntil(() => plain.log.text, (text) => warning.test(text), { ms: 5_000 });
    assert.match(plain.log.text, warning, `start-up warning: ${plain.log.text}`);
    const page = await person("studentA", "ida");
    await signIn(page, `http://${ADDR.server}:8080`, "ida@example.org");
    await page.getByLabel("Title").fill("History");
    await page.getByLabel("Who may join").selectOption("signed_in");
    await page.getByRole("button", { name: "Create room" }).click();
    await joinRoom(page, "History");
    await page.getByText("This page must be opened over HTTPS to use your camera and microphone").first().waitFor();
    assert.equal(await page.evaluate(() => window.isSecureContext), false);
  } finally {
    await stopVtp(plain);
    rmSync(plainDir, { recursive: true, force: true });
  }
});
