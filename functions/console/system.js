// Jobs, media and settings: what the gateway holds besides the pool.
import { api, bytes, h, stamp, when } from "./lib.js";

function table(id, heads, rows, empty) {
  return h("div", { class: "table-wrap" }, h("table", { id },
    h("thead", {}, h("tr", {}, heads.map((t) => h("th", { scope: "col" }, t)))),
    h("tbody", {}, rows.length ? rows : h("tr", {}, h("td", { colspan: heads.length, class: "muted" }, empty)))));
}

async function jobs(root) {
  const body = h("div", {});
  const reload = h("button", { type: "button", class: "quiet", onclick: draw }, "Reload");
  root.append(h("h1", {}, "Jobs"), h("p", { class: "muted" }, "Video jobs of every configured API key, newest first. ", reload), body);
  async function draw() {
    const { data } = await api("/admin/api/jobs?limit=100");
    body.replaceChildren(table("jobs-table", ["Id", "Status", "Progress", "Asked", "Error", "Attempts", "Created", "Updated"], data.map((j) => h("tr", {},
      h("td", {}, h("code", {}, j.id)),
      h("td", {}, h("span", { class: `pill s-${j.status === "completed" ? "active" : j.status === "failed" ? "blocked" : "cooling"}` }, j.status)),
      h("td", {}, h("progress", { max: 100, value: j.progress, "aria-label": `${j.id} progress` }), ` ${j.progress}%`),
      h("td", { class: "wrap" }, [j.params.model, j.params.seconds && `${j.params.seconds}s`, j.params.size, j.params.prompt].filter(Boolean).join(" · ")),
      h("td", { class: "wrap" }, j.error_code ? h("span", { class: "bad" }, `${j.error_code}: ${j.error_message}`) : ""),
      h("td", {}, j.attempts),
      h("td", { title: stamp(j.created_at) }, when(j.created_at)),
      h("td", { title: stamp(j.updated_at) }, when(j.updated_at)))), "No video job yet."));
  }
  await draw();
}

async function media(root) {
  const summary = h("p", { role: "status", id: "media-summary" });
  const body = h("div", {});
  root.append(h("h1", {}, "Media"), summary, body);
  async function draw() {
    const m = await api("/admin/api/media");
    const retention = m.retention_seconds ? `kept ${Math.round(m.retention_seconds / 86400 * 10) / 10} days` : "kept forever";
    summary.textContent = `${m.count} file(s), ${bytes(m.total_bytes)} in the ${m.store}${m.cap_bytes ? ` of ${bytes(m.cap_bytes)}` : " (no size cap configured)"}; ${retention}.`;
    body.replaceChildren(table("media-table", ["File", "Size", "Age", ""], m.data.map((f) => h("tr", {},
      h("td", {}, h("code", {}, f.id)), h("td", {}, bytes(f.size)), h("td", { title: stamp(f.created_at) }, when(f.created_at)),
      h("td", {}, h("button", { type: "button", class: "quiet", "aria-label": `Delete ${f.id}`, onclick: async (e) => {
        if (!confirm(`Delete ${f.id}?`)) return;
        e.target.disabled = true;
        await api(`/admin/api/media/${encodeURIComponent(f.id)}`, { method: "DELETE" });
        await draw();
      } }, "Delete")))), "Nothing stored."));
  }
  await draw();
}

function editor(s, pending) {
  if (s.type === "bool") {
    const box = h("input", { type: "checkbox", checked: s.value === true, "aria-label": s.name });
    box.addEventListener("change", () => { pending[s.name] = box.checked; });
    return box;
  }
  if (s.name === "image_format") {
    const sel = h("select", { "aria-label": s.name }, ["url", "b64_json", "markdown"].map((v) => h("option", { value: v, selected: v === s.value }, v)));
    sel.addEventListener("change", () => { pending[s.name] = sel.value; });
    return sel;
  }
  const input = h("input", { type: "number", step: s.type === "int" ? 1 : "any", value: s.value, "aria-label": s.name, size: 8 });
  input.addEventListener("change", () => { pending[s.name] = s.type === "int" ? parseInt(input.value, 10) : parseFloat(input.value); });
  return input;
}

async function settings(root) {
  const status = h("p", { role: "status", id: "settings-status" });
  const behaviour = h("div", {});
  const deployment = h("div", {});
  root.append(h("h1", {}, "Settings"), h("section", { class: "card", "aria-labelledby": "beh-h" },
    h("h2", { id: "beh-h" }, "Behaviour (editable)"),
    h("p", { class: "hint" }, "Kept in the store as overrides of the environment; every instance applies them within a few seconds."),
    behaviour, status),
  h("section", { "aria-labelledby": "dep-h" }, h("h2", { id: "dep-h" }, "Deployment (read-only: set in the environment, then redeploy)"), deployment));

  async function draw(data) {
    data = data || await api("/admin/api/settings");
    const pending = {};
    const rows = data.settings.filter((s) => s.editable).map((s) => h("tr", {},
      h("td", {}, h("code", {}, s.variable)), h("td", {}, editor(s, pending)),
      h("td", {}, s.source, s.source.startsWith("override") ? h("div", { class: "muted" }, `deployed: ${s.deployed}`) : ""),
      h("td", {}, s.source.startsWith("override") ? h("button", { type: "button", class: "quiet", onclick: () => save({ [s.name]: null }) }, "Reset") : ""),
      h("td", { class: "wrap muted" }, s.description)));
    behaviour.replaceChildren(table("behaviour-table", ["Setting", "Value", "Source", "", "What it does"], rows, ""),
      h("p", {}, h("button", { type: "button", id: "save-settings", onclick: () => save(pending) }, "Save changes")));
    deployment.replaceChildren(table("deployment-table", ["Variable", "Value", "Source", "What it does"], data.settings.filter((s) => !s.editable).map((s) => h("tr", {},
      h("td", {}, h("code", {}, s.variable)), h("td", { class: "wrap" }, h("code", {}, String(s.value ?? "—"))), h("td", {}, s.source), h("td", { class: "wrap muted" }, s.description))), ""));
  }
  async function save(changes) {
    if (!Object.keys(changes).length) { status.textContent = "Nothing changed."; return; }
    try {
      const data = await api("/admin/api/settings", { method: "PUT", body: { overrides: changes } });
      status.textContent = `Saved; applied by every instance within ${data.applied_within_seconds} s.`;
      await draw(data);
    } catch (e) {
      status.textContent = e.message;
    }
  }
  await draw();
}

export async function render(name, root) {
  return ({ jobs, media, settings })[name](root);
}
