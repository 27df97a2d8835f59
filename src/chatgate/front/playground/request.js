// The chat completion request the page sends, built from its settings, and the same request
// as code a user can copy (curl, Python `openai`), with the Vertex-style base URL.

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
