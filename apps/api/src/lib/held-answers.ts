// A waiting lease request's answer, held on Node without a web stream (docs/architecture.md,
// "Dispatch", waiting volunteers): the handler leaves the text's promise here, keyed by the
// node response, and the Node server writes the headers at once and the body when it comes.
// Where no node response is at hand (app.request, tests) the handler streams the body instead.

/** What @hono/node-server passes as the bindings (`c.env`): the node request and response. */
interface NodeResponse {
  once(event: "close", listener: () => void): unknown;
  readonly writableFinished: boolean;
}

const held = new WeakMap<object, Promise<string>>();

/** The node response under this request's bindings, if the Node server serves it. */
export function nodeResponseOf(bindings: unknown): NodeResponse | undefined {
  const outgoing = (bindings as { outgoing?: NodeResponse } | undefined)?.outgoing;
  return outgoing && typeof outgoing.once === "function" ? outgoing : undefined;
}

/** Leaves the body `text` will be for `outgoing`'s response, which the handler answers with no body. */
export function holdAnswer(outgoing: NodeResponse, text: Promise<string>): void {
  held.set(outgoing, text);
}

/** The held body of `outgoing`'s response (once: it is taken). */
export function takeHeldAnswer(outgoing: object): Promise<string> | undefined {
  const text = held.get(outgoing);
  if (text) held.delete(outgoing);
  return text;
}

/** An abort signal for the client going: its node response closes before it is finished. */
export function goneSignal(outgoing: NodeResponse): AbortSignal {
  const controller = new AbortController();
  outgoing.once("close", () => {
    if (!outgoing.writableFinished) controller.abort();
  });
  return controller.signal;
}
