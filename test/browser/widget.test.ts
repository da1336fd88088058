import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { mkdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium, type Browser, type BrowserContext, type Frame, type FrameLocator, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from "vitest";
import { LiaisonClient, type ChatMessage, type ConversationUpdated, type Message } from "../../clients/sdk/index.js";
import { startTestApp, type TestApp } from "../helpers/app.js";
import { startSmtpServer } from "../helpers/smtp.js";

/** Debian's chromium package (`.ci/run` installs it when missing). */
const CHROMIUM = "/usr/bin/chromium";
const WAIT_MS = 15_000;
const SCREENSHOTS = fileURLToPath(new URL("../../docs/screenshots/", import.meta.url));

/**
 * The site embedding the widget, on another origin than the gateway: `localhost` here, `127.0.0.1` for the gateway.
 * `?lang=ar` sets `data-language`; `?phone` asks for a phone number and a comment instead of a required e-mail
 * address; `?init=1` also calls `LiaisonWidget.init`, whose options win.
 */
async function startHostSite(): Promise<{ port: number; gateway: string; close(): Promise<void> }> {
  const site = { port: 0, gateway: "", close: () => Promise.resolve() };
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://localhost");
    const lang = url.searchParams.get("lang") ?? "en";
    const fields = url.searchParams.has("phone") ? ` data-fields="phone,comment" data-require-email="false"` : "";
    const init = url.searchParams.has("init")
      ? ` onload="LiaisonWidget.init({ title: 'Init title', language: 'fr' })"`
      : "";
    res.setHeader("Content-Type", "text/html; charset=utf-8");
    res.end(`<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>Example shop</title>
<style>body { font: 16px/1.5 sans-serif; margin: 2rem; background: #f7f7f4; } * { color: red !important; }</style></head>
<body>
<h1>Example shop</h1>
<p><a href="#offers">Today's offers</a></p>
<p>Fresh bread, cheese and coffee, delivered to your door.</p>
<script src="${site.gateway}/widget.js" async data-title="Support" data-language="${lang}" data-subject="orders"${fields}${init}></script>
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

/** An agent (or a bot) of the built-in socket desk: the SDK with an API key, recording what it receives. */
function openAgent(gateway: TestApp) {
  const client = new LiaisonClient({ url: gateway.url, apiKey: gateway.apiKey, transports: ["websocket"] });
  onTestFinished(() => client.close());
  const messages: Message[] = [];
  const updates: ConversationUpdated[] = [];
  const checks = new Set<() => void>();
  const notify = () => {
    for (const check of [...checks]) check();
  };
  client.on("message", (message) => {
    messages.push(message);
    notify();
  });
  client.on("conversationUpdated", (update) => {
    updates.push(update);
    notify();
  });
  const until = <T>(what: string, probe: () => T | undefined): Promise<T> => {
    const now = probe();
    if (now !== undefined) return Promise.resolve(now);
    return new Promise((resolve, reject) => {
      const check = () => {
        const value = probe();
        if (value === undefined) return;
        checks.delete(check);
        clearTimeout(timer);
        resolve(value);
      };
      const timer = setTimeout(() => {
        checks.delete(check);
        reject(new Error(`timed out waiting for ${what}; the agent got ${JSON.stringify(texts())}`));
      }, WAIT_MS);
      checks.add(check);
    });
  };
  const chats = () => messages.filter((m): m is ChatMessage => m.type === "ChatMessage");
  const texts = () => chats().map((m) => m.text);
  return {
    client,
    chats,
    texts,
    /** The conversation of the customer named `name`, once it is queued. */
    conversationOf: (name: string) =>
      until(`a conversation of ${name}`, () =>
        updates.find((u) => u.conversation.customer.name === name && u.conversation.state === "queued"),
      ).then((update) => update.conversation.id),
    /** The visitor's message with this text, once it has arrived. */
    received: (text: string) => until(`"${text}"`, () => chats().find((m) => m.text === text)),
    /** The first activity of this type from the customer. */
    customerActivity: (type: string) =>
      until(`a ${type} activity`, () =>
        messages.find((m) => m.type === "ActivityMessage" && m.activityType === type && m.from.id !== "agent-ali"),
      ),
    /** The first message matching `predicate`. */
    receivedWhere: (what: string, predicate: (m: ChatMessage) => boolean) => until(what, () => chats().find(predicate)),
  };
}

/** The chat panel's frame (to evaluate in it) once the loader has created it. */
async function panelFrame(page: Page): Promise<Frame> {
  const handle = await page.locator("iframe.panel").elementHandle({ timeout: WAIT_MS });
  const frame = await handle?.contentFrame();
  if (frame === null || frame === undefined) throw new Error("the panel has no frame");
  await frame.waitForLoadState("domcontentloaded");
  return frame;
}

/**
 * A screenshot for the README, taken still (every message sent, animations finished, no caret) so that an unchanged
 * widget gives the same bytes every run.
 */
async function screenshot(page: Page, name: string): Promise<void> {
  const frame = await panelFrame(page);
  await expect.poll(() => frame.locator(".msg.pending").count()).toBe(0);
  // Playwright's `caret: "hide"` does not reach the panel, a frame from another origin: its caret would be caught
  // blinking on or off.
  await frame.evaluate(`document.documentElement.style.caretColor = "transparent"`);
  await page.screenshot({ path: join(SCREENSHOTS, name), animations: "disabled", caret: "hide" });
  await frame.evaluate(`document.documentElement.style.removeProperty("caret-color")`);
}

/** What has the keyboard focus on the host page: the launcher, the panel's frame, or something else. */
function hostFocus(page: Page): Promise<string> {
  // A string, evaluated in the page: the test itself is compiled without the DOM's types.
  return page.evaluate<string>(`(() => {
    const host = document.querySelector("[data-liaison-widget]");
    if (document.activeElement !== host) return "page:" + (document.activeElement?.tagName ?? "none");
    const inner = host.shadowRoot.activeElement;
    if (inner instanceof HTMLIFrameElement) return "panel";
    return inner?.getAttribute("aria-label") ?? "widget";
  })()`);
}

/** The id, or else the text, of what has the focus inside the panel. */
function panelFocus(frame: Frame): Promise<string> {
  return frame.evaluate<string>(
    `document.activeElement?.id || document.activeElement?.textContent || document.activeElement?.tagName || ""`,
  );
}

describe("the web chat widget in a real browser", () => {
  let browser: Browser;
  let gateway: TestApp;
  let site: Awaited<ReturnType<typeof startHostSite>>;
  let siteUrl: string;
  let smtp: Awaited<ReturnType<typeof startSmtpServer>>;

  beforeAll(async () => {
    smtp = await startSmtpServer();
    // The site first: CORS_ORIGINS names its origin, and its script tag the gateway's URL.
    site = await startHostSite();
    siteUrl = `http://localhost:${site.port}`;
    gateway = await startTestApp({
      CORS_ORIGINS: siteUrl,
      SMTP_URL: `smtp://127.0.0.1:${smtp.port}`,
      GREETING_TEXT: "Welcome! An agent will be with you shortly.",
    });
    site.gateway = gateway.url;
    await mkdir(SCREENSHOTS, { recursive: true });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      // Chromium's sandbox cannot start as root, which is how containers run tests: without it Playwright passes
      // --no-sandbox (and, for a container's small /dev/shm, always --disable-dev-shm-usage).
      chromiumSandbox: false,
      // Chromium repaints only the changed part of a tile (the blinking caret's, say), and that part's anti-aliased
      // edges can come out a shade apart from a whole tile's: whole tiles keep the README's screenshots byte-identical.
      args: ["--disable-partial-raster"],
    });
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await site?.close();
    await gateway?.close();
    await smtp?.close();
  });

  async function newContext(options: Parameters<Browser["newContext"]>[0] = {}): Promise<BrowserContext> {
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, ...options });
    onTestFinished(() => context.close());
    return context;
  }

  /** Opens the site, watching for dialogs (none may open) and for Content-Security-Policy violations. */
  async function openSite(context: BrowserContext, path = "/") {
    const page = await context.newPage();
    const dialogs: string[] = [];
    const cspErrors: string[] = [];
    page.on("dialog", (dialog) => {
      dialogs.push(dialog.message());
      void dialog.dismiss();
    });
    page.on("console", (message) => {
      if (message.type() === "error" && /Content Security Policy/i.test(message.text())) cspErrors.push(message.text());
    });
    await page.goto(`${siteUrl}${path}`);
    return { page, dialogs, cspErrors };
  }

  it("carries a visitor's chat with an agent: start, answers, buttons, files, offline, reload, end, transcript", async () => {
    const agent = openAgent(gateway);
    await agent.client.connect();
    await agent.client.subscribeConversations({ states: ["queued"] });
    const context = await newContext();
    const { page, dialogs, cspErrors } = await openSite(context);

    // One script tag: a launcher named "Open chat" in the site's page.
    const launcher = page.getByRole("button", { name: "Open chat" });
    await launcher.click();
    const panel: FrameLocator = page.frameLocator('iframe[title="Support"]');

    // The pre-chat form: Name and Email are required.
    await panel.getByRole("button", { name: "Start chat" }).click();
    await panel.getByText("Please enter your name.").waitFor();
    expect(await panel.getByLabel("Name").getAttribute("aria-invalid")).toBe("true");
    await panel.getByLabel("Name").fill("Sara Khan");
    await panel.getByLabel("Email").fill("sara@example.com");
    await panel.getByRole("button", { name: "Start chat" }).click();

    // The greeting, in a log that screen readers follow.
    const log = panel.getByRole("log");
    await log.getByText("Welcome! An agent will be with you shortly.").waitFor();
    expect(await log.getAttribute("aria-live")).toBe("polite");
    const conversationId = await agent.conversationOf("Sara Khan");
    const info = await gateway.app.store.get(conversationId);
    expect(info?.customer).toMatchObject({ firstName: "Sara", lastName: "Khan", email: "sara@example.com" });
    expect(info?.subject).toBe("orders");

    // A bot offers buttons; the visitor presses one and the bot receives the press.
    const bot = openAgent(gateway);
    await bot.client.connect();
    await bot.client.join({ conversationId, id: "bot", name: "Helper", role: "bot" });
    await bot.client.send(conversationId, {
      text: "What is it about?",
      buttons: [[{ id: "order", text: "My order" }], [{ id: "other", text: "Something else" }]],
    });
    await panel.getByRole("group", { name: "Choose an option" }).waitFor();
    await panel.getByRole("button", { name: "My order" }).click();
    const press = await bot.receivedWhere("the button press", (m) => m.button?.id === "order");
    expect(press.text).toBe("My order");
    expect(await panel.getByRole("button", { name: "Something else" }).isDisabled()).toBe(true);

    // An agent joins and answers; the visitor sees the agent's name, typing, the answer.
    await agent.client.join({ conversationId, id: "agent-ali", name: "Ali", role: "agent" });
    await panel.getByText("You are chatting with Ali").waitFor();
    const box = panel.getByRole("textbox", { name: "Message" });
    await box.fill("Hello, my parcel has not arrived.");
    // The agent sees the visitor typing.
    await agent.customerActivity("typing");
    await box.press("Enter");
    await agent.received("Hello, my parcel has not arrived.");
    await agent.client.typing(conversationId, "start");
    await panel.getByRole("status").getByText("Ali is typing…").waitFor();
    await agent.client.send(conversationId, { text: "Sorry to hear that! Track it at https://example.com/track." });
    const link = log.getByRole("link", { name: "https://example.com/track" });
    await link.waitFor();
    expect(await link.getAttribute("href")).toBe("https://example.com/track");
    expect(await link.getAttribute("target")).toBe("_blank");
    expect(await link.getAttribute("rel")).toBe("noopener noreferrer");
    await panel.getByText("Ali is typing…").waitFor({ state: "detached" });

    // Markup in a message is text, never HTML.
    await agent.client.send(conversationId, { text: "<img src=x onerror=alert(1)>" });
    await log.getByText("<img src=x onerror=alert(1)>", { exact: true }).waitFor();
    expect(await log.locator("img").count()).toBe(0);

    // A file, through the attach button (its size limit shown) and by drag and drop.
    await panel.getByText(/^Files up to /).waitFor();
    const chooser = page.waitForEvent("filechooser");
    await panel.getByRole("button", { name: "Attach a file" }).click();
    await (await chooser).setFiles({ name: "receipt.txt", mimeType: "text/plain", buffer: Buffer.from("order 1234") });
    const receipt = await agent.receivedWhere("receipt.txt", (m) => m.attachments[0]?.name === "receipt.txt");
    expect(receipt.attachments[0]?.contentUrl).toBe(
      `data:text/plain;base64,${Buffer.from("order 1234").toString("base64")}`,
    );
    const frame = await panelFrame(page);
    const dropped = await frame.evaluateHandle(`(() => {
      const transfer = new DataTransfer();
      transfer.items.add(new File(["photo bytes"], "parcel.txt", { type: "text/plain" }));
      return transfer;
    })()`);
    await frame.locator(".panel").dispatchEvent("dragover", { dataTransfer: dropped });
    await frame.locator(".panel").dispatchEvent("drop", { dataTransfer: dropped });
    await agent.receivedWhere("parcel.txt", (m) => m.attachments[0]?.name === "parcel.txt");
    await log.getByText("File: parcel.txt").waitFor();
    await screenshot(page, "widget-desktop.png");
    await page.setViewportSize({ width: 360, height: 740 });
    await screenshot(page, "widget-phone.png");
    await page.setViewportSize({ width: 1280, height: 800 });

    // Offline: three messages are kept as "sending", then reach the agent once each, in order.
    await context.setOffline(true);
    await panel.getByText("You are offline.", { exact: false }).waitFor();
    const offline = ["First while offline", "Second while offline", "Third while offline"];
    for (const text of offline) {
      await box.fill(text);
      await box.press("Enter");
    }
    await expect.poll(() => log.getByText("Sending…").count()).toBe(3);
    expect(agent.texts().filter((text) => offline.includes(text))).toEqual([]);
    await context.setOffline(false);
    for (const text of offline) await agent.received(text);
    await log.getByText("Sending…").first().waitFor({ state: "detached" });
    await expect.poll(() => log.getByText("Sending…").count()).toBe(0);
    const arrived = agent.chats().filter((m) => offline.includes(m.text));
    expect(arrived.map((m) => m.text)).toEqual(offline);
    expect(arrived.map((m) => m.seq)).toEqual([...arrived.map((m) => m.seq)].sort((a, b) => a - b));
    for (const text of offline) expect(await log.getByText(text, { exact: true }).count()).toBe(1);

    // A reload resumes the conversation: what was said stays, once; what the agent said meanwhile arrives.
    const joins: string[] = [];
    page.on("request", (request) => {
      const body = request.postData();
      if (body?.includes("joinConversation") === true) joins.push(body);
    });
    page.on("websocket", (socket) =>
      socket.on("framesent", ({ payload }) => {
        if (typeof payload === "string" && payload.includes("joinConversation")) joins.push(payload);
      }),
    );
    await page.reload();
    await agent.client.send(conversationId, { text: "Are you still there?" });
    await log.getByText("Are you still there?").waitFor();
    // It asked only for what it had not seen: the join carried `since`.
    expect(joins.some((join) => /"since":[1-9]\d*/.test(join))).toBe(true);
    for (const text of [...offline, "Hello, my parcel has not arrived.", "Are you still there?"]) {
      expect(await log.getByText(text, { exact: true }).count()).toBe(1);
    }
    await panel.getByText("You are chatting with Ali").waitFor();

    // End chat, confirmed in the panel; then the transcript, downloaded and e-mailed.
    await panel.getByRole("button", { name: "End chat" }).click();
    const confirm = panel.getByRole("alertdialog", { name: "End this chat?" });
    await confirm.waitFor();
    await confirm.getByRole("button", { name: "Cancel" }).click();
    await confirm.waitFor({ state: "hidden" });
    await panel.getByRole("button", { name: "End chat" }).click();
    await confirm.getByRole("button", { name: "Yes, end chat" }).click();
    await panel.getByRole("heading", { name: "The chat has ended." }).waitFor();
    expect((await gateway.app.store.get(conversationId))?.state).toBe("ended");
    const download = page.waitForEvent("download");
    await panel.getByRole("button", { name: "Download transcript" }).click();
    const file = await (await download).path();
    expect((await readFile(file)).subarray(0, 5).toString("latin1")).toBe("%PDF-");
    expect((await download).suggestedFilename()).toMatch(/\.pdf$/);
    await panel.getByRole("button", { name: "E-mail transcript" }).click();
    await panel.getByText("The transcript is on its way to your inbox.").waitFor();
    expect(smtp.received.some((mail) => mail.rcptTo.includes("sara@example.com"))).toBe(true);

    expect(dialogs).toEqual([]);
    expect(cspErrors).toEqual([]);
  }, 120_000);

  it("works with the keyboard alone, in Arabic, right to left, on a 360 px phone", async () => {
    const agent = openAgent(gateway);
    await agent.client.connect();
    await agent.client.subscribeConversations({ states: ["queued"] });
    const context = await newContext({ viewport: { width: 360, height: 740 }, hasTouch: true });
    const { page } = await openSite(context, "/?lang=ar");

    // Tab from the top of the page reaches the launcher, named in Arabic.
    const launcher = page.getByRole("button", { name: "افتح المحادثة" });
    await launcher.waitFor();
    for (let i = 0; i < 5 && (await hostFocus(page)) !== "افتح المحادثة"; i++) await page.keyboard.press("Tab");
    expect(await hostFocus(page)).toBe("افتح المحادثة");
    await page.keyboard.press("Enter");
    const frame = await panelFrame(page);
    await frame.getByLabel("الاسم").waitFor();
    await expect.poll(() => panelFocus(frame)).toBe("name");
    expect(await frame.evaluate(`[document.documentElement.dir, document.documentElement.lang]`)).toEqual([
      "rtl",
      "ar",
    ]);

    await page.keyboard.type("ليلى حسن");
    await page.keyboard.press("Tab");
    await page.keyboard.type("layla@example.com");
    await page.keyboard.press("Tab");
    expect(await panelFocus(frame)).toBe("ابدأ المحادثة");
    await page.keyboard.press("Enter");
    const conversationId = await agent.conversationOf("ليلى حسن");
    await agent.client.join({ conversationId, id: "agent-omar", name: "عمر", role: "agent" });
    await expect.poll(() => panelFocus(frame)).toBe("message");
    await page.keyboard.type("مرحبا، أحتاج إلى مساعدة");
    await page.keyboard.press("Enter");
    await agent.received("مرحبا، أحتاج إلى مساعدة");
    await agent.client.send(conversationId, { text: "أهلا ليلى، كيف يمكنني مساعدتك؟" });
    await frame.getByText("أهلا ليلى، كيف يمكنني مساعدتك؟").waitFor();
    await screenshot(page, "widget-phone-rtl.png");

    // 320 px wide: the panel fills the screen, and nothing in it needs sideways scrolling.
    await page.setViewportSize({ width: 320, height: 640 });
    expect((await page.locator("iframe.panel").boundingBox())?.width).toBe(320);
    expect(await frame.evaluate(`document.documentElement.scrollWidth <= document.documentElement.clientWidth`)).toBe(
      true,
    );
    expect(await frame.getByRole("button", { name: "إرسال" }).isVisible()).toBe(true);
    await page.setViewportSize({ width: 360, height: 740 });

    // The focus stays in the open panel however often Tab is pressed, both ways.
    for (let i = 0; i < 12; i++) {
      await page.keyboard.press("Tab");
      expect(await hostFocus(page)).toBe("panel");
    }
    for (let i = 0; i < 12; i++) {
      await page.keyboard.press("Shift+Tab");
      expect(await hostFocus(page)).toBe("panel");
    }
    // Escape closes it and gives the focus back to the launcher; Enter opens it again.
    await page.keyboard.press("Escape");
    await page.locator("iframe.panel").waitFor({ state: "hidden" });
    expect(await hostFocus(page)).toBe("افتح المحادثة");
    await page.keyboard.press("Enter");
    await expect.poll(() => panelFocus(frame)).toBe("message");

    // Ending by keyboard: the confirmation takes the focus, Escape cancels it.
    await frame.getByRole("button", { name: "إنهاء المحادثة" }).focus();
    await page.keyboard.press("Enter");
    await expect.poll(() => panelFocus(frame)).toBe("إلغاء");
    await page.keyboard.press("Escape");
    await expect.poll(() => panelFocus(frame)).toBe("إنهاء المحادثة");

    await page.setViewportSize({ width: 1280, height: 800 });
    await screenshot(page, "widget-desktop-rtl.png");
  }, 90_000);

  it("shows the queue and the desk's news as text, hides whispers, offers a retry, resumes in a new tab", async () => {
    const agent = openAgent(gateway);
    await agent.client.connect();
    await agent.client.subscribeConversations({ states: ["queued"] });
    const context = await newContext();
    const { page } = await openSite(context);
    await page.getByRole("button", { name: "Open chat" }).click();
    const panel = page.frameLocator('iframe[title="Support"]');
    await panel.getByLabel("Name").fill("Noor");
    await panel.getByLabel("Email").fill("noor@example.com");
    await panel.getByRole("button", { name: "Start chat" }).click();
    const conversationId = await agent.conversationOf("Noor");
    const status = panel.getByRole("status").first();

    // What a desk reports reaches the visitor as text: the queue position, then that nobody is available.
    await gateway.app.core.applyDeskEvents(await gateway.app.core.get(conversationId), [
      { type: "queued", position: 3 },
    ]);
    await status.getByText("You are number 3 in the queue.").waitFor();
    await gateway.app.core.noAgent(await gateway.app.core.get(conversationId), "outside opening hours");
    await panel.getByText("No agent is available right now.", { exact: false }).first().waitFor();

    // Whispers are for agents: the visitor never sees one.
    await agent.client.join({ conversationId, id: "agent-mia", name: "Mia", role: "agent" });
    await agent.client.send(conversationId, { text: "Internal: VIP customer", tag: "whisper" });
    await agent.client.send(conversationId, { text: "Hi Noor, Mia here." });
    const log = panel.getByRole("log");
    await log.getByText("Hi Noor, Mia here.").waitFor();
    expect(await panel.getByText("Internal: VIP customer").count()).toBe(0);

    // A message the gateway refuses for good is marked, with a retry control; the next one still goes.
    const box = panel.getByRole("textbox", { name: "Message" });
    await box.fill("x".repeat(5_000));
    await box.press("Enter");
    await log.getByText("Not sent.").waitFor();
    const retry = log.getByRole("button", { name: "Retry" });
    await retry.click();
    await log.getByText("Not sent.").waitFor();
    await box.fill("Shorter, then");
    await box.press("Enter");
    await agent.received("Shorter, then");

    // Another tab of the site resumes the same conversation.
    const tab = await context.newPage();
    await tab.goto(siteUrl);
    await tab.getByRole("button", { name: "Open chat" }).click();
    const other = tab.frameLocator('iframe[title="Support"]');
    await other.getByRole("log").getByText("Hi Noor, Mia here.").waitFor();
    await other.getByRole("textbox", { name: "Message" }).fill("From the second tab");
    await other.getByRole("textbox", { name: "Message" }).press("Enter");
    await agent.received("From the second tab");
    await log.getByText("From the second tab").waitFor();
  }, 90_000);

  it("lets LiaisonWidget.init override the script tag's attributes, and keeps still for reduced motion", async () => {
    const context = await newContext({ reducedMotion: "reduce" });
    const { page } = await openSite(context, "/?init=1");
    await page.getByRole("button", { name: "Ouvrir le chat" }).click();
    const panel = page.frameLocator('iframe[title="Init title"]');
    await panel.getByRole("heading", { name: "Init title" }).waitFor();
    await panel.getByLabel("Nom").waitFor();
    await page.evaluate("LiaisonWidget.close()");
    await page.locator("iframe.panel").waitFor({ state: "hidden" });
    await page.evaluate("LiaisonWidget.open()");
    await page.locator("iframe.panel").waitFor({ state: "visible" });
    const animation = `getComputedStyle(document.querySelector("[data-liaison-widget]").shadowRoot.querySelector("iframe")).animationName`;
    expect(await page.evaluate(animation)).toBe("none");
    await page.emulateMedia({ reducedMotion: "no-preference" });
    expect(await page.evaluate(animation)).toBe("liaison-in");
  }, 60_000);

  it("asks for the extra fields a site configures, and takes a phone number instead of an e-mail address", async () => {
    const agent = openAgent(gateway);
    await agent.client.connect();
    await agent.client.subscribeConversations({ states: ["queued"] });
    const context = await newContext();
    const { page } = await openSite(context, "/?phone");
    await page.getByRole("button", { name: "Open chat" }).click();
    const panel = page.frameLocator('iframe[title="Support"]');
    await panel.getByLabel("Name").fill("Karim");
    await panel.getByRole("button", { name: "Start chat" }).click();
    await panel.getByText("Please enter an e-mail address or a phone number.").waitFor();
    await panel.getByLabel("Phone").fill("+92 300 1234567");
    await panel.getByLabel("How can we help?").fill("A question about my bill");
    await panel.getByRole("button", { name: "Start chat" }).click();
    const conversationId = await agent.conversationOf("Karim");
    const conversation = await gateway.app.store.get(conversationId);
    expect(conversation?.customer).toMatchObject({ firstName: "Karim", phone: "+92 300 1234567" });
    expect(conversation?.customer.email).toBeUndefined();
    expect(conversation?.comment).toBe("A question about my bill");
    // The page the visitor was on, and their time zone (transcripts print times in it).
    expect(conversation?.url).toBe(`${siteUrl}/?phone`);
    expect(conversation?.timeZone).toBe(Intl.DateTimeFormat().resolvedOptions().timeZone);
    await agent.client.end(conversationId, "resolved");
    // Without an e-mail address on file, only the download is offered.
    await panel.getByRole("button", { name: "Download transcript" }).waitFor();
    expect(await panel.getByRole("button", { name: "E-mail transcript" }).count()).toBe(0);
  }, 60_000);

  it("runs on the gateway's own demo page, under its Content-Security-Policy", async () => {
    const context = await newContext();
    const page = await context.newPage();
    const cspErrors: string[] = [];
    page.on("console", (message) => {
      if (/Content Security Policy/i.test(message.text())) cspErrors.push(message.text());
    });
    await page.goto(`${gateway.url}/widget/demo`);
    await page.getByRole("button", { name: "Open chat" }).click();
    const panel = page.frameLocator('iframe[title="Demo chat"]');
    await panel.getByLabel("Name").fill("Demo Visitor");
    await panel.getByLabel("Email").fill("demo@example.com");
    await panel.getByRole("button", { name: "Start chat" }).click();
    await panel.getByRole("log").getByText("Welcome! An agent will be with you shortly.").waitFor();
    expect(cspErrors).toEqual([]);
  }, 60_000);

  it("cannot be framed by a site CORS_ORIGINS does not list", async () => {
    const response = await fetch(`${gateway.url}/widget/frame`);
    expect(response.headers.get("content-security-policy")).toContain(`frame-ancestors 'self' ${siteUrl}`);
    const context = await newContext();
    const page = await context.newPage();
    const refused = page.waitForEvent("console", (message) => /frame-ancestors/.test(message.text()));
    // The same site on another origin (127.0.0.1 rather than localhost).
    await page.goto(siteUrl.replace("localhost", "127.0.0.1"));
    await page.getByRole("button", { name: "Open chat" }).click();
    expect((await refused).text()).toContain("frame-ancestors");
    const frame = await (await page.locator("iframe.panel").elementHandle())?.contentFrame();
    expect(await frame?.getByRole("button", { name: "Start chat" }).count()).toBe(0);
  }, 60_000);
});
