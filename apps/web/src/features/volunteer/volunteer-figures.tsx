// The volunteer page's figures: this browser's totals beside the site's.
import type { SiteStats } from "@crowdcompute/sdk";
import { Stat } from "../../components/ui/card.tsx";
import { formatCredit, formatDuration, formatNumber, formatRate } from "../../lib/format.ts";
import type { useTotals } from "./use-totals.ts";
import type { VolunteerRun } from "./use-volunteer-run.ts";

/** This browser's totals (every visit) beside the site's. */
export function Figures({
  run,
  totals,
  creditMs,
  creditForAccount,
  site,
}: {
  run: VolunteerRun;
  totals: ReturnType<typeof useTotals>;
  creditMs: number | null;
  creditForAccount: boolean;
  site: SiteStats | null;
}) {
  return (
    <div className="grid grid-cols-1 gap-6 lg:grid-cols-[minmax(0,3fr)_minmax(0,1fr)]">
      <section aria-labelledby="you-heading">
        <h2 id="you-heading" className="mb-2 text-sm font-semibold tracking-wide text-slate-500 uppercase">
          This browser, every visit
        </h2>
        {/* As many tiles a row as fit at 8 rem or more: the five in one row from about 1200 px. */}
        <div className="grid grid-cols-[repeat(auto-fit,minmax(8rem,1fr))] gap-3">
          <Stat label="Chunks done" value={formatNumber(totals.chunksDone)} raw={totals.chunksDone} testId="chunks-done" />
          <Stat label="Chunks failed" value={formatNumber(totals.chunksFailed)} raw={totals.chunksFailed} testId="chunks-failed" />
          <Stat label="CPU time" value={formatDuration(totals.cpuMs)} ms={totals.cpuMs} testId="cpu-time" />
          <Stat
            label="Credit"
            value={creditMs === null ? "–" : <WithUnit text={formatCredit(creditMs)} />}
            ms={creditMs ?? ""}
            testId="credit"
            hint={creditForAccount ? "CPU hours of results that won their quorum, for your account's volunteers together" : "CPU hours of results that won their quorum"}
          />
          <Stat label="Your rate" value={formatRate(run.stats?.chunksPerSec ?? 0)} raw={run.stats?.chunksPerSec ?? 0} testId="local-rate" hint="Chunks per second over the last 5 seconds" />
        </div>
      </section>
      <section aria-labelledby="site-heading">
        <h2 id="site-heading" className="mb-2 text-sm font-semibold tracking-wide text-slate-500 uppercase">
          Everyone
        </h2>
        <div className="grid grid-cols-2 gap-3">
          <Stat label="Rate" value={site ? formatRate(site.chunksPerSec) : "–"} testId="site-rate" hint="Chunks done per second, site-wide, over the last minute" />
          <Stat label="Online now" value={site ? formatNumber(site.volunteersOnline) : "–"} testId="volunteers-online" hint="Volunteers with a lease or a result in the last 2 minutes" />
        </div>
      </section>
    </div>
  );
}

/** "<0.01 CPU h" with its unit in small type, so the figure fits a narrow tile whole. */
function WithUnit({ text }: { text: string }) {
  const space = text.indexOf(" ");
  if (space < 0) return <>{text}</>;
  return (
    <>
      {text.slice(0, space)} <span className="text-sm font-normal text-slate-500">{text.slice(space + 1)}</span>
    </>
  );
}
