import { randomBytes } from "node:crypto";

/** 128 random bits, URL-safe. */
const random128 = (): string => randomBytes(16).toString("base64url");

export const newConversationId = (): string => `c_${random128()}`;
export const newMessageId = (): string => `m_${random128()}`;
export const newParticipantId = (): string => `p_${random128()}`;
export const newRequestId = (): string => `r_${random128()}`;
/** Customer tokens carry 256 random bits (the protocol asks for at least 128). */
export const newCustomerToken = (): string => randomBytes(32).toString("base64url");
