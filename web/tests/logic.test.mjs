// Unit tests of the web app's pure logic, without a browser: the camera's
// simulcast encodings, the layer a tile of a given size asks for, tile
// labels, the controls' labels and refusals, and errors in words. The
// TypeScript modules are bundled by esbuild (as the app build does) into
// one module this test imports.
import { build } from "esbuild";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath, pathToFileURL } from "node:url";

const webRoot = join(dirname(fileURLToPath(import.meta.url)), "..");
let app;
let dir;

before(async () => {
  const out = await build({
    stdin: {
      contents: `
        export { cameraEncodings } from "./src/media";
        export { layerForSize } from "./src/room/layers";
        export { findRemote, initials, mainTile, qualityText } from "./src/room/tiles";
        export { chatLabel, peopleLabel, screenShareBlock } from "./src/room/controls";
        export { REACTIONS, shortcutFor } from "./src/room/hosttools";
        export { describe, SignalError, INSECURE_CONTEXT_TEXT } from "./src/errors";
        export { ApiError } from "./src/api";
      `,
      resolveDir: webRoot,
      loader: "ts",
    },
    bundle: true,
    format: "esm",
    // The browser flavour of the app's dependencies (mediasoup-client's
    // logger would otherwise require Node's tty); nothing here touches the DOM.
    platform: "browser",
    target: "es2022",
    write: false,
    logLevel: "warning",
  });
  dir = mkdtempSync(join(tmpdir(), "vtp-web-logic-"));
  const file = join(dir, "logic.mjs");
  writeFileSync(file, out.outputFiles[0].text);
  app = await import(pathToFileURL(file).href);
});

