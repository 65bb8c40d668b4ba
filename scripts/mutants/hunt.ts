/**
 * Runs the random simulator (test/raft-sim, seed-chosen scenarios only: no
 * scripted test) against a mutated copy of the Raft core. The copy lives in
 * `tmp/raft-mutants/` under the repository root (ignored by git): the core's
 * sources and the simulator's, the simulator's `@ratequeue/raft` imports
 * pointed at the copy, so each mutant is a module graph of its own.
 */
import { cpSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import type { Mutation } from "./mutations.js";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));

export interface HuntResult {
  readonly mutation: string;
  readonly found: boolean;
  /** The first failing seed, or null. */
  readonly seed: number | null;
  /** Seeds run, the failing one included. */
  readonly seedsRun: number;
  readonly failure: string | null;
  readonly wallMs: number;
}

/** Copies the core (with `mutation` applied, if any) and the simulator to a fresh directory; returns it. */
export function prepareMutant(mutation: Mutation | null): string {
  const dir = join(ROOT, "tmp", "raft-mutants", `${mutation?.name ?? "original"}-${process.pid}-${Date.now()}`);
  mkdirSync(dir, { recursive: true });
  const raftDir = join(dir, "raft");
  const simDir = join(dir, "sim");
  copySources(join(ROOT, "packages/raft/src"), raftDir);
  copySources(join(ROOT, "test/raft-sim"), simDir);
  for (const file of listTs(simDir)) {
    const text = readFileSync(file, "utf8");
    const target = relative(dirname(file), join(raftDir, "index.js"));
    writeFileSync(file, text.replaceAll('from "@ratequeue/raft"', `from "${target.startsWith(".") ? target : `./${target}`}"`));
  }
  if (mutation !== null) applyMutation(raftDir, mutation);
  return dir;
}

export function applyMutation(raftDir: string, mutation: Mutation): void {
  const file = join(raftDir, mutation.file);
  const text = readFileSync(file, "utf8");
  const count = text.split(mutation.from).length - 1;
  if (count !== 1) throw new Error(`mutation ${mutation.name}: its text occurs ${count} times in ${mutation.file} (expected once); update scripts/mutants/mutations.ts`);
  writeFileSync(file, text.replace(mutation.from, mutation.to));
}

export function removeMutant(dir: string): void {
  if (existsSync(dir)) rmSync(dir, { recursive: true, force: true });
}

interface SimModule {
  scenarioFromSeed(seed: number): unknown;
  runScenario(scenario: unknown): { ok: boolean; failure?: string; message?: string };
}

/**
 * Runs seeds from `fromSeed` until one fails, `maxSeeds` ran, or the
 * deadline passed. The copy at `dir` is imported fresh.
 */
export async function hunt(
  dir: string,
  mutation: string,
  options: { fromSeed: number; maxSeeds: number; deadlineMs?: number },
): Promise<HuntResult> {
  const sim = (await import(pathToFileURL(join(dir, "sim", "index.ts")).href)) as SimModule;
  const startMs = Date.now();
  let seedsRun = 0;
  for (let seed = options.fromSeed; seedsRun < options.maxSeeds; seed++) {
    if (options.deadlineMs !== undefined && Date.now() > options.deadlineMs) break;
    seedsRun++;
    const result = sim.runScenario(sim.scenarioFromSeed(seed));
    if (!result.ok) {
      const firstLine = `${result.failure}: ${(result.message ?? "").split("\n")[0]}`;
      return { mutation, found: true, seed, seedsRun, failure: firstLine, wallMs: Date.now() - startMs };
    }
  }
  return { mutation, found: false, seed: null, seedsRun, failure: null, wallMs: Date.now() - startMs };
}

function copySources(from: string, to: string): void {
  cpSync(from, to, {
    recursive: true,
    filter: (src) => !src.endsWith(".test.ts") && !src.endsWith(".md"),
  });
}

function listTs(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...listTs(path));
    else if (entry.name.endsWith(".ts")) out.push(path);
  }
  return out;
}
