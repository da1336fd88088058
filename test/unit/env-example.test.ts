import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { ConfigSchema, renderEnvExample } from "../../server/config.js";

describe(".env.example", () => {
  it("is the one generated from the config schema (run npm run env:example after changing server/config.ts)", () => {
    expect(readFileSync(new URL("../../.env.example", import.meta.url), "utf8")).toBe(renderEnvExample());
  });

  it("documents every variable", () => {
    for (const [name, schema] of Object.entries(ConfigSchema.shape) as [string, { description?: string }][]) {
      expect(schema.description, name).toBeTruthy();
    }
  });
});
