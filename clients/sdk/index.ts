/** The Liaison SDK: a typed client of the Customer Channel protocol for customers, agents and connectors. */
export {
  LiaisonClient,
  type DeliveryHandler,
  type JoinOptions,
  type LiaisonClientEvents,
  type LiaisonClientOptions,
  type LiaisonSocket,
  type OutgoingMessage,
} from "./client.js";
export { TypedEmitter, type EventMap, type Listener } from "./emitter.js";
export { isLiaisonError, LiaisonError, type LiaisonErrorCode, type LiaisonErrorOptions } from "./errors.js";
export {
  DEFAULT_REST_TIMEOUT_MS,
  emailTranscript,
  fetchTranscriptPdf,
  initConversation,
  sendConnectorMessage,
  type RestOptions,
  type TranscriptAuth,
} from "./rest.js";
export type {
  ActivityMessage,
  ActivityOf,
  ActivityType,
  Attachment,
  Button,
  ChatMessage,
  ConnectorMessageRequest,
  ConnectorMessageResponse,
  ConversationId,
  ConversationInfo,
  ConversationState,
  ConversationView,
  EndAck,
  ErrorCode,
  InitRequest,
  InitResponse,
  JoinRole,
  Member,
  Message,
  MessageId,
  Participant,
  RegisterConnectorAck,
  Role,
  SendAck,
  Tag,
} from "../../protocol/index.js";
