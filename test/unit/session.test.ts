import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { ActivityMessage, ChatMessage, Member, Message, StoredMessage } from "../../protocol/index.js";
import type { Conversation } from "../../server/core/conversation.js";
import type { Published } from "../../server/core/ports.js";
import { GAP_FILL_MS, Session, type SessionSocket } from "../../server/socket/session.js";

const CONVERSATION = "c_session";
const SOCKET_ID = "sock-self";
const conversationRecord: Conversation = {
  id: CONVERSATION,
  token: "t",
  channel: "web",
  customer: { id: "p_1", name: "Sara Khan", firstName: "Sara" },
  subject: "",
  language: "en",
  state: "active",
  desk: { desk: "socket", ids: {} },
  requestId: "r_1",
  createdAt: "2026-11-21T10:00:00.000Z",
};
const agentMember: Member = { id: "agent-17", name: "Ali", role: "agent" };
const customerMember: Member = { id: "p_1", name: "Sara Khan", role: "customer" };

function chat(seq: number, extra: Partial<ChatMessage> = {}): ChatMessage {
  return {
    type: "ChatMessage",
    id: `m_${seq}`,
    conversationId: CONVERSATION,
    seq,
    timestamp: "2026-11-21T10:00:00.000Z",
    from: { id: "p_1", name: "Sara Khan" },
    to: [],
    text: `message ${seq}`,
    attachments: [],
    tag: "",
    ...extra,
  };
}

function typing(id: string): ActivityMessage {
  return {
    type: "ActivityMessage",
    id,
    conversationId: CONVERSATION,
    timestamp: "2026-11-21T10:00:00.000Z",
    from: { id: "agent-17", name: "Ali" },
    to: [],
    activityType: "typing",
    info: { participant: { id: "agent-17", name: "Ali" }, state: "start" },
  };
}

const event = (message: Message, originSocketId?: string): Published => ({
  conversationId: CONVERSATION,
  message,
  ...(originSocketId === undefined ? {} : { originSocketId }),
});

/** A socket that records what the session emits to it. */
class FakeSocket implements SessionSocket {
  readonly id = SOCKET_ID;
  readonly emitted: { event: string; message: Message }[] = [];
  emit(name: "messageArrived", message: Message): void {
    this.emitted.push({ event: name, message });
  }
  /** Seqs of the recorded messages emitted (typing has none). */
  get seqs(): number[] {
    return this.emitted.flatMap((entry) => (entry.message.seq === undefined ? [] : [entry.message.seq]));
  }
  get ids(): string[] {
    return this.emitted.map((entry) => entry.message.id);
  }
}

interface Harness {
  socket: FakeSocket;
  session: Session;
  readFrom: ReturnType<typeof vi.fn<(afterSeq: number) => Promise<StoredMessage[]>>>;
  onError: ReturnType<typeof vi.fn<(error: unknown) => void>>;
}

/** A session over a fake socket; `log` is what the store holds (readFrom serves from it). */
function harness(
  options: { member?: Member; seesWhispers?: boolean; live?: boolean; log?: StoredMessage[] } = {},
): Harness {
  const socket = new FakeSocket();
  const log = options.log ?? [];
  const readFrom = vi.fn((afterSeq: number) => Promise.resolve(log.filter((message) => message.seq > afterSeq)));
  const onError = vi.fn<(error: unknown) => void>();
  const session = new Session(conversationRecord, options.member ?? agentMember, socket, {
    seesWhispers: options.seesWhispers ?? true,
    live: options.live ?? true,
    source: {
      read: (_conversationId, afterSeq) => readFrom(afterSeq),
      gapFillFailed: (_conversationId, error) => onError(error),
    },
  });
  sessions.push(session);
  return { socket, session, readFrom, onError };
}

const sessions: Session[] = [];

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  for (const session of sessions.splice(0)) session.close();
  vi.useRealTimers();
});

