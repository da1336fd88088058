/**
 * The widget's styles, applied as constructed style sheets (`adoptedStyleSheets`): the host page's CSS cannot reach
 * them (shadow root, iframe), and a strict Content-Security-Policy without `'unsafe-inline'` does not block them.
 */

/** The launcher and the panel's frame, in the shadow root on the host page. */
export const loaderCss = `
:host { all: initial; }
.launcher {
  position: fixed; inset-block-end: 20px; inset-inline-end: 20px; z-index: 2147483000;
  inline-size: 56px; block-size: 56px; border-radius: 50%; border: 0; padding: 0; margin: 0;
  display: flex; align-items: center; justify-content: center; cursor: pointer;
  background: var(--liaison-accent, #1d4ed8); color: #fff;
  box-shadow: 0 4px 14px rgba(0, 0, 0, 0.3); transition: transform 0.15s ease;
}
.launcher:hover { transform: scale(1.06); }
.launcher:focus-visible { outline: 3px solid #111; outline-offset: 3px; box-shadow: 0 0 0 6px #fff; }
.launcher svg { inline-size: 28px; block-size: 28px; fill: currentColor; }
.panel {
  position: fixed; inset-block-end: 88px; inset-inline-end: 20px; z-index: 2147483000;
  inline-size: 380px; max-inline-size: calc(100vw - 40px);
  block-size: 600px; max-block-size: calc(100vh - 108px); max-block-size: calc(100dvh - 108px);
  border: 0; border-radius: 12px; background: #fff; color-scheme: light;
  box-shadow: 0 8px 30px rgba(0, 0, 0, 0.3);
  animation: liaison-in 0.18s ease-out;
}
.panel[hidden] { display: none; }
@keyframes liaison-in { from { opacity: 0; transform: translateY(12px); } to { opacity: 1; transform: none; } }
@media (max-width: 480px), (max-height: 520px) {
  .panel { inset: 0; inline-size: 100%; max-inline-size: none; block-size: 100%; max-block-size: none; border-radius: 0; }
  .open .launcher { display: none; }
}
@media (prefers-reduced-motion: reduce) {
  .launcher, .panel { animation: none; transition: none; }
  .launcher:hover { transform: none; }
}
`;

