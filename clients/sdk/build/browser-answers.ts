import { Ajv, type Options } from "ajv";
import standalone from "ajv/dist/standalone/index.js";
import type { Plugin } from "esbuild";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import * as z from "zod";
import { answerSchemas, errorStatuses } from "../answers.js";

const sdkDir = join(dirname(fileURLToPath(import.meta.url)), "..");

/**
 * zod features JSON Schema cannot say: a refinement or an overwrite (`.trim()`) is left out of zod's JSON Schema
 * without a word, and a default or a transform changes what parsing returns. A generated validator would then
 * accept or return something the zod schema does not, so the generator refuses them.
 */
const inexpressibleTypes = new Set(["default", "prefault", "catch", "pipe", "transform", "custom", "preprocess"]);
const inexpressibleChecks = new Set(["custom", "overwrite"]);

interface ZodInternals {
  _zod: {
    def: {
      type: string;
      checks?: { _zod: { def: { check: string } } }[];
      shape?: Record<string, unknown>;
      element?: unknown;
      innerType?: unknown;
      valueType?: unknown;
      options?: readonly unknown[];
    };
  };
}

/** The object schemas that occur more than once in `schemas` (a participant, a conversation summary). */
function repeatedObjects(schemas: readonly z.ZodType[]): z.ZodType[] {
  const seen = new Map<unknown, number>();
  const visit = (schema: unknown): void => {
    const { def } = (schema as ZodInternals)._zod;
    if (def.type === "object") {
      const count = (seen.get(schema) ?? 0) + 1;
      seen.set(schema, count);
      if (count > 1) return;
    }
    for (const child of [
      ...Object.values(def.shape ?? {}),
      ...(def.options ?? []),
      def.element,
      def.innerType,
      def.valueType,
    ]) {
      if (child !== undefined) visit(child);
    }
  };
  schemas.forEach(visit);
  return [...seen].filter(([, count]) => count > 1).map(([schema]) => schema as z.ZodType);
}

function refuseInexpressible(schema: unknown, path: readonly (string | number)[]): void {
  const { def } = (schema as ZodInternals)._zod;
  const check = def.checks?.find((candidate) => inexpressibleChecks.has(candidate._zod.def.check));
  if (inexpressibleTypes.has(def.type) || check !== undefined) {
    const what = check === undefined ? def.type : `a ${check._zod.def.check} check`;
    throw new Error(
      `an answer schema has ${what} at ${path.join(".") || "its root"}, which JSON Schema cannot express`,
    );
  }
}

/**
 * The options of the generated validators, chosen so they accept, refuse and return what zod's `safeParse` does:
 * - `removeAdditional`: zod objects drop keys they do not name, and zod's JSON Schema of the output says
 *   `additionalProperties: false` there, so ajv removes those keys rather than refusing the answer;
 * - string lengths in code points, as zod counts them (a surrogate pair is one): ajv's own `ucs2length` does it;
 * - `unicodeRegExp: false`: patterns compiled like zod's own regular expressions, without the `u` flag;
 * - `validateFormats: false`: zod writes `format: "date-time"` next to the `pattern` it checks ISO dates with; the
 *   pattern is the check, and ajv-formats (a runtime dependency of the generated code) is not needed.
 */
const ajvOptions: Options = {
  code: { source: true, esm: true, lines: false },
  strict: true,
  allErrors: false,
  removeAdditional: true,
  unicodeRegExp: false,
  validateFormats: false,
  inlineRefs: false,
  logger: {
    log: () => undefined,
    warn: (...args: unknown[]) => {
      throw new Error(args.map(String).join(" "));
    },
    error: (...args: unknown[]) => {
      throw new Error(args.map(String).join(" "));
    },
  },
};

/**
 * The ajv runtime helpers the generated code may call, copied into it: each is one self-contained function, so the
 * browser build needs no `require` and no part of ajv beyond it.
 */
const inlinedHelpers: Readonly<Record<string, (value: string) => number>> = {
  // Loaded as ajv's generated code loads it (CommonJS, `.default`), whatever the module interop of the caller.
  ucs2length: (createRequire(import.meta.url)("ajv/dist/runtime/ucs2length") as { default: (value: string) => number })
    .default,
};

