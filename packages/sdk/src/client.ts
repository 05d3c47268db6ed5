import type {
  Account,
  ApiKey,
  Chunk,
  ChunkReport,
  ChunkStatus,
  HeartbeatResponse,
  VolunteerFigures,
  LeaderboardEntry,
  SiteStats,
  StreamTicket,
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

  async function send(method: string, path: string, body?: unknown, extraHeaders: Record<string, string> = {}): Promise<Response> {
    const headers: Record<string, string> = { ...extraHeaders };
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

  const json = async <T>(method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<T> =>
    (await (await send(method, path, body, headers)).json()) as T;
  const idempotency = (key: string | undefined) => (key ? { "idempotency-key": key } : undefined);

  return {
    /** The same client, acting with another token. */
    withToken: (token: string) => createClient({ ...options, token }),

    /** Creates a creator account; `name` is what volunteers see as the creator of its tasks. */
    register: (email: string, password: string, name?: string) =>
      json<Session>("POST", "/api/auth/register", name === undefined ? { email, password } : { email, password, name }),
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
    /** Gives every failed chunk a fresh set of attempts; a finished task runs again. */
    retryFailed: async (id: string) => (await json<{ task: Task }>("POST", `/api/tasks/${encodeURIComponent(id)}/retry-failed`)).task,
    /** A new draft with the same inputs and options, optionally with new code. */
    cloneTask: async (id: string, change: { code?: string } = {}) =>
      (await json<{ task: Task }>("POST", `/api/tasks/${encodeURIComponent(id)}/clone`, change)).task,
    /** Deletes a task with its inputs and results. */
    deleteTask: async (id: string): Promise<void> => {
      await send("DELETE", `/api/tasks/${encodeURIComponent(id)}`);
    },
    taskAction: async (id: string, action: LifecycleAction) =>
      (await json<{ task: Task }>("POST", `/api/tasks/${encodeURIComponent(id)}/${action}`)).task,
    /** The final chunks in index order, one line at a time, never the whole download in memory. */
    async *results(id: string): AsyncGenerator<ResultLine> {
      const response = await send("GET", `/api/tasks/${encodeURIComponent(id)}/results`);
      for await (const line of ndjsonLines(response)) yield JSON.parse(line) as ResultLine;
    },
    /**
     * A page of the task's chunks in index order, with attempts, votes and errors; `status`
     * keeps one kind. Pass `nextCursor` back as `cursor` until it is null (a filtered page
     * may be short before the end).
     */
    listChunks: (id: string, page: { status?: ChunkStatus; cursor?: string; limit?: number } = {}) => {
      const query = new URLSearchParams();
      for (const [key, value] of Object.entries(page)) if (value !== undefined) query.set(key, String(value));
      const suffix = query.size > 0 ? `?${query}` : "";
      return json<{ items: Chunk[]; nextCursor: string | null }>("GET", `/api/tasks/${encodeURIComponent(id)}/chunks${suffix}`);
    },
    /**
     * The results download as raw text lines, streamed. Asks for `format`; `sent` says what
     * the server actually sent (a server without `?format=csv` answers NDJSON), so callers
     * can convert.
     */
    resultLines: async (id: string, format: "ndjson" | "csv" = "ndjson") => {
      const query = format === "csv" ? "?format=csv" : "";
      const response = await send("GET", `/api/tasks/${encodeURIComponent(id)}/results${query}`);
      const sent: "ndjson" | "csv" = /^text\/csv\b/i.test(response.headers.get("content-type") ?? "") ? "csv" : "ndjson";
      return { sent, lines: ndjsonLines(response) };
    },
    /**
     * Appends NDJSON inputs (one JSON value per line) to a task created with neither `inputs`
     * nor `range` (DESIGN §4). `offset` must equal the task's current input count, else 409,
     * so a retried part never duplicates; `seal` ends the inputs.
     */
    appendInputs: async (id: string, ndjson: string, { offset, seal = false }: { offset: number; seal?: boolean }) => {
      const headers: Record<string, string> = { "content-type": "application/x-ndjson" };
      if (options.token) headers.authorization = `Bearer ${options.token}`;
      const query = `?offset=${offset}${seal ? "&seal=true" : ""}`;
      const response = await doFetch(`${baseUrl}/api/tasks/${encodeURIComponent(id)}/inputs${query}`, { method: "POST", headers, body: ndjson });
      if (!response.ok) throw new ApiError(await problemOf(response));
      return (await response.json()) as { total: number; sealed: boolean };
    },
    taskCode: async (id: string) => (await send("GET", `/api/tasks/${encodeURIComponent(id)}/code`)).text(),
    /** The task's WebAssembly module (404 `ApiError` when it has none). Check its sha256 before use. */
    taskWasm: async (id: string) => new Uint8Array(await (await send("GET", `/api/tasks/${encodeURIComponent(id)}/wasm`)).arrayBuffer()),

    /**
     * Leases chunks. Retrying a request whose answer was lost with the same `idempotencyKey`
     * returns the leases the first attempt got instead of leasing more.
     */
    lease: (request: LeaseRequest, { idempotencyKey }: { idempotencyKey?: string } = {}) =>
      json<LeaseResponse>("POST", "/api/work/lease", request, idempotency(idempotencyKey)),
    /** Posts results (idempotent per lease); `idempotencyKey` applies to the `next` lease. */
    submitResults: (results: ChunkReport[], next?: LeaseRequest, { idempotencyKey }: { idempotencyKey?: string } = {}) =>
      json<SubmitResponse>("POST", "/api/work/results", next ? { results, next } : { results }, idempotency(idempotencyKey)),
    /** A task's name, description and creator (display name and id), for the volunteer computing it. */
    taskSummary: (id: string) =>
      json<{ id: string; name: string; description: string; creator: string | null; creatorId: string }>("GET", `/api/tasks/${encodeURIComponent(id)}/summary`),
    /** The calling volunteer's own figures (a volunteer token). */
    volunteerFigures: () => json<VolunteerFigures>("GET", "/api/volunteers/me"),
    /** Keeps leases alive while their chunks run; says which were lost or cancelled. */
    heartbeat: (leaseIds: string[]) => json<HeartbeatResponse>("POST", "/api/work/heartbeat", { leaseIds }),

    config: () => json<{ sandboxOrigin: string }>("GET", "/api/config"),
    health: () => json<{ status: "ok"; db: "ok" }>("GET", "/api/health"),

    /** Mints an API key for scripts (needs a signed-in session, not a key). `key` is shown only here. */
    createApiKey: (name?: string) => json<{ key: string; apiKey: ApiKey }>("POST", "/api/keys", name ? { name } : {}),
    listApiKeys: async () => (await json<{ items: ApiKey[] }>("GET", "/api/keys")).items,
    revokeApiKey: async (id: string) => {
      await send("DELETE", `/api/keys/${encodeURIComponent(id)}`);
    },

    stats: () => json<SiteStats>("GET", "/api/stats"),
    leaderboard: async (limit?: number) =>
      (await json<{ items: LeaderboardEntry[] }>("GET", `/api/leaderboard${limit ? `?limit=${limit}` : ""}`)).items,
    /** Admin: accounts, newest first; `status: "pending"` lists creators waiting for approval. */
    listAccounts: (query: { status?: "pending" | "suspended"; cursor?: string; limit?: number } = {}) => {
      const params = new URLSearchParams();
      for (const [k, v] of Object.entries(query)) if (v !== undefined) params.set(k, String(v));
      return json<{ items: Account[]; nextCursor: string | null }>("GET", `/api/admin/users${params.size > 0 ? `?${params}` : ""}`);
    },
    /** Admin: approve a creator, or suspend one (its running tasks are paused), or lift a suspension. */
    accountAction: (userId: string, action: "approve" | "suspend" | "unsuspend") =>
      json<{ ok: true; pausedTasks?: string[] }>("POST", `/api/admin/users/${encodeURIComponent(userId)}/${action}`),
    /** A 60 s ticket for `?ticket=` on event streams, for EventSource (which sends no headers). */
    streamTicket: () => json<StreamTicket>("POST", "/api/tickets", {}),
    /**
     * The task's live progress: yields the task each time it changes (at most every 500 ms),
     * and returns after the last one, when the task ends. `signal` stops it early.
     */
    async *taskEvents(id: string, signal?: AbortSignal): AsyncGenerator<Task> {
      const headers: Record<string, string> = { accept: "text/event-stream" };
      if (options.token) headers.authorization = `Bearer ${options.token}`;
      const response = await doFetch(`${baseUrl}/api/tasks/${encodeURIComponent(id)}/events`, { headers, ...(signal ? { signal } : {}) });
      if (!response.ok) throw new ApiError(await problemOf(response));
      for await (const event of sseEvents(response)) {
        if (event.event === "progress") yield JSON.parse(event.data) as Task;
        if (event.event === "end") return;
      }
    },
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

/** Server-Sent Events from a fetch response (WHATWG format: `event:`/`data:` lines, blank line ends one). */
async function* sseEvents(response: Response): AsyncGenerator<{ event: string; data: string }> {
  let event = "message";
  let data: string[] = [];
  for await (const line of textLines(response)) {
    if (line === "") {
      if (data.length > 0) yield { event, data: data.join("\n") };
      event = "message";
      data = [];
    } else if (line.startsWith("event:")) event = line.slice(6).trim();
    else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
  }
}

async function* textLines(response: Response): AsyncGenerator<string> {
  if (!response.body) return;
  const decoder = new TextDecoder();
  let buffered = "";
  for await (const bytes of response.body as unknown as AsyncIterable<Uint8Array>) {
    buffered += decoder.decode(bytes, { stream: true });
    let newline: number;
    while ((newline = buffered.indexOf("\n")) >= 0) {
      yield buffered.slice(0, newline).replace(/\r$/, "");
      buffered = buffered.slice(newline + 1);
    }
  }
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
