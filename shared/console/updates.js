// An update's page: its engine events as the CLI prints them, followed live over the event
// stream's WebSocket while it runs.

import {
  h, show, crumbs, when, ApiError, token, api, link, seg, changeSummary, plain, follow
} from "./core.js";

export const SYMBOLS = { create: "+", update: "~", delete: "-", replace: "+-", "create-replacement": "++",
  "delete-replaced": "--", same: " ", read: ">", refresh: "~", import: "=", discard: "<" };

export const PRESENT = { create: "creating", update: "updating", delete: "deleting", replace: "replacing",
  same: "", read: "reading", refresh: "refreshing", import: "importing" };

export const PAST = { create: "created", update: "updated", delete: "deleted", replace: "replaced",
  same: "", read: "read", refresh: "refreshed", import: "imported" };

export function resourceLine(meta, words) {
  const name = String(meta.urn || "").split("::").pop();
  const verb = words[meta.op] ?? meta.op;
  return `${SYMBOLS[meta.op] ?? " "} ${meta.type} ${name}${verb ? ` ${verb}` : ""}`;
}

/** One engine event as a line of the log (null: the CLI shows nothing for it either). */
export function eventLine(e) {
  if (e.diagnosticEvent) return plain(e.diagnosticEvent.message).trimEnd() || null;
  if (e.stdoutEvent) return plain(e.stdoutEvent.message).trimEnd() || null;
  if (e.resourcePreEvent) {
    const m = e.resourcePreEvent.metadata;
    return m.op === "same" ? null : resourceLine(m, PRESENT);
  }
  if (e.resOutputsEvent) {
    const m = e.resOutputsEvent.metadata;
    return m.op === "same" ? null : resourceLine(m, PAST);
  }
  if (e.resOpFailedEvent) return resourceLine(e.resOpFailedEvent.metadata, { [e.resOpFailedEvent.metadata.op]: "failed" });
  if (e.summaryEvent) {
    const s = e.summaryEvent;
    return `Resources: ${changeSummary(s.resourceChanges)}\nDuration: ${s.durationSeconds}s`;
  }
  if (e.cancelEvent) return null;
  return null;
}

/** The event stream's WebSocket for `query`, or null when the page was not told where it is.
 * A browser cannot send an Authorization header on a WebSocket: the token goes as a
 * subprotocol beside `stackhouse.events` (the one the server selects), never in the URL. */
export function eventsSocket(query) {
  const url = document.querySelector('meta[name="stackhouse-events"]')?.content;
  if (!url || !token()) return null;
  try {
    return new WebSocket(`${url}/?${query}`, ["stackhouse.events", `stackhouse.token.${token()}`]);
  } catch {
    return null;
  }
}

/** Resolves once `ws` is open (true) or has failed (false). */
export function opened(ws) {
  return new Promise((resolve) => {
    ws.addEventListener("open", () => resolve(true), { once: true });
    ws.addEventListener("error", () => resolve(false), { once: true });
    ws.addEventListener("close", () => resolve(false), { once: true });
  });
}

/** Shows an update's engine events in `log`, each once (by its sequence number), and follows
 * them while the update runs: live over the event stream's WebSocket when the page knows it
 * (engine events arrive as the CLI sends them), else by asking the API every second.
 * `status` says which; `ended` is called when the update ends while the page watches. */
