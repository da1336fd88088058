import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestApp, type TestApp } from "../helpers/app.js";
import { extractPdf } from "../helpers/pdf.js";

const root = fileURLToPath(new URL("../../", import.meta.url));
const walkthrough = join(root, "clients/examples/walkthrough.ts");

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
