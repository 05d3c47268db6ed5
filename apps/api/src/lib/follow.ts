// A followed results response (`?follow=true`) ends on its own only when its task has ended,
// so one the server must stop early (a shutdown) has to look broken, not complete: the
// client then resumes from its last cursor (docs/architecture.md, Following results).

/** Marks a followed results response, for the Node entry's shutdown (node/event-streams.ts). */
export const followHeader = "x-crowdcompute-follow";
