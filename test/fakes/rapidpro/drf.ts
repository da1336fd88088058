/**
 * Django REST framework's validation, as RapidPro's write serializers use it: field errors are collected in field
 * order (`{"field": ["msg"]}`, list items by index `{"field": {"0": [...]}}`, dict values by key), and only when
 * every field is valid does `validate()` run (its errors go under `non_field_errors`). The messages are DRF's.
 */
import { codePointLength, isPlainObject, pyLen, pyStr, pyTypeName } from "./util.js";

export type ErrorDetail = string[] | { [key: string]: ErrorDetail };

/** A field (or nested item) failed with `detail`. */
export class FieldError extends Error {
  constructor(readonly detail: ErrorDetail) {
    super(JSON.stringify(detail));
  }
}

/** The whole request failed with this DRF error body (status 400 unless given). */
export class ApiError extends Error {
  constructor(
    readonly body: unknown,
    readonly status = 400,
  ) {
    super(JSON.stringify(body));
  }
}

export const fail = (message: string): never => {
  throw new FieldError([message]);
};

export const MSG = {
  required: "This field is required.",
  null: "This field may not be null.",
  blank: "This field may not be blank.",
  notString: "Not a valid string.",
  notBoolean: "Must be a valid boolean.",
  nullChars: "Null characters are not allowed.",
  maxChars: (n: number) => `Ensure this field has no more than ${n} characters.`,
  maxItems: (n: number) => `Ensure this field has no more than ${n} elements.`,
  notList: (value: unknown) => `Expected a list of items but got type "${pyTypeName(value)}".`,
  notDict: (value: unknown) => `Expected a dictionary of items but got type "${pyTypeName(value)}".`,
  emptyDict: "This dictionary may not be empty.",
  choice: (value: unknown) => `"${pyStr(value)}" is not a valid choice.`,
  noSuchObject: (value: unknown) => `No such object: ${pyStr(value)}`,
  stringOrInteger: "Must be a string or integer",
};

export interface FieldSpec {
  name: string;
  required?: boolean;
  /** Relational fields turn "" into null before validation (DRF RelatedField.run_validation). */
  emptyIsNull?: boolean;
  allowNull?: boolean;
  parse: (value: unknown) => unknown;
}

/** `Serializer.to_internal_value`: runs every field; throws ApiError with all field errors when any failed. */
export function runFields(data: Record<string, unknown>, specs: FieldSpec[]): Record<string, unknown> {
  const { values, errors } = validateFields(data, specs);
  if (Object.keys(errors).length > 0) throw new ApiError(errors);
  return values;
}

/** The same for a nested serializer (a list item): its errors become the item's error dict. */
export function runNestedFields(data: Record<string, unknown>, specs: FieldSpec[]): Record<string, unknown> {
  const { values, errors } = validateFields(data, specs);
  if (Object.keys(errors).length > 0) throw new FieldError(errors);
  return values;
}

function validateFields(
  data: Record<string, unknown>,
  specs: FieldSpec[],
): { values: Record<string, unknown>; errors: Record<string, ErrorDetail> } {
  const values: Record<string, unknown> = {};
  const errors: Record<string, ErrorDetail> = {};
  for (const spec of specs) {
    if (!(spec.name in data)) {
      if (spec.required) errors[spec.name] = [MSG.required];
      continue;
    }
    let value = data[spec.name];
    if (spec.emptyIsNull && value === "") value = null;
    if (value === null) {
      if (spec.allowNull) values[spec.name] = null;
      else errors[spec.name] = [MSG.null];
      continue;
    }
    try {
      values[spec.name] = spec.parse(value);
    } catch (error) {
      if (!(error instanceof FieldError)) throw error;
      errors[spec.name] = error.detail;
    }
  }
  return { values, errors };
}

/** `validate()` failing: `{"non_field_errors": [message]}`. */
export function nonFieldError(message: string): never {
  throw new ApiError({ non_field_errors: [message] });
}

