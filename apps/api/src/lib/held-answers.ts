// A waiting lease request's answer, held on Node without a web stream (docs/architecture.md,
// "Dispatch", waiting volunteers): the handler leaves a HeldBody here, keyed by the node
// response; the Node server writes the headers at once and the body when the handler gives it.
// Where no node response is at hand (app.request, tests) the handler streams the body instead.

/** What @hono/node-server passes as the bindings (`c.env`): the node request and response. */
export interface NodeResponse {
  once(event: "close", listener: () => void): unknown;
  end(text: string): unknown;
  readonly destroyed: boolean;
  readonly writableFinished: boolean;
}

/**
 * A response body that comes after its headers: `send` may come before or after `attach`
 * (the headers written); the body goes once both have.
 */
export class HeldBody {
  private text: string | null = null;
  private outgoing: NodeResponse | null = null;

  /** The headers are written: the body goes to `outgoing` when it is given. */
  attach(outgoing: NodeResponse): void {
    this.outgoing = outgoing;
    this.flush();
  }

  /** The body, once. */
  send(text: string): void {
    this.text = text;
    this.flush();
  }

  private flush(): void {
    const { outgoing, text } = this;
    if (!outgoing || text === null) return;
    this.outgoing = null;
    this.text = null;
    if (!outgoing.destroyed) outgoing.end(text);
  }
}

const held = new WeakMap<object, HeldBody>();

/** The node response under this request's bindings, if the Node server serves it. */
export function nodeResponseOf(bindings: unknown): NodeResponse | undefined {
  const outgoing = (bindings as { outgoing?: NodeResponse } | undefined)?.outgoing;
  return outgoing && typeof outgoing.once === "function" ? outgoing : undefined;
}

/** Leaves `body` for `outgoing`'s response, which the handler answers with no body. */
export function holdAnswer(outgoing: NodeResponse, body: HeldBody): void {
  held.set(outgoing, body);
}

/** The held body of `outgoing`'s response (once: it is taken). */
export function takeHeldAnswer(outgoing: object): HeldBody | undefined {
  const body = held.get(outgoing);
  if (body) held.delete(outgoing);
  return body;
}
