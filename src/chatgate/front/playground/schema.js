// Checks an answer against the JSON Schema it was asked for, in the page. A validator library
// would need a build step or `eval` (which the page's CSP forbids), so this covers the
// keywords chatgate's local engine enforces; any other keyword is reported as not checked.

const CHECKED = new Set([
  "type", "enum", "const", "properties", "required", "additionalProperties", "patternProperties",
  "items", "prefixItems", "minItems", "maxItems", "minLength", "maxLength", "pattern", "minimum",
  "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf", "anyOf", "oneOf", "allOf",
  "$ref", "$defs", "definitions", "title", "description", "default", "examples", "format",
  "nullable", "$schema", "$id",
]);

function typeOf(value) {
  if (value === null) return "null";
  if (Array.isArray(value)) return "array";
  if (typeof value === "number") return Number.isInteger(value) ? "integer" : "number";
  return typeof value;
}

function typeMatches(value, type) {
  const actual = typeOf(value);
  return actual === type || (type === "number" && actual === "integer");
}

function same(a, b) {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** `{errors, unchecked}`: what does not match (with JSON paths), keywords left unchecked. */
export function validate(value, root) {
  const errors = [];
  const unchecked = new Set();

  function resolve(ref) {
    if (!ref.startsWith("#/")) return null;
    return ref.slice(2).split("/").reduce(
      (node, part) => node?.[part.replace(/~1/g, "/").replace(/~0/g, "~")], root);
  }

  function check(value, schema, path, out) {
    if (schema === true || schema === undefined) return;
    if (schema === false) { out.push(`${path}: not allowed`); return; }
    for (const k of Object.keys(schema)) if (!CHECKED.has(k)) unchecked.add(k);
    if (schema.$ref !== undefined) {
      const target = resolve(schema.$ref);
      if (target === null || target === undefined) unchecked.add(`$ref ${schema.$ref}`);
      else check(value, target, path, out);
    }
    const t = schema.type;
    if (t !== undefined) {
      const types = Array.isArray(t) ? t : [t];
      if (schema.nullable) types.push("null");
      if (!types.some((x) => typeMatches(value, x))) {
        out.push(`${path}: expected ${types.join(" or ")}, got ${typeOf(value)}`);
        return;
      }
    }
    if (schema.enum && !schema.enum.some((e) => same(e, value))) out.push(`${path}: not one of the enum`);
    if ("const" in schema && !same(schema.const, value)) out.push(`${path}: not the const value`);
    for (const [word, many] of [["anyOf", false], ["oneOf", true]]) {
      if (!schema[word]) continue;
      const passing = schema[word].filter((s) => { const e = []; check(value, s, path, e); return !e.length; });
      if (passing.length === 0 || (many && passing.length > 1)) out.push(`${path}: ${word} matched ${passing.length}`);
    }
    for (const s of schema.allOf ?? []) check(value, s, path, out);
    const kind = typeOf(value);
    if (kind === "string") {
      const length = [...value].length;
      if (schema.minLength !== undefined && length < schema.minLength) out.push(`${path}: shorter than ${schema.minLength}`);
      if (schema.maxLength !== undefined && length > schema.maxLength) out.push(`${path}: longer than ${schema.maxLength}`);
      if (schema.pattern !== undefined && !new RegExp(schema.pattern, "u").test(value)) out.push(`${path}: does not match ${schema.pattern}`);
    }
    if (kind === "number" || kind === "integer") {
      if (schema.minimum !== undefined && value < schema.minimum) out.push(`${path}: below ${schema.minimum}`);
      if (schema.maximum !== undefined && value > schema.maximum) out.push(`${path}: above ${schema.maximum}`);
      if (schema.exclusiveMinimum !== undefined && value <= schema.exclusiveMinimum) out.push(`${path}: not above ${schema.exclusiveMinimum}`);
      if (schema.exclusiveMaximum !== undefined && value >= schema.exclusiveMaximum) out.push(`${path}: not below ${schema.exclusiveMaximum}`);
      if (schema.multipleOf !== undefined && !Number.isInteger(value / schema.multipleOf)) out.push(`${path}: not a multiple of ${schema.multipleOf}`);
    }
    if (kind === "array") {
      if (schema.minItems !== undefined && value.length < schema.minItems) out.push(`${path}: fewer than ${schema.minItems} items`);
      if (schema.maxItems !== undefined && value.length > schema.maxItems) out.push(`${path}: more than ${schema.maxItems} items`);
      const prefix = schema.prefixItems ?? [];
      value.forEach((item, i) => check(item, i < prefix.length ? prefix[i] : schema.items, `${path}[${i}]`, out));
    }
    if (kind === "object") {
      for (const name of schema.required ?? []) if (!(name in value)) out.push(`${path}: missing ${name}`);
      for (const [name, item] of Object.entries(value)) {
        const where = `${path}.${name}`;
        let matched = false;
        if (schema.properties && name in schema.properties) { matched = true; check(item, schema.properties[name], where, out); }
        for (const [pattern, s] of Object.entries(schema.patternProperties ?? {})) {
          if (new RegExp(pattern, "u").test(name)) { matched = true; check(item, s, where, out); }
        }
        if (!matched && schema.additionalProperties !== undefined) check(item, schema.additionalProperties, where, out);
      }
    }
  }

  check(value, root, "$", errors);
  return { errors, unchecked: [...unchecked] };
}
