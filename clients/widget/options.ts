/** Extra pre-chat fields a site may ask for, besides the name and the e-mail address. */
export const extraFields = ["phone", "comment"] as const;
export type ExtraField = (typeof extraFields)[number];

/**
 * How a site configures the widget: as `data-*` attributes on its script tag, or with `LiaisonWidget.init({...})`,
 * whose values win over the attributes.
 */
export interface WidgetOptions {
  /** The gateway's URL (default: where `widget.js` was loaded from). */
  url?: string;
  /** The chat's title, shown in the panel's header and as the frame's title (default "Chat", translated). */
  title?: string;
  /** The language of the widget's text and of the conversation, e.g. `ar` (default: the browser's). */
  language?: string;
  /** The conversation's channel (default `web`). */
  channel?: string;
  /** The conversation's subject (routes it to a queue on the desk). */
  subject?: string;
  /** The accent colour, any CSS colour (default a blue with white text on it). */
  color?: string;
  /** Extra pre-chat fields: `phone`, `comment`. */
  fields?: ExtraField[];
  /**
   * Whether the e-mail address is required (default `true`). When `false`, the phone field is shown and the visitor
   * gives an e-mail address or a phone number (the gateway needs one of them).
   */
  requireEmail?: boolean;
}

/** Reads the options from a script tag's `data-*` attributes. */
export function optionsFromAttributes(script: HTMLOrSVGScriptElement | null): WidgetOptions {
  const data = script instanceof HTMLScriptElement ? script.dataset : {};
  const options: WidgetOptions = {};
  const text = (value: string | undefined): string | undefined => {
    const trimmed = value?.trim();
    return trimmed === undefined || trimmed === "" ? undefined : trimmed;
  };
  const title = text(data.title);
  const language = text(data.language);
  const channel = text(data.channel);
  const subject = text(data.subject);
  const color = text(data.color);
  const url = text(data.url);
  if (title !== undefined) options.title = title;
  if (language !== undefined) options.language = language;
  if (channel !== undefined) options.channel = channel;
  if (subject !== undefined) options.subject = subject;
  if (color !== undefined) options.color = color;
  if (url !== undefined) options.url = url;
  if (data.fields !== undefined) options.fields = parseFields(data.fields);
  if (data.requireEmail !== undefined) options.requireEmail = data.requireEmail.trim().toLowerCase() !== "false";
  return options;
}

/** Keeps the known extra fields of a comma-separated list or an array, once each. */
export function parseFields(value: unknown): ExtraField[] {
  const items = typeof value === "string" ? value.split(",") : Array.isArray(value) ? value : [];
  const known = new Set<ExtraField>();
  for (const item of items) {
    const name = typeof item === "string" ? item.trim().toLowerCase() : "";
    if ((extraFields as readonly string[]).includes(name)) known.add(name as ExtraField);
  }
  return [...known];
}

/** Takes what `LiaisonWidget.init` was given, keeping only well-typed options. */
export function optionsFromInit(input: unknown): WidgetOptions {
  if (input === null || typeof input !== "object") return {};
  const raw = input as Record<string, unknown>;
  const options: WidgetOptions = {};
  for (const key of ["url", "title", "language", "channel", "subject", "color"] as const) {
    const value = raw[key];
    if (typeof value === "string" && value.trim() !== "") options[key] = value.trim();
  }
  if (raw.fields !== undefined) options.fields = parseFields(raw.fields);
  if (typeof raw.requireEmail === "boolean") options.requireEmail = raw.requireEmail;
  return options;
}

/** The frame's query string: the options the panel needs, and the page the visitor is on. */
export function frameQuery(options: WidgetOptions, page: string): string {
  const query = new URLSearchParams();
  if (options.title !== undefined) query.set("title", options.title);
  if (options.language !== undefined) query.set("language", options.language);
  if (options.channel !== undefined) query.set("channel", options.channel);
  if (options.subject !== undefined) query.set("subject", options.subject);
  if (options.color !== undefined) query.set("color", options.color);
  if (options.fields !== undefined && options.fields.length > 0) query.set("fields", options.fields.join(","));
  if (options.requireEmail === false) query.set("requireEmail", "false");
  if (/^https?:/.test(page)) {
    query.set("page", page.slice(0, 2048));
    query.set("host", new URL(page).origin);
  }
  return query.toString();
}

/** The options and the visitor's page, as the frame reads them back from its query string. */
export interface FrameOptions extends WidgetOptions {
  page?: string;
  /** The host page's origin: the only one the frame talks to. */
  host?: string;
}

export function optionsFromQuery(search: string): FrameOptions {
  const query = new URLSearchParams(search);
  const options: FrameOptions = optionsFromInit({
    title: query.get("title") ?? undefined,
    language: query.get("language") ?? undefined,
    channel: query.get("channel") ?? undefined,
    subject: query.get("subject") ?? undefined,
    color: query.get("color") ?? undefined,
  });
  const fields = query.get("fields");
  if (fields !== null) options.fields = parseFields(fields);
  if (query.get("requireEmail") === "false") options.requireEmail = false;
  const page = query.get("page");
  if (page !== null && /^https?:\/\//.test(page)) options.page = page;
  const host = query.get("host");
  if (host !== null && /^https?:\/\/[^/]+$/.test(host)) options.host = host;
  return options;
}

/** A colour the browser understands, or undefined (so a site cannot inject other CSS through it). */
export function safeColor(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  return typeof CSS !== "undefined" && CSS.supports("color", value) ? value : undefined;
}

/**
 * Messages between the host page and the panel's frame (`postMessage`). The conversation is kept in the host page's
 * `localStorage`, through the loader: browsers that block or partition a third-party frame's storage (Safari, Brave,
 * private windows) would otherwise forget it on every reload.
 */
export type FrameMessage =
  /** Frame → page: the panel is listening; the page answers with `state`. */
  | { liaison: "ready" }
  /** Frame → page: the visitor closed the panel. */
  | { liaison: "close" }
  /** Frame → page: keep this conversation state (`null`: forget it). */
  | { liaison: "save"; value: string | null }
  /** Page → frame: the conversation state kept for this site, if any. */
  | { liaison: "state"; value: string | null }
  /** Page → frame: the panel was opened; put the focus in it. */
  | { liaison: "open" };
