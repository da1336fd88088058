import { writeFileSync } from "node:fs";
import { LiaisonClient, fetchTranscriptPdf, initConversation, type Message } from "../sdk/index.js";

const url = process.env.LIAISON_URL ?? "http://localhost:8080";
const apiKey = process.env.LIAISON_API_KEY ?? "dev-key";
const show = (who: string) => (m: Message) =>
  console.log(`${who} sees #${m.seq ?? "-"}`, m.type === "ChatMessage" ? `${m.from.name}: ${m.text}` : m.activityType);

// 1. The customer starts a conversation (what a web widget does).
const init = await initConversation(url, {
  firstName: "Sara",
  lastName: "Khan",
  channel: "web",
  email: "sara@example.org",
});
const customer = new LiaisonClient({ url });
customer.on("message", show("customer"));
await customer.connect();
await customer.join({ conversationId: init.conversationId, id: init.participant.id, name: "Sara", token: init.token });

// 2. An agent application (API key) takes the conversation.
const agent = new LiaisonClient({ url, apiKey });
agent.on("message", show("agent"));
await agent.connect();
await agent.join({ conversationId: init.conversationId, id: "agent-17", name: "Ali", role: "agent" });

// 3. They talk; each send resolves once the message is recorded, with its seq.
await customer.send(init.conversationId, { text: "Hi, where is my order 8812?" });
await agent.send(init.conversationId, { text: "Checking the ledger", tag: "whisper" }); // agents only
const reply = await agent.send(init.conversationId, { text: "It ships today." });
console.log("agent's reply recorded as seq", reply.seq);

// 4. The customer ends it and downloads the transcript.
await customer.end(init.conversationId, "resolved");
const pdf = await fetchTranscriptPdf(url, init.conversationId, { token: init.token });
writeFileSync("transcript.pdf", pdf);
console.log(`transcript.pdf written (${pdf.byteLength} bytes)`);
customer.close();
agent.close();
