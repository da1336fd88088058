import { LcError } from "./errors.js";
import type { FileStore } from "./files.js";
import { parsePayload, payloadSchemas } from "./schema.js";
import type { CustomerEventInput } from "./schema.js";
import { lastThread } from "./state.js";
import type { ChatRecord, CustomerRecord, FakeState, NewEvent, Origin } from "./state.js";
import { formatUs, parseRfc3339Us } from "./util.js";

/*
 * The customer actions, shared by the Web API and the RTM socket (LiveChat serves the same methods on both, except
 * `upload_file`, which is Web only, and `login`, which is RTM only). Each takes the parsed JSON payload and returns the
 * response payload, or throws an LcError.
 */

export interface ActionContext {
  state: FakeState;
  files: FileStore;
  customer: CustomerRecord;
  /** The Client ID the customer's token was issued for: the chat's `source.client_id`. */
  clientId: string;
  transport: "web" | "rtm";
  origin: Origin;
}

/** Customer session fields: "The maximum number of keys: 100." */
const MAX_SESSION_FIELDS = 100;

export const ACTIONS: Record<string, (ctx: ActionContext, payload: unknown) => Record<string, unknown>> = {
  start_chat(ctx, payload) {
    const p = parsePayload(payloadSchemas.start_chat[ctx.transport], payload);
    const users = (p.chat as { users?: { id: string }[] } | undefined)?.users;
    if (users?.some((user) => user.id !== ctx.customer.id)) {
      throw new LcError("validation", "chat.users: only the requester may be listed");
    }
    const events = (p.chat?.thread?.events ?? []).map((event, i) => toNewEvent(ctx, event, `chat.thread.events.${i}`));
    const result = ctx.state.startChat(
      ctx.customer,
      {
        ...(p.chat?.access ? { groupIds: p.chat.access.group_ids } : {}),
        properties: ctx.state.checkProperties(p.chat?.properties, "chat.properties"),
        threadProperties: ctx.state.checkProperties(p.chat?.thread?.properties, "chat.thread.properties"),
        events,
        active: p.active ?? true,
        continuous: p.continuous ?? false,
        sourceClientId: ctx.clientId,
      },
      ctx.origin,
    );
    useFiles(ctx, events);
    return {
      chat_id: result.chat.id,
      thread_id: result.thread.id,
      ...(events.length > 0 ? { event_ids: result.eventIds } : {}),
    };
  },

  resume_chat(ctx, payload) {
    const p = parsePayload(payloadSchemas.resume_chat, payload);
    const events = (p.chat.thread?.events ?? []).map((event, i) => toNewEvent(ctx, event, `chat.thread.events.${i}`));
    const result = ctx.state.resumeChat(
      ctx.customer,
      p.chat.id,
      {
        ...(p.chat.access ? { groupIds: p.chat.access.group_ids } : {}),
        properties: ctx.state.checkProperties(p.chat.properties, "chat.properties"),
        threadProperties: ctx.state.checkProperties(p.chat.thread?.properties, "chat.thread.properties"),
        events,
        active: p.active ?? true,
        ...(p.continuous === undefined ? {} : { continuous: p.continuous }),
      },
      ctx.origin,
    );
    useFiles(ctx, events);
    return { thread_id: result.thread.id, ...(events.length > 0 ? { event_ids: result.eventIds } : {}) };
  },

  send_event(ctx, payload) {
    const p = parsePayload(payloadSchemas.send_event, payload);
    const event = toNewEvent(ctx, p.event, "event");
    const stored = ctx.state.sendEvent(ctx.customer, p.chat_id, event, p.attach_to_last_thread ?? false, ctx.origin);
    useFiles(ctx, [event]);
    return { event_id: stored.id };
  },

  deactivate_chat(ctx, payload) {
    const p = parsePayload(payloadSchemas.deactivate_chat, payload);
    ctx.state.deactivateByCustomer(ctx.customer, p.id, ctx.origin);
    return {};
  },

  get_chat(ctx, payload) {
    const p = parsePayload(payloadSchemas.get_chat, payload);
    const chat = ctx.state.requireChatOf(ctx.customer, p.chat_id);
    const thread =
      p.thread_id === undefined ? lastThread(chat) : chat.threads.find((candidate) => candidate.id === p.thread_id);
    if (!thread) throw new LcError("not_found", "Thread not found");
    return ctx.state.chatView(chat, thread);
  },

  list_threads(ctx, payload) {
    const p = parsePayload(payloadSchemas.list_threads, payload);
    const chat = ctx.state.requireChatOf(ctx.customer, p.chat_id);
    const page = p.page_id === undefined ? undefined : decodePage(p.page_id, "threads", chat.id);
    const order = page?.order ?? p.sort_order ?? "desc";
    const ordered = order === "desc" ? [...chat.threads].reverse() : [...chat.threads];
    let offset = page?.offset ?? 0;
    let limit = page?.limit ?? p.limit ?? 3;
    if (p.min_events_count !== undefined) {
      // "You'll get as many latest threads as needed to meet the min_events_count condition."
      let events = 0;
      limit = 0;
      for (const thread of ordered) {
        limit += 1;
        events += thread.events.filter((e) => e.visibility === "all").length;
        if (events >= p.min_events_count) break;
      }
      offset = 0;
    }
    const slice = ordered.slice(offset, offset + limit);
    return {
      threads: slice.map((thread) => ctx.state.threadView(chat, thread, "customer")),
      found_threads: chat.threads.length,
      ...(offset + limit < ordered.length
        ? { next_page_id: encodePage({ kind: "threads", key: chat.id, order, limit, offset: offset + limit }) }
        : {}),
      ...(offset > 0
        ? {
            previous_page_id: encodePage({
              kind: "threads",
              key: chat.id,
              order,
              limit,
              offset: Math.max(0, offset - limit),
            }),
          }
        : {}),
    };
  },

  list_chats(ctx, payload) {
    const p = parsePayload(payloadSchemas.list_chats, payload);
    const page = p.page_id === undefined ? undefined : decodePage(p.page_id, "chats", ctx.customer.id);
    const order = page?.order ?? p.sort_order ?? "desc";
    const limit = page?.limit ?? p.limit ?? 10;
    const offset = page?.offset ?? 0;
    // "Chat summaries are sorted by the creation date of its last thread."
    const chats = ctx.state.chatsOf(ctx.customer.id).sort((a, b) => lastThread(a).createdUs - lastThread(b).createdUs);
    if (order === "desc") chats.reverse();
    const slice = chats.slice(offset, offset + limit);
    return {
      chats_summary: slice.map((chat) => chatSummary(ctx, chat)),
      total_chats: chats.length,
      ...(offset + limit < chats.length
        ? { next_page_id: encodePage({ kind: "chats", key: ctx.customer.id, order, limit, offset: offset + limit }) }
        : {}),
      ...(offset > 0
        ? {
            previous_page_id: encodePage({
              kind: "chats",
              key: ctx.customer.id,
              order,
              limit,
              offset: Math.max(0, offset - limit),
            }),
          }
        : {}),
    };
  },

  update_customer(ctx, payload) {
    const p = parsePayload(payloadSchemas.update_customer, payload);
    if (p.session_fields) checkSessionFields(p.session_fields);
    ctx.state.updateCustomer(ctx.customer, p, ctx.origin);
    return {};
  },

  set_customer_session_fields(ctx, payload) {
    const p = parsePayload(payloadSchemas.set_customer_session_fields, payload);
    checkSessionFields(p.session_fields);
    ctx.state.updateCustomer(ctx.customer, { session_fields: p.session_fields }, ctx.origin);
    return {};
  },

  get_customer(ctx, payload) {
    parsePayload(payloadSchemas.get_customer, payload);
    return { id: ctx.customer.id, type: "customer", ...ctx.state.customerFields(ctx.customer) };
  },

  list_group_statuses(ctx, payload) {
    const p = parsePayload(payloadSchemas.list_group_statuses, payload);
    const ids = p.all === true ? [...ctx.state.groups.keys()] : (p.group_ids ?? []);
    const status: Record<string, string> = {};
    // "If you send group_id of a group that doesn't exist, the id won't be included in the response."
    for (const id of ids) if (ctx.state.groups.has(id)) status[String(id)] = ctx.state.groupStatus(id);
    return { groups_status: status };
  },

  mark_events_as_seen(ctx, payload) {
    const p = parsePayload(payloadSchemas.mark_events_as_seen, payload);
    const us = parseRfc3339Us(p.seen_up_to);
    if (us === undefined) throw new LcError("validation", "seen_up_to: not an RFC 3339 date-time");
    ctx.state.markEventsAsSeen(ctx.customer, p.chat_id, us, ctx.origin);
    return {};
  },

  send_sneak_peek(ctx, payload) {
    const p = parsePayload(payloadSchemas.send_sneak_peek, payload);
    ctx.state.sneakPeek(ctx.customer, p.chat_id, p.sneak_peek_text);
    return {};
  },
};

