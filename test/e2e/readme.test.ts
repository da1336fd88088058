import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestApp, type TestApp } from "../helpers/app.js";
import { extractPdf } from "../helpers/pdf.js";
import { startFakeDialogflow, type FakeDialogflow } from "../fakes/dialogflow/index.js";

const root = fileURLToPath(new URL("../../", import.meta.url));
const walkthrough = join(root, "clients/examples/walkthrough.ts");
const botWalkthrough = join(root, "clients/examples/bot-walkthrough.ts");

describe("README walkthrough", () => {
  let gateway: TestApp;
  let workdir: string;
  beforeAll(async () => {
    gateway = await startTestApp();
    workdir = mkdtempSync(join(tmpdir(), "liaison-walkthrough-"));
  });
  afterAll(async () => {
    await gateway.close();
    rmSync(workdir, { recursive: true, force: true });
  });

  it("shows the walkthrough script exactly as it is in the repository", () => {
    const readme = readFileSync(join(root, "README.md"), "utf8");
    const block = /<!-- walkthrough:start -->\s*```ts\n([\s\S]*?)```\s*<!-- walkthrough:end -->/.exec(readme)?.[1];
    expect(block).toBe(readFileSync(walkthrough, "utf8"));
  });

  it("runs as written against the gateway: both sides talk, the whisper stays with the agent, a transcript is saved", async () => {
    const tsx = join(root, "node_modules/.bin/tsx");
    const { stdout } = await promisify(execFile)(tsx, [walkthrough], {
      cwd: workdir,
      env: { ...process.env, LIAISON_URL: gateway.url, LIAISON_API_KEY: gateway.apiKey },
      timeout: 30_000,
    });
    expect(stdout).toContain("agent sees #5 Sara Khan: Hi, where is my order 8812?");
    expect(stdout).toContain("customer sees #7 Ali: It ships today.");
    expect(stdout).toContain("agent's reply recorded as seq 7");
    expect(stdout).not.toMatch(/customer sees .*Checking the ledger/);
    expect(stdout).toMatch(/customer sees #8 endOfConversation/);
    const pdf = join(workdir, "transcript.pdf");
    expect(existsSync(pdf)).toBe(true);
    const text = (await extractPdf(readFileSync(pdf))).pages.map((page) => page.text).join(" ");
    expect(text).toContain("It ships today.");
    expect(text).not.toContain("Checking the ledger");
  });
});

describe("README bot walkthrough", () => {
  let gateway: TestApp;
  let df: FakeDialogflow;
  beforeAll(async () => {
    // The walkthrough's bot: a Dialogflow ES agent (the fake) with a menu and a hand-off intent naming a department.
    df = await startFakeDialogflow({ projectId: "acme-bot" });
    const agent = df.esAgent();
    agent.intent({
      displayName: "order status",
      phrases: [/\border\b/i],
      replies: [{ quickReplies: ["Track my order", "Talk to a human"], title: "I can help with that." }],
    });
    agent.intent({
      displayName: "talk_to_agent",
      phrases: ["Talk to a human"],
      parameters: { department: "billing" },
      replies: [{ text: "Connecting you with a person…" }],
    });
    gateway = await startTestApp({
      BOT: "dialogflow",
      DIALOGFLOW_PROJECT_ID: "acme-bot",
      DIALOGFLOW_CREDENTIALS_JSON: JSON.stringify(df.serviceAccount),
      DIALOGFLOW_API_URL: df.url,
    });
  });
  afterAll(async () => {
    await gateway.close();
    await df.close();
  });

  it("shows the bot walkthrough script exactly as it is in the repository", () => {
    const readme = readFileSync(join(root, "README.md"), "utf8");
    const block = /<!-- bot-walkthrough:start -->\s*```ts\n([\s\S]*?)```\s*<!-- bot-walkthrough:end -->/.exec(
      readme,
    )?.[1];
    expect(block).toBe(readFileSync(botWalkthrough, "utf8"));
  });

  it("runs as written against a gateway with BOT=dialogflow: the bot answers with buttons, hands over, the agent reads its part", async () => {
    const tsx = join(root, "node_modules/.bin/tsx");
    const { stdout } = await promisify(execFile)(tsx, [botWalkthrough], {
      env: { ...process.env, LIAISON_URL: gateway.url, LIAISON_API_KEY: gateway.apiKey },
      timeout: 30_000,
    });
    const lines = stdout.split("\n");
    expect(lines).toContain("state: bot");
    expect(lines).toContain("buttons: [Track my order] [Talk to a human]");
    expect(lines).toContain('handed off: {"subject":"billing","desk":"socket","reason":"bot"}');
    expect(lines).toContain("queued: Sara Khan subject: billing");
    expect(lines.filter((l) => l.startsWith("agent reads "))).toEqual([
      expect.stringMatching(/^agent reads #\d+ Sara Khan: Hi, where is my order 8812\?$/),
      expect.stringMatching(/^agent reads #\d+ Assistant: I can help with that\.$/),
      expect.stringMatching(/^agent reads #\d+ Sara Khan: Talk to a human$/),
      expect.stringMatching(/^agent reads #\d+ Assistant: Connecting you with a person…$/),
    ]);
    expect(stdout).toMatch(/customer sees #\d+ Ali: Hi Sara, Ali here: 8812 ships today\./);
    expect(stdout).toMatch(/customer sees #\d+ endOfConversation/);
    expect(df.calls().map((call) => call.text)).toEqual(["Hi, where is my order 8812?", "Talk to a human"]);
  });
});