/** Turns ajv's first error into the SDK's issue: the dotted path (with the missing key, as zod names it), and why. */
const runtime = `
const unescapePointer = (segment) => segment.replace(/~1/g, "/").replace(/~0/g, "~");
export function checkAnswer(name, value) {
  const validate = validators[name];
  if (validate(value)) return { ok: true, value };
  return {
    ok: false,
    issues: (validate.errors ?? []).map((error) => {
      const path = error.instancePath === "" ? [] : error.instancePath.slice(1).split("/").map(unescapePointer);
      if (error.keyword === "required") path.push(error.params.missingProperty);
      return { path: path.join("."), message: error.message ?? error.keyword };
    }),
  };
}
`;

/**
 * Generates, as an ES module with no import, the browser twin of `answers.ts`: `checkAnswer` backed by ajv
 * standalone validators compiled from zod's JSON Schema of each schema, and `errorStatuses` as data.
 *
 * @param schemas - the schemas to compile, by answer name (default: the ones the SDK checks)
 * @param statuses - the HTTP status of each error code
 * @throws when a schema uses a feature JSON Schema cannot express, or the generated code needs a runtime helper
 */
export function generateAnswerValidators(
  schemas: Record<string, z.ZodType> = answerSchemas,
  statuses: Readonly<Record<string, number>> = errorStatuses,
): string {
  // One registry, where an object used in several places (a participant, a conversation summary) has an id of its
  // own: it is compiled into one function that every answer calls, rather than once into each.
  const registry = z.registry<{ id: string }>();
  for (const [name, schema] of Object.entries(schemas)) registry.add(schema, { id: name });
  repeatedObjects(Object.values(schemas)).forEach((schema, index) => {
    if (!registry.has(schema)) registry.add(schema, { id: `shared${index}` });
  });
  const { schemas: jsonSchemas } = z.toJSONSchema(registry, {
    target: "draft-07",
    io: "output",
    reused: "ref",
    uri: (id) => id,
    override: ({ zodSchema, path }) => refuseInexpressible(zodSchema, path),
  });
  const ajv = new Ajv(ajvOptions);
  for (const [id, jsonSchema] of Object.entries(jsonSchemas)) {
    const { $schema: _draft, ...rest } = jsonSchema;
    ajv.addSchema({ ...rest, $id: id });
  }
  const names = Object.keys(schemas);
  const exports = Object.fromEntries(names.map((name, index) => [`v${index}`, name]));
  // ajv's ES module output still calls its runtime helpers through `require`.
  const helpers = new Set<string>();
  const validators = standalone
    .default(ajv, exports)
    .replace(/require\("ajv\/dist\/runtime\/(\w+)"\)\.default/g, (_call, helper: string) => {
      if (inlinedHelpers[helper] === undefined) throw new Error(`the generated validators need ajv's ${helper}`);
      helpers.add(helper);
      return `ajvHelper_${helper}`;
    });
  if (/\brequire\s*\(/.test(validators)) throw new Error("the generated validators require a module");
  const table = names.map((name, index) => `${JSON.stringify(name)}: v${index}`).join(", ");
  return [
    "// Generated at build time from the protocol's zod schemas (clients/sdk/build/browser-answers.ts).",
    ...[...helpers].map((helper) => `const ajvHelper_${helper} = ${String(inlinedHelpers[helper])};`),
    validators,
    `const validators = { ${table} };`,
    `export const errorStatuses = ${JSON.stringify(statuses)};`,
    runtime,
  ].join("\n");
}

let generated: string | undefined;

/**
 * An esbuild plugin for browser bundles of the SDK (its own and the widget's): resolves the SDK's `./answers.js` to
 * the generated validators instead of the zod module.
 */
export function browserAnswers(): Plugin {
  return {
    name: "liaison-browser-answers",
    setup(build) {
      build.onResolve({ filter: /^\.\/answers\.js$/ }, (args) =>
        dirname(args.importer) === sdkDir
          ? { path: join(sdkDir, "answers.generated.js"), namespace: "liaison-browser-answers" }
          : undefined,
      );
      build.onLoad({ filter: /.*/, namespace: "liaison-browser-answers" }, () => {
        generated ??= generateAnswerValidators();
        return { contents: generated, loader: "js" };
      });
    },
  };
}
