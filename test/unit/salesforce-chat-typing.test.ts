import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { SalesforceChatDesk } from "../../server/adapters/salesforce/chat-desk.js";
import { createLogger } from "../../server/logger.js";
import { MemoryStore } from "../../server/store/memory/memory-store.js";
import { conversationFixture } from "../contract/store.contract.js";

/**
 * A late typing indicator on the legacy Chat API is sent only when an earlier attempt took the chat session's last
 * request number (on any node): Salesforce may have that request, and the next one must not leave a gap.
 */
describe("SalesforceChatDesk: a late typing indicator", () => {
  let server: Server | undefined;
  afterEach(async () => {
    await new Promise((resolve) => server?.close(resolve));
    server = undefined;
  });

  async function deskWith(lastRequest: string) {
    const posts: { path: string; sequence: string | undefined }[] = [];
    server = createServer((req, res) => {
      posts.push({ path: req.url ?? "", sequence: req.headers["x-liveagent-sequence"] as string | undefined });
      req.resume().on("end", () => res.writeHead(200).end("OK"));
    });
    await new Promise<void>((resolve) => server?.listen(0, "127.0.0.1", resolve));
    const { port } = server.address() as AddressInfo;
    const store = new MemoryStore();
    const conversation = conversationFixture({
      state: "active",
      desk: {
        desk: "salesforce",
        ids: { chatKey: "key-1", affinity: "aff-1", "seq.aff-1": lastRequest, resync: "none" },
        openedAt: "2026-11-21T10:00:05.000Z",
      },
    });
    await store.init(conversation, { requestId: conversation.requestId }, []);
    const desk = new SalesforceChatDesk({
      baseUrl: `http://127.0.0.1:${port}/chat/rest`,
      apiVersion: 60,
      orgId: "00D000000000001",
      deploymentId: "572000000000001",
      buttonId: "573000000000001",
      timeoutMs: 2_000,
      store,
      logger: createLogger({ LOG_LEVEL: "silent" }),
      fileLink: () => "",
    });
    return { desk, conversation, posts };
  }

  it("is dropped when no attempt took a request number for it", async () => {
    const { desk, conversation, posts } = await deskWith("4 m:earlier-message");
    await desk.typing(conversation, "start", { id: "t:1", late: true });
    expect(posts).toEqual([]);
  });

  it("is sent again with the number an earlier attempt took", async () => {
    const { desk, conversation, posts } = await deskWith("5 t:t:1");
    await desk.typing(conversation, "start", { id: "t:1", late: true });
    expect(posts).toEqual([{ path: "/chat/rest/Chasitor/ChasitorTyping", sequence: "5" }]);
  });

  it("goes out with the next number while it is fresh", async () => {
    const { desk, conversation, posts } = await deskWith("5 m:earlier-message");
    await desk.typing(conversation, "stop", { id: "t:2", late: false });
    expect(posts).toEqual([{ path: "/chat/rest/Chasitor/ChasitorNotTyping", sequence: "6" }]);
  });
});