/** `serializers.CharField`: str/int/float only, trimmed, not blank, at most `maxLength` code points. */
export function charField(value: unknown, maxLength?: number, allowBlank = false): string {
  if (typeof value === "boolean" || !(typeof value === "string" || typeof value === "number")) fail(MSG.notString);
  const raw = pyStr(value);
  const text = raw.trim();
  if (text === "") {
    if (!allowBlank) fail(MSG.blank);
    return "";
  }
  const errors: string[] = [];
  if (maxLength !== undefined && codePointLength(text) > maxLength) errors.push(MSG.maxChars(maxLength));
  if (text.includes("\u0000")) errors.push(MSG.nullChars);
  if (errors.length > 0) throw new FieldError(errors);
  return text;
}

const TRUE_VALUES = new Set<unknown>([
  "t",
  "T",
  "y",
  "Y",
  "yes",
  "Yes",
  "YES",
  "true",
  "True",
  "TRUE",
  "on",
  "On",
  "ON",
  "1",
  1,
  true,
]);
const FALSE_VALUES = new Set<unknown>([
  "f",
  "F",
  "n",
  "N",
  "no",
  "No",
  "NO",
  "false",
  "False",
  "FALSE",
  "off",
  "Off",
  "OFF",
  "0",
  0,
  false,
]);

export function booleanField(value: unknown): boolean {
  if (TRUE_VALUES.has(value)) return true;
  if (FALSE_VALUES.has(value)) return false;
  return fail(MSG.notBoolean);
}

export function choiceField<T extends string>(value: unknown, choices: readonly T[]): T {
  const text = typeof value === "string" || typeof value === "number" || typeof value === "boolean" ? pyStr(value) : "";
  const match = choices.find((choice) => choice === text);
  if (match === undefined || isPlainObject(value) || Array.isArray(value)) fail(MSG.choice(value));
  return match as T;
}

/** `ListField`: a list (not str/dict), children validated by index, then the max_length validator. */
export function listField<T>(value: unknown, child: (item: unknown) => T, maxLength?: number): T[] {
  if (!Array.isArray(value)) fail(MSG.notList(value));
  const items = value as unknown[];
  const out: T[] = [];
  const errors: Record<string, ErrorDetail> = {};
  items.forEach((item, index) => {
    try {
      if (item === null) fail(MSG.null);
      out.push(child(item));
    } catch (error) {
      if (!(error instanceof FieldError)) throw error;
      errors[String(index)] = error.detail;
    }
  });
  if (Object.keys(errors).length > 0) throw new FieldError(errors);
  if (maxLength !== undefined && items.length > maxLength) fail(MSG.maxItems(maxLength));
  return out;
}

/**
 * RapidPro's `LimitedManyRelatedField` over a `TembaModelField`: the length check comes first (on anything with a
 * length, even a string), then "not a list" (a dict is iterated over its keys, as in Python), then each item is
 * looked up and the first failure is the field's error.
 */
export function manyRelatedField<T>(value: unknown, lookup: (item: unknown) => T, maxItems: number): T[] {
  const length = pyLen(value);
  if (length !== undefined && length > maxItems) fail(MSG.maxItems(maxItems));
  if (typeof value === "string" || !(Array.isArray(value) || isPlainObject(value))) fail(MSG.notList(value));
  const items: unknown[] = Array.isArray(value) ? value : Object.keys(value as Record<string, unknown>);
  return items.map((item) => lookup(item));
}

/** `TembaModelField.to_internal_value`: the value must be a str or an int (a bool is an int in Python). */
export function requireStringOrInteger(value: unknown): string {
  if (typeof value === "string") return value;
  if (typeof value === "boolean" || (typeof value === "number" && Number.isInteger(value))) return pyStr(value);
  return fail(MSG.stringOrInteger);
}

/** `DictField`: a dict, children validated by key; `allowEmpty` false gives "This dictionary may not be empty." */
export function dictField<T>(value: unknown, child: (item: unknown) => T, allowEmpty: boolean): Record<string, T> {
  if (!isPlainObject(value)) fail(MSG.notDict(value));
  const entries = Object.entries(value as Record<string, unknown>);
  if (!allowEmpty && entries.length === 0) fail(MSG.emptyDict);
  const out: Record<string, T> = {};
  const errors: Record<string, ErrorDetail> = {};
  for (const [key, item] of entries) {
    try {
      if (item === null) fail(MSG.null);
      out[key] = child(item);
    } catch (error) {
      if (!(error instanceof FieldError)) throw error;
      errors[key] = error.detail;
    }
  }
  if (Object.keys(errors).length > 0) throw new FieldError(errors);
  return out;
}
