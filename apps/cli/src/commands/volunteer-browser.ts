// One `crowdcompute volunteer` browser slot: a headless Chromium kept on the real volunteer
// page, started with the CLI's settings, its figures read each second, reloaded when it dies,
// hangs or gives up (the command that runs the slots is volunteer.ts).
import { setTimeout as sleep } from "node:timers/promises";
import type { ElementHandle, Page } from "puppeteer-core";
import { type LaunchedBrowser, launchChromium } from "../chromium.ts";
import type { CliEnv } from "../config.ts";
import { describeError } from "../errors.ts";
import { formatDuration } from "../output.ts";
import type { VolunteerIdentity } from "../volunteer-identity.ts";

/** How often the page's figures are read (ms). */
/** What `crowdcompute volunteer` was asked for: each browser slot reads it. */
export interface VolunteerOptions {
  server: string;
  /** Where the config file is, and the creator credential the volunteers compute for. */
  env: CliEnv;
  /** The volunteers' name (default: "alice's HOST" signed in, else the host name). */
  name: string | undefined;
  /** Worker threads per browser; the page's default (half the cores) when absent. */
  threads: number | undefined;
  /** The share of each thread's time chunks may use, 10-100 (the page's CPU share); the page's default (100) when absent. */
  cpuPercent: number | undefined;
  executablePath: string;
  instances: number;
  webgpu: boolean;
  /** Print work code's console lines (the page's "show what tasks log" option); off by default. */
  showConsole: boolean;
  json: boolean;
}

export const pollMs = 1000;

/**
 * Moves a range input of the page to `wanted` and returns the value it holds once the page
 * has rendered the change: the input clamps to its bounds and snaps to its step, and React,
 * which reads it through the native setter and an `input` event, would put back a value it
 * refused.
 */
function setSlider(slider: ElementHandle, wanted: number): Promise<number> {
  return slider.evaluate(async (element, value) => {
    const input = element as HTMLInputElement;
    Object.getOwnPropertyDescriptor(HTMLInputElement.prototype, "value")!.set!.call(input, String(value));
    input.dispatchEvent(new Event("input", { bubbles: true }));
    await new Promise((resolve) => setTimeout(resolve, 50));
    return Number(input.value);
  }, wanted);
}

/** `read`, unless the page crashes or `ms` pass first: a read of the page must not wait forever. */
async function answerWithin<T>(read: Promise<T>, crash: Promise<never>, ms: number): Promise<T> {
  const timer = new AbortController();
  const late = sleep(ms, undefined, { signal: timer.signal }).then(() => {
    throw new Error(`no answer in ${ms / 1000} s`);
  });
  try {
    return await Promise.race([read, crash, late]);
  } finally {
    timer.abort();
  }
}

/** What the page shows, read each second. */
interface PageFigures {
  state: string;
  chunksDone: number;
  chunksFailed: number;
  cpuMs: number;
  /** The server's credit for this browser's volunteer (it survives reloads: same identity). */
  creditMs: number;
  message: string | null;
}

export type InstanceState = "launching" | "loading" | "starting" | "running" | "waiting" | "paused" | "error" | "stopped";

// The page's runner states (its `data-state`, apps/web runner-stats.ts), as the CLI names them.
const stateByPage: Record<string, InstanceState> = {
  stopped: "loading",
  starting: "starting",
  running: "running",
  waiting: "waiting",
  // Still posting what it computed: not paused until it says so.
  pausing: "running",
  paused: "paused",
  error: "error",
};

/** The page retries a dead server by itself; only a runner that gave up (or hung) needs a reload. */
const stuckStartingMs = 60_000;
const stuckTroubleMs = 120_000;
/** How long a read of the page's figures may take before the page counts as hung. */
const answerTimeoutMs = 10_000;
const retryDelaysMs = [1000, 2000, 5000, 10_000];

const threadsSlider = '::-p-aria([name="Threads"][role="slider"])';
const cpuSlider = '::-p-aria([name="CPU share"][role="slider"])';
const startButton = '::-p-aria([name="Start"][role="button"])';
const pauseButton = '::-p-aria([name="Pause"][role="button"])';
const showConsoleBox = '[data-testid="show-console"]';
/** Where the page keeps its volunteer token (apps/web volunteer-identity.ts, volunteerTokenKey). */
const volunteerTokenKey = "crowdcompute.volunteer.token";
/**
 * Where the page remembers that its volunteer pressed Start (apps/web use-volunteer-run.ts,
 * startedKey): cleared before each page the CLI opens, so that a page it reloads waits for the
 * CLI's own Start after its sliders are set, rather than starting by itself.
 */
const startedKey = "crowdcompute.volunteer.started";
/** How the page writes work code's console lines (apps/web block-reports.ts, echoConsole). */
const workConsoleLine = /^\[chunk \d+ of task [0-9a-f-]+\] /;
/** How long Ctrl-C waits for a page to post the results it holds. */
const pauseGraceMs = 5000;

