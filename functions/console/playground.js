// The playground: chat and images through the gateway's own /v1 routes, with a client key.
import { clientKey, field, h, options, session } from "./lib.js";

const WEATHER_TOOL = {
  type: "function",
  function: {
    name: "get_weather",
    description: "The current weather in a city.",
    parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
  },
};

function keyField(onChange = () => {}) {
  const input = h("input", { type: "password", value: clientKey.get(), autocomplete: "off", placeholder: session.openGateway ? "not needed: the gateway is open" : "sk-…" });
  input.addEventListener("change", () => { clientKey.set(input.value.trim()); onChange(); });
  return field("Client API key", input, "client-key");
}

async function v1(path, init = {}) {
  const headers = { "content-type": "application/json" };
  const key = clientKey.get();
  if (key) headers.authorization = `Bearer ${key}`;
  const r = await fetch(path, { ...init, headers });
  if (!r.ok) {
    let message = `${r.status} ${r.statusText}`;
    try { message = (await r.json()).error.message || message; } catch { /* not JSON */ }
    throw new Error(message);
  }
  return r;
}

// Server-sent events from a fetch body: yields each `data:` payload, parsed.
async function* events(response) {
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value;
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      const data = block.split("\n").filter((l) => l.startsWith("data:")).map((l) => l.slice(5).trimStart()).join("\n");
      if (!data) continue;
      if (data === "[DONE]") return;
      yield JSON.parse(data);
    }
  }
}

async function renderChat(root) {
  const model = h("select", {}, h("option", {}, "grok-4.20-0309-reasoning"));
  const tools = h("input", { type: "checkbox" });
  const prompt = h("textarea", { placeholder: "Ask something (Ctrl+Enter sends)", required: true });
  const log = h("div", { class: "chat-log", id: "chat-log", "aria-live": "polite" });
  const error = h("p", { class: "error", role: "alert" });
  const send = h("button", { type: "submit", id: "send" }, "Send");
  const messages = [];
  const form = h("form", { class: "card", onsubmit: (e) => { e.preventDefault(); ask(); } },
    h("div", { class: "row" }, keyField(loadModels), field("Model", model, "model"),
      h("div", { class: "inline" }, h("label", { for: "tools" }, "Offer a get_weather tool"), tools)),
    field("Message", prompt, "prompt"), h("div", { class: "row" }, send,
      h("button", { type: "button", class: "quiet", onclick: () => { messages.length = 0; log.replaceChildren(); } }, "New chat")),
    error);
  tools.id = "tools";
  prompt.addEventListener("keydown", (e) => { if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) { e.preventDefault(); ask(); } });
  root.append(h("h1", {}, "Chat"), form, log);

  function loadModels() {
    error.textContent = "";
    v1("/v1/models").then((r) => r.json()).then((m) => {
      const ids = m.data.map((x) => x.id).filter((id) => !/imagine/.test(id));
      model.replaceChildren(...options(ids.map((id) => [id, id]), ids.includes("grok-4.20-0309-reasoning") ? "grok-4.20-0309-reasoning" : ids[0]));
    }).catch((e) => { error.textContent = `Models: ${e.message}`; });
  }
  loadModels();

  async function ask() {
    const text = prompt.value.trim();
    if (!text) return;
    error.textContent = "";
    send.disabled = true;
    messages.push({ role: "user", content: text });
    log.append(h("div", { class: "msg user" }, h("div", { class: "who" }, "you"), h("div", { class: "answer" }, text)));
    prompt.value = "";
    const reasoning = h("div", { class: "reasoning", hidden: true });
    const thinking = h("details", { class: "thinking", hidden: true }, h("summary", {}, "Reasoning"), reasoning);
    const answer = h("div", { class: "answer" });
    const toolBox = h("div", { class: "tools", hidden: true });
    const meta = h("div", { class: "muted" });
    log.append(h("div", { class: "msg assistant" }, h("div", { class: "who" }, model.value), thinking, toolBox, answer, meta));
    const calls = [];
    const facts = { finish: "", usage: "" };
    const note = () => { meta.textContent = [facts.finish && `finish: ${facts.finish}`, facts.usage].filter(Boolean).join(" · "); };
    try {
      const body = { model: model.value, stream: true, messages, stream_options: { include_usage: true } };
      if (tools.checked) body.tools = [WEATHER_TOOL];
      const response = await v1("/v1/chat/completions", { method: "POST", body: JSON.stringify(body) });
      for await (const chunk of events(response)) {
        if (chunk.error) throw new Error(chunk.error.message);
        if (chunk.usage) { facts.usage = `${chunk.usage.prompt_tokens} prompt + ${chunk.usage.completion_tokens} completion tokens`; note(); }
        const choice = chunk.choices && chunk.choices[0];
        if (!choice) continue;
        const d = choice.delta || {};
        if (d.reasoning_content) { thinking.hidden = reasoning.hidden = false; reasoning.textContent += d.reasoning_content; }
        if (d.content) answer.textContent += d.content;
        for (const t of d.tool_calls || []) {
          const c = calls[t.index] || (calls[t.index] = { name: "", args: "" });
          if (t.function && t.function.name) c.name += t.function.name;
          if (t.function && t.function.arguments) c.args += t.function.arguments;
          toolBox.hidden = false;
          toolBox.replaceChildren(h("div", { class: "who" }, "tool calls"), ...calls.map((x) => h("pre", {}, `${x.name}(${x.args})`)));
        }
        if (choice.finish_reason) { facts.finish = choice.finish_reason; note(); }
      }
      messages.push({ role: "assistant", content: answer.textContent });
    } catch (e) {
      error.textContent = e.message;
      messages.pop();
    } finally {
      send.disabled = false;
      prompt.focus();
    }
  }
}

async function renderImages(root) {
  const prompt = h("input", { type: "text", required: true, placeholder: "a lighthouse at dusk" });
  const size = h("select", {}, options([["1024x1024", "1024×1024"], ["1280x720", "1280×720"], ["720x1280", "720×1280"], ["1792x1024", "1792×1024"], ["1024x1792", "1024×1792"]]));
  const n = h("input", { type: "number", min: 1, max: 10, value: 2 });
  const go = h("button", { type: "submit", id: "generate" }, "Generate");
  const status = h("p", { role: "status" });
  const wall = h("div", { class: "wall", id: "wall" });
  prompt.style.width = "100%";
  root.append(h("h1", {}, "Images"), h("form", { class: "card", onsubmit: async (e) => {
    e.preventDefault();
    go.disabled = true;
    status.textContent = "Generating…";
    try {
      const r = await v1("/v1/images/generations", { method: "POST", body: JSON.stringify({ model: "grok-imagine-image", prompt: prompt.value, n: Number(n.value), size: size.value, response_format: "url" }) });
      const data = await r.json();
      status.textContent = `${data.data.length} image(s)`;
      wall.prepend(...data.data.map((img) => h("figure", {}, h("img", { src: img.url || `data:image/png;base64,${img.b64_json}`, alt: prompt.value, loading: "lazy" }), h("figcaption", {}, `${prompt.value} · ${size.value}`))));
    } catch (err) {
      status.textContent = err.message;
    } finally {
      go.disabled = false;
    }
  } }, keyField(), field("Prompt", prompt, "img-prompt"), h("div", { class: "row" }, field("Size", size, "img-size"), field("How many", n, "img-n"), h("div", {}, go)), status), wall);
}

export async function render(name, root) {
  return name === "images" ? renderImages(root) : renderChat(root);
}
