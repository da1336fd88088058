import type * as z from "zod";

/**
 * Validators compiled by ajv from zod's JSON Schema of a protocol schema (`z.toJSONSchema(schema, { io: "output" })`)
 * check what zod checks, on the paths where zod itself is too heavy: the SDK's browser build (no zod in the page) and
 * the server's `sendMessage` (every message's path). This module holds what both need to agree with zod; it imports
 * nothing but zod's types, so the protocol stays free of ajv.
 */

/**
 * ajv options under which a compiled validator accepts, refuses and returns what zod's `safeParse` does:
 * - `removeAdditional`: zod objects drop keys they do not name, and zod's JSON Schema of the output says
 *   `additionalProperties: false` there, so ajv removes those keys rather than refusing the value;
 * - string lengths in code points, as zod counts them (a surrogate pair is one): ajv's default (`ucs2length`);
 * - `unicodeRegExp: false`: patterns compiled like zod's own regular expressions, without the `u` flag;
 * - `validateFormats: false`: zod writes `format: "date-time"` next to the `pattern` it checks ISO dates with; the
 *   pattern is the check, and ajv-formats is not needed;
 * - a warning or an error while compiling throws: a schema ajv would only half understand is refused.
 */
export const zodAgreeingAjvOptions = {
  strict: true,
  allErrors: false,
  removeAdditional: true,
  unicodeRegExp: false,
  validateFormats: false,
  inlineRefs: false,
  logger: {
    log: (): undefined => undefined,
    warn: (...args: unknown[]): never => {
      throw new Error(args.map(String).join(" "));
    },
    error: (...args: unknown[]): never => {
      throw new Error(args.map(String).join(" "));
    },
  },
} as const;

/**
 * zod features JSON Schema cannot say: a refinement or an overwrite (`.trim()`) is left out of zod's JSON Schema
 * without a word, a transform or a preprocess changes what parsing returns, and a lazy schema's inside is not walked. A default can be said (`default`,
 * which ajv's `useDefaults` applies), but only a validator that assigns defaults says it the way zod does.
 */
const inexpressibleTypes = new Set(["prefault", "catch", "pipe", "transform", "custom", "preprocess", "lazy"]);
const inexpressibleChecks = new Set(["custom", "overwrite"]);

/** The parts of zod's schema definitions (`schema._zod.def`, zod's introspection API) a walk reads. */
interface ZodInternals {
  _zod: {
    def: {
      type: string;
      checks?: { _zod: { def: { check: string; format?: string; pattern?: RegExp } } }[];
      format?: string;
      pattern?: RegExp;
      shape?: Record<string, unknown>;
      element?: unknown;
      innerType?: unknown;
      valueType?: unknown;
      options?: readonly unknown[];
      items?: readonly unknown[];
      rest?: unknown;
      keyType?: unknown;
      catchall?: unknown;
      left?: unknown;
      right?: unknown;
      in?: unknown;
      out?: unknown;
    };
  };
}

/**
 * The schemas directly inside `schema`: an object's fields and catch-all, a union's options, an array's element, a
 * tuple's items, a record's keys and values, an intersection's sides, a pipe's ends, a wrapped type.
 */
function childrenOf(schema: unknown): unknown[] {
  const { def } = (schema as ZodInternals)._zod;
  return [
    ...Object.values(def.shape ?? {}),
    ...(def.options ?? []),
    ...(def.items ?? []),
    def.element,
    def.rest,
    def.catchall,
    def.innerType,
    def.keyType,
    def.valueType,
    def.left,
    def.right,
    def.in,
    def.out,
  ].filter((child) => child !== undefined);
}

/** Something in a zod schema that its JSON Schema leaves out or says differently. */
export interface Inexpressible {
  /** Where: field names and `[]` for an array's items, dotted (empty: the schema itself). */
  path: string;
  /** What: the zod type (`transform`, `default`) or `a <kind> check` (`a custom check`: a refinement). */
  what: string;
}

/**
 * Every part of `schema` that JSON Schema cannot say exactly, except inside the schemas of `known` (whose checks the
 * caller runs itself; their children are still walked).
 *
 * @param options.defaults - whether `default` counts as expressible (a validator that assigns defaults)
 */
export function inexpressibleParts(
  schema: z.ZodType,
  options: { known?: ReadonlySet<z.ZodType>; defaults?: boolean } = {},
): Inexpressible[] {
  const found: Inexpressible[] = [];
  const visit = (current: unknown, path: readonly string[]): void => {
    const { def } = (current as ZodInternals)._zod;
    if (!options.known?.has(current as z.ZodType)) {
      const check = def.checks?.find((candidate) => inexpressibleChecks.has(candidate._zod.def.check));
      const type = inexpressibleTypes.has(def.type) || (def.type === "default" && options.defaults !== true);
      const stringFormats = [
        ...(def.type === "string" ? [def] : []),
        ...(def.checks ?? []).map((candidate) => candidate._zod.def).filter((check) => check.check === "string_format"),
      ];
      const format = stringFormats.map(patternProblem).find((problem) => problem !== undefined);
      if (type || check !== undefined || format !== undefined) {
        const what = type ? def.type : check === undefined ? format : `a ${check._zod.def.check} check`;
        found.push({ path: path.join("."), what: what ?? def.type });
      }
    }
    const shape = def.shape ?? {};
    for (const [key, child] of Object.entries(shape)) visit(child, [...path, key]);
    for (const child of childrenOf(current)) {
      if (Object.values(shape).includes(child)) continue;
      visit(child, def.element === child ? [...path, "[]"] : path);
    }
  };
  visit(schema, []);
  return found;
}

/**
 * A string format JSON Schema cannot check as zod does: zod writes only a regular expression's source (its flags are
 * lost), and a format zod checks without one (`z.url()`) becomes a `format` keyword, which these validators skip.
 */
function patternProblem(def: { format?: string; pattern?: RegExp }): string | undefined {
  if (def.pattern !== undefined && def.pattern.flags !== "") return `a pattern with flags (${String(def.pattern)})`;
  if (def.format !== undefined && def.format !== "regex" && def.pattern === undefined) return `a ${def.format} format`;
  return undefined;
}

/** The object schemas that occur more than once in `schemas` (a participant, a conversation summary). */
export function repeatedObjects(schemas: readonly z.ZodType[]): z.ZodType[] {
  const seen = new Map<unknown, number>();
  const visit = (schema: unknown): void => {
    if ((schema as ZodInternals)._zod.def.type === "object") {
      const count = (seen.get(schema) ?? 0) + 1;
      seen.set(schema, count);
      if (count > 1) return;
    }
    childrenOf(schema).forEach(visit);
  };
  schemas.forEach(visit);
  return [...seen].filter(([, count]) => count > 1).map(([schema]) => schema as z.ZodType);
}
