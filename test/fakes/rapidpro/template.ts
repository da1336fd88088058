/**
 * A small port of goflow's Excellent templates, enough to evaluate broadcast text the way mailroom does
 * (`Expressions: true` with `contact`, `fields`, `globals` and `urns` in scope).
 *
 * The scanner is a faithful port of `goflow excellent/scanner.go` and the segment rules follow
 * `excellent/template.go`: `@@` is a literal `@`; `@identifier` whose top level is not in the context stays literal
 * text (an e-mail address); an expression that errors (unknown property, bad syntax) contributes nothing; `@(`
 * without its closing `)` is literal text. The expression language inside `@(…)` is a subset: literals, context
 * paths, `& + - * / ^`, comparisons, and a handful of text functions (see FUNCTIONS).
 */

export class XError {
  constructor(readonly message: string) {}
}

/** A context object: case-insensitive properties plus the text it shows as `@thing`. */
export class XObject {
  readonly props = new Map<string, XValue>();

  constructor(
    props: Record<string, XValue>,
    readonly defaultText: string,
  ) {
    for (const [key, value] of Object.entries(props)) this.props.set(key.toLowerCase(), value);
  }
}

export type XValue = string | number | boolean | null | XObject | XValue[] | XError;

type Token =
  { kind: "body"; text: string } | { kind: "identifier"; text: string } | { kind: "expression"; text: string };

const isIdentifierChar = (ch: string): boolean => /[\p{L}\p{N}._]/u.test(ch);

/** `NewXScanner` + `Scan` until EOF, with `@@` unescaped in body text. */
export function scanTemplate(src: string): Token[] {
  const chars = [...src];
  let pos = 0;
  const pending: string[] = [];
  const read = (): string | undefined => (pending.length > 0 ? pending.pop() : chars[pos++]);
  const unread = (ch: string): void => {
    pending.push(ch);
  };
  const tokens: Token[] = [];

  const scanExpression = (): Token => {
    let buf = "";
    let parens = 1;
    for (let ch = read(); ch !== undefined; ch = read()) {
      if (ch === "(") {
        buf += ch;
        parens += 1;
      } else if (ch === ")") {
        parens -= 1;
        if (parens === 0) break;
        buf += ch;
      } else {
        buf += ch;
      }
    }
    return parens === 0 ? { kind: "expression", text: buf } : { kind: "body", text: `@(${buf}` };
  };

  const scanIdentifier = (): Token => {
    let buf = "";
    for (let ch = read(); ch !== undefined; ch = read()) {
      if (isIdentifierChar(ch)) {
        buf += ch;
      } else {
        unread(ch);
        break;
      }
    }
    if (buf.length > 1 && buf.endsWith(".")) {
      unread(".");
      buf = buf.slice(0, -1);
    }
    return { kind: "identifier", text: buf };
  };

  const scanBody = (): Token => {
    let buf = "";
    for (let ch = read(); ch !== undefined; ch = read()) {
      if (ch === "@") {
        const peek = read();
        if (peek === "(") {
          unread(peek);
          unread("@");
          break;
        } else if (peek === "@") {
          buf += "@";
        } else if (peek !== undefined && isIdentifierChar(peek)) {
          unread(peek);
          unread("@");
          break;
        } else if (peek === undefined) {
          buf += "@";
        } else {
          buf += `@${peek}`;
        }
      } else {
        buf += ch;
      }
    }
    return { kind: "body", text: buf };
  };

  for (let ch = read(); ch !== undefined; ch = read()) {
    if (ch === "@") {
      const peek = read();
      if (peek === "(") {
        tokens.push(scanExpression());
        continue;
      }
      if (peek === "@") {
        unread("@");
        unread("@");
      } else if (peek !== undefined && isIdentifierChar(peek)) {
        unread(peek);
        tokens.push(scanIdentifier());
        continue;
      } else {
        if (peek !== undefined) unread(peek);
        unread("@");
      }
      tokens.push(scanBody());
    } else {
      unread(ch);
      tokens.push(scanBody());
    }
  }
  return tokens;
}

/** Evaluates a template: the output text and the errors of the segments that failed (they output nothing). */
export function evaluateTemplate(src: string, context: XObject): { text: string; errors: string[] } {
  let text = "";
  const errors: string[] = [];
  for (const token of scanTemplate(src)) {
    if (token.kind === "body") {
      text += token.text;
      continue;
    }
    if (token.kind === "identifier") {
      const topLevel = (token.text.split(".")[0] ?? "").toLowerCase();
      if (!context.props.has(topLevel)) {
        text += `@${token.text}`;
        continue;
      }
    }
    let value: XValue;
    try {
      value = evaluateExpression(token.text, context);
    } catch (error) {
      value = new XError(error instanceof Error ? error.message : String(error));
    }
    if (value instanceof XError) {
      errors.push(`${token.kind === "identifier" ? `@${token.text}` : `@(${token.text})`}: ${value.message}`);
      continue;
    }
    const asText = toText(value);
    if (asText instanceof XError) errors.push(asText.message);
    else text += asText;
  }
  return { text, errors };
}

