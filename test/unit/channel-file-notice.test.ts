import { describe, expect, it } from "vitest";
import { ConnectorDispatcher } from "../../server/core/connectors.js";
import { ConversationService } from "../../server/core/conversations.js";
import { LocalBus } from "../../server/core/local-bus.js";
import { noMetrics, type CoreLogger } from "../../server/core/ports.js";
import { MemoryStore } from "../../server/store/memory/memory-store.js";

describe("ConversationService: a channel's file that went as a link", () => {
  it("records one deliveryFailed naming the file and queues one note for the desk, however often it is reported", async () => {
    const store = new MemoryStore();
    const quiet: CoreLogger = {
      debug: () => undefined,
      info: () => undefined,
      warn: () => undefined,
      error: () => undefined,
    };
    const connectors = new ConnectorDispatcher(
      store,
      { ackTimeoutMs: 1_000, maxInFlight: 10, maxRefusals: 5 },
      quiet,
      noMetrics,
    );
    const core = new ConversationService(
      store,
      new LocalBus(),
      connectors,
      {
        greetingText: "hi",
        maxTextLength: 100,
        directChannels: ["web"],
        deskName: "rocketchat",
        externalDesk: true,
        outboundChannels: ["rapidpro"],
      },
      () => new Date("2026-11-21T10:00:00.000Z"),
      quiet,
      noMetrics,
    );
    try {
      const { conversation } = await core.init(
        { firstName: "Lina", channel: "rapidpro", refId: "c-1", language: "en" },
        { trusted: true },
      );
      await store.outboxComplete(conversation.id, "desk", "open");
      const report = () =>
        core.channelFileNotAttached(
          conversation,
          { id: "m-9" },
          { index: 1, name: "form.docx" },
          "link",
          "RapidPro does not take application/msword files",
        );
      await report();
      await report();
      const failures = (await store.read(conversation.id, 0)).filter(
        (m) => m.type === "ActivityMessage" && m.activityType === "deliveryFailed",
      );
      expect(failures.map((m) => (m.type === "ActivityMessage" ? m.info : undefined))).toEqual([
        {
          messageId: "m-9",
          destination: "rapidpro",
          reason:
            "form.docx was not attached (RapidPro does not take application/msword files); the customer got a link to it instead",
        },
      ]);
      const note = await store.outboxHead(conversation.id, "desk");
      expect(note).toMatchObject({
        kind: "note",
        text: "⚠ Not attached for the customer: form.docx (RapidPro does not take application/msword files); the customer got a link to it instead",
      });
      await store.outboxComplete(conversation.id, "desk", note?.id ?? "");
      expect(await store.outboxHead(conversation.id, "desk")).toBeUndefined();
      // Nothing for the customer's own channel: the activity is for the agents.
      expect(await store.outboxHead(conversation.id, "channel")).toBeUndefined();
    } finally {
      connectors.stop();
    }
  });
});
