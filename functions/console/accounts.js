// Accounts: the pool as the store filters and pages it, import, export, batch actions.
import { api, field, h, options, stamp, when } from "./lib.js";

const STATES = [["", "any state"], ["active", "active"], ["cooling", "cooling"], ["expired", "expired"], ["blocked", "blocked"], ["disabled", "disabled"]];
const TIERS = [["", "any tier"], ["basic", "basic"], ["super", "super"], ["heavy", "heavy"]];
const ACTIONS = [["refresh", "Refresh quota"], ["enable", "Enable"], ["disable", "Disable"], ["reset", "Reset cooling"], ["accept_tos", "Accept the ToS"], ["nsfw", "Enable NSFW (birth date, then the switch)"]];
const PAGE = 50;

export async function render(_name, root) {
  const filters = { status: "", tier: "", tag: "", q: "" };
  const cursors = [""];  // the cursor of each page seen, for "previous"
  let page = null;
  const selected = new Set();

  const status = h("select", {}, options(STATES));
  const tier = h("select", {}, options(TIERS));
  const tag = h("input", { type: "text", placeholder: "tag" });
  const q = h("input", { type: "search", placeholder: "id, note or tag" });
  const filterForm = h("form", { class: "row", role: "search", "aria-label": "Filter accounts", onsubmit: (e) => {
    e.preventDefault();
    Object.assign(filters, { status: status.value, tier: tier.value, tag: tag.value.trim(), q: q.value.trim() });
    cursors.length = 0;
    load("");
  } },
    field("State", status, "f-state"), field("Tier", tier, "f-tier"), field("Tag", tag, "f-tag"), field("Search", q, "f-text"),
    h("div", {}, h("button", { type: "submit" }, "Filter")));

  const body = h("tbody", {});
  const all = h("input", { type: "checkbox", "aria-label": "Select every account on this page", onchange: () => {
    for (const a of page ? page.data : []) all.checked ? selected.add(a.id) : selected.delete(a.id);
    drawRows();
  } });
  const table = h("div", { class: "table-wrap" }, h("table", { id: "accounts-table" },
    h("thead", {}, h("tr", {}, h("th", {}, all), ...["Id", "Token", "Tier", "State", "Quota (left/total)", "In flight", "Last use", "Note", "Tags"].map((t) => h("th", { scope: "col" }, t)))),
    body));
  const info = h("span", { class: "muted", id: "page-info" });
  const prev = h("button", { type: "button", class: "quiet", onclick: () => { cursors.pop(); load(cursors.pop() || ""); } }, "Previous");
  const next = h("button", { type: "button", class: "quiet", onclick: () => load(page.next_cursor) }, "Next");
  const pager = h("div", { class: "pager" }, prev, next, info);

  const action = h("select", {}, options(ACTIONS));
  const run = h("button", { type: "button", id: "run-batch", onclick: startBatch }, "Run on selection");
  const selInfo = h("span", { class: "muted", id: "selection-info" });
  const progress = h("div", { id: "batch" });
  const batchCard = h("section", { class: "card", "aria-labelledby": "batch-h" },
    h("h2", { id: "batch-h" }, "Batch actions"),
    h("div", { class: "row" }, field("Action", action, "b-action"), h("div", {}, run), selInfo),
    progress);

  const importText = h("textarea", { placeholder: "One sso token per line, or JSON: [{\"token\": \"…\", \"tier\": \"super\", \"note\": \"…\", \"tags\": [\"…\"]}]" });
  const importFile = h("input", { type: "file", accept: ".txt,.json,.csv,text/plain,application/json" });
  const importTier = h("select", {}, options([["auto", "detect from the upstream"], ...TIERS.slice(1)], "auto"));
  const importResult = h("p", { id: "import-result", role: "status" });
  const importCard = h("section", { class: "card", "aria-labelledby": "import-h" },
    h("h2", { id: "import-h" }, "Import and export"),
    field("Tokens", importText, "i-text"),
    h("div", { class: "row" }, field("Or a file", importFile, "i-file"), field("Tier (when a line names none)", importTier, "i-tier"),
      h("div", {}, h("button", { type: "button", id: "import", onclick: doImport }, "Import")),
      h("div", {}, h("button", { type: "button", class: "quiet", onclick: doExport }, "Export inventory"))),
    importResult,
    h("p", { class: "hint" }, "The console never receives full tokens: its export lists ids, masked tokens, tiers, states, notes and tags. A full export (for moving a pool) is `GET /admin/api/accounts/export` with the admin key as Bearer."));

  root.append(h("h1", {}, "Accounts"), h("section", { class: "card" }, filterForm), batchCard, pager, table, importCard);

  function quota(a) {
    return Object.entries(a.quotas).map(([m, v]) => `${m} ${v.remaining}/${v.total}`).join(" · ");
  }
  function state(a) {
    const bits = [h("span", { class: `pill s-${a.status}` }, a.status)];
    if (a.status === "cooling" && a.cooling_until) bits.push(" until ", h("time", { datetime: new Date(a.cooling_until * 1000).toISOString(), title: stamp(a.cooling_until) }, when(a.cooling_until)));
    if (a.reason) bits.push(h("div", { class: "muted" }, a.reason));
    return bits;
  }
  function drawRows() {
    body.replaceChildren(...(page.data.length ? page.data.map((a) => h("tr", {},
      h("td", {}, h("input", { type: "checkbox", "aria-label": `Select ${a.id}`, checked: selected.has(a.id), onchange: (e) => { e.target.checked ? selected.add(a.id) : selected.delete(a.id); drawSel(); } })),
      h("td", {}, h("code", {}, a.id)), h("td", {}, h("code", {}, a.token)), h("td", {}, a.tier), h("td", { class: "wrap" }, state(a)),
      h("td", {}, quota(a)), h("td", {}, a.in_flight), h("td", { title: stamp(a.last_used_at) }, when(a.last_used_at)),
      h("td", { class: "wrap" }, a.note), h("td", { class: "wrap" }, a.tags.map((t) => h("span", { class: "tag" }, t))))) :
      [h("tr", {}, h("td", { colspan: 10, class: "muted" }, "No account matches."))]));
    all.checked = page.data.length > 0 && page.data.every((a) => selected.has(a.id));
    drawSel();
  }
  function drawSel() {
    selInfo.textContent = `${selected.size} selected`;
    run.disabled = selected.size === 0;
  }
  async function load(cursor) {
    const params = new URLSearchParams({ limit: PAGE });
    for (const [k, v] of Object.entries(filters)) if (v) params.set(k, v);
    if (cursor) params.set("cursor", cursor);
    page = await api(`/admin/api/accounts?${params}`);
    cursors.push(cursor);
    info.textContent = `page ${cursors.length} · ${page.data.length} shown`;
    prev.disabled = cursors.length <= 1;
    next.disabled = !page.next_cursor;
    drawRows();
  }

  async function startBatch() {
    run.disabled = true;
    try {
      const batch = await api("/admin/api/batches", { method: "POST", body: { action: action.value, ids: [...selected] } });
      location.hash = `#accounts?batch=${batch.id}`;
      await follow(batch.id);
    } catch (e) {
      progress.replaceChildren(h("p", { class: "error", role: "alert" }, e.message));
    } finally {
      drawSel();
    }
  }
  async function follow(id) {
    const bar = h("progress", { max: 1, value: 0, id: "batch-progress", "aria-label": "Batch progress" });
    const label = h("p", { role: "status", id: "batch-status" });
    const list = h("ol", { class: "results", id: "batch-results" });
    progress.replaceChildren(bar, label, list);
    for (;;) {
      const b = await api(`/admin/api/batches/${id}`);  // each poll advances the batch by one step
      bar.max = b.total;
      bar.value = b.done;
      label.textContent = `${b.action}: ${b.done} of ${b.total} done, ${b.ok} ok, ${b.failed} failed${b.state === "done" ? " — finished" : "…"}`;
      list.replaceChildren(...b.results.map((r) => h("li", { class: r.ok ? "ok" : "bad" }, h("code", {}, r.id), ` ${r.detail}`)));
      if (b.state === "done") break;
      await new Promise((ok) => setTimeout(ok, 400));
      if (!progress.isConnected) return;  // the page was left: the batch goes on (cron or the next visit)
    }
    await load(cursors.pop() || "");
  }

  async function doImport() {
    let text = importText.value;
    if (importFile.files[0]) text = await importFile.files[0].text();
    if (!text.trim()) { importResult.textContent = "Paste tokens or choose a file."; return; }
    try {
      const r = await api(`/admin/api/accounts/import?tier=${importTier.value}`, { method: "POST", body: text, raw: true });
      importResult.textContent = `Added ${r.added}, skipped ${r.skipped} (already in the pool), invalid ${r.invalid}.`;
      importText.value = "";
      cursors.length = 0;
      await load("");
    } catch (e) {
      importResult.textContent = e.message;
    }
  }
  async function doExport() {
    const data = await api("/admin/api/accounts/export");
    const url = URL.createObjectURL(new Blob([JSON.stringify(data, null, 2)], { type: "application/json" }));
    h("a", { href: url, download: "grokgate-accounts.json" }).click();
    setTimeout(() => URL.revokeObjectURL(url), 1000);
  }

  cursors.length = 0;
  await load("");
  const resume = new URLSearchParams(location.hash.split("?")[1] || "").get("batch");
  if (resume) follow(resume).catch((e) => progress.replaceChildren(h("p", { class: "error" }, e.message)));
  else {
    const recent = await api("/admin/api/batches");
    const running = recent.data.find((b) => b.state === "running");
    if (running) follow(running.id);
  }
}
