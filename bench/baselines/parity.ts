import { randomUUID } from "node:crypto";
import { createAdapter } from "@socket.io/redis-adapter";
import { Redis } from "ioredis";
import type { Server } from "socket.io";
import { conversationOf, splitArgs, startBaseline } from "./common.js";

interface Participant {
  id: string;
  name: string;
}

/**
 * **parity**: exactly the frames the Customer Channel protocol requires, and nothing else. `joinConversation`
 * is acked `{ ok: true }`; `sendMessage` is acked `{ ok, id, seq, timestamp }` to the sender and emitted as
 * `messageArrived` to the other socket of the conversation, stamped with `id`, a per-conversation `seq` and
 * `timestamp`, in the same shape Liaison emits (`from`, `to`, `attachments`, `tag`, `refId`). No validation, no
 * storage: the ceiling for any implementation of this protocol on this transport.
 *
 * With `REDIS_URL` set (the two-node case), the nodes share rooms through `@socket.io/redis-adapter` (classic
 * pub/sub, key `${REDIS_PREFIX}sio`), so `messageArrived` reaches the other socket of the conversation on the other
 * node. The `seq` is still kept in the memory of the node that received the send (each node numbers its own
 * senders' messages): good enough for a ceiling, not a shared log.
 */
const redisUrl = process.env.REDIS_URL;
const withRedisAdapter = (io: Server) => {
  if (redisUrl === undefined || redisUrl === "") return;
  // As Liaison's adapter client: a tick's publishes go out in one write (without it, a write per publish was a
  // quarter of each parity node's CPU, and the ceiling would be a poorly configured server's).
  const pub = new Redis(redisUrl, { enableAutoPipelining: true });
  const sub = pub.duplicate({ enableAutoPipelining: false });
  io.adapter(createAdapter(pub, sub, { key: `${process.env.REDIS_PREFIX ?? "bench:"}sio` }));
};

startBaseline(
  "parity",
  (io) => {
    const seqs = new Map<string, number>();
    /** The customer's account, stamped on every message of the conversation as Liaison does. */
    const refIds = new Map<string, string>();
    io.on("connection", (socket) => {
      let room: string | undefined;
      let from: Participant = { id: socket.id, name: "" };
      socket.on("joinConversation", (...args: unknown[]) => {
        const { payload, ack } = splitArgs(args);
        room = conversationOf(payload);
        if (room !== undefined) {
          void socket.join(room);
          const join = payload as { id?: unknown; name?: unknown; refId?: unknown };
          from = {
            id: typeof join.id === "string" ? join.id : socket.id,
            name: typeof join.name === "string" ? join.name : "",
          };
          if (typeof join.refId === "string") refIds.set(room, join.refId);
          if (!seqs.has(room)) seqs.set(room, 0);
        }
        ack?.(
          room === undefined
            ? { ok: false, error: { code: "invalid_payload", message: "conversationId" } }
            : { ok: true },
        );
      });
      socket.on("sendMessage", (...args: unknown[]) => {
        const { payload, ack } = splitArgs(args);
        if (room === undefined) {
          ack?.({ ok: false, error: { code: "unauthorized", message: "join first" } });
          return;
        }
        const input = payload as { id?: unknown; text?: unknown };
        const seq = (seqs.get(room) ?? 0) + 1;
        seqs.set(room, seq);
        const id = typeof input.id === "string" ? input.id : randomUUID();
        const timestamp = new Date().toISOString();
        const refId = refIds.get(room);
        ack?.({ ok: true, id, seq, timestamp });
        // Every socket of the room but the sender's, on any node (through the adapter when there are two).
        io.to(room)
          .except(socket.id)
          .emit("messageArrived", {
            type: "ChatMessage",
            id,
            conversationId: room,
            timestamp,
            from,
            to: [],
            text: typeof input.text === "string" ? input.text : "",
            attachments: [],
            tag: "",
            seq,
            ...(refId === undefined ? {} : { refId }),
          });
      });
    });
  },
  withRedisAdapter,
);
