import type {
  AddContactInput,
  AddMessageInput,
  ContactStatus,
  MsgStatus,
  RpBroadcast,
  RpContact,
  RpFlowRef,
  RpFlowStart,
  RpGroup,
  RpQuickReply,
  RpStoredMessage,
  SentMessage,
  StoredMedia,
} from "./types.js";
import { parseUrn, storedIdentity, urnIdentity } from "./urns.js";
import { dateToMicros, formatMicros, isUuid, MicroClock, uuid4, uuid7 } from "./util.js";

export interface ContactRecord {
  id: number;
  uuid: string;
  /** null = no name. */
  name: string | null;
  language: string | null;
  status: ContactStatus;
  /** As given, possibly with a `#display` fragment; the first is the preferred URN. */
  urns: string[];
  fields: Record<string, string>;
  flow: RpFlowRef | null;
  /** Flows the contact has ever been started in (for `restart_participants: false`). */
  flowHistory: Set<string>;
  createdOn: number;
  modifiedOn: number;
  lastSeenOn: number | null;
  active: boolean;
}

export interface FlowRecord {
  uuid: string;
  name: string;
  createdOn: number;
}

export interface GroupRecord {
  uuid: string;
  name: string;
  contacts: Set<string>;
  query: string | null;
}

export interface MsgRecord {
  id: number;
  uuid: string;
  contact: string;
  urn: string | null;
  hasChannel: boolean;
  direction: "in" | "out";
  status: MsgStatus;
  visibility: "visible" | "archived";
  text: string;
  attachments: string[];
  quickReplies: RpQuickReply[];
  flow: RpFlowRef | null;
  broadcast: { id: number; uuid: string } | null;
  createdOn: number;
  modifiedOn: number;
  sentOn: number | null;
  via: "messages" | "broadcasts" | "history";
}

export interface MediaRecord extends StoredMedia {
  createdOn: number;
}

export interface BroadcastRecord extends Omit<RpBroadcast, "recipients"> {
  createdOn: number;
  recipients: string[];
}

export interface FlowStartRecord extends Omit<RpFlowStart, "started"> {
  createdOn: number;
  modifiedOn: number;
  started: string[];
  /** The deprecated `extra`, shown as such in the API. */
  extra: Record<string, unknown>;
}

const STATUS_STEPS: Partial<Record<MsgStatus, MsgStatus>> = { queued: "wired", wired: "sent", sent: "delivered" };

/** The workspace's data. Everything is in memory; records are handed out as copies. */
export class FakeState {
  readonly clock = new MicroClock();
  readonly contacts = new Map<string, ContactRecord>();
  readonly flows = new Map<string, FlowRecord>();
  readonly groups = new Map<string, GroupRecord>();
  readonly messages: MsgRecord[] = [];
  readonly media = new Map<string, MediaRecord>();
  readonly broadcasts: BroadcastRecord[] = [];
  readonly flowStarts: FlowStartRecord[] = [];
  /** Contact field keys of the workspace (every contact shows all of them, null when unset). */
  readonly fieldKeys = new Set<string>();
  private nextId = { contact: 1, msg: 1, broadcast: 1, start: 1 };

  constructor(readonly channel: { uuid: string; name: string; address: string }) {}

  // --- contacts -------------------------------------------------------------------------------------------------

  addContact(input: AddContactInput): ContactRecord {
    const uuid = (input.uuid ?? uuid4()).toLowerCase();
    if (!isUuid(uuid)) throw new Error(`not a UUID: ${uuid}`);
    if (this.contacts.has(uuid)) throw new Error(`contact ${uuid} exists`);
    const urns = input.urns ?? [];
    for (const urn of urns) {
      if (urnIdentity(urn) === undefined) throw new Error(`invalid URN ${urn}`);
      const taken = this.findContactByUrn(urn);
      if (taken) throw new Error(`URN ${urn} belongs to contact ${taken.uuid}`);
    }
    const now = this.clock.now();
    for (const key of Object.keys(input.fields ?? {})) this.fieldKeys.add(key);
    const contact: ContactRecord = {
      id: this.nextId.contact++,
      uuid,
      name: input.name === "" ? null : input.name,
      language: input.language ?? null,
      status: input.status ?? "active",
      urns: [...urns],
      fields: { ...input.fields },
      flow: input.flow ? { ...input.flow } : null,
      flowHistory: new Set(input.flow ? [input.flow.uuid] : []),
      createdOn: now,
      modifiedOn: now,
      lastSeenOn: null,
      active: true,
    };
    this.contacts.set(uuid, contact);
    return contact;
  }

