import { closeSync, fsyncSync, openSync, readFileSync, renameSync, rmSync, writeSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { Command, Option } from "commander";
import { BackupError, parseBackup } from "../backup/backup-file.js";
import { DataFolderError, forceNewCluster, restoreDataFolder } from "../backup/data-folder.js";
import { parsePeers } from "../config.js";
import { hostPortText } from "../membership/membership.js";
import { AdminClient, CliError, parseUrls } from "./admin-client.js";

const DEFAULT_URL = "http://127.0.0.1:7401";
const NODE_ID = /^[A-Za-z0-9_-]{1,64}$/;

/** `ratequeue backup --file <path>`: the live cluster's replicated state, at a linearizable read point, to a file. */
export function backupCommand(): Command {
  return new Command("backup")
    .description(
      "Write a consistent backup of the cluster's replicated state (resources and their usage, leases, sessions, queues, API keys) to a file, through the admin API. The leader serves it at a linearizable read point: every write acknowledged before is in it.",
    )
    .requiredOption("-f, --file <path>", 'where to write the backup (written to a temporary file, synced, then renamed into place); "-" writes it to stdout')
    .addOption(new Option("--url <urls>", "node URLs, comma-separated (http(s)://, ws(s):// or host:port); tried in turn").env("RATEQUEUE_URL"))
    .addOption(new Option("--admin-key <key>", "an admin API key").env("RATEQUEUE_ADMIN_KEY"))
    .option("--json", "print the backup's header as JSON instead of a sentence")
    .action(async (opts: { file: string; url?: string; adminKey?: string; json?: boolean }) => {
      const client = new AdminClient(parseUrls(opts.url || DEFAULT_URL), opts.adminKey || null);
      const { json } = await client.ok("GET", "/v1/backup");
      const text = JSON.stringify(json);
      // Checked as restore will check it, before it replaces anything.
      const checked = checkedBackup(text, `the backup from ${client.urls.join(",")}`);
      const toStdout = opts.file === "-";
      if (toStdout) process.stdout.write(`${text}\n`);
      else writeFileAtomically(opts.file, text);
      const h = checked.header;
      // With the backup on stdout, the summary goes to stderr.
      const say = toStdout ? (line: string) => process.stderr.write(`${line}\n`) : print;
      if (opts.json === true) return say(JSON.stringify({ file: opts.file, bytes: Buffer.byteLength(text), ...h }, null, 2));
      say(
        `backup of ${h.node} at index ${h.index} (term ${h.term}, log time ${h.logTime}): ${h.counts.resources} resources, ${h.counts.keys} keys, ${h.counts.sessions} sessions, ${h.counts.leases} leases -> ${opts.file} (${Buffer.byteLength(text)} bytes, sha256 ${h.sha256.slice(0, 16)}...)`,
      );
    });
}

/** `ratequeue restore`: seeds an empty data folder of a new cluster from a backup file (offline). */
export function restoreCommand(): Command {
  return new Command("restore")
    .description(
      "Seed an empty data folder for a NEW cluster from a backup file (offline; no node runs on the folder). Run it on every founding node with the same file and the same --peers, then `ratequeue start` each (no --peers needed). The file is checked (format, version, SHA-256) before anything is written.",
    )
    .requiredOption("-f, --file <path>", "the backup file")
    .requiredOption("--data <dir>", "the new node's data folder (must be empty or absent)")
    .requiredOption("--id <id>", "the new node's id")
    .requiredOption("--peers <list>", "the new cluster's voters, n1=host:port,... including this node (the same on every founder)")
    .action(async (opts: { file: string; data: string; id: string; peers: string }) => {
      if (!NODE_ID.test(opts.id)) throw new CliError("--id must be 1-64 of A-Z a-z 0-9 _ -", 2);
      const problems: string[] = [];
      const peers = parsePeers(opts.peers, problems);
      if (problems.length > 0) throw new CliError(`--peers: ${problems.join("; ")}`, 2);
      let text: string;
      try {
        text = readFileSync(opts.file, "utf8");
      } catch (err) {
        throw new CliError(`${opts.file}: ${(err as Error).message}`, 2);
      }
      const backup = checkedBackup(text, opts.file);
      const members = new Map([...peers].map(([id, hp]) => [id, hostPortText(hp)]));
      const restored = await onDataFolder(() => restoreDataFolder({ dataDir: opts.data, id: opts.id, backup, members }));
      const h = backup.header;
      print(
        `restored ${opts.file} (backup of ${h.node} at index ${h.index}: ${h.counts.resources} resources, ${h.counts.keys} keys, ${h.counts.sessions} sessions, ${h.counts.leases} leases) into ${opts.data} for ${opts.id}; voters ${restored.voters.join(", ")}.\n` +
          `Restore every other founder the same way, then start each: ratequeue start --id ${opts.id} --listen ... --data ${opts.data} --cluster-secret ... --admin-key ...`,
      );
    });
}

/** `ratequeue recover --force-new-cluster`: one stopped node's data becomes a one-voter cluster (offline). */
export function recoverCommand(): Command {
  return new Command("recover")
    .description(
      "LAST RESORT, when a majority of voters is lost for good: rewrite a STOPPED node's data folder so that this node alone is the cluster, with the state in its own log (every entry it holds is applied, committed or not). Every other member is removed for good: never start them again on their old data. Then start this node and grow the cluster back with --join. Requires --force-new-cluster.",
    )
    .requiredOption("--data <dir>", "the surviving node's data folder (the node must be stopped)")
    .requiredOption("--id <id>", "the surviving node's id (as it was started with)")
    .option("--force-new-cluster", "confirm: make this node a one-voter cluster and drop every other member")
    .action(async (opts: { data: string; id: string; forceNewCluster?: boolean }) => {
      if (opts.forceNewCluster !== true) {
        throw new CliError(
          "refusing without --force-new-cluster: this drops every other member for good and makes this node alone the cluster. Use it only when a majority of voters is lost and cannot come back; if they can, start them instead.",
          2,
        );
      }
      if (!NODE_ID.test(opts.id)) throw new CliError("--id must be 1-64 of A-Z a-z 0-9 _ -", 2);
      const r = await onDataFolder(() => forceNewCluster({ dataDir: opts.data, id: opts.id }));
      process.stderr.write(
        `WARNING: ${opts.id} is now a one-voter cluster (index ${r.index}, term ${r.term}; ${r.entriesApplied} log entries applied, committed or not). ` +
          `Removed for good: ${r.dropped.length === 0 ? "(none)" : r.dropped.join(", ")}. Wipe their data folders; never start them on it again.\n` +
          (r.wasVoter ? "" : `WARNING: ${opts.id} was not a voter: its log may lack entries the cluster had committed.\n`),
      );
      print(`recovered ${opts.data}: start ${opts.id} as usual (no --peers), then add nodes back with --join, one at a time`);
    });
}

function checkedBackup(text: string, source: string): ReturnType<typeof parseBackup> {
  try {
    return parseBackup(text, source);
  } catch (err) {
    if (err instanceof BackupError) throw new CliError(`${err.code}: ${err.message}`, 2);
    throw err;
  }
}

async function onDataFolder<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof DataFolderError) throw new CliError(`${err.code}: ${err.message}`, 2);
    throw err;
  }
}

/** Writes `text` to a temporary file beside `path`, syncs it, and renames it into place: never a half-written backup. */
function writeFileAtomically(path: string, text: string): void {
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.tmp`);
  try {
    const fd = openSync(tmp, "w", 0o600);
    try {
      writeSync(fd, text);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw new CliError(`${path}: ${(err as Error).message}`, 2);
  }
}

function print(text: string): void {
  process.stdout.write(text.endsWith("\n") ? text : `${text}\n`);
}
