// The console's shell: login, the session's CSRF token, and a hash router over the views.
import { api, h, session } from "./lib.js";

const views = {
  accounts: () => import("./accounts.js"),
  keys: () => import("./keys.js"),
  jobs: () => import("./system.js"),
  media: () => import("./system.js"),
  settings: () => import("./system.js"),
  chat: () => import("./playground.js"),
  images: () => import("./playground.js"),
  voice: () => import("./voice.js"),
};
const $ = (id) => document.getElementById(id);

function showLogin(message = "") {
  $("nav").hidden = true;
  $("view").replaceChildren();
  $("login").hidden = false;
  $("login-error").textContent = message;
  $("admin-key").focus();
}
session.onExpired = () => showLogin("Your session ended: log in again.");

async function start() {
  try {
    const s = await api("/admin/api/session");
    session.csrf = s.csrf;
    session.openGateway = s.open_gateway;
  } catch {
    showLogin();
    return;
  }
  $("login").hidden = true;
  $("nav").hidden = false;
  route();
}

async function route() {
  if ($("nav").hidden) return;
  const name = (location.hash.slice(1).split("?")[0]) || "accounts";
  const load = views[name] || views.accounts;
  for (const a of document.querySelectorAll("nav a")) {
    if (a.getAttribute("href") === `#${name}`) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  const view = $("view");
  view.replaceChildren(h("p", { class: "muted" }, "Loading…"));
  const mod = await load();
  const el = h("div", {});
  view.replaceChildren(el);
  document.title = `${name[0].toUpperCase()}${name.slice(1)} · grokgate console`;
  try {
    await mod.render(name, el);
  } catch (e) {
    el.append(h("p", { class: "error", role: "alert" }, String(e.message || e)));
  }
}

$("login-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const button = ev.target.querySelector("button");
  button.disabled = true;
  try {
    await api("/admin/login", { method: "POST", body: { key: $("admin-key").value } });
    $("admin-key").value = "";
    await start();
  } catch (e) {
    $("login-error").textContent = e.message;
  } finally {
    button.disabled = false;
  }
});
$("logout").addEventListener("click", async () => {
  try { await api("/admin/logout", { method: "POST" }); } finally { showLogin("Logged out."); }
});
window.addEventListener("hashchange", route);
start();
