import {
  emailTranscript,
  fetchTranscriptPdf,
  initConversation,
  isLiaisonError,
  LiaisonClient,
  type ActivityMessage,
  type Attachment,
  type Button,
  type ChatMessage,
  type ConversationInfo,
  type InitRequest,
  type Message,
  type Participant,
} from "../sdk/index.js";
import { format, resolveLocale, type Locale, type Strings } from "./i18n/index.js";
import { optionsFromQuery, safeColor, type FrameMessage, type FrameOptions } from "./options.js";
import { applyStyles, panelCss } from "./styles.js";
import { formatBytes, newId, splitLinks } from "./text.js";

/** A message the visitor wrote that the gateway has not acknowledged yet (or refused for good). */
interface Outgoing {
  id: string;
  text: string;
  attachments: Attachment[];
  button?: Button;
  state: "sending" | "failed";
}

/**
 * The conversation as kept in the host page's `localStorage` (through the loader), so that a reload or another tab
 * of the site resumes it.
 */
interface Saved {
  v: 1;
  conversationId: string;
  participant: Participant;
  token: string;
  hasEmail: boolean;
  /** The highest `seq` received: a resumed page joins with it as `since`. */
  lastSeq: number;
  /** What the log shows, to redraw it after a reload. */
  log: Message[];
  outbox: Outgoing[];
  ended: boolean;
  agent?: string;
}

const LOG_KEPT = 300;
/** Files larger than this are not kept in `localStorage` (their name still is). */
const STORED_DATA_URL_MAX = 32_768;
const TYPING_IDLE_MS = 4_000;
/** How long the frame waits for the host page to hand it the kept conversation. */
const STATE_WAIT_MS = 3_000;
const TYPING_SHOWN_MS = 10_000;
const ATTACH_ICON =
  "M16.5 6v11.5a4 4 0 0 1-8 0V5a2.5 2.5 0 0 1 5 0v10.5a1 1 0 0 1-2 0V6H10v9.5a2.5 2.5 0 0 0 5 0V5a4 4 0 0 0-8 0v12.5a5.5 5.5 0 0 0 11 0V6h-1.5z";

/** Creates an element with properties (never HTML) and children. */
function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  props: Partial<Record<string, string>> = {},
  ...children: (Node | string | undefined)[]
): HTMLElementTagNameMap[K] {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(props)) {
    if (value === undefined) continue;
    if (name === "text") element.textContent = value;
    else element.setAttribute(name, value);
  }
  for (const child of children) if (child !== undefined) element.append(child);
  return element;
}

/**
 * The chat panel, run inside the gateway's `/widget/frame`: the pre-chat form, the conversation over the SDK, the
 * offline outbox, the end of the chat and its transcript.
 */
