import { RcMeteorError, RcPlainError } from "./errors.js";

/*
 * Two validators, because Rocket.Chat uses two and they word their errors differently:
 * - ajv (`validateParams`, rest-typings schemas) → `Meteor.Error('invalid-params', "must have required property 'x'")`.
 *   ajv stops at the first error and checks `required`, then `additionalProperties`, then each property's type.
 * - Meteor `check()` (`livechat/visitor`, `livechat/room`, the upload's message fields) → a plain
 *   `"Match error: <message>[ in field <path>]"` error without errorType.
 */

export type JsonSchema =
  | { type: "string" | "number" | "boolean"; nullable?: boolean }
  | { type: "array"; items: JsonSchema; nullable?: boolean }
  | {
      type: "object";
      properties: Record<string, JsonSchema>;
      required?: string[];
      additionalProperties: boolean;
      nullable?: boolean;
    };

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function ajvError(schema: JsonSchema, data: unknown): string | undefined {
  if (data === null && schema.nullable === true) return undefined;
  switch (schema.type) {
    case "string":
      return typeof data === "string" ? undefined : "must be string";
    case "number":
      return typeof data === "number" && Number.isFinite(data) ? undefined : "must be number";
    case "boolean":
      return typeof data === "boolean" ? undefined : "must be boolean";
    case "array": {
      if (!Array.isArray(data)) return "must be array";
      for (const item of data as unknown[]) {
        const error = ajvError(schema.items, item);
        if (error !== undefined) return error;
      }
      return undefined;
    }
    case "object": {
      if (!isRecord(data)) return "must be object";
      for (const key of schema.required ?? []) {
        if (data[key] === undefined) return `must have required property '${key}'`;
      }
      if (!schema.additionalProperties) {
        for (const key of Object.keys(data)) {
          if (!Object.hasOwn(schema.properties, key)) return "must NOT have additional properties";
        }
      }
      for (const [key, sub] of Object.entries(schema.properties)) {
        if (data[key] === undefined) continue;
        const error = ajvError(sub, data[key]);
        if (error !== undefined) return error;
      }
      return undefined;
    }
  }
}

/**
 * ajv with `coerceTypes` turns numeric query strings into numbers; only number-typed query fields need it here
 * (every other query value is already a string).
 */
function coerceQueryNumbers(schema: JsonSchema, data: unknown): unknown {
  if (schema.type !== "object" || !isRecord(data)) return data;
  const out: Record<string, unknown> = { ...data };
  for (const [key, sub] of Object.entries(schema.properties)) {
    const value = out[key];
    if (sub.type === "number" && typeof value === "string" && value.trim() !== "" && !Number.isNaN(Number(value))) {
      out[key] = Number(value);
    }
  }
  return out;
}

/** Throws RC's `invalid-params` error when `data` does not match; returns the (query-coerced) data. */
export function validateParams<T>(schema: JsonSchema, data: unknown, opts: { query?: boolean } = {}): T {
  const input = opts.query === true ? coerceQueryNumbers(schema, data) : data;
  const error = ajvError(schema, input);
  if (error !== undefined) throw new RcMeteorError("invalid-params", error);
  return input as T;
}

/** Meteor `check()` patterns. */
export type MatchPattern =
  | { kind: "string" }
  | { kind: "boolean" }
  | { kind: "maybe"; pattern: MatchPattern }
  | { kind: "optional"; pattern: MatchPattern }
  | { kind: "array"; pattern: MatchPattern }
  | { kind: "object"; shape: Record<string, MatchPattern>; allowUnknown: boolean };

export const Match = {
  string: { kind: "string" } as MatchPattern,
  boolean: { kind: "boolean" } as MatchPattern,
  maybe: (pattern: MatchPattern): MatchPattern => ({ kind: "maybe", pattern }),
  optional: (pattern: MatchPattern): MatchPattern => ({ kind: "optional", pattern }),
  arrayOf: (pattern: MatchPattern): MatchPattern => ({ kind: "array", pattern }),
  /** A plain object pattern `{...}`: unknown keys are rejected. */
  exact: (shape: Record<string, MatchPattern>): MatchPattern => ({ kind: "object", shape, allowUnknown: false }),
  objectIncluding: (shape: Record<string, MatchPattern>): MatchPattern => ({
    kind: "object",
    shape,
    allowUnknown: true,
  }),
};

interface MatchFailure {
  message: string;
  path: string;
}

function typeName(value: unknown): string {
  return value === null ? "null" : typeof value;
}

/** Meteor's `_prependPath`. */
function prependPath(key: string | number, base: string): string {
  let segment: string;
  if (typeof key === "number" || /^[0-9]+$/.test(key)) segment = `[${key}]`;
  else if (!/^[a-z_$][0-9a-z_$]*$/i.test(key)) segment = JSON.stringify([key]);
  else segment = key;
  if (base !== "" && !base.startsWith("[")) return `${segment}.${base}`;
  return segment + base;
}

function testSubtree(value: unknown, pattern: MatchPattern): MatchFailure | undefined {
  switch (pattern.kind) {
    case "string":
      return typeof value === "string" ? undefined : { message: `Expected string, got ${typeName(value)}`, path: "" };
    case "boolean":
      return typeof value === "boolean" ? undefined : { message: `Expected boolean, got ${typeName(value)}`, path: "" };
    case "maybe":
    case "optional": {
      if (value === undefined || (pattern.kind === "maybe" && value === null)) return undefined;
      if (testSubtree(value, pattern.pattern) === undefined) return undefined;
      return { message: "Failed Match.OneOf, Match.Maybe or Match.Optional validation", path: "" };
    }
    case "array": {
      if (!Array.isArray(value)) return { message: `Expected array, got ${typeName(value)}`, path: "" };
      for (const [index, item] of (value as unknown[]).entries()) {
        const failure = testSubtree(item, pattern.pattern);
        if (failure) return { message: failure.message, path: prependPath(index, failure.path) };
      }
      return undefined;
    }
    case "object": {
      if (typeof value !== "object") return { message: `Expected object, got ${typeof value}`, path: "" };
      if (value === null) return { message: "Expected object, got null", path: "" };
      if (Array.isArray(value)) return { message: "Expected plain object", path: "" };
      const record = value as Record<string, unknown>;
      const required = new Set<string>();
      for (const [key, sub] of Object.entries(pattern.shape)) {
        if (sub.kind !== "maybe" && sub.kind !== "optional") required.add(key);
      }
      for (const key of Object.keys(record)) {
        const sub = pattern.shape[key];
        if (sub === undefined) {
          if (!pattern.allowUnknown) return { message: "Unknown key", path: key };
          continue;
        }
        // In an object, an optional key is tested against its inner pattern (null still allowed for Maybe).
        const inner = sub.kind === "maybe" || sub.kind === "optional" ? sub.pattern : sub;
        const skip =
          (sub.kind === "maybe" && record[key] === null) || (sub.kind === "optional" && record[key] === undefined);
        if (!skip) {
          const failure = testSubtree(record[key], inner);
          if (failure) return { message: failure.message, path: prependPath(key, failure.path) };
        }
        required.delete(key);
      }
      const [missing] = required;
      if (missing !== undefined) return { message: `Missing key '${missing}'`, path: "" };
      return undefined;
    }
  }
}

/** Meteor `check(value, pattern)`: throws a plain `"Match error: …"` error. */
export function check(value: unknown, pattern: MatchPattern): void {
  const failure = testSubtree(value, pattern);
  if (failure === undefined) return;
  throw new RcPlainError(`Match error: ${failure.message}${failure.path === "" ? "" : ` in field ${failure.path}`}`);
}
