// The playground's UI: settings, the conversation, streaming, and copy-as-code.
import { ApiError, baseUrl, key, listEndpoints, listModels, localModelNames, streamChat } from "./api.js";
import { buildBody, curl, genai, python } from "./request.js";
import { validate } from "./schema.js";

const $ = (id) => document.getElementById(id);
const OPENAPI = "openapi";
const EXAMPLE_SCHEMA = {
  type: "object",
  properties: { city: { type: "string" }, population: { type: "integer", minimum: 0 } },
  required: ["city", "population"],
};
const EXAMPLE_TOOLS = [{
  type: "function",
  function: {
    name: "get_weather",
    description: "The current weather in a city",
    parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
  },
}];

let conversation = []; // OpenAI messages, without the system prompt
let lastBody = null; // the last request sent, for copy-as-code
let lastWhere = null;
let controller = null;
let lang = "curl";

function setState(state) {
  document.body.dataset.state = state;
  $("send").disabled = state !== "ready";
  $("cancel").disabled = state !== "busy";
}

// ---- errors, shown as the API returned them ----

function showError(error) {
  $("error").hidden = false;
  if (error instanceof ApiError) {
    $("error-title").textContent = `HTTP ${error.status}: ${error.message}`;
    $("error-body").textContent =
      typeof error.body === "string" ? error.body : JSON.stringify(error.body, null, 2);
  } else {
    $("error-title").textContent = error.message;
    $("error-body").textContent = "";
  }
}

function clearError() {
  $("error").hidden = true;
}

// ---- authentication: a key kept for this tab only ----

function askForKey(message) {
  $("auth").hidden = false;
  $("key-status").textContent = message;
  setState("need-key");
}

$("auth").addEventListener("submit", (event) => {
  event.preventDefault();
  const value = $("key").value.trim();
  $("key").value = "";
  if (!value) return;
  key.set(value);
  $("key-status").textContent = "key set for this tab";
  loadModels();
});

$("forget").addEventListener("click", () => {
  key.clear();
  askForKey("no key");
});

// ---- the model picker, from the server's listings ----

const extraTargets = JSON.parse(sessionStorage.getItem("chatgate.targets") || "[]");
// The model the user last picked (or added): a listing that finishes later keeps it selected.
let chosen = null;
const GROUPS = { local: "Local", gemini: "Gemini", endpoints: "Endpoints" }; // in this order
let localNames = null; // the local models (`/readyz`), null when the server cannot say

function where(endpoint = OPENAPI) {
  return { project: $("project").value.trim(), location: $("location").value.trim(), endpoint };
}

/** Where a model goes in the picker: endpoints apart, then Gemini's `google/*` from local models
 * (a local model may be named `google/...` too, so the server's own list of them decides). */
function groupOf(endpoint, model) {
  if (endpoint !== OPENAPI) return "endpoints";
  if (localNames?.includes(model)) return "local";
  return model.startsWith("google/") ? "gemini" : "local";
}

function optgroup(name) {
  const picker = $("model");
  let group = picker.querySelector(`optgroup[data-group="${name}"]`);
  if (!group) {
    group = document.createElement("optgroup");
    group.label = GROUPS[name];
    group.dataset.group = name;
    const order = Object.keys(GROUPS);
    const after = [...picker.children].find((g) => order.indexOf(g.dataset.group) > order.indexOf(name));
    picker.insertBefore(group, after ?? null);
  }
  return group;
}

function addOption(endpoint, model) {
  const value = `${endpoint}:${model}`;
  if ([...$("model").options].some((o) => o.value === value)) return;
  const label = endpoint === OPENAPI ? model : `${endpoint}: ${model}`;
  optgroup(groupOf(endpoint, model)).append(new Option(label, value));
}

/** A target's models: an openapi model by name is itself; an endpoint's come from its listing. */
async function modelsOf(target) {
  return target.endpoint === OPENAPI ? [{ id: target.model }] : await listModels(where(target.endpoint));
}

