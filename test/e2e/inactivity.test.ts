import { afterEach, describe, expect, it, onTestFinished } from "vitest";
import type { ActivityOf, Message } from "../../protocol/index.js";
import { startTestApp, type TestApp } from "../helpers/app.js";
import { connect, nextEvent, request, webCustomer } from "../helpers/socket.js";

/** A clock that runs with real time, and jumps forward when a test says so. */
function steerableClock() {
  let offsetMs = 0;
  return {
    clock: () => new Date(Date.now() + offsetMs),
    advance: (ms: number) => {
      offsetMs += ms;
    },
  };
}

const isEnd = (message: Message): message is ActivityOf<"endOfConversation"> =>
  message.type === "ActivityMessage" && message.activityType === "endOfConversation";

describe("conversations nobody writes in", () => {
  const apps: TestApp[] = [];
  afterEach(async () => {
    for (const app of apps.splice(0)) await app.close();
  });

  async function gateway(idleSeconds: string) {
    const time = steerableClock();
    // A look every 20 ms: the end follows the clock's jump at once, with no wait for a real timeout.
    const app = await startTestApp(
      { IDLE_TIMEOUT_SECONDS: idleSeconds },
      { clock: time.clock, tuning: { idleSweepMs: 20 } },
    );
    apps.push(app);
    return { app, ...time };
  }

  async function customer(app: TestApp) {
    const joined = await webCustomer(app.url);
    onTestFinished(() => {
      joined.socket.close();
    });
    return joined;
  }

  it("ends a conversation with no message for IDLE_TIMEOUT_SECONDS (reason inactive, by the system), not one with recent activity", async () => {
    const { app, advance } = await gateway("60");
    // Created first: were activity not counted, it would be the first to go.
    const busy = await customer(app);
    const idle = await customer(app);

    advance(30_000);
    expect(await busy.send("still here")).toMatchObject({ ok: true });
    advance(31_000);

    const ended = await nextEvent<Message>(idle.socket, "messageArrived", isEnd);
    expect(ended).toMatchObject({
      info: { reason: "inactive", endedBy: { id: "system", name: "Liaison", role: "system" } },
    });
    const record = await app.app.store.get(idle.init.conversationId);
    expect(record).toMatchObject({ state: "ended", endReason: "inactive" });
    const log = await app.app.store.read(idle.init.conversationId, 0);
    expect(log.filter(isEnd)).toHaveLength(1);
    await expect(idle.send("hello?")).resolves.toMatchObject({ ok: false, error: { code: "conversation_ended" } });

    // The busy one was last active 31 s ago: open, and its customer heard nothing of an end.
    expect((await app.app.store.get(busy.init.conversationId))?.state).toBe("queued");
    expect(await busy.send("and still")).toMatchObject({ ok: true });
    expect(busy.inbox.messages.filter(isEnd)).toEqual([]);

    // Without a word for a minute more, it ends too; and like any ended conversation it is deleted after retention.
    advance(61_000);
    await nextEvent<Message>(busy.socket, "messageArrived", isEnd);
    const retentionMs = app.app.config.ENDED_RETENTION_HOURS * 3_600_000;
    expect(await app.app.store.sweepEnded(new Date(Date.now() + 200_000 + retentionMs))).toBe(2);
    expect(await app.app.store.get(idle.init.conversationId)).toBeUndefined();
  });

  it("counts any recorded message, an activity too, as activity; typing not", async () => {
    const { app, advance } = await gateway("60");
    // Created first: were activities not counted, it would be the first to go.
    const joinedByAgent = await customer(app);
    const typist = await customer(app);

    advance(50_000);
    const typing = {
      type: "ActivityMessage",
      activityType: "typing",
      conversationId: typist.init.conversationId,
      info: { state: "start" },
    };
    expect(await request(typist.socket, "sendMessage", typing)).toMatchObject({ ok: true });
    // An agent's join is recorded (participantJoined): the conversation was active 10 s ago when the clock jumps.
    const agent = await connect(app.url, { apiKey: app.apiKey });
    onTestFinished(() => {
      agent.close();
    });
    const join = { conversationId: joinedByAgent.init.conversationId, id: "agent-17", name: "Ali", role: "agent" };
    expect(await request(agent, "joinConversation", join)).toEqual({ ok: true });
    advance(11_000);

    const ended = await nextEvent<Message>(typist.socket, "messageArrived", isEnd);
    expect(ended).toMatchObject({ info: { reason: "inactive" } });
    expect((await app.app.store.get(joinedByAgent.init.conversationId))?.state).toBe("active");
  });
});
