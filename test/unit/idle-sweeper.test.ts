import { afterEach, describe, expect, it, vi } from "vitest";
import type { ActivityOf, Message } from "../../protocol/index.js";
import { ConnectorDispatcher } from "../../server/core/connectors.js";
import { ConversationService, type Actor } from "../../server/core/conversations.js";
import { IdleSweeper } from "../../server/core/idle-sweeper.js";
import { LocalBus } from "../../server/core/local-bus.js";
import { noMetrics, type CoreLogger } from "../../server/core/ports.js";
import type { ConversationStore } from "../../server/core/store.js";
import { MemoryStore } from "../../server/store/memory/memory-store.js";

const MINUTE = 60_000;
const START = Date.parse("2026-11-21T10:00:00.000Z");
const agent: Actor = { id: "agent-17", name: "Ali", role: "agent" };

const isEnd = (message: Message): message is ActivityOf<"endOfConversation"> =>
  message.type === "ActivityMessage" && message.activityType === "endOfConversation";

describe("IdleSweeper", () => {
  const dispatchers: ConnectorDispatcher[] = [];
  afterEach(() => {
    for (const dispatcher of dispatchers.splice(0)) dispatcher.stop();
    vi.useRealTimers();
  });

  /** The core as server/app.ts wires it over the memory store, a clock the test moves, and sweepers on them. */
  function setup(options: { externalDesk?: boolean; idleMs?: number } = {}) {
    const store = new MemoryStore();
    let now = START;
    const clock = () => new Date(now);
    const warnings: { obj: object; msg: string }[] = [];
    const logger: CoreLogger = {
      debug: () => undefined,
      info: () => undefined,
      warn: (obj, msg) => warnings.push({ obj, msg }),
      error: () => undefined,
    };
    const connectors = new ConnectorDispatcher(
      store,
      { ackTimeoutMs: 1_000, maxInFlight: 10, maxRefusals: 5 },
      logger,
      noMetrics,
    );
    dispatchers.push(connectors);
    const deskName = options.externalDesk === true ? "rocketchat" : "socket";
    const core = new ConversationService(
      store,
      new LocalBus(),
      connectors,
      {
        greetingText: "Hello",
        maxTextLength: 100,
        directChannels: ["web"],
        deskName,
        externalDesk: deskName !== "socket",
      },
      clock,
      logger,
      noMetrics,
    );
    const sweeper = (over: Pick<ConversationStore, "findIdle" | "get"> = store) =>
      new IdleSweeper(over, core, { idleMs: options.idleMs ?? 10 * MINUTE, everyMs: 1_000, batch: 2 }, clock, logger);
    const start = async () =>
      (await core.init({ firstName: "Sara", channel: "web", language: "en", email: "sara@example.org" })).conversation;
    const say = async (conversationId: string, text: string) =>
      core.send(await core.get(conversationId), agent, { text, attachments: [], to: [], tag: "" });
    const ends = async (conversationId: string) => (await store.read(conversationId, 0)).filter(isEnd);
    return {
      store,
      core,
      sweeper,
      start,
      say,
      ends,
      warnings,
      advance: (ms: number) => {
        now += ms;
      },
    };
  }

  it("ends every conversation idle past the timeout, reading a batch at a time, and no other", async () => {
    const { sweeper, start, say, ends, advance, core } = setup();
    const idle = [await start(), await start(), await start()];
    advance(5 * MINUTE);
    const recent = await start();
    await say(idle[2]?.id ?? "", "a word keeps this one open");
    advance(5 * MINUTE + 1);

    expect(await sweeper().sweep()).toBe(2);
    for (const conversation of idle.slice(0, 2)) {
      expect(await ends(conversation.id)).toMatchObject([
        { info: { reason: "inactive", endedBy: { id: "system", name: "Liaison", role: "system" } } },
      ]);
    }
    for (const conversation of [idle[2], recent]) expect((await core.get(conversation?.id ?? "")).state).toBe("queued");
    expect(await sweeper().sweep()).toBe(0);
  });

  it("records one end when two nodes sweep the same conversations at once", async () => {
    const { sweeper, start, ends, advance } = setup();
    const conversations = [await start(), await start(), await start()];
    advance(11 * MINUTE);
    const ended = await Promise.all([sweeper().sweep(), sweeper().sweep()]);
    expect(ended[0] + ended[1]).toBe(3);
    for (const conversation of conversations) expect(await ends(conversation.id)).toHaveLength(1);
  });

  it("keeps a conversation open when a message lands between the look and the end", async () => {
    const { store, sweeper, start, say, ends, advance, core } = setup();
    const conversation = await start();
    advance(11 * MINUTE);
    const racing: Pick<ConversationStore, "findIdle" | "get"> = {
      findIdle: async (cutoff, limit) => {
        const ids = await store.findIdle(cutoff, limit);
        await say(conversation.id, "just in time");
        return ids;
      },
      get: (id) => store.get(id),
    };
    expect(await sweeper(racing).sweep()).toBe(0);
    expect(await ends(conversation.id)).toEqual([]);
    expect((await core.get(conversation.id)).state).toBe("queued");
  });

  it("closes an external desk's session through the outbox, like any other end", async () => {
    const { store, sweeper, start, advance } = setup({ externalDesk: true });
    const conversation = await start();
    advance(11 * MINUTE);
    expect(await sweeper().sweep()).toBe(1);
    const lane: string[] = [];
    for (let head = await store.outboxHead(conversation.id, "desk"); head;) {
      lane.push(head.kind === "close" ? `close:${head.reason ?? ""}` : head.kind);
      await store.outboxComplete(conversation.id, "desk", head.id);
      head = await store.outboxHead(conversation.id, "desk");
    }
    expect(lane).toEqual(["open", "close:inactive"]);
  });

  it("ends the others when one end fails, and says so once per look", async () => {
    const { store, sweeper, start, ends, advance, warnings } = setup();
    const [broken, fine] = [await start(), await start()];
    advance(11 * MINUTE);
    const failing: Pick<ConversationStore, "findIdle" | "get"> = {
      findIdle: (cutoff, limit) => store.findIdle(cutoff, limit),
      get: (id) => (id === broken.id ? Promise.reject(new Error("boom")) : store.get(id)),
    };
    expect(await sweeper(failing).sweep()).toBe(1);
    expect(await ends(fine.id)).toHaveLength(1);
    expect(await ends(broken.id)).toEqual([]);
    expect(warnings).toMatchObject([{ obj: { failed: 1 }, msg: "inactive conversations not ended" }]);
  });

  it("looks on its interval once started, and never with a timeout of 0", async () => {
    vi.useFakeTimers();
    const never = setup({ idleMs: 0 });
    const quiet = await never.start();
    never.advance(365 * 24 * 60 * MINUTE);
    const off = never.sweeper();
    off.start();
    expect(vi.getTimerCount()).toBe(0);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(await never.ends(quiet.id)).toEqual([]);
    await off.stop();

    const { sweeper, start, ends, advance } = setup();
    const idle = await start();
    advance(11 * MINUTE);
    const on = sweeper();
    on.start();
    expect(await ends(idle.id)).toEqual([]);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(await ends(idle.id)).toHaveLength(1);
    await on.stop();
    expect(vi.getTimerCount()).toBe(0);
  });
});
