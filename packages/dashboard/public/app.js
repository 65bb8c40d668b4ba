// The RateQueue dashboard: Preact components written with htm (no build step). Everything shown comes from the
// snapshots the node pushes on /v1/stream; edits go through the admin API (PUT /v1/resources/{name}).
// Text is rendered by Preact, which escapes it: nothing here sets HTML from data.
import { html, render } from "htm/preact";
import { useEffect, useState } from "preact/hooks";
import {
  clockTime,
  formatDuration,
  formatNumber,
  lastSeconds,
  limitRule,
  limitTitle,
  parseWholeNumber,
  remaining,
  usageFraction,
  usageTone,
} from "./format.js";
import { openStream } from "./stream-client.js";

const KEY_STORAGE = "ratequeue.apiKey";

function readStoredKey() {
  try {
    return localStorage.getItem(KEY_STORAGE);
  } catch {
    return null; // storage disabled: the key lives only as long as the page
  }
}

function storeKey(key) {
  try {
    if (key === null) localStorage.removeItem(KEY_STORAGE);
    else localStorage.setItem(KEY_STORAGE, key);
  } catch {
    /* storage disabled */
  }
}

function App() {
  const [apiKey, setApiKey] = useState(readStoredKey);
  const [snapshot, setSnapshot] = useState(null);
  const [conn, setConn] = useState({ state: "connecting", error: null });
  /** Why the last key was refused (unknown, or revoked while the page was open); shown by the key form. */
  const [refused, setRefused] = useState(null);

  const useKey = (key) => {
    storeKey(key);
    setApiKey(key);
    if (key !== null) setRefused(null);
  };

  useEffect(() => {
    setSnapshot(null);
    const onState = (s) => {
      // A refused key is forgotten and the page carries on without one: the cluster stays in view.
      if (s.state === "unauthorized") {
        setRefused(s.error);
        return useKey(null);
      }
      setConn(s);
    };
    return openStream({ apiKey, onSnapshot: setSnapshot, onState });
  }, [apiKey]);

  return html`
    <header class="top">
      <div class="brand">
        <h1>RateQueue</h1>
        <span class="muted">${snapshot === null ? "dashboard" : `dashboard · served by node ${snapshot.nodeId}`}</span>
      </div>
      <${Connection} conn=${conn} />
      ${apiKey !== null &&
      html`<div class="key-state">
        <span class="muted">${accessLabel(snapshot?.access)}</span>
        <button type="button" class="link" onClick=${() => useKey(null)}>Forget key</button>
      </div>`}
    </header>
    <main>
      <${ClusterSection} snapshot=${snapshot} />
      <${ResourcesSection} snapshot=${snapshot} apiKey=${apiKey} refused=${refused} onKey=${useKey} />
    </main>
  `;
}

function accessLabel(access) {
  if (access === "admin") return "Admin key: you can edit limits";
  if (access === "read") return "Read-only key: resources in its scope";
  return "Key set";
}

function Connection({ conn }) {
  const text = {
    connecting: "Connecting…",
    live: "Live",
    retrying: "Reconnecting…",
  }[conn.state];
  return html`<div class="conn conn-${conn.state}" role="status" title=${conn.error ?? ""}>
    <span class="dot"></span>${text}${conn.error !== null && conn.state === "retrying" ? html`<span class="muted"> (${conn.error})</span>` : null}
  </div>`;
}

// -----------------------------------------------------------------------------
// Cluster

function ClusterSection({ snapshot }) {
  return html`<section>
    <h2>Cluster</h2>
    <p class="hint">
      Each node's own answer to <code>/v1/status</code>. Every decision is a Raft log entry: the <b>commit index</b> is the
      last entry a majority stored, the <b>applied index</b> the last one this node acted on, and <b>lag</b> how many
      entries a node is behind the leader. <b>Clock</b> is each node's wall clock against this node's, as this node
      measures it over the peer links; it is shown for time-sync health only, since rate limits follow monotonic clocks.
    </p>
    ${snapshot === null
      ? html`<p class="muted">Waiting for the first update…</p>`
      : html`<div class="table-wrap">
          <table class="nodes">
            <thead>
              <tr>
                <th>Node</th>
                <th>Role</th>
                <th class="num">Term</th>
                <th class="num">Commit index</th>
                <th class="num">Applied index</th>
                <th class="num">Lag</th>
                <th class="num">Clock</th>
                <th>Address</th>
              </tr>
            </thead>
            <tbody>
              ${snapshot.nodes.map((n) => html`<${NodeRow} key=${n.id} node=${n} />`)}
            </tbody>
          </table>
        </div>`}
  </section>`;
}

