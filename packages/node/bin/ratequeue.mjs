#!/usr/bin/env node
// The `ratequeue` binary. The published package runs the compiled JavaScript in dist/ (`pnpm --filter
// @ratequeue/node build`). In a source checkout, which has src/ and no need for a build step, it runs the
// TypeScript sources through tsx instead, so a stale dist/ is never what a checkout runs.
import { existsSync } from "node:fs";

const source = new URL("../src/cli.ts", import.meta.url);
let main;
if (existsSync(source)) {
  const { register } = await import("tsx/esm/api");
  register();
  ({ main } = await import(source.href));
} else {
  ({ main } = await import("../dist/cli.js"));
}
await main(process.argv);
