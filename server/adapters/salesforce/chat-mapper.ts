import type { Participant } from "../../../protocol/index.js";
import type { Conversation } from "../../core/conversation.js";
import type { DeskEvent } from "../../core/desk.js";
import type { ChatPoll } from "./chat-client.js";

/** Where a legacy chat's poll loop stands: stored as the desk stream's cursor. */
export interface ChatCursor {
  /** The `sequence` of the last 200 recorded (the next poll's `ack`); -1 before the first. */
  ack: number;
  /** Its `offset` (what ReconnectSession needs). */
  offset: number;
  /** How many agent messages the session has carried up to `ack`: the number of each one, its id. */
  agentMessages: number;
}

export function parseChatCursor(cursor: string | undefined): ChatCursor {
  const [ack, offset, agentMessages] = (cursor ?? "").split(":").map(Number);
  return {
    ack: Number.isInteger(ack) ? (ack as number) : -1,
    offset: Number.isInteger(offset) ? (offset as number) : 0,
    agentMessages: Number.isInteger(agentMessages) ? (agentMessages as number) : 0,
  };
}

export const formatChatCursor = (cursor: ChatCursor): string =>
  `${cursor.ack}:${cursor.offset}:${cursor.agentMessages}`;

/** What one answer of the long poll means. */
export interface MappedPoll {
  events: DeskEvent[];
  /** ChasitorSessionData came (after a ReconnectSession): ChasitorResyncState is due. */
  resync: boolean;
  /** The chat is over (ChatEnded, ChatRequestFail): the session is gone. */
  ended: boolean;
  agentMessages: number;
  agent: Participant | undefined;
}

type Payload = Record<string, unknown>;

/**
 * Maps one 200 of `System/Messages` to desk events. Agent messages carry no id: each is numbered by its place among
 * the session's agent messages (`<session id>:<n>`), which stays the same when the same answer comes again (an old
 * ack) and, after a ReconnectSession, is recomputed from the transcript in ChasitorSessionData (the messages
 * replayed after it are the transcript's last ones). Unknown message types are ignored.
 */
export function eventsFromPoll(
  poll: ChatPoll,
  sessionId: string,
  state: { agentMessages: number; agent: Participant | undefined },
): MappedPoll {
  const events: DeskEvent[] = [];
  let { agentMessages, agent } = state;
  let resync = false;
  let ended = false;
  poll.messages.forEach((item, index) => {
    const message = (item.message !== null && typeof item.message === "object" ? item.message : {}) as Payload;
    switch (item.type) {
      case "ChatRequestSuccess": {
        const position = message.queuePosition;
        if (typeof position === "number") events.push(queued(position, message.estimatedWaitTime));
        break;
      }
      case "QueueUpdate": {
        const position = message.position;
        if (typeof position === "number") events.push(queued(position, message.estimatedWaitTime));
        break;
      }
      case "ChatRequestFail": {
        const reason = typeof message.reason === "string" && message.reason !== "" ? message.reason : "Unavailable";
        events.push({ type: "noAgentAvailable", reason });
        events.push({ type: "closed", by: "system", reason: "no_agent_available" });
        ended = true;
        break;
      }
      case "ChatEstablished":
      case "ChatTransferred": {
        const next = agentOf(message, agent);
        if (item.type === "ChatTransferred" && agent !== undefined && agent.id !== next.id) {
          events.push({ type: "agentLeft", agent });
        }
        agent = next;
        events.push({ type: "agentJoined", agent });
        break;
      }
      case "AgentDisconnect":
        if (agent !== undefined) events.push({ type: "agentLeft", agent });
        break;
      case "ChatMessage": {
        agentMessages += 1;
        const text = typeof message.text === "string" ? message.text : "";
        if (text.trim() === "") break;
        const from = agentOf(message, agent);
        events.push({
          type: "agentMessage",
          externalId: `${sessionId}:${agentMessages}`,
          agent: from,
          text,
          attachments: [],
        });
        break;
      }
      case "AgentTyping":
      case "AgentNotTyping":
        if (agent !== undefined) {
          events.push({ type: "typing", agent, state: item.type === "AgentTyping" ? "start" : "stop" });
        }
        break;
      case "ChatEnded": {
        const reason = typeof message.reason === "string" && message.reason !== "" ? message.reason : "agent_ended";
        events.push(
          agent === undefined
            ? { type: "closed", by: "system", reason }
            : { type: "closed", by: "agent", agent, reason },
        );
        ended = true;
        break;
      }
      case "ChasitorSessionData": {
        resync = true;
        const transcript = Array.isArray(message.chatMessages) ? (message.chatMessages as Payload[]) : [];
        const inTranscript = transcript.filter((line) => line.type === "Agent").length;
        const replayed = poll.messages.slice(index + 1).filter((later) => later.type === "ChatMessage").length;
        agentMessages = Math.max(0, inTranscript - replayed);
        break;
      }
      default:
        break;
    }
  });
  return { events, resync, ended, agentMessages, agent };
}

function queued(position: number, wait: unknown): DeskEvent {
  return typeof wait === "number" && wait >= 0
    ? { type: "queued", position, estimatedWaitSeconds: wait }
    : { type: "queued", position };
}

function agentOf(message: Payload, current: Participant | undefined): Participant {
  const id =
    typeof message.userId === "string" && message.userId !== ""
      ? message.userId
      : typeof message.agentId === "string" && message.agentId !== ""
        ? message.agentId
        : (current?.id ?? "agent");
  const name = typeof message.name === "string" && message.name !== "" ? message.name : (current?.name ?? "Agent");
  return { id, name };
}

/** The ChasitorInit body: the visitor's name, pre-chat details and a Contact entity from the customer. */
export function chasitorInitBody(
  conversation: Conversation,
  ids: { organizationId: string; deploymentId: string; buttonId: string; sessionId: string },
): Record<string, unknown> {
  const { customer } = conversation;
  const details: [string, string, string | undefined][] = [
    ["First Name", "FirstName", customer.firstName],
    ["Last Name", "LastName", customer.lastName],
    ["Email", "Email", customer.email],
    ["Phone", "Phone", customer.phone],
    ["Subject", "", conversation.subject],
  ];
  const present = details.filter(([, , value]) => value !== undefined && value.trim() !== "") as [
    string,
    string,
    string,
  ][];
  const contactFields = present.filter(([, field]) => field !== "");
  return {
    organizationId: ids.organizationId,
    deploymentId: ids.deploymentId,
    buttonId: ids.buttonId,
    sessionId: ids.sessionId,
    userAgent: "Liaison",
    language: conversation.language,
    screenResolution: "unknown",
    visitorName: customer.name,
    prechatDetails: present.map(([label, , value]) => ({
      label,
      value,
      transcriptFields: [],
      displayToAgent: true,
    })),
    prechatEntities:
      contactFields.length === 0
        ? []
        : [
            {
              entityName: "Contact",
              showOnCreate: true,
              saveToTranscript: "Contact",
              entityFieldsMaps: contactFields.map(([label, fieldName]) => ({
                fieldName,
                label,
                doFind: fieldName === "Email",
                isExactMatch: fieldName === "Email",
                doCreate: false,
              })),
            },
          ],
    buttonOverrides: [],
    receiveQueueUpdates: true,
    isPost: true,
  };
}
