import { afterEach, describe, expect, it } from "vitest";
import type { Conversation } from "../../server/core/conversation.js";
import type { Desk, DeskEvent, DeskStreamSink } from "../../server/core/desk.js";
import { DeskStreams, type StreamDesk } from "../../server/core/desk-streams.js";
import type { CoreLogger } from "../../server/core/ports.js";
import type { ConversationStore } from "../../server/core/store.js";
import { MemoryStore } from "../../server/store/memory/memory-store.js";
import { chatDraft, conversationFixture } from "../contract/store.contract.js";

const OPENED = "2026-11-21T10:00:05.000Z";
const agent = { id: "agent-1", name: "Ali" };
const quiet: CoreLogger = {
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
};

/** One run of a conversation's stream, as the scripted desk saw it start. */
interface Run {
  node: string;
  conversationId: string;
  cursor: string | undefined;
  sink: DeskStreamSink;
  signal: AbortSignal;
  startedAt: number;
  /** Ends the run the way a desk's stream ends: the session is over (resolve) or it failed (reject). */
  end(): void;
  fail(error: Error): void;
}

/**
 * A desk whose stream is played by the test: every run is recorded, resolves when aborted, and otherwise ends when
 * the test says. Several nodes share one script (as several gateways share one desk).
 */
class ScriptedDesks {
  readonly runs: Run[] = [];
  private waiters: { match: (run: Run) => boolean; resolve: (run: Run) => void }[] = [];

  desk(node: string): StreamDesk {
    const desk: Desk = {
      name: "scripted",
      capabilities: { attachments: false, edits: false, queuePosition: true, typing: false, buttons: false },
      open: () => Promise.resolve({ ids: { session: "s" } }),
      send: () => Promise.resolve(),
      close: () => Promise.resolve(),
      stream: (conversation, cursor, sink, signal) =>
        new Promise<void>((resolve, reject) => {
          const run: Run = {
            node,
            conversationId: conversation.id,
            cursor,
            sink,
            signal,
            startedAt: Date.now(),
            end: resolve,
            fail: reject,
          };
          signal.addEventListener("abort", () => resolve(), { once: true });
          this.runs.push(run);
          this.waiters = this.waiters.filter((waiter) => {
            if (!waiter.match(run)) return true;
            waiter.resolve(run);
            return false;
          });
        }),
    };
    return desk as StreamDesk;
  }

  /** The `n`th run (1-based) that matches, once it has started. */
  next(match: (run: Run) => boolean, n = 1): Promise<Run> {
    const found = this.runs.filter(match);
    if (found.length >= n) return Promise.resolve(found[n - 1] as Run);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("no such desk stream run within 5 s")), 5_000);
      let seen = found.length;
      this.waiters.push({
        match: (run) => match(run) && ++seen >= n,
        resolve: (run) => {
          clearTimeout(timer);
          resolve(run);
        },
      });
    });
  }
}

/** A node's view of the shared store, which stops answering when the node dies (its leases then run out). */
function mortal(store: ConversationStore): { store: ConversationStore; die(): void } {
  let dead = false;
  const proxy = new Proxy(store, {
    get(target, property, receiver) {
      const value: unknown = Reflect.get(target, property, receiver);
      if (typeof value !== "function") return value;
      return (...args: unknown[]) =>
        dead ? Promise.reject(new Error("node is dead")) : (value as (...a: unknown[]) => unknown).apply(target, args);
    },
  });
  return {
    store: proxy,
    die: () => {
      dead = true;
    },
  };
}

const until = async (condition: () => boolean | Promise<boolean>, what: string): Promise<void> => {
  const deadline = Date.now() + 5_000;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
};

