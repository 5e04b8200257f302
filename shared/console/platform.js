// What runs beside the stacks: deployments (runs, logs, schedules), environments (ESC),
// resource search and policies.

import {
  h, show, crumbs, wrapAttrs, token, api, explain, go, link, seg, send, orgPage, plain, follow
} from "./core.js";

/** A stack's deployment runs (newest first) and schedules, and a form to run one now. */
export async function deploymentsPage(org, project, stack) {
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
export async function runPage(org, project, stack, id) {
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
  const state = follow();
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

/** An organization's environments. */
export async function environmentsPage(org) {
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
export function escPlain(v, reveal) {
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
export async function environmentPage(org, project, name) {
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

/** Search the organization's resources (Pulumi's query language: `type:aws:s3/bucket:Bucket
 * stack:prod`), with suggestions for the term being typed. */
export async function resourcesPage(org) {
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

/** The organization's policy packs (with their versions) and policy groups. */
export async function policiesPage(org) {
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
