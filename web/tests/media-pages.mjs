// The set-up the media browser suites share: the bare test page
// (browser/media-page.js, bundled), served from its own origin, a real
// `vtp` that allows that origin, and Debian's Chromium with a fake camera
// and microphone.
import { createServer } from "node:http";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";
import { chromium } from "playwright-core";
import { Vtp } from "./harness.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";
const FLAGS = [
  "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync",
  "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
  "--allow-loopback-in-peer-connection", "--disable-features=WebRtcHideLocalIpsWithMdns",
  '--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE localhost , EXCLUDE 127.0.0.1 , EXCLUDE [::1]',
];

/** `{ vtp, openPage, stop }`: openPage gives a page whose `window.vtp` is ready. */
export async function startMediaPages({ vtpArgs = [] } = {}) {
  const dir = mkdtempSync(join(tmpdir(), "vtp-page-"));
  await build({ entryPoints: [join(here, "browser/media-page.js")], bundle: true, format: "esm", outfile: join(dir, "page.js"), logLevel: "error" });
  const pages = createServer((req, res) => {
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
  const vtp = await Vtp.start(["--cors-origins", origin, "--login-rate-per-ip", "1000", ...vtpArgs]);
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: FLAGS });
  // One more Chromium per fake microphone file (the flag is per browser).
  const withAudio = new Map();
  const browserFor = async (audioFile) => {
    if (!audioFile) return browser;
    if (!withAudio.has(audioFile)) {
      withAudio.set(audioFile, await chromium.launch({ executablePath: CHROMIUM, args: [...FLAGS, `--use-file-for-fake-audio-capture=${audioFile}`] }));
    }
    return withAudio.get(audioFile);
  };
  return {
    vtp,
    /** `audioFile`: a WAV file the page's fake microphone plays (looped)
     * instead of Chromium's beeps. */
    async openPage({ audioFile } = {}) {
      const page = await (await browserFor(audioFile)).newPage();
      page.on("console", (m) => { if (m.type() === "error") console.error("[page]", m.text()); });
      await page.goto(origin);
      await page.waitForFunction(() => window.vtp !== undefined);
      return page;
    },
    async stop() {
      for (const b of withAudio.values()) await b.close();
      await browser.close();
      pages.close();
      vtp.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
