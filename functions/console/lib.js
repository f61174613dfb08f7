// Shared helpers of the console's views: DOM building, the admin API, formatting.
export const session = { csrf: "", onExpired: () => {} };

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === false || v == null) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) if (c != null && c !== false) el.append(c instanceof Node ? c : String(c));
  return el;
}

export async function api(path, { method = "GET", body, raw } = {}) {
  const headers = {};
  if (method !== "GET") headers["x-csrf-token"] = session.csrf;
  if (body !== undefined && !raw) { headers["content-type"] = "application/json"; body = JSON.stringify(body); }
  const r = await fetch(path, { method, body, headers, credentials: "same-origin" });
  const text = await r.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = text; }
  if (r.status === 401 && !path.endsWith("/login")) session.onExpired();
  if (!r.ok) throw new Error((data && data.error && data.error.message) || `${r.status} ${r.statusText}`);
  return data;
}

export function when(ts) {
  if (!ts) return "never";
  const s = Math.round(Date.now() / 1000 - ts);
  const abs = Math.abs(s);
  const txt = abs < 60 ? `${abs}s` : abs < 3600 ? `${Math.round(abs / 60)}m` : abs < 86400 ? `${Math.round(abs / 3600)}h` : `${Math.round(abs / 86400)}d`;
  return s >= 0 ? `${txt} ago` : `in ${txt}`;
}

export function stamp(ts) { return ts ? new Date(ts * 1000).toLocaleString() : ""; }

export function bytes(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1048576) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1073741824) return `${(n / 1048576).toFixed(1)} MiB`;
  return `${(n / 1073741824).toFixed(2)} GiB`;
}

export function field(label, control, id) {
  control.id = id;
  return h("div", {}, h("label", { for: id }, label), control);
}

export function options(values, selected = "") {
  return values.map(([v, t]) => h("option", { value: v, selected: v === selected }, t));
}

export const clientKey = {
  get: () => localStorage.getItem("gg-client-key") || "",
  set: (v) => localStorage.setItem("gg-client-key", v),
};
