// The Stackhouse console: pages over the same REST API the Pulumi CLI uses, with the caller's
// access token (kept in this tab's session storage, never in a URL). No build step and no
// dependency: the pages are lists, tables and forms, which the DOM builds well enough, and the
// whole console stays a few kilobytes (docs/BENCHMARKS.md, "Web console").
//
// Paths are the ones the Pulumi CLI prints when it knows a console (PULUMI_CONSOLE_DOMAIN):
// /<org>/<project>/<stack> for a stack; the rest are the console's own.
//
// This module is the entry point: sign-in, the account bar and the router; the pages live in
// stacks.js, updates.js, access.js and platform.js, their common parts in core.js.

import {
  TOKEN_KEY, h, show, ApiError, token, api, explain, go, link, loading, onNavigate, stopFollowing
} from "./core.js";
import { orgsPage, stacksPage, stackPage } from "./stacks.js";
import { tokensPage, membersPage, auditPage, webhooksPage, webhookPage } from "./access.js";
import {
  deploymentsPage, runPage, environmentsPage, environmentPage, resourcesPage, policiesPage
} from "./platform.js";
import { updatePage } from "./updates.js";

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

/** Links to console pages navigate in place; others (and modified clicks) are left alone. */
document.addEventListener("click", (e) => {
  const a = e.target instanceof Element ? e.target.closest("a[href]") : null;
  if (!a || a.origin !== location.origin || a.target || a.hasAttribute("download")) return;
  if (e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
  e.preventDefault();
  go(a.pathname + a.search);
});

window.addEventListener("popstate", () => route());


async function route() {
  stopFollowing();
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
    if (parts.length === 2 && parts[1] === "tokens") return await tokensPage(parts[0]);
    if (parts.length === 4 && parts[1] === "teams" && parts[3] === "tokens") {
      return await tokensPage(parts[0], parts[2]);
    }
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

onNavigate(route);
route();
