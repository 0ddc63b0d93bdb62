// Builds dist/: the client bundled with centrifuge-js into one ES module,
// its types, the operator console's script (console/console.js with the
// client and uPlot) and style, the licences of the bundled packages, and
// MANIFEST, the SHA-256 of every input and output (checked by the Go
// tests, so the committed bundle cannot drift from the sources).
//
// Usage: node build.mjs [OUTDIR]   (OUTDIR defaults to dist)

import { createHash } from "node:crypto";
import { copyFile, mkdir, readdir, readFile, writeFile } from "node:fs/promises";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";

const root = fileURLToPath(new URL(".", import.meta.url));
const outdir = process.argv[2] ?? join(root, "dist");

const result = await esbuild.build({
  entryPoints: [join(root, "src/instant.js")],
  outfile: join(outdir, "instant.js"),
  bundle: true,
  format: "esm",
  platform: "browser",
  target: "es2020",
  minify: true,
  legalComments: "none",
  metafile: true,
  logLevel: "warning",
});
const consoleResult = await esbuild.build({
  entryPoints: [join(root, "console/console.js"), join(root, "console/console.css")],
  outdir,
  bundle: true,
  format: "esm",
  platform: "browser",
  target: "es2020",
  minify: true,
  legalComments: "none",
  metafile: true,
  logLevel: "warning",
});
await copyFile(join(root, "src/instant.d.ts"), join(outdir, "instant.d.ts"));
await writeFile(join(outdir, "LICENSES.txt"), await licences(result.metafile, consoleResult.metafile));
await writeFile(join(outdir, "MANIFEST"), await manifest());

/** licences returns the licence texts of the packages in the bundles. */
async function licences(...metafiles) {
  const packages = new Set();
  for (const input of metafiles.flatMap((m) => Object.keys(m.inputs))) {
    const m = input.match(/node_modules\/((?:@[^/]+\/)?[^/]+)\//);
    if (m) {
      packages.add(m[1]);
    }
  }
  let out = "instant.js and console.js bundle the following packages.\n";
  for (const name of [...packages].sort()) {
    const dir = join(root, "node_modules", name);
    const { version, license } = JSON.parse(await readFile(join(dir, "package.json"), "utf8"));
    const file = (await readdir(dir)).find((f) => /^licen[cs]e/i.test(f));
    const text = file ? await readFile(join(dir, file), "utf8") : `${license} (no licence file in the package)\n`;
    out += `\n${"=".repeat(72)}\n${name} ${version} (${license})\n${"=".repeat(72)}\n\n${text.trimEnd()}\n`;
  }
  return out;
}

/** manifest lists "sha256  path" for the inputs and outputs, paths relative to web/. */
async function manifest() {
  const sources = [];
  for (const dir of ["console", "src"]) {
    sources.push(...(await readdir(join(root, dir))).sort().map((f) => join(root, dir, f)));
  }
  const inputs = [join(root, "build.mjs"), join(root, "package-lock.json"), ...sources];
  const outputs = ["instant.js", "instant.d.ts", "console.js", "console.css", "LICENSES.txt"].map((f) => join(outdir, f));
  const lines = [];
  for (const [base, files] of [[root, inputs], [outdir, outputs]]) {
    for (const file of files) {
      const sum = createHash("sha256").update(await readFile(file)).digest("hex");
      lines.push(`${sum}  ${base === root ? relative(root, file) : "dist/" + relative(outdir, file)}`);
    }
  }
  return lines.join("\n") + "\n";
}
