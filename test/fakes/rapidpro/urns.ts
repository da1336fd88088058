/**
 * URNs as RapidPro handles them (temba/contacts/models.py `URN`): `scheme:path[?query][#display]`. The identity
 * (what contacts are looked up by) is `scheme:path`. Validation is a simplification of RapidPro's per-scheme rules:
 * phone numbers must be E.164 with a country code, since a workspace without a default country has no way to
 * guess one.
 */

export interface ParsedUrn {
  scheme: string;
  path: string;
  display: string;
}

const PATH_RULES: Record<string, RegExp> = {
  tel: /^\+[1-9]\d{6,14}$/,
  whatsapp: /^\d{1,15}$/,
  telegram: /^-?\d{1,20}$/,
  facebook: /^(\d+|ref:.+)$/,
  twitter: /^[a-z0-9_]{1,15}$/,
  twitterid: /^\d+$/,
  mailto: /^[^\s@]+@[^\s@]+\.[^\s@]+$/,
  instagram: /^.+$/,
  viber: /^[a-zA-Z0-9_=/+-]{1,24}$/,
  line: /^[a-zA-Z0-9_]{1,36}$/,
  discord: /^\d+$/,
  slack: /^[A-Z0-9]+$/,
  ext: /^.+$/,
  webchat: /^.+$/,
  fcm: /^.+$/,
  jiochat: /^.+$/,
  wechat: /^.+$/,
  vk: /^\d+$/,
  rocketchat: /^.+$/,
  freshchat: /^.+$/,
};

/** Schemes the fake accepts (each is a property of `@urns`). */
export const URN_SCHEMES: readonly string[] = Object.keys(PATH_RULES);

export function parseUrn(urn: string): ParsedUrn | undefined {
  const colon = urn.indexOf(":");
  if (colon <= 0) return undefined;
  const scheme = urn.slice(0, colon);
  let rest = urn.slice(colon + 1);
  let display = "";
  const hash = rest.indexOf("#");
  if (hash >= 0) {
    display = rest.slice(hash + 1);
    rest = rest.slice(0, hash);
  }
  const query = rest.indexOf("?");
  if (query >= 0) rest = rest.slice(0, query);
  if (rest === "") return undefined;
  return { scheme, path: rest, display };
}

/** `URN.normalize` + `URN.validate`: the normalized URN string, or undefined when RapidPro would reject it. */
export function normalizeUrn(urn: string): string | undefined {
  const parsed = parseUrn(urn.trim());
  if (!parsed) return undefined;
  const scheme = parsed.scheme.toLowerCase();
  let path = parsed.path.trim();
  if (scheme === "tel") path = path.replace(/[\s\-().]/g, "");
  else if (scheme === "twitter") path = path.replace(/^@/, "").toLowerCase();
  else if (scheme === "mailto") path = path.toLowerCase();
  const rule = PATH_RULES[scheme];
  if (!rule?.test(path)) return undefined;
  return parsed.display === "" ? `${scheme}:${path}` : `${scheme}:${path}#${parsed.display}`;
}

/** `URN.identity`: scheme and path only. */
export function urnIdentity(urn: string): string | undefined {
  const normalized = normalizeUrn(urn);
  if (normalized === undefined) return undefined;
  const parsed = parseUrn(normalized);
  return parsed ? `${parsed.scheme}:${parsed.path}` : undefined;
}

/** The identity of a stored (already trusted) contact URN. */
export function storedIdentity(urn: string): string {
  const parsed = parseUrn(urn);
  return parsed ? `${parsed.scheme.toLowerCase()}:${parsed.path}` : urn;
}
