import { Encoder, PacketType, type Packet } from "socket.io-parser";
import { describe, expect, it } from "vitest";
import { JsonEncoder } from "../../server/socket/json-parser.js";

const message = {
  type: "ChatMessage",
  id: "m_1",
  conversationId: "c_1",
  seq: 7,
  timestamp: "2026-11-21T12:00:00.000Z",
  from: { id: "p_1", name: 'Sära \u2028 "quoted" \\ back' },
  to: [],
  text: "héllo 👋\n<script>",
  attachments: [{ url: "https://example.org/a.png", name: "a.png", size: 12 }],
  tag: "",
  refId: undefined,
};

const packets: Packet[] = [
  { type: PacketType.CONNECT, nsp: "/", data: { sid: "abc" } },
  { type: PacketType.CONNECT, nsp: "/" },
  { type: PacketType.DISCONNECT, nsp: "/" },
  { type: PacketType.EVENT, nsp: "/", data: ["messageArrived", message] },
  { type: PacketType.EVENT, nsp: "/admin", data: ["conversationInfo", { state: "active", n: 0, ok: false }] },
  { type: PacketType.EVENT, nsp: "/", id: 12, data: ["sendMessage", { text: "x" }] },
  { type: PacketType.ACK, nsp: "/", id: 0, data: [{ ok: true, id: "m_1", seq: 7, timestamp: message.timestamp }] },
  { type: PacketType.ACK, nsp: "/chat", id: 345, data: [{ ok: false, error: { code: "not_found", message: "No." } }] },
  { type: PacketType.CONNECT_ERROR, nsp: "/", data: { message: "unauthorized", data: { code: "unauthorized" } } },
];

describe("JsonEncoder (Socket.IO packets without the binary walk)", () => {
  it("writes exactly what Socket.IO's own encoder writes for every packet without binary", () => {
    const ours = new JsonEncoder();
    const theirs = new Encoder();
    for (const packet of packets) expect(ours.encode(packet)).toEqual(theirs.encode(packet));
  });
});
