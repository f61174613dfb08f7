// Client keys, their usage and the gateway's headline figures.
import { api, field, h, stamp, when } from "./lib.js";

const LIMITS = [["rpm", "Requests a minute"], ["concurrency", "At once"], ["daily_requests", "Requests a day"], ["daily_tokens", "Tokens a day"]];

function figures(m) {
  const ok = m.statuses["2xx"] || 0;
  const failed = Object.values(m.upstream_failures).reduce((a, b) => a + b, 0);
  const ms = (s) => (s == null ? "–" : s >= 300 ? "> 300 s" : `≤ ${Math.round(s * 1000)} ms`);
  const tiles = [
    ["Requests (this instance)", m.requests],
    ["Answered 2xx", m.requests ? `${Math.round((ok / m.requests) * 100)}%` : "–"],
    ["Upstream failures", failed],
    ["Median TTFB", ms(m.ttfb_p50_seconds)],
    ["Median overhead", ms(m.overhead_p50_seconds)],
    ["Active accounts", m.accounts.active || 0],
    ["Leases in flight", m.leases_in_flight],
  ];
  return h("dl", { class: "figures", id: "figures" }, tiles.map(([k, v]) => h("div", {}, h("dt", {}, k), h("dd", {}, String(v)))));
}

function usageChart(rows, names) {
  const top = Math.max(1, ...rows.map((r) => r.requests));
  return h("div", { class: "table-wrap" }, h("table", { id: "usage-table" },
    h("thead", {}, h("tr", {}, ["Key", "Requests", "", "Input tokens", "Output tokens", "Statuses", "Upstream failures"].map((t) => h("th", { scope: "col" }, t)))),
    h("tbody", {}, rows.length ? rows.map((r) => h("tr", {},
      h("td", {}, names[r.key] || r.key),
      h("td", {}, r.requests),
      h("td", { class: "bar" }, h("meter", { min: 0, max: top, value: r.requests, "aria-label": `${names[r.key] || r.key}: ${r.requests} requests` })),
      h("td", {}, r.input_tokens), h("td", {}, r.output_tokens),
      h("td", { class: "wrap" }, Object.entries(r.statuses || {}).map(([k, v]) => `${k}: ${v}`).join(", ")),
      h("td", { class: "wrap" }, Object.entries(r.failures || {}).map(([k, v]) => `${k}: ${v}`).join(", ") || "–"),
    )) : h("tr", {}, h("td", { colspan: 7, class: "muted" }, "No request in the last 7 days.")))));
}

export async function render(_name, root) {
  const top = h("div", {});
  const list = h("div", {});
  const usage = h("div", {});
  const made = h("p", { role: "status", id: "key-made" });
  const form = h("form", { id: "key-form", class: "card" },
    h("h2", {}, "New key"),
    field("Name", h("input", { required: true, maxlength: 200 }), "k-name"),
    field("Models (ids or globs, comma-separated; empty: all)", h("input", { placeholder: "grok-4.20-*" }), "k-models"),
    LIMITS.map(([k, label]) => field(label, h("input", { type: "number", min: 1, step: 1 }), `k-${k}`)),
    field("Expires (days from now; empty: never)", h("input", { type: "number", min: 1, step: 1 }), "k-days"),
    h("button", { type: "submit", id: "create-key" }, "Create key"), made);
  root.append(h("h1", {}, "Keys and usage"), top, form, h("h2", {}, "Client keys"), list, h("h2", {}, "Usage, last 7 days"), usage);

  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const v = (id) => form.querySelector(`#${id}`).value.trim();
    const body = { name: v("k-name") };
    if (v("k-models")) body.models = v("k-models").split(",").map((s) => s.trim()).filter(Boolean);
    for (const [k] of LIMITS) if (v(`k-${k}`)) body[k] = Number(v(`k-${k}`));
    if (v("k-days")) body.expires_at = Math.round(Date.now() / 1000 + Number(v("k-days")) * 86400);
    try {
      const key = await api("/admin/api/keys", { method: "POST", body });
      made.replaceChildren("Created ", h("strong", {}, key.name), ". Its secret, shown this once: ", h("code", { id: "new-secret" }, key.key));
      form.reset();
      await draw();
    } catch (e) {
      made.replaceChildren(h("span", { class: "error", role: "alert" }, e.message));
    }
  });

  async function draw() {
    const [{ data: keys }, m, u] = await Promise.all([
      api("/admin/api/keys"), api("/admin/api/metrics/summary"), api("/admin/api/usage?group_by=key"),
    ]);
    top.replaceChildren(figures(m));
    const names = Object.fromEntries(keys.map((k) => [k.id, k.name]));
    list.replaceChildren(h("div", { class: "table-wrap" }, h("table", { id: "keys-table" },
      h("thead", {}, h("tr", {}, ["Name", "Key", "Models", ...LIMITS.map(([, l]) => l), "Expires", "Created", ""].map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, keys.length ? keys.map((k) => h("tr", {},
        h("td", {}, k.name), h("td", {}, h("code", {}, k.key)), h("td", { class: "wrap" }, k.models.join(", ") || "all"),
        LIMITS.map(([f]) => h("td", {}, k[f] ?? "–")),
        h("td", { title: stamp(k.expires_at) }, k.expires_at ? when(k.expires_at) : "never"),
        h("td", { title: stamp(k.created_at) }, when(k.created_at)),
        h("td", {}, h("button", { type: "button", class: "quiet", "aria-label": `Revoke ${k.name}`, onclick: async (e) => {
          if (!confirm(`Revoke ${k.name}? Its clients get 401 from now on.`)) return;
          e.target.disabled = true;
          await api(`/admin/api/keys/${encodeURIComponent(k.id)}`, { method: "DELETE" });
          await draw();
        } }, "Revoke")))) : h("tr", {}, h("td", { colspan: 10, class: "muted" }, "No client key yet: the root keys of GROKGATE_API_KEYS only."))))));
    usage.replaceChildren(usageChart(u.data, names));
  }
  await draw();
}
