// Builds the publishable SDK: one ESM and one CommonJS bundle (the protocol
// package is bundled in; ws and msgpackr stay dependencies) plus type
// declarations. Run by `pnpm --filter @ratequeue/sdk build`.
import { build } from "esbuild";
import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
rmSync("dist", { recursive: true, force: true });
const common = {
  entryPoints: ["src/index.ts"],
  bundle: true,
  platform: "node",
  target: "node20",
  external: ["ws", "msgpackr"],
  sourcemap: true,
  logLevel: "warning",
};
await build({ ...common, format: "esm", outfile: "dist/index.js" });
await build({ ...common, format: "cjs", outfile: "dist/index.cjs" });
execFileSync(process.execPath, [require.resolve("typescript/bin/tsc"), "-p", "tsconfig.build.json"], { stdio: "inherit" });
// CommonJS consumers get their own declaration files (.d.cts importing .cjs), as TypeScript's node16 resolution expects.
for (const file of readdirSync("dist").filter((f) => f.endsWith(".d.ts"))) {
  const text = readFileSync(`dist/${file}`, "utf8").replace(/from "(\.\/[^"]+)\.js"/g, 'from "$1.cjs"');
  writeFileSync(`dist/${file.replace(/\.d\.ts$/, ".d.cts")}`, text);
}
