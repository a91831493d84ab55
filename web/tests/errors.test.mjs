// The words the web app shows for browser errors (src/errors.ts), bundled
// on the fly with esbuild and run in Node: the Firefox and Chromium names
// of getUserMedia's and getDisplayMedia's failures.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { build } from "esbuild";

const here = dirname(fileURLToPath(import.meta.url));

async function load() {
  const dir = mkdtempSync(join(tmpdir(), "vtp-errors-"));
  const out = join(dir, "errors.mjs");
  await build({ entryPoints: [join(here, "../src/errors.ts")], bundle: true, format: "esm", platform: "neutral", outfile: out, logLevel: "error" });
  const module = await import(pathToFileURL(out));
  rmSync(dir, { recursive: true, force: true });
  return module;
}

const domError = (name, message = "") => Object.assign(new Error(message), { name });

test("screen-share failures are not described as a missing camera", async () => {
  const { describe } = await load();
  // Firefox: getDisplayMedia with nothing it may share.
  assert.equal(describe(domError("NotFoundError"), "screen"), "There is no screen or window this browser can share.");
  assert.match(describe(domError("NotReadableError"), "screen"), /screen could not be captured/);
  // The camera's wording stays for the camera.
  assert.equal(describe(domError("NotFoundError"), "media"), "No camera or microphone was found on this device.");
  assert.match(describe(domError("NotAllowedError"), "media"), /blocked the camera or microphone/);
});
