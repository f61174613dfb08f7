// Voice: a LiveKit token from the upstream (E20) for a chosen account, and how to connect with it.
import { api, field, h, options } from "./lib.js";

export async function render(_name, root) {
  const { data } = await api("/admin/api/accounts?status=active&limit=200");
  const account = h("select", {}, options(data.map((a) => [a.id, `${a.id} · ${a.tier} · ${a.token}`])));
  const voice = h("input", { type: "text", value: "ara" });
  const personality = h("input", { type: "text", value: "assistant" });
  const speed = h("input", { type: "number", min: 0.5, max: 2, step: 0.1, value: 1 });
  const go = h("button", { type: "submit", id: "voice-go" }, "Get a token");
  const out = h("div", { id: "voice-details", "aria-live": "polite" });
  root.append(h("h1", {}, "Voice"), h("form", { class: "card", onsubmit: async (e) => {
    e.preventDefault();
    go.disabled = true;
    try {
      const t = await api("/admin/api/voice/token", { method: "POST", body: { account_id: account.value, voice: voice.value, personality: personality.value, speed: Number(speed.value) } });
      const row = (k, v) => [h("dt", {}, k), h("dd", {}, h("code", {}, v || "—"))];
      out.replaceChildren(h("section", { class: "card" }, h("h2", {}, "Connection details"),
        h("dl", { class: "kv" }, row("LiveKit URL", t.url), row("Room", t.room_name), row("Participant", t.participant_name),
          row("Voice", `${t.voice} · ${t.personality} · ${t.speed}×`), row("Access token", t.token), row("Signalling URL", t.rtc_url)),
        h("p", { class: "hint" }, "A LiveKit client (livekit-client in a browser) connects to the URL with the token; audio goes straight to LiveKit, never through the gateway. Treat the token as a secret: it speaks as this account.")));
    } catch (err) {
      out.replaceChildren(h("p", { class: "error", role: "alert" }, err.message));
    } finally {
      go.disabled = false;
    }
  } }, field("Account", account, "voice-account"), h("div", { class: "row" }, field("Voice", voice, "voice-voice"), field("Personality", personality, "voice-personality"), field("Speed", speed, "voice-speed"), h("div", {}, go))), out);
}