function NodeRow({ node }) {
  const stale = node.ageMs !== null && node.ageMs > 5000;
  return html`<tr data-node=${node.id} class=${node.reachable ? "" : "down"}>
    <td>
      <b>${node.id}</b>${node.self ? html` <span class="tag">this node</span>` : null}
    </td>
    <td>
      ${node.reachable
        ? html`<span class="role role-${node.role}">${node.role}</span>`
        : html`<span class="role role-down" title=${node.error ?? ""}>${node.ageMs === null ? "asking…" : "unreachable"}</span>`}
      ${stale ? html` <span class="muted">(${formatDuration(node.ageMs)} old)</span>` : null}
    </td>
    <td class="num">${formatNumber(node.term)}</td>
    <td class="num">${formatNumber(node.commitIndex)}</td>
    <td class="num">${formatNumber(node.appliedIndex)}</td>
    <td class="num">${node.lag === null ? "–" : node.lag === 0 ? "in sync" : `${formatNumber(node.lag)} behind`}</td>
    <td class="num">${formatClockOffset(node)}</td>
    <td class="muted addr">${node.url}${!node.reachable && node.error !== null ? html`<div class="err">${node.error}</div>` : null}</td>
  </tr>`;
}

/** A node's clock against this node's: "reference" for this node, "+2.0 s" ahead, "-340 ms" behind, "–" unknown. */
function formatClockOffset(node) {
  if (node.self) return "reference";
  if (node.clockOffsetMs === null || node.clockOffsetMs === undefined) return "–";
  const ms = node.clockOffsetMs;
  const abs = Math.abs(ms);
  const sign = ms > 0 ? "+" : ms < 0 ? "−" : "±";
  return abs >= 1000 ? `${sign}${(abs / 1000).toFixed(abs >= 100_000 ? 0 : 1)} s` : `${sign}${Math.round(abs)} ms`;
}

// -----------------------------------------------------------------------------
// Resources

function ResourcesSection({ snapshot, apiKey, refused, onKey }) {
  return html`<section>
    <h2>Resources</h2>
    <p class="hint">
      A resource is a shared quota (say, one provider's requests and tokens per minute). Bars show how much of each limit
      is in use right now; a request is granted only when every limit still holds.
    </p>
    ${apiKey === null
      ? html`<${KeyForm} onKey=${onKey} refused=${refused} />`
      : snapshot === null || snapshot.resources === null
        ? html`<p class="muted">Waiting for the first update…</p>`
        : html`<${ResourceList} snapshot=${snapshot} apiKey=${apiKey} />`}
  </section>`;
}

function KeyForm({ onKey, refused }) {
  const [draft, setDraft] = useState("");
  const submit = (e) => {
    e.preventDefault();
    const key = draft.trim();
    if (key !== "") onKey(key);
  };
  return html`<form class="key-form" onSubmit=${submit}>
    <label for="api-key">API key</label>
    <p class="hint">
      Resources are visible with an API key: an admin key shows all of them and can edit limits; an acquire key shows the
      resources its scope covers. The key stays in this browser (local storage) and is sent only to this node.
    </p>
    ${refused !== null ? html`<p class="err" role="alert">${refused}</p>` : null}
    <div class="row">
      <input id="api-key" type="password" autocomplete="off" spellcheck="false" placeholder="rq_… or the admin key" value=${draft} onInput=${(e) => setDraft(e.currentTarget.value)} />
      <button type="submit" disabled=${draft.trim() === ""}>Show resources</button>
    </div>
  </form>`;
}

function ResourceList({ snapshot, apiKey }) {
  if (snapshot.resources.length === 0) {
    return html`<p class="muted">
      ${snapshot.access === "admin"
        ? "No resources yet. Create one with PUT /v1/resources/{name} (see the README)."
        : "This key's scope covers no resource."}
    </p>`;
  }
  return html`<div class="resources">
    ${snapshot.resources.map(
      (r) => html`<${ResourceCard} key=${r.name} resource=${r} nowMs=${snapshot.nowMs} seconds=${snapshot.grantSeconds} admin=${snapshot.access === "admin"} apiKey=${apiKey} />`,
    )}
    ${snapshot.resourcesOmitted > 0 ? html`<p class="muted">${snapshot.resourcesOmitted} more resources are not shown.</p>` : null}
  </div>`;
}

