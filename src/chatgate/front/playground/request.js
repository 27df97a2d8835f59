// The chat completion request the page sends, built from its settings, and the same request
// as code a user can copy (curl, Python `openai`, Python `google-genai`), with the Vertex-style
// base URL.

/** A stop sequence as typed: `\n`, `\t` and `\\` stand for a newline, a tab, a backslash. */
function unescapeStop(text) {
  return text.replace(/\\([nt\\])/g, (_, c) => ({ n: "\n", t: "\t", "\\": "\\" })[c]);
}

/** The request body (without the page's streaming options). */
export function buildBody(settings, messages) {
  const body = { model: settings.model, messages: [] };
  if (settings.system.trim()) body.messages.push({ role: "system", content: settings.system });
  body.messages.push(...messages);
  if (settings.temperature !== "") body.temperature = Number(settings.temperature);
  if (settings.maxTokens !== "") body.max_tokens = Number(settings.maxTokens);
  if (settings.seed !== "") body.seed = Number(settings.seed);
  const stop = settings.stop.split("\n").filter((s) => s !== "").map(unescapeStop);
  if (stop.length) body.stop = stop;
  if (settings.format === "json_object") body.response_format = { type: "json_object" };
  if (settings.format === "json_schema") {
    body.response_format = {
      type: "json_schema", json_schema: { name: "answer", schema: settings.schema, strict: true },
    };
  }
  if (settings.tools) {
    body.tools = settings.tools;
    body.tool_choice = settings.toolChoice;
  }
  return body;
}

export function curl(base, body) {
  return [
    `curl -X POST "${base}/chat/completions" \\`,
    `  -H "Authorization: Bearer $(chatgate token)" \\`,
    `  -H "Content-Type: application/json" \\`,
    `  -d @- <<'EOF'`,
    JSON.stringify(body, null, 2),
    "EOF",
  ].join("\n");
}

/** A JSON value as a Python literal (JSON strings and numbers are valid Python already). */
function py(value, indent) {
  const pad = "    ".repeat(indent + 1);
  const end = "    ".repeat(indent);
  if (value === null) return "None";
  if (value === true) return "True";
  if (value === false) return "False";
  if (Array.isArray(value)) {
    if (!value.length) return "[]";
    return `[\n${value.map((v) => pad + py(v, indent + 1)).join(",\n")},\n${end}]`;
  }
  if (typeof value === "object") {
    const entries = Object.entries(value);
    if (!entries.length) return "{}";
    return `{\n${entries.map(([k, v]) => `${pad}${JSON.stringify(k)}: ${py(v, indent + 1)}`).join(",\n")},\n${end}}`;
  }
  return JSON.stringify(value);
}

export function python(base, body) {
  const args = Object.entries(body).map(([k, v]) => `    ${k}=${py(v, 1)},`);
  return [
    "import subprocess",
    "",
    "import openai",
    "",
    "client = openai.OpenAI(",
    `    base_url=${JSON.stringify(base)},`,
    `    api_key=subprocess.check_output(["chatgate", "token"], text=True).strip(),`,
    ")",
    "reply = client.chat.completions.create(",
    ...args,
    ")",
    "message = reply.choices[0].message",
    "print(message.content if message.tool_calls is None else message.tool_calls)",
  ].join("\n");
}

// ---- google-genai: the same request on Gemini's own API, mapped as chatgate maps it ----

const text = (content) =>
  typeof content === "string" ? content : (content ?? []).map((p) => p.text ?? p.refusal ?? "").join("");

/** A JSON Schema as chatgate sends it to Gemini: the root `$schema` and `$id` dropped. */
function jsonSchema(schema) {
  const { $schema, $id, ...rest } = schema;
  return rest;
}

/** `{"type": "object"}` with no properties: a tool without parameters, sent without a schema. */
function emptyObjectSchema(schema) {
  const known = ["type", "properties", "required", "additionalProperties"];
  return Object.keys(schema).every((k) => known.includes(k)) && (schema.type ?? "object") === "object" &&
    !Object.keys(schema.properties ?? {}).length && !(schema.required ?? []).length;
}

/** A tool's output as Gemini's `response` object: a JSON object as it is, else `{output}`. */
function toolResponse(content) {
  const value = text(content);
  if (value.trim().startsWith("{") && !value.includes("$ref")) {
    try {
      const parsed = JSON.parse(value);
      if (parsed && typeof parsed === "object" && !Array.isArray(parsed)) return parsed;
    } catch { /* not JSON: sent as text */ }
  }
  return { output: value };
}