async function addTarget(target) {
  for (const m of await modelsOf(target)) addOption(target.endpoint, m.id);
}

async function loadModels() {
  clearError();
  setState("loading");
  const selected = $("model").value;
  $("model").replaceChildren();
  let endpoints = [];
  try {
    const [models, names, ids] = await Promise.all([listModels(where()), localModelNames(), listEndpoints(where())]);
    localNames = names;
    for (const m of models) addOption(OPENAPI, m.id);
    endpoints = ids.map((endpoint) => ({ endpoint }));
  } catch (error) {
    showError(error);
    if (error.status === 401) askForKey(key.get() ? "the key was refused" : "this server needs a key");
    else setState("ready");
    return;
  }
  // Each endpoint's own listing names its model; one that fails is said, the rest stay usable.
  // Fetched at once, added in order (endpoints sorted by id, then those added by name).
  const targets = [...endpoints, ...extraTargets];
  const listed = await Promise.allSettled(targets.map(modelsOf));
  listed.forEach((result, i) => {
    if (result.status === "fulfilled") for (const m of result.value) addOption(targets[i].endpoint, m.id);
  });
  const failed = listed.find((result) => result.status === "rejected");
  if (failed) showError(failed.reason);
  if (key.get()) $("auth").hidden = false;
  const keep = chosen ?? selected;
  if ([...$("model").options].some((o) => o.value === keep)) $("model").value = keep;
  setState("ready");
}

$("add-target").addEventListener("submit", async (event) => {
  event.preventDefault();
  const name = $("target-name").value.trim();
  if (!name) return;
  // A name with a slash is a model of the openapi endpoint (google/..., a local model);
  // anything else is a self-deployed endpoint's id, whose own listing names its model.
  const target = name.includes("/") ? { endpoint: OPENAPI, model: name } : { endpoint: name };
  clearError();
  try {
    await addTarget(target);
  } catch (error) {
    showError(error);
    return;
  }
  extraTargets.push(target);
  sessionStorage.setItem("chatgate.targets", JSON.stringify(extraTargets));
  $("target-name").value = "";
  const added = [...$("model").options].filter((o) => o.value.startsWith(`${target.endpoint}:`)).at(-1);
  if (added) chosen = $("model").value = target.model ? `${OPENAPI}:${target.model}` : added.value;
});

for (const id of ["project", "location"]) $(id).addEventListener("change", loadModels);

// ---- settings ----

$("schema").value = JSON.stringify(EXAMPLE_SCHEMA, null, 2);
$("format").addEventListener("change", () => { $("schema-label").hidden = $("format").value !== "json_schema"; });
$("tools-example").addEventListener("click", () => { $("tools").value = JSON.stringify(EXAMPLE_TOOLS, null, 2); });

function parseJson(id, what) {
  try {
    return JSON.parse($(id).value);
  } catch (error) {
    throw new Error(`${what} is not valid JSON: ${error.message}`);
  }
}

function settings() {
  const [endpoint, ...rest] = $("model").value.split(":");
  if (!endpoint) throw new Error("no model to choose: the listing is empty or did not load");
  return {
    endpoint,
    model: rest.join(":"),
    system: $("system").value,
    temperature: $("temperature").value,
    maxTokens: $("max-tokens").value,
    seed: $("seed").value,
    stop: $("stop").value,
    format: $("format").value,
    schema: $("format").value === "json_schema" ? parseJson("schema", "The schema") : null,
    tools: $("tools").value.trim() ? parseJson("tools", "Tools") : null,
    toolChoice: $("tool-choice").value,
  };
}

// ---- the conversation ----

function messageItem(role) {
  const item = document.createElement("li");
  item.className = role;
  const label = document.createElement("div");
  label.className = "role";
  label.textContent = role;
  const content = document.createElement("pre");
  content.className = "content";
  item.append(label, content);
  $("messages").append(item);
  return item;
}

function showMessage(message) {
  const item = messageItem(message.role);
  item.querySelector(".content").textContent =
    message.role === "tool" ? `${message.tool_call_id}: ${message.content}` : message.content;
}

