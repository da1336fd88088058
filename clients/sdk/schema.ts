import { LiaisonError } from "./errors.js";

/**
 * The part of a protocol zod schema the SDK uses. Structural, so the SDK needs no import of zod itself (it may
 * import only `protocol/` and socket.io-client).
 */
export interface Validator<T> {
  safeParse(
    value: unknown,
  ):
    | { success: true; data: T }
    | { success: false; error: { issues: readonly { path: readonly PropertyKey[]; message: string }[] } };
}

/**
 * Parses what the server sent with a protocol schema; a mismatch is a `bad_response`, with the failing fields in
 * `details.issues`.
 *
 * @param schema - the protocol schema the value must match
 * @param value - what the server sent
 * @param what - names the value in the error message
 */
export function validate<T>(schema: Validator<T>, value: unknown, what: string): T {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const issues = result.error.issues.map((issue) => ({
    path: issue.path.map((key) => (typeof key === "symbol" ? key.toString() : key)).join("."),
    message: issue.message,
  }));
  throw new LiaisonError("bad_response", `unexpected ${what} from the server`, { details: { issues } });
}
