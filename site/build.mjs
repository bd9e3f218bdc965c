// Dev-time build of the spectator site: bundles src/ with esbuild into app/static/assets/
// (content-hashed names, so the server can let browsers cache them for a year) and writes
// app/static/manifest.json, which the pages' templates are filled from. Run `npm run build`
// in site/ after changing src/ and commit the output: the server never builds anything.
import { readFileSync, rmSync, mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";

const here = path.dirname(fileURLToPath(import.meta.url));
const staticDir = path.resolve(here, "../app/static");
const outdir = path.join(staticDir, "assets");

rmSync(outdir, { recursive: true, force: true });
mkdirSync(outdir, { recursive: true });

const result = await esbuild.build({
  absWorkingDir: here,
  entryPoints: {
    home: "src/home.js",
    game: "src/game.js",
    tournament: "src/tournament.js",
    site: "src/site.css",
  },
  outdir,
  bundle: true,
  splitting: true,
  format: "esm",
  target: ["es2021"],
  minify: true,
  entryNames: "[name]-[hash]",
  chunkNames: "shared-[hash]",
  assetNames: "[name]-[hash]",
  loader: { ".woff2": "file" },
  legalComments: "none",
  metafile: true,
  logLevel: "warning",
});

// The licences of what the bundles contain, shipped beside them.
const licences = [
  ["chessground", "node_modules/chessground/LICENSE", "GPL-3.0-or-later"],
  ["chessops", "node_modules/chessops/LICENSE.txt", "GPL-3.0-or-later"],
  ["@badrap/result", "node_modules/@badrap/result/LICENSE", "MIT"],
  ["@fontsource/noto-sans (Noto Sans)", "node_modules/@fontsource/noto-sans/LICENSE", "OFL-1.1"],
];
let notice =
  "The spectator site bundles these packages from the npm registry; their sources are in\n" +
  "the Grandmaster repository's site/ folder (package.json, package-lock.json, build.mjs).\n";
for (const [name, file, spdx] of licences) {
  notice += `\n==== ${name} (${spdx}) ====\n\n${readFileSync(path.join(here, file), "utf8")}`;
}
writeFileSync(path.join(outdir, "licenses.txt"), notice);

const entries = {};
const files = ["licenses.txt"];
for (const [out, meta] of Object.entries(result.metafile.outputs)) {
  const name = path.relative(outdir, path.resolve(here, out));
  files.push(name);
  if (meta.entryPoint) {
    const logical = path.basename(meta.entryPoint).replace(/\.js$/, ".js");
    entries[logical] = name;
  }
}
files.sort();
writeFileSync(
  path.join(staticDir, "manifest.json"),
  JSON.stringify({ entries, files }, null, 2) + "\n",
);
console.log(`built ${files.length} files into ${path.relative(process.cwd(), outdir)}`);
