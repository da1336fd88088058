import { checkAnswer, type AnswerName, type Answers } from "./answers.js";
import { LiaisonError } from "./errors.js";

/**
 * Checks what the server sent against its protocol schema; a mismatch is a `bad_response`, with the failing fields
 * in `details.issues`.
 *
 * @param name - which answer the value must be
 * @param value - what the server sent
 * @param what - names the value in the error message
 */
export function validate<N extends AnswerName>(name: N, value: unknown, what: string): Answers[N] {
  const result = checkAnswer(name, value);
  if (result.ok) return result.value;
  throw new LiaisonError("bad_response", `unexpected ${what} from the server`, { details: { issues: result.issues } });
}
