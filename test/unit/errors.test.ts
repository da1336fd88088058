import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import {
  AckFailureSchema,
  ErrorBodySchema,
  ErrorCodeSchema,
  ErrorInfoSchema,
  InitRequestSchema,
  SendMessageSchema,
  errorCatalogue,
  errorCodes,
  type ErrorCode,
} from "../../protocol/index.js";
import { AdapterError, GatewayError, invalidPayload } from "../../server/core/errors.js";

const README_PATH = fileURLToPath(new URL("../../README.md", import.meta.url));
const SERVER_DIR = fileURLToPath(new URL("../../server/", import.meta.url));

/**
 * The codes and statuses of the README's "Errors" table (which follows the protocol spec's list), read at test time
 * so that the catalogue, the documentation and the code cannot drift apart (the fastify errors test, adapted).
 */
function specErrorCodes(): Map<string, number> {
  const readme = readFileSync(README_PATH, "utf8");
  // The README's "Errors" heading (a section, or since the README became a user's guide, a subsection of "The API in
  // practice"), up to the next heading of any level.
  const section = /^#{2,3} Errors\n([\s\S]*?)(?=^#{2,3} )/m.exec(readme)?.[1];
  if (section === undefined) throw new Error(`no "Errors" section in ${README_PATH}`);
  const codes = new Map<string, number>();
  for (const match of section.matchAll(/^\|\s*`([a-z_]+)`\s*\|\s*(\d{3})\s*\|/gm)) {
    const [, code, status] = match;
    if (code === undefined || status === undefined) continue;
    if (codes.has(code)) throw new Error(`the README lists ${code} twice`);
    codes.set(code, Number(status));
  }
  return codes;
}

/** Every `.ts` file under server/, with its text. */
function serverSources(): { file: string; text: string }[] {
  return readdirSync(SERVER_DIR, { recursive: true, encoding: "utf8" })
    .filter((file) => file.endsWith(".ts"))
    .map((file) => ({ file, text: readFileSync(join(SERVER_DIR, file), "utf8") }));
}

const catalogueEntries = Object.entries(errorCatalogue) as [ErrorCode, { status: number; message: string }][];