/** Actions LiveChat answers with GET (configuration readers): the fake implements none of them. */
export const GET_ACTIONS = new Set([
  "list_license_properties",
  "list_group_properties",
  "get_dynamic_configuration",
  "get_configuration",
  "get_localization",
]);

function toNewEvent(ctx: ActionContext, event: CustomerEventInput, where: string): NewEvent {
  const { type, custom_id: customId, recipients, properties, ...rest } = event;
  const checkedProperties =
    properties === undefined ? undefined : ctx.state.checkProperties(properties, `${where}.properties`);
  let body: Record<string, unknown> = rest;
  if (event.type === "file") {
    const file = ctx.files.resolve(event.url);
    // "Has to point to the LiveChat CDN": an upload of this CDN that has not expired.
    if (!file) throw new LcError("validation", `${where}.url: not a LiveChat CDN file`);
    body = {
      ...ctx.files.eventFields(file),
      ...(event.alternative_text === undefined ? {} : { alternative_text: event.alternative_text }),
    };
  }
  return {
    type,
    ...(customId === undefined ? {} : { customId }),
    ...(recipients === undefined ? {} : { visibility: recipients }),
    ...(checkedProperties === undefined ? {} : { properties: checkedProperties }),
    body,
  };
}

/** A file sent in an event no longer expires. */
function useFiles(ctx: ActionContext, events: NewEvent[]): void {
  for (const event of events) {
    if (event.type !== "file" || typeof event.body.url !== "string") continue;
    const file = ctx.files.resolve(event.body.url);
    if (file) file.permanent = true;
  }
}