function ResourceCard({ resource: r, nowMs, seconds, admin, apiKey }) {
  const [editing, setEditing] = useState(false);
  const lanes = Object.keys(r.queued);
  const hasLanes = Object.keys(r.config.lanes).length > 0;
  const lastSecond = r.grantsPerSecond.length > 1 ? r.grantsPerSecond[r.grantsPerSecond.length - 2] : 0;
  return html`<article class="card" data-resource=${r.name}>
    <header class="card-head">
      <h3>${r.name}</h3>
      ${r.cooldownUntil !== null
        ? html`<span class="badge warn" data-testid="cooldown" title="A worker reported a provider 429: nothing is granted until the provider's retry-after.">Cooling down until ${clockTime(r.cooldownUntil)} · ${remaining(r.cooldownUntil, nowMs)} left${r.cooldownBy === null ? "" : ` · reported by ${r.cooldownBy}`}</span>`
        : null}
      ${hasLanes ? html`<span class="badge">${lanes.length} lanes · ${r.config.lanePolicy}</span>` : null}
      ${admin && !editing ? html`<button type="button" class="edit" onClick=${() => setEditing(true)}>Edit limits</button>` : null}
    </header>

    <dl class="stats">
      <div title="Granted requests not yet released (each holds a concurrency slot)."><dt>Leases held</dt><dd data-testid="leases">${formatNumber(r.leasesHeld)}</dd></div>
      <div title="Requests waiting in the queue for capacity."><dt>Waiting</dt><dd data-testid="queued">${formatNumber(r.queuedTotal)}</dd></div>
      <div title="Grants in the last whole second."><dt>Grants/s</dt><dd>${formatNumber(lastSecond)}</dd></div>
      <div title="Grants in the last 60 seconds."><dt>Last minute</dt><dd>${formatNumber(lastSeconds(r.grantsPerSecond, 60))}</dd></div>
      <div title="Every grant this node has applied since it started."><dt>Total grants</dt><dd data-testid="grants-total">${formatNumber(r.grantsTotal)}</dd></div>
    </dl>

    ${hasLanes
      ? html`<div class="lanes">
          <span class="muted">Waiting per lane:</span>
          ${lanes.map((l) => html`<span class="chip" key=${l} data-lane=${l}>${l} <b>${formatNumber(r.queued[l])}</b>${r.config.lanes[l] ? html` <span class="muted">weight ${r.config.lanes[l].weight}</span>` : null}</span>`)}
        </div>`
      : null}

    ${editing
      ? html`<${LimitEditor} resource=${r} apiKey=${apiKey} onDone=${() => setEditing(false)} />`
      : html`<div class="limits">${r.usage.map((u, i) => html`<${UsageBar} key=${i} usage=${u} />`)}</div>`}

    <${GrantsChart} series=${r.grantsPerSecond} seconds=${seconds} />
  </article>`;
}

function UsageBar({ usage: u }) {
  const fraction = usageFraction(u.used, u.limit);
  return html`<div class="limit" data-kind=${u.kind}>
    <div class="limit-text">
      <span><b>${limitTitle(u)}</b> <span class="muted">${limitRule(u)}</span></span>
      <span class="num" data-testid="usage">${formatNumber(u.used)} / ${formatNumber(u.limit)}</span>
    </div>
    <div class="bar" role="meter" aria-valuemin="0" aria-valuemax=${u.limit} aria-valuenow=${u.used} aria-label=${`${limitTitle(u)} in use`}>
      <div class=${`fill ${usageTone(fraction)}`} style=${{ width: `${(fraction * 100).toFixed(1)}%` }}></div>
    </div>
  </div>`;
}

function GrantsChart({ series, seconds }) {
  const max = Math.max(1, ...series);
  const width = series.length;
  const heightPx = 48;
  // A step line: each second is a flat segment at its count, so a single grant is visible as a block.
  let d = `M0 ${heightPx}`;
  series.forEach((n, i) => {
    const y = heightPx - (n / max) * (heightPx - 2);
    d += ` L${i} ${y.toFixed(1)} L${i + 1} ${y.toFixed(1)}`;
  });
  d += ` L${width} ${heightPx} Z`;
  return html`<figure class="chart">
    <figcaption>
      <span>Grants per second, last ${formatDuration(seconds * 1000)}</span>
      <span class="muted">peak ${formatNumber(Math.max(0, ...series))}/s</span>
    </figcaption>
    <svg viewBox=${`0 0 ${width} ${heightPx}`} preserveAspectRatio="none" role="img" aria-label="grants per second">
      <path d=${d} />
    </svg>
    <div class="axis muted"><span>${formatDuration(seconds * 1000)} ago</span><span>now</span></div>
  </figure>`;
}

