import type {
  ChunkReport,
  LeaseRequest,
  LeaseResponse,
  LifecycleAction,
  NewTask,
  Problem,
  ResultLine,
  Session,
  SubmitResponse,
  Task,
  Volunteer,
} from "./types.ts";

/** A response that was not 2xx, with the server's problem details. */
export class ApiError extends Error {
  readonly status: number;
  readonly problem: Problem;

  constructor(problem: Problem) {
    super(`${problem.status} ${problem.title}: ${problem.detail}`);
    this.name = "ApiError";
    this.status = problem.status;
    this.problem = problem;
  }
}

export interface ClientOptions {
  /** The server, e.g. `http://localhost:8787`; empty for the page's own origin. */
  baseUrl?: string;
  /** A user, API-key or volunteer token. */
  token?: string;
  fetch?: typeof fetch;
}

/**
 * A typed client for the CrowdCompute HTTP API.
 * @example
 * const cc = createClient({ baseUrl: "http://localhost:8787" });
 * const { token } = await cc.register("me@example.com", "a long password");
 * const task = await cc.withToken(token).createTask({ name: "squares", code, inputs: [1, 2, 3], start: true });
 */
export function createClient(options: ClientOptions = {}) {
  const baseUrl = (options.baseUrl ?? "").replace(/\/$/, "");
  const doFetch = options.fetch ?? ((input: RequestInfo | URL, init?: RequestInit) => fetch(input, init));

  async function send(method: string, path: string, body?: unknown): Promise<Response> {
    const headers: Record<string, string> = {};
    if (options.token) headers.authorization = `Bearer ${options.token}`;
    if (body !== undefined) headers["content-type"] = "application/json";
    const response = await doFetch(`${baseUrl}${path}`, {
      method,
      headers,
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    if (!response.ok) throw new ApiError(await problemOf(response));
    return response;
  }

  const json = async <T>(method: string, path: string, body?: unknown): Promise<T> =>
    (await (await send(method, path, body)).json()) as T;

  return {
    /** The same client, acting with another token. */
    withToken: (token: string) => createClient({ ...options, token }),

    register: (email: string, password: string) => json<Session>("POST", "/api/auth/register", { email, password }),
    login: (email: string, password: string) => json<Session>("POST", "/api/auth/login", { email, password }),
    createVolunteer: (name?: string) =>
      json<{ token: string; volunteer: Volunteer }>("POST", "/api/volunteers", name ? { name } : {}),

    createTask: async (task: NewTask) => (await json<{ task: Task }>("POST", "/api/tasks", task)).task,
    getTask: async (id: string) => (await json<{ task: Task }>("GET", `/api/tasks/${encodeURIComponent(id)}`)).task,
    listTasks: (page: { cursor?: string; limit?: number } = {}) => {
      const query = new URLSearchParams();
      if (page.cursor) query.set("cursor", page.cursor);
      if (page.limit) query.set("limit", String(page.limit));
      const suffix = query.size > 0 ? `?${query}` : "";
      return json<{ items: Task[]; nextCursor: string | null }>("GET", `/api/tasks${suffix}`);
    },
    taskAction: async (id: string, action: LifecycleAction) =>
      (await json<{ task: Task }>("POST", `/api/tasks/${encodeURIComponent(id)}/${action}`)).task,
    /** The final chunks in index order, one line at a time, never the whole download in memory. */
    async *results(id: string): AsyncGenerator<ResultLine> {
      const response = await send("GET", `/api/tasks/${encodeURIComponent(id)}/results`);
      for await (const line of ndjsonLines(response)) yield JSON.parse(line) as ResultLine;
    },
    taskCode: async (id: string) => (await send("GET", `/api/tasks/${encodeURIComponent(id)}/code`)).text(),

    lease: (request: LeaseRequest) => json<LeaseResponse>("POST", "/api/work/lease", request),
    submitResults: (results: ChunkReport[], next?: LeaseRequest) =>
      json<SubmitResponse>("POST", "/api/work/results", next ? { results, next } : { results }),

    config: () => json<{ sandboxOrigin: string }>("GET", "/api/config"),
    health: () => json<{ status: "ok"; db: "ok" }>("GET", "/api/health"),
  };
}

export type Client = ReturnType<typeof createClient>;

async function problemOf(response: Response): Promise<Problem> {
  const text = await response.text();
  try {
    const parsed = JSON.parse(text) as Partial<Problem>;
    if (typeof parsed.title === "string") return { type: "about:blank", detail: "", status: response.status, ...parsed } as Problem;
  } catch {
    // not a problem document: describe the response instead
  }
  return { type: "about:blank", title: response.statusText || "Error", status: response.status, detail: text.slice(0, 500) };
}

async function* ndjsonLines(response: Response): AsyncGenerator<string> {
  if (!response.body) return;
  const decoder = new TextDecoder();
  let buffered = "";
  for await (const bytes of response.body as unknown as AsyncIterable<Uint8Array>) {
    buffered += decoder.decode(bytes, { stream: true });
    let newline: number;
    while ((newline = buffered.indexOf("\n")) >= 0) {
      const line = buffered.slice(0, newline);
      buffered = buffered.slice(newline + 1);
      if (line.trim()) yield line;
    }
  }
  buffered += decoder.decode();
  if (buffered.trim()) yield buffered;
}