describe("error catalogue, documentation and code stay in step", () => {
  const spec = specErrorCodes();

  it("finds the documented list of error codes", () => {
    // A parse that silently found nothing would make the next tests pass vacuously.
    expect(spec.size).toBeGreaterThanOrEqual(11);
    expect(spec.get("invalid_payload")).toBe(400);
    expect(spec.get("internal")).toBe(500);
  });

  it("has every documented code, with its documented HTTP status", () => {
    for (const [code, status] of spec) {
      expect(
        errorCatalogue,
        `spec code ${code} (documented in the README) is missing from protocol/errors.ts`,
      ).toHaveProperty(code);
      expect(errorCatalogue[code as ErrorCode].status, `status of ${code}`).toBe(status);
    }
  });

  it("has no undocumented code", () => {
    for (const [code, { status }] of catalogueEntries) {
      expect(spec.get(code), `${code} (${status}) is not documented in the README's Errors table`).toBe(status);
    }
  });

  it("gives every code an error status and a default message", () => {
    for (const [code, { status, message }] of catalogueEntries) {
      expect(status, code).toBeGreaterThanOrEqual(400);
      expect(status, code).toBeLessThan(600);
      expect(message.trim().length, code).toBeGreaterThan(0);
    }
  });

  it("accepts exactly the catalogue's codes on the wire", () => {
    expect([...errorCodes].sort()).toEqual(Object.keys(errorCatalogue).sort());
    for (const code of errorCodes) expect(ErrorCodeSchema.safeParse(code).success).toBe(true);
    for (const code of ["bad_request", "Invalid_Payload", "", "timeout"]) {
      expect(ErrorCodeSchema.safeParse(code).success).toBe(false);
    }
  });

  it("raises only catalogue codes anywhere in server/, and raises every one of them somewhere", () => {
    const raised = new Map<string, string>();
    for (const { file, text } of serverSources()) {
      for (const match of text.matchAll(/(?:GatewayError\(\s*|\bcode:\s*)"([a-z_]+)"/g)) {
        if (match[1] !== undefined) raised.set(match[1], file);
      }
    }
    for (const [code, file] of raised) {
      expect(errorCatalogue, `${file} uses the uncatalogued code ${code}`).toHaveProperty(code);
    }
    for (const code of errorCodes) {
      expect(raised.has(code), `no server code raises ${code}: drop it from the catalogue and the spec`).toBe(true);
    }
  });
});

describe("GatewayError", () => {
  it("takes its status and default message from the catalogue", () => {
    for (const [code, { status, message }] of catalogueEntries) {
      const error = new GatewayError(code);
      expect(error).toBeInstanceOf(Error);
      expect(error.name).toBe("GatewayError");
      expect(error.code).toBe(code);
      expect(error.status).toBe(status);
      expect(error.message).toBe(message);
    }
  });

  it("toInfo() is { code, message } without details, and carries details when given", () => {
    const bare = new GatewayError("not_found", "No such conversation.").toInfo();
    expect(bare).toStrictEqual({ code: "not_found", message: "No such conversation." });
    expect(Object.keys(bare)).not.toContain("details");

    const detailed = new GatewayError("conflict", "A different message was already sent with this id.", {
      id: "client-1",
    }).toInfo();
    expect(detailed).toStrictEqual({
      code: "conflict",
      message: "A different message was already sent with this id.",
      details: { id: "client-1" },
    });
  });

  it("toInfo() is what the wire schemas accept, as an ack and as an HTTP body", () => {
    const info = new GatewayError("rate_limited", undefined, { retryAfterSeconds: 12 }).toInfo();
    expect(ErrorInfoSchema.parse(info)).toEqual(info);
    expect(AckFailureSchema.parse({ ok: false, error: info })).toEqual({ ok: false, error: info });
    expect(ErrorBodySchema.parse({ error: info })).toEqual({ error: info });
    // The wire form is JSON: nothing in it may be lost by serialisation.
    expect(JSON.parse(JSON.stringify(info))).toEqual(info);
  });

  it("keeps a status override (422 for a transcript e-mail without address) and the cause", () => {
    const cause = new Error("smtp down");
    const error = new GatewayError("invalid_payload", "No e-mail address.", undefined, { status: 422, cause });
    expect(error.status).toBe(422);
    expect(error.code).toBe("invalid_payload");
    expect(error.cause).toBe(cause);
    expect(error.toInfo()).toStrictEqual({ code: "invalid_payload", message: "No e-mail address." });
  });

  it("AdapterError is an unavailable GatewayError naming its adapter", () => {
    const error = new AdapterError("rocketchat", "upstream 502", true, 502, { retryAfterMs: 1500 });
    expect(error).toBeInstanceOf(GatewayError);
    expect(error.name).toBe("AdapterError");
    expect(error.code).toBe("unavailable");
    expect(error.status).toBe(503);
    expect(error).toMatchObject({ adapter: "rocketchat", retryable: true, upstreamStatus: 502, retryAfterMs: 1500 });
    expect(error.toInfo()).toStrictEqual({ code: "unavailable", message: "upstream 502" });
  });
});

describe("invalidPayload", () => {
  const fieldsOf = (error: GatewayError): { path: string; message: string }[] => {
    const fields = z.array(z.object({ path: z.string(), message: z.string() })).parse(error.details?.fields);
    return fields;
  };

  it("lists one field per zod issue, with dotted paths", () => {
    const result = SendMessageSchema.safeParse({
      conversationId: "c_1",
      attachments: [{ type: "image/png", name: "a.png", contentUrl: "file:///etc/passwd" }],
      tag: "secret",
    });
    expect(result.success).toBe(false);
    const error = invalidPayload(result.error?.issues ?? []);
    expect(error.code).toBe("invalid_payload");
    expect(error.status).toBe(400);
    expect(error.message).toBe(errorCatalogue.invalid_payload.message);
    const paths = fieldsOf(error).map((field) => field.path);
    expect(paths).toEqual(expect.arrayContaining(["attachments.0.contentUrl", "tag"]));
    for (const field of fieldsOf(error)) expect(field.message.length).toBeGreaterThan(0);
  });

  it("names the root when the whole payload is wrong, and keeps a custom message", () => {
    const result = InitRequestSchema.safeParse("not an object");
    const error = invalidPayload(result.error?.issues ?? [], "Bad init body.");
    expect(error.message).toBe("Bad init body.");
    expect(fieldsOf(error)).toEqual([{ path: "(root)", message: expect.any(String) as string }]);
  });

  it("renders symbol and numeric path segments as text", () => {
    const error = invalidPayload([
      { path: [Symbol("meta"), "x"], message: "odd" },
      { path: ["to", 3, "id"], message: "required" },
    ]);
    expect(fieldsOf(error)).toEqual([
      { path: "Symbol(meta).x", message: "odd" },
      { path: "to.3.id", message: "required" },
    ]);
    expect(ErrorInfoSchema.safeParse(error.toInfo()).success).toBe(true);
  });
});
