// The Stackhouse console: pages over the same REST API the Pulumi CLI uses, with the caller's
// access token (kept in this tab's session storage, never in a URL). No build step and no
// dependency: the pages are lists, tables and forms, which the DOM builds well enough, and the
// whole console stays a few kilobytes (docs/BENCHMARKS.md, "Web console").
//
// Paths are the ones the Pulumi CLI prints when it knows a console (PULUMI_CONSOLE_DOMAIN):
// /<org>/<project>/<stack> for a stack; the rest are the console's own.

const TOKEN_KEY = "stackhouse.token";

// --- DOM -------------------------------------------------------------------------------------

/** An element with attributes and children (strings become text: never parsed as HTML). */
function h(tag, attrs = {}, ...children) {
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

function show(title, ...content) {
  stopLoading();
  const main = document.getElementById("main");
  main.replaceChildren(...content.flat(Infinity));
  document.title = `${title} · Stackhouse`;
  main.focus();
  // When the page's content is in the document (loadgen console reads it).
  performance.mark("stackhouse:shown");
}

function crumbs(...parts) {
  return h("nav", { class: "crumbs", "aria-label": "Breadcrumb" },
    parts.map((p, i) => [i ? " / " : "", p]));
}

/** A table's scrolling box (narrow screens scroll wide tables inside it): focusable, so a
 * keyboard can scroll it, and named for screen readers. */
function wrapAttrs(label) {
  return { class: "table-wrap", tabindex: "0", role: "region", "aria-label": label };
}

function when(seconds) {
  if (!seconds) return "–";
  const d = new Date(seconds * 1000);
  return h("time", { datetime: d.toISOString() }, d.toLocaleString());
}

// --- API -------------------------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

/** Calls an API path as the signed-in caller (a GET unless `init` says otherwise, with a JSON
 * `init.json` body); the answer's JSON, or ApiError with the API's own message. */
async function api(path, t = token(), init = {}) {
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
function explain(err) {
  if (!(err instanceof ApiError)) return `Stackhouse could not be reached: ${err.message}`;
  switch (err.status) {
    case 401: return "Your access token is not valid any more: sign in again.";
    case 403: return `You may not see this: ${err.message}`;
    case 404: return `Not found (or not visible to you): ${err.message}`;
    default: return `Stackhouse answered ${err.status}: ${err.message}`;
  }
}

// --- Navigation ------------------------------------------------------------------------------

function go(path) {
  history.pushState(null, "", path);
  route();
}

/** Links to console pages navigate in place; others (and modified clicks) are left alone. */
document.addEventListener("click", (e) => {
  const a = e.target instanceof Element ? e.target.closest("a[href]") : null;
  if (!a || a.origin !== location.origin || a.target || a.hasAttribute("download")) return;
  if (e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
  e.preventDefault();
  go(a.pathname + a.search);
});
window.addEventListener("popstate", () => route());

function link(path, text) {
  return h("a", { href: path }, text);
}

const seg = encodeURIComponent;

// --- Pages -----------------------------------------------------------------------------------

function signInPage(message) {
  const input = h("input", {
    id: "token", name: "token", type: "password", autocomplete: "off", required: true,
    "aria-describedby": "token-help",
  });
  const error = h("p", { class: "error", role: "alert", hidden: !message }, message || "");
  const form = h("form", {
    class: "signin",
    onsubmit: async (e) => {
      e.preventDefault();
      const t = input.value.trim();
      try {
        await api("/api/user", t);
        sessionStorage.setItem(TOKEN_KEY, t);
        go(location.pathname === "/signin" ? "/" : location.pathname);
      } catch (err) {
        error.textContent = err instanceof ApiError && err.status === 401
          ? "That access token is not valid." : explain(err);
        error.hidden = false;
      }
    },
  },
  h("label", { for: "token" }, "Access token"),
  h("p", { id: "token-help", class: "status" },
    "Paste an access token (pulumi login prints where to make one; the emulator prints its first one). " +
    "It stays in this browser tab only."),
  input, error, h("button", { type: "submit" }, "Sign in"));
  renderAccount(null);
  show("Sign in", h("h1", {}, "Sign in to Stackhouse"), form);
}

/** Calls the API with a method and JSON body as the signed-in caller. */
function send(method, path, json) {
  return api(path, token(), { method, json });
}

function renderAccount(user) {
  const nav = document.getElementById("account");
  if (!user) { nav.replaceChildren(); return; }
  nav.replaceChildren(
    h("span", {}, user.githubLogin || user.name),
    link("/account/tokens", "Access tokens"),
    h("button", {
      class: "quiet", type: "button",
      onclick: () => { sessionStorage.removeItem(TOKEN_KEY); go("/signin"); },
    }, "Sign out"));
}

async function orgsPage(user) {
  const orgs = user.organizations || [];
  show("Organizations",
    h("h1", {}, "Organizations"),
    orgs.length
      ? h("ul", { class: "plain" }, orgs.map((o) => h("li", {}, link(`/${seg(o.githubLogin)}`, o.name || o.githubLogin))))
      : h("p", {}, "You belong to no organization yet."));
}

async function stacksPage(org) {
  const listed = await api(`/api/user/stacks?organization=${seg(org)}`);
  const stacks = (listed.stacks || []).slice()
    .sort((a, b) => (b.lastUpdate || 0) - (a.lastUpdate || 0));
  const search = h("input", {
    id: "stack-search", type: "search", placeholder: "name, project, or tag:value",
    "aria-describedby": "stack-search-help",
  });
  const body = h("tbody");
  const count = h("p", { class: "status", role: "status" });
  // Names and projects are matched here; a `tag:value` (or `tag=value`, or `tag:` for any
  // value) asks the API, which filters stacks by tag as for `pulumi stack ls --tag`.
  let asked = 0;
  const render = async () => {
    const q = search.value.trim();
    const tag = /^([^\s:=]+)[:=](.*)$/.exec(q);
    let shown;
    if (tag) {
      const mine = ++asked;
      const params = new URLSearchParams({ organization: org, tagName: tag[1] });
      if (tag[2]) params.set("tagValue", tag[2]);
      let found;
      try { found = await api(`/api/user/stacks?${params}`); } catch (err) {
        count.textContent = explain(err);
        return;
      }
      if (mine !== asked) return;
      const keys = new Set((found.stacks || []).map((s) => `${s.projectName}/${s.stackName}`));
      shown = stacks.filter((s) => keys.has(`${s.projectName}/${s.stackName}`));
    } else {
      asked++;
      const lower = q.toLowerCase();
      shown = stacks.filter((s) => !lower || [s.stackName, s.projectName]
        .some((x) => String(x).toLowerCase().includes(lower)));
    }
    body.replaceChildren(...shown.map((s) => h("tr", {},
      h("td", {}, link(`/${seg(org)}/${seg(s.projectName)}/${seg(s.stackName)}`, s.stackName)),
      h("td", {}, s.projectName),
      h("td", {}, when(s.lastUpdate)),
      h("td", { class: "num" }, s.resourceCount ?? "–"))));
    count.textContent = `${shown.length} of ${stacks.length} stacks`;
  };
  search.addEventListener("input", render);
  render();
  show(`Stacks of ${org}`,
    crumbs(link("/", "Organizations"), org),
    orgNav(org, "stacks"),
    h("h1", {}, "Stacks"),
    h("label", { for: "stack-search" }, "Search stacks"),
    h("p", { id: "stack-search-help", class: "status" },
      "Part of a stack's or project's name, or tag:value for stacks with that tag."),
    search, count,
    h("div", wrapAttrs("Stacks"), h("table", {},
      h("caption", { class: "status" }, `Stacks of ${org}, most recently updated first`),
      h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Stack"), h("th", { scope: "col" }, "Project"),
        h("th", { scope: "col" }, "Last update"), h("th", { scope: "col", class: "num" }, "Resources"))),
      body)));
}

/** Shows a page of organization `org`'s section `key` (see orgNav) titled `title`. */
function orgPage(org, key, title, ...content) {
  show(`${title} of ${org}`,
    crumbs(link("/", "Organizations"), link(`/${seg(org)}`, org), title),
    orgNav(org, key),
    h("h1", {}, title),
    ...content);
}

/** An organization's sections; `here` is marked as the current page. */
function orgNav(org, here) {
  const items = [["stacks", `/${seg(org)}`, "Stacks"], ["resources", `/${seg(org)}/resources`, "Resources"],
    ["environments", `/${seg(org)}/environments`, "Environments"], ["policies", `/${seg(org)}/policies`, "Policies"],
    ["members", `/${seg(org)}/members`, "Members and teams"], ["webhooks", `/${seg(org)}/webhooks`, "Webhooks"],
    ["audit", `/${seg(org)}/audit`, "Audit log"]];
  return h("nav", { class: "tabs", "aria-label": `Organization ${org}` },
    items.map(([key, path, text]) => h("a", { href: path, "aria-current": key === here ? "page" : null }, text)));
}

function changeSummary(changes) {
  const parts = Object.entries(changes || {}).filter(([, n]) => n)
    .map(([op, n]) => `${n} ${op}`);
  return parts.length ? parts.join(", ") : "no changes";
}

async function stackPage(org, project, stack) {
  const base = `/api/stacks/${seg(org)}/${seg(project)}/${seg(stack)}`;
  const [s, history] = await Promise.all([api(base), api(`${base}/updates?pageSize=20&page=1`)]);
  const tags = Object.entries(s.tags || {});
  const updates = history.updates || [];
  const outputs = h("div", {}, h("p", { class: "status" }, "Loading…"));
  const resources = h("div", {}, h("p", { class: "status" }, "Loading…"));
  // The state is read after the page shows: a large stack's takes a moment.
  api(`${base}/export`).then((state) => {
    const all = state?.deployment?.resources || [];
    const root = all.find((r) => r.type === "pulumi:pulumi:Stack");
    outputs.replaceChildren(outputsList(base, root?.outputs || {}));
    resources.replaceChildren(resourceTree(all));
  }, (err) => {
    const p = h("p", { class: "error" }, explain(err));
    outputs.replaceChildren(p);
    resources.replaceChildren();
  });
  show(`${project}/${stack}`,
    crumbs(link("/", "Organizations"), link(`/${seg(org)}`, org), project),
    h("h1", {}, stack),
    h("dl", { class: "facts" },
      h("dt", {}, "Project"), h("dd", {}, project),
      h("dt", {}, "Version"), h("dd", {}, s.version ?? 0),
      h("dt", {}, "Update running"), h("dd", {}, s.activeUpdate ? "yes" : "no")),
    h("h2", {}, "Tags"),
    tags.length
      ? h("dl", { class: "facts" }, tags.map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]))
      : h("p", {}, "No tags."),
    h("p", {}, link(`/${seg(org)}/${seg(project)}/${seg(stack)}/deployments`, "Deployments")),
    h("h2", {}, "Outputs"), outputs,
    h("h2", {}, "Resources"), resources,
    h("p", {}, h("button", { type: "button", class: "download", onclick: () => downloadState(base, `${project}-${stack}`) },
      "Download state")),
    h("h2", {}, "Updates"),
    updates.length
      ? h("div", wrapAttrs("Updates"), h("table", {},
        h("thead", {}, h("tr", {}, h("th", { scope: "col", class: "num" }, "Version"),
          h("th", { scope: "col" }, "Kind"), h("th", { scope: "col" }, "Result"),
          h("th", { scope: "col" }, "Changes"), h("th", { scope: "col" }, "Started"),
          h("th", { scope: "col" }, "Message"))),
        h("tbody", {}, updates.map((u) => h("tr", {},
          h("td", { class: "num" },
            link(`/${seg(org)}/${seg(project)}/${seg(stack)}/updates/${u.version}`, u.version)),
          h("td", {}, u.kind),
          h("td", { class: `result-${u.result}` }, u.result),
          h("td", { class: "changes" }, changeSummary(u.resourceChanges)),
          h("td", {}, when(u.startTime)),
          h("td", {}, u.message || ""))))))
      : h("p", {}, "No updates yet."));
}

