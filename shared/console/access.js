// Access and oversight: the caller's access tokens, an organization's members and teams, its
// audit log, and its webhooks with their deliveries.

import {
  h, show, crumbs, wrapAttrs, when, ApiError, token, api, explain, link, seg, send, orgPage,
  saveFile
} from "./core.js";

export const DAY = 24 * 60 * 60;

/** Whose tokens a tokens page shows: the signed-in user's, an organization's or a team's. */
export function tokenOwner(org, team) {
  if (!org) {
    return {
      api: "/api/user/tokens", title: "Access tokens", named: false,
      about: "Tokens act as you, for the Pulumi CLI (PULUMI_ACCESS_TOKEN) and the API.",
      crumbs: [link("/", "Organizations"), "Access tokens"], page: () => tokensPage(),
    };
  }
  const orgLink = link(`/${seg(org)}`, org);
  if (!team) {
    return {
      api: `/api/orgs/${seg(org)}/tokens`, title: `Tokens of ${org}`, named: true, admin: true,
      about: "Organization tokens act for the organization, not a person (CI, automation); an admin token may administer it.",
      crumbs: [link("/", "Organizations"), orgLink, "Tokens"], page: () => tokensPage(org),
    };
  }
  return {
    api: `/api/orgs/${seg(org)}/teams/${seg(team)}/tokens`, title: `Tokens of team ${team}`, named: true,
    about: "Team tokens have exactly the team's permissions.",
    crumbs: [link("/", "Organizations"), orgLink, link(`/${seg(org)}/members`, "Members and teams"), team],
    page: () => tokensPage(org, team),
  };
}

/** Access tokens of the signed-in user (no `org`), of organization `org`, or of its team
 * `team`: made here (the value shown this once), revoked here. */
export async function tokensPage(org, team) {
  const owner = tokenOwner(org, team);
  const listed = await api(owner.api);
  const tokens = (listed.tokens || []).slice().sort((a, b) => b.created - a.created);
  const name = owner.named
    ? h("input", { id: "token-name", type: "text", required: true, maxlength: 100 }) : null;
  const description = h("input", { id: "token-description", type: "text", required: !owner.named, maxlength: 200 });
  const expiry = h("select", { id: "token-expiry" },
    h("option", { value: "0" }, "never"), h("option", { value: "30" }, "in 30 days"),
    h("option", { value: "90" }, "in 90 days"), h("option", { value: "365" }, "in a year"));
  const admin = owner.admin ? h("input", { id: "token-admin", type: "checkbox" }) : null;
  const made = h("div", { role: "status", class: "made" });
  const form = h("form", {
    class: "stacked",
    onsubmit: async (e) => {
      e.preventDefault();
      const days = Number(expiry.value);
      const body = {
        description: description.value.trim(),
        expires: days ? Math.floor(Date.now() / 1000) + days * DAY : 0,
      };
      if (name) body.name = name.value.trim();
      if (admin) body.admin = admin.checked;
      try {
        const r = await send("POST", owner.api, body);
        await owner.page();
        document.querySelector("main [role=status].made").replaceChildren(
          h("p", {}, "The new token. Copy it now: it is not shown again."),
          h("output", { id: "new-token", class: "secret-value" }, r.tokenValue));
      } catch (err) {
        made.replaceChildren(h("p", { class: "error", role: "alert" }, explain(err)));
      }
    },
  },
  name ? [h("label", { for: "token-name" }, "Name"), name] : null,
  h("label", { for: "token-description" }, "Description"), description,
  h("label", { for: "token-expiry" }, "Expires"), expiry,
  admin ? h("label", { class: "check" }, admin, " May administer the organization") : null,
  h("button", { type: "submit" }, "Create token"));
  show(owner.title,
    crumbs(...owner.crumbs),
    h("h1", {}, owner.title),
    h("p", {}, owner.about),
    h("h2", {}, "Create a token"), form, made,
    h("h2", {}, "Tokens"),
    tokens.length
      ? h("div", wrapAttrs("Tokens"), h("table", {},
        h("thead", {}, h("tr", {}, ["Token", "Created", "Last used", "Expires", ""].map((c) =>
          h("th", { scope: "col" }, c)))),
        h("tbody", {}, tokens.map((t) => tokenRow(owner, t)))))
      : h("p", {}, "No tokens."));
}

/** One token of the list, with a revoke that asks once more before it acts. */
export function tokenRow(owner, t) {
  const label = owner.named ? t.name : t.description || t.name;
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
      await send("DELETE", `${owner.api}/${seg(t.id)}`);
      await owner.page();
      document.querySelector("main [role=status].made").textContent = `Revoked “${label}”.`;
    } catch (err) {
      cell.replaceChildren(h("span", { class: "error" }, explain(err)));
    }
  };
  ask();
  return h("tr", {}, h("td", {}, label, t.admin ? " (admin)" : ""), h("td", {}, when(t.created)),
    h("td", {}, t.lastUsed ? when(t.lastUsed) : "never"), h("td", {}, t.expires ? when(t.expires) : "never"),
    cell);
}

/** An organization's members with their roles, and its teams. */
export async function membersPage(org) {
  const [members, teams] = await Promise.all([
    api(`/api/orgs/${seg(org)}/members`), api(`/api/orgs/${seg(org)}/teams`)]);
  const list = members.members || [];
  const teamList = teams.teams || [];
  orgPage(org, "members", "Members and teams",
    h("p", {}, link(`/${seg(org)}/tokens`, "Organization tokens")),
    h("h2", {}, "Members"),
    h("div", wrapAttrs("Members"), h("table", {},
      h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "User"), h("th", { scope: "col" }, "Role"),
        h("th", { scope: "col" }, "Member since"))),
      h("tbody", {}, list.map((m) => h("tr", {}, h("td", {}, m.user?.githubLogin || m.user?.name),
        h("td", {}, m.role), h("td", {}, when(m.created))))))),
    h("h2", {}, "Teams"),
    teamList.length
      ? h("ul", { class: "plain" }, teamList.map((t) => h("li", {}, h("strong", {}, t.displayName || t.name),
        t.description ? ` — ${t.description}` : "", " · ",
        link(`/${seg(org)}/teams/${seg(t.name)}/tokens`, `Tokens of ${t.name}`))))
      : h("p", {}, "No teams."));
}

/** Seconds since the epoch of a date field's day (its start, or its end with `end`). */
export function dayBound(field, end) {
  if (!field.value) return null;
  const t = new Date(`${field.value}T00:00:00`).getTime() / 1000;
  return end ? t + DAY - 1 : t;
}

/** The organization's audit log (administrators): newest first, narrowed by time on the server
 * and by user or event here; CSV of the same time range. */
export async function auditPage(org) {
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

/** The organization's webhooks (administrators). */
export async function webhooksPage(org) {
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
export async function webhookPage(org, name) {
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
