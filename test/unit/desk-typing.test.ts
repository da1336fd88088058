import { afterEach, describe, expect, it } from "vitest";
import type { Conversation } from "../../server/core/conversation.js";
import { DeskSessionClosedError, type Desk } from "../../server/core/desk.js";
import { DeskLane, TYPING_FRESH_MS, type DeskEffects } from "../../server/core/desk-outbox.js";
import { AdapterError } from "../../server/core/errors.js";
import { OutboxWorker } from "../../server/core/outbox.js";
import { noMetrics, type CoreLogger } from "../../server/core/ports.js";
import type { OutboxItem } from "../../server/core/store.js";
import { MemoryStore } from "../../server/store/memory/memory-store.js";
import { conversationFixture } from "../contract/store.contract.js";

const quiet: CoreLogger = {
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
};
const effects: DeskEffects = {
  opened: () => Promise.resolve(),
  noAgent: () => Promise.resolve(),
  undeliverable: () => Promise.resolve(),
  sessionClosed: () => Promise.resolve(),
};
const NOW = 1_800_000_000_000;

/** A desk that takes typing in order with its messages, and records (or fails) each call. */
function orderedDesk(fail: () => Error | undefined = () => undefined) {
  const calls: { state: string; id: string | undefined; late: boolean | undefined }[] = [];
  const desk: Desk = {
    name: "ordered",
    capabilities: { attachments: false, edits: false, queuePosition: false, typing: "ordered", buttons: false },
    open: () => Promise.resolve({ ids: {} }),
    send: () => Promise.resolve(),
    close: () => Promise.resolve(),
    typing: (_conversation, state, queued) => {
      calls.push({ state, id: queued?.id, late: queued?.late });
      const error = fail();
      return error === undefined ? Promise.resolve() : Promise.reject(error);
    },
  };
  return { desk, calls };
}

const opened = (overrides: Partial<Conversation> = {}) =>
  conversationFixture({
    state: "active",
    desk: { desk: "ordered", ids: {}, openedAt: "2026-11-21T10:00:05.000Z" },
    ...overrides,
  });
const typingItem = (overrides: Partial<OutboxItem> = {}): OutboxItem => ({
  id: "t:1",
  kind: "typing",
  state: "start",
  queuedAt: NOW - 1_000,
  attempts: 0,
  notBefore: 0,
  ...overrides,
});

describe("DeskLane: the customer's typing for a desk that takes it in order", () => {
  it("sends a typing item with its id, and tells the desk when it comes too late", async () => {
    const { desk, calls } = orderedDesk();
    const lane = new DeskLane(new MemoryStore(), desk, effects, undefined, () => NOW);
    await lane.deliver(opened(), typingItem());
    await lane.deliver(opened(), typingItem({ id: "t:2", state: "stop", queuedAt: NOW - TYPING_FRESH_MS - 1 }));
    // Late whatever its attempts: only the desk knows whether an earlier attempt took a place in its order.
    const retry = { queuedAt: NOW - 60_000, lastAttemptAt: NOW - 59_000, attempts: 3 };
    await lane.deliver(opened(), typingItem({ id: "t:3", ...retry }));
    expect(calls).toEqual([
      { state: "start", id: "t:1", late: false },
      { state: "stop", id: "t:2", late: true },
      { state: "start", id: "t:3", late: true },
    ]);
  });

  it("tells the desk a typing item is late once the bot has the conversation or it has ended", async () => {
    const { desk, calls } = orderedDesk();
    const lane = new DeskLane(new MemoryStore(), desk, effects, undefined, () => NOW);
    await lane.deliver(opened({ state: "bot" }), typingItem({ id: "t:bot" }));
    await lane.deliver(opened({ state: "ended" }), typingItem({ id: "t:ended" }));
    expect(calls).toEqual([
      { state: "start", id: "t:bot", late: true },
      { state: "start", id: "t:ended", late: true },
    ]);
  });

  it("sends nothing while the desk session is not open", async () => {
    const { desk, calls } = orderedDesk();
    const lane = new DeskLane(new MemoryStore(), desk, effects, undefined, () => NOW);
    await lane.deliver(conversationFixture({ desk: { desk: "ordered", ids: {} } }), typingItem());
    expect(calls).toEqual([]);
  });

  it("completes a typing item whose desk session was closed behind Liaison's back", async () => {
    const { desk, calls } = orderedDesk(() => new DeskSessionClosedError("gone"));
    const lane = new DeskLane(new MemoryStore(), desk, effects, undefined, () => NOW);
    await expect(lane.deliver(opened(), typingItem())).resolves.toBeUndefined();
    expect(calls).toHaveLength(1);
  });
});

describe("OutboxWorker with queued typing", () => {
  const workers: OutboxWorker[] = [];
  afterEach(async () => {
    for (const worker of workers.splice(0)) await worker.stop(1_000);
  });

  it("retries a failed typing attempt with the same id after it went stale, telling the desk it is late", async () => {
    let failures = 1;
    const { desk, calls } = orderedDesk(() =>
      failures-- > 0 ? new AdapterError("ordered", "timeout", true, undefined, { retryAfterMs: 0 }) : undefined,
    );
    let now = NOW;
    const store = new MemoryStore();
    const conversation = opened();
    await store.init(conversation, { requestId: conversation.requestId }, []);
    await store.queueTyping(conversation.id, { id: "t:first", state: "start", queuedAt: now });
    await store.queueTyping(conversation.id, { id: "t:second", state: "stop", queuedAt: now });
    const worker = new OutboxWorker(
      store,
      new DeskLane(store, desk, effects, undefined, () => now),
      {
        baseDelayMs: 20,
        maxDelayMs: 20,
        noAgentBaseMs: 20,
        noAgentMaxMs: 20,
        pollMs: 10_000,
        nodeId: "n1",
        now: () => now,
      },
      quiet,
      noMetrics,
    );
    workers.push(worker);
    worker.notify(conversation.id);
    await expect.poll(() => calls.length).toBe(1);
    // The first attempt failed: by its retry, both items are older than a typing indicator is worth.
    now += TYPING_FRESH_MS + 1_000;
    worker.notify(conversation.id);
    await expect.poll(async () => store.outboxHead(conversation.id, "desk"), { timeout: 3_000 }).toBeUndefined();
    expect(calls).toEqual([
      { state: "start", id: "t:first", late: false },
      { state: "start", id: "t:first", late: true },
      { state: "stop", id: "t:second", late: true },
    ]);
  });
});
