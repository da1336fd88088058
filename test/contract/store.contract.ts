import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { ChatMessage, ConversationState, StoredMessage } from "../../protocol/index.js";
import type { Conversation } from "../../server/core/conversation.js";
import type {
  ConversationStore,
  ListPosition,
  MessageDraft,
  OpenConversationPage,
  OpenConversationQuery,
  OutboxLane,
} from "../../server/core/store.js";

let counter = 0;
const uid = (prefix: string) => `${prefix}_${process.pid}_${Date.now()}_${++counter}`;

export function conversationFixture(overrides: Partial<Conversation> = {}): Conversation {
  return {
    id: uid("c"),
    token: uid("t"),
    channel: "web",
    customer: { id: uid("p"), name: "Sara Khan", firstName: "Sara", lastName: "Khan", email: "sara@example.org" },
    subject: "billing",
    language: "en",
    state: "queued",
    desk: { desk: "socket", ids: {} },
    requestId: uid("r"),
    createdAt: "2026-11-21T10:00:00.000Z",
    ...overrides,
  };
}

export function chatDraft(conversationId: string, text: string, overrides: Partial<ChatMessage> = {}): MessageDraft {
  return {
    type: "ChatMessage",
    id: uid("m"),
    conversationId,
    timestamp: "2026-11-21T10:00:01.000Z",
    from: { id: "agent-1", name: "Ali" },
    to: [],
    text,
    attachments: [],
    tag: "",
    ...overrides,
  };
}

/**
 * The contract every ConversationStore implementation passes: run it with a factory for a fresh, empty store.
 * (The memory store runs it now; the Redis store will run the very same suite.)
 */
