/**
 * Mutations of valid values, for tests that hold two checks of the same schema in agreement (zod and a validator
 * compiled from its JSON Schema): each must accept, refuse and return what the other does.
 */

/**
 * Values a mutation puts in place of a field: other types, edge lengths, edge numbers, dates zod refuses, URLs it
 * refuses and takes.
 */
export const replacements: unknown[] = [
  null,
  true,
  false,
  0,
  -1,
  1.5,
  2 ** 53,
  Number.NaN,
  Number.POSITIVE_INFINITY,
  "",
  "x",
  "x".repeat(256),
  "x".repeat(257),
  // zod counts string lengths in code points: a surrogate pair is one, a lone surrogate one too.
  "😀".repeat(256),
  "😀".repeat(257),
  "\ud83d".repeat(257),
  `${"😀".repeat(255)}\ud83d`,
  "2024-02-29T00:00:00.123Z",
  "2026-02-29T10:00:00Z",
  "2026-12-07T10:00:00+01:00",
  "2026-12-07 10:00:00Z",
  "customer",
  "queued",
  "not_found",
  // Payloads' own words, and URLs of every kind the protocol takes or refuses.
  "ChatMessage",
  "ActivityMessage",
  "whisper",
  "start",
  "   ",
  "https://files.example.com/a.png",
  "file:///etc/passwd",
  "javascript:alert(1)",
  "data:image/png;base64,iVBORw0KGgo=",
  "data:text/plain;base64,@@@",
  "data:text/plain,%E0%A4%A",
  [],
  [null],
  {},
  { id: "p", name: "n" },
  { id: "yes", text: "Yes" },
  [[{ id: "yes", text: "Yes" }]],
];

/** Every mutation of `value`: each field replaced, removed, or joined by an unknown one; each list emptied or grown. */
export function mutants(value: unknown, depth = 0): unknown[] {
  const out: unknown[] = replacements.filter((replacement) => !Object.is(replacement, value));
  if (depth > 6) return out;
  if (Array.isArray(value)) {
    const items: unknown[] = value;
    out.push([], [...items, ...items.slice(0, 1)]);
    items.forEach((item, index) => {
      for (const mutant of mutants(item, depth + 1))
        out.push(items.map((other, at) => (at === index ? mutant : other)));
    });
  } else if (value !== null && typeof value === "object") {
    const record = value as Record<string, unknown>;
    out.push({ ...record, unknownField: "kept out" });
    for (const key of Object.keys(record)) {
      const { [key]: _removed, ...rest } = record;
      out.push(rest);
      for (const mutant of mutants(record[key], depth + 1)) out.push({ ...record, [key]: mutant });
    }
  }
  return out;
}

/** `value` with `replacement` put at the place `steps` pick (each step chooses among the keys or items there). */
export function replaceAt(value: unknown, steps: readonly number[], replacement: unknown): unknown {
  const [step, ...rest] = steps;
  if (step === undefined || value === null || typeof value !== "object") return replacement;
  if (Array.isArray(value)) {
    const items: unknown[] = value;
    if (items.length === 0) return [replacement];
    const index = step % items.length;
    return items.map((item, at) => (at === index ? replaceAt(item, rest, replacement) : item));
  }
  const record = value as Record<string, unknown>;
  const keys = Object.keys(record);
  if (keys.length === 0) return { field: replacement };
  const key = keys[step % keys.length] as string;
  return { ...record, [key]: replaceAt(record[key], rest, replacement) };
}
