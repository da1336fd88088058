/**
 * `/widget.js`, the script a site adds: the launcher and the panel's frame. It stays small; the chat itself (the
 * SDK and socket.io-client with it) is `/widget/panel.js`, loaded by the frame when the visitor first opens it.
 */
import { startLoader, type LiaisonWidgetApi } from "./loader.js";

declare global {
  interface Window {
    LiaisonWidget?: LiaisonWidgetApi;
  }
}

// Added twice (a tag and a tag manager, say), the widget still appears once.
window.LiaisonWidget ??= startLoader(document.currentScript);