describe("DeskStreams", () => {
  const managers: DeskStreams[] = [];
  afterEach(async () => {
    await Promise.all(managers.splice(0).map((manager) => manager.stop()));
  });

  function setup() {
    const store = new MemoryStore();
    const script = new ScriptedDesks();
    const recorded: { conversationId: string; events: readonly DeskEvent[] }[] = [];
    const node = (
      name: string,
      options: { leaseMs?: number; scanMs?: number; store?: ConversationStore } = {},
    ): DeskStreams => {
      const manager = new DeskStreams(
        options.store ?? store,
        script.desk(name),
        {
          applyDeskEvents: (conversation: Conversation, events: readonly DeskEvent[]) => {
            recorded.push({ conversationId: conversation.id, events });
            return Promise.resolve();
          },
        },
        {
          nodeId: name,
          scanMs: options.scanMs ?? 30,
          leaseMs: options.leaseMs ?? 300,
          restartBaseMs: 40,
          restartMaxMs: 200,
          pageSize: 2,
        },
        quiet,
      );
      managers.push(manager);
      return manager;
    };
    const open = async (overrides: Partial<Conversation> = {}): Promise<Conversation> => {
      const conversation = conversationFixture({
        desk: { desk: "scripted", ids: { session: "s" }, openedAt: OPENED },
        ...overrides,
      });
      await store.init(conversation, { requestId: conversation.requestId }, []);
      return conversation;
    };
    return { store, script, recorded, node, open };
  }

  it("starts a stream when told a session opened, records its events and keeps its cursor", async () => {
    const { store, script, recorded, node, open } = setup();
    const conversation = await open();
    const a = node("node-a");
    a.notify(conversation.id);
    const run = await script.next((r) => r.conversationId === conversation.id);
    expect(run.cursor).toBeUndefined();
    await run.sink.events([{ type: "agentJoined", agent }], "e-1");
    await run.sink.cursor("e-2");
    expect(recorded).toEqual([{ conversationId: conversation.id, events: [{ type: "agentJoined", agent }] }]);
    expect(await store.deskCursor(conversation.id)).toBe(`${OPENED} e-2`);
    expect(a.active).toEqual([conversation.id]);
  });

  it("restarts a failed stream with backoff from the stored cursor, and /ready says so while every stream fails", async () => {
    const { script, node, open } = setup();
    const conversation = await open();
    const a = node("node-a");
    a.notify(conversation.id);
    const first = await script.next((r) => r.conversationId === conversation.id);
    await first.sink.events([], "e-7");
    first.fail(new Error("stream dropped"));
    const second = await script.next((r) => r.conversationId === conversation.id, 2);
    expect(second.cursor).toBe("e-7");
    // Half the first backoff at least (jitter over its upper half).
    expect(second.startedAt - first.startedAt).toBeGreaterThanOrEqual(20);
    expect(a.problem()).toMatch(/^failing since/);
    second.fail(new Error("stream dropped again"));
    const third = await script.next((r) => r.conversationId === conversation.id, 3);
    // The wait doubled: at least half of 80 ms after the second.
    expect(third.startedAt - second.startedAt).toBeGreaterThanOrEqual(40);
    await third.sink.cursor("e-8");
    expect(a.problem()).toBeUndefined();
    expect(third.node).toBe("node-a");
  });

  it("runs each stream on one node only, and another node takes it over from the cursor once the dead node's lease lapses", async () => {
    const { store, script, node, open } = setup();
    const conversations = [await open(), await open(), await open()];
    const mortalA = mortal(store);
    const a = node("node-a", { store: mortalA.store, leaseMs: 400 });
    a.start();
    for (const c of conversations) await script.next((r) => r.conversationId === c.id);
    const b = node("node-b", { leaseMs: 400 });
    b.start();
    // b scans several times while a holds every lease (renewed every third of it): b starts nothing.
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(script.runs.filter((r) => r.node === "node-b")).toEqual([]);
    expect([...a.active].sort()).toEqual(conversations.map((c) => c.id).sort());

    const first = script.runs.find((r) => r.conversationId === conversations[0]?.id) as Run;
    await first.sink.events([{ type: "agentMessage", externalId: "m1", agent, text: "hi", attachments: [] }], "e-3");
    mortalA.die();
    const diedAt = Date.now();
    const moved = await Promise.all(
      conversations.map((c) => script.next((r) => r.conversationId === c.id && r.node === "node-b")),
    );
    // Not before a's lease ran out (it could not renew, nor give it back), and a's own runs were aborted.
    for (const run of moved) expect(run.startedAt - diedAt).toBeGreaterThanOrEqual(100);
    expect(moved[0]?.cursor).toBe("e-3");
    expect(moved[1]?.cursor).toBeUndefined();
    await until(() => a.active.length === 0, "node-a to abort its streams");
    expect(script.runs.filter((r) => r.node === "node-a").every((r) => r.signal.aborted)).toBe(true);
    expect(script.runs.filter((r) => r.node === "node-b")).toHaveLength(3);
  });

  it("gives a stream's lease back when the stream ends, and aborts the stream of a conversation that ended", async () => {
    const { store, script, node, open } = setup();
    const ending = await open();
    const finished = await open();
    const a = node("node-a");
    a.start();
    const run = await script.next((r) => r.conversationId === ending.id);
    const done = await script.next((r) => r.conversationId === finished.id);
    done.end();
    await until(() => !a.active.includes(finished.id), "the finished stream to be let go");
    // The lease is free at once: another node can take it.
    expect(await store.acquireLease(`ds:${finished.id}`, "node-z", 1_000)).toBe(true);
    await store.append(ending.id, chatDraft(ending.id, "bye"), {
      transition: { from: ["queued", "active"], to: "ended", patch: { endedAt: OPENED }, required: true },
    });
    await until(() => run.signal.aborted, "the ended conversation's stream to be aborted");
    expect(a.active).not.toContain(ending.id);
  });

  it("refuses what an aborted run reports, and starts a later session of the conversation without the old cursor", async () => {
    const { store, script, node, open } = setup();
    const conversation = await open();
    const a = node("node-a");
    a.notify(conversation.id);
    const run = await script.next((r) => r.conversationId === conversation.id);
    await run.sink.cursor("old-9");
    await a.stop();
    expect(run.signal.aborted).toBe(true);
    await expect(run.sink.events([{ type: "agentJoined", agent }], "old-10")).rejects.toThrow(/stopped/);
    expect(await store.deskCursor(conversation.id)).toBe(`${OPENED} old-9`);

    // The same conversation, its desk session opened afresh (after a bot resumed it and handed it over again).
    await store.bindDesk(conversation.id, { session: "s2" }, "2026-11-21T11:00:00.000Z");
    const b = node("node-b");
    b.notify(conversation.id);
    const fresh = await script.next((r) => r.conversationId === conversation.id && r.node === "node-b");
    expect(fresh.cursor).toBeUndefined();
  });

  it("starts nothing for conversations of another desk, not yet opened, or with the bot", async () => {
    const { script, node, open } = setup();
    const mine = await open();
    await open({ desk: { desk: "rocketchat", ids: { roomId: "r" }, openedAt: OPENED } });
    await open({ desk: { desk: "scripted", ids: { session: "s" } } });
    await open({ state: "bot" });
    const a = node("node-a");
    a.start();
    await script.next((r) => r.conversationId === mine.id);
    await a.scan();
    await a.scan();
    expect(script.runs.map((r) => r.conversationId)).toEqual([mine.id]);
  });
});