function checkSessionFields(fields: Record<string, string>[]): void {
  const keys = fields.reduce((count, entry) => count + Object.keys(entry).length, 0);
  if (keys > MAX_SESSION_FIELDS) throw new LcError("customer_session_fields_limit_reached");
}

function chatSummary(ctx: ActionContext, chat: ChatRecord): Record<string, unknown> {
  const last = lastThread(chat);
  const lastPerType: Record<string, unknown> = {};
  for (const thread of chat.threads) {
    for (const event of thread.events) {
      if (event.visibility !== "all") continue;
      lastPerType[event.type] = {
        thread_id: thread.id,
        thread_created_at: formatUs(thread.createdUs),
        event: ctx.state.customerEventView(event),
      };
    }
  }
  return {
    id: chat.id,
    last_thread_id: last.id,
    last_thread_created_at: formatUs(last.createdUs),
    last_event_per_type: lastPerType,
    users: ctx.state.usersView(chat),
    access: { group_ids: [...chat.access.group_ids] },
    properties: structuredClone(chat.properties),
    active: last.active,
  };
}

interface Page {
  kind: "threads" | "chats";
  key: string;
  order: "asc" | "desc";
  limit: number;
  offset: number;
}

function encodePage(page: Page): string {
  return Buffer.from(JSON.stringify(page)).toString("base64");
}

function decodePage(pageId: string, kind: Page["kind"], key: string): Page {
  try {
    const page = JSON.parse(Buffer.from(pageId, "base64").toString("utf8")) as Partial<Page>;
    if (
      page.kind === kind &&
      page.key === key &&
      (page.order === "asc" || page.order === "desc") &&
      Number.isInteger(page.limit) &&
      Number.isInteger(page.offset)
    ) {
      return page as Page;
    }
  } catch {
    // falls through to the validation error
  }
  throw new LcError("validation", "page_id: invalid");
}