// ---------------------------------------------------------------------------------------------------------------
// Expressions

type Lexeme =
  { t: "num"; v: number } | { t: "str"; v: string } | { t: "name"; v: string } | { t: "op"; v: string } | { t: "end" };

function lex(src: string): Lexeme[] {
  const out: Lexeme[] = [];
  let i = 0;
  while (i < src.length) {
    const ch = src[i] ?? "";
    if (/\s/.test(ch)) {
      i += 1;
      continue;
    }
    if (/[0-9]/.test(ch)) {
      const m = /^[0-9]+(\.[0-9]+)?/.exec(src.slice(i));
      const text = m?.[0] ?? ch;
      out.push({ t: "num", v: Number(text) });
      i += text.length;
      continue;
    }
    if (ch === '"') {
      let value = "";
      i += 1;
      for (;;) {
        if (i >= src.length) throw new Error("unterminated string literal");
        const c = src[i] ?? "";
        if (c === "\\" && i + 1 < src.length) {
          const next = src[i + 1] ?? "";
          value += next === "n" ? "\n" : next;
          i += 2;
          continue;
        }
        if (c === '"') {
          if (src[i + 1] === '"') {
            value += '"';
            i += 2;
            continue;
          }
          i += 1;
          break;
        }
        value += c;
        i += 1;
      }
      out.push({ t: "str", v: value });
      continue;
    }
    if (/[\p{L}_]/u.test(ch)) {
      const m = /^[\p{L}_][\p{L}\p{N}_]*/u.exec(src.slice(i));
      const text = m?.[0] ?? ch;
      out.push({ t: "name", v: text });
      i += text.length;
      continue;
    }
    const two = src.slice(i, i + 2);
    if (["<=", ">=", "!=", "<>"].includes(two)) {
      out.push({ t: "op", v: two === "<>" ? "!=" : two });
      i += 2;
      continue;
    }
    if ("+-*/^&=<>(),.[]".includes(ch)) {
      out.push({ t: "op", v: ch });
      i += 1;
      continue;
    }
    throw new Error(`syntax error at ${ch}`);
  }
  out.push({ t: "end" });
  return out;
}

type Node =
  | { k: "lit"; v: XValue }
  | { k: "ref"; name: string }
  | { k: "prop"; obj: Node; name: string }
  | { k: "index"; obj: Node; index: Node }
  | { k: "call"; name: string; args: Node[] }
  | { k: "neg"; arg: Node }
  | { k: "bin"; op: string; left: Node; right: Node };

/** Precedence as in Excellent.g4: ^, then * /, then + -, then &, then < <= > >=, then = !=. */
const LEVELS: string[][] = [["=", "!="], ["<", "<=", ">", ">="], ["&"], ["+", "-"], ["*", "/"], ["^"]];

