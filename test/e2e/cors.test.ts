import { afterEach, describe, expect, it } from "vitest";
import { startTestApp, type TestApp } from "../helpers/app.js";

let gateway: TestApp | undefined;
afterEach(async () => {
  await gateway?.close();
  gateway = undefined;
});

/** What a browser on `origin` is told by the REST API (a preflight and the request) and by Socket.IO's handshake. */
async function corsAnswers(url: string, origin: string) {
  const preflight = await fetch(`${url}/api/customer/init`, {
    method: "OPTIONS",
    headers: { origin, "access-control-request-method": "POST", "access-control-request-headers": "content-type" },
  });
  const init = await fetch(`${url}/api/customer/init`, {
    method: "POST",
    headers: { origin, "content-type": "application/json" },
    body: JSON.stringify({ firstName: "Ana", channel: "web", email: "ana@example.org" }),
  });
  const handshake = await fetch(`${url}/socket.io/?EIO=4&transport=polling`, { headers: { origin } });
  const allowed = (response: Response) => ({
    origin: response.headers.get("access-control-allow-origin"),
    vary: response.headers.get("vary")?.includes("Origin") ?? false,
  });
  return {
    preflight: { status: preflight.status, ...allowed(preflight) },
    preflightHeaders: preflight.headers.get("access-control-allow-headers"),
    init: { status: init.status, ...allowed(init) },
    exposed: init.headers.get("access-control-expose-headers"),
    handshake: { status: handshake.status, ...allowed(handshake) },
  };
}

describe("one CORS policy for the REST API and Socket.IO", () => {
  it("lets any origin in with the default CORS_ORIGINS=*, the same answer on both", async () => {
    gateway = await startTestApp();
    const answers = await corsAnswers(gateway.url, "https://shop.example");
    expect(answers).toMatchObject({
      preflight: { status: 204, origin: "*" },
      preflightHeaders: "Content-Type,Authorization",
      init: { status: 200, origin: "*" },
      exposed: "Retry-After,Content-Disposition",
      handshake: { status: 200, origin: "*" },
    });
  });

  it("with CORS_ORIGINS set, answers the listed origins (varying by Origin) and no other, on both", async () => {
    gateway = await startTestApp({ CORS_ORIGINS: "https://shop.example,https://help.example" });
    const listed = await corsAnswers(gateway.url, "https://help.example");
    expect(listed).toMatchObject({
      preflight: { status: 204, origin: "https://help.example", vary: true },
      init: { origin: "https://help.example", vary: true },
      handshake: { origin: "https://help.example", vary: true },
    });
    const other = await corsAnswers(gateway.url, "https://evil.example");
    expect(other).toMatchObject({
      preflight: { origin: null },
      init: { origin: null },
      handshake: { origin: null },
    });
  });
});
