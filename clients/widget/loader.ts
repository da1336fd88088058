import { resolveLocale } from "./i18n/index.js";
import {
  frameQuery,
  optionsFromAttributes,
  optionsFromInit,
  safeColor,
  type FrameMessage,
  type WidgetOptions,
} from "./options.js";
import { applyStyles, loaderCss } from "./styles.js";

/** What a site can call: `window.LiaisonWidget`. */
export interface LiaisonWidgetApi {
  /** Sets the options (they win over the script tag's `data-*` attributes) and redraws the launcher. */
  init(options?: WidgetOptions): void;
  /** Opens the chat panel. */
  open(): void;
  /** Closes the chat panel (the conversation goes on; the launcher reopens it). */
  close(): void;
}

const OPEN_KEY = "liaison-widget-open";
const CHAT_ICON =
  '<svg viewBox="0 0 24 24" aria-hidden="true" focusable="false"><path d="M4 3h16a2 2 0 0 1 2 2v11a2 2 0 0 1-2 2H9l-5 4v-4H4a2 2 0 0 1-2-2V5a2 2 0 0 1 2-2zm3 6v2h2V9H7zm4 0v2h2V9h-2zm4 0v2h2V9h-2z"/></svg>';

/**
 * The loader, run on the host page: a launcher button in an open shadow root, and the panel as an iframe of the
 * gateway's `/widget/frame`, created the first time the visitor opens it.
 */
export function startLoader(script: HTMLOrSVGScriptElement | null): LiaisonWidgetApi {
  const attributes = optionsFromAttributes(script);
  const src = script instanceof HTMLScriptElement ? script.src : "";
  let widget: Mounted | undefined;
  let overrides: WidgetOptions = {};

  const mount = () => {
    widget?.destroy();
    const options = { ...attributes, ...overrides };
    const base = (options.url ?? src.replace(/\/widget\.js(?:[?#].*)?$/, "")).replace(/\/+$/, "");
    widget = mountWidget(options, base);
  };
  const api: LiaisonWidgetApi = {
    init(options) {
      overrides = optionsFromInit(options);
      mount();
    },
    open: () => widget?.open(true),
    close: () => widget?.close(false),
  };
  if (document.body === null) document.addEventListener("DOMContentLoaded", mount, { once: true });
  else mount();
  return api;
}

interface Mounted {
  open(moveFocus: boolean): void;
  close(restoreFocus: boolean): void;
  destroy(): void;
}

function mountWidget(options: WidgetOptions, base: string): Mounted {
  const locale = resolveLocale(options.language, ...navigator.languages);
  const gatewayOrigin = new URL(base, location.href).origin;
  const stateKey = `liaison-widget:${gatewayOrigin}:${options.channel ?? "web"}`;
  const host = document.createElement("div");
  host.setAttribute("data-liaison-widget", "");
  host.dir = locale.dir;
  host.lang = locale.language;
  const accent = safeColor(options.color);
  if (accent !== undefined) host.style.setProperty("--liaison-accent", accent);
  const root = host.attachShadow({ mode: "open" });
  applyStyles(root, loaderCss);
  const wrapper = document.createElement("div");
  const launcher = document.createElement("button");
  launcher.type = "button";
  launcher.className = "launcher";
  launcher.setAttribute("aria-label", locale.strings.openChat);
  launcher.setAttribute("aria-expanded", "false");
  launcher.setAttribute("aria-haspopup", "dialog");
  launcher.innerHTML = CHAT_ICON;
  wrapper.append(launcher);
  root.append(wrapper);
  document.body.append(host);

  let frame: HTMLIFrameElement | undefined;
  let ready = false;
  let focusOnReady = false;
  let isOpen = false;

  const post = (message: FrameMessage) => frame?.contentWindow?.postMessage(message, gatewayOrigin);
  const open = (moveFocus: boolean) => {
    if (frame === undefined) {
      frame = document.createElement("iframe");
      frame.className = "panel";
      frame.id = "liaison-panel";
      frame.title = options.title ?? locale.strings.title;
      frame.src = `${base}/widget/frame?${frameQuery({ ...options, language: locale.language }, location.href)}`;
      wrapper.append(frame);
      launcher.setAttribute("aria-controls", frame.id);
    }
    frame.hidden = false;
    isOpen = true;
    wrapper.classList.add("open");
    launcher.setAttribute("aria-expanded", "true");
    storage(() => sessionStorage.setItem(OPEN_KEY, "1"));
    if (!moveFocus) return;
    frame.focus();
    if (ready) post({ liaison: "open" });
    else focusOnReady = true;
  };
  const close = (restoreFocus: boolean) => {
    if (frame !== undefined) frame.hidden = true;
    isOpen = false;
    wrapper.classList.remove("open");
    launcher.setAttribute("aria-expanded", "false");
    storage(() => sessionStorage.removeItem(OPEN_KEY));
    if (restoreFocus) launcher.focus();
  };
  launcher.addEventListener("click", () => (isOpen ? close(true) : open(true)));
  const onMessage = (event: MessageEvent) => {
    if (frame === undefined || event.source !== frame.contentWindow || event.origin !== gatewayOrigin) return;
    const data = event.data as FrameMessage | null;
    if (data?.liaison === "ready") {
      ready = true;
      post({ liaison: "state", value: storage(() => localStorage.getItem(stateKey)) ?? null });
      if (focusOnReady) post({ liaison: "open" });
      focusOnReady = false;
    } else if (data?.liaison === "save") {
      const value = typeof data.value === "string" ? data.value : null;
      storage(() => (value === null ? localStorage.removeItem(stateKey) : localStorage.setItem(stateKey, value)));
    } else if (data?.liaison === "close") {
      close(true);
    }
  };
  window.addEventListener("message", onMessage);
  // The panel stays open across the site's pages and reloads within this tab.
  if (storage(() => sessionStorage.getItem(OPEN_KEY)) === "1") open(false);
  return {
    open,
    close,
    destroy: () => {
      window.removeEventListener("message", onMessage);
      host.remove();
    },
  };
}

/** Runs a storage access; storage may be switched off (privacy settings), which the widget survives. */
function storage<T>(access: () => T): T | undefined {
  try {
    return access();
  } catch {
    return undefined;
  }
}
