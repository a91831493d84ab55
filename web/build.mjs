// Bundles the app into dist/: hashed script and stylesheet under assets/
// (served as immutable) and an index.html that names them (served no-cache).
import { build } from "esbuild";
import { copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const out = join(here, "dist");
rmSync(out, { recursive: true, force: true });
mkdirSync(join(out, "assets"), { recursive: true });

const result = await build({
  entryPoints: { app: join(here, "src/main.ts"), style: join(here, "src/style.css") },
  bundle: true,
  format: "esm",
  target: "es2022",
  minify: true,
  sourcemap: "linked",
  entryNames: "[name]-[hash]",
  outdir: join(out, "assets"),
  metafile: true,
  logLevel: "warning",
});

const outputs = Object.keys(result.metafile.outputs).map((p) => basename(p));
const script = outputs.find((f) => f.startsWith("app-") && f.endsWith(".js"));
const style = outputs.find((f) => f.startsWith("style-") && f.endsWith(".css"));
if (!script || !style) throw new Error(`build: missing outputs in ${outputs.join(", ")}`);
const html = readFileSync(join(here, "src/index.html"), "utf8")
  .replace("%STYLE%", `/assets/${style}`)
  .replace("%SCRIPT%", `/assets/${script}`);
writeFileSync(join(out, "index.html"), html);
copyFileSync(join(here, "src/favicon.svg"), join(out, "favicon.svg"));
console.log(`web: built dist/ (${script}, ${style})`);
