// The console's common parts: building the DOM, calling the API as the signed-in caller,
// navigating in place, and the frame every page shares. Every other module imports from here;
// this one imports nothing.

export const TOKEN_KEY = "stackhouse.token";

/** An element with attributes and children (strings become text: never parsed as HTML). */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

/** Replaces the page's content, titles it and moves focus to it (for keyboard and screen
 * reader users a navigation is a new page). */
let stopLoading = () => {};

export function show(title, ...content) {
  stopLoading();
  const main = document.getElementById("main");
  main.replaceChildren(...content.flat(Infinity));
  document.title = `${title} · Stackhouse`;
  main.focus();
  // When the page's content is in the document (loadgen console reads it).
  performance.mark("stackhouse:shown");
}

export function crumbs(...parts) {
  return h("nav", { class: "crumbs", "aria-label": "Breadcrumb" },
    parts.map((p, i) => [i ? " / " : "", p]));
}

/** A table's scrolling box (narrow screens scroll wide tables inside it): focusable, so a
 * keyboard can scroll it, and named for screen readers. */
export function wrapAttrs(label) {
  return { class: "table-wrap", tabindex: "0", role: "region", "aria-label": label };
}

export function when(seconds) {
  if (!seconds) return "–";
  const d = new Date(seconds * 1000);
  return h("time", { datetime: d.toISOString() }, d.toLocaleString());
}

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

export function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

/** Calls an API path as the signed-in caller (a GET unless `init` says otherwise, with a JSON
 * `init.json` body); the answer's JSON, or ApiError with the API's own message. */
export async function api(path, t = token(), init = {}) {
  const headers = { Accept: "application/vnd.pulumi+8", Authorization: `token ${t}` };
  if (init.json !== undefined) headers["Content-Type"] = "application/json";
  if (init.yaml !== undefined) headers["Content-Type"] = "application/x-yaml";
  const r = await fetch(path, {
    method: init.method || "GET",
    headers,
    body: init.json !== undefined ? JSON.stringify(init.json) : init.yaml,
  });
  const text = await r.text();
  if (!r.ok) {
    let message = text;
    let body = null;
    try { body = JSON.parse(text); message = body.message || text; } catch { /* not JSON */ }
    const err = new ApiError(r.status, message);
    err.diagnostics = body?.diagnostics || [];
    throw err;
  }
  if (init.text) return text;
  return text ? JSON.parse(text) : null;
}

/** What a failed call means to the reader. */
export function explain(err) {
  if (!(err instanceof ApiError)) return `Stackhouse could not be reached: ${err.message}`;
  switch (err.status) {
    case 401: return "Your access token is not valid any more: sign in again.";
    case 403: return `You may not see this: ${err.message}`;
    case 404: return `Not found (or not visible to you): ${err.message}`;
    default: return `Stackhouse answered ${err.status}: ${err.message}`;
  }
}

let router = () => {};

/** Sets what a navigation runs (the console's router, in console.js). */
export function onNavigate(fn) {
  router = fn;
}

/** Goes to a console page without reloading. */
export function go(path) {
  history.pushState(null, "", path);
  router();
}

export function link(path, text) {
  return h("a", { href: path }, text);
}

export const seg = encodeURIComponent;

/** Calls the API with a method and JSON body as the signed-in caller. */
export function send(method, path, json) {
  return api(path, token(), { method, json });
}

/** Shows a page of organization `org`'s section `key` (see orgNav) titled `title`. */
export function orgPage(org, key, title, ...content) {
  show(`${title} of ${org}`,
    crumbs(link("/", "Organizations"), link(`/${seg(org)}`, org), title),
    orgNav(org, key),
    h("h1", {}, title),
    ...content);
}

/** An organization's sections; `here` is marked as the current page. */
export function orgNav(org, here) {
  const items = [["stacks", `/${seg(org)}`, "Stacks"], ["resources", `/${seg(org)}/resources`, "Resources"],
    ["environments", `/${seg(org)}/environments`, "Environments"], ["policies", `/${seg(org)}/policies`, "Policies"],
    ["members", `/${seg(org)}/members`, "Members and teams"], ["webhooks", `/${seg(org)}/webhooks`, "Webhooks"],
    ["audit", `/${seg(org)}/audit`, "Audit log"]];
  return h("nav", { class: "tabs", "aria-label": `Organization ${org}` },
    items.map(([key, path, text]) => h("a", { href: path, "aria-current": key === here ? "page" : null }, text)));
}

export function changeSummary(changes) {
  const parts = Object.entries(changes || {}).filter(([, n]) => n)
    .map(([op, n]) => `${n} ${op}`);
  return parts.length ? parts.join(", ") : "no changes";
}

/** Hands `blob` to the browser as a download named `name`. */
export function saveFile(blob, name) {
  const url = URL.createObjectURL(blob);
  const a = h("a", { href: url, download: name, hidden: true });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

/** The CLI's color tags (`<{%reset%}>`) and terminal escapes, which a page does not show. */
export function plain(text) {
  // eslint-disable-next-line no-control-regex
  return String(text || "").replace(/<\{%[^%]*%\}>/g, "").replace(/\u001b\[[0-9;]*m/g, "");
}

/** While a page loads, the old one is marked busy and, past a moment, says so; the next
 * `show` ends it. */
export function loading() {
  const main = document.getElementById("main");
  main.setAttribute("aria-busy", "true");
  const timer = setTimeout(() => {
    main.replaceChildren(h("p", { class: "status", role: "status" }, "Loading…"));
  }, 300);
  stopLoading = () => { clearTimeout(timer); main.removeAttribute("aria-busy"); };
}

let current = { stopped: true, stop() {} };

/** Stops what the page before followed (a running update, a run's log) and starts anew: the
 * state a follower checks (`stopped`) and may give its own `stop`. */
export function follow() {
  current.stop();
  const state = { stopped: false, stop() { state.stopped = true; } };
  current = state;
  return state;
}

/** Stops whatever a page follows (on navigation). */
export function stopFollowing() {
  current.stop();
}