export async function followEvents(eventsPath, socketQuery, log, status, state, ended) {
  const seen = new Set();
  const add = (events) => {
    for (const e of events || []) {
      if (e.sequence !== undefined) {
        if (seen.has(e.sequence)) continue;
        seen.add(e.sequence);
      }
      const line = eventLine(e);
      if (line !== null) log.append(h("div", {}, line));
    }
  };
  // The socket first (buffering what it sends), then everything stored so far: what the CLI
  // sends in between comes by one or the other, and `seen` drops what comes by both.
  const ws = eventsSocket(socketQuery);
  const live = ws !== null && (await opened(ws));
  // Left while the socket was opening: nothing to follow any more.
  if (state.stopped) { ws?.close(); return; }
  const pending = [];
  let draining = false;
  let over = null;
  const finished = new Promise((resolve) => { over = resolve; });
  const onFrame = (frame) => {
    if (frame.type === "engine-events") add(frame.events);
    else if (frame.type === "event" && frame.kind === "update-ended") over(true);
    else if (frame.type === "closing") over(false);
  };
  if (live) {
    ws.addEventListener("message", (m) => {
      let frame;
      try { frame = JSON.parse(m.data); } catch { return; }
      if (draining) onFrame(frame); else pending.push(frame);
    });
    ws.addEventListener("close", () => over(false));
  }
  state.stop = () => { state.stopped = true; ws?.close(); over(false); };

  const readStored = async (from) => {
    for (;;) {
      const page = await api(from === null ? eventsPath : `${eventsPath}?continuationToken=${seg(from)}`);
      add(page.events);
      if (!page.continuationToken) return null;
      from = page.continuationToken;
      if ((page.events || []).length === 0) return from;
    }
  };
  let from = await readStored(null);
  if (from === null) { ws?.close(); status.textContent = ""; return; }
  if (live) {
    status.textContent = "Running: following its events live.";
    draining = true;
    pending.splice(0).forEach(onFrame);
    const endedHere = await finished;
    ws.close();
    if (state.stopped) return;
    // The events stored by the end (any a dropped socket missed), then the final facts.
    from = await readStored(from);
    if (from === null || endedHere) {
      status.textContent = "The update has ended.";
      ended();
      return;
    }
  }
  status.textContent = "Running: its events are read every second.";
  while (!state.stopped) {
    await new Promise((r) => setTimeout(r, 1000));
    if (state.stopped) return;
    from = await readStored(from);
    if (from === null) {
      status.textContent = "The update has ended.";
      ended();
      return;
    }
  }
}

/** The facts of update `version` (its timeline), and its update id. A version is in the
 * stack's history once its update has ended; the running update (the CLI links to it by the
 * version it will make) is the stack's active one. */
export async function updateFacts(base, version) {
  let timeline;
  try {
    timeline = await api(`${base}/updates/${seg(version)}/timeline`);
  } catch (err) {
    if (!(err instanceof ApiError) || err.status !== 404) throw err;
    const s = await api(base);
    if (!s.activeUpdate || Number(version) !== (s.version ?? 0) + 1) throw err;
    return {
      id: s.activeUpdate,
      dl: h("dl", { class: "facts" }, h("dt", {}, "Result"), h("dd", {}, "in progress")),
    };
  }
  const u = timeline.update;
  const info = u.info || {};
  const facts = [
    ["Kind", info.kind], ["Result", info.result], ["Changes", changeSummary(info.resourceChanges)],
    ["Started", when(info.startTime)], ["Ended", when(info.endTime)],
    ["By", u.requestedBy?.githubLogin || u.requestedBy?.name || "–"], ["Message", info.message || "–"],
  ];
  return {
    id: u.updateID,
    dl: h("dl", { class: "facts" }, facts.map(([k, v]) => [h("dt", {}, k), h("dd", {}, v ?? "–")])),
  };
}

export async function updatePage(org, project, stack, kind, which) {
  const base = `/api/stacks/${seg(org)}/${seg(project)}/${seg(stack)}`;
  const first = kind === "update" ? await updateFacts(base, which) : null;
  const id = first ? first.id : which;
  const log = h("div", { class: "log", role: "log", "aria-live": "polite", "aria-label": "Engine events" });
  const status = h("p", { class: "status", role: "status" });
  const title = kind === "update" ? `Update ${which}` : "Preview";
  show(`${title} of ${project}/${stack}`,
    crumbs(link("/", "Organizations"), link(`/${seg(org)}`, org), project,
      link(`/${seg(org)}/${seg(project)}/${seg(stack)}`, stack)),
    h("h1", {}, title),
    first ? first.dl : null,
    h("h2", {}, "Engine events"), status, log);
  const state = follow();
  // The path's kind segment: `update` for up, refresh and destroy alike, as the CLI posts them.
  const pathKind = kind === "update" ? "update" : "preview";
  const query = new URLSearchParams({ org, stack: `${project}/${stack}`, update: id });
  const refresh = async () => {
    if (!first || state.stopped) return;
    try { first.dl.replaceWith((await updateFacts(base, which)).dl); } catch { /* kept as shown */ }
  };
  await followEvents(`${base}/${pathKind}/${seg(id)}/events`, query, log, status, state, refresh);
}
