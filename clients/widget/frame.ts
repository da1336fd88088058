/** `/widget/panel.js`, the chat panel, run by the gateway's `/widget/frame` page. */
import { startPanel } from "./panel.js";

startPanel();
