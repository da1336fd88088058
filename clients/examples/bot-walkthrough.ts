import { LiaisonClient, initConversation, listConversations, type Message } from "../sdk/index.js";

const url = process.env.LIAISON_URL ?? "http://localhost:8080";
const apiKey = process.env.LIAISON_API_KEY ?? "dev-key";
const line = (m: Message) =>
  `#${m.seq ?? "-"} ${m.type === "ChatMessage" ? `${m.from.name}: ${m.text}` : m.activityType}`;

/** Prints what `who` sees, and waits for the first message (seen or still to come) that `test` accepts. */
function watch(who: string, client: LiaisonClient) {
  const seen: Message[] = [];
  const waiting = new Set<{ test: (m: Message) => boolean; resolve: (m: Message) => void }>();
  client.on("message", (m) => {
    console.log(`${who} sees ${line(m)}`);
    seen.push(m);
    for (const waiter of waiting) {
      if (!waiter.test(m)) continue;
      waiting.delete(waiter);
      waiter.resolve(m);
    }
  });
  return (test: (m: Message) => boolean) =>
    new Promise<Message>((resolve, reject) => {
      const found = seen.find(test);
      if (found) return resolve(found);
      waiting.add({ test, resolve });
      setTimeout(() => reject(new Error(`${who} waited 20 s in vain`)), 20_000).unref();
    });
}

// 1. The customer starts a conversation: with BOT set, it is the bot's.
const init = await initConversation(url, {
  firstName: "Sara",
  lastName: "Khan",
  channel: "web",
  email: "sara@example.org",
});
const customer = new LiaisonClient({ url });
const customerSees = watch("customer", customer);
await customer.connect();
const joined = await customer.join({
  conversationId: init.conversationId,
  id: init.participant.id,
  name: "Sara",
  token: init.token,
});
console.log("state:", joined.conversation.state);

// 2. The bot answers, with buttons; the customer presses the one that asks for a human.
await customer.send(init.conversationId, { text: "Hi, where is my order 8812?" });
const menu = await customerSees((m) => m.type === "ChatMessage" && m.buttons !== undefined);
const buttons = menu.type === "ChatMessage" ? (menu.buttons ?? []).flat() : [];
console.log("buttons:", buttons.map((b) => `[${b.text}]`).join(" "));
const human = buttons.find((b) => /human|agent/i.test(b.text)) ?? buttons.at(-1);
if (!human) throw new Error("the bot offered no button");
await customer.send(init.conversationId, { button: human });

// 3. The bot hands over (the conversation's first handOff gave it to the bot): it waits in the queue, under the
//    department the bot named.
const handOff = await customerSees(
  (m) => m.type === "ActivityMessage" && m.activityType === "handOff" && m.info.desk !== "bot",
);
if (handOff.type === "ActivityMessage") console.log("handed off:", JSON.stringify(handOff.info));
const { conversations } = await listConversations(url, apiKey, { states: ["queued"] });
const waiting = conversations.find((c) => c.id === init.conversationId);
console.log("queued:", waiting?.customer.name, "subject:", waiting?.subject);

// 4. An agent joins and reads the bot's part of the conversation in the history, then answers.
const agent = new LiaisonClient({ url, apiKey });
await agent.connect();
const history = await agent.join({ conversationId: init.conversationId, id: "agent-17", name: "Ali", role: "agent" });
for (const m of history.messages) if (m.type === "ChatMessage") console.log(`agent reads ${line(m)}`);
await agent.send(init.conversationId, { text: "Hi Sara, Ali here: 8812 ships today." });
await customerSees((m) => m.type === "ChatMessage" && m.from.name === "Ali");
await agent.end(init.conversationId, "resolved");
await customerSees((m) => m.type === "ActivityMessage" && m.activityType === "endOfConversation");
customer.close();
agent.close();
