import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestApp, type TestApp } from "../helpers/app.js";

const run = promisify(execFile);
const root = fileURLToPath(new URL("../../", import.meta.url));
const npm = process.platform === "win32" ? "npm.cmd" : "npm";

/** What another project writes: the package's API with its types, against a real gateway. */
const consumer = `import { initConversation, isLiaisonError, LiaisonClient, type InitResponse, type SendAck } from "@liaison/sdk";

const url = process.env.LIAISON_URL ?? "";
const started: InitResponse = await initConversation(url, { firstName: "Sara Khan", email: "sara@example.com", channel: "web" });
const client = new LiaisonClient({ url });
await client.connect();
await client.join({ conversationId: started.conversationId, id: started.participant.id, name: started.participant.name, token: started.token });
const ack: SendAck = await client.send(started.conversationId, { text: "Hello from a package" });
let refused = "";
try {
  await client.send("no-such-conversation", { text: "lost" });
} catch (error) {
  if (isLiaisonError(error)) refused = error.code;
}
client.close();
console.log(JSON.stringify({ seq: ack.seq, refused }));
`;

/** A mistake the package's types must catch: if they were `any`, this would compile. */
const mistake = `import { initConversation } from "@liaison/sdk";

export const wrong: number = await initConversation("http://127.0.0.1", { firstName: "A", email: "a@example.com", channel: "web" });
`;

describe("the SDK as a package (@liaison/sdk)", () => {
  let workdir: string;
  let packed: { filename: string; files: { path: string }[] };
  let gateway: TestApp;

  beforeAll(async () => {
    workdir = mkdtempSync(join(tmpdir(), "liaison-sdk-package-"));
    gateway = await startTestApp();
    // `prepack` builds it first, as a publish would.
    const { stdout } = await run(
      npm,
      ["pack", "--workspace", "@liaison/sdk", "--json", "--pack-destination", workdir, "--loglevel", "error"],
      { cwd: root, maxBuffer: 16 * 1024 * 1024 },
    );
    [packed] = JSON.parse(stdout.slice(stdout.indexOf("["))) as [typeof packed];
  }, 240_000);
  afterAll(async () => {
    await gateway.close();
    rmSync(workdir, { recursive: true, force: true });
  });

  it("holds the Node build with its declarations, the browser build, the README, and no sources or tests", () => {
    const files = packed.files.map((file) => file.path);
    for (const needed of [
      "package.json",
      "README.md",
      "dist/esm/clients/sdk/index.js",
      "dist/esm/clients/sdk/index.d.ts",
      "dist/esm/clients/sdk/client.js",
      "dist/esm/protocol/index.js",
      "dist/esm/protocol/index.d.ts",
      "dist/browser/liaison-sdk.js",
    ]) {
      expect(files).toContain(needed);
    }
    expect(files.filter((file) => file.endsWith(".ts") && !file.endsWith(".d.ts"))).toEqual([]);
    expect(
      files.filter((file) => /(^|\/)(test|node_modules)\//.test(file) || file.endsWith("tsconfig.build.json")),
    ).toEqual([]);
    const manifest = JSON.parse(readFileSync(join(root, "clients/sdk/package.json"), "utf8")) as {
      dependencies: Record<string, string>;
      exports: Record<string, Record<string, string>>;
    };
    expect(Object.keys(manifest.dependencies).sort()).toEqual(["socket.io-client", "zod"]);
    for (const target of Object.values(manifest.exports).flatMap((entry) =>
      typeof entry === "string" ? [entry] : Object.values(entry),
    )) {
      expect(files).toContain(target.replace(/^\.\//, ""));
    }
  });

  it("has a browser build that imports nothing, carries no zod, and loads", async () => {
    const bundle = join(root, "clients/sdk/dist/browser/liaison-sdk.js");
    const code = readFileSync(bundle, "utf8");
    expect(code).not.toMatch(/\bfrom\s*["'][^"'./]/);
    expect(code).not.toMatch(/\bimport\s*\(\s*["'][^"'./]/);
    // zod's English wording of a failed check: its answer checks are generated validators instead.
    expect(code).not.toContain("Invalid input");
    expect(code).toContain("must have required property");
    const sdk = (await import(pathToFileURL(bundle).href)) as Record<string, unknown>;
    expect(typeof sdk.LiaisonClient).toBe("function");
    expect(typeof sdk.initConversation).toBe("function");
  });

  it("installs in a scratch project, type-checks with its types, catches a type mistake, and talks to a gateway", async () => {
    const project = join(workdir, "consumer");
    await run("mkdir", ["-p", project]);
    writeFileSync(join(project, "package.json"), JSON.stringify({ name: "consumer", private: true, type: "module" }));
    writeFileSync(
      join(project, "tsconfig.json"),
      JSON.stringify({
        compilerOptions: {
          target: "ES2023",
          module: "NodeNext",
          moduleResolution: "NodeNext",
          strict: true,
          skipLibCheck: false,
          types: ["node"],
          typeRoots: [join(root, "node_modules/@types")],
          outDir: "out",
        },
        files: ["consumer.ts", "mistake.ts"],
      }),
    );
    writeFileSync(join(project, "consumer.ts"), consumer);
    writeFileSync(join(project, "mistake.ts"), mistake);
    // Its dependencies come from npm's cache, filled by the repository's own install.
    await run(
      npm,
      ["install", "--prefer-offline", "--no-audit", "--no-fund", "--ignore-scripts", join(workdir, packed.filename)],
      { cwd: project },
    );

    const tsc = join(root, "node_modules/typescript/bin/tsc");
    const compiled = await run(process.execPath, [tsc, "-p", project], { cwd: project }).then(
      () => "",
      (error: { stdout: string }) => error.stdout,
    );
    const errors = compiled.split("\n").filter((line) => /error TS\d+/.test(line));
    expect(errors).toHaveLength(1);
    // The answer's real shape, spelled out by the compiler: the declarations and zod's types behind them resolved.
    expect(errors[0]).toMatch(/^mistake\.ts\(3,14\): error TS2322: Type '\{ conversationId: string; participant: /);

    const { stdout } = await run(process.execPath, [join(project, "out/consumer.js")], {
      cwd: project,
      env: { ...process.env, LIAISON_URL: gateway.url },
      timeout: 30_000,
    });
    expect(JSON.parse(stdout)).toEqual({ seq: expect.any(Number) as number, refused: "not_found" });
  }, 180_000);
});
