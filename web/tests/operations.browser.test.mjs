// Operations in the web app (issue 20), Chromium (Playwright) against a real
// `vtp`: the operator's page with a live class (two people in a room with the
// fake camera and microphone) at phone width; the admin page's Audit section
// (filter, export) and Webhooks section (an endpoint registered against a
// real HTTP receiver started here, its deliveries signed and in the log).
import { test, before, after, afterEach } from "node:test";
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { mkdirSync, readFileSync } from "node:fs";
import { createServer } from "node:http";
import { createRequire } from "node:module";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { CHROMIUM_FLAGS, Vtp, waitFor, watchCsp } from "./harness.mjs";
import { clickButton, fill, joinFromLobby, selfId, signIn, until } from "./app-steps.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const dist = join(here, "..", "dist");
const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";
const AXE = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");
const PHONE = { width: 390, height: 844 };
// A screenshot of the operator's page at phone width goes to web/test-artifacts/.
const artifacts = join(here, "..", "test-artifacts");

let vtp, browser;
let contexts = [];
const errors = [];
const cspViolations = [];

before(async () => {
  vtp = await Vtp.start(["--web-dir", dist, "--login-rate-per-ip", "1000", "--webhook-allow-private-targets", "--webhook-backoff", "200ms"]);
  browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_FLAGS });
});

afterEach(async () => {
  await Promise.all(contexts.map((c) => c.close().catch(() => {})));
  contexts = [];
  assert.deepEqual(errors.splice(0), [], "no uncaught errors in the pages");
  assert.deepEqual(cspViolations.splice(0), [], "no Content-Security-Policy violation");
});

after(async () => {
  await browser?.close();
  vtp?.stop();
});

async function person(name, viewport = { width: 1280, height: 800 }) {
  const context = await browser.newContext({ viewport, permissions: ["camera", "microphone"], acceptDownloads: true });
  contexts.push(context);
  const page = await context.newPage();
  page.name = name;
  page.on("pageerror", (e) => errors.push(`[${name}] ${e.message}`));
  await watchCsp(page, name, cspViolations);
  return page;
}

async function admin(name, viewport) {
  const email = `${name}@example.org`;
  await vtp.user(email, "admin");
  const page = await person(name, viewport);
  await signIn(page, vtp.base, email);
  return page;
}

async function axeViolations(page) {
  // Evaluated by the test driver, not an inline <script> (the CSP refuses those).
  if (!(await page.evaluate(() => "axe" in window))) await page.evaluate(AXE);
  return page.evaluate(async () => (await window.axe.run(document)).violations.map((v) => `${v.id}: ${v.nodes.map((n) => n.target).join(" ")}`));
}

test("the operator's page shows a live class: its room, participants and their bitrate, at phone width; axe finds nothing", { timeout: 120_000 }, async () => {
  await vtp.user("ops-teacher@example.org", "instructor");
  const teacher = await person("ops-teacher");
  await signIn(teacher, vtp.base, "ops-teacher@example.org");
  await fill(teacher, "Title", "Ops class");
  await fill(teacher, "Who may join", "signed_in");
  await clickButton(teacher, "Create room");
  await joinFromLobby(teacher, "Ops class");
  await vtp.user("ops-student@example.org");
  const student = await person("ops-student");
  await signIn(student, vtp.base, "ops-student@example.org");
  await joinFromLobby(student, "Ops class");
  const teacherPeer = await selfId(teacher);
  const studentPeer = await selfId(student);

  const ops = await admin("ops-admin", PHONE);
  await ops.evaluate(() => document.querySelector('a[href="/admin/operations"]').click());
  await ops.getByRole("heading", { name: "Operations", level: 1 }).waitFor();
  // The page refreshes on its own: the teacher's bitrate shows up without a reload.
  await until(ops, ([t, s]) => {
    const row = (peer) => document.querySelector(`.ops-room tr[data-peer-id="${peer}"]`);
    const nonZero = (peer, cell) => {
      const text = row(peer)?.querySelector(cell)?.textContent ?? "0 ";
      return !text.startsWith("0 ");
    };
    return nonZero(t, ".bitrate-in") && nonZero(s, ".bitrate-out");
  }, [teacherPeer, studentPeer], 60_000, "the room, the teacher's sending and the student's receiving bitrate");
  const room = ops.locator(".ops-room").filter({ hasText: "Ops class" });
  assert.equal(await room.count(), 1);
  assert.match(await room.locator(`tr[data-peer-id="${teacherPeer}"]`).innerText(), /ops-teacher/);
  assert.match(await room.locator(`tr[data-peer-id="${studentPeer}"]`).innerText(), /ops-student/);
  assert.match(await ops.locator(".ops-facts .disk").innerText(), /free of/);
  assert.match(await ops.locator(".ops-facts .exports").innerText(), /0 queued/);
  assert.ok(await ops.getByRole("cell", { name: "auth.sign_in" }).count() >= 1, "recent audit events: the sign-ins");
  // Usable at phone width: nothing wider than the screen but the tables' own scrollers.
  assert.ok(await ops.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth), "no page-wide horizontal scroll");
  assert.deepEqual(await axeViolations(ops), []);
  mkdirSync(artifacts, { recursive: true });
  await ops.screenshot({ path: join(artifacts, "operations-phone-390x844.png"), fullPage: true });
});

