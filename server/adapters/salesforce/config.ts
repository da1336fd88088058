import { z } from "zod";

/** Customer fields that can be routed to a deployment's pre-chat fields. */
export const routableFields = ["firstName", "lastName", "email", "phone", "subject", "channel"] as const;
export type RoutableField = (typeof routableFields)[number];

/** Which pre-chat field each customer field fills: the standard hidden fields of an Embedded Service deployment. */
export const defaultRoutingAttributes: Readonly<Partial<Record<RoutableField, string>>> = Object.freeze({
  firstName: "_firstName",
  lastName: "_lastName",
  email: "_email",
  subject: "_subject",
});

const RoutingAttributesSchema = z.string().transform((text, context): Partial<Record<RoutableField, string>> => {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    context.addIssue('must be a JSON object, e.g. {"email":"_email"}');
    return z.NEVER;
  }
  const shape = z.partialRecord(z.enum(routableFields), z.string().min(1)).safeParse(parsed);
  if (!shape.success) {
    context.addIssue(`must map customer fields (${routableFields.join(", ")}) to pre-chat field names (strings)`);
    return z.NEVER;
  }
  return shape.data;
});

/** The Salesforce desk's settings (merged into the one config schema by server/config.ts). */
export const SalesforceConfigSchema = z.object({
  SALESFORCE_API: z
    .enum(["messaging", "chat"])
    .default("messaging")
    .describe("which Salesforce API the desk uses: messaging (Messaging for In-App and Web) or chat (legacy Chat)"),
  SALESFORCE_ORG_ID: z
    .string()
    .regex(/^00D[0-9A-Za-z]{12}([0-9A-Za-z]{3})?$/, "must be a Salesforce org id (00D…, 15 or 18 characters)")
    .optional()
    .describe("the org's id (00D…, 15 or 18 characters)"),
  SALESFORCE_MESSAGING_URL: z
    .url({ protocol: /^https?$/ })
    .optional()
    .describe(
      "Messaging for In-App and Web: the org's SCRT URL, https://<domain>.my.salesforce-scrt.com; enables the Salesforce desk",
    ),
  SALESFORCE_MESSAGING_DEPLOYMENT: z
    .string()
    .min(1)
    .optional()
    .describe("Messaging for In-App and Web: the API name of the Embedded Service deployment (a Custom Client)"),
  SALESFORCE_ROUTING_ATTRIBUTES: RoutingAttributesSchema.optional().describe(
    `Messaging for In-App and Web: JSON mapping customer fields (${routableFields.join(", ")}) to the deployment's pre-chat field names; default {"firstName":"_firstName","lastName":"_lastName","email":"_email","subject":"_subject"}`,
  ),
  SALESFORCE_CHAT_URL: z
    .url({ protocol: /^https?$/ })
    .optional()
    .describe("legacy Chat: the org's Chat API endpoint, https://<host>/chat/rest"),
  SALESFORCE_DEPLOYMENT_ID: z.string().min(1).optional().describe("legacy Chat: the chat deployment's id (572…)"),
  SALESFORCE_BUTTON_ID: z.string().min(1).optional().describe("legacy Chat: the chat button's id (573…)"),
  SALESFORCE_API_VERSION: z.coerce
    .number()
    .int()
    .min(37)
    .default(60)
    .describe("legacy Chat: the X-LIVEAGENT-API-VERSION sent"),
  SALESFORCE_TIMEOUT_MS: z.coerce
    .number()
    .int()
    .positive()
    .default(10_000)
    .describe("timeout of each Salesforce request (not of the event stream, which stays open)"),
});

export type SalesforceConfig = z.output<typeof SalesforceConfigSchema>;

export const salesforceSecrets = [] as const;