/** OpenAI messages → Gemini's system instruction and contents (user, model, function results). */
function contents(messages) {
  const system = [];
  const out = [];
  const names = {}; // tool_call_id → function name, from the last assistant turn
  for (const message of messages) {
    if (message.role === "system" || message.role === "developer") {
      if (text(message.content)) system.push(text(message.content));
      continue;
    }
    const last = out.at(-1);
    if (message.role === "tool") {
      const part = {
        function_response: { name: message.name ?? names[message.tool_call_id], response: toolResponse(message.content) },
      };
      // A run of results is one user turn of its own, never merged with typed text.
      if (last?.results) last.parts.push(part);
      else out.push({ role: "user", parts: [part], results: true });
      continue;
    }
    const role = message.role === "assistant" ? "model" : "user";
    const parts = text(message.content) ? [{ text: text(message.content) }] : [];
    for (const call of message.tool_calls ?? []) {
      names[call.id] = call.function.name;
      parts.push({ function_call: { name: call.function.name, args: JSON.parse(call.function.arguments || "{}") ?? {} } });
    }
    if (!parts.length) continue;
    if (last?.role === role && !last.results) last.parts.push(...parts);
    else out.push({ role, parts });
  }
  return { system, contents: out.map(({ role, parts }) => ({ role, parts })) };
}

/** Keyword arguments of `types.GenerateContentConfig` for the request's options. */
function config(body, system) {
  const args = [];
  const arg = (name, value) => args.push(`        ${name}=${value},`);
  if (system.length) arg("system_instruction", py(system.join("\n"), 2));
  if (body.temperature !== undefined) arg("temperature", py(body.temperature, 2));
  if (body.max_tokens !== undefined) arg("max_output_tokens", py(body.max_tokens, 2));
  if (body.seed !== undefined) arg("seed", py(body.seed, 2));
  if (body.stop?.length) arg("stop_sequences", py(body.stop, 2));
  const format = body.response_format?.type;
  if (format === "json_object" || format === "json_schema") arg("response_mime_type", '"application/json"');
  if (format === "json_schema") arg("response_json_schema", py(jsonSchema(body.response_format.json_schema.schema), 2));
  const declarations = (body.tools ?? []).map(({ function: f }) => {
    const declaration = { name: f.name };
    if (f.description) declaration.description = f.description;
    if (f.parameters && !emptyObjectSchema(f.parameters)) declaration.parameters_json_schema = jsonSchema(f.parameters);
    return declaration;
  });
  if (declarations.length) {
    // Typed: the SDK writes a nested plain dict's keys as they are, not in Gemini's camelCase.
    const each = declarations.map((d) => {
      const fields = Object.entries(d).map(([k, v]) => `${"    ".repeat(6)}${k}=${py(v, 6)},`);
      return `${"    ".repeat(5)}types.FunctionDeclaration(\n${fields.join("\n")}\n${"    ".repeat(5)}),`;
    });
    arg("tools", `[\n            types.Tool(\n                function_declarations=[\n${each.join("\n")}\n` +
      "                ],\n            ),\n        ]");
  }
  const mode = { auto: "AUTO", required: "ANY", none: "NONE" }[body.tool_choice];
  if (declarations.length && mode) {
    arg("tool_config", `types.ToolConfig(function_calling_config=types.FunctionCallingConfig(mode="${mode}"))`);
  }
  return args;
}

/** The request as Python `google-genai` in Vertex mode, against this server (`origin`).
 * The SDK turns `publisher/name` into `publishers/{publisher}/models/{name}` (a bare name:
 * `publishers/google/models/{name}`), which the comment spells out. */
export function genai({ origin, project, location }, body) {
  const { system, contents: turns } = contents(body.messages);
  const [publisher, name] = body.model.includes("/") ? body.model.split(/\/(.*)/s) : ["google", body.model];
  const url = `${origin}/v1beta1/projects/${project}/locations/${location}` +
    `/publishers/${publisher}/models/${name}:generateContent`; // as the SDK writes it: unescaped
  // One user message is passed as its text, as Google's samples do; the SDK sends the same turn.
  const [first] = turns;
  const single = turns.length === 1 && first.role === "user" && first.parts.length === 1 ? first.parts[0].text : undefined;
  const settings = config(body, system);
  return [
    "import subprocess",
    "",
    "from google import genai",
    "from google.genai import types",
    "from google.oauth2.credentials import Credentials",
    "",
    'token = subprocess.check_output(["chatgate", "token"], text=True).strip()',
    "client = genai.Client(",
    "    vertexai=True,",
    `    project=${JSON.stringify(project)},`,
    `    location=${JSON.stringify(location)},`,
    "    credentials=Credentials(token),",
    `    http_options=types.HttpOptions(base_url=${JSON.stringify(origin)}),`,
    ")",
    `# POST ${url}`,
    "reply = client.models.generate_content(",
    `    model=${JSON.stringify(body.model)},`,
    `    contents=${single !== undefined ? py(single, 1) : py(turns, 1)},`,
    ...(settings.length ? ["    config=types.GenerateContentConfig(", ...settings, "    ),"] : []),
    ")",
    "print(reply.function_calls if reply.function_calls else reply.text)",
  ].join("\n");
}