// --- A stack's state: outputs, resources, download ------------------------------------------

/** The signature Pulumi marks secret values with in a state. */
const SECRET_SIG = "4dabf18193072939515e22adb298388d";

function isSecret(v) {
  return v !== null && typeof v === "object" && v[SECRET_SIG] === "1b47061264138c4ac30d75fd1eb44270";
}

/** A value as text: JSON for objects, with secrets shown as [secret]. */
function valueText(v) {
  if (typeof v === "string") return v;
  return JSON.stringify(v, (k, x) => (isSecret(x) ? "[secret]" : x), 2);
}

/** The stack's outputs; a secret stays hidden until "Show", which asks the API to decrypt it
 * (callers who may change the stack may; others are told why not). */
function outputsList(base, outputs) {
  const entries = Object.entries(outputs);
  if (!entries.length) return h("p", {}, "No outputs.");
  return h("dl", { class: "facts outputs" }, entries.map(([name, v]) => {
    if (!isSecret(v)) return [h("dt", {}, name), h("dd", {}, h("code", {}, valueText(v)))];
    const dd = h("dd", {});
    const reveal = async () => {
      try {
        const r = await send("POST", `${base}/decrypt`, { ciphertext: v.ciphertext });
        const text = new TextDecoder().decode(Uint8Array.from(atob(r.plaintext), (c) => c.charCodeAt(0)));
        let shown = text;
        try { shown = valueText(JSON.parse(text)); } catch { /* plain text */ }
        dd.replaceChildren(h("code", {}, shown), " ",
          h("button", { class: "quiet", type: "button", onclick: hide }, "Hide"));
      } catch (err) {
        dd.replaceChildren(h("span", { class: "error" }, explain(err)));
      }
    };
    const hide = () => dd.replaceChildren(h("span", { class: "secret" }, "[secret]"), " ",
      h("button", { class: "quiet", type: "button", "aria-label": `Show ${name}`, onclick: reveal }, "Show"));
    hide();
    return [h("dt", {}, name), dd];
  }));
}