/** What a browser slot tells the command, which prints it. */
export type VolunteerEvent =
  | { event: "identity"; instance: number; volunteerId: string; name: string; account: string | null; origin: VolunteerIdentity["origin"]; replaced: string | null }
  | { event: "browser"; instance: number; pid: number | null; profile: string }
  | { event: "threads"; instance: number; threads: number; requested: number }
  | { event: "cpu"; instance: number; cpuPercent: number; requested: number }
  | { event: "reload"; instance: number; reason: string }
  | { event: "retry"; instance: number; error: string; inMs: number }
  | { event: "console"; instance: number; level: string; text: string };

/** One browser slot: keeps a Chromium on the volunteer page, started, and reads what it shows. */
export class Instance {
  readonly number: number;
  state: InstanceState = "launching";
  message: string | null = null;
  /** Counters of pages that were reloaded: the page's own start again from zero. */
  private carried = { chunksDone: 0, chunksFailed: 0, cpuMs: 0 };
  private shown = { chunksDone: 0, chunksFailed: 0, cpuMs: 0 };
  credit = 0;
  private launched: LaunchedBrowser | null = null;
  private readonly options: VolunteerOptions;
  private readonly identity: VolunteerIdentity;
  private readonly emit: (event: VolunteerEvent) => void;
  private readonly signal: AbortSignal;

  constructor(number: number, options: VolunteerOptions, identity: VolunteerIdentity, emit: (event: VolunteerEvent) => void, signal: AbortSignal) {
    this.number = number;
    this.options = options;
    this.identity = identity;
    this.emit = emit;
    this.signal = signal;
  }

  get totals() {
    return {
      chunksDone: this.carried.chunksDone + this.shown.chunksDone,
      chunksFailed: this.carried.chunksFailed + this.shown.chunksFailed,
      cpuMs: this.carried.cpuMs + this.shown.cpuMs,
    };
  }

  /** Keeps a browser on the volunteer page until the signal aborts. */
  async run(): Promise<void> {
    // Consecutive failures (a launch or a load that threw, or a page that died within a
    // minute) space the retries out, so a broken server is not hammered.
    let failures = 0;
    while (!this.signal.aborted) {
      try {
        if (!this.launched?.browser.connected) {
          await this.launched?.close();
          this.state = "launching";
          this.launched = await launchChromium(this.options.executablePath, { webgpu: this.options.webgpu });
          this.emit({ event: "browser", instance: this.number, pid: this.launched.pid, profile: this.launched.userDataDir });
        }
        const opened = Date.now();
        const reason = await this.serve(await this.launched.browser.newPage());
        if (this.signal.aborted) break;
        failures = Date.now() - opened < 60_000 ? failures + 1 : 0;
        this.emit({ event: "reload", instance: this.number, reason });
        await sleep(retryDelaysMs[Math.min(failures, retryDelaysMs.length - 1)]!, undefined, { signal: this.signal }).catch(() => {});
      } catch (error) {
        if (this.signal.aborted) break;
        const inMs = retryDelaysMs[Math.min(failures++, retryDelaysMs.length - 1)]!;
        this.state = "error";
        // Chromium's "net::ERR_CONNECTION_REFUSED at http://…" reads better the other way round.
        this.message = describeError(error).replace(/^net::(\S+) at (\S+)$/, "cannot reach $2 ($1)");
        this.emit({ event: "retry", instance: this.number, error: this.message, inMs });
        await sleep(inMs, undefined, { signal: this.signal }).catch(() => {});
      }
    }
    this.state = "stopped";
    await this.launched?.close();
  }

