import type { Router } from "express";
import type { z } from "zod";
import type { Bot } from "../core/bot.js";
import type { Channel } from "../core/channel.js";
import type { ConversationService } from "../core/conversations.js";
import type { Desk } from "../core/desk.js";
import type { UrlSigner } from "../core/signed-urls.js";
import type { ConversationStore } from "../core/store.js";
import type { Logger } from "../logger.js";

/** Which side of a conversation an external system serves. */
export type AdapterKind = "desk" | "channel" | "bot";

/** What the gateway tells every adapter about itself (values of the core configuration). */
export interface GatewaySettings {
  /** How external systems reach Liaison: the base of every link an adapter hands out. */
  publicUrl: string;
  /** Largest JSON body or socket event. */
  maxPayloadBytes: number;
  /** Largest file an adapter downloads to pass on. */
  maxFileBytes: number;
  /**
   * Hosts whose http(s) file URLs an adapter may download to upload elsewhere (an SSRF guard): `FILE_FETCH_HOSTS`
   * plus the hosts every enabled adapter declares in `fileHosts`. Files elsewhere travel as links.
   */
  fetchHosts: readonly string[];
  /** The desk that receives hand-offs, and whether it is an external system reached through the outbox. */
  desk: { name: string; external: boolean };
}

/** What `create` gets: its own settings, the gateway's, and the core it reports to. */
export interface AdapterDeps<C> {
  /** The adapter's own configuration, parsed by its `config` schema (merged into the one configuration). */
  config: C;
  gateway: GatewaySettings;
  core: ConversationService;
  store: ConversationStore;
  /** Signs the expiring links an adapter hands out for files it serves on someone's behalf. */
  signer: UrlSigner;
  /** A child logger named after the adapter. */
  logger: Logger;
  /**
   * Times one request to the external system (`liaison_adapter_request_seconds`, labelled with the adapter); a
   * request the system refused for its rate limit (a 429) is `rate_limited`, also counted in
   * `liaison_adapter_rate_limited_total`.
   */
  observe: (operation: string, outcome: "ok" | "error" | "rate_limited", seconds: number) => void;
}

/** An enabled adapter: the port it implements, its inbound routes and its health. */
export interface AdapterInstance {
  /** For a `desk` module: the agent side the outbox delivers to. */
  desk?: Desk;
  /** For a `channel` module: the customer side the outbox delivers to. */
  channel?: Channel;
  /** For a `bot` module: the bot that answers before a human does (`BOT` names it). */
  bot?: Bot;
  /** Inbound routes (webhooks, signed file links), mounted at the root of the HTTP server. */
  router?: Router;
  /**
   * Paths of `router` that read their request bodies themselves (to answer a malformed one in the platform's own
   * error shape): the gateway's JSON parser leaves them alone.
   */
  ownBodyPaths?: readonly string[];
  /**
   * Problems of the configuration that do not stop it (a webhook without a token): their `log` is logged once at
   * start, and `/ready` names their `ready` for as long as they last.
   */
  warnings?: readonly AdapterNotice[];
  /**
   * A problem seen at run time (a rejected credential, a system that keeps rate-limiting); undefined while healthy.
   * `/ready` shows its `ready`; its `log` is logged at `warn` by the adapter when the problem appears or changes
   * (not per retry, not per `/ready` call), best through a {@link ProblemLog}.
   */
  problem?(): AdapterNotice | undefined;
}

/**
 * Something wrong with an adapter (a configuration it runs with but should not, a problem at run time), said twice:
 * in detail for the operator who reads the log, and without the configuration's details for `/ready`, which anyone
 * who reaches it may read.
 */
export interface AdapterNotice {
  /**
   * For the log: what is wrong and how to mend it, naming variables, settings and what the system answered.
   */
  log: string;
  /**
   * For `/ready`: what is wrong in words an operator understands, without a variable's name, a host, a URL, an id or
   * the system's own text ("Dialogflow denies the service account (403)").
   */
  ready: string;
}

/**
 * One external system. Each adapter folder exports one value of this type from its `index.ts`, and
 * `server/adapters/index.ts` lists them: the configuration, the composition root and `/ready` take everything else
 * from here, so adding an adapter is adding its folder and one line to that list.
 */
export interface AdapterModule<S extends z.ZodObject = z.ZodObject, D extends object = object> {
  /** `DESK`/`BOT` value, metric label, logger component, `/ready` key: lower case. */
  readonly name: string;
  readonly kind: AdapterKind;
  /** Its environment variables (with defaults and `.describe()` text), merged into the one configuration schema. */
  readonly config: S;
  /** Which of its variables hold secrets: they may come from `<NAME>_FILE` and are never logged. */
  readonly secrets: readonly string[];
  /** The variable that turns it on, for messages ("DESK: rocketchat needs ROCKETCHAT_URL"). */
  readonly enabledBy: string;
  /** Whether its configuration turns it on (a desk then receives hand-offs only when `DESK` names it or by default). */
  enabled(config: z.output<S>): boolean;
  /** Problems across its variables that the schema cannot express, each starting with the variable's name. */
  check?(config: z.output<S>): string[];
  /** Values taken from variables whose names are not fixed (`ATTENDED_TEXT_<LANG>`), merged into its configuration. */
  derive?(env: Readonly<Record<string, string | undefined>>): D;
  /** Hosts the system serves its own files from: other adapters may download files from there. */
  fileHosts?(config: z.output<S>): string[];
  /**
   * Customer channels whose `refId` is an opaque, stable and unguessable id of the customer's account (RapidPro's
   * contact UUID): a desk may use it as its own visitor id, as integrations before Liaison did.
   */
  readonly stableRefIds?: boolean;
  create(deps: AdapterDeps<z.output<S> & D>): AdapterInstance;
}

/** Declares an adapter module with its configuration's type carried through to `enabled`, `check` and `create`. */
export const defineAdapter = <S extends z.ZodObject, D extends object = object>(
  module: AdapterModule<S, D>,
): AdapterModule<S, D> => module;

/**
 * An adapter's run-time problem as it comes and goes: `set` logs it at `warn` when it appears or its `log` text
 * changes (a retry that meets the same problem logs nothing), `clear` logs at `warn` that it is over, and `get` is
 * what `problem()` returns meanwhile.
 */
export class ProblemLog {
  private current: AdapterNotice | undefined;

  constructor(private readonly logger: Pick<Logger, "warn">) {}

  get(): AdapterNotice | undefined {
    return this.current;
  }

  set(problem: AdapterNotice): void {
    if (this.current?.log !== problem.log) this.logger.warn({ problem: problem.log }, "problem");
    this.current = problem;
  }

  clear(): void {
    if (this.current === undefined) return;
    this.logger.warn({ problem: this.current.log }, "problem over");
    this.current = undefined;
  }
}

/**
 * The warning of an adapter that hands links to an external system (file links, callbacks) while `PUBLIC_URL` names
 * this machine, where nobody else can open them; undefined otherwise.
 */
export function localPublicUrlWarning(publicUrl: string): AdapterNotice | undefined {
  return /\/\/(localhost|127\.|\[::1\])/.test(publicUrl)
    ? {
        log: "PUBLIC_URL points at this machine: links handed to the external system will not open elsewhere",
        ready: "links point at this machine",
      }
    : undefined;
}