/** The resources as a tree by parent: each a disclosure (keyboard-operable as it is) with its
 * type and name, opening to its URN, id, inputs and outputs. */
function resourceTree(all) {
  if (!all.length) return h("p", {}, "No resources.");
  const children = new Map();
  const urns = new Set(all.map((r) => r.urn));
  for (const r of all) {
    const parent = r.parent && urns.has(r.parent) ? r.parent : "";
    if (!children.has(parent)) children.set(parent, []);
    children.get(parent).push(r);
  }
  const node = (r) => {
    const name = String(r.urn).split("::").pop();
    const kids = children.get(r.urn) || [];
    return h("li", {}, h("details", {},
      h("summary", {}, h("span", { class: "rtype" }, r.type), " ", h("strong", {}, name),
        kids.length ? h("span", { class: "status" }, ` (${kids.length})`) : null),
      h("dl", { class: "facts" },
        h("dt", {}, "URN"), h("dd", {}, h("code", {}, r.urn)),
        r.id ? [h("dt", {}, "ID"), h("dd", {}, h("code", {}, r.id))] : null,
        h("dt", {}, "Inputs"), h("dd", {}, h("pre", {}, valueText(r.inputs || {}))),
        h("dt", {}, "Outputs"), h("dd", {}, h("pre", {}, valueText(r.outputs || {})))),
      kids.length ? h("ul", { class: "tree" }, kids.map(node)) : null));
  };
  return h("div", {},
    h("p", { class: "status" }, `${all.length} resources`),
    h("ul", { class: "tree", "aria-label": "Resources by parent" }, (children.get("") || []).map(node)));
}

