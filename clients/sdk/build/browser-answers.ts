import { Ajv, type Options } from "ajv";
import standalone from "ajv/dist/standalone/index.js";
import type { Plugin } from "esbuild";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import * as z from "zod";
import { inexpressibleParts, repeatedObjects, zodAgreeingAjvOptions } from "../../../protocol/json-schema.js";
import { answerSchemas, errorStatuses } from "../answers.js";

const sdkDir = join(dirname(fileURLToPath(import.meta.url)), "..");

/** The generated module's options: ES module source, as {@link zodAgreeingAjvOptions} checks. */
const ajvOptions: Options = { ...zodAgreeingAjvOptions, code: { source: true, esm: true, lines: false } };

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
  for (const schema of Object.values(schemas)) {
    const [part] = inexpressibleParts(schema);
    if (part !== undefined) {
      throw new Error(
        `an answer schema has ${part.what} at ${part.path || "its root"}, which JSON Schema cannot express`,
      );
    }
  }
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
