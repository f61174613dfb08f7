// Jobs, media and settings: what the gateway holds besides the pool.
import { h } from "./lib.js";

export async function render(name, root) {
  root.append(h("h1", {}, name), h("p", { class: "muted" }, "…"));
}
