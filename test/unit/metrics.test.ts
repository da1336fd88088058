import { describe, expect, it } from "vitest";
import { Metrics } from "../../server/metrics.js";

/** The `liaison_messages_in_total` lines of a scrape, as `channel role → value`. */
async function messagesIn(metrics: Metrics): Promise<Record<string, number>> {
  const text = await metrics.registry.metrics();
  const lines = [...text.matchAll(/^liaison_messages_in_total\{channel="([^"]*)",role="([^"]*)"\} (\d+)$/gm)];
  return Object.fromEntries(lines.map(([, channel, role, value]) => [`${channel} ${role}`, Number(value)]));
}

const noConversations = () => Promise.resolve({ bot: 0, queued: 0, active: 0, ended: 0 });

describe("Metrics: messages in", () => {
  it("counts by channel and role, and keeps counting across scrapes", async () => {
    const metrics = new Metrics(noConversations);
    metrics.messageIn("web", "customer");
    metrics.messageIn("web", "customer");
    metrics.messageIn("web", "agent");
    metrics.messageIn("sms", "customer");
    expect(await messagesIn(metrics)).toEqual({ "web customer": 2, "web agent": 1, "sms customer": 1 });
    // A scrape takes what was pending; the counter itself keeps its total.
    expect(await messagesIn(metrics)).toEqual({ "web customer": 2, "web agent": 1, "sms customer": 1 });
    metrics.messageIn("web", "customer");
    expect((await messagesIn(metrics))["web customer"]).toBe(3);
  });

  it("puts channels past the first fifty under one `other` series", async () => {
    const metrics = new Metrics(noConversations);
    for (let index = 0; index < 60; index++) metrics.messageIn(`channel-${index}`, "customer");
    metrics.messageIn("channel-7", "customer");
    const counts = await messagesIn(metrics);
    expect(Object.keys(counts)).toHaveLength(51);
    expect(counts["other customer"]).toBe(10);
    expect(counts["channel-7 customer"]).toBe(2);
  });
});

describe("Metrics: process defaults", () => {
  it("leaves out the defaults that walk every handle or descriptor, and keeps the event-loop delay", async () => {
    const text = await new Metrics(noConversations).registry.metrics();
    expect(text).not.toMatch(/^liaison_process_open_fds /m);
    expect(text).not.toMatch(/^liaison_nodejs_active_handles /m);
    expect(text).not.toMatch(/^liaison_nodejs_active_resources_total /m);
    expect(text).toMatch(/^liaison_nodejs_eventloop_lag_max_seconds /m);
    expect(text).toMatch(/^liaison_process_max_fds /m);
  });
});
