// streamText with one tool, on one route of the gateway: node stream.mjs <chat|responses|messages> <base> <key> <model> <prompt> [stored]
// Prints one JSON line: the text of every step, the tool calls and results, and the finish reason.
import { streamText, tool, jsonSchema, stepCountIs } from "ai";
import { createOpenAI } from "@ai-sdk/openai";
import { createAnthropic } from "@ai-sdk/anthropic";

const [route, base, key, modelId, prompt, mode] = process.argv.slice(2);
// The SDK's own fetch, watched: the request bodies it sent are reported with the result.
const bodies = [];
const fetch = (url, init) => {
  bodies.push(String(init?.body ?? ""));
  return globalThis.fetch(url, init);
};
const openai = createOpenAI({ baseURL: `${base}/v1`, apiKey: key, fetch });
const anthropic = createAnthropic({ baseURL: `${base}/v1`, apiKey: key, fetch });
const model = { chat: () => openai.chat(modelId), responses: () => openai.responses(modelId), messages: () => anthropic(modelId) }[route]();

const weather = tool({
  description: "The weather in a city.",
  inputSchema: jsonSchema({
    type: "object",
    properties: { city: { type: "string" } },
    required: ["city"],
    additionalProperties: false,
  }),
  // The result carries the directive of the next turn (the simulator's script), escaped in the prompt.
  execute: async ({ city }) => ({ city, forecast: `sunny in ${city} #sim think=0 say=It-is-sunny-in-${city} (end)` }),
});

// Responses: store false with encrypted reasoning, as stateless apps run it, so the reasoning item
// goes back inline with the gateway's signed encrypted_content (with store on, the SDK sends item
// references to stored responses instead; it asks for encrypted_content by itself only for models it knows).
// `stored`: the SDK's defaults (store on), so earlier output goes back as item references.
const providerOptions =
  route === "responses" && mode !== "stored"
    ? { openai: { store: false, include: ["reasoning.encrypted_content"] } }
    : undefined;
const result = streamText({ model, prompt, tools: { weather }, stopWhen: stepCountIs(3), providerOptions });
const deltas = [];
for await (const part of result.fullStream) {
  if (part.type === "text-delta") deltas.push(part.text);
  if (part.type === "error") throw part.error;
}
const steps = await result.steps;
console.log(
  JSON.stringify({
    text: await result.text,
    deltas: deltas.length,
    finishReason: await result.finishReason,
    toolCalls: steps.flatMap((s) => s.toolCalls.map((c) => ({ name: c.toolName, input: c.input }))),
    toolResults: steps.flatMap((s) => s.toolResults.map((r) => r.output)),
    steps: steps.length,
    requests: bodies.map((b) => JSON.parse(b)),
  }),
);
