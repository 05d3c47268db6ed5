import { z } from "zod";

const port = z.coerce.number().int().min(0).max(65535);
const flag = z.enum(["true", "false", "1", "0"]).transform((v) => v === "true" || v === "1");

const envSchema = z
  .object({
    DATABASE_URL: z.string().url().optional(),
    PORT: port.default(8787),
    SANDBOX_PORT: port.optional(),
    SANDBOX_ORIGIN: z.string().url().optional(),
    PUBLIC_URL: z.string().url().optional(),
    JWT_SECRET: z.string().min(32, "JWT_SECRET must be at least 32 characters").optional(),
    DATA_DIR: z.string().default("./data"),
    ADMIN_EMAIL: z.string().email().optional(),
    REQUIRE_CREATOR_APPROVAL: flag.default(false),
    /** Added to every lease deadline: how long a silent volunteer keeps its chunks (docs/architecture.md, "Dispatch"). */
    LEASE_GRACE_MS: z.coerce.number().int().min(0).default(30_000),
    /**
     * How long a block stays leased without a heartbeat: the page beats every 3 s while it holds
     * blocks, so four to five missed beats give a vanished volunteer's chunks back (docs/architecture.md, "Dispatch").
     */
    LEASE_SILENT_MS: z.coerce.number().int().min(1_000).default(15_000),
    /** How long a volunteer that got no work waits before asking again. */
    IDLE_RETRY_MS: z.coerce.number().int().min(100).default(2_000),
    /** Failed sign-ins allowed per account from one IP address (an IPv6 /64), and per address, in 15 minutes. */
    LOGIN_LIMIT_PER_ACCOUNT: z.coerce.number().int().min(1).default(10),
    LOGIN_LIMIT_PER_IP: z.coerce.number().int().min(1).default(50),
    /** Accounts created per IP address per hour. */
    REGISTER_LIMIT_PER_IP: z.coerce.number().int().min(1).default(30),
    /**
     * Anonymous volunteers minted (POST /api/volunteers) per network source in an hour and in
     * a day, and a signed-in account's per account in a day instead (docs/architecture.md,
     * "Minting volunteers"). Benches and tests from loopback raise them.
     */
    VOLUNTEER_MINT_PER_HOUR: z.coerce.number().int().min(1).default(10),
    VOLUNTEER_MINT_PER_DAY: z.coerce.number().int().min(1).default(20),
    VOLUNTEER_MINT_PER_ACCOUNT_PER_DAY: z.coerce.number().int().min(1).default(50),
    /** The operator's bearer token for GET /metrics; without it /metrics is not served (404). */
    METRICS_TOKEN: z.string().min(16, "METRICS_TOKEN must be at least 16 characters").optional(),
    /** On SIGTERM/SIGINT, how long requests in flight may take to finish before they are cut. */
    SHUTDOWN_TIMEOUT_MS: z.coerce.number().int().min(0).default(10_000),
    /**
     * Unreported chunks one volunteer may hold, and all anonymous volunteers of one network
     * source together; the threads and buffer a lease request may claim (docs/architecture.md,
     * "Bounds on what one volunteer holds"). A volunteer must hold at least one whole block of
     * the largest size (4096 chunks: an extra copy takes a first copy's block whole).
     */
    LEASE_HELD_PER_VOLUNTEER: z.coerce.number().int().min(4096).default(16_384),
    LEASE_HELD_PER_SOURCE: z.coerce.number().int().min(4096).default(65_536),
    LEASE_MAX_THREADS: z.coerce.number().int().min(1).max(256).default(64),
    LEASE_MAX_BUFFER_MS: z.coerce.number().int().min(1000).max(600_000).default(60_000),
    /**
     * Lease requests waiting for work (`waitMs`) in one process: of one network source's
     * anonymous volunteers, and in all; more are answered at once (docs/architecture.md,
     * "Dispatch", waiting volunteers). Loopback benches raise the first.
     */
    LEASE_WAITING_PER_SOURCE: z.coerce.number().int().min(1).default(256),
    LEASE_WAITING_MAX: z.coerce.number().int().min(1).default(20_000),
    /**
     * Lease requests that may wait and lease as they arrive, at once in one process; past it they
     * are answered at once, no work, to ask again in 0.25–1.25 s (docs/architecture.md, "Dispatch",
     * waiting volunteers).
     */
    LEASE_ARRIVING_MAX: z.coerce.number().int().min(1).default(64),
    /**
     * Addresses of reverse proxies whose X-Forwarded-For is believed (comma-separated, e.g.
     * `127.0.0.1,::1` behind a proxy on this machine). A request from elsewhere counts as its
     * socket's address (docs/architecture.md, "Bounds on what one caller holds").
     */
    TRUSTED_PROXIES: z
      .string()
      .transform((list) =>
        list
          .split(",")
          .map((address) => address.trim().toLowerCase())
          .filter(Boolean),
      )
      .optional(),
    /** Request body bytes one process reads at once, in all and per network source beside its first body (docs/architecture.md, "Bounds on what one caller holds"). */
    BODY_BYTES_IN_FLIGHT: z.coerce
      .number()
      .int()
      .min(1024 * 1024)
      .default(96 * 1024 * 1024),
    BODY_BYTES_IN_FLIGHT_PER_SOURCE: z.coerce
      .number()
      .int()
      .min(1024 * 1024)
      .default(16 * 1024 * 1024),
    /** A body that sends nothing for this long is cut (408), and any body that takes longer than BODY_TIMEOUT_MS in all. */
    BODY_IDLE_TIMEOUT_MS: z.coerce.number().int().min(100).default(15_000),
    BODY_TIMEOUT_MS: z.coerce.number().int().min(100).default(120_000),
    /** Open results follows and event streams per creator account, and per network source, in one process. */
    STREAMS_PER_CREATOR: z.coerce.number().int().min(1).default(16),
    STREAMS_PER_SOURCE: z.coerce.number().int().min(1).default(64),
    /** Input uploads (POST /api/tasks/{id}/inputs) per creator account running at once in one process. */
    UPLOADS_PER_CREATOR: z.coerce.number().int().min(1).default(4),
  })
  .transform((env) => ({
    databaseUrl: env.DATABASE_URL ?? null,
    port: env.PORT,
    sandboxPort: env.SANDBOX_PORT ?? env.PORT + 1,
    sandboxOrigin: env.SANDBOX_ORIGIN ?? null,
    publicUrl: env.PUBLIC_URL ?? null,
    jwtSecret: env.JWT_SECRET ?? null,
    dataDir: env.DATA_DIR,
    adminEmail: env.ADMIN_EMAIL ?? null,
    requireCreatorApproval: env.REQUIRE_CREATOR_APPROVAL,
    leaseGraceMs: env.LEASE_GRACE_MS,
    leaseSilentMs: env.LEASE_SILENT_MS,
    idleRetryMs: env.IDLE_RETRY_MS,
    metricsToken: env.METRICS_TOKEN ?? null,
    shutdownTimeoutMs: env.SHUTDOWN_TIMEOUT_MS,
    leaseBounds: {
      perVolunteer: env.LEASE_HELD_PER_VOLUNTEER,
      perSource: env.LEASE_HELD_PER_SOURCE,
      maxThreads: env.LEASE_MAX_THREADS,
      maxBufferMs: env.LEASE_MAX_BUFFER_MS,
    },
    leaseWaiting: { perSource: env.LEASE_WAITING_PER_SOURCE, total: env.LEASE_WAITING_MAX, arrivingMax: env.LEASE_ARRIVING_MAX },
    trustedProxies: env.TRUSTED_PROXIES ?? [],
    bounds: {
      bodyBytesInFlight: env.BODY_BYTES_IN_FLIGHT,
      bodyBytesPerSource: env.BODY_BYTES_IN_FLIGHT_PER_SOURCE,
      bodyIdleMs: env.BODY_IDLE_TIMEOUT_MS,
      bodyTimeoutMs: env.BODY_TIMEOUT_MS,
      streamsPerCreator: env.STREAMS_PER_CREATOR,
      streamsPerSource: env.STREAMS_PER_SOURCE,
      uploadsPerCreator: env.UPLOADS_PER_CREATOR,
    },
    limits: {
      loginPerAccount: env.LOGIN_LIMIT_PER_ACCOUNT,
      loginPerIp: env.LOGIN_LIMIT_PER_IP,
      registerPerIp: env.REGISTER_LIMIT_PER_IP,
      mintPerHour: env.VOLUNTEER_MINT_PER_HOUR,
      mintPerDay: env.VOLUNTEER_MINT_PER_DAY,
      mintPerAccountPerDay: env.VOLUNTEER_MINT_PER_ACCOUNT_PER_DAY,
    },
  }));

