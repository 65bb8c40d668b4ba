#!/usr/bin/env node
// The `ratequeue` binary. The node is written in TypeScript and run through
// tsx's loader, so there is no build step between a checkout and a cluster.
import { register } from "tsx/esm/api";

register();
const { main } = await import("../src/cli.ts");
await main(process.argv);