/** Hands `blob` to the browser as a download named `name`. */
function saveFile(blob, name) {
  const url = URL.createObjectURL(blob);
  const a = h("a", { href: url, download: name, hidden: true });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

/** Saves the stack's state (as `pulumi stack export` writes it) as a file. */
async function downloadState(base, name) {
  const state = await api(`${base}/export`);
  saveFile(new Blob([JSON.stringify(state, null, 4)], { type: "application/json" }), `${name}.json`);
}

// --- Access: tokens, members and teams ---------------------------------------------------------

const DAY = 24 * 60 * 60;

/** The signed-in user's access tokens: made here (the value shown this once), revoked here. */
async function tokensPage() {
  const listed = await api("/api/user/tokens");
  const tokens = (listed.tokens || []).slice().sort((a, b) => b.created - a.created);
  const description = h("input", { id: "token-description", type: "text", required: true, maxlength: 200 });
  const expiry = h("select", { id: "token-expiry" },
    h("option", { value: "0" }, "never"), h("option", { value: "30" }, "in 30 days"),
    h("option", { value: "90" }, "in 90 days"), h("option", { value: "365" }, "in a year"));
  const made = h("div", { role: "status" });
  const form = h("form", {
    class: "stacked",
    onsubmit: async (e) => {
      e.preventDefault();
      const days = Number(expiry.value);
      try {
        const r = await send("POST", "/api/user/tokens", {
          description: description.value.trim(),
          expires: days ? Math.floor(Date.now() / 1000) + days * DAY : 0,
        });
        await tokensPage();
        const shown = document.querySelector("main [role=status].made");
        shown.replaceChildren(
          h("p", {}, "Your new token. Copy it now: it is not shown again."),
          h("output", { id: "new-token", class: "secret-value" }, r.tokenValue));
      } catch (err) {
        made.replaceChildren(h("p", { class: "error", role: "alert" }, explain(err)));
      }
    },
  },
  h("label", { for: "token-description" }, "Description"), description,
  h("label", { for: "token-expiry" }, "Expires"), expiry,
  h("button", { type: "submit" }, "Create token"));
  made.classList.add("made");
  const body = h("tbody", {}, tokens.map((t) => tokenRow(t)));
  show("Access tokens",
    crumbs(link("/", "Organizations"), "Access tokens"),
    h("h1", {}, "Access tokens"),
    h("p", {}, "Tokens act as you, for the Pulumi CLI (PULUMI_ACCESS_TOKEN) and the API."),
    h("h2", {}, "Create a token"), form, made,
    h("h2", {}, "Your tokens"),
    tokens.length
      ? h("div", wrapAttrs("Tokens"), h("table", {},
        h("thead", {}, h("tr", {}, ["Description", "Created", "Last used", "Expires", ""].map((c) =>
          h("th", { scope: "col" }, c)))),
        body))
      : h("p", {}, "You have no tokens."));
}

/** One token of the list, with a revoke that asks once more before it acts. */
function tokenRow(t) {
  const label = t.description || t.name;
  const cell = h("td", {});
  const ask = () => cell.replaceChildren(
    h("button", { type: "button", class: "quiet", "aria-label": `Revoke ${label}`, onclick: confirm }, "Revoke"));
  const confirm = () => {
    const yes = h("button", { type: "button", class: "danger", onclick: revoke }, `Revoke “${label}” now`);
    cell.replaceChildren(yes, " ", h("button", { type: "button", class: "quiet", onclick: ask }, "Keep"));
    yes.focus();
  };
  const revoke = async () => {
    try {
      await send("DELETE", `/api/user/tokens/${seg(t.id)}`);
      await tokensPage();
      document.querySelector("main [role=status].made").textContent = `Revoked “${label}”.`;
    } catch (err) {
      cell.replaceChildren(h("span", { class: "error" }, explain(err)));
    }
  };
  ask();
  return h("tr", {}, h("td", {}, label), h("td", {}, when(t.created)),
    h("td", {}, t.lastUsed ? when(t.lastUsed) : "never"), h("td", {}, t.expires ? when(t.expires) : "never"),
    cell);
}

/** An organization's members with their roles, and its teams. */
async function membersPage(org) {
  const [members, teams] = await Promise.all([
    api(`/api/orgs/${seg(org)}/members`), api(`/api/orgs/${seg(org)}/teams`)]);
  const list = members.members || [];
  const teamList = teams.teams || [];
  orgPage(org, "members", "Members and teams",
    h("h2", {}, "Members"),
    h("div", wrapAttrs("Members"), h("table", {},
      h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "User"), h("th", { scope: "col" }, "Role"),
        h("th", { scope: "col" }, "Member since"))),
      h("tbody", {}, list.map((m) => h("tr", {}, h("td", {}, m.user?.githubLogin || m.user?.name),
        h("td", {}, m.role), h("td", {}, when(m.created))))))),
    h("h2", {}, "Teams"),
    teamList.length
      ? h("ul", { class: "plain" }, teamList.map((t) => h("li", {}, h("strong", {}, t.displayName || t.name),
        t.description ? ` — ${t.description}` : "")))
      : h("p", {}, "No teams."));
}

/** Seconds since the epoch of a date field's day (its start, or its end with `end`). */
function dayBound(field, end) {
  if (!field.value) return null;
  const t = new Date(`${field.value}T00:00:00`).getTime() / 1000;
  return end ? t + DAY - 1 : t;
}

/** The organization's audit log (administrators): newest first, narrowed by time on the server
 * and by user or event here; CSV of the same time range. */
