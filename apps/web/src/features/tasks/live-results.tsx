// The newest results of a task as volunteers decide them: a live tail of the followed results
// stream (`?follow=true&from=now`, docs/architecture.md "Following results"), of which the page
// keeps only the last few lines, so a task of millions of chunks costs it no more than one of ten.
import type { Client, ResultLine, Task } from "@crowdcompute/sdk";
import { useEffect, useRef, useState } from "react";
import { Card, CardTitle } from "../../components/ui/card.tsx";
import { Row, Table } from "../../components/ui/table.tsx";
import { formatNumber } from "../../lib/format.ts";
import { preview } from "./test-run-results.tsx";

const shown = 20;
/** Lines are handed to React at most this often: a fast task decides thousands a second. */
const flushMs = 250;

type FollowState = "waiting" | "live" | "ended" | "interrupted";

/**
 * Follows the task's results from now while it can still change (from the first view of it
 * running, paused or a draft) until the stream ends with the task; again if it runs again.
 */
function useLiveResults(client: Client, task: Task) {
  const open = task.status === "running" || task.status === "paused" || task.status === "draft";
  const [round, setRound] = useState(0);
  const [state, setState] = useState<FollowState>("waiting");
  const [lines, setLines] = useState<ResultLine[]>([]);
  const [count, setCount] = useState(0);
  const sawEnd = useRef(false);

  // Follow from the first view of the task open; again when it runs again (retry failed, a
  // reopened chunk) after the page saw it end. (Its stream ends shortly before the page's
  // progress says so: that alone is not a new run.)
  useEffect(() => {
    if (!open) sawEnd.current = true;
    else if (round === 0 || (state === "ended" && sawEnd.current)) {
      sawEnd.current = false;
      setRound((n) => n + 1);
    }
  }, [open, round, state]);

  useEffect(() => {
    if (round === 0) return;
    const stop = new AbortController();
    let pending: ResultLine[] = [];
    let seen = 0;
    let timer: ReturnType<typeof setTimeout> | null = null;
    const flush = () => {
      timer = null;
      const batch = pending.reverse();
      pending = [];
      if (batch.length > 0) setLines((old) => [...batch, ...old].slice(0, shown));
      setCount(seen);
    };
    setState("live");
    void (async () => {
      try {
        for await (const line of client.results(task.id, { follow: true, from: "now", signal: stop.signal })) {
          seen += 1;
          pending.push(line);
          if (pending.length > shown) pending.shift();
          timer ??= setTimeout(flush, flushMs);
        }
        if (!stop.signal.aborted) setState("ended");
      } catch {
        if (!stop.signal.aborted) setState("interrupted");
      } finally {
        if (timer) clearTimeout(timer);
        if (!stop.signal.aborted) flush();
      }
    })();
    return () => {
      stop.abort();
      if (timer) clearTimeout(timer);
    };
    // (The task object changes with every progress event; only its id matters here.)
  }, [client, task.id, round]);

  return { lines, count, state };
}

/** A card with the newest results, newest first, while the page is open. */
export function LiveResults({ client, task }: { client: Client; task: Task }) {
  const { lines, count, state } = useLiveResults(client, task);
  const status = state === "live" ? "live" : state === "interrupted" ? "interrupted: reload the page to follow again" : state === "ended" ? "the task has ended" : "not following: the task has ended";
  return (
    <Card aria-labelledby="live-results-heading">
      <CardTitle id="live-results-heading">Newest results</CardTitle>
      <p className="mb-3 text-sm text-slate-600" role="status" data-testid="live-results-status" data-state={state} data-count={count}>
        {formatNumber(count)} decided since this page opened · {status}
      </p>
      {lines.length === 0 ? (
        <p className="text-sm text-slate-500">Results appear here as volunteers decide them; download them all above.</p>
      ) : (
        <Table label="Newest results" columns={["Chunk", "Input", "Result"]} dense>
          {lines.map((line) => (
            <Row key={line.cursor ?? line.index} data-index={line.index}>
              <td className="py-1 pr-3 tabular-nums">{line.index}</td>
              <td className="py-1 pr-3">
                <code className="font-mono text-xs break-all">{preview(line.input, 60)}</code>
              </td>
              <td className="py-1">
                {line.status === "done" ? (
                  <code className="font-mono text-xs break-all">{preview(line.result, 120)}</code>
                ) : (
                  <span className="text-red-800">
                    <strong>{line.error.kind}</strong>: {line.error.message}
                  </span>
                )}
              </td>
            </Row>
          ))}
        </Table>
      )}
    </Card>
  );
}