function showToolCall(item, call) {
  let box = item.querySelector(`.tool-call[data-index="${call.index}"]`);
  if (!box) {
    box = document.createElement("div");
    box.className = "tool-call";
    box.dataset.index = call.index;
    const name = document.createElement("strong");
    name.className = "name";
    const args = document.createElement("pre");
    args.className = "arguments";
    box.append(name, args);
    item.append(box);
  }
  box.querySelector(".name").textContent = call.function.name;
  box.querySelector(".arguments").textContent = call.function.arguments;
  return box;
}

/** After an answer that calls tools: a field per call for its result, and a button to go on. */
function askForResults(item, calls) {
  const form = document.createElement("form");
  form.className = "tool-results";
  for (const call of calls) {
    const label = document.createElement("label");
    label.textContent = `Result of ${call.function.name} (${call.id})`;
    const input = document.createElement("textarea");
    input.rows = 2;
    input.dataset.callId = call.id;
    label.append(input);
    form.append(label);
  }
  const button = document.createElement("button");
  button.textContent = "Send results";
  form.append(button);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    if (document.body.dataset.state !== "ready") return;
    const options = checkedSettings();
    if (!options) return;
    for (const input of form.querySelectorAll("textarea")) {
      const message = { role: "tool", tool_call_id: input.dataset.callId, content: input.value };
      conversation.push(message);
      showMessage(message);
    }
    form.remove();
    run(options);
  });
  item.append(form);
}

/** Pretty-print a JSON answer and say whether it is valid (and matches the schema). */
function checkJson(item, content, schema) {
  const check = document.createElement("div");
  check.className = "check";
  try {
    const value = JSON.parse(content);
    const pre = item.querySelector(".content");
    pre.textContent = JSON.stringify(value, null, 2);
    pre.classList.add("json");
    if (schema) {
      const { errors, unchecked } = validate(value, schema);
      check.dataset.valid = String(!errors.length);
      check.textContent = errors.length ? `does not match the schema: ${errors.join("; ")}` : "valid JSON, matches the schema";
      if (unchecked.length) check.textContent += ` (not checked here: ${unchecked.join(", ")})`;
    } else {
      check.dataset.valid = "true";
      check.textContent = "valid JSON";
    }
  } catch (error) {
    check.dataset.valid = "false";
    check.textContent = `not valid JSON: ${error.message}`;
  }
  item.append(check);
}

function showStats(stats) {
  const list = $("stats");
  list.replaceChildren();
  for (const [name, value] of Object.entries(stats)) {
    const term = document.createElement("dt");
    term.textContent = name;
    const detail = document.createElement("dd");
    detail.dataset.stat = name;
    detail.textContent = value;
    list.append(term, detail);
  }
  list.hidden = false;
}

/** The settings, or null after showing what is wrong with them. */
function checkedSettings() {
  clearError();
  try {
    return settings();
  } catch (error) {
    showError(error);
    return null;
  }
}