async function auditPage(org) {
  const base = `/api/orgs/${seg(org)}/auditlogs`;
  const from = h("input", { id: "audit-from", type: "date" });
  const to = h("input", { id: "audit-to", type: "date" });
  const who = h("input", { id: "audit-user", type: "text" });
  const what = h("input", { id: "audit-event", type: "text" });
  const body = h("tbody");
  const count = h("p", { class: "status", role: "status" });
  const more = h("button", { type: "button", class: "quiet", hidden: true }, "Load more");
  let entries = [];
  let next = null;
  const range = () => {
    const q = new URLSearchParams();
    const start = dayBound(from, false);
    const end = dayBound(to, true);
    if (start !== null) q.set("startTime", String(start));
    if (end !== null) q.set("endTime", String(end));
    return q;
  };
  const render = () => {
    const u = who.value.trim().toLowerCase();
    const e = what.value.trim().toLowerCase();
    const shown = entries.filter((x) =>
      (!u || `${x.user?.githubLogin || ""} ${x.tokenName || ""}`.toLowerCase().includes(u)) &&
      (!e || `${x.event} ${x.description}`.toLowerCase().includes(e)));
    body.replaceChildren(...shown.map((x) => h("tr", {},
      h("td", {}, when(x.timestamp)), h("td", {}, x.user?.githubLogin || x.user?.name || "–"),
      h("td", {}, x.event), h("td", {}, x.description), h("td", { class: "num" }, x.status ?? ""),
      h("td", {}, x.sourceIP))));
    count.textContent = `${shown.length} of ${entries.length} entries${next ? " loaded" : ""}`;
    more.hidden = !next;
  };
  const load = async (fresh) => {
    const q = range();
    q.set("pageSize", "100");
    if (!fresh && next) q.set("continuationToken", next);
    try {
      const page = await api(`${base}?${q}`);
      entries = (fresh ? [] : entries).concat(page.auditLogEvents || []);
      next = page.continuationToken || null;
      render();
    } catch (err) {
      count.textContent = explain(err);
    }
  };
  const exportCsv = async () => {
    const r = await fetch(`${base}/export?${range()}`, { headers: { Authorization: `token ${token()}` } });
    if (!r.ok) { count.textContent = explain(new ApiError(r.status, await r.text())); return; }
    saveFile(await r.blob(), `audit-${org}.csv`);
  };
  more.addEventListener("click", () => load(false));
  who.addEventListener("input", render);
  what.addEventListener("input", render);
  from.addEventListener("change", () => load(true));
  to.addEventListener("change", () => load(true));
  const first = await api(`${base}?pageSize=100`);
  entries = first.auditLogEvents || [];
  next = first.continuationToken || null;
  render();
  orgPage(org, "audit", "Audit log",
    h("div", { class: "filters" },
      h("div", {}, h("label", { for: "audit-from" }, "From"), from),
      h("div", {}, h("label", { for: "audit-to" }, "To"), to),
      h("div", {}, h("label", { for: "audit-user" }, "User or token"), who),
      h("div", {}, h("label", { for: "audit-event" }, "Event"), what)),
    h("p", {}, h("button", { type: "button", onclick: exportCsv }, "Export CSV")),
    count,
    h("div", wrapAttrs("Audit log entries"), h("table", {},
      h("caption", { class: "status" }, "Every change, decryption and refused call, newest first"),
      h("thead", {}, h("tr", {}, ["When", "User", "Event", "What", "Status", "Source"].map((c) =>
        h("th", { scope: "col" }, c)))),
      body)),
    more);
}

// --- Deployments: a stack's runs, a run's log, its schedules ------------------------------------

/** A stack's deployment runs (newest first) and schedules, and a form to run one now. */
async function deploymentsPage(org, project, stack) {
  const base = `/api/stacks/${seg(org)}/${seg(project)}/${seg(stack)}`;
  const page = `/${seg(org)}/${seg(project)}/${seg(stack)}`;
  const [runs, schedules] = await Promise.all([
    api(`${base}/deployments?pageSize=50`), api(`${base}/deployments/schedules`)]);
  const op = h("select", { id: "deploy-operation" },
    ["update", "preview", "refresh", "destroy", "detect-drift"].map((o) => h("option", { value: o }, o)));
  const error = h("div", { role: "status" });
  const form = h("form", {
    class: "stacked",
    onsubmit: async (e) => {
      e.preventDefault();
      try {
        const r = await send("POST", `${base}/deployments`, { operation: op.value });
        go(`${page}/deployments/${seg(r.id)}`);
      } catch (err) {
        error.replaceChildren(h("p", { class: "error", role: "alert" }, explain(err)));
      }
    },
  }, h("label", { for: "deploy-operation" }, "Operation"), op, h("button", { type: "submit" }, "Run"));
  const list = runs.deployments || [];
  const sched = schedules.schedules || [];
  show(`Deployments of ${project}/${stack}`,
    crumbs(link("/", "Organizations"), link(`/${seg(org)}`, org), project, link(page, stack)),
    h("h1", {}, "Deployments"),
    h("h2", {}, "Run a deployment"),
    h("p", {}, "Runs with the stack's deployment settings, on the service's side."), form, error,
    h("h2", {}, "Runs"),
    list.length
      ? h("div", wrapAttrs("Runs"), h("table", {},
        h("thead", {}, h("tr", {}, ["#", "Operation", "Status", "By", "Created"].map((c) => h("th", { scope: "col" }, c)))),
        h("tbody", {}, list.map((d) => h("tr", {},
          h("td", {}, link(`${page}/deployments/${seg(d.id)}`, String(d.version))),
          h("td", {}, d.pulumiOperation), h("td", { class: `result-${d.status}` }, d.status),
          h("td", {}, d.requestedBy?.githubLogin || "–"), h("td", {}, d.created))))))
      : h("p", {}, "No runs yet."),
    h("h2", {}, "Schedules"),
    sched.length
      ? h("ul", { class: "plain" }, sched.map((x) => h("li", {},
        h("strong", {}, x.scheduleCron || `once at ${x.scheduleOnce}`), " — ",
        x.definition?.request?.operation || "update",
        x.paused ? " (paused)" : "", x.nextExecution ? `, next ${x.nextExecution} UTC` : "")))
      : h("p", {}, "No schedules."));
}

/** One run: its facts and its log, read while it runs (every second) until it ends. */
async function runPage(org, project, stack, id) {
  const base = `/api/stacks/${seg(org)}/${seg(project)}/${seg(stack)}/deployments/${seg(id)}`;
  const page = `/${seg(org)}/${seg(project)}/${seg(stack)}`;
  const facts = (d) => h("dl", { class: "facts" },
    [["Operation", d.pulumiOperation], ["Status", d.status], ["By", d.requestedBy?.githubLogin],
      ["Created", d.created], ["Updated", d.modified], ["Message", d.message || "–"]]
      .map(([k, v]) => [h("dt", {}, k), h("dd", {}, v ?? "–")]));
  let dl = facts(await api(base));
  const log = h("div", { class: "log", role: "log", "aria-live": "polite", "aria-label": "Run log" });
  const status = h("p", { class: "status", role: "status" });
  show(`Deployment of ${project}/${stack}`,
    crumbs(link("/", "Organizations"), link(`/${seg(org)}`, org), project, link(page, stack),
      link(`${page}/deployments`, "Deployments")),
    h("h1", {}, "Deployment"), dl, h("h2", {}, "Log"), status, log);
  following.stop();
  const state = { stopped: false, stop() { state.stopped = true; } };
  following = state;
  let token = "";
  for (;;) {
    const chunk = await api(`${base}/logs?continuationToken=${seg(token)}`);
    for (const l of chunk.lines || []) log.append(h("div", {}, l.header ? `${l.header}: ${plain(l.line)}` : plain(l.line)));
    if (state.stopped) return;
    // Absent once the run has ended and all was read ("" while nothing was logged yet).
    if (typeof chunk.nextToken !== "string") break;
    status.textContent = "Running: its log is read every second.";
    if (chunk.nextToken === token) await new Promise((r) => setTimeout(r, 1000));
    token = chunk.nextToken;
  }
  status.textContent = "The run has ended.";
  const fresh = facts(await api(base));
  dl.replaceWith(fresh);
  dl = fresh;
}