function parse(src: string): Node {
  const tokens = lex(src);
  let pos = 0;
  const peek = (): Lexeme => tokens[pos] ?? { t: "end" };
  const isOp = (v: string): boolean => {
    const tok = peek();
    return tok.t === "op" && tok.v === v;
  };
  const expect = (v: string): void => {
    if (!isOp(v)) throw new Error(`syntax error, expected ${v}`);
    pos += 1;
  };

  const parseLevel = (level: number): Node => {
    const ops = LEVELS[level];
    if (!ops) return parseUnary();
    let left = parseLevel(level + 1);
    for (;;) {
      const tok = peek();
      if (tok.t !== "op" || !ops.includes(tok.v)) return left;
      pos += 1;
      left = { k: "bin", op: tok.v, left, right: parseLevel(level + 1) };
    }
  };

  const parseUnary = (): Node => {
    if (isOp("-")) {
      pos += 1;
      return { k: "neg", arg: parseUnary() };
    }
    return parsePostfix(parseAtom());
  };

  const parsePostfix = (start: Node): Node => {
    let node = start;
    for (;;) {
      if (isOp(".")) {
        pos += 1;
        const tok = peek();
        if (tok.t === "name") node = { k: "prop", obj: node, name: tok.v };
        else if (tok.t === "num") node = { k: "prop", obj: node, name: String(tok.v) };
        else throw new Error("syntax error after .");
        pos += 1;
      } else if (isOp("[")) {
        pos += 1;
        const index = parseLevel(0);
        expect("]");
        node = { k: "index", obj: node, index };
      } else {
        return node;
      }
    }
  };

  const parseAtom = (): Node => {
    const tok = peek();
    pos += 1;
    if (tok.t === "num") return { k: "lit", v: tok.v };
    if (tok.t === "str") return { k: "lit", v: tok.v };
    if (tok.t === "name") {
      const lower = tok.v.toLowerCase();
      if (isOp("(")) {
        pos += 1;
        const args: Node[] = [];
        if (!isOp(")")) {
          args.push(parseLevel(0));
          while (isOp(",")) {
            pos += 1;
            args.push(parseLevel(0));
          }
        }
        expect(")");
        return { k: "call", name: lower, args };
      }
      if (lower === "true") return { k: "lit", v: true };
      if (lower === "false") return { k: "lit", v: false };
      if (lower === "null") return { k: "lit", v: null };
      return { k: "ref", name: lower };
    }
    if (tok.t === "op" && tok.v === "(") {
      const inner = parseLevel(0);
      expect(")");
      return inner;
    }
    throw new Error("syntax error");
  };

  const node = parseLevel(0);
  if (peek().t !== "end") throw new Error("syntax error, unexpected input");
  return node;
}

export function evaluateExpression(src: string, context: XObject): XValue {
  return evalNode(parse(src), context);
}

function lookup(value: XValue, name: string): XValue {
  if (value instanceof XError) return value;
  if (value instanceof XObject) {
    const key = name.toLowerCase();
    return value.props.has(key) ? (value.props.get(key) ?? null) : new XError(`object has no property '${name}'`);
  }
  if (Array.isArray(value) && /^\d+$/.test(name))
    return value[Number(name)] ?? new XError(`index ${name} out of range`);
  return new XError(`${toTextOrEmpty(value)} has no property '${name}'`);
}

function evalNode(node: Node, ctx: XObject): XValue {
  switch (node.k) {
    case "lit":
      return node.v;
    case "ref":
      return ctx.props.has(node.name)
        ? (ctx.props.get(node.name) ?? null)
        : new XError(`context has no property '${node.name}'`);
    case "prop":
      return lookup(evalNode(node.obj, ctx), node.name);
    case "index": {
      const index = evalNode(node.index, ctx);
      if (index instanceof XError) return index;
      return lookup(evalNode(node.obj, ctx), toTextOrEmpty(index));
    }
    case "neg": {
      const n = toNumber(evalNode(node.arg, ctx));
      return n instanceof XError ? n : -n;
    }
    case "bin":
      return binary(node.op, evalNode(node.left, ctx), evalNode(node.right, ctx));
    case "call": {
      const fn = FUNCTIONS[node.name];
      if (!fn) return new XError(`${node.name} is not a function`);
      return fn(node.args.map((arg) => evalNode(arg, ctx)));
    }
  }
}

function binary(op: string, left: XValue, right: XValue): XValue {
  if (left instanceof XError) return left;
  if (right instanceof XError) return right;
  if (op === "&") {
    const l = toText(left);
    const r = toText(right);
    if (l instanceof XError) return l;
    if (r instanceof XError) return r;
    return l + r;
  }
  if (op === "=" || op === "!=") {
    const ln = toNumber(left);
    const rn = toNumber(right);
    const equal =
      !(ln instanceof XError) && !(rn instanceof XError) ? ln === rn : toTextOrEmpty(left) === toTextOrEmpty(right);
    return op === "=" ? equal : !equal;
  }
  const l = toNumber(left);
  const r = toNumber(right);
  if (l instanceof XError) return l;
  if (r instanceof XError) return r;
  switch (op) {
    case "+":
      return l + r;
    case "-":
      return l - r;
    case "*":
      return l * r;
    case "/":
      return r === 0 ? new XError("division by zero") : l / r;
    case "^":
      return l ** r;
    case "<":
      return l < r;
    case "<=":
      return l <= r;
    case ">":
      return l > r;
    case ">=":
      return l >= r;
    default:
      return new XError(`unknown operator ${op}`);
  }
}

export function toText(value: XValue): string | XError {
  if (value instanceof XError) return value;
  if (value === null) return "";
  if (typeof value === "string") return value;
  if (typeof value === "boolean") return value ? "true" : "false";
  if (typeof value === "number") return formatNumber(value);
  if (value instanceof XObject) return value.defaultText;
  const parts: string[] = [];
  for (const item of value) {
    const text = toText(item);
    if (text instanceof XError) return text;
    parts.push(text);
  }
  return parts.join(", ");
}