test("Audit section: a failed sign-in is listed, filtered by event and exported as CSV", { timeout: 60_000 }, async () => {
  const wrong = await vtp.http("POST", "/api/v1/auth/login", { email: "mallory@example.org", password: "guess-guess-guess" });
  assert.equal(wrong.status, 401);
  const page = await admin("audit-admin");
  await page.evaluate(() => document.querySelector('a[href="/admin"]').click());
  await page.getByRole("heading", { name: "Audit" }).waitFor();
  await fill(page, "Filter by event", "auth.sign_in_failed");
  await until(page, () => {
    const rows = [...document.querySelectorAll(".audit-log tbody tr")];
    return rows.length > 0 && rows.every((r) => r.textContent.includes("auth.sign_in_failed"));
  }, null, 15_000, "only failed sign-ins listed");
  assert.match(await page.locator(".audit-log tbody").innerText(), /mallory@example\.org/);
  const [download] = await Promise.all([page.waitForEvent("download"), clickButton(page, "Export CSV")]);
  assert.equal(download.suggestedFilename(), "audit.csv");
  const csv = readFileSync(await download.path(), "utf8");
  assert.match(csv, /auth\.sign_in_failed/);
  assert.match(csv, /mallory@example\.org/);
  assert.doesNotMatch(csv, /auth\.sign_in,/, "the filter applies to the export");
  // An unknown event name is refused in plain words, not shown as an empty log.
  await fill(page, "Filter by event", "no.such_event");
  await page.getByText(/unknown event/i).waitFor({ timeout: 10_000 });
});

test("Webhooks section: an endpoint registered against a real receiver gets signed events, shown delivered in its log", { timeout: 60_000 }, async () => {
  const received = [];
  const receiver = createServer((req, res) => {
    let body = "";
    req.on("data", (c) => { body += c; });
    req.on("end", () => {
      received.push({ signature: req.headers["vtp-signature"], body });
      res.writeHead(204).end();
    });
  });
  await new Promise((ok) => receiver.listen(0, "127.0.0.1", ok));
  try {
    const page = await admin("hook-admin");
    await page.evaluate(() => document.querySelector('a[href="/admin"]').click());
    await page.getByRole("heading", { name: "Webhooks" }).waitFor();
    await fill(page, "Endpoint URL", `http://127.0.0.1:${receiver.address().port}/hook`);
    await clickButton(page, "Add endpoint");
    const shown = await page.getByText(/signing secret, shown only now/).innerText();
    const secret = /(whsec_\S+)/.exec(shown)?.[1];
    assert.ok(secret, shown);

    const joined = await vtp.user("hook-student@example.org");
    await waitFor(() => received.some((r) => JSON.parse(r.body).type === "user.created"), { ms: 20_000, what: "user.created at the receiver" });
    const got = received.find((r) => JSON.parse(r.body).type === "user.created");
    assert.equal(JSON.parse(got.body).data.userId, joined.id);
    // The documented check: HMAC-SHA256 of "<t>.<body>" with the secret.
    const [, t, v1] = /^t=(\d+),v1=([0-9a-f]+)$/.exec(got.signature);
    assert.equal(createHmac("sha256", secret).update(`${t}.${got.body}`).digest("hex"), v1);

    const article = page.locator("article.webhook");
    await until(page, async () => {
      const button = [...document.querySelectorAll("article.webhook button")].find((b) => b.textContent === "Delivery log");
      button.click();
      return [...document.querySelectorAll("article.webhook .deliveries tbody tr")].some((r) => r.textContent.includes("user.created") && r.textContent.includes("delivered"));
    }, null, 20_000, "user.created delivered in the log");
    assert.match(await article.locator(".deliveries").innerText(), /HTTP 204/);
  } finally {
    receiver.close();
  }
});