export function storeContract(name: string, factory: () => Promise<ConversationStore>): void {
  describe(`ConversationStore contract: ${name}`, () => {
    let store: ConversationStore;
    beforeEach(async () => {
      store = await factory();
    });
    afterEach(async () => {
      await store.close();
    });

    it("creates a conversation with its first messages and reads it back", async () => {
      const conversation = conversationFixture();
      const draft = chatDraft(conversation.id, "hand-off");
      const result = await store.init(conversation, { requestId: conversation.requestId }, [draft]);
      expect(result.created).toBe(true);
      expect(result.conversation).toEqual(conversation);
      expect(await store.get(conversation.id)).toEqual(conversation);
      const messages = await store.read(conversation.id, 0);
      expect(messages).toHaveLength(1);
      expect(messages[0]).toMatchObject({ seq: 1, text: "hand-off", id: draft.id });
    });

    it("returns the same conversation for a repeated requestId", async () => {
      const first = conversationFixture();
      await store.init(first, { requestId: first.requestId }, []);
      const again = await store.init(
        conversationFixture({ requestId: first.requestId }),
        { requestId: first.requestId },
        [],
      );
      expect(again.created).toBe(false);
      expect(again.conversation.id).toBe(first.id);
    });

    it("reuses the open conversation of a channel + refId, and not once it has ended", async () => {
      const ref = { channel: "sms", refId: uid("+92") };
      const first = conversationFixture({ channel: "sms", refId: ref.refId });
      await store.init(first, { requestId: first.requestId, channelRef: ref }, []);
      const second = conversationFixture({ channel: "sms", refId: ref.refId });
      const reused = await store.init(second, { requestId: second.requestId, channelRef: ref }, []);
      expect(reused).toMatchObject({ created: false, conversation: { id: first.id } });
      expect((await store.findOpenByChannelRef("sms", ref.refId))?.id).toBe(first.id);

      const end = await store.append(first.id, chatDraft(first.id, "bye"), {
        transition: {
          from: ["queued", "active"],
          to: "ended",
          patch: { endedAt: "2026-11-21T11:00:00.000Z" },
          required: true,
        },
      });
      expect(end.status).toBe("appended");
      expect(await store.findOpenByChannelRef("sms", ref.refId)).toBeUndefined();
      const third = conversationFixture({ channel: "sms", refId: ref.refId });
      const fresh = await store.init(third, { requestId: third.requestId, channelRef: ref }, []);
      expect(fresh).toMatchObject({ created: true, conversation: { id: third.id } });
    });

    it("allocates seq 1, 2, 3 in order, also under concurrent appends", async () => {
      const conversation = conversationFixture();
      await store.init(conversation, { requestId: conversation.requestId }, []);
      const results = await Promise.all(
        Array.from({ length: 50 }, (_, i) => store.append(conversation.id, chatDraft(conversation.id, `m${i}`))),
      );
      const seqs = results.map((r) => (r.status === "appended" ? r.message.seq : -1)).sort((a, b) => a - b);
      expect(seqs).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
      const stored = await store.read(conversation.id, 0);
      expect(stored.map((m) => m.seq)).toEqual(seqs);
      expect(await store.read(conversation.id, 47)).toHaveLength(3);
      expect(await store.read(conversation.id, 10, 5)).toHaveLength(5);
      expect((await store.read(conversation.id, 10, 5))[0]?.seq).toBe(11);
    });

    it("deduplicates by client id: a resend, the same or changed, gets the recorded message back", async () => {
      const conversation = conversationFixture();
      await store.init(conversation, { requestId: conversation.requestId }, []);
      const first = await store.append(conversation.id, chatDraft(conversation.id, "hello", { id: "client-1" }), {
        dedupe: { id: "client-1" },
      });
      const again = await store.append(conversation.id, chatDraft(conversation.id, "hello", { id: "client-1" }), {
        dedupe: { id: "client-1" },
      });
      const changed = await store.append(conversation.id, chatDraft(conversation.id, "other", { id: "client-1" }), {
        dedupe: { id: "client-1" },
      });
      expect(first.status).toBe("appended");
      expect(again).toMatchObject({ status: "duplicate", message: { seq: 1, text: "hello" } });
      // Telling a changed resend apart (`conflict`) is the service's comparison, not the store's.
      expect(changed).toMatchObject({ status: "duplicate", message: { seq: 1, text: "hello" } });
      expect(await store.read(conversation.id, 0)).toHaveLength(1);
      expect((await store.findMessage(conversation.id, "client-1"))?.seq).toBe(1);
      expect(await store.findMessage(conversation.id, "nope")).toBeUndefined();
    });

    it("applies transitions atomically with the append and refuses appends to an ended conversation", async () => {
      const conversation = conversationFixture();
      await store.init(conversation, { requestId: conversation.requestId }, []);
      const agent = { id: "agent-1", name: "Ali" };
      const joined = await store.append(conversation.id, chatDraft(conversation.id, "joined"), {
        transition: { from: ["queued"], to: "active", patch: { agent } },
      });
      expect(joined).toMatchObject({ status: "appended", conversation: { state: "active", agent } });
      // Not in `from` and not required: appended, state unchanged.
      const noop = await store.append(conversation.id, chatDraft(conversation.id, "x"), {
        transition: { from: ["queued"], to: "active" },
      });
      expect(noop).toMatchObject({ status: "appended", conversation: { state: "active" } });
      const required = await store.append(conversation.id, chatDraft(conversation.id, "y"), {
        transition: { from: ["queued"], to: "active", required: true },
      });
      expect(required.status).toBe("skipped");

      const endedAt = "2026-11-21T12:00:00.000Z";
      const end = await store.append(conversation.id, chatDraft(conversation.id, "end"), {
        transition: { from: ["queued", "active"], to: "ended", patch: { endedAt }, required: true },
      });
      expect(end).toMatchObject({ status: "appended", conversation: { state: "ended", endedAt } });
      const endAgain = await store.append(conversation.id, chatDraft(conversation.id, "end"), {
        transition: { from: ["queued", "active"], to: "ended", required: true },
      });
      expect(endAgain.status).toBe("ended");
      const late = await store.append(conversation.id, chatDraft(conversation.id, "late"), { requireOpen: true });
      expect(late.status).toBe("ended");
      expect((await store.read(conversation.id, 0)).map((m) => (m.type === "ChatMessage" ? m.text : ""))).toEqual([
        "joined",
        "x",
        "end",
      ]);
      expect((await store.get(conversation.id))?.state).toBe("ended");
    });

    it("appends under a flag only when the flag changes", async () => {
      const conversation = conversationFixture();
      await store.init(conversation, { requestId: conversation.requestId }, []);
      const set = { flag: { key: "present:agent:1", value: true } };
      const unset = { flag: { key: "present:agent:1", value: false } };
      expect((await store.append(conversation.id, chatDraft(conversation.id, "a"), set)).status).toBe("appended");
      expect((await store.append(conversation.id, chatDraft(conversation.id, "b"), set)).status).toBe("skipped");
      expect((await store.append(conversation.id, chatDraft(conversation.id, "c"), unset)).status).toBe("appended");
      expect((await store.append(conversation.id, chatDraft(conversation.id, "d"), unset)).status).toBe("skipped");
      expect((await store.append(conversation.id, chatDraft(conversation.id, "e"), set)).status).toBe("appended");
      expect(await store.read(conversation.id, 0)).toHaveLength(3);
    });

    it("skips a state change while a flag with the given prefix is still set", async () => {
      const conversation = conversationFixture({ state: "active" });
      await store.init(conversation, { requestId: conversation.requestId }, []);
      const join = (id: string) =>
        store.append(conversation.id, chatDraft(conversation.id, `join ${id}`), {
          flag: { key: `present:agent:${id}`, value: true },
        });
      const leave = (id: string) =>
        store.append(conversation.id, chatDraft(conversation.id, `leave ${id}`), {
          flag: { key: `present:agent:${id}`, value: false },
          transition: { from: ["active"], to: "queued", unlessFlagPrefix: "present:agent:" },
        });
      await join("ali");
      await join("bea");
      expect(await leave("ali")).toMatchObject({ status: "appended", conversation: { state: "active" } });
      expect(await leave("bea")).toMatchObject({ status: "appended", conversation: { state: "queued" } });
    });

    it("gives a created conversation's first messages their seq in place", async () => {
      const conversation = conversationFixture();
      const drafts = [chatDraft(conversation.id, "hand-off"), chatDraft(conversation.id, "note")];
      await store.init(conversation, { requestId: conversation.requestId }, drafts);
      expect(drafts.map((draft) => (draft as StoredMessage).seq)).toEqual([1, 2]);
    });

    it("says which state a transition left, only when it was made", async () => {
      const conversation = conversationFixture();
      await store.init(conversation, { requestId: conversation.requestId }, []);
      const move = (from: ConversationState[], to: ConversationState, patch = {}) =>
        store.append(conversation.id, chatDraft(conversation.id, "move"), { transition: { from, to, patch } });
      expect(await move(["queued"], "active", { agent: { id: "a1", name: "Ali" } })).toMatchObject({
        previousState: "queued",
        conversation: { state: "active" },
      });
      expect(await move(["queued"], "active")).not.toHaveProperty("previousState");
      // A change of agent keeps the state, and is a change all the same.
      expect(await move(["active"], "active", { agent: { id: "a2", name: "Bea" } })).toMatchObject({
        previousState: "active",
        conversation: { state: "active", agent: { id: "a2" } },
      });
      const plain = await store.append(conversation.id, chatDraft(conversation.id, "plain"));
      expect(plain).not.toHaveProperty("previousState");
    });

    describe("lists open conversations", () => {
      const at = (second: number) => new Date(Date.UTC(2026, 10, 21, 10, 0, second)).toISOString();
      const ms = (second: number) => Date.parse(at(second));
      const ids = (page: OpenConversationPage) => page.conversations.map((listed) => listed.conversation.id);
      const query = (overrides: Partial<OpenConversationQuery> = {}): OpenConversationQuery => ({
        states: ["bot", "queued", "active"],
        limit: 50,
        scan: 500,
        ...overrides,
      });
      const open = async (second: number, overrides: Partial<Conversation> = {}) => {
        const conversation = conversationFixture({ createdAt: at(second), ...overrides });
        await store.init(conversation, { requestId: conversation.requestId }, [
          chatDraft(conversation.id, "hand-off", { timestamp: at(second) }),
        ]);
        return conversation;
      };

      it("newest first by last message, in the states asked for, with their time and last seq", async () => {
        const a = await open(1);
        const b = await open(2);
        const c = await open(3);
        const bot = await open(4, { state: "bot" });
        expect(ids(await store.listOpen(query({ states: ["queued"] })))).toEqual([c.id, b.id, a.id]);
        expect(ids(await store.listOpen(query({ states: ["bot"] })))).toEqual([bot.id]);

        await store.append(a.id, chatDraft(a.id, "still here", { timestamp: at(5) }));
        const queued = await store.listOpen(query({ states: ["queued"] }));
        expect(ids(queued)).toEqual([a.id, c.id, b.id]);
        expect(queued.next).toBeUndefined();
        expect(queued.conversations[0]).toMatchObject({
          conversation: { id: a.id, state: "queued", customer: a.customer },
          lastActivityMs: ms(5),
          lastSeq: 2,
        });
        expect(queued.conversations[1]).toMatchObject({ lastActivityMs: ms(3), lastSeq: 1 });

        const agent = { id: "agent-1", name: "Ali" };
        await store.append(b.id, chatDraft(b.id, "taken", { timestamp: at(6) }), {
          transition: { from: ["queued"], to: "active", patch: { agent } },
        });
        expect(ids(await store.listOpen(query({ states: ["queued"] })))).toEqual([a.id, c.id]);
        const active = await store.listOpen(query({ states: ["active"] }));
        expect(active.conversations).toMatchObject([
          { conversation: { id: b.id, state: "active", agent }, lastActivityMs: ms(6), lastSeq: 2 },
        ]);
        expect(ids(await store.listOpen(query({ states: ["queued", "active"] })))).toEqual([b.id, a.id, c.id]);

        await store.append(c.id, chatDraft(c.id, "bye", { timestamp: at(7) }), {
          transition: { from: ["queued"], to: "ended", patch: { endedAt: at(7) }, required: true },
        });
        // A message after the end (a late desk webhook) does not bring it back.
        await store.append(c.id, chatDraft(c.id, "late", { timestamp: at(8) }));
        expect(ids(await store.listOpen(query()))).toEqual([b.id, a.id, bot.id]);
      });

      it("of one channel and subject", async () => {
        const web = await open(1, { channel: "web", subject: "billing" });
        const sms = await open(2, { channel: "sms", subject: "billing" });
        const sales = await open(3, { channel: "web", subject: "sales" });
        expect(ids(await store.listOpen(query({ channel: "web" })))).toEqual([sales.id, web.id]);
        expect(ids(await store.listOpen(query({ subject: "billing" })))).toEqual([sms.id, web.id]);
        expect(ids(await store.listOpen(query({ channel: "web", subject: "billing" })))).toEqual([web.id]);
        expect(ids(await store.listOpen(query({ channel: "whatsapp" })))).toEqual([]);
      });

      it("in pages that carry on from a position: each conversation once, in order, also within one millisecond", async () => {
        // Five in the same millisecond across two states, then three later: ties go by id.
        const same = [];
        for (let i = 0; i < 5; i++) same.push(await open(1, { state: i % 2 === 0 ? "queued" : "bot" }));
        const later = [await open(2), await open(3, { state: "bot" }), await open(4)];
        const expected = [
          ...later.reverse().map((c) => c.id),
          ...same.map((c) => c.id).sort((x, y) => (x < y ? 1 : x > y ? -1 : 0)),
        ];
        const seen: string[] = [];
        let page = await store.listOpen(query({ states: ["queued", "bot"], limit: 3 }));
        for (let pages = 1; ; pages++) {
          expect(page.conversations.length).toBeLessThanOrEqual(3);
          seen.push(...ids(page));
          if (page.next === undefined) break;
          expect(pages).toBeLessThan(5);
          page = await store.listOpen(query({ states: ["queued", "bot"], limit: 3, after: page.next }));
        }
        expect(seen).toEqual(expected);
      });

      it("looking at no more than `scan` conversations a page: a filter that passes over many gives short pages that carry on", async () => {
        const wanted: Conversation[] = [];
        for (let i = 1; i <= 10; i++) {
          const conversation = await open(i, { subject: i === 2 || i === 9 ? "billing" : "sales" });
          if (conversation.subject === "billing") wanted.unshift(conversation);
        }
        const seen: string[] = [];
        const sizes: number[] = [];
        let after: ListPosition | undefined;
        for (let pages = 1; ; pages++) {
          const page = await store.listOpen(
            query({ subject: "billing", limit: 5, scan: 3, ...(after === undefined ? {} : { after }) }),
          );
          sizes.push(page.conversations.length);
          seen.push(...ids(page));
          if (page.next === undefined) break;
          expect(pages).toBeLessThan(5);
          after = page.next;
        }
        expect(seen).toEqual(wanted.map((c) => c.id));
        // 10 conversations, 3 looked at a page: positions 1-3 (#9 at position 2), 4-6, 7-9 (#2 at position 9), 10.
        expect(sizes).toEqual([1, 0, 1, 0]);
      });

      it("and finds idle ones in every open state", async () => {
        const bot = await open(1, { state: "bot" });
        const queued = await open(2);
        const active = await open(3, { state: "active" });
        await open(9);
        expect(await store.findIdle(new Date(at(5)), 10)).toEqual([bot.id, queued.id, active.id]);
        expect(await store.findIdle(new Date(at(5)), 2)).toEqual([bot.id, queued.id]);
      });
    });

    it("answers not_found for an unknown conversation", async () => {
      expect(await store.get("c_missing")).toBeUndefined();
      expect((await store.append("c_missing", chatDraft("c_missing", "x"))).status).toBe("not_found");
      expect(await store.read("c_missing", 0)).toEqual([]);
    });

    it("queues connector entries with the append and offers the oldest of each conversation until acknowledged", async () => {
      const channel = uid("sms").toLowerCase();
      const a = conversationFixture({ channel });
      const b = conversationFixture({ channel });
      for (const c of [a, b]) {
        await store.init(c, { requestId: c.requestId }, [chatDraft(c.id, `handoff ${c.id}`)], {
          connectorChannel: channel,
        });
      }
      await store.append(a.id, chatDraft(a.id, "one"), { connectorChannel: channel });
      await store.append(a.id, chatDraft(a.id, "two"), { connectorChannel: channel });
      await store.append(a.id, chatDraft(a.id, "customer only"));
      // One head per conversation, oldest first.
      expect((await store.pendingConnector(channel, 10)).map((e) => e.id)).toEqual([`${a.id}:1`, `${b.id}:1`]);
      expect(await store.pendingConnector(channel, 1)).toHaveLength(1);
      expect(await store.connectorChannelsWithPending()).toContain(channel);

      const texts: string[] = [];
      for (
        let heads = await store.pendingConnector(channel, 10);
        heads.length > 0;
        heads = await store.pendingConnector(channel, 10)
      ) {
        for (const entry of heads) {
          texts.push(entry.message.type === "ChatMessage" ? entry.message.text : "");
          await store.ackConnector(channel, entry.id);
        }
      }
      expect(texts).toEqual([`handoff ${a.id}`, `handoff ${b.id}`, "one", "two"]);
      await store.ackConnector(channel, "unknown-entry");
      expect(await store.connectorChannelsWithPending()).not.toContain(channel);
    });

    it("queues campaign messages per recipient in order, deduped by id even after delivery", async () => {
      const channel = uid("sms").toLowerCase();
      const campaign = (id: string, refId: string, text: string) => {
        const message = { ...chatDraft("", text, { refId }), id, seq: 0 } as ChatMessage;
        return { id: `campaign:${id}`, message, enqueuedAt: message.timestamp };
      };
      expect((await store.enqueueConnector(channel, campaign("1", "+92300", "first"))).created).toBe(true);
      expect((await store.enqueueConnector(channel, campaign("1", "+92300", "first"))).created).toBe(false);
      await store.enqueueConnector(channel, campaign("2", "+92300", "second"));
      await store.enqueueConnector(channel, campaign("3", "+92311", "other"));
      expect((await store.pendingConnector(channel, 10)).map((e) => e.id)).toEqual(["campaign:1", "campaign:3"]);
      await store.ackConnector(channel, "campaign:1");
      expect((await store.pendingConnector(channel, 10)).map((e) => e.id)).toEqual(["campaign:2", "campaign:3"]);
      // Delivered already: a retried POST with the same id is still a duplicate.
      expect((await store.enqueueConnector(channel, campaign("1", "+92300", "first"))).created).toBe(false);
      expect((await store.pendingConnector(channel, 10)).map((e) => e.id)).toEqual(["campaign:2", "campaign:3"]);
    });

    it("knows each conversation's last seq", async () => {
      const conversation = conversationFixture();
      await store.init(conversation, { requestId: conversation.requestId }, [chatDraft(conversation.id, "a")]);
      await store.append(conversation.id, chatDraft(conversation.id, "b"));
      expect(await store.headSeq(conversation.id)).toBe(2);
      expect(await store.headSeq("c_missing")).toBe(0);
    });

    it("counts conversations by state and sweeps ended ones past retention", async () => {
      const open = conversationFixture();
      const old = conversationFixture();
      const recent = conversationFixture();
      for (const c of [open, old, recent]) await store.init(c, { requestId: c.requestId }, []);
      const endAt = async (c: Conversation, endedAt: string) =>
        store.append(c.id, chatDraft(c.id, "end"), {
          transition: { from: ["queued"], to: "ended", patch: { endedAt }, required: true },
        });
      await endAt(old, "2026-01-01T00:00:00.000Z");
      await endAt(recent, "2026-11-21T00:00:00.000Z");
      const before = await store.countByState();
      expect(before.queued).toBeGreaterThanOrEqual(1);
      expect(before.ended).toBeGreaterThanOrEqual(2);

      const removed = await store.sweepEnded(new Date("2026-06-01T00:00:00.000Z"));
      expect(removed).toBeGreaterThanOrEqual(1);
      expect(await store.get(old.id)).toBeUndefined();
      expect(await store.read(old.id, 0)).toEqual([]);
      expect((await store.get(recent.id))?.state).toBe("ended");
      expect((await store.get(open.id))?.state).toBe("queued");
    });

    it("finds open conversations idle since a cutoff by their last message, least recently active first", async () => {
      const at = (minute: number) => `2026-11-21T10:${String(minute).padStart(2, "0")}:00.000Z`;
      const cutoff = new Date(at(5));
      const quiet = conversationFixture({ createdAt: at(0) });
      const empty = conversationFixture({ createdAt: at(2) });
      const busy = conversationFixture({ createdAt: at(3) });
      const ended = conversationFixture({ createdAt: at(3) });
      await store.init(quiet, { requestId: quiet.requestId }, [chatDraft(quiet.id, "hand-off", { timestamp: at(1) })]);
      for (const c of [empty, busy, ended]) await store.init(c, { requestId: c.requestId }, []);
      await store.append(ended.id, chatDraft(ended.id, "bye", { timestamp: at(4) }), {
        transition: { from: ["queued"], to: "ended", patch: { endedAt: at(4) }, required: true },
      });
      await store.append(busy.id, chatDraft(busy.id, "still here", { timestamp: at(10) }));
      // A message recorded after the end (a late desk webhook) does not make an ended conversation idle again.
      await store.append(ended.id, chatDraft(ended.id, "late", { timestamp: at(11) }));

      expect(await store.findIdle(cutoff, 10)).toEqual([quiet.id, empty.id]);
      expect(await store.findIdle(cutoff, 1)).toEqual([quiet.id]);
      // Strictly before the cutoff: a conversation last active at the cutoff itself is not idle yet.
      expect(await store.findIdle(new Date(at(1)), 10)).toEqual([]);
      expect(await store.findIdle(new Date(at(12)), 10)).toEqual([quiet.id, empty.id, busy.id]);

      await store.append(quiet.id, chatDraft(quiet.id, "back", { timestamp: at(12) }));
      expect(await store.findIdle(cutoff, 10)).toEqual([empty.id]);
      expect(await store.findIdle(new Date(at(13)), 10)).toEqual([empty.id, busy.id, quiet.id]);
    });

    it("appends under idleBeforeMs only while the conversation is idle, so an end for inactivity never races a message", async () => {
      const conversation = conversationFixture({ createdAt: "2026-11-21T10:00:00.000Z" });
      await store.init(conversation, { requestId: conversation.requestId }, [
        chatDraft(conversation.id, "hand-off", { timestamp: "2026-11-21T10:01:00.000Z" }),
      ]);
      const endIfIdleBefore = (timestamp: string) =>
        store.append(conversation.id, chatDraft(conversation.id, "inactive", { timestamp }), {
          idleBeforeMs: Date.parse(timestamp) - 60_000,
          transition: { from: ["queued"], to: "ended", patch: { endedAt: timestamp }, required: true },
        });
      // Last active 10:01: not idle for a minute at 10:02 (the cutoff 10:01 is not after it)...
      expect(await endIfIdleBefore("2026-11-21T10:02:00.000Z")).toMatchObject({
        status: "skipped",
        conversation: { state: "queued" },
      });
      // ...nor after a message at 10:05, at 10:05:30.
      await store.append(conversation.id, chatDraft(conversation.id, "hi", { timestamp: "2026-11-21T10:05:00.000Z" }));
      expect((await endIfIdleBefore("2026-11-21T10:05:30.000Z")).status).toBe("skipped");
      expect(await store.read(conversation.id, 0)).toHaveLength(2);

      expect(await endIfIdleBefore("2026-11-21T10:06:01.000Z")).toMatchObject({
        status: "appended",
        conversation: { state: "ended" },
      });
      expect((await endIfIdleBefore("2026-11-21T10:07:00.000Z")).status).toBe("ended");
      expect(await store.findIdle(new Date("2026-11-22T00:00:00.000Z"), 10)).not.toContain(conversation.id);
    });

    it("records one end of two concurrent ones", async () => {
      const conversation = conversationFixture();
      await store.init(conversation, { requestId: conversation.requestId }, []);
      const end = () =>
        store.append(conversation.id, chatDraft(conversation.id, "end"), {
          transition: {
            from: ["queued", "active"],
            to: "ended",
            patch: { endedAt: "2026-11-21T12:00:00.000Z" },
            required: true,
          },
        });
      const results = await Promise.all([end(), end()]);
      expect(results.map((result) => result.status).sort()).toEqual(["appended", "ended"]);
      expect(await store.read(conversation.id, 0)).toHaveLength(1);
    });

    it("binds desk ids to a conversation and finds it by any of them", async () => {
      const conversation = conversationFixture({ desk: { desk: "rocketchat", ids: {} } });
      await store.init(conversation, { requestId: conversation.requestId }, []);
      const rid = uid("rid");
      const bound = await store.bindDesk(conversation.id, { visitorToken: "vt-1", rid });
      expect(bound?.desk).toEqual({ desk: "rocketchat", ids: { visitorToken: "vt-1", rid } });
      await store.bindDesk(conversation.id, { visitorToken: "vt-2" }, "2026-11-21T10:00:05.000Z");
      expect((await store.get(conversation.id))?.desk).toEqual({
        desk: "rocketchat",
        ids: { visitorToken: "vt-2", rid },
        openedAt: "2026-11-21T10:00:05.000Z",
      });
      expect((await store.findByDeskRef("rocketchat", "rid", rid))?.id).toBe(conversation.id);
      expect((await store.findByDeskRef("rocketchat", "visitorToken", "vt-2"))?.id).toBe(conversation.id);
      expect(await store.findByDeskRef("salesforce", "rid", rid)).toBeUndefined();
      expect(await store.findByDeskRef("rocketchat", "rid", "nope")).toBeUndefined();
      expect(await store.bindDesk("c_missing", { rid: "x" })).toBeUndefined();
    });

    it("keeps a desk outbox in order: open, then messages with the append, then one close", async () => {
      const conversation = conversationFixture({ desk: { desk: "rocketchat", ids: {} } });
      await store.init(conversation, { requestId: conversation.requestId }, [chatDraft(conversation.id, "handoff")], {
        openDesk: true,
      });
      const first = await store.append(conversation.id, chatDraft(conversation.id, "one"), {
        outbox: [{ lane: "desk", kind: "message" }],
      });
      await store.append(conversation.id, chatDraft(conversation.id, "agent only"));
      await store.append(conversation.id, chatDraft(conversation.id, "two"), {
        outbox: [{ lane: "desk", kind: "message" }],
      });
      await store.append(conversation.id, chatDraft(conversation.id, "bye"), {
        outbox: [{ lane: "desk", kind: "close", reason: "done" }],
      });
      await store.append(conversation.id, chatDraft(conversation.id, "bye again"), {
        outbox: [{ lane: "desk", kind: "close", reason: "x" }],
      });
      expect(first.status).toBe("appended");

      const drained: string[] = [];
      for (
        let head = await store.outboxHead(conversation.id, "desk");
        head;
        head = await store.outboxHead(conversation.id, "desk")
      ) {
        drained.push(
          head.kind === "message" ? `m${head.seq}` : head.kind === "close" ? `close:${head.reason}` : head.kind,
        );
        await store.outboxComplete(conversation.id, "desk", head.id);
      }
      expect(drained).toEqual(["open", "m2", "m4", "close:done"]);
    });

    it("defers the outbox head, reports due conversations, and ignores a stale worker's completion", async () => {
      const a = conversationFixture();
      const b = conversationFixture();
      for (const c of [a, b]) await store.init(c, { requestId: c.requestId }, [], { openDesk: true });
      await store.append(a.id, chatDraft(a.id, "m"), { outbox: [{ lane: "desk", kind: "message" }] });
      expect(await store.outboxDue("desk", 1_000, 100)).toEqual(expect.arrayContaining([a.id, b.id]));

      await store.outboxDefer(a.id, "desk", "open", {
        attempts: 1,
        notBefore: 5_000,
        lastError: "503",
        lastAttemptAt: 900,
      });
      expect(await store.outboxHead(a.id, "desk")).toMatchObject({
        id: "open",
        attempts: 1,
        notBefore: 5_000,
        lastError: "503",
      });
      const dueEarly = await store.outboxDue("desk", 1_000, 100);
      expect(dueEarly).toContain(b.id);
      expect(dueEarly).not.toContain(a.id);
      expect(await store.outboxDue("desk", 5_000, 100)).toContain(a.id);

      await store.outboxComplete(a.id, "desk", "m:1"); // not the head: ignored
      expect((await store.outboxHead(a.id, "desk"))?.id).toBe("open");
      await store.outboxDefer(a.id, "desk", "m:1", { attempts: 9, notBefore: 0, lastError: "stale", lastAttemptAt: 1 });
      expect((await store.outboxHead(a.id, "desk"))?.attempts).toBe(1);
      await store.outboxComplete(a.id, "desk", "open");
      expect((await store.outboxHead(a.id, "desk"))?.id).toBe("m:1");
      await store.outboxComplete(a.id, "desk", "m:1");
      await store.outboxComplete(b.id, "desk", "open");
      expect(await store.outboxHead(a.id, "desk")).toBeUndefined();
      const stillDue = await store.outboxDue("desk", 10_000, 100);
      expect(stillDue).not.toContain(a.id);
      expect(stillDue).not.toContain(b.id);
    });

    it("queues typing on the desk lane outside an append, one waiting item per burst, and reports it due", async () => {
      const conversation = conversationFixture({ desk: { desk: "salesforce", ids: {} } });
      await store.init(conversation, { requestId: conversation.requestId }, []);
      expect(await store.outboxDue("desk", Date.now(), 1_000)).not.toContain(conversation.id);

      // An empty lane: the typing item is its head, due at once.
      expect(await store.queueTyping(conversation.id, { id: "t:1", state: "start", queuedAt: 1_000 })).toBe(true);
      expect(await store.outboxDue("desk", Date.now(), 1_000)).toContain(conversation.id);
      expect(await store.outboxHead(conversation.id, "desk")).toMatchObject({
        id: "t:1",
        kind: "typing",
        state: "start",
        queuedAt: 1_000,
        attempts: 0,
        notBefore: 0,
      });
      // The head may be under way: a new state goes behind it, in order with the messages.
      expect(await store.queueTyping(conversation.id, { id: "t:2", state: "stop", queuedAt: 2_000 })).toBe(true);
      await store.append(conversation.id, chatDraft(conversation.id, "one"), {
        outbox: [{ lane: "desk", kind: "message" }],
      });
      expect(await store.queueTyping(conversation.id, { id: "t:3", state: "start", queuedAt: 3_000 })).toBe(true);
      // The last item waits behind others: the newer state takes its place.
      expect(await store.queueTyping(conversation.id, { id: "t:4", state: "stop", queuedAt: 4_000 })).toBe(true);

      // A deferred head keeps the due index on its retry time.
      await store.outboxDefer(conversation.id, "desk", "t:1", {
        attempts: 1,
        notBefore: Date.now() + 60_000,
        lastError: "timeout",
        lastAttemptAt: 1_500,
      });
      expect(await store.outboxDue("desk", Date.now(), 1_000)).not.toContain(conversation.id);
      expect(await store.queueTyping(conversation.id, { id: "t:5", state: "start", queuedAt: 5_000 })).toBe(true);
      expect(await store.outboxHead(conversation.id, "desk")).toMatchObject({ id: "t:1", state: "start", attempts: 1 });

      const items = [];
      for (
        let head = await store.outboxHead(conversation.id, "desk");
        head;
        head = await store.outboxHead(conversation.id, "desk")
      ) {
        items.push(head.kind === "typing" ? `${head.id} ${head.state} ${head.queuedAt}` : head.id);
        await store.outboxComplete(conversation.id, "desk", head.id);
      }
      expect(items).toEqual(["t:1 start 1000", "t:2 stop 2000", "m:1", "t:3 start 5000"]);
      expect(await store.outboxDue("desk", Date.now() + 120_000, 1_000)).not.toContain(conversation.id);

      // Nothing is queued for a conversation that has ended or does not exist.
      await store.append(conversation.id, chatDraft(conversation.id, "bye"), {
        transition: { from: ["queued", "active"], to: "ended", required: true },
      });
      expect(await store.queueTyping(conversation.id, { id: "t:6", state: "start", queuedAt: 6_000 })).toBe(false);
      expect(await store.queueTyping("c_missing", { id: "t:7", state: "start", queuedAt: 7_000 })).toBe(false);
      expect(await store.outboxHead(conversation.id, "desk")).toBeUndefined();
      expect(await store.outboxDue("desk", Date.now() + 120_000, 1_000)).not.toContain(conversation.id);
    });

    /** Every item of a lane, in order, as `<id>` (`<id>>upTo` for a digest), completing each. */
    const drain = async (conversationId: string, lane: OutboxLane): Promise<string[]> => {
      const seen: string[] = [];
      for (
        let head = await store.outboxHead(conversationId, lane);
        head;
        head = await store.outboxHead(conversationId, lane)
      ) {
        seen.push(
          head.kind === "digest"
            ? `${head.id}>${head.upTo}`
            : head.kind === "event"
              ? `${head.id}:${head.name}`
              : head.id,
        );
        await store.outboxComplete(conversationId, lane, head.id);
      }
      return seen;
    };
    const botConversation = async () => {
      const conversation = conversationFixture({
        state: "bot",
        desk: { desk: "rocketchat", ids: {} },
        bot: { bot: "gms", name: "Assistant", ids: {} },
      });
      await store.init(conversation, { requestId: conversation.requestId }, []);
      return conversation;
    };
    /** A customer's message while a bot may own the conversation: to whoever owns it at the append. */
    const customerSays = (conversationId: string, text: string) =>
      store.append(conversationId, chatDraft(conversationId, text, { from: { id: "p-1", name: "Sara" } }), {
        requireOpen: true,
        outbox: [
          { lane: "bot", kind: "message", states: ["bot"] },
          { lane: "desk", kind: "message", states: ["queued", "active"] },
        ],
      });
    const handOff = (conversationId: string, except?: string) =>
      store.append(conversationId, chatDraft(conversationId, "[handOff]"), {
        transition: { from: ["bot"], to: "queued", patch: { subject: "billing" }, required: true },
        outbox: [
          { lane: "desk", kind: "open" },
          { lane: "desk", kind: "digest", from: "bot", ...(except === undefined ? {} : { except }) },
          { lane: "desk", kind: "move", from: "bot", ...(except === undefined ? {} : { except }) },
        ],
      });

    it("queues a message for whoever owns the conversation at the append (outbox requests with states)", async () => {
      const conversation = await botConversation();
      await customerSays(conversation.id, "to the bot");
      await store.append(conversation.id, chatDraft(conversation.id, "joined"), {
        transition: { from: ["bot"], to: "active", required: true },
      });
      await customerSays(conversation.id, "to the agent");
      expect(await drain(conversation.id, "bot")).toEqual(["m:1"]);
      expect(await drain(conversation.id, "desk")).toEqual(["m:3"]);
    });

    it("hands a bot's conversation to the desk in one step: open, digest, then the bot's waiting messages in order", async () => {
      const conversation = await botConversation();
      await customerSays(conversation.id, "one"); // being delivered to the bot
      await store.append(conversation.id, chatDraft(conversation.id, "bot reply"));
      await customerSays(conversation.id, "two");
      await store.append(conversation.id, chatDraft(conversation.id, "event"), {
        outbox: [{ lane: "bot", kind: "event", name: "agent_closed" }],
      });
      await customerSays(conversation.id, "three");
      expect(await store.outboxDue("bot", Date.now(), 1_000)).toContain(conversation.id);

      const result = await handOff(conversation.id, "m:1");
      expect(result).toMatchObject({ status: "appended", conversation: { state: "queued", subject: "billing" } });
      // The bot keeps only the item its worker is delivering; its messages after it wait for the agent.
      expect((await store.outboxHead(conversation.id, "bot"))?.id).toBe("m:1");
      expect(await store.outboxDue("desk", Date.now(), 1_000)).toContain(conversation.id);
      expect(await drain(conversation.id, "desk")).toEqual(["o:6", "d:6>3", "m:3", "m:5"]);
      expect(await drain(conversation.id, "bot")).toEqual(["m:1"]);
      expect(await store.outboxDue("bot", Date.now(), 1_000)).not.toContain(conversation.id);

      // Once handed over, a second hand-off is refused and the customer's next message goes to the desk.
      expect((await handOff(conversation.id)).status).toBe("skipped");
      await customerSays(conversation.id, "four");
      expect(await drain(conversation.id, "desk")).toEqual(["m:7"]);
      expect(await drain(conversation.id, "bot")).toEqual([]);
    });

    it("moves every waiting message when no item is being delivered, and leaves the moved lane not due", async () => {
      const conversation = await botConversation();
      await customerSays(conversation.id, "one");
      await customerSays(conversation.id, "two");
      await store.outboxDefer(conversation.id, "bot", "m:1", {
        attempts: 3,
        notBefore: Date.now() + 60_000,
        lastError: "503",
        lastAttemptAt: Date.now(),
      });
      await handOff(conversation.id);
      expect(await store.outboxDue("bot", Date.now() + 120_000, 1_000)).not.toContain(conversation.id);
      // Moved items start afresh on the desk: no attempts, due now.
      expect(await store.outboxHead(conversation.id, "desk")).toMatchObject({ id: "o:3", attempts: 0, notBefore: 0 });
      expect(await drain(conversation.id, "desk")).toEqual(["o:3", "d:3>1", "m:1", "m:2"]);
      expect(await drain(conversation.id, "bot")).toEqual([]);
    });

    it("clears a lane but for the item being delivered", async () => {
      const conversation = await botConversation();
      for (const text of ["one", "two", "three"]) await customerSays(conversation.id, text);
      await store.append(conversation.id, chatDraft(conversation.id, "taken over"), {
        transition: { from: ["bot"], to: "active", required: true },
        outbox: [{ lane: "bot", kind: "clear", except: "m:1" }],
      });
      expect(await drain(conversation.id, "bot")).toEqual(["m:1"]);
      await store.append(conversation.id, chatDraft(conversation.id, "x"), {
        outbox: [{ lane: "bot", kind: "event", name: "agent_closed" }],
      });
      await store.append(conversation.id, chatDraft(conversation.id, "y"), {
        outbox: [{ lane: "bot", kind: "clear" }],
      });
      expect(await store.outboxHead(conversation.id, "bot")).toBeUndefined();
      expect(await store.outboxDue("bot", Date.now(), 1_000)).not.toContain(conversation.id);
    });

    it("loses and doubles nothing when customer messages race the hand-off", async () => {
      const conversation = await botConversation();
      await customerSays(conversation.id, "before");
      const texts = Array.from({ length: 20 }, (_, i) => `m${i}`);
      const results = await Promise.all([
        ...texts.slice(0, 10).map((text) => customerSays(conversation.id, text)),
        handOff(conversation.id),
        ...texts.slice(10).map((text) => customerSays(conversation.id, text)),
      ]);
      const handOffSeq = results[10]?.status === "appended" ? results[10].message.seq : -1;
      const desk = await drain(conversation.id, "desk");
      const log = await store.read(conversation.id, 0);
      const customer = log.filter((m) => m.type === "ChatMessage" && m.text !== "[handOff]").map((m) => `m:${m.seq}`);
      // Every customer message goes to the agent once, in seq order, after the open and the digest.
      expect(desk.slice(0, 2)).toEqual([`o:${handOffSeq}`, `d:${handOffSeq}>1`]);
      expect(desk.slice(2)).toEqual(customer);
      expect(await drain(conversation.id, "bot")).toEqual([]);
    });

    it("claims a bot's id for one conversation only and finds the conversation by it", async () => {
      const first = await botConversation();
      const second = await botConversation();
      const chatId = String(1_000 + (counter % 1_000_000));
      const bound = await store.bindBot(first.id, "chatId", chatId);
      expect(bound).toMatchObject({ status: "bound", conversation: { bot: { bot: "gms", ids: { chatId } } } });
      expect((await store.bindBot(first.id, "chatId", chatId)).status).toBe("bound");
      expect(await store.bindBot(second.id, "chatId", chatId)).toEqual({ status: "taken" });
      expect((await store.get(first.id))?.bot?.ids).toEqual({ chatId });
      expect((await store.findByBotRef("gms", "chatId", chatId))?.id).toBe(first.id);
      expect(await store.findByBotRef("dialogflow", "chatId", chatId)).toBeUndefined();
      expect(await store.bindBot("c_missing", "chatId", "1")).toEqual({ status: "not_found" });
      const botless = conversationFixture();
      await store.init(botless, { requestId: botless.requestId }, []);
      expect(await store.bindBot(botless.id, "chatId", "2")).toEqual({ status: "not_found" });

      await store.append(first.id, chatDraft(first.id, "end"), {
        transition: { from: ["bot"], to: "ended", patch: { endedAt: "2026-01-01T00:00:00.000Z" }, required: true },
      });
      await store.sweepEnded(new Date("2026-06-01T00:00:00.000Z"));
      expect(await store.findByBotRef("gms", "chatId", chatId)).toBeUndefined();
      expect((await store.bindBot(second.id, "chatId", chatId)).status).toBe("bound");
    });

    it("grants a lease to one owner at a time until it is released or runs out", async () => {
      const key = uid("lease");
      expect(await store.acquireLease(key, "node-a", 200)).toBe(true);
      expect(await store.acquireLease(key, "node-b", 200)).toBe(false);
      expect(await store.acquireLease(key, "node-a", 200)).toBe(true); // renewed by its holder
      await store.releaseLease(key, "node-b"); // not the holder: no effect
      expect(await store.acquireLease(key, "node-b", 200)).toBe(false);
      await store.releaseLease(key, "node-a");
      expect(await store.acquireLease(key, "node-b", 50)).toBe(true);
      await new Promise((resolve) => setTimeout(resolve, 80));
      expect(await store.acquireLease(key, "node-c", 200)).toBe(true); // node-b's lease ran out
    });

    it("keeps a desk stream's cursor with the conversation until the conversation is swept", async () => {
      const conversation = conversationFixture();
      await store.init(conversation, { requestId: conversation.requestId }, []);
      expect(await store.deskCursor(conversation.id)).toBeUndefined();
      await store.setDeskCursor(conversation.id, "17");
      await store.setDeskCursor(conversation.id, "18");
      expect(await store.deskCursor(conversation.id)).toBe("18");
      await store.append(conversation.id, chatDraft(conversation.id, "end"), {
        transition: {
          from: ["queued"],
          to: "ended",
          patch: { endedAt: "2026-01-01T00:00:00.000Z" },
          required: true,
        },
      });
      expect(await store.deskCursor(conversation.id)).toBe("18");
      await store.sweepEnded(new Date("2026-06-01T00:00:00.000Z"));
      expect(await store.deskCursor(conversation.id)).toBeUndefined();
    });

    it("answers ping while open", async () => {
      await expect(store.ping()).resolves.toBeUndefined();
    });
  });
}