function toTextOrEmpty(value: XValue): string {
  const text = toText(value);
  return text instanceof XError ? "" : text;
}

function toNumber(value: XValue): number | XError {
  if (value instanceof XError) return value;
  if (typeof value === "number") return value;
  if (value === null) return 0;
  const text = toText(value);
  if (text instanceof XError) return text;
  if (/^\s*-?\d+(\.\d+)?\s*$/.test(text)) return Number(text);
  return new XError(`unable to convert "${text}" to a number`);
}

function formatNumber(value: number): string {
  if (Number.isInteger(value)) return String(value);
  return String(Number(value.toFixed(10)));
}

function truthy(value: XValue): boolean {
  if (value === null || value === false || value === "" || value === 0) return false;
  if (Array.isArray(value)) return value.length > 0;
  return true;
}

function textArgs(args: XValue[], count: number): string[] | XError {
  if (args.length !== count) return new XError(`need ${count} argument(s), got ${args.length}`);
  const out: string[] = [];
  for (const arg of args) {
    const text = toText(arg);
    if (text instanceof XError) return text;
    out.push(text);
  }
  return out;
}

const words = (text: string): string[] => text.split(/[\s\p{P}]+/u).filter((w) => w !== "");

const FUNCTIONS: Record<string, (args: XValue[]) => XValue> = {
  upper: (args) => {
    const a = textArgs(args, 1);
    return a instanceof XError ? a : (a[0] ?? "").toUpperCase();
  },
  lower: (args) => {
    const a = textArgs(args, 1);
    return a instanceof XError ? a : (a[0] ?? "").toLowerCase();
  },
  title: (args) => {
    const a = textArgs(args, 1);
    if (a instanceof XError) return a;
    return (a[0] ?? "").replace(/\p{L}+/gu, (w) => w.charAt(0).toUpperCase() + w.slice(1).toLowerCase());
  },
  trim: (args) => {
    const a = textArgs(args, 1);
    return a instanceof XError ? a : (a[0] ?? "").trim();
  },
  text: (args) => {
    const a = textArgs(args, 1);
    return a instanceof XError ? a : (a[0] ?? "");
  },
  text_length: (args) => {
    const a = textArgs(args, 1);
    return a instanceof XError ? a : [...(a[0] ?? "")].length;
  },
  word: (args) => {
    if (args.length !== 2) return new XError("need 2 arguments");
    const text = toText(args[0] ?? null);
    const index = toNumber(args[1] ?? null);
    if (text instanceof XError) return text;
    if (index instanceof XError) return index;
    const list = words(text);
    return list[index < 0 ? list.length + index : index] ?? "";
  },
  word_count: (args) => {
    const a = textArgs(args, 1);
    return a instanceof XError ? a : words(a[0] ?? "").length;
  },
  left: (args) => {
    const text = toText(args[0] ?? null);
    const n = toNumber(args[1] ?? null);
    if (text instanceof XError) return text;
    if (n instanceof XError) return n;
    return [...text].slice(0, Math.max(0, n)).join("");
  },
  right: (args) => {
    const text = toText(args[0] ?? null);
    const n = toNumber(args[1] ?? null);
    if (text instanceof XError) return text;
    if (n instanceof XError) return n;
    const chars = [...text];
    return chars.slice(Math.max(0, chars.length - n)).join("");
  },
  replace: (args) => {
    const a = textArgs(args, 3);
    return a instanceof XError ? a : (a[0] ?? "").split(a[1] ?? "").join(a[2] ?? "");
  },
  default: (args) => {
    if (args.length !== 2) return new XError("need 2 arguments");
    const value = args[0] ?? null;
    return value instanceof XError || value === null || value === "" ? (args[1] ?? null) : value;
  },
  if: (args) => {
    if (args.length !== 3) return new XError("need 3 arguments");
    const test = args[0] ?? null;
    if (test instanceof XError) return test;
    return truthy(test) ? (args[1] ?? null) : (args[2] ?? null);
  },
  and: (args) => {
    for (const arg of args) {
      if (arg instanceof XError) return arg;
      if (!truthy(arg)) return false;
    }
    return true;
  },
  or: (args) => {
    for (const arg of args) {
      if (arg instanceof XError) return arg;
      if (truthy(arg)) return true;
    }
    return false;
  },
  not: (args) => {
    const arg = args[0] ?? null;
    return arg instanceof XError ? arg : !truthy(arg);
  },
};
