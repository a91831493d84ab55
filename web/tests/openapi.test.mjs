// The HTTP API against its own OpenAPI document: schemathesis (PyPI,
// installed by scripts/test into target/schemathesis-venv, found through
// VTP_TEST_SCHEMATHESIS) generates requests for every operation of
// /api/v1/openapi.json, signed in as an admin, and checks that no answer is
// a 5xx, that every status is one the document lists for the operation,
// that bodies and content types are the documented ones, that requests the
// schema forbids are refused and that secured operations refuse requests
// without the token. Deterministic (derandomised generation) and bounded
// (a few examples per operation; about a minute on a debug build).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { Vtp } from "./harness.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const SCHEMATHESIS =
  process.env.VTP_TEST_SCHEMATHESIS ?? resolve(here, "../../target/schemathesis-venv/bin/schemathesis");

/** Examples per operation and phase: enough to reach every documented
 * answer of most operations, few enough to keep CI short. */
const MAX_EXAMPLES = 30;

/** What every answer must satisfy. Left out: positive_data_acceptance,
 * because pairs of parameters that cannot be given together (`limit` and
 * its older name `perPage`, `cursor` and `page`) are a documented 400 that
 * OpenAPI cannot state as a schema; and the checks that need OpenAPI links
 * or a second user. */
const CHECKS = [
  "not_a_server_error",
  "status_code_conformance",
  "content_type_conformance",
  "response_headers_conformance",
  "response_schema_conformance",
  "negative_data_rejection",
  "missing_required_header",
  "unsupported_method",
  "allow_header_conformance",
  "ignored_auth",
];

let vtp;
let admin;
let roomId;
let reports;
before(async () => {
  // Default sign-in limits: schemathesis meets their 429s too.
  vtp = await Vtp.start();
  admin = await vtp.user("admin@example.org", "admin");
  roomId = await vtp.room(admin.token);
  reports = mkdtempSync(join(tmpdir(), "vtp-schemathesis-"));
});
after(() => {
  vtp?.stop();
  if (reports) rmSync(reports, { recursive: true, force: true });
});

/** Runs schemathesis with `args` after the common ones; resolves with its
 * exit code and the operations and test cases its JUnit report counts. */
function schemathesis(name, args) {
  assert.ok(
    existsSync(SCHEMATHESIS),
    `${SCHEMATHESIS} is missing: scripts/test installs it (python3 -m venv target/schemathesis-venv && ` +
      "target/schemathesis-venv/bin/pip install 'schemathesis>=4,<5') and sets VTP_TEST_SCHEMATHESIS",
  );
  const junit = join(reports, `${name}.xml`);
  const child = spawn(
    SCHEMATHESIS,
    [
      "--config-file", join(here, "schemathesis.toml"),
      "run", `${vtp.base}/api/v1/openapi.json`,
      "--url", vtp.base,
      "--header", `Authorization: Bearer ${admin.token}`,
      "--checks", CHECKS.join(","),
      "--phases", "examples,coverage,fuzzing",
      "--max-examples", String(MAX_EXAMPLES),
      "--generation-deterministic",
      "--workers", "1",
      "--request-timeout", "10",
      "--no-color",
      "--report", "junit", "--report-junit-path", junit,
      ...args,
    ],
    // Its own report (every failure with a curl line to replay it) goes to the test's output.
    {
      stdio: ["ignore", "inherit", "inherit"],
      // It keeps a cache (.schemathesis/) in its working directory: not in the tree.
      cwd: reports,
      // The ids schemathesis.toml gives the operations on one user or room.
      env: { ...process.env, VTP_SCHEMATHESIS_ADMIN_ID: admin.id, VTP_SCHEMATHESIS_ROOM_ID: roomId },
    },
  );
  return new Promise((ok, fail) => {
    child.on("error", fail);
    child.on("exit", (code) => {
      const xml = existsSync(junit) ? readFileSync(junit, "utf8") : "";
      const operations = (xml.match(/<testcase /g) ?? []).length;
      ok({ code, operations });
    });
  });
}

test("every operation answers as its OpenAPI document says (schemathesis)", { timeout: 240_000 }, async () => {
  // Signing out everywhere would end the admin's token: that one runs last, alone.
  const main = await schemathesis("main", ["--exclude-path", "/api/v1/auth/logout"]);
  assert.equal(main.code, 0, "schemathesis found answers the document does not describe (its report is above)");
  assert.ok(main.operations >= 30, `only ${main.operations} operations tested`);
  const logout = await schemathesis("logout", ["--include-path", "/api/v1/auth/logout"]);
  assert.equal(logout.code, 0, "schemathesis: POST /auth/logout (its report is above)");
  assert.equal(logout.operations, 1);
});

test("the document's string rules are the server's (patterns as ECMA-262 regexes, lengths in code points)", async () => {
  const doc = (await vtp.http("GET", "/api/v1/openapi.json")).body;
  /** Whether the document allows `text` in the string field. */
  const rule = (component, name) => {
    const property = doc.components.schemas[component].properties[name];
    const schema = property.pattern ? property : property.oneOf.find((s) => s.pattern);
    const pattern = new RegExp(schema.pattern, "u");
    return (text) => {
      const length = [...text].length;
      return pattern.test(text) && length >= (schema.minLength ?? 0) && length <= (schema.maxLength ?? Infinity);
    };
  };
  const title = rule("CreateRoomRequest", "title");
  const slug = rule("CreateRoomRequest", "slug");
  // Its own token: the schemathesis run may have signed the admin out everywhere.
  const teacher = await vtp.user("teacher@example.org", "instructor");
  const create = async (body) => (await vtp.http("POST", "/api/v1/rooms", body, teacher.token)).status;
  // Each case: the document's verdict is the server's.
  for (const text of [
    "Physics", " a b ", "é", "x\u00a0y", "\tTrimmed\n", "\u0085x", "\u3000x\u2028",
    "", "   ", "\t", "a\nb", "a\u007f", "a\u0085b", "\ufeff",
    // 120 characters after trimming, then 121.
    ` ${"é".repeat(120)}\u0085`, "é".repeat(121),
  ]) {
    assert.equal(title(text), (await create({ title: text })) === 201, `title ${JSON.stringify(text)}`);
  }
  for (const text of ["physics-101", "abc", "a-b", "-ab", "ab-", "Physics", "a_b", "ab c", "ab", "a".repeat(48), "a".repeat(49)]) {
    // 409: the slug is valid, and taken (schemathesis may have made it).
    const status = await create({ title: "Slugged", slug: text });
    assert.equal(slug(text), status === 201 || status === 409, `slug ${JSON.stringify(text)}: ${status}`);
  }
});