after(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("camera encodings", () => {
  test("720p and 540p cameras send three layers, a quarter, half and full size, rising in bitrate", () => {
    for (const height of [720, 540]) {
      const enc = app.cameraEncodings(height);
      assert.deepEqual(enc.map((e) => e.rid), ["r0", "r1", "r2"]);
      assert.deepEqual(enc.map((e) => e.scaleResolutionDownBy), [4, 2, 1]);
      const rates = enc.map((e) => e.maxBitrate);
      assert.ok(rates[0] < rates[1] && rates[1] < rates[2], `bitrates rise: ${rates}`);
    }
  });
  test("from 270 up to 539 lines two layers, below one without a rid", () => {
    assert.deepEqual(app.cameraEncodings(480).map((e) => e.scaleResolutionDownBy), [2, 1]);
    assert.deepEqual(app.cameraEncodings(270).map((e) => e.rid), ["r0", "r1"]);
    for (const height of [269, 180, 0]) {
      const enc = app.cameraEncodings(height);
      assert.equal(enc.length, 1, `height ${height}`);
      assert.equal(enc[0].rid, undefined);
    }
  });
});

describe("the layer a tile asks for", () => {
  test("thumbnails and phones take layer 0, middle tiles 1, large tiles 2, at the boundaries too", () => {
    const cases = [[0, 0], [1, 0], [400, 0], [400.5, 1], [800, 1], [801, 2], [1920, 2]];
    for (const [width, layer] of cases) assert.equal(app.layerForSize(width), layer, `width ${width}`);
  });
});

describe("tiles", () => {
  test("initials take the first letters of two words and ignore the labels we add", () => {
    assert.equal(app.initials("ada lovelace byron"), "AL");
    assert.equal(app.initials("Grace (you)"), "G");
    assert.equal(app.initials("Alan Turing's screen"), "AT");
    assert.equal(app.initials("   "), "");
  });
  test("the quality hint names the layer, and a layer above the known ones is high", () => {
    assert.equal(app.qualityText(0), "Low quality video");
    assert.equal(app.qualityText(1), "Medium quality video");
    assert.equal(app.qualityText(2), "High quality video");
    assert.equal(app.qualityText(5), "High quality video");
  });
  test("a peer's camera and screen are told apart, and audio is never a tile's video", () => {
    const m = (producerId, peerId, kind, source) => ({ info: { producerId, peerId, appData: source ? { source } : undefined }, consumer: { kind } });
    const remote = [m("a1", "p1", "audio"), m("c1", "p1", "video", "camera"), m("s1", "p1", "video", "screen"), m("c2", "p2", "video")];
    assert.equal(app.findRemote(remote, "p1", "camera")?.info.producerId, "c1");
    assert.equal(app.findRemote(remote, "p1", "screen")?.info.producerId, "s1");
    assert.equal(app.findRemote(remote, "p2", "camera")?.info.producerId, "c2", "no appData: a camera");
    assert.equal(app.findRemote(remote, "p2", "screen"), undefined);
    assert.equal(app.findRemote(remote, "p3", "camera"), undefined);
  });
});

describe("controls", () => {
  test("the chat button counts unread messages only while the chat is not open", () => {
    assert.equal(app.chatLabel(0, false), "Chat");
    assert.equal(app.chatLabel(3, false), "Chat (3)");
    assert.equal(app.chatLabel(3, true), "Chat");
  });
  test("the people button counts raised hands", () => {
    assert.equal(app.peopleLabel(0), "People");
    assert.equal(app.peopleLabel(1), "People (1 hand)");
    assert.equal(app.peopleLabel(2), "People (2 hands)");
    // Hosts: people waiting to be let in show first (the waiting room).
    assert.equal(app.peopleLabel(0, 1), "People (1 waiting)");
    assert.equal(app.peopleLabel(1, 3), "People (3 waiting, 1 hand)");
  });
  test("screen sharing says why it is refused, the most basic reason first", () => {
    const ok = { secure: true, browserCanShare: true, student: false, allowStudentScreen: false };
    assert.equal(app.screenShareBlock(ok), "", "hosts may always share");
    assert.equal(app.screenShareBlock({ ...ok, student: true, allowStudentScreen: true }), "");
    assert.match(app.screenShareBlock({ ...ok, student: true }), /not allowed for students/);
    assert.equal(app.screenShareBlock({ ...ok, student: true, browserCanShare: false }), "This browser cannot share its screen");
    assert.equal(app.screenShareBlock({ ...ok, secure: false, browserCanShare: false }), app.INSECURE_CONTEXT_TEXT);
  });
});

describe("errors in words", () => {
  test("stable codes become sentences that depend on what was being done", () => {
    const e = (code, message = "") => new app.SignalError(code, message);
    assert.equal(app.describe(e("unauthorized"), "login"), "Wrong e-mail or password.");
    assert.equal(app.describe(e("unauthorized"), "join"), "Your session has ended. Please sign in again.");
    assert.match(app.describe(e("rate_limited"), "login"), /sign-in attempts/);
    assert.match(app.describe(e("rate_limited"), "other"), /going too fast/);
    assert.match(app.describe(e("not_found"), "join"), /does not exist/);
    assert.equal(app.describe(e("forbidden", "you were removed"), "join"), "A host removed you from this session.");
    assert.match(app.describe(e("something_new")), /went wrong on the server/);
  });
  test("validation messages name the field as the form labels it", () => {
    const err = new app.ApiError(422, "validation_failed", "password: must be at least 8 characters");
    assert.equal(app.describe(err, "register"), "The password must be at least 8 characters.");
    const weak = new app.ApiError(422, "validation_failed", "password: too easy to guess: This is a top-10 common password. Add another word or two.");
    assert.equal(app.describe(weak, "register"), "The password is too easy to guess: This is a top-10 common password. Add another word or two.");
    assert.equal(app.describe(new app.ApiError(400, "bad_request", "unknown thing")), "Unknown thing.");
  });
  test("a plain Error keeps its message as a sentence, anything else gets a generic one", () => {
    assert.equal(app.describe(new Error("camera busy")), "Camera busy.");
    assert.equal(app.describe("?"), "Something went wrong. Try again.");
  });
});

describe("which tile is large", () => {
  const base = { keys: ["self:camera", "a:camera", "b:camera"], pinned: null, spotlight: null, view: "grid", speaker: null, selfId: "me", lastSpeaker: null };
  test("the grid has none; a viewer's pin beats a host's spotlight, which beats speaker view", () => {
    assert.equal(app.mainTile(base), null);
    assert.equal(app.mainTile({ ...base, view: "speaker", speaker: "b", spotlight: "a:camera", pinned: "self:camera" }), "self:camera");
    assert.equal(app.mainTile({ ...base, view: "speaker", speaker: "b", spotlight: "a:camera" }), "a:camera");
    assert.equal(app.mainTile({ ...base, pinned: "gone:camera", spotlight: "gone:camera" }), null, "tiles that left count for nothing");
  });
  test("speaker view: someone else's screen, else the speaker, else the last other speaker, else the first other", () => {
    const speaker = { ...base, view: "speaker" };
    assert.equal(app.mainTile({ ...speaker, keys: [...base.keys, "self:screen", "b:screen"], speaker: "a" }), "b:screen");
    assert.equal(app.mainTile({ ...speaker, speaker: "b" }), "b:camera");
    assert.equal(app.mainTile({ ...speaker, speaker: "me", lastSpeaker: "b" }), "b:camera", "our own voice does not take the stage");
    assert.equal(app.mainTile({ ...speaker, speaker: "me" }), "a:camera");
    assert.equal(app.mainTile({ ...speaker, keys: ["self:camera"] }), null, "alone: nothing to enlarge");
  });
});

describe("keyboard shortcuts", () => {
  const key = (k, more = {}) => app.shortcutFor({ key: k, ctrlKey: false, metaKey: false, altKey: false, repeat: false, ...more }, null);
  test("M V H C, either case, and ? for the help", () => {
    assert.deepEqual(["m", "M", "v", "h", "c", "?"].map((k) => key(k)), ["mic", "mic", "camera", "hand", "chat", "help"]);
  });
  test("1 to 6 react with the server's list, in order; other keys do nothing", () => {
    assert.deepEqual(key("1"), { reaction: "👍" });
    assert.deepEqual(key("6"), { reaction: app.REACTIONS[5] });
    for (const k of ["0", "7", "12", "x", "Enter", " ", "Escape"]) assert.equal(key(k), null, k);
  });
  test("the browser's own shortcuts and held keys are left alone", () => {
    for (const more of [{ ctrlKey: true }, { metaKey: true }, { altKey: true }, { repeat: true }]) assert.equal(key("m", more), null, JSON.stringify(more));
  });
});
