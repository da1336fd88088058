/** `scheme://user:password@host` in any text: the password is blanked (a Redis or SMTP URL in an error message). */
const CREDENTIALS_IN_URL = /\b([a-z][a-z\d+.-]*:\/\/)([^\s:@/]*):([^\s@/]+)@/gi;

/** `text` with the passwords of any URLs in it blanked. */
export function scrubText(text: string): string {
  return text.replace(CREDENTIALS_IN_URL, "$1$2:[redacted]@");
}