// --- Environments (ESC): the list, a definition's editor, its opened values ---------------------

/** An organization's environments. */
async function environmentsPage(org) {
  const listed = await api(`/api/esc/environments/${seg(org)}`);
  const envs = listed.environments || [];
  orgPage(org, "environments", "Environments",
    envs.length
      ? h("ul", { class: "plain" }, envs.map((e) => h("li", {},
        link(`/${seg(org)}/environments/${seg(e.project)}/${seg(e.name)}`, `${e.project}/${e.name}`),
        h("span", { class: "status" }, e.modified ? ` — changed ${e.modified}` : ""))))
      : h("p", {}, "No environments yet (esc env init, or the API)."));
}

/** ESC's value tree as plain JSON, each secret as [secret] unless `reveal`. */
function escPlain(v, reveal) {
  if (v === null || typeof v !== "object" || !("value" in v)) return v;
  if (v.secret && !reveal) return "[secret]";
  if (v.unknown) return "[unknown]";
  const x = v.value;
  if (Array.isArray(x)) return x.map((e) => escPlain(e, reveal));
  if (x !== null && typeof x === "object") {
    return Object.fromEntries(Object.entries(x).map(([k, e]) => [k, escPlain(e, reveal)]));
  }
  return x;
}

/** An environment: its definition in an editor (saving shows the checker's diagnostics by
 * line), and its values opened with secrets masked until "Show secrets". */
async function environmentPage(org, project, name) {
  const base = `/api/esc/environments/${seg(org)}/${seg(project)}/${seg(name)}`;
  const yaml = await api(base, token(), { text: true });
  const editor = h("textarea", { id: "env-definition", rows: 14, spellcheck: "false", class: "code" }, yaml);
  const diagnostics = h("div", { role: "status", class: "diagnostics" });
  const values = h("pre", { class: "values", "aria-label": "Opened values" });
  let opened = null;
  let reveal = false;
  const toggle = h("button", { type: "button", class: "quiet", hidden: true, onclick: () => {
    reveal = !reveal;
    toggle.textContent = reveal ? "Hide secrets" : "Show secrets";
    values.textContent = JSON.stringify(escPlain(opened, reveal), null, 2);
  } }, "Show secrets");
  const open = async () => {
    try {
      const session = await send("POST", `${base}/open`);
      opened = { value: (await api(`${base}/open/${seg(session.id)}`)).properties || {} };
      reveal = false;
      toggle.textContent = "Show secrets";
      toggle.hidden = false;
      values.textContent = JSON.stringify(escPlain(opened, false), null, 2);
    } catch (err) {
      values.textContent = explain(err);
    }
  };
  const form = h("form", {
    class: "stacked wide",
    onsubmit: async (e) => {
      e.preventDefault();
      try {
        await api(base, token(), { method: "PATCH", yaml: editor.value });
        diagnostics.replaceChildren(h("p", {}, "Saved."));
        await open();
      } catch (err) {
        const items = (err.diagnostics || []).map((d) =>
          h("li", {}, d.range ? `line ${d.range.begin?.line}: ` : "", d.summary || d.detail || ""));
        diagnostics.replaceChildren(h("p", { class: "error", role: "alert" }, explain(err)),
          items.length ? h("ul", {}, items) : null);
      }
    },
  }, h("label", { for: "env-definition" }, "Definition (YAML)"), editor, h("button", { type: "submit" }, "Save"));
  show(`${project}/${name}`,
    crumbs(link("/", "Organizations"), link(`/${seg(org)}`, org), link(`/${seg(org)}/environments`, "Environments"),
      `${project}/${name}`),
    h("h1", {}, `${project}/${name}`),
    form, diagnostics,
    h("h2", {}, "Values"), h("p", {}, toggle), values);
  await open();
}

// --- Resource search -------------------------------------------------------------------------

/** Search the organization's resources (Pulumi's query language: `type:aws:s3/bucket:Bucket
 * stack:prod`), with suggestions for the term being typed. */
