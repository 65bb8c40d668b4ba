// Measurement probe for scripts/bench/profile.ts, preloaded into every measured process
// (`node --import <this file> ...`: the three `ratequeue start` nodes and the SDK worker processes).
// It does nothing until the process gets SIGUSR2: the first signal opens a measurement window, the second
// closes it and writes `<RQ_PROBE_DIR>/<pid>.json` (and `<pid>.cpuprofile` with RQ_PROBE_PROFILE=1).
//
// Measured over the window: CPU microseconds (process.cpuUsage), event-loop utilisation and delay
// (perf_hooks), and, where classic-level is loaded (a node), the time spent in synced LevelDB batches
// (ClassicLevel.prototype.batch with { sync: true }, timed from call to resolution).
//
// Plain JavaScript, not TypeScript: a node runs its sources through tsx registered by its own binary, so a
// preload cannot rely on a TypeScript loader being there yet.
import { writeFileSync } from "node:fs";
import { Session } from "node:inspector";
import { createRequire } from "node:module";
import { join } from "node:path";
import { monitorEventLoopDelay, performance } from "node:perf_hooks";

const dir = process.env.RQ_PROBE_DIR;
if (dir !== undefined && dir !== "") {
  const profile = process.env.RQ_PROBE_PROFILE === "1";
  const disk = { batches: 0, syncBatches: 0, syncOps: 0, syncMs: 0, syncMaxMs: 0 };
  patchClassicLevel(disk);

  const delay = monitorEventLoopDelay({ resolution: 10 });
  let window = null;
  const session = profile ? new Session() : null;
  if (session !== null) session.connect();
  const post = (method, params) =>
    new Promise((resolve, reject) => session.post(method, params ?? {}, (err, res) => (err ? reject(err) : resolve(res))));

  process.on("SIGUSR2", () => {
    if (window === null) {
      for (const k of Object.keys(disk)) disk[k] = 0;
      delay.reset();
      delay.enable();
      window = { cpu: process.cpuUsage(), elu: performance.eventLoopUtilization(), t0: performance.now() };
      if (session !== null) void post("Profiler.enable").then(() => post("Profiler.setSamplingInterval", { interval: 500 })).then(() => post("Profiler.start"));
      return;
    }
    const w = window;
    window = null;
    delay.disable();
    const cpu = process.cpuUsage(w.cpu);
    const elu = performance.eventLoopUtilization(w.elu);
    const result = {
      pid: process.pid,
      argv: process.argv.slice(2, 6).join(" "),
      wallMs: performance.now() - w.t0,
      userUs: cpu.user,
      systemUs: cpu.system,
      eventLoopUtilization: elu.utilization,
      eventLoopDelayMs: { mean: delay.mean / 1e6, p50: delay.percentile(50) / 1e6, p99: delay.percentile(99) / 1e6, max: delay.max / 1e6 },
      disk: { ...disk },
    };
    const finish = () => writeFileSync(join(dir, `${process.pid}.json`), JSON.stringify(result));
    if (session === null) return finish();
    void post("Profiler.stop").then(({ profile: p }) => {
      writeFileSync(join(dir, `${process.pid}.cpuprofile`), JSON.stringify(p));
      finish();
    });
  });
}

/** Times ClassicLevel batches, if this process can load classic-level (the nodes; not the SDK workers). */
function patchClassicLevel(disk) {
  let ClassicLevel;
  try {
    // The node resolves classic-level from packages/node: the same module instance as this one.
    const require = createRequire(join(process.cwd(), "packages/node/package.json"));
    ({ ClassicLevel } = require("classic-level"));
  } catch {
    return;
  }
  const batch = ClassicLevel.prototype.batch;
  ClassicLevel.prototype.batch = function timedBatch(ops, options, ...rest) {
    // The chained form (no arguments) is not timed.
    if (!Array.isArray(ops)) return batch.call(this, ops, options, ...rest);
    disk.batches++;
    const sync = options !== null && typeof options === "object" && options.sync === true;
    if (!sync) return batch.call(this, ops, options, ...rest);
    const t0 = performance.now();
    const done = () => {
      const ms = performance.now() - t0;
      disk.syncBatches++;
      disk.syncOps += ops.length;
      disk.syncMs += ms;
      if (ms > disk.syncMaxMs) disk.syncMaxMs = ms;
    };
    const p = batch.call(this, ops, options, ...rest);
    if (p !== undefined && typeof p.then === "function") p.then(done, done);
    return p;
  };
}
