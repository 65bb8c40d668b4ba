/**
 * Investigation tool (not a test): compares two V8 heap snapshots by object kind (constructor or node name): count
 * and self size in each, largest growth first; with --retainers NAME, prints retainer chains of the largest objects
 * of that kind in the second snapshot.
 *
 *   npx tsx scripts/fuzz-live/heap-diff.ts a.heapsnapshot b.heapsnapshot [--top 25] [--retainers ArrayBuffer]
 */
import { readFileSync } from "node:fs";

interface Snap {
  names: string[];
  types: string[];
  edgeTypes: string[];
  nodeFields: number;
  edgeFields: number;
  nodes: number[];
  edges: number[];
  strings: string[];
  firstEdge: Int32Array;
}

function load(file: string): Snap {
  const s = JSON.parse(readFileSync(file, "utf8"));
  const meta = s.snapshot.meta;
  const nodeFields = meta.node_fields.length;
  const edgeFields = meta.edge_fields.length;
  const nodes: number[] = s.nodes;
  const count = nodes.length / nodeFields;
  const firstEdge = new Int32Array(count + 1);
  const edgeCountAt = meta.node_fields.indexOf("edge_count");
  for (let i = 0, e = 0; i < count; i++) {
    firstEdge[i] = e;
    e += nodes[i * nodeFields + edgeCountAt]! * edgeFields;
  }
  firstEdge[count] = s.edges.length;
  return { names: s.strings, types: meta.node_types[0], edgeTypes: meta.edge_types[0], nodeFields, edgeFields, nodes, edges: s.edges, strings: s.strings, firstEdge };
}

const kindOf = (s: Snap, i: number): string => `${s.types[s.nodes[i * s.nodeFields]!]}:${s.strings[s.nodes[i * s.nodeFields + 1]!]}`;
const sizeOf = (s: Snap, i: number): number => s.nodes[i * s.nodeFields + 3]!;

function aggregate(s: Snap): Map<string, { count: number; bytes: number }> {
  const out = new Map<string, { count: number; bytes: number }>();
  for (let i = 0; i < s.nodes.length / s.nodeFields; i++) {
    let k = kindOf(s, i);
    if (k.startsWith("string:") || k.startsWith("concatenated string:") || k.startsWith("sliced string:")) k = k.split(":")[0]!;
    const a = out.get(k) ?? { count: 0, bytes: 0 };
    a.count++;
    a.bytes += sizeOf(s, i);
    out.set(k, a);
  }
  return out;
}

function retainers(s: Snap): number[][] {
  const count = s.nodes.length / s.nodeFields;
  const back: number[][] = Array.from({ length: count }, () => []);
  for (let i = 0; i < count; i++) {
    for (let e = s.firstEdge[i]!; e < s.firstEdge[i + 1]!; e += s.edgeFields) {
      const type = s.edgeTypes[s.edges[e]!];
      if (type === "weak") continue;
      back[s.edges[e + 2]! / s.nodeFields]!.push(i, e);
    }
  }
  return back;
}

function edgeName(s: Snap, e: number): string {
  const type = s.edgeTypes[s.edges[e]!];
  const n = s.edges[e + 1]!;
  return type === "element" || type === "hidden" ? `[${n}]` : `${s.strings[n]}`;
}

const [fa, fb] = process.argv.slice(2).filter((x) => !x.startsWith("--"));
const top = Number(process.argv[process.argv.indexOf("--top") + 1] ?? 25) || 25;
const a = aggregate(load(fa!));
const sb = load(fb!);
const b = aggregate(sb);
const rows = [...b].map(([k, v]) => ({ k, dc: v.count - (a.get(k)?.count ?? 0), db: v.bytes - (a.get(k)?.bytes ?? 0), count: v.count, bytes: v.bytes }));
rows.sort((x, y) => y.db - x.db);
console.log("kind | count (delta) | bytes (delta)");
for (const r of rows.slice(0, top)) console.log(`${r.k} | ${r.count} (${r.dc >= 0 ? "+" : ""}${r.dc}) | ${r.bytes} (${r.db >= 0 ? "+" : ""}${r.db})`);

const ri = process.argv.indexOf("--retainers");
if (ri > 0) {
  const want = process.argv[ri + 1]!;
  const back = retainers(sb);
  const ids: number[] = [];
  for (let i = 0; i < sb.nodes.length / sb.nodeFields; i++) if (kindOf(sb, i).includes(want)) ids.push(i);
  ids.sort((x, y) => sizeOf(sb, y) - sizeOf(sb, x));
  for (const id of ids.slice(0, 6)) {
    console.log(`\n${kindOf(sb, id)} self ${sizeOf(sb, id)}`);
    let cur = id;
    const seen = new Set<number>([cur]);
    for (let depth = 0; depth < 14; depth++) {
      const r = back[cur]!;
      if (r.length === 0) break;
      // Prefer a retainer we have not walked through yet.
      let k = 0;
      while (k < r.length && seen.has(r[k]!)) k += 2;
      if (k >= r.length) break;
      const parent = r[k]!;
      console.log(`  <- .${edgeName(sb, r[k + 1]!)} of ${kindOf(sb, parent)} (${r.length / 2} retainers)`);
      seen.add(parent);
      cur = parent;
    }
  }
}
