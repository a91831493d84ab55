// DESIGN §3 end to end: two Chromium pages use the public mediasoup-client
// and socket.io-client directly against VTP. Page A publishes its fake
// camera and microphone; page B consumes them and decodes video.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";
import { chromium } from "playwright-core";
import { Vtp, sleep } from "./harness.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";
const FLAGS = [
  "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync",
  "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
  "--allow-loopback-in-peer-connection", "--disable-features=WebRtcHideLocalIpsWithMdns",
  '--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE localhost , EXCLUDE 127.0.0.1 , EXCLUDE [::1]',
];

let vtp, pages, browser, dir;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), "vtp-page-"));
  await build({ entryPoints: [join(here, "browser/media-page.js")], bundle: true, format: "esm", outfile: join(dir, "page.js"), logLevel: "error" });
  pages = createServer((req, res) => {
    if (req.url === "/page.js") {
      res.writeHead(200, { "content-type": "text/javascript" });
      res.end(readFileSync(join(dir, "page.js")));
    } else {
      res.writeHead(200, { "content-type": "text/html" });
      res.end('<!doctype html><meta charset="utf-8"><body><script type="module" src="/page.js"></script></body>');
    }
  });
  await new Promise((ok) => pages.listen(0, "127.0.0.1", ok));
  const origin = `http://127.0.0.1:${pages.address().port}`;
  vtp = await Vtp.start(["--cors-origins", origin, "--login-rate-per-ip", "1000"]);
  vtp.origin = origin;
  browser = await chromium.launch({ executablePath: CHROMIUM, args: FLAGS });
});

after(async () => {
  await browser?.close();
  pages?.close();
  vtp?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function openPage() {
  const page = await browser.newPage();
  page.on("console", (m) => { if (m.type() === "error") console.error("[page]", m.text()); });
  await page.goto(vtp.origin);
  await page.waitForFunction(() => window.vtp !== undefined);
  return page;
}

test("a published camera and microphone reach another browser", { timeout: 60_000 }, async () => {
  const teacher = await vtp.user("cam-teacher@example.org", "instructor");
  const student = await vtp.user("cam-student@example.org");
  const roomId = await vtp.room(teacher.token);

  const a = await openPage();
  await a.evaluate(([base, token, room]) => window.vtp.start(base, token, room), [vtp.base, teacher.token, roomId]);
  await a.evaluate(() => window.vtp.publish());

  const b = await openPage();
  await b.evaluate(([base, token, room]) => window.vtp.start(base, token, room), [vtp.base, student.token, roomId]);
  const consumed = await b.evaluate(() => window.vtp.consumeAll());
  assert.equal(consumed, 2, "video and audio producers");

  let first = null, last = null;
  for (let i = 0; i < 60; i++) {
    last = await b.evaluate(() => window.vtp.inbound());
    if (!first && last.audioBytes > 0) first = last;
    if (last.framesDecoded > 0 && first && last.audioBytes > first.audioBytes) break;
    await sleep(250);
  }
  assert.ok(last.framesDecoded > 0, `video decoded: ${JSON.stringify(last)}`);
  assert.ok(first && last.audioBytes > first.audioBytes, `audio bytes growing: ${JSON.stringify({ first, last })}`);
});
