import { describe, expect, it } from "vitest";
import { LiveChatConfigSchema } from "../../server/adapters/livechat/config.js";
import {
  customerFields,
  eventsFromChat,
  eventsFromPayload,
  groupFor,
  type MapContext,
} from "../../server/adapters/livechat/mapper.js";
import type { Conversation } from "../../server/core/conversation.js";

const CUSTOMER = "0f9e8d7c-1111-4222-8333-944455556666";
const AGENT = "b5657aff34dd32e198160d54666df9d8";
const ctx: MapContext = {
  customerId: CUSTOMER,
  agentName: (id) => (id === AGENT ? "Anna Smith" : undefined),
};
const anna = { id: `livechat:${AGENT}`, name: "Anna Smith" };

/** Payloads shaped as the spec's examples (RTM pushes and webhooks share them). */
const message = (event: Record<string, unknown>) => ({
  chat_id: "R4ND0MCH4T",
  thread_id: "THR3AD01",
  event: { id: "THR3AD01_5", created_at: "2026-05-04T10:12:00.000000Z", recipients: "all", ...event },
});

describe("LiveChat mapper", () => {
  it("maps an agent's message, file and card; skips internal notes, system messages and the customer's own", () => {
    expect(
      eventsFromPayload("incoming_event", message({ type: "message", text: "Anything else?", author_id: AGENT }), ctx),
    ).toEqual([
      { type: "agentMessage", externalId: "THR3AD01_5", agent: anna, text: "Anything else?", attachments: [] },
    ]);
    expect(
      eventsFromPayload(
        "incoming_event",
        message({
          type: "file",
          author_id: AGENT,
          url: "https://cdn.livechat-files.com/api/file/lc/att/1/abc/route.png",
          name: "route.png",
          content_type: "image/png",
          thumbnail_url: "https://cdn.livechat-files.com/api/file/lc/att/1/abc/thumbnail_route.png",
        }),
        ctx,
      ),
    ).toEqual([
      {
        type: "agentMessage",
        externalId: "THR3AD01_5",
        agent: anna,
        text: "",
        attachments: [
          {
            type: "image/png",
            name: "route.png",
            contentUrl: "https://cdn.livechat-files.com/api/file/lc/att/1/abc/route.png",
            thumbnailUrl: "https://cdn.livechat-files.com/api/file/lc/att/1/abc/thumbnail_route.png",
          },
        ],
      },
    ]);
    const card = message({
      type: "rich_message",
      author_id: AGENT,
      template_id: "cards",
      elements: [{ title: "Plan A", subtitle: "$10", buttons: [{ text: "Choose", postback_id: "a", user_ids: [] }] }],
    });
    expect(eventsFromPayload("incoming_event", card, ctx)[0]).toMatchObject({ text: "Plan A\n$10\n[Choose]" });
    const note = message({
      type: "message",
      text: "psst",
      author_id: AGENT,
      recipients: undefined,
      visibility: "agents",
    });
    expect(eventsFromPayload("incoming_event", note, ctx)).toEqual([]);
    const system = message({ type: "system_message", text: "Anna joined", system_message_type: "agent_joined" });
    expect(eventsFromPayload("incoming_event", system, ctx)).toEqual([]);
    const own = message({ type: "message", text: "hi", author_id: CUSTOMER, custom_id: "m_1" });
    expect(eventsFromPayload("incoming_event", own, ctx)).toEqual([]);
    // An agent Liaison has no name for is "Agent", never the agent's login e-mail.
    const stranger = message({ type: "message", text: "hi", author_id: "omar@example.org" });
    expect(eventsFromPayload("incoming_event", stranger, ctx)[0]).toMatchObject({
      agent: { id: "livechat:omar@example.org", name: "Agent" },
    });
  });

  it("maps joins, leaves, queue positions, transfers and closes", () => {
    const base = { chat_id: "R4ND0MCH4T", thread_id: "THR3AD01" };
    expect(
      eventsFromPayload(
        "user_added_to_chat",
        { ...base, user: { id: AGENT, type: "agent", name: "Anna Smith", present: true }, reason: "assigned" },
        ctx,
      ),
    ).toEqual([{ type: "agentJoined", agent: anna }]);
    expect(
      eventsFromPayload(
        "user_added_to_chat",
        { ...base, user: { id: CUSTOMER, type: "customer" }, reason: "manual" },
        ctx,
      ),
    ).toEqual([]);
    expect(eventsFromPayload("user_removed_from_chat", { ...base, user_id: AGENT, reason: "manual" }, ctx)).toEqual([
      { type: "agentLeft", agent: anna },
    ]);
    expect(
      eventsFromPayload("queue_position_updated", { ...base, queue: { position: 3, wait_time: 180 } }, ctx),
    ).toEqual([{ type: "queued", position: 3, estimatedWaitSeconds: 180 }]);
    expect(
      eventsFromPayload(
        "chat_transferred",
        {
          ...base,
          requester_id: AGENT,
          transferred_to: { group_ids: [2] },
          queue: { position: 1, wait_time: 60, queued_at: "2026-05-04T10:12:00.000000Z" },
        },
        ctx,
      ),
    ).toEqual([{ type: "queued", position: 1, estimatedWaitSeconds: 60 }]);
    expect(eventsFromPayload("chat_deactivated", { ...base, user_id: AGENT }, ctx)).toEqual([
      { type: "closed", by: "agent", agent: anna, reason: "chat_deactivated" },
    ]);
    expect(eventsFromPayload("chat_deactivated", base, ctx)).toEqual([
      { type: "closed", by: "system", reason: "chat_deactivated" },
    ]);
    expect(eventsFromPayload("chat_deactivated", { ...base, user_id: CUSTOMER }, ctx)).toEqual([]);
    expect(eventsFromPayload("incoming_event", { chat_id: 5 }, ctx)).toEqual([]);
  });

  it("reads a chat after a reconnect: agents present, their messages, and a close that was missed", () => {
    const chat = {
      id: "R4ND0MCH4T",
      users: [
        { id: CUSTOMER, type: "customer", present: true },
        { id: AGENT, type: "agent", name: "Anna Smith", present: true },
      ],
      thread: {
        id: "THR3AD01",
        active: false,
        user_ids: [CUSTOMER, AGENT],
        events: [
          { id: "THR3AD01_1", type: "message", text: "hello", author_id: CUSTOMER, custom_id: "m_1" },
          { id: "THR3AD01_2", type: "message", text: "Hi!", author_id: AGENT },
        ],
      },
    };
    expect(eventsFromChat(chat, ctx)).toEqual([
      { type: "agentJoined", agent: anna },
      { type: "agentMessage", externalId: "THR3AD01_2", agent: anna, text: "Hi!", attachments: [] },
      { type: "closed", by: "system", reason: "chat_deactivated" },
    ]);
  });

  it("picks the group by subject and tells LiveChat who the customer is", () => {
    const config = LiveChatConfigSchema.parse({ LIVECHAT_GROUP_ID: "1", LIVECHAT_GROUPS: '{"billing":2}' });
    expect(groupFor({ subject: "billing" }, config)).toBe(2);
    expect(groupFor({ subject: "other" }, config)).toBe(1);
    expect(groupFor({ subject: "" }, config)).toBe(1);
    expect(LiveChatConfigSchema.safeParse({ LIVECHAT_GROUPS: '{"billing":"two"}' }).success).toBe(false);
    expect(LiveChatConfigSchema.safeParse({ LIVECHAT_GROUPS: "not json" }).success).toBe(false);
    const conversation = {
      id: "c_1",
      channel: "sms",
      subject: "billing",
      verified: true,
      customer: { id: "u_1", name: "Bilal Ahmed", firstName: "Bilal", email: "not-an-email", phone: "+923001234567" },
    } as Conversation;
    expect(customerFields(conversation)).toEqual({
      name: "Bilal Ahmed",
      session_fields: [
        { channel: "sms" },
        { subject: "billing" },
        { liaison_conversation: "c_1" },
        { phone: "+923001234567" },
      ],
    });
  });
});