export function startPanel(): void {
  const root = document.documentElement;
  const base = location.href.replace(/\/widget\/frame(?:[?#].*)?$/, "");
  const socketPath = root.dataset.socketPath ?? "/socket.io";
  const maxFileBytes = Number(root.dataset.maxFileBytes ?? "0");
  const options = optionsFromQuery(location.search);
  const locale = resolveLocale(options.language, ...navigator.languages);
  new Panel({ base, socketPath, maxFileBytes, options, locale }).start();
}

interface PanelSettings {
  base: string;
  socketPath: string;
  maxFileBytes: number;
  options: FrameOptions;
  locale: Locale;
}

class Panel {
  readonly #s: Strings;
  readonly #settings: PanelSettings;
  readonly #channel: string;
  readonly #storageKey: string;
  readonly #title: string;

  #saved: Saved | undefined;
  #client: LiaisonClient | undefined;
  #joined = false;
  #stateLoaded = false;
  #joining = false;
  #pumpRun: Promise<void> | undefined;
  #retryTimer: ReturnType<typeof setTimeout> | undefined;
  readonly #rendered = new Set<string>();
  #lastPrechat: { name: string; email: string; phone: string } = { name: "", email: "", phone: "" };

  // Status line parts.
  #connection: "online" | "offline" | "reconnecting" = "online";
  #typingName: string | undefined;
  #typingTimer: ReturnType<typeof setTimeout> | undefined;
  #queueText: string | undefined;
  #ownTypingSent = 0;
  #ownTypingTimer: ReturnType<typeof setTimeout> | undefined;

  // Elements.
  readonly #panel = h("div", { class: "panel", role: "dialog", "aria-labelledby": "panel-title" });
  readonly #agentLine = h("p", { class: "agent", id: "agent-line" });
  readonly #endButton = h("button", { type: "button", text: "" });
  readonly #main = h("main");
  readonly #log = h("div", { class: "log", role: "log", "aria-live": "polite", tabindex: "0" });
  readonly #status = h("p", { class: "status", role: "status" });
  readonly #alert = h("p", { class: "error", role: "alert" });
  readonly #composer = h("form", { class: "composer" });
  readonly #input = h("textarea", { id: "message", rows: "1" });
  readonly #fileInput = h("input", { type: "file", class: "visually-hidden", tabindex: "-1", "aria-hidden": "true" });
  readonly #hint = h("p", { class: "hint", id: "file-hint" });
  readonly #confirm = h("div", { class: "confirm", role: "alertdialog" });
  readonly #ended = h("div", { class: "ended" });
  readonly #endedStatus = h("p", { role: "status" });
  readonly #emailButton = h("button", { type: "button", class: "secondary" });
  readonly #drop = h("div", { class: "drop", hidden: "" });

  constructor(settings: PanelSettings) {
    this.#settings = settings;
    this.#s = settings.locale.strings;
    this.#channel = settings.options.channel ?? "web";
    this.#storageKey = `liaison-widget:${this.#channel}`;
    this.#title = settings.options.title ?? this.#s.title;
  }

  start(): void {
    const { locale, options } = this.#settings;
    document.documentElement.lang = locale.language;
    document.documentElement.dir = locale.dir;
    document.title = this.#title;
    applyStyles(document, panelCss);
    const accent = safeColor(options.color);
    if (accent !== undefined) document.documentElement.style.setProperty("--accent", accent);
    this.#build();
    document.body.append(this.#panel);
    document.addEventListener("keydown", (event) => this.#onKey(event));
    window.addEventListener("message", (event) => {
      if (event.source !== window.parent || event.origin !== this.#settings.options.host) return;
      const data = event.data as FrameMessage | null;
      if (data?.liaison === "open") this.#focusFirst();
      else if (data?.liaison === "state") this.#onState(typeof data.value === "string" ? data.value : null);
    });
    window.addEventListener("online", () => this.#setConnection(this.#client?.connected ? "online" : "reconnecting"));
    window.addEventListener("offline", () => this.#setConnection("offline"));
    if (!navigator.onLine) this.#connection = "offline";

    if (this.#framed()) {
      // The state comes from the host page's storage, in answer to `ready`; a page without the loader never
      // answers, and then the panel starts on its own.
      this.#post({ liaison: "ready" });
      setTimeout(() => this.#onState(localStorageGet(this.#storageKey)), STATE_WAIT_MS);
    } else {
      this.#onState(localStorageGet(this.#storageKey));
    }
  }

  /** Whether the panel runs in the loader's frame (rather than opened on its own). */
  #framed(): boolean {
    return window.parent !== window && this.#settings.options.host !== undefined;
  }

  #post(message: FrameMessage): void {
    const host = this.#settings.options.host;
    if (host !== undefined && window.parent !== window) window.parent.postMessage(message, host);
  }

  /** The kept conversation arrived (or there is none): resume it, or ask who the visitor is. */
  #onState(raw: string | null): void {
    if (this.#stateLoaded) return;
    this.#stateLoaded = true;
    this.#saved = parseSaved(raw);
    if (this.#saved === undefined) this.#showPrechat();
    else this.#resume(this.#saved);
  }

  // ---- layout ----

  #build(): void {
    const s = this.#s;
    const closeButton = h("button", { type: "button", class: "icon", "aria-label": s.closeChat, text: "×" });
    closeButton.addEventListener("click", () => this.#closePanel());
    this.#endButton.textContent = s.endChat;
    this.#endButton.hidden = true;
    this.#endButton.addEventListener("click", () => this.#askEnd());
    const header = h(
      "header",
      {},
      h("div", { class: "titles" }, h("h1", { id: "panel-title", text: this.#title }), this.#agentLine),
      this.#endButton,
      closeButton,
    );
    this.#agentLine.hidden = true;
    this.#log.setAttribute("aria-label", s.messages);

    // The composer: a labelled message box, Send, and a labelled attach button with the size limit as its hint.
    const label = h("label", { for: "message", class: "visually-hidden", text: s.message });
    this.#input.placeholder = s.message;
    this.#input.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        this.#composer.requestSubmit();
      }
    });
    this.#input.addEventListener("input", () => this.#onOwnTyping());
    const attach = h("button", { type: "button", class: "attach", "aria-label": s.attach });
    attach.setAttribute("aria-describedby", "file-hint");
    attach.append(svgIcon(ATTACH_ICON));
    attach.addEventListener("click", () => this.#fileInput.click());
    this.#fileInput.addEventListener("change", () => {
      const files = [...(this.#fileInput.files ?? [])];
      this.#fileInput.value = "";
      void this.#sendFiles(files);
    });
    const send = h("button", { type: "submit", class: "primary", text: s.send });
    this.#composer.append(label, attach, this.#fileInput, this.#input, send);
    this.#composer.addEventListener("submit", (event) => {
      event.preventDefault();
      this.#sendText();
    });
    this.#hint.textContent = format(s.fileLimit, {
      size: formatBytes(this.#settings.maxFileBytes, this.#settings.locale.language),
    });

    // Ending: confirmed in the panel.
    const confirmTitle = h("h2", { id: "confirm-title", text: s.endConfirm });
    const confirmHint = h("p", { id: "confirm-hint", text: s.endConfirmHint });
    const yes = h("button", { type: "button", class: "primary", text: s.endYes });
    const no = h("button", { type: "button", class: "secondary", text: s.endNo });
    yes.addEventListener("click", () => void this.#end());
    no.addEventListener("click", () => this.#cancelEnd());
    this.#confirm.setAttribute("aria-labelledby", "confirm-title");
    this.#confirm.setAttribute("aria-describedby", "confirm-hint");
    this.#confirm.append(confirmTitle, confirmHint, h("div", { class: "actions" }, yes, no));
    this.#confirm.hidden = true;

    // After the end: the transcript, and a new chat.
    const download = h("button", { type: "button", class: "primary", text: s.downloadTranscript });
    download.addEventListener("click", () => void this.#downloadTranscript());
    this.#emailButton.textContent = s.emailTranscript;
    this.#emailButton.addEventListener("click", () => void this.#emailTranscript());
    const again = h("button", { type: "button", class: "secondary", text: s.newChat });
    again.addEventListener("click", () => this.#newChat());
    this.#ended.append(
      h("h2", { text: s.ended }),
      h("div", { class: "actions" }, download, this.#emailButton, again),
      this.#endedStatus,
    );
    this.#ended.hidden = true;

    this.#drop.textContent = s.dropHere;
    this.#panel.append(header, this.#main, this.#drop);
    this.#panel.addEventListener("dragover", (event) => this.#onDragOver(event));
    this.#panel.addEventListener("dragleave", (event) => {
      if (event.relatedTarget === null || !this.#panel.contains(event.relatedTarget as Node)) this.#drop.hidden = true;
    });
    this.#panel.addEventListener("drop", (event) => this.#onDrop(event));
  }

  #showPrechat(error?: string): void {
    const s = this.#s;
    const { options } = this.#settings;
    const requireEmail = options.requireEmail !== false;
    const fields = new Set(options.fields ?? []);
    if (!requireEmail) fields.add("phone");
    this.#endButton.hidden = true;
    this.#agentLine.hidden = true;

    const form = h("form", { class: "prechat", novalidate: "" });
    const field = (id: string, labelText: string, control: HTMLInputElement | HTMLTextAreaElement) => {
      const message = h("p", { class: "error", id: `${id}-error` });
      control.id = id;
      control.setAttribute("aria-describedby", `${id}-error`);
      form.append(h("label", { for: id, text: labelText }), control, message);
      return { control, message };
    };
    const name = field("name", s.name, h("input", { type: "text", autocomplete: "name", required: "" }));
    name.control.value = this.#lastPrechat.name;
    const email = field("email", s.email, h("input", { type: "email", autocomplete: "email" }));
    email.control.value = this.#lastPrechat.email;
    if (requireEmail) email.control.required = true;
    const phone = fields.has("phone")
      ? field("phone", s.phone, h("input", { type: "tel", autocomplete: "tel" }))
      : undefined;
    if (phone !== undefined) phone.control.value = this.#lastPrechat.phone;
    const comment = fields.has("comment") ? field("comment", s.comment, h("textarea", { rows: "3" })) : undefined;
    const formError = h("p", { class: "error", role: "alert", text: error ?? "" });
    const start = h("button", { type: "submit", class: "primary", text: s.startChat });
    form.prepend(h("p", { class: "intro", text: s.intro }));
    form.append(formError, start);

    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const problems: {
        field: { control: HTMLInputElement | HTMLTextAreaElement; message: HTMLElement };
        text: string;
      }[] = [];
      for (const item of [name, email, phone, comment]) {
        if (item === undefined) continue;
        item.message.textContent = "";
        item.control.removeAttribute("aria-invalid");
      }
      formError.textContent = "";
      const nameValue = name.control.value.trim();
      const emailValue = email.control.value.trim();
      const phoneValue = phone?.control.value.trim() ?? "";
      if (nameValue === "") problems.push({ field: name, text: s.nameMissing });
      if (emailValue === "" && requireEmail) problems.push({ field: email, text: s.emailMissing });
      else if (emailValue !== "" && !(email.control as HTMLInputElement).checkValidity()) {
        problems.push({ field: email, text: s.emailInvalid });
      }
      if (phone !== undefined && phoneValue !== "" && !/^\+?[\d\s().-]{3,32}$/.test(phoneValue)) {
        problems.push({ field: phone, text: s.phoneInvalid });
      }
      if (!requireEmail && emailValue === "" && phoneValue === "" && phone !== undefined) {
        problems.push({ field: email, text: s.contactMissing });
      }
      for (const problem of problems) {
        problem.field.message.textContent = problem.text;
        problem.field.control.setAttribute("aria-invalid", "true");
      }
      const first = problems[0];
      if (first !== undefined) {
        first.field.control.focus();
        return;
      }
      this.#lastPrechat = { name: nameValue, email: emailValue, phone: phoneValue };
      start.disabled = true;
      start.textContent = s.starting;
      this.#startConversation(nameValue, emailValue, phoneValue, comment?.control.value.trim() ?? "").catch(
        (error: unknown) => {
          start.disabled = false;
          start.textContent = s.startChat;
          formError.textContent =
            isLiaisonError(error, "rate_limited") && error.retryAfterSeconds !== undefined
              ? format(s.tooManyStarts, { n: Math.ceil(error.retryAfterSeconds) })
              : s.startFailed;
        },
      );
    });
    this.#main.replaceChildren(form);
  }

  #showChat(): void {
    this.#main.replaceChildren(this.#log, this.#status, this.#alert, this.#confirm, this.#ended, this.#composer);
    this.#composer.after(this.#hint);
    this.#endButton.hidden = this.#saved?.ended === true;
    this.#composer.hidden = this.#saved?.ended === true;
    this.#hint.hidden = this.#saved?.ended === true;
    this.#renderStatus();
  }

  // ---- conversation ----

  async #startConversation(name: string, email: string, phone: string, comment: string): Promise<void> {
    const { options, locale, base } = this.#settings;
    const [firstName = name, ...rest] = name.split(/\s+/);
    const body: InitRequest = {
      firstName,
      channel: this.#channel,
      language: locale.language,
      requestId: newId(),
      timeZone: Intl.DateTimeFormat().resolvedOptions().timeZone,
    };
    if (rest.length > 0) body.lastName = rest.join(" ");
    if (email !== "") body.email = email;
    if (phone !== "") body.phone = phone;
    if (comment !== "") body.comment = comment;
    if (options.subject !== undefined) body.subject = options.subject;
    if (options.page !== undefined) body.url = options.page;
    const init = await initConversation(base, body);
    const saved: Saved = {
      v: 1,
      conversationId: init.conversationId,
      participant: init.participant,
      token: init.token,
      hasEmail: email !== "",
      lastSeq: 0,
      log: [],
      outbox: [],
      ended: false,
    };
    this.#saved = saved;
    this.#store();
    this.#resume(saved);
    this.#input.focus();
  }

  #resume(saved: Saved): void {
    this.#rendered.clear();
    this.#log.replaceChildren();
    for (const message of saved.log) this.#render(message);
    for (const outgoing of saved.outbox) {
      this.#renderOutgoing(outgoing);
      if (outgoing.button !== undefined) this.#answered(outgoing.button.id);
    }
    if (saved.agent !== undefined) this.#showAgent(saved.agent);
    this.#showChat();
    if (saved.ended) {
      this.#showEnded();
      return;
    }
    const client = new LiaisonClient({
      url: this.#settings.base,
      path: this.#settings.socketPath,
      reconnectionDelayMaxMs: 3_000,
    });
    this.#client = client;
    client.on("message", (message) => this.#onMessage(message));
    client.on("conversationInfo", (info) => this.#onInfo(info));
    client.on("connected", () => {
      this.#setConnection("online");
      if (!this.#joined) void this.#join();
      else void this.#pump();
    });
    client.on("disconnected", () => this.#setConnection(navigator.onLine ? "reconnecting" : "offline"));
    client.on("error", () => {
      if (!client.connected) this.#setConnection(navigator.onLine ? "reconnecting" : "offline");
    });
    client.connect().catch(() => {
      // Still trying in the background; `connected` joins once it is through.
      this.#setConnection(navigator.onLine ? "reconnecting" : "offline");
    });
    void this.#join();
  }

  async #join(): Promise<void> {
    const saved = this.#saved;
    const client = this.#client;
    if (saved === undefined || client === undefined || this.#joined || this.#joining) return;
    this.#joining = true;
    try {
      await client.join({
        conversationId: saved.conversationId,
        id: saved.participant.id,
        name: saved.participant.name,
        token: saved.token,
        since: saved.lastSeq,
      });
      this.#joined = true;
      this.#setConnection("online");
      void this.#pump();
    } catch (error) {
      if (isLiaisonError(error, "unauthorized", "forbidden", "not_found")) {
        // The conversation is gone (expired, or its token no longer valid): start again.
        this.#forget();
        this.#showPrechat(this.#s.startFailed);
      }
      // Otherwise (offline, timeout) the next `connected` joins.
    } finally {
      this.#joining = false;
    }
  }

  #onInfo(info: ConversationInfo): void {
    const saved = this.#saved;
    if (saved === undefined || info.conversation.id !== saved.conversationId) return;
    const agent = info.conversation.agent?.name;
    if (agent !== undefined && agent !== "") {
      this.#showAgent(agent);
      this.#queueText = undefined;
    } else if (info.conversation.state === "queued" && this.#queueText === undefined) {
      this.#queueText = this.#s.connecting;
    }
    if (info.conversation.state === "ended" && !saved.ended) this.#markEnded();
    this.#renderStatus();
  }

  #onMessage(message: Message): void {
    const saved = this.#saved;
    if (saved === undefined || message.conversationId !== saved.conversationId) return;
    if (message.type === "ActivityMessage" && message.activityType === "typing") {
      this.#onTyping(message);
      return;
    }
    if (message.seq !== undefined && message.seq > saved.lastSeq) saved.lastSeq = message.seq;
    if (!this.#rendered.has(message.id)) {
      if (this.#render(message)) saved.log.push(strip(message));
      if (saved.log.length > LOG_KEPT) saved.log.splice(0, saved.log.length - LOG_KEPT);
    }
    this.#store();
  }

  /** Draws a received message (or an own message after a reload); false when it is not shown at all. */
  #render(message: Message): boolean {
    const s = this.#s;
    const me = this.#saved?.participant.id;
    this.#rendered.add(message.id);
    let element: HTMLElement | undefined;
    if (message.type === "ChatMessage") {
      if (message.tag === "whisper") return false;
      const mine = message.from.id === me;
      // A press drawn again after a reload, or made in another tab: its offer is answered here too.
      if (mine && message.button !== undefined) this.#answered(message.button.id);
      element = this.#bubble(mine ? s.you : message.from.name, mine, message.text, message.attachments);
      if (message.buttons !== undefined && message.buttons.length > 0) element.append(this.#buttons(message));
      if (!mine && this.#typingName === message.from.name) this.#setTyping(undefined);
    } else {
      element = this.#activity(message);
    }
    if (element === undefined) return true;
    element.dataset.id = message.id;
    // Received messages go above the visitor's messages still waiting to be sent.
    const firstPending = this.#log.querySelector(".msg.pending");
    this.#log.insertBefore(element, firstPending);
    this.#scrollDown();
    return true;
  }

  #activity(message: ActivityMessage): HTMLElement | undefined {
    const s = this.#s;
    switch (message.activityType) {
      case "greetings":
        return this.#bubble(message.from.name, false, message.info.text, []);
      case "participantAdded":
      case "participantJoined":
        if (message.info.role !== "agent") return undefined;
        this.#showAgent(message.info.participant.name);
        this.#queueText = undefined;
        this.#renderStatus();
        return note(format(s.agentJoined, { name: message.info.participant.name }));
      case "participantRemoved":
      case "participantLeft":
        if (message.info.role !== "agent") return undefined;
        return note(format(s.agentLeft, { name: message.info.participant.name }));
      case "queuePosition":
        this.#queueText =
          message.info.position <= 1 ? s.queueNext : format(s.queuePosition, { n: message.info.position });
        this.#renderStatus();
        return undefined;
      case "handOff":
        this.#queueText = s.connecting;
        this.#renderStatus();
        return undefined;
      case "noAgentAvailable":
        this.#queueText = undefined;
        this.#renderStatus();
        return note(message.info.text.trim() === "" ? s.noAgent : `${s.noAgent} ${message.info.text}`.trim());
      case "endOfConversation":
        this.#markEnded();
        return note(s.ended);
      case "deliveryFailed":
        return note(s.notDelivered);
      case "typing":
        return undefined;
    }
  }

  #bubble(who: string, mine: boolean, text: string, attachments: readonly Attachment[]): HTMLElement {
    const element = h(
      "div",
      { class: `msg ${mine ? "me" : "them"}` },
      h("span", { class: "who", dir: "auto", text: who }),
    );
    if (text !== "") {
      // Each message's own direction: an English greeting reads left to right in an Arabic panel, and the other way.
      const body = h("span", { class: "text", dir: "auto" });
      for (const part of splitLinks(text)) {
        body.append(
          part.kind === "text"
            ? part.text
            : h("a", { href: part.href, target: "_blank", rel: "noopener noreferrer", text: part.text }),
        );
      }
      element.append(body);
    }
    if (attachments.length > 0) {
      const list = h("ul", { class: "files" });
      for (const file of attachments) list.append(h("li", {}, this.#file(file)));
      element.append(list);
    }
    return element;
  }

  #file(file: Attachment): HTMLElement {
    const label = format(this.#s.attachment, { name: file.name });
    const url = file.contentUrl;
    if (url === "") return h("span", { text: label });
    const dataUrl = url.startsWith("data:");
    if (!dataUrl && !/^https?:\/\//i.test(url)) return h("span", { text: label });
    const link = h("a", { href: url, text: label });
    if (dataUrl) link.setAttribute("download", file.name);
    else {
      link.target = "_blank";
      link.rel = "noopener noreferrer";
    }
    if (dataUrl && file.type.startsWith("image/")) {
      const preview = h("img", { src: url, alt: "" });
      return h("span", {}, preview, link);
    }
    return link;
  }

  #buttons(message: ChatMessage): HTMLElement {
    const group = h("div", { class: "buttons", role: "group", "aria-label": this.#s.chooseOption });
    const all: HTMLButtonElement[] = [];
    for (const row of message.buttons ?? []) {
      const line = h("div", { class: "row" });
      for (const button of row) {
        const control = h("button", { type: "button", text: button.text });
        control.dataset.button = button.id;
        control.addEventListener("click", () => {
          for (const other of all) other.disabled = true;
          this.#queue({ id: newId(), text: button.text, attachments: [], button, state: "sending" });
        });
        all.push(control);
        line.append(control);
      }
      group.append(line);
    }
    return group;
  }

  /** Disables the latest offer of buttons with the one pressed: an offer is answered once. */
  #answered(buttonId: string): void {
    const offers = [...this.#log.querySelectorAll<HTMLElement>(".buttons")];
    const offer = offers
      .reverse()
      .find((group) =>
        [...group.querySelectorAll<HTMLButtonElement>("button")].some((control) => control.dataset.button === buttonId),
      );
    for (const control of offer?.querySelectorAll<HTMLButtonElement>("button") ?? []) control.disabled = true;
  }

  #showAgent(name: string): void {
    if (this.#saved !== undefined && this.#saved.agent !== name) {
      this.#saved.agent = name;
      this.#store();
    }
    this.#agentLine.textContent = format(this.#s.chattingWith, { name });
    this.#agentLine.hidden = false;
  }

  // ---- sending ----

  #sendText(): void {
    const text = this.#input.value.trim();
    if (text === "" || this.#saved === undefined || this.#saved.ended) return;
    this.#input.value = "";
    this.#stopOwnTyping();
    this.#queue({ id: newId(), text, attachments: [], state: "sending" });
  }

  /** Adds a message to the outbox (kept in the page and in `localStorage`) and shows it as sending. */
  #queue(outgoing: Outgoing): void {
    const saved = this.#saved;
    if (saved === undefined) return;
    saved.outbox.push(outgoing);
    this.#store();
    this.#renderOutgoing(outgoing);
    void this.#pump();
  }

  #renderOutgoing(outgoing: Outgoing): void {
    this.#rendered.add(outgoing.id);
    const element = this.#bubble(this.#s.you, true, outgoing.text, outgoing.attachments);
    element.dataset.id = outgoing.id;
    element.classList.add("pending");
    element.append(h("span", { class: "state" }));
    this.#log.append(element);
    this.#showOutgoingState(outgoing);
    this.#scrollDown();
  }

  #showOutgoingState(outgoing: Outgoing): void {
    const element = this.#log.querySelector<HTMLElement>(`.msg[data-id="${CSS.escape(outgoing.id)}"]`);
    const state = element?.querySelector(".state");
    if (element === null || element === undefined || state === null || state === undefined) return;
    element.classList.toggle("failed", outgoing.state === "failed");
    if (outgoing.state === "sending") {
      state.replaceChildren(this.#s.sending);
      return;
    }
    const retry = h("button", { type: "button", text: this.#s.retry });
    retry.addEventListener("click", () => {
      outgoing.state = "sending";
      this.#store();
      this.#showOutgoingState(outgoing);
      void this.#pump();
      this.#input.focus();
    });
    state.replaceChildren(this.#s.failed, retry);
  }

  /**
   * Sends the outbox, one message at a time and in order, each with its id (a resend is never stored twice). A
   * message that cannot go now (offline, a timeout) waits for the connection; one the gateway refuses is marked
   * failed with a retry control, and the next ones go on.
   */
  #pump(): Promise<void> {
    // One run at a time; a caller that asks meanwhile waits for the run under way.
    this.#pumpRun ??= this.#pumpOnce().finally(() => {
      this.#pumpRun = undefined;
    });
    return this.#pumpRun;
  }

  async #pumpOnce(): Promise<void> {
    const saved = this.#saved;
    const client = this.#client;
    if (saved === undefined || client === undefined) return;
    clearTimeout(this.#retryTimer);
    for (;;) {
      const next = saved.outbox.find((outgoing) => outgoing.state === "sending");
      if (next === undefined || !this.#joined || !client.connected || saved.ended) return;
      try {
        const ack = await client.send(saved.conversationId, {
          id: next.id,
          text: next.text,
          attachments: next.attachments,
          ...(next.button === undefined ? {} : { button: next.button }),
        });
        saved.outbox = saved.outbox.filter((outgoing) => outgoing !== next);
        const sent: ChatMessage = {
          type: "ChatMessage",
          id: next.id,
          conversationId: saved.conversationId,
          seq: ack.seq ?? 0,
          timestamp: ack.timestamp,
          from: saved.participant,
          to: [],
          text: next.text,
          attachments: next.attachments,
          tag: "",
          ...(next.button === undefined ? {} : { button: next.button }),
        };
        saved.log.push(strip(sent));
        this.#store();
        const element = this.#log.querySelector<HTMLElement>(`.msg[data-id="${CSS.escape(next.id)}"]`);
        element?.classList.remove("pending", "failed");
        element?.querySelector(".state")?.remove();
      } catch (error) {
        if (isLiaisonError(error, "rate_limited")) {
          this.#retryTimer = setTimeout(() => void this.#pump(), (error.retryAfterSeconds ?? 1) * 1000);
          return;
        }
        if (isLiaisonError(error, "timeout", "disconnected", "unavailable", "internal", "bad_response")) {
          // Tried again on the next `connected`, or shortly if the socket is still up.
          this.#retryTimer = setTimeout(() => void this.#pump(), 2_000);
          return;
        }
        next.state = "failed";
        this.#store();
        this.#showOutgoingState(next);
        if (isLiaisonError(error, "conversation_ended")) {
          this.#markEnded();
          return;
        }
      }
    }
  }

  async #sendFiles(files: readonly File[]): Promise<void> {
    const { maxFileBytes, locale } = this.#settings;
    for (const file of files) {
      if (file.size > maxFileBytes) {
        this.#alert.textContent = format(this.#s.fileTooLarge, {
          name: file.name,
          size: formatBytes(maxFileBytes, locale.language),
        });
        continue;
      }
      this.#alert.textContent = "";
      const contentUrl = await readAsDataUrl(file);
      const type = /^[\w.+-]+\/[\w.+-]+$/.test(file.type) ? file.type : "application/octet-stream";
      const name = file.name.slice(0, 255) || "file";
      this.#queue({ id: newId(), text: "", attachments: [{ type, name, contentUrl }], state: "sending" });
    }
  }

  #onDragOver(event: DragEvent): void {
    if (this.#composer.hidden || !this.#composer.isConnected || !event.dataTransfer?.types.includes("Files")) return;
    event.preventDefault();
    event.dataTransfer.dropEffect = "copy";
    this.#drop.hidden = false;
  }

  #onDrop(event: DragEvent): void {
    this.#drop.hidden = true;
    if (this.#composer.hidden || !this.#composer.isConnected) return;
    event.preventDefault();
    void this.#sendFiles([...(event.dataTransfer?.files ?? [])]);
  }

  // ---- typing ----

  #onOwnTyping(): void {
    const saved = this.#saved;
    const client = this.#client;
    if (saved === undefined || client === undefined || !this.#joined || !client.connected) return;
    clearTimeout(this.#ownTypingTimer);
    if (this.#input.value.trim() === "") {
      this.#stopOwnTyping();
      return;
    }
    if (Date.now() - this.#ownTypingSent > TYPING_IDLE_MS - 1_000) {
      this.#ownTypingSent = Date.now();
      client.typing(saved.conversationId, "start").catch(() => undefined);
    }
    this.#ownTypingTimer = setTimeout(() => this.#stopOwnTyping(), TYPING_IDLE_MS);
  }

  #stopOwnTyping(): void {
    clearTimeout(this.#ownTypingTimer);
    if (this.#ownTypingSent === 0) return;
    this.#ownTypingSent = 0;
    const saved = this.#saved;
    if (saved !== undefined && this.#client?.connected === true) {
      this.#client.typing(saved.conversationId, "stop").catch(() => undefined);
    }
  }

  #onTyping(message: Extract<ActivityMessage, { activityType: "typing" }>): void {
    if (message.info.participant.id === this.#saved?.participant.id) return;
    this.#setTyping(message.info.state === "start" ? message.info.participant.name : undefined);
  }

  #setTyping(name: string | undefined): void {
    clearTimeout(this.#typingTimer);
    this.#typingName = name;
    if (name !== undefined) this.#typingTimer = setTimeout(() => this.#setTyping(undefined), TYPING_SHOWN_MS);
    this.#renderStatus();
  }

  // ---- status ----

  #setConnection(connection: "online" | "offline" | "reconnecting"): void {
    this.#connection = connection;
    this.#renderStatus();
  }

  #renderStatus(): void {
    const s = this.#s;
    const parts: string[] = [];
    if (this.#saved?.ended !== true) {
      if (this.#connection === "offline") parts.push(s.offline);
      else if (this.#connection === "reconnecting") parts.push(s.reconnecting);
      if (this.#typingName !== undefined) parts.push(format(s.typing, { name: this.#typingName }));
      else if (this.#queueText !== undefined) parts.push(this.#queueText);
    }
    const text = parts.join(" ");
    if (this.#status.textContent !== text) this.#status.textContent = text;
  }

  // ---- the end ----

  #askEnd(): void {
    if (this.#saved === undefined || this.#saved.ended) return;
    this.#confirm.hidden = false;
    this.#confirm.querySelector<HTMLButtonElement>("button.secondary")?.focus();
  }

  #cancelEnd(): void {
    this.#confirm.hidden = true;
    this.#endButton.focus();
  }

  async #end(): Promise<void> {
    const saved = this.#saved;
    const client = this.#client;
    if (saved === undefined || client === undefined) return;
    this.#alert.textContent = "";
    // What the visitor wrote goes first: after the end the gateway would refuse it.
    await this.#pump();
    if (saved.outbox.some((outgoing) => outgoing.state === "sending")) {
      this.#alert.textContent = this.#connection === "online" ? this.#s.reconnecting : this.#s.offline;
      return;
    }
    try {
      await client.end(saved.conversationId, "ended by the customer");
      this.#confirm.hidden = true;
      this.#markEnded();
      this.#ended.querySelector<HTMLButtonElement>("button")?.focus();
    } catch {
      this.#alert.textContent = this.#connection === "online" ? this.#s.startFailed : this.#s.offline;
    }
  }

  /** The conversation is over: no more composing; the transcript and a new chat are offered. */
  #markEnded(): void {
    const saved = this.#saved;
    if (saved === undefined) return;
    const wasEnded = saved.ended;
    saved.ended = true;
    this.#store();
    this.#showEnded();
    if (!wasEnded) this.#client?.close();
  }

  #showEnded(): void {
    const focusInside =
      this.#confirm.contains(document.activeElement) || this.#composer.contains(document.activeElement);
    this.#confirm.hidden = true;
    this.#composer.hidden = true;
    this.#hint.hidden = true;
    this.#endButton.hidden = true;
    this.#ended.hidden = false;
    this.#emailButton.hidden = this.#saved?.hasEmail !== true;
    this.#queueText = undefined;
    this.#typingName = undefined;
    this.#renderStatus();
    if (focusInside) this.#ended.querySelector<HTMLButtonElement>("button")?.focus();
  }

  async #downloadTranscript(): Promise<void> {
    const saved = this.#saved;
    if (saved === undefined) return;
    this.#endedStatus.textContent = "";
    try {
      const pdf = await fetchTranscriptPdf(this.#settings.base, saved.conversationId, { token: saved.token });
      const url = URL.createObjectURL(new Blob([pdf as BlobPart], { type: "application/pdf" }));
      const link = h("a", {
        href: url,
        download: `${this.#title} ${saved.conversationId}.pdf`.replace(/[\\/:*?"<>|]+/g, "-"),
      });
      document.body.append(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(url), 60_000);
    } catch {
      this.#endedStatus.textContent = this.#s.transcriptFailed;
    }
  }

  async #emailTranscript(): Promise<void> {
    const saved = this.#saved;
    if (saved === undefined) return;
    this.#endedStatus.textContent = "";
    try {
      await emailTranscript(this.#settings.base, saved.conversationId, { token: saved.token });
      this.#endedStatus.textContent = this.#s.transcriptSent;
    } catch (error) {
      this.#endedStatus.textContent = isLiaisonError(error, "not_configured")
        ? this.#s.emailUnavailable
        : this.#s.transcriptFailed;
    }
  }

  #newChat(): void {
    this.#forget();
    this.#showPrechat();
    this.#focusFirst();
  }

  #forget(): void {
    this.#client?.close();
    this.#client = undefined;
    this.#joined = false;
    this.#saved = undefined;
    this.#queueText = undefined;
    this.#typingName = undefined;
    this.#agentLine.hidden = true;
    this.#log.replaceChildren();
    this.#rendered.clear();
    this.#save(null);
  }

  // ---- keyboard ----

  #onKey(event: KeyboardEvent): void {
    if (event.key === "Escape") {
      event.preventDefault();
      if (!this.#confirm.hidden) this.#cancelEnd();
      else this.#closePanel();
      return;
    }
    if (event.key !== "Tab") return;
    // The focus stays in the open panel: Tab past the last control comes back to the first, and the other way.
    const focusable = this.#focusable();
    const first = focusable[0];
    const last = focusable[focusable.length - 1];
    if (first === undefined || last === undefined) return;
    const active = document.activeElement;
    if (event.shiftKey && (active === first || !this.#panel.contains(active))) {
      event.preventDefault();
      last.focus();
    } else if (!event.shiftKey && (active === last || !this.#panel.contains(active))) {
      event.preventDefault();
      first.focus();
    }
  }

  #focusable(): HTMLElement[] {
    const candidates = this.#panel.querySelectorAll<HTMLElement>(
      'a[href], button:not([disabled]), input:not([disabled]):not([tabindex="-1"]), textarea:not([disabled]), [tabindex="0"]',
    );
    return [...candidates].filter((element) => element.getClientRects().length > 0);
  }

  #focusFirst(): void {
    const target =
      this.#main.querySelector<HTMLElement>("form.prechat [aria-invalid='true']") ??
      this.#main.querySelector<HTMLElement>("form.prechat input") ??
      (this.#composer.hidden || !this.#composer.isConnected
        ? this.#ended.querySelector<HTMLElement>("button")
        : this.#input);
    target?.focus();
  }

  #closePanel(): void {
    this.#post({ liaison: "close" });
  }

  #scrollDown(): void {
    this.#log.scrollTop = this.#log.scrollHeight;
  }

  // ---- storage ----

  #store(): void {
    const saved = this.#saved;
    if (saved === undefined) return;
    if (saved.log.length > LOG_KEPT) saved.log.splice(0, saved.log.length - LOG_KEPT);
    this.#save(JSON.stringify(saved));
  }

  #save(value: string | null): void {
    if (this.#framed()) this.#post({ liaison: "save", value });
    else localStorageSet(this.#storageKey, value);
  }
}

function parseSaved(raw: string | null): Saved | undefined {
  if (raw === null) return undefined;
  try {
    const saved = JSON.parse(raw) as Partial<Saved>;
    if (
      saved.v !== 1 ||
      typeof saved.conversationId !== "string" ||
      typeof saved.token !== "string" ||
      saved.participant === undefined
    ) {
      return undefined;
    }
    return {
      ...(saved as Saved),
      log: Array.isArray(saved.log) ? saved.log : [],
      outbox: Array.isArray(saved.outbox) ? saved.outbox : [],
      lastSeq: typeof saved.lastSeq === "number" ? saved.lastSeq : 0,
    };
  } catch {
    return undefined;
  }
}

/** The frame's own storage, when it is opened on its own; it may be unavailable (privacy settings). */
function localStorageGet(key: string): string | null {
  try {
    return localStorage.getItem(key);
  } catch {
    return null;
  }
}

function localStorageSet(key: string, value: string | null): void {
  try {
    if (value === null) localStorage.removeItem(key);
    else localStorage.setItem(key, value);
  } catch {
    // Over quota or unavailable: the conversation lives as long as the page.
  }
}

/** A message as kept in `localStorage`: large embedded files are dropped (their names stay). */
function strip(message: Message): Message {
  if (message.type !== "ChatMessage" || message.attachments.length === 0) return message;
  return {
    ...message,
    attachments: message.attachments.map((file) =>
      file.contentUrl.startsWith("data:") && file.contentUrl.length > STORED_DATA_URL_MAX
        ? { type: file.type, name: file.name, contentUrl: "" }
        : file,
    ),
  };
}

function note(text: string): HTMLElement {
  return h("p", { class: "note", text });
}

function svgIcon(path: string): SVGSVGElement {
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("aria-hidden", "true");
  svg.setAttribute("focusable", "false");
  const shape = document.createElementNS("http://www.w3.org/2000/svg", "path");
  shape.setAttribute("d", path);
  svg.append(shape);
  return svg;
}

function readAsDataUrl(file: File): Promise<string> {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () =>
      typeof reader.result === "string" ? resolve(reader.result) : reject(new Error("the file could not be read"));
    reader.onerror = () => reject(reader.error ?? new Error("the file could not be read"));
    reader.readAsDataURL(file);
  });
}