  /** `ContactField.get_object`: an active contact by UUID or by URN identity. */
  findContact(ref: string): ContactRecord | undefined {
    if (isUuid(ref)) {
      const byUuid = this.contacts.get(ref.toLowerCase());
      if (byUuid?.active) return byUuid;
    }
    return this.findContactByUrn(ref);
  }

  findContactByUrn(urn: string): ContactRecord | undefined {
    const identity = urnIdentity(urn);
    if (identity === undefined) return undefined;
    for (const contact of this.contacts.values()) {
      if (contact.active && contact.urns.some((u) => storedIdentity(u) === identity)) return contact;
    }
    return undefined;
  }

  /** Mailroom creates a contact for a URN it does not know (broadcasts, flow starts). */
  contactForUrn(urn: string): ContactRecord {
    return this.findContactByUrn(urn) ?? this.addContact({ name: "", urns: [urn] });
  }

  touch(contact: ContactRecord): void {
    contact.modifiedOn = this.clock.now();
  }

  groupsOf(contact: ContactRecord): GroupRecord[] {
    return [...this.groups.values()].filter((group) => group.contacts.has(contact.uuid));
  }

  /** The API object of `ContactReadSerializer`. */
  contactJson(contact: ContactRecord): Record<string, unknown> {
    const fields: Record<string, string | null> = {};
    for (const key of this.fieldKeys) fields[key] = contact.active ? (contact.fields[key] ?? null) : null;
    return {
      uuid: contact.uuid,
      name: contact.active ? contact.name : null,
      status: contact.active ? contact.status : null,
      language: contact.active ? contact.language : null,
      urns: contact.active ? contact.urns.map((urn) => storedIdentity(urn)) : [],
      groups: contact.active ? this.groupsOf(contact).map((g) => ({ uuid: g.uuid, name: g.name })) : [],
      notes: [],
      fields: contact.active ? fields : {},
      flow: contact.flow ? { ...contact.flow } : null,
      created_on: formatMicros(contact.createdOn),
      modified_on: formatMicros(contact.modifiedOn),
      last_seen_on: contact.lastSeenOn === null ? null : formatMicros(contact.lastSeenOn),
      blocked: contact.active ? contact.status === "blocked" : null,
      stopped: contact.active ? contact.status === "stopped" : null,
    };
  }

  contactView(contact: ContactRecord): RpContact {
    return {
      uuid: contact.uuid,
      name: contact.name ?? "",
      urns: [...contact.urns],
      language: contact.language,
      status: contact.status,
      fields: { ...contact.fields },
      flow: contact.flow ? { ...contact.flow } : null,
      groups: this.groupsOf(contact).map((g) => g.uuid),
      active: contact.active,
    };
  }

  // --- flows and groups -----------------------------------------------------------------------------------------

  addFlow(input: { uuid?: string; name: string }): FlowRecord {
    const uuid = (input.uuid ?? uuid4()).toLowerCase();
    if (!isUuid(uuid)) throw new Error(`not a UUID: ${uuid}`);
    const flow: FlowRecord = { uuid, name: input.name, createdOn: this.clock.now() };
    this.flows.set(uuid, flow);
    return flow;
  }

  findFlow(ref: string): FlowRecord | undefined {
    return isUuid(ref) ? this.flows.get(ref.toLowerCase()) : undefined;
  }