describe("Session", () => {
  it("delivers messages that arrive in order, in order, as messageArrived", () => {
    const { socket, session } = harness();
    session.ready(0);
    for (const seq of [1, 2, 3]) session.receive(event(chat(seq)));
    expect(socket.seqs).toEqual([1, 2, 3]);
    expect(socket.emitted.every((entry) => entry.event === "messageArrived")).toBe(true);
  });

  it("holds early arrivals (3, 2, 4 after 1) and releases them in seq order", async () => {
    const { socket, session, readFrom } = harness();
    session.ready(0);
    session.receive(event(chat(1)));
    session.receive(event(chat(3)));
    expect(socket.seqs).toEqual([1]);
    session.receive(event(chat(2)));
    expect(socket.seqs).toEqual([1, 2, 3]);
    session.receive(event(chat(4)));
    expect(socket.seqs).toEqual([1, 2, 3, 4]);
    // The gap closed by itself: the store is never asked.
    await vi.advanceTimersByTimeAsync(GAP_FILL_MS * 4);
    expect(readFrom).not.toHaveBeenCalled();
  });

  it("drops duplicates, whether already delivered or still waiting", async () => {
    const { socket, session } = harness();
    session.ready(0);
    session.receive(event(chat(1)));
    session.receive(event(chat(1)));
    session.receive(event(chat(3)));
    session.receive(event(chat(3)));
    session.receive(event(chat(2)));
    session.receive(event(chat(2)));
    session.receive(event(chat(1)));
    await vi.advanceTimersByTimeAsync(GAP_FILL_MS * 2);
    expect(socket.seqs).toEqual([1, 2, 3]);
  });

  it("holds everything while syncing, then releases only what follows ready(lastSeq), in order", () => {
    const { socket, session } = harness();
    session.receive(event(chat(4)));
    session.receive(event(chat(2)));
    session.receive(event(typing("t_while_syncing")));
    session.receive(event(chat(3)));
    session.receive(event(chat(5)));
    expect(socket.emitted).toEqual([]);
    // conversationInfo carried history up to seq 3
    session.ready(3);
    expect(socket.seqs).toEqual([4, 5]);
    session.receive(event(chat(6)));
    expect(socket.seqs).toEqual([4, 5, 6]);
  });

  it("sends nothing live after a history page with more to follow, holds nothing and reads nothing", async () => {
    const { socket, session, readFrom } = harness();
    session.receive(event(chat(201)));
    // conversationInfo carried seqs up to 200 of a longer log: the client joins again for the next page.
    session.ready(200, true);
    session.receive(event(chat(202)));
    session.receive(event(chat(204)));
    session.receive(event(typing("t_while_paging")));
    await vi.advanceTimersByTimeAsync(GAP_FILL_MS * 4);
    expect(socket.emitted).toEqual([]);
    expect(readFrom).not.toHaveBeenCalled();
  });

  it("relays typing (no seq) at once without disturbing the order", () => {
    const { socket, session } = harness();
    session.ready(0);
    session.receive(event(chat(2)));
    session.receive(event(typing("t_1")));
    session.receive(event(chat(1)));
    expect(socket.ids).toEqual(["t_1", "m_1", "m_2"]);
  });

  it("does not echo a message to the socket that sent it, but counts its seq", async () => {
    const { socket, session, readFrom } = harness();
    session.ready(0);
    session.receive(event(chat(1), SOCKET_ID));
    session.receive(event(typing("t_own"), SOCKET_ID));
    session.receive(event(chat(2), "sock-other"));
    // 2 went out at once: 1 was not left waiting as a gap
    expect(socket.ids).toEqual(["m_2"]);
    await vi.advanceTimersByTimeAsync(GAP_FILL_MS * 2);
    expect(readFrom).not.toHaveBeenCalled();
    expect(socket.seqs).toEqual([2]);
  });

  it("hides whispers from a session that may not see them, and still advances past them", () => {
    const customer = harness({ member: customerMember, seesWhispers: false });
    const agent = harness({ seesWhispers: true });
    for (const { session } of [customer, agent]) {
      session.ready(0);
      session.receive(event(chat(1, { tag: "whisper", text: "VIP customer" })));
      session.receive(event(chat(2)));
    }
    expect(customer.socket.seqs).toEqual([2]);
    expect(JSON.stringify(customer.socket.emitted)).not.toContain("VIP customer");
    expect(agent.socket.seqs).toEqual([1, 2]);
  });

  it("emits nothing for a session that is not live (a connector fed by acked delivery)", () => {
    const { socket, session } = harness({ live: false });
    session.ready(0);
    session.receive(event(chat(1)));
    session.receive(event(typing("t_1")));
    expect(socket.emitted).toEqual([]);
  });

  it("refills a gap the bus never fills from readFrom, once, delivering each message exactly once", async () => {
    const log = [1, 2, 3, 4].map((seq) => chat(seq) as StoredMessage);
    const { socket, session, readFrom } = harness({ log });
    session.ready(0);
    session.receive(event(chat(1)));
    session.receive(event(chat(3)));
    expect(socket.seqs).toEqual([1]);

    await vi.advanceTimersByTimeAsync(GAP_FILL_MS - 1);
    expect(readFrom).not.toHaveBeenCalled();
    await vi.advanceTimersByTimeAsync(1);
    await vi.waitFor(() => expect(socket.seqs).toEqual([1, 2, 3, 4]));
    expect(readFrom).toHaveBeenCalledTimes(1);
    expect(readFrom).toHaveBeenCalledWith(1);

    // The bus catches up late: nothing is delivered twice.
    session.receive(event(chat(2)));
    session.receive(event(chat(4)));
    session.receive(event(chat(5)));
    await vi.advanceTimersByTimeAsync(GAP_FILL_MS * 4);
    expect(socket.seqs).toEqual([1, 2, 3, 4, 5]);
    expect(readFrom).toHaveBeenCalledTimes(1);
  });

  it("keeps the origin and whisper rules for messages it refilled", async () => {
    const log: StoredMessage[] = [chat(1), chat(2, { tag: "whisper" }), chat(3)];
    const { socket, session } = harness({ member: customerMember, seesWhispers: false, log });
    session.ready(0);
    session.receive(event(chat(1)));
    session.receive(event(chat(3), SOCKET_ID));
    await vi.advanceTimersByTimeAsync(GAP_FILL_MS);
    await vi.waitFor(() => expect(socket.seqs).toEqual([1]));
    session.receive(event(chat(4)));
    expect(socket.seqs).toEqual([1, 4]);
  });

  it("retries a refill that failed, reporting the error", async () => {
    const log: StoredMessage[] = [chat(1), chat(2), chat(3)];
    const { socket, session, readFrom, onError } = harness({ log });
    const failure = new Error("store unreachable");
    readFrom.mockRejectedValueOnce(failure);
    session.ready(0);
    session.receive(event(chat(1)));
    session.receive(event(chat(3)));
    await vi.advanceTimersByTimeAsync(GAP_FILL_MS);
    await vi.waitFor(() => expect(onError).toHaveBeenCalledWith(failure));
    expect(socket.seqs).toEqual([1]);
    await vi.advanceTimersByTimeAsync(GAP_FILL_MS);
    await vi.waitFor(() => expect(socket.seqs).toEqual([1, 2, 3]));
    expect(readFrom).toHaveBeenCalledTimes(2);
  });

  it("emits nothing once closed, and drops a pending refill", async () => {
    const log: StoredMessage[] = [chat(1), chat(2), chat(3)];
    const { socket, session, readFrom } = harness({ log });
    session.ready(0);
    session.receive(event(chat(1)));
    session.receive(event(chat(3)));
    session.close();
    session.receive(event(chat(2)));
    await vi.advanceTimersByTimeAsync(GAP_FILL_MS * 2);
    expect(socket.seqs).toEqual([1]);
    expect(readFrom).not.toHaveBeenCalled();
  });
});