export type ParsedEnv = z.output<typeof envSchema>;

/** What the app itself needs: config, with the secret resolved by the entry. */
export type AppEnv = Omit<ParsedEnv, "jwtSecret"> & { jwtSecret: string; embedded: boolean };

/**
 * Parses the environment of an entry (`process.env` on Node, the bindings on Workers).
 * Throws one readable error listing every bad variable.
 */
export function parseEnv(record: Record<string, unknown>): ParsedEnv {
  const present = Object.fromEntries(Object.entries(record).filter(([, v]) => v !== undefined && v !== ""));
  // A renamed limit is not left to be silently ignored.
  if ("VOLUNTEER_LIMIT_PER_IP" in present) {
    throw new Error('Invalid environment:\n  VOLUNTEER_LIMIT_PER_IP: renamed VOLUNTEER_MINT_PER_HOUR (and see VOLUNTEER_MINT_PER_DAY; docs/architecture.md, "Minting volunteers")');
  }
  const parsed = envSchema.safeParse(present);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((issue) => `  ${issue.path.join(".")}: ${issue.message}`);
    throw new Error(`Invalid environment:\n${lines.join("\n")}`);
  }
  if (parsed.data.databaseUrl && !parsed.data.jwtSecret) {
    throw new Error("Invalid environment:\n  JWT_SECRET: required with DATABASE_URL (only the embedded mode generates one)");
  }
  return parsed.data;
}
