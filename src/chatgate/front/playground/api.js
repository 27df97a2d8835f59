// The public chatgate API, as the page calls it: Vertex-style URLs, the tab's key, errors
// kept exactly as the server sent them, streams read as server-sent events.

const KEY = "chatgate.key";

export const key = {
  get: () => sessionStorage.getItem(KEY) || "",
  set: (value) => sessionStorage.setItem(KEY, value),
  clear: () => sessionStorage.removeItem(KEY),
};

/** An error answer: `status` and the body as returned (`body.error` for OpenAI-style ones). */
export class ApiError extends Error {
  constructor(status, body) {
    super(body?.error?.message ?? (typeof body === "string" ? body : `HTTP ${status}`));
    this.status = status;
    this.body = body;
  }
}

/** `.../v1/projects/{project}/locations/{location}/endpoints/{endpoint}`, the SDK's base URL. */
export function baseUrl({ project, location, endpoint }) {
  const part = encodeURIComponent;
  return `${window.location.origin}/v1/projects/${part(project)}/locations/${part(location)}` +
    `/endpoints/${part(endpoint)}`;
}

function headers(json) {
  const result = {};
  const value = key.get();
  if (value) result.Authorization = `Bearer ${value}`;
  if (json) result["Content-Type"] = "application/json";
  return result;
}

async function failure(response) {
  const text = await response.text();
  try {
    return new ApiError(response.status, JSON.parse(text));
  } catch {
    return new ApiError(response.status, text);
  }
}

/** The endpoint ids the project may call (`GET .../locations/{location}/endpoints`, Vertex's shape). */
export async function listEndpoints({ project, location }) {
  const part = encodeURIComponent;
  const url = `${window.location.origin}/v1/projects/${part(project)}/locations/${part(location)}/endpoints`;
  const response = await fetch(url, { headers: headers(false) });
  if (!response.ok) throw await failure(response);
  // Vertex leaves an empty list out: no `endpoints` key means none.
  return ((await response.json()).endpoints ?? []).map((e) => e.name.split("/").at(-1));
}

/** The local models' names (`/readyz`), to tell them from Gemini's `google/*` in the listing;
 * null when the server cannot say (still starting). */
export async function localModelNames() {
  try {
    const response = await fetch(`${window.location.origin}/readyz`);
    return response.ok ? (await response.json()).models : null;
  } catch {
    return null;
  }
}

/** The models an endpoint serves (`openapi`: every local model; else the endpoint's). */
export async function listModels(where) {
  const response = await fetch(`${baseUrl(where)}/models`, { headers: headers(false) });
  if (!response.ok) throw await failure(response);
  return (await response.json()).data;
}

/** POST a streaming chat completion; yields each chunk, throws ApiError on an error. */
export async function* streamChat(where, body, signal) {
  const response = await fetch(`${baseUrl(where)}/chat/completions`, {
    method: "POST", headers: headers(true), body: JSON.stringify(body), signal,
  });
  if (!response.ok) throw await failure(response);
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value.replace(/\r\n?/g, "\n");
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const event = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const data = event.split("\n").filter((l) => l.startsWith("data:"))
        .map((l) => l.slice(5).replace(/^ /, "")).join("\n");
      if (!data) continue;
      if (data === "[DONE]") return;
      const chunk = JSON.parse(data);
      if (chunk.error) throw new ApiError(response.status, chunk);
      yield chunk;
    }
  }
}
