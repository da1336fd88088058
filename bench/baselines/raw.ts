import { conversationOf, splitArgs, startBaseline } from "./common.js";

/**
 * **raw**: the transport's ceiling. Each socket joins its conversation's room (`joinConversation`, acked so the
 * load generator knows when it is in); every `sendMessage` is relayed as is to the other socket of the room as
 * `messageArrived`: one frame per message, no ack, no logic.
 */
startBaseline("raw", (io) => {
  io.on("connection", (socket) => {
    let room: string | undefined;
    socket.on("joinConversation", (...args: unknown[]) => {
      const { payload, ack } = splitArgs(args);
      room = conversationOf(payload);
      if (room !== undefined) void socket.join(room);
      ack?.({ ok: room !== undefined });
    });
    socket.on("sendMessage", (payload: unknown) => {
      if (room !== undefined) socket.to(room).emit("messageArrived", payload);
    });
  });
});
