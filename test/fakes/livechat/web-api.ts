import type { IncomingMessage, ServerResponse } from "node:http";
import type { CustomerTokens } from "./accounts.js";
import { ACTIONS } from "./actions.js";
import type { ActionContext } from "./actions.js";
import { INVALID_TOKEN_MESSAGE, LcError } from "./errors.js";
import type { Faults } from "./faults.js";
import type { FileStore } from "./files.js";
import { MAX_UPLOAD_BYTES } from "./files.js";
import type { CustomerRecord, FakeState } from "./state.js";
import { isRecord } from "./util.js";

/*
 * The Customer Chat Web API: `POST /v3.6/customer/action/<action>?organization_id=<uuid>` (or `/customer/action/…`
 * with `X-API-Version`), `Authorization: Bearer <customer token>`, a JSON object body (`upload_file`: multipart).
 * Steps, in order: version → action → organization → token → ban → injected failure → rate limit → body → action.
 */

export const SUPPORTED_VERSIONS = new Set(["3.5", "3.6"]);

export interface WebApiSettings {
  organizationId: string;
}

export class WebApi {
  /** Requests left unanswered (`hang`): ended when the fake closes. */
  private readonly hanging = new Set<ServerResponse>();

  constructor(
    private readonly state: FakeState,
    private readonly files: FileStore,
    private readonly tokens: CustomerTokens,
    private readonly faults: Faults,
    private readonly settings: WebApiSettings,
  ) {}

  handle(req: IncomingMessage, res: ServerResponse, raw: Buffer, tooLarge: boolean): void {
    const url = new URL(req.url ?? "/", "http://api");
    const route = /^\/(?:v(\d+\.\d+)\/)?customer\/action\/([a-z_]+)$/.exec(url.pathname);
    if (!route) {
      res.writeHead(404, { "content-type": "text/plain" }).end("Not Found");
      return;
    }
    const action = route[2] ?? "";
    const call = {
      transport: "web" as const,
      action,
      payload: undefined as unknown,
      entityId: undefined as string | undefined,
    };
    if (this.faults.outage === "hang") {
      this.hanging.add(res);
      res.on("close", () => this.hanging.delete(res));
      this.faults.record({ ...call, outcome: "hung" });
      return;
    }
    try {
      if (this.faults.outage === "500") throw new LcError("internal");
      if (this.faults.outage === "503") throw new LcError("service_unavailable");
      const version = route[1] ?? req.headers["x-api-version"];
      if (typeof version !== "string" || !SUPPORTED_VERSIONS.has(version)) throw new LcError("unsupported_version");
      const perform = action === "upload_file" ? undefined : ACTIONS[action];
      if ((action !== "upload_file" && !perform) || req.method !== "POST") {
        throw new LcError("not_found", `Action ${action} not found`);
      }
      const organizationId = url.searchParams.get("organization_id");
      if (organizationId === null || organizationId === "") {
        throw new LcError("validation", "organization_id: required query string parameter");
      }
      if (organizationId !== this.settings.organizationId) throw new LcError("license_not_found");
      const { customer, clientId } = this.authenticate(req.headers.authorization);
      call.entityId = customer.id;
      if (customer.banned) throw new LcError("customer_banned");
      const injected = this.faults.takeFailure("web", action);
      if (injected) throw injected;
      this.faults.checkRate(customer.id, action);
      const ctx: ActionContext = {
        state: this.state,
        files: this.files,
        customer,
        clientId,
        transport: "web",
        origin: { clientId },
      };
      if (action === "upload_file") {
        this.upload(req, res, raw, tooLarge, call);
        return;
      }
      const payload = parseJsonBody(req, raw);
      call.payload = payload;
      const result = perform?.(ctx, payload) ?? {};
      this.answer(res, 200, result, call, "ok");
    } catch (error) {
      this.fail(res, error, call);
    }
  }

  private authenticate(header: string | undefined): { customer: CustomerRecord; clientId: string } {
    const match = /^Bearer (\S+)$/.exec(header ?? "");
    const record = match?.[1] === undefined ? undefined : this.tokens.valid(match[1]);
    const customer = record ? this.state.customers.get(record.entityId) : undefined;
    if (!record || !customer) throw new LcError("authentication", INVALID_TOKEN_MESSAGE);
    return { customer, clientId: record.clientId };
  }

  private upload(
    req: IncomingMessage,
    res: ServerResponse,
    raw: Buffer,
    tooLarge: boolean,
    call: { transport: "web"; action: string; payload: unknown; entityId: string | undefined },
  ): void {
    const contentType = req.headers["content-type"] ?? "";
    if (tooLarge) throw new LcError("entity_too_large");
    if (!/^multipart\/form-data;\s*boundary=/i.test(contentType)) {
      throw new LcError("validation", "Content-Type: multipart/form-data expected");
    }
    // Response.formData() is undici's multipart parser, already in Node.
    void new Response(new Uint8Array(raw), { headers: { "content-type": contentType } })
      .formData()
      .then(
        async (form) => {
          const entries = [...form.keys()];
          const file = form.get("file");
          if (typeof file === "string" || file === null) throw new LcError("validation", "file: required");
          if (entries.some((key) => key !== "file")) throw new LcError("validation", "only the file field is allowed");
          const content = Buffer.from(await file.arrayBuffer());
          call.payload = { name: file.name, type: file.type, size: content.length };
          const stored = this.files.upload(file.name, file.type || "application/octet-stream", content);
          this.answer(res, 200, { url: stored.url }, call, "ok");
        },
        () => {
          throw new LcError("validation", "file: malformed multipart body");
        },
      )
      .catch((error: unknown) => this.fail(res, error, call));
  }

  private answer(
    res: ServerResponse,
    status: number,
    body: unknown,
    call: { transport: "web"; action: string; payload: unknown; entityId: string | undefined },
    outcome: "ok",
  ): void {
    if (this.faults.takeLoss(call.action)) {
      // Carried out, but the answer never arrives: the client sees the connection drop.
      this.faults.record({ ...withoutUndefined(call), outcome: "lost" });
      res.socket?.destroy();
      return;
    }
    this.faults.record({ ...withoutUndefined(call), outcome, status });
    res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(body));
  }

  private fail(
    res: ServerResponse,
    error: unknown,
    call: { transport: "web"; action: string; payload: unknown; entityId: string | undefined },
  ): void {
    const lcError = error instanceof LcError ? error : new LcError("internal");
    this.faults.record({ ...withoutUndefined(call), outcome: lcError.type, status: lcError.status });
    res.writeHead(lcError.status, { "content-type": "application/json" }).end(JSON.stringify(lcError.body()));
  }

  close(): void {
    for (const res of this.hanging) res.socket?.destroy();
    this.hanging.clear();
  }
}

/** The body must be a JSON object sent as `application/json`. */
function parseJsonBody(req: IncomingMessage, raw: Buffer): Record<string, unknown> {
  const contentType = (req.headers["content-type"] ?? "").split(";")[0]?.trim().toLowerCase();
  if (contentType !== "application/json") throw new LcError("validation", "Content-Type: application/json expected");
  let body: unknown;
  try {
    body = JSON.parse(raw.toString("utf8"));
  } catch {
    throw new LcError("validation", "Invalid message");
  }
  if (!isRecord(body)) throw new LcError("validation", "Invalid message");
  return body;
}

function withoutUndefined<T extends Record<string, unknown>>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T;
}

/** Bodies are read whole; past this the request is answered `entity_too_large` without keeping the rest. */
export const MAX_BODY_BYTES = MAX_UPLOAD_BYTES + 1024 * 1024;
