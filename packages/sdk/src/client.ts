import { resultsRequestJson } from "./blocks.ts";
import { type FollowedLine, type FollowOptions, followLines, type Retryable } from "./follow.ts";
import { bodyLines } from "./lines.ts";
import type {
  Account,
  ApiKey,
  Chunk,
  ChunkConsoleEvent,
  ChunkStatus,
  CloneChanges,
  HeartbeatRequest,
  HeartbeatResponse,
  LeaderboardEntry,
  LeaseRequest,
  LeaseResponse,
  LifecycleAction,
  NewTask,
  Problem,
  ReleaseResponse,
  ResultLine,
  ResultReport,
  ResultsResponse,
  RunningChunk,
  Session,
  SiteStats,
  StreamTicket,
  Task,
  TaskEvent,
  Throughput,
  Volunteer,
  VolunteerFigures,
} from "./types.ts";

/** A request body that is JSON text already: sent as it is. */
class JsonText {
  readonly text: string;
  constructor(text: string) {
    this.text = text;
  }
}

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

  async function send(method: string, path: string, body?: unknown, extraHeaders: Record<string, string> = {}, init: { keepalive?: boolean; signal?: AbortSignal } = {}): Promise<Response> {
    const headers: Record<string, string> = { ...extraHeaders };
    if (options.token) headers.authorization = `Bearer ${options.token}`;
    if (body !== undefined) headers["content-type"] = "application/json";
    const response = await doFetch(`${baseUrl}${path}`, {
      method,
      headers,
      ...(body !== undefined ? { body: body instanceof JsonText ? body.text : JSON.stringify(body) } : {}),
      ...init,
    });
    if (!response.ok) throw new ApiError(await problemOf(response));
    return response;
  }

  // A follow is asked again after a network fault or a server error; a refusal (4xx) is final.
  const followRetryable: Retryable = (error) => ({
    retry: error instanceof ApiError ? error.status >= 500 || error.status === 408 || error.status === 429 : error instanceof TypeError,
  });
  const followResults = (id: string, format: "ndjson" | "csv", follow: FollowOptions) =>
    followLines(
      async (start, signal) => {
        const query = new URLSearchParams({ follow: "true" });
        if (format === "csv") query.set("format", "csv");
        if (start.after !== undefined) query.set("after", start.after);
        else if (start.from === "now") query.set("from", "now");
        const headers: Record<string, string> = options.token ? { authorization: `Bearer ${options.token}` } : {};
        const response = await doFetch(`${baseUrl}/api/tasks/${encodeURIComponent(id)}/results?${query}`, { headers, signal });
        if (!response.ok) throw new ApiError(await problemOf(response));
        return response;
      },
      format,
      followRetryable,
      follow,
    );

  /** One connection to the task's event stream, until the task ends (or the connection does). */
  async function* taskEventStream(id: string, { signal, console: from, consoleAfter }: { signal?: AbortSignal; console?: "all" | "new"; consoleAfter?: string } = {}): AsyncGenerator<TaskEvent> {
    const headers: Record<string, string> = { accept: "text/event-stream" };
    if (options.token) headers.authorization = `Bearer ${options.token}`;
    const query = new URLSearchParams();
    if (consoleAfter !== undefined) query.set("consoleAfter", consoleAfter);
    else if (from === "all") query.set("console", "all");
    const suffix = query.size > 0 ? `?${query}` : "";
    const response = await doFetch(`${baseUrl}/api/tasks/${encodeURIComponent(id)}/events${suffix}`, { headers, ...(signal ? { signal } : {}) });
    if (!response.ok) throw new ApiError(await problemOf(response));
    for await (const event of sseEvents(response)) {
      if (event.event === "progress") yield { type: "progress", task: JSON.parse(event.data) as Task };
      else if (event.event === "chunks") yield { type: "chunks", items: (JSON.parse(event.data) as { items: RunningChunk[] }).items };
      else if (event.event === "console") yield { type: "console", console: JSON.parse(event.data) as ChunkConsoleEvent };
      else if (event.event === "end") return;
    }
  }

  const json = async <T>(method: string, path: string, body?: unknown, headers?: Record<string, string>, init?: { keepalive?: boolean; signal?: AbortSignal }): Promise<T> =>
    (await (await send(method, path, body, headers, init)).json()) as T;
  const idempotency = (key: string | undefined) => (key ? { "idempotency-key": key } : undefined);

  return {
    /** The same client, acting with another token. */
    withToken: (token: string) => createClient({ ...options, token }),

    /** Creates a creator account; `name` is what volunteers see as the creator of its tasks. */
    register: (email: string, password: string, name?: string) => json<Session>("POST", "/api/auth/register", name === undefined ? { email, password } : { email, password, name }),
    login: (email: string, password: string) => json<Session>("POST", "/api/auth/login", { email, password }),
    createVolunteer: (name?: string) => json<{ token: string; volunteer: Volunteer }>("POST", "/api/volunteers", name ? { name } : {}),
    /** Makes the anonymous volunteer of `volunteerToken` the signed-in account's; answers its new token (the old one keeps working). */
    linkVolunteer: (volunteerToken: string) => json<{ token: string; volunteer: Volunteer }>("POST", "/api/volunteers/link", { token: volunteerToken }),

    createTask: async (task: NewTask) => (await json<{ task: Task }>("POST", "/api/tasks", task)).task,
    getTask: async (id: string) => (await json<{ task: Task }>("GET", `/api/tasks/${encodeURIComponent(id)}`)).task,
    listTasks: (page: { cursor?: string; limit?: number } = {}) => {
      const query = new URLSearchParams();
      if (page.cursor) query.set("cursor", page.cursor);
      if (page.limit) query.set("limit", String(page.limit));
      const suffix = query.size > 0 ? `?${query}` : "";
      return json<{ items: Task[]; nextCursor: string | null }>("GET", `/api/tasks${suffix}`);
    },
    /** Gives every failed chunk a fresh set of attempts; a finished task runs again. `reopened`: how many. */
    retryFailed: (id: string) => json<{ task: Task; reopened: number }>("POST", `/api/tasks/${encodeURIComponent(id)}/retry-failed`),
    /** A new draft with the same inputs; code, name and options are the source's unless `change` gives them. */
    cloneTask: async (id: string, change: CloneChanges = {}) => (await json<{ task: Task }>("POST", `/api/tasks/${encodeURIComponent(id)}/clone`, change)).task,
    /** Chunks done over the task's whole life, in buckets, for charts. */
    taskThroughput: (id: string) => json<Throughput>("GET", `/api/tasks/${encodeURIComponent(id)}/throughput`),
    /** Deletes a task with its inputs and results. */
    deleteTask: async (id: string): Promise<void> => {
      await send("DELETE", `/api/tasks/${encodeURIComponent(id)}`);
    },
    taskAction: async (id: string, action: LifecycleAction) => (await json<{ task: Task }>("POST", `/api/tasks/${encodeURIComponent(id)}/${action}`)).task,
    /**
     * The final chunks in index order, one line at a time, never the whole download in memory.
     * With `follow: true`: every chunk as it is decided (in the order decided), until the task
     * ends, each line once, resuming by itself after a dropped connection; each line carries
     * its `cursor`, which `after` takes to resume a follow later.
     * @example
     * for await (const r of client.results(id, { follow: true })) console.log(r.index, r.status);
     */
    async *results(id: string, options: { follow?: boolean } & FollowOptions = {}): AsyncGenerator<ResultLine> {
      if (options.follow) {
        for await (const { line } of followResults(id, "ndjson", options)) yield JSON.parse(line) as ResultLine;
        return;
      }
      const response = await send("GET", `/api/tasks/${encodeURIComponent(id)}/results`);
      for await (const line of ndjsonLines(response)) yield JSON.parse(line) as ResultLine;
    },
    /**
     * A follow's raw lines as the server wrote them (NDJSON, or CSV rows with a last `cursor`
     * column; the header is left out), each with its cursor, resumed after dropped connections.
     */
    followResultLines: (id: string, format: "ndjson" | "csv" = "ndjson", options: FollowOptions = {}): AsyncGenerator<FollowedLine> => followResults(id, format, options),
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
     * nor `range`. `offset` must equal the task's current input count, else 409,
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
     * Leases blocks of chunks, sized to keep the volunteer busy for `bufferMs`. Retrying a
     * request whose answer was lost with the same `idempotencyKey` returns the blocks the
     * first attempt got instead of leasing more. With `request.waitMs` the server may hold the
     * request until work comes (up to 25 s); `signal` gives up waiting (the page's Pause).
     */
    lease: async (request: LeaseRequest, { idempotencyKey, signal }: { idempotencyKey?: string; signal?: AbortSignal } = {}) =>
      json<LeaseResponse>("POST", "/api/work/lease", request, idempotency(idempotencyKey), signal ? { signal } : {}),
    /**
     * Reports results and errors per block (a block may be reported in parts; an offset
     * reported again changes nothing); `next` leases the following blocks in the same round
     * trip, and `idempotencyKey` applies to it. A report may carry its results as JSON text
     * (`resultTexts`, see `BlockReportTexts`): they go out as they are.
     */
    submitResults: (reports: ResultReport[], next?: LeaseRequest, { idempotencyKey }: { idempotencyKey?: string } = {}) =>
      json<ResultsResponse>("POST", "/api/work/results", new JsonText(resultsRequestJson(reports, next)), idempotency(idempotencyKey)),
    /** A task's name, description and creator (display name and id), for the volunteer computing it. */
    taskSummary: (id: string) => json<{ id: string; name: string; description: string; creator: string | null; creatorId: string }>("GET", `/api/tasks/${encodeURIComponent(id)}/summary`),
    /** The calling volunteer's own figures (a volunteer token). */
    volunteerFigures: () => json<VolunteerFigures>("GET", "/api/volunteers/me"),
    /** Renames the calling volunteer (a volunteer token); an account's display name, if any, still stands for it on the leaderboard. */
    renameVolunteer: (name: string) => json<VolunteerFigures>("PATCH", "/api/volunteers/me", { name }),
    /** Sets the signed-in account's display name: the creator volunteers see, and the leaderboard name of its volunteers. */
    setDisplayName: async (name: string) => (await json<{ user: Session["user"] }>("PATCH", "/api/auth/me", { name })).user,
    /**
     * Keeps leases alive while their chunks run; says which were lost or cancelled. `progress`
     * and `checkpoints` (by lease id, each one of `leaseIds`) carry what chunks reported since
     * the last beat: their latest `ctx.progress` and `ctx.checkpoint` state.
     */
    heartbeat: (leaseIds: string[], extra: Pick<HeartbeatRequest, "progress" | "checkpoints"> = {}) => json<HeartbeatResponse>("POST", "/api/work/heartbeat", { leaseIds, ...extra }),
    /** Gives blocks back before their deadline (a paused volunteer): their unreported chunks go to others at once. */
    /**
     * Gives leases back before their deadline; `leaseRequestKey`, the Idempotency-Key of a lease
     * request whose answer will not be read, gives back what it got (or voids it, if it has not
     * arrived). `keepalive` lets the request outlive the page that sends it (a closing tab); the
     * browser caps such bodies at 64 KiB.
     */
    release: async (leaseIds: string[], { keepalive = false, leaseRequestKey }: { keepalive?: boolean; leaseRequestKey?: string } = {}) =>
      json<ReleaseResponse>("POST", "/api/work/release", { leaseIds, ...(leaseRequestKey === undefined ? {} : { leaseRequestKey }) }, {}, keepalive ? { keepalive } : {}),

    config: () => json<{ sandboxOrigin: string }>("GET", "/api/config"),
    health: () => json<{ status: "ok"; db: "ok" }>("GET", "/api/health"),

    /** Mints an API key for scripts (needs a signed-in session, not a key). `key` is shown only here. */
    createApiKey: (name?: string) => json<{ key: string; apiKey: ApiKey }>("POST", "/api/keys", name ? { name } : {}),
    listApiKeys: async () => (await json<{ items: ApiKey[] }>("GET", "/api/keys")).items,
    revokeApiKey: async (id: string) => {
      await send("DELETE", `/api/keys/${encodeURIComponent(id)}`);
    },

    stats: () => json<SiteStats>("GET", "/api/stats"),
    leaderboard: async (limit?: number) => (await json<{ items: LeaderboardEntry[] }>("GET", `/api/leaderboard${limit ? `?limit=${limit}` : ""}`)).items,
    /** Admin: accounts, newest first; `status: "pending"` lists creators waiting for approval. */
    listAccounts: (query: { status?: "pending" | "suspended"; cursor?: string; limit?: number } = {}) => {
      const params = new URLSearchParams();
      for (const [k, v] of Object.entries(query)) if (v !== undefined) params.set(k, String(v));
      return json<{ items: Account[]; nextCursor: string | null }>("GET", `/api/admin/users${params.size > 0 ? `?${params}` : ""}`);
    },
    /** Admin: approve a creator, or suspend one (its running tasks are paused), or lift a suspension. */
    accountAction: (userId: string, action: "approve" | "suspend" | "unsuspend") => json<{ ok: true; pausedTasks?: string[] }>("POST", `/api/admin/users/${encodeURIComponent(userId)}/${action}`),
    /** A 60 s ticket for `?ticket=` on event streams, for EventSource (which sends no headers). */
    streamTicket: () => json<StreamTicket>("POST", "/api/tickets", {}),
    /**
     * The task's live progress: yields the task each time it changes (at most every 500 ms),
     * and returns after the last one, when the task ends. `signal` stops it early.
     */
    async *taskEvents(id: string, signal?: AbortSignal): AsyncGenerator<Task> {
      for await (const event of taskEventStream(id, { ...(signal ? { signal } : {}) })) if (event.type === "progress") yield event.task;
    },
    /**
     * Everything the task's event stream says, until the task ends: the task as it changes
     * (`progress`), the chunks volunteers are computing now with their latest progress
     * (`chunks`), and each chunk's console output as it is stored (`console`: from now on;
     * `console: "all"` from the first, `consoleAfter` after a cursor an earlier event carried).
     * Text is as volunteers sent it, control characters included (a page shows it as text);
     * pass it through `escapeControlChars` before printing it on a terminal, or use a job's
     * events, which do.
     */
    taskEventStream: (id: string, streamOptions: { signal?: AbortSignal; console?: "all" | "new"; consoleAfter?: string } = {}) => taskEventStream(id, streamOptions),
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
  for await (const crlf of bodyLines(response, "drop")) {
    const line = crlf.replace(/\r$/, "");
    if (line === "") {
      if (data.length > 0) yield { event, data: data.join("\n") };
      event = "message";
      data = [];
    } else if (line.startsWith("event:")) event = line.slice(6).trim();
    else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
  }
}

/** The non-blank lines of an NDJSON body; a last line without a break counts. */
async function* ndjsonLines(response: Response): AsyncGenerator<string> {
  for await (const line of bodyLines(response, "yield")) if (line.trim()) yield line;
}
