// Bundles src/editor.js into archdsl/serve/static/editor.js (minified, one file, no
// network at run time). The header names the lockfile's SHA-256, which
// tests/test_serve.py compares with the committed package-lock.json.
//   cd web && npm ci && npm run build
import { build } from "esbuild";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";

const lock = createHash("sha256").update(readFileSync("package-lock.json")).digest("hex");
await build({
  entryPoints: ["src/editor.js"],
  bundle: true,
  minify: true,
  format: "iife",
  target: "es2020",
  legalComments: "eof",
  outfile: "../archdsl/serve/static/editor.js",
  banner: { js: `/* archdsl serve editor; built by web/build.mjs from package-lock.json sha256 ${lock} */` },
});
