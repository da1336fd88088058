import { afterEach, describe, expect, it } from "vitest";
import type { ActivityMessage, ChatMessage, InitRequestParsed, Message } from "../../protocol/index.js";
import type { Bot, BotInput, BotOutput } from "../../server/core/bot.js";
import { BotLane } from "../../server/core/bot-outbox.js";
import { ConnectorDispatcher } from "../../server/core/connectors.js";
import type { Conversation } from "../../server/core/conversation.js";
import { ConversationService, type Actor } from "../../server/core/conversations.js";
import type { Desk, DeskSession } from "../../server/core/desk.js";
import { DeskLane } from "../../server/core/desk-outbox.js";
import { AdapterError } from "../../server/core/errors.js";
import { LocalBus } from "../../server/core/local-bus.js";
import { OutboxWorker, type LaneHandler } from "../../server/core/outbox.js";
import { noMetrics, type CoreLogger, type CoreMetrics } from "../../server/core/ports.js";
import { MemoryStore } from "../../server/store/memory/memory-store.js";

const quiet: CoreLogger = {
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
};

/**
 * A bot double that answers at once (as Dialogflow does): `script` maps a customer's text to outputs; every input it
 * received is in `heard`, with the conversation's state at that moment. `failWith` makes the next deliveries throw.
 */
class ScriptedBot implements Bot {
  readonly name = "scripted";
  readonly capabilities = { buttons: true, files: true };
  readonly heard: { input: BotInput; state: Conversation["state"] }[] = [];
  failWith: (() => Error) | undefined;
  /** Holds every delivery until released: a delivery under way while something else happens. */
  gate: Promise<void> | undefined;

  constructor(private readonly script: (input: BotInput) => BotOutput[]) {}

  async deliver(conversation: Conversation, input: BotInput): Promise<BotOutput[]> {
    if (this.failWith) throw this.failWith();
    this.heard.push({ input, state: conversation.state });
    await this.gate;
    return this.script(input);
  }
}

/** A desk double that takes everything: what it was sent, in order. */
class RecordingDesk implements Desk {
  readonly name = "recording";
  readonly capabilities = { attachments: true, edits: false, queuePosition: false, typing: false, buttons: false };
  readonly sent: string[] = [];
  opens = 0;

  initialIds(): Record<string, string> {
    return {};
  }

  open(): Promise<DeskSession> {
    this.opens += 1;
    return Promise.resolve({ ids: { room: `room-${this.opens}` } });
  }