async function run(options) {
  const body = buildBody(options, conversation);
  lastBody = body;
  lastWhere = where(options.endpoint);
  updateSnippet();
  setState("busy");
  controller = new AbortController();
  const item = messageItem("assistant");
  const content = item.querySelector(".content");
  const message = { role: "assistant", content: "" };
  const calls = [];
  let finish = null;
  let usage = null;
  const started = performance.now();
  let first = null;
  try {
    const request = { ...body, stream: true, stream_options: { include_usage: true } };
    for await (const chunk of streamChat(lastWhere, request, controller.signal)) {
      if (chunk.usage) usage = chunk.usage;
      const choice = chunk.choices[0];
      if (!choice) continue;
      const delta = choice.delta ?? {};
      if (delta.content || delta.tool_calls) first ??= performance.now();
      if (delta.content) {
        message.content += delta.content;
        content.textContent = message.content;
      }
      for (const part of delta.tool_calls ?? []) {
        const call = (calls[part.index] ??= { id: "", type: "function", function: { name: "", arguments: "" } });
        if (part.id) call.id = part.id;
        if (part.function?.name) call.function.name = part.function.name;
        if (part.function?.arguments) call.function.arguments += part.function.arguments;
        showToolCall(item, { ...call, index: part.index });
      }
      if (choice.finish_reason) finish = choice.finish_reason;
    }
  } catch (error) {
    if (error.name !== "AbortError") showError(error);
    if (error.status === 401) askForKey("the key was refused");
  } finally {
    controller = null;
  }
  const ended = performance.now();
  const toolCalls = calls.filter(Boolean);
  if (message.content || toolCalls.length) {
    if (toolCalls.length) message.tool_calls = toolCalls;
    if (!message.content) message.content = null;
    conversation.push(message);
  }
  if (message.content && options.format !== "text") checkJson(item, message.content, options.schema);
  if (toolCalls.length) askForResults(item, toolCalls);
  const seconds = first === null ? null : (ended - first) / 1000;
  showStats({
    "time to first token": first === null ? "–" : `${Math.round(first - started)} ms`,
    "tokens/s": usage && seconds ? (usage.completion_tokens / seconds).toFixed(1) : "–",
    usage: usage ? `${usage.prompt_tokens} prompt + ${usage.completion_tokens} completion = ${usage.total_tokens}` : "–",
    finish_reason: finish ?? "–",
  });
  if (document.body.dataset.state === "busy") setState("ready");
}

$("composer").addEventListener("submit", (event) => {
  event.preventDefault();
  if (document.body.dataset.state !== "ready") return;
  const text = $("prompt").value;
  if (!text.trim()) return;
  const options = checkedSettings();
  if (!options) return;
  const message = { role: "user", content: text };
  conversation.push(message);
  showMessage(message);
  $("prompt").value = "";
  run(options);
});

$("prompt").addEventListener("keydown", (event) => {
  if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) $("composer").requestSubmit();
});

$("cancel").addEventListener("click", () => controller?.abort());

$("clear").addEventListener("click", () => {
  controller?.abort();
  conversation = [];
  lastBody = null;
  $("messages").replaceChildren();
  $("stats").hidden = true;
  clearError();
});

// ---- copy as code ----

function updateSnippet() {
  let body = lastBody;
  let at = lastWhere;
  if (!body) {
    try {
      const options = settings();
      const pending = $("prompt").value ? [{ role: "user", content: $("prompt").value }] : [];
      body = buildBody(options, [...conversation, ...pending]);
      at = where(options.endpoint);
    } catch (error) {
      $("snippet").textContent = error.message;
      return;
    }
  }
  // google-genai reaches the openapi endpoint's models only (Gemini's own API has no
  // self-deployed endpoints): its tab is hidden for an endpoint's model.
  const genaiTab = document.querySelector('[data-lang="genai"]');
  genaiTab.hidden = at.endpoint !== OPENAPI;
  if (genaiTab.hidden && lang === "genai") selectTab(document.querySelector('[data-lang="curl"]'));
  if (lang === "genai") {
    $("snippet").textContent = genai({ origin: window.location.origin, ...at }, body);
  } else {
    $("snippet").textContent = (lang === "curl" ? curl : python)(baseUrl(at), body);
  }
}

function selectTab(tab) {
  lang = tab.dataset.lang;
  for (const t of document.querySelectorAll("[data-lang]")) t.setAttribute("aria-selected", String(t === tab));
}

for (const tab of document.querySelectorAll("[data-lang]")) {
  tab.addEventListener("click", () => {
    selectTab(tab);
    updateSnippet();
  });
}
$("code").addEventListener("toggle", updateSnippet);
$("model").addEventListener("change", () => {
  chosen = $("model").value;
  if ($("code").open) updateSnippet();
});
$("copy").addEventListener("click", async () => {
  try {
    await navigator.clipboard.writeText($("snippet").textContent);
    $("copy").textContent = "Copied";
  } catch {
    $("copy").textContent = "Select the text to copy";
  }
});

loadModels();
