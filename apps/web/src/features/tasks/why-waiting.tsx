import type { Chunk, Client, Task } from "@crowdcompute/sdk";
import { Row, Table } from "../../components/ui/table.tsx";
import { usePolled } from "../../hooks/use-polled.ts";
import { api } from "../../lib/api.ts";
import { formatNumber, plural } from "../../lib/format.ts";

const votingShown = 10;

/**
 * Why the task's chunks are where they are, in words: a draft or a paused task gets no
 * volunteers; replicated chunks with a vote in wait for a volunteer that has not computed them
 * (with each one's votes and what it waits for: a trusted copy, more agreeing copies); nobody online means nothing moves. Only what the server knows:
 * chunks out on leases are with volunteers, who compute them a part at a time.
 */
export function WhyWaiting({ client, task }: { client: Client; task: Task }) {
  const site = usePolled(() => api.stats(), 10_000);
  const { counts } = task;
  const awaiting = counts.awaitingCopy ?? 0;
  const voting = usePolled(
    () => (awaiting > 0 ? client.listChunks(task.id, { status: "voting", limit: votingShown }) : Promise.resolve({ items: [] as Chunk[], nextCursor: null })),
    5_000,
    `${task.id}:${awaiting > 0}`,
  );
  const online = site.data?.volunteersOnline ?? null;
  const left = counts.total - counts.done - counts.failed;
  const lines: { key: string; text: string }[] = [];

  if (task.status === "draft") lines.push({ key: "draft", text: "A draft: volunteers get none of its chunks until you start it." });
  if (task.status === "paused") lines.push({ key: "paused", text: "Paused: volunteers get no new chunks of it; chunks already out may still come back." });
  if (task.status === "running" || task.status === "paused") {
    if (!task.sealed) lines.push({ key: "open", text: "Its inputs are still open: it cannot finish until their last part is sealed." });
    if (counts.leased > 0) {
      lines.push({
        key: "leased",
        text: `${plural(counts.leased, "chunk is", "chunks are")} with ${plural(task.volunteers, "volunteer")}, who compute${task.volunteers === 1 ? "s" : ""} them a part at a time.`,
      });
    }
    if (awaiting > 0) {
      const onlineNow = online === null ? "" : ` (${plural(online, "volunteer")} online now)`;
      const waiting = task.waiting;
      // What they wait for, by the trust rules (docs/architecture.md, "Replication, trust and reduce").
      if (waiting && waiting.trustedCopy > 0) {
        lines.push({
          key: "trusted",
          text:
            `${plural(waiting.trustedCopy, "chunk waits", "chunks wait")} for a trusted volunteer's copy: copies from new volunteers agree, but only a copy from a trusted volunteer ` +
            `(an admin's, one that earned trust, or your own on your task) can decide a chunk; more copies from new volunteers cannot${onlineNow}.`,
        });
      }
      const more = waiting ? waiting.moreCopies + Math.max(0, awaiting - waiting.examined) : awaiting;
      if (more > 0) {
        lines.push({
          key: "awaiting",
          text:
            `${plural(more, "chunk needs", "chunks need")} more copies that agree: ${task.quorum} of ${task.replication} copies must agree, one of them from a trusted volunteer, ` +
            `and each copy must come from a volunteer (and account) that has not computed that chunk yet${onlineNow}.`,
        });
      }
    }
    if (task.status === "running" && left > 0 && online === 0) {
      lines.push({ key: "nobody", text: "No volunteer is online: chunks wait until someone opens the volunteer page." });
    }
  }
  if (lines.length === 0) return null;

  const chunks = awaiting > 0 ? (voting.data?.items ?? []) : [];
  return (
    <section aria-labelledby="waiting-heading" className="mb-6 rounded-xl border border-sky-200 bg-sky-50 p-4 text-sm text-sky-950 sm:p-6" data-testid="why-waiting">
      <h2 id="waiting-heading" className="mb-2 text-base font-semibold">
        Where the chunks are
      </h2>
      <ul className="flex list-disc flex-col gap-1 pl-5">
        {lines.map((line) => (
          <li key={line.key} data-testid={`waiting-${line.key}`}>
            {line.text}
          </li>
        ))}
      </ul>
      {chunks.length > 0 ? (
        <>
          <Table label="Votes per chunk" columns={["Chunk", "Copies in", "From", "Waits for"]} dense tone="sky" className="mt-3">
            {chunks.map((chunk) => (
              <Row key={chunk.index} tone="sky" data-testid="voting-chunk">
                <td className="py-1 pr-3 tabular-nums">{formatNumber(chunk.index)}</td>
                <td className="py-1 pr-3 whitespace-nowrap tabular-nums">
                  {chunk.votes.length} of {chunk.copiesNeeded ?? task.replication}
                </td>
                <td className="py-1 pr-3">{chunk.votes.map((vote) => vote.volunteer.name ?? `volunteer ${vote.volunteer.id.slice(0, 8)}`).join(", ")}</td>
                <td className="py-1" data-testid="waits-for">
                  {waitsFor(chunk)}
                </td>
              </Row>
            ))}
          </Table>
          {awaiting > chunks.length ? (
            <p className="mt-1 text-xs text-sky-800">
              The first {chunks.length} of {formatNumber(awaiting)}.
            </p>
          ) : null}
        </>
      ) : null}
    </section>
  );
}

/** A chunk's `waitingFor` in words. */
function waitsFor(chunk: Chunk): string {
  const waiting = chunk.waitingFor;
  if (!waiting) return "";
  const out = waiting.copiesOut > 0 ? ` (${plural(waiting.copiesOut, "copy", "copies")} being computed)` : "";
  if (waiting.reason === "trustedCopy") return `a trusted volunteer's copy: ${waiting.agreeing} untrusted copies agree${out}`;
  if (waiting.reason === "firstCopy") return `a volunteer to compute it${out}`;
  return `${plural(waiting.moreAgreeing, "more agreeing copy", "more agreeing copies")} from another volunteer${out}`;
}
