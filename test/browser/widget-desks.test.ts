import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { readFile } from "node:fs/promises";
import { chromium, type Browser, type BrowserContext, type FrameLocator } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from "vitest";
import { LiaisonClient, type ChatMessage, type ConversationUpdated } from "../../clients/sdk/index.js";
import { startTestApp, type TestApp } from "../helpers/app.js";
import { startFakeGms } from "../fakes/gms/index.js";
import { startFakeLiveChat } from "../fakes/livechat/index.js";
import { DEFAULT_FAKE_USER, startFakeRocketChat, type FakeRocketChat } from "../fakes/rocketchat/index.js";

/** Debian's chromium package (`.ci/run` installs it when missing). */
const CHROMIUM = "/usr/bin/chromium";
const WAIT_MS = 15_000;
const RC_SECRET = "rc-webhook-secret";
const GMS_TOKEN = "gms-channel-token";

/** The site embedding the widget, on `localhost` while the gateway is on `127.0.0.1`; `gateway` is set per test. */
async function startHostSite(): Promise<{ port: number; gateway: string; close(): Promise<void> }> {
  const site = { port: 0, gateway: "", close: () => Promise.resolve() };
  const server: Server = createServer((_req, res) => {
    res.setHeader("Content-Type", "text/html; charset=utf-8");
    res.end(`<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>Example shop</title></head>
<body>
<h1>Example shop</h1>
<p>Fresh bread, cheese and coffee, delivered to your door.</p>
<script src="${site.gateway}/widget.js" async data-title="Support"></script>
</body>
</html>`);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  site.port = (server.address() as AddressInfo).port;
  site.close = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return site;
}

/** The value `probe` returns once it returns one, polled (the fakes record what they receive; they emit no events). */
async function eventually<T>(what: string, probe: () => T | undefined | Promise<T | undefined>): Promise<T> {
  let found: T | undefined;
  await expect
    .poll(
      async () => {
        found = await probe();
        return found !== undefined;
      },
      { timeout: WAIT_MS, message: `waiting for ${what}` },
    )
    .toBe(true);
  return found as T;
}

/** The Rocket.Chat room of the visitor named `name`. */
const roomOf = (rc: FakeRocketChat, name: string) =>
  eventually(`the Rocket.Chat room of ${name}`, () => rc.rooms().find((room) => room.fname === name)?._id);

/** What the visitor wrote into a Rocket.Chat room, as its agent reads it. */
const visitorTexts = (rc: FakeRocketChat, rid: string) =>
  rc
    .messages(rid)
    .filter((m) => m.t === undefined && m.token !== undefined)
    .map((m) => m.msg);

describe("the web chat widget with the Rocket.Chat desk, a bot and LiveChat's queue", () => {
  let browser: Browser;
  let site: Awaited<ReturnType<typeof startHostSite>>;
  let siteUrl: string;

  beforeAll(async () => {
    site = await startHostSite();
    siteUrl = `http://localhost:${site.port}`;
    browser = await chromium.launch({ executablePath: CHROMIUM, chromiumSandbox: false });
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await site?.close();
  });

  async function gatewayWith(env: Record<string, string>, tuning: Record<string, number> = {}): Promise<TestApp> {
    const gateway = await startTestApp(
      { CORS_ORIGINS: siteUrl, ...env },
      { tuning: { retryMaxMs: 1_000, noAgentRetryMaxMs: 1_000, ...tuning } },
    );
    onTestFinished(() => gateway.close());
    site.gateway = gateway.url;
    return gateway;
  }

  async function rocketChat(options: Parameters<typeof startFakeRocketChat>[0] = {}) {
    const rc = await startFakeRocketChat({ secretToken: RC_SECRET, retryIntervalMs: 100, ...options });
    onTestFinished(() => rc.close());
    const env = {
      ROCKETCHAT_URL: rc.url,
      ROCKETCHAT_WEBHOOK_TOKEN: RC_SECRET,
      ROCKETCHAT_USER_ID: DEFAULT_FAKE_USER.userId,
      ROCKETCHAT_AUTH_TOKEN: DEFAULT_FAKE_USER.authToken,
    };
    return { rc, env };
  }

  async function newContext(options: Parameters<Browser["newContext"]>[0] = {}): Promise<BrowserContext> {
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, ...options });
    context.setDefaultTimeout(WAIT_MS);
    onTestFinished(() => context.close());
    return context;
  }

  /** Opens the site, fills the pre-chat form and starts the chat. */
  async function startChat(context: BrowserContext, name: string, email: string) {
    const page = await context.newPage();
    const dialogs: string[] = [];
    page.on("dialog", (dialog) => {
      dialogs.push(dialog.message());
      void dialog.dismiss();
    });
    await page.goto(siteUrl);
    await page.getByRole("button", { name: "Open chat" }).click();
    const panel: FrameLocator = page.frameLocator('iframe[title="Support"]');
    await panel.getByLabel("Name").fill(name);
    await panel.getByLabel("Email").fill(email);
    await panel.getByRole("button", { name: "Start chat" }).click();
    return { page, panel, dialogs, log: panel.getByRole("log") };
  }

  it("carries a phone visitor's chat with a Rocket.Chat agent: join, messages and files both ways, the agent closes, the transcript", async () => {
    const { rc, env } = await rocketChat();
    const gateway = await gatewayWith(env);
    rc.setWebhookUrl(`${gateway.url}/webhooks/rocketchat`);
    const context = await newContext({ viewport: { width: 360, height: 740 }, hasTouch: true, isMobile: true });
    const { page, panel, log, dialogs } = await startChat(context, "Sara Khan", "sara@example.com");

    // The 360 px phone: the panel fills the screen.
    expect((await page.locator("iframe.panel").boundingBox())?.width).toBe(360);
    // Rocket.Chat routes the new room to its online agent at once: the panel names her.
    const room = await roomOf(rc, "Sara Khan");
    await panel.getByText("You are chatting with Jane Doe").waitFor();
    await log.getByText("Jane Doe joined the chat.").waitFor();

    const box = panel.getByRole("textbox", { name: "Message" });
    await box.fill("Where is my order 8812?");
    await panel.getByRole("button", { name: "Send" }).tap();
    await eventually("the visitor's message in Rocket.Chat", () =>
      visitorTexts(rc, room).includes("Where is my order 8812?") ? true : undefined,
    );
    await log.getByText("Sending…").waitFor({ state: "detached" });

    // The agent answers (Rocket.Chat's emoji shortcodes arrive as emoji); a link is clickable.
    rc.agentSend(room, "Checking now :thumbsup: see https://example.com/track");
    const link = log.getByRole("link", { name: "https://example.com/track" });
    await link.waitFor();
    await log.getByText("Checking now 👍️", { exact: false }).waitFor();
    expect(await log.getByText("Jane Doe", { exact: true }).count()).toBeGreaterThan(0);

    // A reload resumes the chat with the agent's name, and what was said once.
    await page.reload();
    await panel.getByText("You are chatting with Jane Doe").waitFor();
    await log.getByText("Checking now 👍️", { exact: false }).waitFor();
    expect(await log.getByText("Where is my order 8812?").count()).toBe(1);

    // A file the visitor attaches is uploaded into the Rocket.Chat room.
    const chooser = page.waitForEvent("filechooser");
    await panel.getByRole("button", { name: "Attach a file" }).tap();
    await (await chooser).setFiles({ name: "receipt.txt", mimeType: "text/plain", buffer: Buffer.from("order 8812") });
    const upload = await eventually("the file in Rocket.Chat", () =>
      rc.files().find((file) => file.rid === room && file.name === "receipt.txt"),
    );
    expect(upload.content.toString()).toBe("order 8812");
    await log.getByText("File: receipt.txt").waitFor();

    // A file from the agent: a link to the gateway, which fetches it from Rocket.Chat for the visitor.
    const map = Buffer.from("route map bytes");
    rc.agentSendFile(room, { name: "route.pdf", type: "application/pdf", content: map, description: "Your route" });
    await log.getByText("Your route").waitFor();
    const fileLink = log.getByRole("link", { name: "File: route.pdf" });
    expect(await fileLink.getAttribute("target")).toBe("_blank");
    const served = await fetch((await fileLink.getAttribute("href")) ?? "");
    expect(Buffer.from(await served.arrayBuffer()).equals(map)).toBe(true);

    // The agent closes the room: the panel says the chat ended and offers the transcript.
    rc.closeByAgent(room, "Solved, thanks");
    await panel.getByRole("heading", { name: "The chat has ended." }).waitFor();
    await box.waitFor({ state: "hidden" });
    const download = page.waitForEvent("download");
    await panel.getByRole("button", { name: "Download transcript" }).tap();
    const file = await (await download).path();
    expect((await readFile(file)).subarray(0, 5).toString("latin1")).toBe("%PDF-");
    await panel.getByRole("button", { name: "E-mail transcript" }).waitFor();
    // Rocket.Chat closed it: the room is not closed a second time.
    await rc.whenWebhooksIdle();
    expect(rc.requests.some((request) => request.path.includes("room.close"))).toBe(false);
    expect(dialogs).toEqual([]);
  }, 90_000);

  it("BOT=gms: the bot answers with buttons, the visitor presses one by keyboard, and an agent takes over", async () => {
    const gms = await startFakeGms({ channelToken: GMS_TOKEN });
    onTestFinished(() => gms.close());
    gms.reply("Hello", [
      {
        kind: "keyboard",
        text: "Hi! How can I help?",
        buttons: [
          [
            { id: "track", text: "Track my parcel" },
            { id: "agent", text: "Talk to a human" },
          ],
        ],
      },
    ]);
    gms.reply("Talk to a human", [
      { kind: "text", text: "Connecting you to a colleague." },
      { kind: "redirect", depKey: "orders" },
    ]);
    gms.otherwise([{ kind: "text", text: "Sorry, I did not get that." }]);
    const gateway = await gatewayWith({ BOT: "gms", GMS_WEBHOOK_URL: gms.webhookUrl, GMS_TOKEN });
    gms.setChannel({ webhookUrl: `${gateway.url}/gms` });

    // An agent of the socket desk, watching for conversations the bot hands over.
    const agent = new LiaisonClient({ url: gateway.url, apiKey: gateway.apiKey, transports: ["websocket"] });
    onTestFinished(() => agent.close());
    const queued: ConversationUpdated[] = [];
    const heard: ChatMessage[] = [];
    agent.on("conversationUpdated", (update) => queued.push(update));
    agent.on("message", (message) => {
      if (message.type === "ChatMessage") heard.push(message);
    });
    await agent.connect();
    await agent.subscribeConversations({ states: ["queued"] });

    const context = await newContext();
    const { page, panel, log } = await startChat(context, "Omar Ali", "omar@example.com");
    const box = panel.getByRole("textbox", { name: "Message" });
    await box.fill("Hello");
    await box.press("Enter");
    await log.getByText("Hi! How can I help?").waitFor();
    const options = panel.getByRole("group", { name: "Choose an option" });
    await options.waitFor();

    // The same chat in a second tab of the site.
    const tab = await context.newPage();
    await tab.goto(siteUrl);
    await tab.getByRole("button", { name: "Open chat" }).click();
    const otherOptions = tab.frameLocator('iframe[title="Support"]').getByRole("group", { name: "Choose an option" });
    await otherOptions.waitFor();

    // By keyboard, in the first tab: back from the message box to the bot's buttons, then Enter.
    await page.bringToFront();
    await box.focus();
    const focused = () =>
      panel.locator(":focus").evaluate((element: { textContent: string | null }) => element.textContent ?? "");
    for (let i = 0; i < 8 && (await focused()) !== "Talk to a human"; i++) await page.keyboard.press("Shift+Tab");
    expect(await focused()).toBe("Talk to a human");
    await page.keyboard.press("Enter");
    await log.getByText("Connecting you to a colleague.").waitFor();
    expect(await options.getByRole("button", { name: "Track my parcel" }).isDisabled()).toBe(true);
    // Answered in one tab, the offer is answered in the other too.
    await expect.poll(() => otherOptions.getByRole("button", { name: "Track my parcel" }).isDisabled()).toBe(true);
    // The hand-off, as text in the panel.
    await panel.getByRole("status").getByText("Connecting you to an agent…").waitFor();
    const handedOff = await eventually("the hand-off to the socket desk", () =>
      queued.find((update) => update.conversation.customer.name === "Omar Ali"),
    );
    const conversationId = handedOff.conversation.id;
    expect((await gateway.app.store.get(conversationId))?.subject).toBe("orders");

    // A reload while waiting: still waiting, and the buttons already answered stay pressed.
    await page.reload();
    await log.getByText("Connecting you to a colleague.").waitFor();
    await panel.getByRole("status").getByText("Connecting you to an agent…").waitFor();
    expect(await options.getByRole("button", { name: "Talk to a human" }).isDisabled()).toBe(true);

    // The agent joins: the panel names the agent, shows the typing, and the conversation goes on both ways.
    await agent.join({ conversationId, id: "agent-ayesha", name: "Ayesha", role: "agent" });
    await panel.getByText("You are chatting with Ayesha").waitFor();
    await log.getByText("Ayesha joined the chat.").waitFor();
    await agent.typing(conversationId, "start");
    await panel.getByRole("status").getByText("Ayesha is typing…").waitFor();
    await agent.send(conversationId, { text: "Hi Omar, I can help with that." });
    await log.getByText("Hi Omar, I can help with that.").waitFor();
    await box.fill("Thank you! Order 8812.");
    await box.press("Enter");
    await eventually("the visitor's message at the agent", () =>
      heard.find((message) => message.text === "Thank you! Order 8812."),
    );
    // The bot heard what was said before the hand-off, and nothing after it.
    await gms.whenIdle();
    expect(gms.heard().map((record) => record.text)).toEqual(["Hello", "Talk to a human"]);
  }, 90_000);

  it("shows Rocket.Chat's 'no agent available' as text, the agent who comes online, and the room closed when the visitor ends", async () => {
    const { rc, env } = await rocketChat({
      agents: [{ _id: "agent1", username: "jane.doe", name: "Jane Doe", online: false }],
    });
    const gateway = await gatewayWith(env);
    rc.setWebhookUrl(`${gateway.url}/webhooks/rocketchat`);
    const context = await newContext();
    const { panel, log } = await startChat(context, "Noor", "noor@example.com");

    await log.getByText("No agent is available right now.", { exact: false }).waitFor();
    // The visitor may still write; the message waits for the room.
    const box = panel.getByRole("textbox", { name: "Message" });
    await box.fill("Anyone there?");
    await box.press("Enter");
    rc.setAgentOnline("agent1", true);
    await panel.getByText("You are chatting with Jane Doe").waitFor({ timeout: WAIT_MS });
    const room = await roomOf(rc, "Noor");
    await eventually("the waiting message in Rocket.Chat", () =>
      visitorTexts(rc, room).includes("Anyone there?") ? true : undefined,
    );
    // Said once, however often the gateway asked Rocket.Chat again.
    expect(await log.getByText("No agent is available right now.", { exact: false }).count()).toBe(1);

    // The visitor ends the chat in the panel: the Rocket.Chat room is closed.
    await panel.getByRole("button", { name: "End chat" }).click();
    await panel
      .getByRole("alertdialog", { name: "End this chat?" })
      .getByRole("button", { name: "Yes, end chat" })
      .click();
    await panel.getByRole("heading", { name: "The chat has ended." }).waitFor();
    await expect.poll(() => rc.room(room)?.open).toBe(false);
  }, 60_000);

  it("shows LiveChat's queue position as text until an agent accepts the chat", async () => {
    const lc = await startFakeLiveChat({
      webhookRetryDelaysMs: [100, 200, 300],
      webhookTimeoutMs: 2_000,
      routing: "manual",
      agents: [{ id: "anna@example.org", name: "Anna Smith" }],
    });
    onTestFinished(() => lc.close());
    await gatewayWith(
      {
        DESK: "livechat",
        LIVECHAT_API_URL: lc.apiUrl,
        LIVECHAT_ACCOUNTS_URL: lc.accountsUrl,
        LIVECHAT_CLIENT_ID: lc.clientId,
        LIVECHAT_AGENT_TOKEN: lc.agentToken,
        LIVECHAT_ORGANIZATION_ID: lc.organizationId,
        LIVECHAT_TIMEOUT_MS: "1000",
      },
      { deskStreamScanMs: 200, deskStreamLeaseMs: 1_500, deskStreamRestartBaseMs: 100, deskStreamRestartMaxMs: 500 },
    );
    // Someone else is waiting already.
    const ahead = lc.startWidgetChat({ text: "I was here first" });
    const context = await newContext();
    const { panel, log } = await startChat(context, "Lina Haddad", "lina@example.com");
    const status = panel.getByRole("status").first();
    await status.getByText("You are number 2 in the queue.").waitFor();
    // The first position comes with the new chat; LiveChat tells later ones only on the customer's RTM socket.
    await eventually("the customer's RTM socket", () =>
      lc.rtmConnections().some((connection) => connection.open && connection.loggedIn) ? true : undefined,
    );
    lc.acceptChat(ahead.chatId);
    await status.getByText("You are next in the queue.").waitFor();

    const chatId = await eventually("the visitor's LiveChat chat", () =>
      lc.chatIds().find((id) => id !== ahead.chatId),
    );
    lc.acceptChat(chatId, "anna@example.org");
    await panel.getByText("You are chatting with Anna Smith").waitFor();
    await expect.poll(() => panel.getByText(/in the queue/).count()).toBe(0);
    lc.agentTyping(chatId, true, "anna@example.org");
    await panel.getByRole("status").getByText("Anna Smith is typing…").waitFor();
    lc.agentSend(chatId, "Hello Lina, Anna here.", { agentId: "anna@example.org" });
    await log.getByText("Hello Lina, Anna here.").waitFor();
  }, 60_000);
});
