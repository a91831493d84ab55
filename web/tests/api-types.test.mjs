// The committed API types (src/api/schema.ts) are what the running server's
// OpenAPI document generates: a change to the HTTP API that is not
// regenerated into the web app fails here.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { Vtp } from "./harness.mjs";
import { apiTypes, SCHEMA_FILE } from "../scripts/api-types.mjs";

let vtp;
before(async () => {
  vtp = await Vtp.start();
});
after(() => vtp?.stop());

test("the committed API types match the server's OpenAPI document", async () => {
  const doc = await (await fetch(`${vtp.base}/api/v1/openapi.json`)).json();
  const fresh = await apiTypes(doc);
  const committed = readFileSync(SCHEMA_FILE, "utf8");
  const a = fresh.split("\n");
  const b = committed.split("\n");
  const first = a.findIndex((line, i) => line !== b[i]);
  assert.ok(
    fresh === committed,
    `src/api/schema.ts is stale (first difference at line ${first + 1}: ` +
      `server ${JSON.stringify(a[first])}, committed ${JSON.stringify(b[first])}): ` +
      "run `node scripts/api-types.mjs` in web/",
  );
  // And it describes what the app uses.
  assert.match(committed, /"\/api\/v1\/rooms\/\{id\}\/schedule"/);
  assert.match(committed, /TemporaryPasswordDto/);
});
