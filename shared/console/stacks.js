// Organizations, an organization's stacks, and a stack's page: its tags, outputs (secrets
// behind "Show"), resources as a tree, state download and updates.

import {
  h, show, crumbs, wrapAttrs, when, api, explain, link, seg, send, orgNav, changeSummary, saveFile
} from "./core.js";

export async function orgsPage(user) {
  const orgs = user.organizations || [];
  show("Organizations",
    h("h1", {}, "Organizations"),
    orgs.length
      ? h("ul", { class: "plain" }, orgs.map((o) => h("li", {}, link(`/${seg(o.githubLogin)}`, o.name || o.githubLogin))))
      : h("p", {}, "You belong to no organization yet."));
}

/** Every stack of `org` the caller may read, most recently updated first, with how its last
 * update went: the stack search, which reads the stack items (no index to wait for), 500 a
 * page. */
async function allStacks(org) {
  const out = [];
  for (let page = 1; page <= 100; page++) {
    const r = await api(`/api/orgs/${seg(org)}/search/stacks?sort=lastUpdate&size=500&page=${page}`);
    out.push(...(r.stacks || []));
    if (!r.pagination?.next) break;
  }
  return out;
}

export async function stacksPage(org) {
  const stacks = await allStacks(org);
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
      h("td", { class: `result-${s.lastResult}` }, s.lastResult === "never" ? "never updated" : s.lastResult),
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
        h("th", { scope: "col" }, "Last update"), h("th", { scope: "col" }, "Result"),
        h("th", { scope: "col", class: "num" }, "Resources"))),
      body)));
}

export async function stackPage(org, project, stack) {
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

/** The signature Pulumi marks secret values with in a state. */
export const SECRET_SIG = "4dabf18193072939515e22adb298388d";

export function isSecret(v) {
  return v !== null && typeof v === "object" && v[SECRET_SIG] === "1b47061264138c4ac30d75fd1eb44270";
}

/** A value as text: JSON for objects, with secrets shown as [secret]. */
export function valueText(v) {
  if (typeof v === "string") return v;
  return JSON.stringify(v, (k, x) => (isSecret(x) ? "[secret]" : x), 2);
}

/** The stack's outputs; a secret stays hidden until "Show", which asks the API to decrypt it
 * (callers who may change the stack may; others are told why not). */
export function outputsList(base, outputs) {
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
export function resourceTree(all) {
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

/** Saves the stack's state (as `pulumi stack export` writes it) as a file. */
export async function downloadState(base, name) {
  const state = await api(`${base}/export`);
  saveFile(new Blob([JSON.stringify(state, null, 4)], { type: "application/json" }), `${name}.json`);
}