// -----------------------------------------------------------------------------
// Editing (admin keys)

function LimitEditor({ resource: r, apiKey, onDone }) {
  // The draft starts from the configuration as it was when the editor opened; pushes do not overwrite typing.
  const [draft, setDraft] = useState(() => r.config.limits.map((l) => ({ limit: String(l.limit), windowMs: "windowMs" in l ? String(l.windowMs) : null })));
  const [state, setState] = useState({ saving: false, error: null, details: [] });

  const set = (i, field, value) => setDraft(draft.map((d, j) => (j === i ? { ...d, [field]: value } : d)));

  const save = async (e) => {
    e.preventDefault();
    const limits = [];
    const problems = [];
    r.config.limits.forEach((l, i) => {
      const limit = parseWholeNumber(draft[i].limit, 1);
      if (!limit.ok) problems.push(`${limitTitle(l)}: limit ${limit.error}`);
      const next = { ...l, limit: limit.ok ? limit.value : l.limit };
      if (draft[i].windowMs !== null) {
        const windowMs = parseWholeNumber(draft[i].windowMs, 1);
        if (!windowMs.ok) problems.push(`${limitTitle(l)}: window ${windowMs.error}`);
        else next.windowMs = windowMs.value;
      }
      limits.push(next);
    });
    if (problems.length > 0) return setState({ saving: false, error: "Fix these before saving:", details: problems });
    const body = {
      limits,
      lanePolicy: r.config.lanePolicy,
      ...(Object.keys(r.config.lanes).length > 0 ? { lanes: r.config.lanes } : {}),
      ...(r.config.defaultLane !== undefined ? { defaultLane: r.config.defaultLane } : {}),
    };
    setState({ saving: true, error: null, details: [] });
    try {
      const res = await fetch(`v1/resources/${encodeURIComponent(r.name)}`, {
        method: "PUT",
        headers: { authorization: `Bearer ${apiKey}`, "content-type": "application/json" },
        body: JSON.stringify(body),
      });
      if (res.ok) return onDone();
      const answer = await res.json().catch(() => null);
      setState({ saving: false, error: answer?.error?.message ?? `the node answered HTTP ${res.status}`, details: answer?.error?.details ?? [] });
    } catch (err) {
      setState({ saving: false, error: `could not reach the node: ${err.message}`, details: [] });
    }
  };

  return html`<form class="editor" onSubmit=${save}>
    <p class="hint">New limits go through the Raft log and apply on every node, including to requests already waiting.</p>
    ${r.config.limits.map(
      (l, i) => html`<fieldset key=${i}>
        <legend>${limitTitle(l)} <span class="muted">(${l.kind}${"window" in l ? `, ${l.window}` : ""})</span></legend>
        <label>
          Limit
          <input name=${`limit-${i}`} inputmode="numeric" value=${draft[i].limit} onInput=${(e) => set(i, "limit", e.currentTarget.value)} />
        </label>
        ${draft[i].windowMs !== null
          ? html`<label>
              Window (ms)
              <input name=${`windowMs-${i}`} inputmode="numeric" value=${draft[i].windowMs} onInput=${(e) => set(i, "windowMs", e.currentTarget.value)} />
            </label>`
          : null}
      </fieldset>`,
    )}
    ${state.error !== null
      ? html`<div class="err" role="alert">
          ${state.error}
          ${state.details.length > 0 ? html`<ul>${state.details.map((d) => html`<li>${d}</li>`)}</ul>` : null}
        </div>`
      : null}
    <div class="row">
      <button type="submit" disabled=${state.saving}>${state.saving ? "Saving…" : "Save limits"}</button>
      <button type="button" class="link" onClick=${onDone} disabled=${state.saving}>Cancel</button>
    </div>
  </form>`;
}

const root = document.getElementById("app");
root.textContent = ""; // the "Loading…" line: Preact renders next to existing children, not over them
render(html`<${App} />`, root);