  /** Opens the page, starts it, and watches it; returns why it must be reloaded. */
  private async serve(page: Page): Promise<string> {
    let crashed = false;
    // A read sent to a renderer that then dies may never be answered: the crash ends the wait.
    let onCrash = () => {};
    const crash = new Promise<never>((_, reject) => (onCrash = () => reject(new Error("the page crashed"))));
    crash.catch(() => {});
    page.on("error", () => {
      crashed = true;
      onCrash();
    });
    if (this.options.showConsole) {
      page.on("console", (message) => {
        const text = message.text();
        // The console's own levels (some drivers call warn "warning").
        const type: string = message.type();
        const level = type === "warning" ? "warn" : type;
        if (workConsoleLine.test(text)) this.emit({ event: "console", instance: this.number, level, text });
      });
    }
    try {
      this.state = "loading";
      // The page volunteers as the token in its storage (apps/web volunteer-identity.ts, volunteerTokenKey):
      // this slot's kept identity, set before the page's scripts run, and only on the server's own origin.
      await page.evaluateOnNewDocument(
        (origin, key, token, started) => {
          if (location.origin !== origin) return;
          localStorage.setItem(key, token);
          localStorage.removeItem(started);
        },
        new URL(this.options.server).origin,
        volunteerTokenKey,
        this.identity.token,
        startedKey,
      );
      await page.goto(`${this.options.server}/`, { waitUntil: "domcontentloaded", timeout: 30_000 });
      const threadsInput = await page.waitForSelector(threadsSlider, { timeout: 30_000 });
      if (!threadsInput) throw new Error("the volunteer page has no Threads slider");
      if (this.options.threads !== undefined) {
        const requested = this.options.threads;
        const threads = await setSlider(threadsInput, requested);
        if (threads !== requested) this.emit({ event: "threads", instance: this.number, threads, requested });
      }
      if (this.options.cpuPercent !== undefined) {
        const cpuInput = await page.waitForSelector(cpuSlider, { timeout: 30_000 });
        if (!cpuInput) throw new Error("the volunteer page has no CPU share slider");
        const requested = this.options.cpuPercent;
        const cpuPercent = await setSlider(cpuInput, requested);
        if (cpuPercent !== requested) this.emit({ event: "cpu", instance: this.number, cpuPercent, requested });
      }
      // The page remembers the choice in its profile: set it either way.
      const showConsole = await page.waitForSelector(showConsoleBox, { timeout: 30_000 });
      if (showConsole && (await showConsole.evaluate((box) => (box as HTMLInputElement).checked)) !== this.options.showConsole) await showConsole.click();
      const start = await page.waitForSelector(startButton, { timeout: 30_000 });
      await start!.click();

      let stateSince = Date.now();
      let lastState = "";
      while (!this.signal.aborted) {
        await sleep(pollMs, undefined, { signal: this.signal }).catch(() => {});
        if (this.signal.aborted) break;
        if (crashed || page.isClosed()) return "the page crashed";
        let figures: PageFigures;
        try {
          figures = await answerWithin(page.evaluate(readFigures), crash, answerTimeoutMs);
        } catch (error) {
          if (crashed || page.isClosed()) return "the page crashed";
          return `the page stopped answering (${describeError(error)})`;
        }
        this.shown = { chunksDone: figures.chunksDone, chunksFailed: figures.chunksFailed, cpuMs: figures.cpuMs };
        if (figures.creditMs > 0) this.credit = figures.creditMs;
        this.state = stateByPage[figures.state] ?? "error";
        this.message = figures.message;
        if (figures.state !== lastState) {
          lastState = figures.state;
          stateSince = Date.now();
        }
        const stuckFor = Date.now() - stateSince;
        if (this.state === "error" && !/retrying/.test(figures.message ?? "")) return `the page gave up: ${figures.message ?? "unknown error"}`;
        if (this.state === "error" && stuckFor > stuckTroubleMs) return `the page has been in trouble for ${formatDuration(stuckFor)}`;
        if (this.state === "starting" && stuckFor > stuckStartingMs) return `the page has been starting for ${formatDuration(stuckFor)}`;
      }
      await this.pauseGently(page);
      return "stopping";
    } finally {
      this.carried = this.totals;
      this.shown = { chunksDone: 0, chunksFailed: 0, cpuMs: 0 };
      if (!page.isClosed()) await page.close().catch(() => {});
    }
  }

  /**
   * Presses Pause, which lets the page post the results it holds and stop asking for more,
   * and waits a little for that: a chunk computed but never posted is a chunk computed twice.
   */
  private async pauseGently(page: Page): Promise<void> {
    try {
      const pause = await page.$(pauseButton);
      if (!pause) return;
      await pause.click();
      const deadline = Date.now() + pauseGraceMs;
      while (Date.now() < deadline) {
        const figures = await page.evaluate(readFigures);
        this.shown = { chunksDone: figures.chunksDone, chunksFailed: figures.chunksFailed, cpuMs: figures.cpuMs };
        if (figures.creditMs > 0) this.credit = figures.creditMs;
        if (stateByPage[figures.state] === "paused") return;
        await sleep(200);
      }
    } catch {
      // The page is gone or busy: closing it is all that is left.
    }
  }
}

/** Runs in the page: the figures from their machine-readable attributes (data-state, data-value, data-ms). */
function readFigures(): PageFigures {
  const element = (id: string) => document.querySelector(`[data-testid="${id}"]`);
  const number = (id: string, attribute: string) => Number(element(id)?.getAttribute(attribute) || 0) || 0;
  return {
    state: element("state")?.getAttribute("data-state") ?? "",
    chunksDone: number("chunks-done", "data-value"),
    chunksFailed: number("chunks-failed", "data-value"),
    cpuMs: number("cpu-time", "data-ms"),
    creditMs: number("credit", "data-ms"),
    message: document.querySelector('[role="status"]')?.textContent ?? null,
  };
}
