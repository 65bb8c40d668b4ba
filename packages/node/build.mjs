// Builds the publishable node: the `ratequeue` binary and the library as compiled JavaScript (ESM, one chunk per
// shared module; the workspace packages limiter, raft, protocol and dashboard are bundled in, npm dependencies stay
// dependencies), the dashboard's page files, and type declarations. Run by `pnpm --filter @ratequeue/node build`.
import { build } from "esbuild";
import { execFileSync } from "node:child_process";
import { cpSync, readFileSync, rmSync } from "node:fs";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const pkg = JSON.parse(readFileSync("package.json", "utf8"));
rmSync("dist", { recursive: true, force: true });
rmSync("public", { recursive: true, force: true });
await build({
  entryPoints: ["src/cli.ts", "src/index.ts"],
  bundle: true,
  splitting: true,
  format: "esm",
  platform: "node",
  target: "node20",
  outdir: "dist",
  conditions: ["source"],
  external: Object.keys(pkg.dependencies),
  sourcemap: true,
  logLevel: "warning",
});
// The dashboard reads its page files from ../public/ next to the module that serves them: here, dist/'s sibling.
cpSync("node_modules/@ratequeue/dashboard/public", "public", { recursive: true, dereference: true });
execFileSync(process.execPath, [require.resolve("typescript/bin/tsc"), "-p", "tsconfig.build.json"], { stdio: "inherit" });