  addGroup(input: { uuid?: string; name: string; contacts?: string[]; query?: string }): GroupRecord {
    const uuid = (input.uuid ?? uuid4()).toLowerCase();
    const members = new Set<string>();
    for (const ref of input.contacts ?? []) {
      const contact = this.findContact(ref);
      if (!contact) throw new Error(`unknown contact ${ref}`);
      members.add(contact.uuid);
    }
    const group: GroupRecord = { uuid, name: input.name, contacts: members, query: input.query ?? null };
    this.groups.set(uuid, group);
    return group;
  }

  /** `ContactGroupField`: by UUID or (case-insensitive) name. */
  findGroup(ref: string): GroupRecord | undefined {
    if (isUuid(ref)) {
      const byUuid = this.groups.get(ref.toLowerCase());
      if (byUuid) return byUuid;
    }
    const lower = ref.toLowerCase();
    return [...this.groups.values()].find((group) => group.name.toLowerCase() === lower);
  }

  groupView(group: GroupRecord): RpGroup {
    return { uuid: group.uuid, name: group.name, contacts: [...group.contacts], query: group.query };
  }

  // --- messages -------------------------------------------------------------------------------------------------

  /** Mailroom's outgoing message: failed (no channel, no URN) when the contact cannot be reached. */
  createOutgoing(
    contact: ContactRecord,
    content: { text: string; attachments: string[]; quickReplies: RpQuickReply[] },
    via: "messages" | "broadcasts",
    broadcast: { id: number; uuid: string } | null,
  ): MsgRecord {
    const reachable = contact.status === "active" && contact.urns.length > 0;
    const now = this.clock.now();
    const preferred = contact.urns[0];
    const msg: MsgRecord = {
      id: this.nextId.msg++,
      uuid: uuid7(),
      contact: contact.uuid,
      urn: reachable && preferred !== undefined ? storedIdentity(preferred) : null,
      hasChannel: reachable,
      direction: "out",
      status: reachable ? "queued" : "failed",
      visibility: "visible",
      text: content.text,
      attachments: [...content.attachments],
      quickReplies: content.quickReplies.map((qr) => ({ ...qr })),
      flow: null,
      broadcast,
      createdOn: now,
      modifiedOn: now,
      sentOn: null,
      via,
    };
    this.messages.push(msg);
    return msg;
  }

  addHistory(contactUuid: string, input: AddMessageInput): MsgRecord {
    const contact = this.contacts.get(contactUuid.toLowerCase());
    if (!contact) throw new Error(`unknown contact ${contactUuid}`);
    const createdOn = input.createdOn ? dateToMicros(input.createdOn) : this.clock.now();
    const preferred = contact.urns[0];
    const msg: MsgRecord = {
      id: this.nextId.msg++,
      uuid: uuid7(),
      contact: contact.uuid,
      urn: preferred === undefined ? null : storedIdentity(preferred),
      hasChannel: preferred !== undefined,
      direction: input.direction,
      status: input.status ?? (input.direction === "in" ? "handled" : "delivered"),
      visibility: "visible",
      text: input.text,
      attachments: [...(input.attachments ?? [])],
      quickReplies: [],
      flow: input.flow ? { ...input.flow } : null,
      broadcast: null,
      createdOn,
      modifiedOn: createdOn,
      sentOn: input.direction === "out" ? createdOn : null,
      via: "history",
    };
    if (input.direction === "in" && (contact.lastSeenOn === null || createdOn > contact.lastSeenOn)) {
      contact.lastSeenOn = createdOn;
    }
    this.messages.push(msg);
    return msg;
  }

  findMessage(uuid: string): MsgRecord | undefined {
    const lower = uuid.toLowerCase();
    return this.messages.find((msg) => msg.uuid === lower);
  }

  setStatus(msg: MsgRecord, status: MsgStatus): void {
    msg.status = status;
    msg.modifiedOn = this.clock.now();
    if ((status === "sent" || status === "delivered" || status === "read") && msg.sentOn === null) {
      msg.sentOn = msg.modifiedOn;
    }
  }