  send(_conversation: Conversation, message: ChatMessage): Promise<void> {
    this.sent.push(message.text);
    return Promise.resolve();
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

const textOf = (input: BotInput): string => (input.kind === "message" ? input.message.text : `[${input.name}]`);
const reply = (text: string, extra: Partial<Extract<BotOutput, { type: "reply" }>> = {}): BotOutput => ({
  type: "reply",
  text,
  attachments: [],
  ...extra,
});

describe("the bot stage in the core", () => {
  const cleanups: (() => Promise<void> | void)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  interface Options {
    desk?: RecordingDesk;
    afterAgent?: "end" | "resume";
    giveUpAfterMs?: number;
  }

  function setup(bot: ScriptedBot, options: Options = {}) {
    const store = new MemoryStore();
    const counted: Record<string, number> = {};
    const metrics: CoreMetrics = {
      ...noMetrics,
      handOff: (reason) => {
        counted[`handOff:${reason}`] = (counted[`handOff:${reason}`] ?? 0) + 1;
      },
      botOutputDropped: (name, output) => {
        counted[`dropped:${name}:${output}`] = (counted[`dropped:${name}:${output}`] ?? 0) + 1;
      },
    };
    const connectors = new ConnectorDispatcher(
      store,
      { ackTimeoutMs: 1_000, maxInFlight: 10, maxRefusals: 5 },
      quiet,
      noMetrics,
    );
    cleanups.push(() => connectors.stop());
    const desk = options.desk;
    const core = new ConversationService(
      store,
      new LocalBus(),
      connectors,
      {
        greetingText: "Hello!",
        maxTextLength: 1_000,
        directChannels: ["web"],
        deskName: desk?.name ?? "socket",
        externalDesk: desk !== undefined,
        bot: { name: bot.name, participantName: "Aida", afterAgent: options.afterAgent ?? "end" },
      },
      () => new Date(),
      quiet,
      metrics,
    );
    const worker = (handler: LaneHandler) => {
      const outbox = new OutboxWorker(
        store,
        handler,
        { baseDelayMs: 20, maxDelayMs: 50, noAgentBaseMs: 20, noAgentMaxMs: 50, pollMs: 25, nodeId: "node-1" },
        quiet,
        noMetrics,
      );
      outbox.start();
      cleanups.push(() => outbox.stop(1_000));
      return outbox;
    };
    core.attachBotOutbox(worker(new BotLane(store, bot, core, options.giveUpAfterMs ?? 60_000)));
    if (desk) core.attachDesk(desk, worker(new DeskLane(store, desk, core)));
    const start = async (overrides: Partial<InitRequestParsed> = {}) =>
      (
        await core.init(
          { firstName: "Sara", lastName: "Khan", channel: "web", language: "en", subject: "general", ...overrides },
          { trusted: true },
        )
      ).conversation;
    const customer = (conversation: Conversation): Actor => ({
      id: conversation.customer.id,
      name: conversation.customer.name,
      role: "customer",
    });
    const say = (conversation: Conversation, text: string, extra: Partial<Parameters<typeof core.send>[2]> = {}) =>
      core.send(conversation, customer(conversation), { text, attachments: [], to: [], tag: "", ...extra });
    const log = (id: string) => store.read(id, 0);
    const state = async (id: string) => (await store.get(id))?.state;
    const shown = (messages: Message[]) =>
      messages.map((m) => (m.type === "ChatMessage" ? `${m.from.id}: ${m.text}` : `[${m.activityType}]`));
    const handOffs = async (id: string) =>
      (await log(id))
        .filter(
          (m): m is Extract<ActivityMessage, { activityType: "handOff" }> & { seq: number } =>
            m.type === "ActivityMessage" && m.activityType === "handOff",
        )
        .map((m) => m.info);
    return { store, core, counted, start, say, log, state, shown, handOffs };
  }

  const agent: Actor = { id: "agent-17", name: "Ali", role: "agent" };

  it("starts with the bot: state bot, handed to the bot, the bot listed among the participants, replies from it", async () => {
    const bot = new ScriptedBot((input) => [reply(`you said ${textOf(input)}`)]);
    const { core, start, say, log, shown, handOffs } = setup(bot);
    const conversation = await start();
    expect(conversation.state).toBe("bot");
    expect(await handOffs(conversation.id)).toEqual([{ subject: "general", desk: "bot", reason: "init" }]);
    const { toView } = await import("../../server/core/conversation.js");
    expect(toView(await core.get(conversation.id)).participants).toEqual([
      { id: conversation.customer.id, name: "Sara Khan", role: "customer" },
      { id: "bot", name: "Aida", role: "bot" },
    ]);

    await say(conversation, "hi");
    await expect.poll(async () => shown(await log(conversation.id))).toContain("bot: you said hi");
    const answer = (await log(conversation.id)).find((m) => m.type === "ChatMessage" && m.from.id === "bot");
    // Its id comes from the input it answers: a repeated delivery records it once.
    expect(answer).toMatchObject({ id: "scripted:m:2:0", from: { id: "bot", name: "Aida" } });
    expect(bot.heard.map((h) => [textOf(h.input), h.state])).toEqual([["hi", "bot"]]);
  });

  it("records a press as the button's text, and only a customer presses, only a bot offers buttons", async () => {
    const bot = new ScriptedBot((input) =>
      input.kind === "message" && input.message.button?.id === "yes"
        ? [reply("Great.")]
        : [
            reply("", {
              buttons: [
                [
                  { id: "yes", text: "Yes please" },
                  { id: "no", text: "No" },
                ],
              ],
            }),
          ],
    );
    const { core, start, say, log } = setup(bot);
    const conversation = await start();
    await say(conversation, "help");
    await expect
      .poll(async () => (await log(conversation.id)).some((m) => m.type === "ChatMessage" && m.buttons !== undefined))
      .toBe(true);
    const pressed = await say(conversation, "", { button: { id: "yes", text: "Yes please" } });
    expect(pressed.message).toMatchObject({ text: "Yes please", button: { id: "yes", text: "Yes please" } });
    await expect.poll(() => bot.heard.length).toBe(2);
    expect(bot.heard[1]?.input).toMatchObject({ kind: "message", message: { button: { id: "yes" } } });
    await expect
      .poll(async () => (await log(conversation.id)).map((m) => (m.type === "ChatMessage" ? m.text : "")))
      .toContain("Great.");

    const input = { text: "x", attachments: [], to: [], tag: "" as const };
    await expect(
      core.send(conversation, agent, { ...input, button: { id: "yes", text: "Yes" } }),
    ).rejects.toMatchObject({ code: "forbidden" });
    await expect(
      core.send(conversation, agent, { ...input, buttons: [[{ id: "a", text: "A" }]] }),
    ).rejects.toMatchObject({ code: "forbidden" });
    const botSocket: Actor = { id: "helper-bot", name: "Helper", role: "bot" };
    const offered = await core.send(conversation, botSocket, {
      ...input,
      text: "",
      buttons: [[{ id: "a", text: "A" }]],
    });
    expect(offered.message).toMatchObject({ text: "", buttons: [[{ id: "a", text: "A" }]] });
  });

  it("hands over to the socket desk: the department becomes the subject, the bot hears nothing after", async () => {
    const bot = new ScriptedBot((input) =>
      textOf(input) === "agent please"
        ? [reply("Connecting you."), { type: "handOff", department: "billing" }, reply("too late")]
        : [reply("ok")],
    );
    const { core, counted, start, say, log, state, shown, handOffs } = setup(bot);
    const conversation = await start();
    await say(conversation, "agent please");
    await expect.poll(() => state(conversation.id)).toBe("queued");
    expect((await core.get(conversation.id)).subject).toBe("billing");
    expect((await handOffs(conversation.id)).at(-1)).toEqual({ subject: "billing", desk: "socket", reason: "bot" });
    // The reply after the hand-off in the same answer is dropped: the bot no longer has the conversation.
    expect(shown(await log(conversation.id))).not.toContain("bot: too late");
    expect(counted).toMatchObject({ "handOff:bot": 1, "dropped:scripted:reply": 1 });

    await say(conversation, "are you there?");
    await core.botOutputs(await core.get(conversation.id), [reply("late reply"), { type: "end" }]);
    expect(counted).toMatchObject({ "dropped:scripted:reply": 2, "dropped:scripted:end": 1 });
    expect(await state(conversation.id)).toBe("queued");
    expect(bot.heard.map((h) => textOf(h.input))).toEqual(["agent please"]);
    await core.joined(await core.get(conversation.id), agent);
    expect(await state(conversation.id)).toBe("active");
  });

  it("lets an agent watch the bot, and take the conversation over by speaking", async () => {
    const bot = new ScriptedBot(() => [reply("bot here")]);
    const { core, counted, start, say, log, state, handOffs } = setup(bot);
    const conversation = await start();
    await core.joined(conversation, agent);
    expect(await state(conversation.id)).toBe("bot");
    await say(conversation, "one");
    await expect.poll(() => bot.heard.length).toBe(1);
    await core.send(conversation, agent, { text: "psst", attachments: [], to: [], tag: "whisper" });
    expect(await state(conversation.id)).toBe("bot");

    await core.send(conversation, agent, { text: "I'll take it from here.", attachments: [], to: [], tag: "" });
    expect(await state(conversation.id)).toBe("active");
    expect((await core.get(conversation.id)).agent).toEqual({ id: "agent-17", name: "Ali" });
    expect((await handOffs(conversation.id)).at(-1)).toEqual({
      subject: "general",
      desk: "socket",
      reason: "takeover",
    });
    const texts = (await log(conversation.id)).map((m) => (m.type === "ChatMessage" ? m.text : `[${m.activityType}]`));
    expect(texts.slice(-2)).toEqual(["[handOff]", "I'll take it from here."]);
    await say(conversation, "two");
    expect(bot.heard).toHaveLength(1);
    expect(counted["handOff:takeover"]).toBe(1);
  });

  it("hands over to an external desk with a digest, then the messages the bot had not received, once and in order", async () => {
    const desk = new RecordingDesk();
    let release: () => void = () => undefined;
    const bot = new ScriptedBot((input) =>
      textOf(input) === "human" ? [reply("Transferring."), { type: "handOff" }] : [reply(`re: ${textOf(input)}`)],
    );
    const { start, say, state } = setup(bot, { desk });
    const conversation = await start();
    await say(conversation, "hello");
    await expect.poll(() => bot.heard.length).toBe(1);
    // The bot holds "human" while the customer writes on: those messages wait in the bot's lane.
    bot.gate = new Promise((resolve) => {
      release = resolve;
    });
    await say(conversation, "human");
    await expect.poll(() => bot.heard.length).toBe(2);
    await say(conversation, "second");
    await say(conversation, "third");
    release();
    await expect.poll(() => state(conversation.id)).toBe("queued");
    await expect.poll(() => desk.sent.length).toBe(3);
    const [digest, ...rest] = desk.sent;
    expect(digest).toMatch(/^Conversation before the hand-off:\n/);
    expect(digest).toMatch(/Sara Khan: hello\n.*Aida: re: hello\n.*Sara Khan: human\n.*Aida: Transferring\.$/);
    expect(digest).not.toContain("second");
    expect(rest).toEqual(["second", "third"]);
    await say(conversation, "fourth");
    await expect.poll(() => desk.sent.at(-1)).toBe("fourth");
    expect(desk.opens).toBe(1);
    expect(bot.heard.map((h) => textOf(h.input))).toEqual(["hello", "human"]);
  });

  it("hands a conversation to the desk when the bot refuses for good, with the message it refused", async () => {
    const desk = new RecordingDesk();
    const bot = new ScriptedBot(() => []);
    bot.failWith = () => new AdapterError("scripted", "400 no active channel", false, 400);
    const { counted, start, say, state, handOffs } = setup(bot, { desk });
    const conversation = await start();
    await say(conversation, "anyone?");
    await expect.poll(() => state(conversation.id)).toBe("queued");
    expect((await handOffs(conversation.id)).at(-1)).toMatchObject({ reason: "bot_unavailable" });
    // No digest: the bot said nothing, and the customer's message comes to the agent as a message of its own.
    await expect.poll(() => desk.sent).toEqual(["anyone?"]);
    expect(counted["handOff:bot_unavailable"]).toBe(1);
  });

  it("hands a conversation to the desk once the bot has failed for longer than allowed, and not before", async () => {
    const desk = new RecordingDesk();
    const bot = new ScriptedBot(() => []);
    let failures = 0;
    bot.failWith = () => {
      failures += 1;
      return new AdapterError("scripted", "503", true, 503);
    };
    const { start, say, state } = setup(bot, { desk, giveUpAfterMs: 300 });
    const conversation = await start();
    const started = Date.now();
    await say(conversation, "one");
    await say(conversation, "two");
    await expect.poll(() => state(conversation.id)).toBe("queued");
    expect(Date.now() - started).toBeGreaterThanOrEqual(300);
    expect(failures).toBeGreaterThan(1);
    await expect.poll(() => desk.sent).toEqual(["one", "two"]);
  });

  it("with BOT_AFTER_AGENT=resume gives the conversation back to the bot when the agent ends it", async () => {
    const bot = new ScriptedBot((input) =>
      textOf(input) === "agent" ? [{ type: "handOff" }] : [reply(`bot: ${textOf(input)}`)],
    );
    const { core, counted, start, say, state, handOffs } = setup(bot, { afterAgent: "resume" });
    const conversation = await start();
    await say(conversation, "agent");
    await expect.poll(() => state(conversation.id)).toBe("queued");
    await core.joined(await core.get(conversation.id), agent);
    const ended = await core.end(await core.get(conversation.id), agent, "done");
    expect(ended).toEqual({ alreadyEnded: false, resumed: true });
    expect(await state(conversation.id)).toBe("bot");
    expect((await core.get(conversation.id)).agent).toBeUndefined();
    expect((await handOffs(conversation.id)).at(-1)).toEqual({
      subject: "general",
      desk: "bot",
      reason: "agent_closed",
    });
    await expect.poll(() => bot.heard.map((h) => textOf(h.input))).toEqual(["agent", "[agent_closed]"]);
    await say(conversation, "back again");
    await expect.poll(() => bot.heard.at(-1)?.state).toBe("bot");
    expect(counted["handOff:agent_closed"]).toBe(1);
    // The customer's own end still ends it.
    const customerActor: Actor = { id: conversation.customer.id, name: "Sara Khan", role: "customer" };
    await core.end(await core.get(conversation.id), customerActor, "bye");
    expect(await state(conversation.id)).toBe("ended");
  });

  it("ends the conversation when the bot ends it, ended by the bot", async () => {
    const bot = new ScriptedBot(() => [reply("Goodbye."), { type: "end", reason: "resolved" }]);
    const { start, say, state, log } = setup(bot);
    const conversation = await start();
    await say(conversation, "thanks");
    await expect.poll(() => state(conversation.id)).toBe("ended");
    const end = (await log(conversation.id)).at(-1);
    expect(end).toMatchObject({
      activityType: "endOfConversation",
      info: { reason: "resolved", endedBy: { id: "bot", name: "Aida", role: "bot" } },
    });
  });
});
