// `crowdcompute volunteer`: K headless Chromiums on the real volunteer page, supervised
// (each browser slot: volunteer-browser.ts).
import { formatCount, formatDuration, formatRate, isTty, paint, printJson, safe, safeLines } from "../output.ts";
import { type VolunteerIdentity, volunteerIdentities } from "../volunteer-identity.ts";
import { Instance, type InstanceState, pollMs, type VolunteerEvent, type VolunteerOptions } from "./volunteer-browser.ts";

/** Runs until SIGINT or SIGTERM, then closes every browser; resolves with the exit code. */
export async function volunteer(options: VolunteerOptions): Promise<number> {
  const stop = new AbortController();
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    signals += 1;
    if (signals > 1) {
      // A second Ctrl-C while closing: give up on a tidy exit.
      process.stderr.write(`\n${signal} again: exiting without waiting for the browsers\n`);
      process.exit(1);
    }
    stop.abort();
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);

  const tty = !options.json && isTty(process.stdout);
  const samples: { at: number; done: number }[] = [];
  let liveLine = false;
  const clearLive = () => {
    if (liveLine) process.stdout.write("\r\x1b[2K");
    liveLine = false;
  };
  const emit = (event: VolunteerEvent) => {
    if (options.json) return printJson(event);
    clearLive();
    const who = options.instances > 1 ? `browser ${event.instance}: ` : "";
    if (event.event === "identity") {
      if (event.replaced) console.error(paint("yellow", `${who}${safe(event.replaced)}: made a new volunteer`, process.stderr));
      const how = { kept: "", made: "new ", linked: "now linked, " }[event.origin];
      console.error(
        `${who}computing as "${safe(event.name)}" (${how}volunteer ${event.volunteerId}${event.account ? `, for ${safe(event.account)}` : ", anonymous: `crowdcompute login` to compute for your account"})`,
      );
    }
    if (event.event === "browser") console.error(`${who}Chromium started (pid ${event.pid ?? "?"}), opening ${options.server}/`);
    if (event.event === "threads") console.error(`${who}the page allows at most ${event.threads} threads here; using ${event.threads} (asked for ${event.requested})`);
    if (event.event === "cpu") console.error(`${who}the page's CPU share moves in steps of 10 %; using ${event.cpuPercent} % (asked for ${event.requested} %)`);
    // What the page says may quote a task's error, and console lines are work code's (or a forged
    // report's) text: escaped (docs/architecture.md, "Printing what others wrote").
    if (event.event === "reload") console.error(paint("yellow", `${who}reloading the volunteer page: ${safe(event.reason)}`, process.stderr));
    if (event.event === "retry") console.error(paint("yellow", `${who}${safeLines(event.error)}; retrying in ${event.inMs / 1000} s`, process.stderr));
    if (event.event === "console") {
      // A line's own newlines stay, indented under it: what follows cannot pass for a line of its own.
      const text = safeLines(event.text).replaceAll("\n", "\n    ");
      console.log(`${who}${event.level === "error" || event.level === "warn" ? paint(event.level === "error" ? "red" : "yellow", text, process.stdout) : text}`);
    }
  };

  if (!options.json) {
    const threads = options.threads === undefined ? "the page's default threads" : `${options.threads} thread${options.threads === 1 ? "" : "s"}`;
    const share = options.cpuPercent === undefined ? "" : ` at ${options.cpuPercent} % CPU`;
    console.error(`Volunteering for ${options.server} with ${options.instances} browser${options.instances === 1 ? "" : "s"}, ${threads}${share} each. Ctrl-C stops.`);
  }
  let identities: VolunteerIdentity[];
  try {
    identities = await volunteerIdentities(options.env, options.server, {
      count: options.instances,
      ...(options.name !== undefined ? { name: options.name } : {}),
      signal: stop.signal,
      onRetry: (error, inMs) => emit({ event: "retry", instance: 1, error, inMs }),
    });
  } catch (error) {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    if (stop.signal.aborted) return 0;
    throw error;
  }
  for (const [i, identity] of identities.entries()) {
    emit({ event: "identity", instance: i + 1, volunteerId: identity.id, name: identity.name, account: identity.account, origin: identity.origin, replaced: identity.replaced });
  }
  const instances = identities.map((identity, i) => new Instance(i + 1, options, identity, emit, stop.signal));
  const summary = () => {
    const totals = instances.map((instance) => instance.totals);
    const done = totals.reduce((sum, t) => sum + t.chunksDone, 0);
    const now = Date.now();
    samples.push({ at: now, done });
    while (samples.length > 2 && now - samples[0]!.at > 10_000) samples.shift();
    const first = samples[0]!;
    const rate = now > first.at ? ((done - first.done) * 1000) / (now - first.at) : 0;
    return {
      chunksDone: done,
      chunksFailed: totals.reduce((sum, t) => sum + t.chunksFailed, 0),
      cpuMs: totals.reduce((sum, t) => sum + t.cpuMs, 0),
      creditMs: instances.reduce((sum, instance) => sum + instance.credit, 0),
      rate,
      states: instances.map((instance) => instance.state),
    };
  };
  const describeStates = (states: InstanceState[]) => {
    const counts = new Map<InstanceState, number>();
    for (const state of states) counts.set(state, (counts.get(state) ?? 0) + 1);
    return [...counts].map(([state, n]) => (states.length > 1 ? `${n} ${state}` : state)).join(", ");
  };

  // With --json or piped: a line when something changed, at most every 5 s (a log, not an
  // animation), and at least every 60 s so a log shows the process is alive.
  let lastKey = "";
  let lastPrintedAt = 0;
  const report = () => {
    const s = summary();
    if (tty) {
      const line = `${formatCount(s.chunksDone)} chunks done · ${formatRate(s.rate)}/s · ${formatCount(s.chunksFailed)} failed · CPU ${formatDuration(s.cpuMs)} · credit ${formatDuration(s.creditMs)} · ${describeStates(s.states)}`;
      process.stdout.write(`\r\x1b[2K${paint("cyan", "●")} ${line}`);
      liveLine = true;
      return;
    }
    const key = `${s.chunksDone}/${s.chunksFailed}/${s.states.join()}`;
    const since = Date.now() - lastPrintedAt;
    if (key === lastKey ? since < 60_000 : since < (options.json ? 1000 : 5000)) return;
    lastKey = key;
    lastPrintedAt = Date.now();
    if (options.json) printJson({ event: "progress", ...s, rate: Number(s.rate.toFixed(2)) });
    else
      console.log(
        `${formatCount(s.chunksDone)} chunks done · ${formatRate(s.rate)}/s · ${formatCount(s.chunksFailed)} failed · CPU ${formatDuration(s.cpuMs)} · credit ${formatDuration(s.creditMs)} · ${describeStates(s.states)}`,
      );
  };

  const ticker = setInterval(report, pollMs);
  try {
    await Promise.all(instances.map((instance) => instance.run()));
  } finally {
    clearInterval(ticker);
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
  const s = summary();
  if (options.json) printJson({ event: "stopped", chunksDone: s.chunksDone, chunksFailed: s.chunksFailed, cpuMs: s.cpuMs, creditMs: s.creditMs });
  else {
    clearLive();
    console.log(`Stopped: ${formatCount(s.chunksDone)} chunks done, ${formatCount(s.chunksFailed)} failed, CPU ${formatDuration(s.cpuMs)}, credit ${formatDuration(s.creditMs)}.`);
  }
  return 0;
}
