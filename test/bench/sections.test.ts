import { describe, expect, it } from "vitest";
import { mergeSections } from "../../scripts/bench/sections.js";

describe("mergeSections (pnpm bench writing BENCHMARKS.md)", () => {
  const existing = [
    "# Benchmarks\n\nWritten on Monday.\n",
    "## Cluster (`old command`)\n\nold cluster figures\n",
    "## Fidelity (`npx vitest run fidelity`)\n\nmeasured alone\n",
    "## Raft core\n\nold raft figures\n",
  ].join("\n");
  const generated = [
    "# Benchmarks\n\nWritten on Tuesday.\n",
    "## Cluster (`new command`)\n\nnew cluster figures\n",
    "## Raft core\n\nnew raft figures\n",
    "## Failover\n\nnew failover figures\n",
  ].join("\n");

  it("replaces the sections it writes in place, keeps the others, appends new ones", () => {
    const merged = mergeSections(existing, generated);
    expect(merged).toBe(
      [
        "# Benchmarks\n\nWritten on Tuesday.\n",
        "## Cluster (`new command`)\n\nnew cluster figures\n",
        "## Fidelity (`npx vitest run fidelity`)\n\nmeasured alone\n",
        "## Raft core\n\nnew raft figures\n",
        "## Failover\n\nnew failover figures\n",
      ].join("\n"),
    );
  });

  it("is the generated text when there was nothing else", () => {
    expect(mergeSections(generated, generated)).toBe(generated);
  });
});