/** The chat panel inside the frame. */
export const panelCss = `
*, *::before, *::after { box-sizing: border-box; }
html, body { margin: 0; block-size: 100%; }
body {
  font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", "Noto Naskh Arabic", "Noto Nastaliq Urdu", Tahoma, sans-serif;
  color: #1a1a1a; background: #fff;
}
.visually-hidden {
  position: absolute !important; inline-size: 1px; block-size: 1px; overflow: hidden;
  clip: rect(0 0 0 0); clip-path: inset(50%); white-space: nowrap;
}
.panel { display: flex; flex-direction: column; block-size: 100%; position: relative; }
header {
  display: flex; align-items: center; gap: 8px; padding: 12px 14px;
  background: var(--accent, #1d4ed8); color: #fff;
}
header .titles { flex: 1; min-inline-size: 0; }
header h1 { font-size: 17px; margin: 0; overflow-wrap: anywhere; }
header .agent { font-size: 13px; margin: 0; opacity: 0.95; }
header button {
  font: inherit; font-size: 13px; color: #fff; background: transparent; cursor: pointer;
  border: 1px solid rgba(255, 255, 255, 0.7); border-radius: 6px; padding: 5px 9px; min-block-size: 32px;
}
header button.icon { border-color: transparent; font-size: 22px; line-height: 1; padding: 2px 8px; }
header button:focus-visible { outline: 3px solid #fff; outline-offset: 1px; }
main { flex: 1; min-block-size: 0; display: flex; flex-direction: column; }
form.prechat { padding: 16px; overflow-y: auto; display: flex; flex-direction: column; gap: 4px; }
form.prechat p.intro { margin: 0 0 8px; }
label { font-weight: 600; margin-block-start: 8px; }
input, textarea {
  font: inherit; color: inherit; inline-size: 100%; padding: 9px 10px;
  border: 1px solid #767676; border-radius: 6px; background: #fff;
}
input:focus-visible, textarea:focus-visible, button:focus-visible, a:focus-visible, .log:focus-visible {
  outline: 3px solid #111; outline-offset: 2px;
}
[aria-invalid="true"] { border-color: #b00020; }
.error { color: #b00020; margin: 2px 0 0; font-size: 14px; }
.error:empty { display: none; }
.primary, .secondary {
  font: inherit; font-weight: 600; border-radius: 6px; padding: 9px 14px; cursor: pointer; min-block-size: 40px;
}
.primary { background: var(--accent, #1d4ed8); color: #fff; border: 1px solid var(--accent, #1d4ed8); }
.secondary { background: #fff; color: #1a1a1a; border: 1px solid #767676; }
.primary:disabled { opacity: 0.6; cursor: default; }
form.prechat .primary { margin-block-start: 14px; }
.log { flex: 1; min-block-size: 0; overflow-y: auto; padding: 12px; display: flex; flex-direction: column; gap: 8px; }
.msg { max-inline-size: 85%; padding: 8px 11px; border-radius: 12px; overflow-wrap: anywhere; white-space: pre-wrap; }
.msg .who { display: block; font-size: 12px; font-weight: 600; color: #4a4a4a; white-space: normal; }
.msg.them { align-self: flex-start; background: #eef1f5; }
.msg.me { align-self: flex-end; background: #dbe7ff; }
.msg a { color: #0b3ea8; }
.msg .files { list-style: none; margin: 6px 0 0; padding: 0; white-space: normal; }
.msg .files img { display: block; max-inline-size: 100%; max-block-size: 160px; border-radius: 6px; margin-block-end: 4px; }
.msg .state { display: block; font-size: 12px; color: #4a4a4a; white-space: normal; }
.msg.failed .state { color: #b00020; }
.msg .state button { font: inherit; margin-inline-start: 6px; padding: 2px 8px; cursor: pointer; }
.buttons { display: flex; flex-direction: column; gap: 6px; margin-block-start: 8px; white-space: normal; }
.buttons .row { display: flex; flex-wrap: wrap; gap: 6px; }
.buttons button {
  font: inherit; font-size: 14px; background: #fff; color: #0b3ea8; border: 1px solid #0b3ea8;
  border-radius: 16px; padding: 5px 12px; cursor: pointer;
}
.buttons button:disabled { color: #6b6b6b; border-color: #b5b5b5; cursor: default; }
.note { align-self: center; text-align: center; font-size: 13px; color: #4a4a4a; max-inline-size: 90%; }
.status { min-block-size: 1.45em; margin: 0; padding: 2px 12px; font-size: 13px; color: #3a3a3a; }
.status:empty { display: none; }
.composer { display: flex; align-items: flex-end; gap: 6px; padding: 8px 10px 10px; border-block-start: 1px solid #d0d0d0; }
.composer textarea { resize: none; min-block-size: 42px; max-block-size: 120px; }
.composer .attach {
  inline-size: 42px; block-size: 42px; flex: none; border: 1px solid #767676; border-radius: 6px;
  background: #fff; cursor: pointer; display: flex; align-items: center; justify-content: center;
}
.composer .attach svg { inline-size: 20px; block-size: 20px; fill: #333; }
.hint { margin: 0; padding: 0 12px 6px; font-size: 12px; color: #4a4a4a; }
.confirm, .ended { padding: 12px; border-block-start: 1px solid #d0d0d0; display: flex; flex-direction: column; gap: 8px; }
.confirm h2, .ended h2 { font-size: 15px; margin: 0; }
.confirm p, .ended p { margin: 0; }
.actions { display: flex; flex-wrap: wrap; gap: 8px; }
.drop {
  position: absolute; inset: 0; display: flex; align-items: center; justify-content: center; text-align: center;
  background: rgba(255, 255, 255, 0.92); border: 3px dashed var(--accent, #1d4ed8); font-weight: 600; padding: 20px;
}
.drop[hidden], [hidden] { display: none !important; }
@media (prefers-reduced-motion: reduce) {
  *, *::before, *::after { animation: none !important; transition: none !important; scroll-behavior: auto !important; }
}
`;

/** Adopts a constructed style sheet (not subject to the page's `style-src`), or a `<style>` where unsupported. */
export function applyStyles(root: ShadowRoot | Document, css: string): void {
  if ("adoptedStyleSheets" in root && typeof CSSStyleSheet === "function" && "replaceSync" in CSSStyleSheet.prototype) {
    const sheet = new CSSStyleSheet();
    sheet.replaceSync(css);
    root.adoptedStyleSheets = [...root.adoptedStyleSheets, sheet];
    return;
  }
  const style = document.createElement("style");
  style.textContent = css;
  (root instanceof Document ? root.head : root).append(style);
}