async function resourcesPage(org) {
  const base = `/api/orgs/${seg(org)}/search/resources`;
  const query = h("input", {
    id: "resource-query", type: "search", autocomplete: "off", list: "resource-suggestions",
    "aria-describedby": "resource-query-help",
  });
  const suggestions = h("datalist", { id: "resource-suggestions" });
  const count = h("p", { class: "status", role: "status" });
  const body = h("tbody");
  let asked = 0;
  const suggest = async () => {
    const mine = ++asked;
    try {
      const c = await api(`${base}/autocomplete?query=${seg(query.value)}`);
      if (mine !== asked) return;
      const q = query.value;
      const head = q.slice(0, q.length - (q.split(/\s/).pop() || "").length);
      const options = c.field
        ? (c.values || []).map((v) => `${head}${c.field}:${v.name}`)
        : (c.fields || []).map((f) => `${head}${f}:`);
      suggestions.replaceChildren(...options.map((o) => h("option", { value: o })));
    } catch { /* suggestions are a help, not a need */ }
  };
  const search = async (e) => {
    e?.preventDefault();
    try {
      const r = await api(`${base}?query=${seg(query.value)}&size=100`);
      const found = r.resources || [];
      body.replaceChildren(...found.map((x) => h("tr", {},
        h("td", {}, x.name), h("td", {}, h("code", {}, x.type)),
        h("td", {}, link(`/${seg(org)}/${seg(x.project)}/${seg(x.stack)}`, `${x.project}/${x.stack}`)),
        h("td", {}, x.modified || ""))));
      count.textContent = `${r.total} resources match${r.total > found.length ? ` (first ${found.length} shown)` : ""}`;
    } catch (err) {
      count.textContent = explain(err);
    }
  };
  query.addEventListener("input", suggest);
  const form = h("form", { class: "stacked wide", onsubmit: search },
    h("label", { for: "resource-query" }, "Search resources"),
    h("p", { id: "resource-query-help", class: "status" },
      "Terms like type:aws:s3/bucket:Bucket, stack:prod, project:web or a name; suggestions follow what you type."),
    query, suggestions, h("button", { type: "submit" }, "Search"));
  orgPage(org, "resources", "Resources", form, count,
    h("div", wrapAttrs("Resources found"), h("table", {},
      h("thead", {}, h("tr", {}, ["Name", "Type", "Stack", "Changed"].map((c) => h("th", { scope: "col" }, c)))),
      body)));
  await search();
}

// --- Policies --------------------------------------------------------------------------------

/** The organization's policy packs (with their versions) and policy groups. */
async function policiesPage(org) {
  const [packs, groups] = await Promise.all([
    api(`/api/orgs/${seg(org)}/policypacks`), api(`/api/orgs/${seg(org)}/policygroups`)]);
  const packList = packs.policyPacks || [];
  const groupList = groups.policyGroups || [];
  orgPage(org, "policies", "Policies",
    h("h2", {}, "Policy packs"),
    packList.length
      ? h("ul", { class: "plain" }, packList.map((p) => h("li", {}, h("strong", {}, p.displayName || p.name),
        ` (${p.name}) — versions ${(p.versionTags || []).join(", ")}`)))
      : h("p", {}, "No policy packs (pulumi policy publish)."),
    h("h2", {}, "Policy groups"),
    groupList.length
      ? h("ul", { class: "plain" }, groupList.map((g) => h("li", {}, h("strong", {}, g.name),
        g.isOrgDefault ? " (default)" : "",
        ` — ${g.numStacks ?? 0} stacks, ${g.numEnabledPolicyPacks ?? 0} packs enabled`)))
      : h("p", {}, "No policy groups."));
}

// --- Webhooks and their deliveries -------------------------------------------------------------

/** The organization's webhooks (administrators). */
async function webhooksPage(org) {
  const listed = await api(`/api/orgs/${seg(org)}/hooks`);
  const hooks = Array.isArray(listed) ? listed : listed?.hooks || [];
  orgPage(org, "webhooks", "Webhooks",
    hooks.length
      ? h("ul", { class: "plain" }, hooks.map((k) => h("li", {},
        link(`/${seg(org)}/webhooks/${seg(k.name)}`, k.displayName || k.name), " → ", h("code", {}, k.payloadUrl),
        k.active ? "" : h("span", { class: "status" }, " (inactive)"))))
      : h("p", {}, "No webhooks."));
}

/** One webhook's deliveries, newest first, with each attempt's answer; ping and redeliver. */
async function webhookPage(org, name) {
  const base = `/api/orgs/${seg(org)}/hooks/${seg(name)}`;
  const [hook, listed] = await Promise.all([api(base), api(`${base}/deliveries`)]);
  const deliveries = Array.isArray(listed) ? listed : listed?.deliveries || [];
  const status = h("div", { role: "status" });
  const act = (what, path) => async () => {
    try {
      await send("POST", path);
      await webhookPage(org, name);
      document.querySelector("main [role=status]").textContent = `${what}: done.`;
    } catch (err) {
      status.replaceChildren(h("p", { class: "error", role: "alert" }, explain(err)));
    }
  };
  const last = (d) => d.attempts?.[d.attempts.length - 1];
  show(`Webhook ${hook.displayName || name}`,
    crumbs(link("/", "Organizations"), link(`/${seg(org)}`, org), link(`/${seg(org)}/webhooks`, "Webhooks"), name),
    h("h1", {}, hook.displayName || name),
    h("dl", { class: "facts" }, h("dt", {}, "Sends to"), h("dd", {}, h("code", {}, hook.payloadUrl)),
      h("dt", {}, "Active"), h("dd", {}, hook.active ? "yes" : "no")),
    h("p", {}, h("button", { type: "button", onclick: act("Ping", `${base}/ping`) }, "Ping")), status,
    h("h2", {}, "Deliveries"),
    deliveries.length
      ? h("div", wrapAttrs("Deliveries"), h("table", {},
        h("thead", {}, h("tr", {}, ["When", "Event", "Delivered", "Last answer", ""].map((c) => h("th", { scope: "col" }, c)))),
        h("tbody", {}, deliveries.map((d) => h("tr", {},
          h("td", {}, when(d.timestamp)), h("td", {}, d.event || d.kind),
          h("td", { class: d.delivered ? "result-succeeded" : "result-failed" }, d.delivered ? "yes" : "no"),
          h("td", {}, last(d)?.status ?? last(d)?.error ?? "–"),
          h("td", {}, h("button", { type: "button", class: "quiet", "aria-label": `Redeliver ${d.event || d.kind} of ${new Date(d.timestamp * 1000).toLocaleString()}`,
            onclick: act("Redeliver", `${base}/deliveries/${seg(d.id)}/redeliver`) }, "Redeliver")))))))
      : h("p", {}, "No deliveries yet."));
}

