/**
 * The desk port, for adapter authors: a desk adapter implements `Desk` and reports what agents do as `DeskEvent`s.
 * The types live in the core (which drives them); this module is where adapters take them from.
 */
export type { Desk, DeskCapabilities, DeskEvent, DeskSession } from "../core/desk.js";
export { NoAgentAvailableError } from "../core/desk.js";
export { AdapterError } from "../core/errors.js";