  advanceStatuses(): void {
    for (const msg of this.messages) {
      if (msg.direction !== "out") continue;
      const next = STATUS_STEPS[msg.status];
      if (next) this.setStatus(msg, next);
    }
  }

  /** The API object of `MsgReadSerializer` (field order as in its Meta). */
  msgJson(msg: MsgRecord): Record<string, unknown> {
    const contact = this.contacts.get(msg.contact);
    return {
      uuid: msg.uuid,
      contact: { uuid: msg.contact, name: contact?.name ?? null },
      urn: msg.urn,
      channel: msg.hasChannel ? { uuid: this.channel.uuid, name: this.channel.name } : null,
      direction: msg.direction,
      type: "text",
      status: msg.status,
      archived: msg.visibility === "archived",
      visibility: msg.visibility,
      text: msg.text,
      labels: [],
      flow: msg.flow ? { ...msg.flow } : null,
      attachments: msg.attachments.map(attachmentJson),
      quick_replies: msg.quickReplies.map(quickReplyJson),
      created_on: formatMicros(msg.createdOn),
      sent_on: msg.sentOn === null ? null : formatMicros(msg.sentOn),
      modified_on: formatMicros(msg.modifiedOn),
      media: msg.attachments[0] ?? null,
      id: msg.id,
      broadcast: msg.broadcast?.id ?? null,
    };
  }

  storedView(msg: MsgRecord): RpStoredMessage {
    return {
      uuid: msg.uuid,
      id: msg.id,
      contact: msg.contact,
      direction: msg.direction,
      text: msg.text,
      attachments: [...msg.attachments],
      quickReplies: msg.quickReplies.map((qr) => ({ ...qr })),
      status: msg.status,
      createdOn: new Date(Math.floor(msg.createdOn / 1000)),
      via: msg.via,
    };
  }

  sentView(msg: MsgRecord): SentMessage {
    return {
      uuid: msg.uuid,
      contact: msg.contact,
      text: msg.text,
      attachments: [...msg.attachments],
      quickReplies: msg.quickReplies.map((qr) => ({ ...qr })),
      status: msg.status,
      via: msg.via === "broadcasts" ? "broadcasts" : "messages",
      broadcast: msg.broadcast?.uuid ?? null,
    };
  }

  // --- media, broadcasts, flow starts ---------------------------------------------------------------------------

  nextBroadcastId(): number {
    return this.nextId.broadcast++;
  }

  nextStartId(): number {
    return this.nextId.start++;
  }

  /** `MediaField.get_object`: a media UUID, or a `<content-type>:<url>` whose URL holds one. */
  findMedia(uuid: string): MediaRecord | undefined {
    return this.media.get(uuid.toLowerCase());
  }
}

export function attachmentJson(attachment: string): { content_type: string; url: string } {
  const colon = attachment.indexOf(":");
  return colon < 0
    ? { content_type: "", url: attachment }
    : { content_type: attachment.slice(0, colon), url: attachment.slice(colon + 1) };
}

export function quickReplyJson(qr: RpQuickReply): Record<string, string> {
  const out: Record<string, string> = {};
  if (qr.type !== undefined && qr.type !== "text") out.type = qr.type;
  if (qr.text !== undefined) out.text = qr.text;
  if (qr.extra !== undefined) out.extra = qr.extra;
  return out;
}

/** `contact.urns[0]` with its display fragment, as `@contact.urn` shows it to webhooks. */
export function preferredUrn(contact: ContactRecord): string | null {
  const urn = contact.urns[0];
  if (urn === undefined) return null;
  const parsed = parseUrn(urn);
  if (!parsed) return urn;
  const identity = `${parsed.scheme.toLowerCase()}:${parsed.path}`;
  return parsed.display === "" ? identity : `${identity}#${parsed.display}`;
}