// --- An update's engine events, as the CLI prints them ----------------------------------------

const SYMBOLS = { create: "+", update: "~", delete: "-", replace: "+-", "create-replacement": "++",
  "delete-replaced": "--", same: " ", read: ">", refresh: "~", import: "=", discard: "<" };
const PRESENT = { create: "creating", update: "updating", delete: "deleting", replace: "replacing",
  same: "", read: "reading", refresh: "refreshing", import: "importing" };
const PAST = { create: "created", update: "updated", delete: "deleted", replace: "replaced",
  same: "", read: "read", refresh: "refreshed", import: "imported" };

/** The CLI's color tags (`<{%reset%}>`) and terminal escapes, which a page does not show. */
function plain(text) {
  // eslint-disable-next-line no-control-regex
  return String(text || "").replace(/<\{%[^%]*%\}>/g, "").replace(/\u001b\[[0-9;]*m/g, "");
}

function resourceLine(meta, words) {
  const name = String(meta.urn || "").split("::").pop();
  const verb = words[meta.op] ?? meta.op;
  return `${SYMBOLS[meta.op] ?? " "} ${meta.type} ${name}${verb ? ` ${verb}` : ""}`;
}

/** One engine event as a line of the log (null: the CLI shows nothing for it either). */
function eventLine(e) {
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
function eventsSocket(query) {
  const url = document.querySelector('meta[name="stackhouse-events"]')?.content;
  if (!url || !token()) return null;
  try {
    return new WebSocket(`${url}/?${query}`, ["stackhouse.events", `stackhouse.token.${token()}`]);
  } catch {
    return null;
  }
}

/** Resolves once `ws` is open (true) or has failed (false). */
function opened(ws) {
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
async function followEvents(eventsPath, socketQuery, log, status, state, ended) {
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

let following = { stopped: true, stop() {} };

/** The facts of update `version` (its timeline), and its update id. A version is in the
 * stack's history once its update has ended; the running update (the CLI links to it by the
 * version it will make) is the stack's active one. */
async function updateFacts(base, version) {
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

async function updatePage(org, project, stack, kind, which) {
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
  following.stop();
  const state = { stopped: false, stop() {} };
  following = state;
  // The path's kind segment: `update` for up, refresh and destroy alike, as the CLI posts them.
  const pathKind = kind === "update" ? "update" : "preview";
  const query = new URLSearchParams({ org, stack: `${project}/${stack}`, update: id });
  const refresh = async () => {
    if (!first || state.stopped) return;
    try { first.dl.replaceWith((await updateFacts(base, which)).dl); } catch { /* kept as shown */ }
  };
  await followEvents(`${base}/${pathKind}/${seg(id)}/events`, query, log, status, state, refresh);
}

// --- Routing ---------------------------------------------------------------------------------

/** While a page loads, the old one is marked busy and, past a moment, says so; the next
 * `show` ends it. */
function loading() {
  const main = document.getElementById("main");
  main.setAttribute("aria-busy", "true");
  const timer = setTimeout(() => {
    main.replaceChildren(h("p", { class: "status", role: "status" }, "Loading…"));
  }, 300);
  stopLoading = () => { clearTimeout(timer); main.removeAttribute("aria-busy"); };
}

async function route() {
  following.stop();
  const parts = location.pathname.split("/").filter(Boolean).map(decodeURIComponent);
  if (parts[0] === "signin" || !token()) return signInPage();
  loading();
  try {
    const user = await api("/api/user");
    renderAccount(user);
    if (parts.length === 0) return await orgsPage(user);
    if (parts.join("/") === "account/tokens") return await tokensPage();
    if (parts.length === 1) return await stacksPage(parts[0]);
    if (parts.length === 2 && parts[1] === "members") return await membersPage(parts[0]);
    if (parts.length === 2 && parts[1] === "audit") return await auditPage(parts[0]);
    if (parts.length === 2 && parts[1] === "resources") return await resourcesPage(parts[0]);
    if (parts.length === 2 && parts[1] === "webhooks") return await webhooksPage(parts[0]);
    if (parts.length === 3 && parts[1] === "webhooks") return await webhookPage(parts[0], parts[2]);
    if (parts.length === 2 && parts[1] === "policies") return await policiesPage(parts[0]);
    if (parts.length === 2 && parts[1] === "environments") return await environmentsPage(parts[0]);
    if (parts.length === 4 && parts[1] === "environments") {
      return await environmentPage(parts[0], parts[2], parts[3]);
    }
    if (parts.length === 4 && parts[3] === "deployments") {
      return await deploymentsPage(parts[0], parts[1], parts[2]);
    }
    if (parts.length === 5 && parts[3] === "deployments") {
      return await runPage(parts[0], parts[1], parts[2], parts[4]);
    }
    if (parts.length === 5 && parts[3] === "updates") {
      return await updatePage(parts[0], parts[1], parts[2], "update", parts[4]);
    }
    if (parts.length === 5 && parts[3] === "previews") {
      return await updatePage(parts[0], parts[1], parts[2], "preview", parts[4]);
    }
    if (parts.length === 3) return await stackPage(parts[0], parts[1], parts[2]);
    return show("Not found", h("h1", {}, "Not found"), h("p", {}, link("/", "Organizations")));
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) {
      sessionStorage.removeItem(TOKEN_KEY);
      return signInPage(explain(err));
    }
    show("Error", h("h1", {}, "Something went wrong"), h("p", { class: "error", role: "alert" }, explain(err)));
  }
}

route();
