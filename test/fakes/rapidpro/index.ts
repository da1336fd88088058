import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { RapidProApi } from "./api.js";
import type { ApiSettings } from "./api.js";
import { FlowPlayer } from "./flow-player.js";
import { FakeState } from "./state.js";
import { WorkspaceThrottle } from "./throttle.js";
import type { FakeRapidPro, FakeRapidProOptions, RpBroadcast, RpFlowStart, StoredMedia } from "./types.js";
import { atLeast, parseVersion, quoteFilename, uuid4 } from "./util.js";

export type * from "./types.js";
export { DEFAULT_CATEGORY, MAILROOM_USER_AGENT } from "./flow-player.js";

/**
 * Starts a fake RapidPro (API v2 + media files + a mailroom-like flow player) on 127.0.0.1 and a free port.
 * It is strict: statuses, DRF error bodies and checks follow RapidPro's own source; see README.md.
 */
export async function startFakeRapidPro(options: FakeRapidProOptions = {}): Promise<FakeRapidPro> {
  let baseUrl = "";
  const token = options.token ?? "rp-api-token";
  const channel = {
    uuid: options.channel?.uuid ?? uuid4(),
    name: options.channel?.name ?? "WhatsApp",
    address: options.channel?.address ?? "+50255500000",
  };
  const version = parseVersion(options.version ?? "26.3.54");
  const settings: ApiSettings = {
    tokens: [token, ...(options.extraTokens ?? [])],
    email: options.email ?? "admin@example.org",
    version,
    tokenRole: options.tokenRole ?? "administrator",
    maxTextLength: options.maxTextLength ?? (atLeast(version, "10.1.45") ? 4096 : 640),
    messagesEndpoint: options.messagesEndpoint ?? atLeast(version, "8.1.35"),
    workspace: { uuid: options.workspaceUuid ?? uuid4(), name: options.workspaceName ?? "Fake Workspace" },
    flowLanguage: options.flowLanguage ?? "eng",
    pageSize: options.pageSize ?? 250,
    maxUploadBytes: options.maxUploadBytes ?? 25 * 1024 * 1024,
    asyncDelayMs: options.asyncDelayMs ?? 5,
    baseUrl: () => baseUrl,
  };
  const state = new FakeState(channel);
  const throttle = new WorkspaceThrottle(options.rateLimit);
  const api = new RapidProApi(state, settings, throttle);
  const player = new FlowPlayer(state);

  const server = createServer((req, res) => {
    void api.handle(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const requireContact = (uuid: string) => {
    const contact = state.contacts.get(uuid.toLowerCase());
    if (!contact) throw new Error(`unknown contact ${uuid}`);
    return contact;
  };

  let closed = false;
  const fake: FakeRapidPro = {
    url: baseUrl,
    token,
    workspaceUuid: settings.workspace.uuid,
    channel: { ...channel },
    async close() {
      if (closed) return;
      closed = true;
      api.close();
      player.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
    addContact: (input) => state.contactView(state.addContact(input)),
    contact(ref) {
      const found = state.contacts.get(ref.toLowerCase()) ?? state.findContactByUrn(ref);
      return found ? state.contactView(found) : undefined;
    },
    contacts: () => [...state.contacts.values()].map((c) => state.contactView(c)),
    addFlow(input) {
      const flow = state.addFlow(input);
      return { uuid: flow.uuid, name: flow.name };
    },
    addGroup: (input) => state.groupView(state.addGroup(input)),
    addMessage(contactUuid, input) {
      requireContact(contactUuid);
      return state.storedView(state.addHistory(contactUuid, input));
    },
    messages(contactUuid) {
      const uuid = contactUuid?.toLowerCase();
      return state.messages
        .filter((m) => uuid === undefined || m.contact === uuid)
        .sort((a, b) => a.createdOn - b.createdOn || a.id - b.id)
        .map((m) => state.storedView(m));
    },
    sent(contactUuid) {
      const uuid = contactUuid?.toLowerCase();
      return state.messages
        .filter((m) => m.via !== "history" && (uuid === undefined || m.contact === uuid))
        .map((m) => state.sentView(m));
    },
    media: (): StoredMedia[] =>
      [...state.media.values()].map(({ createdOn: _createdOn, ...media }) => ({
        ...media,
        content: Buffer.from(media.content),
      })),
    addMedia(input) {
      const uuid = uuid4();
      const media = {
        uuid,
        filename: input.filename,
        contentType: input.contentType,
        size: input.content.length,
        content: Buffer.from(input.content),
        url: `${baseUrl}/media/${uuid}/${quoteFilename(input.filename)}`,
        createdOn: state.clock.now(),
      };
      state.media.set(uuid, media);
      return { ...media, content: Buffer.from(media.content) };
    },
    broadcasts: (): RpBroadcast[] =>
      state.broadcasts.map(({ createdOn: _createdOn, ...b }) => structuredClone({ ...b })),
    flowStarts: (): RpFlowStart[] =>
      state.flowStarts.map(({ createdOn: _c, modifiedOn: _m, extra: _e, ...s }) => structuredClone({ ...s })),
    get requests() {
      return api.requests;
    },
    failNext(count, status, opts) {
      api.failure = { count, status, retryAfterSeconds: opts?.retryAfterSeconds ?? 1 };
    },
    setRateLimit: (limit) => throttle.set(limit),
    setTokenRole(role) {
      settings.tokenRole = role;
    },
    advanceStatuses: () => state.advanceStatuses(),
    setMessageStatus(uuid, status) {
      const msg = state.findMessage(uuid);
      if (!msg) throw new Error(`unknown message ${uuid}`);
      state.setStatus(msg, status);
    },
    whenIdle: () => api.whenIdle(),
    callWebhook: (url, webhookOptions) => player.callWebhook(url, webhookOptions),
  };
  return fake;
}
