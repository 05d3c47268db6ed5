// Who may read a task (issues 15 and 25): any new anonymous volunteer token could read the
// code, WebAssembly and summary of a draft task, and of an allow-listed task it could never
// run, and any creator those of every task. Now a volunteer reads them only for a task it may
// run (running or paused, allowed by the allow-list) or holds a lease on, a creator only its
// own, an admin any; everyone else gets the same 404 as for a missing id.
import { testBackends } from "@crowdcompute/db/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openTestApp, type TestApp } from "./harness.ts";

const code = "export default (x) => x";
const wasm = "AGFzbQEAAAA="; // the smallest valid module
const missingId = "0192aaaa-0000-7000-8000-000000000000";
const reads = ["code", "wasm", "summary"] as const;

describe.each(testBackends())("reading a task's code on %s", (backend) => {
  let t: TestApp;
  let owner: { token: string; user: { id: string } };
  let invited: { token: string; user: { id: string } };
  let stranger: { token: string };
  let admin: { token: string };
  const tasks: Record<string, string> = {};

  const create = async (name: string, body: Record<string, unknown>) =>
    (await t.call("POST", "/api/tasks", { token: owner.token, body: { name, code, wasm, inputs: [1, 2], ...body } })).json.task.id as string;
  const statuses = async (token: string, id: string) => Promise.all(reads.map(async (what) => (await t.call("GET", `/api/tasks/${id}/${what}`, { token })).status));

  beforeAll(async () => {
    t = await openTestApp(backend);
    admin = await t.register("admin@example.com");
    owner = await t.register("owner@example.com");
    invited = await t.register("invited@example.com");
    stranger = await t.register("stranger@example.com");
    tasks.draft = await create("draft", {});
    tasks.invitedOnly = await create("invited only", { allowUsers: [invited.user.id], start: true, priority: 5 });
    tasks.paused = await create("paused", { start: true, priority: -5 });
    await t.call("POST", `/api/tasks/${tasks.paused}/pause`, { token: owner.token });
    tasks.running = await create("running", { start: true });
  });
  afterAll(async () => t?.dispose());

  it("keeps drafts and other users' allow-listed tasks from volunteers that may not run them", async () => {
    const anonymous = await t.volunteer();
    const strangers = await t.volunteer(stranger.token);
    for (const volunteer of [anonymous, strangers]) {
      expect(await statuses(volunteer.token, tasks.draft!)).toEqual([404, 404, 404]);
      expect(await statuses(volunteer.token, tasks.invitedOnly!)).toEqual([404, 404, 404]);
      expect(await statuses(volunteer.token, tasks.running!)).toEqual([200, 200, 200]);
      expect(await statuses(volunteer.token, tasks.paused!)).toEqual([200, 200, 200]);
      expect(await statuses(volunteer.token, missingId)).toEqual([404, 404, 404]);
    }
    const refused = await t.call("GET", `/api/tasks/${tasks.draft}/code`, { token: anonymous.token });
    expect(refused.type).toBe("application/problem+json");
    expect(refused.text).not.toContain(code);
    // The allow-list's own user's volunteers read it.
    const invitedVolunteer = await t.volunteer(invited.token);
    expect(await statuses(invitedVolunteer.token, tasks.invitedOnly!)).toEqual([200, 200, 200]);
    expect(await statuses(invitedVolunteer.token, tasks.draft!)).toEqual([404, 404, 404]);
  });

  it("lets a volunteer that holds a lease read the task after it stops being runnable", async () => {
    const holder = await t.volunteer();
    const leased = await t.call("POST", "/api/work/lease", { token: holder.token, body: { max: 1, exclude: { tasks: [tasks.paused] } } });
    expect(leased.json.leases.map((l: { taskId: string }) => l.taskId)).toEqual([tasks.running]);
    expect((await t.call("POST", `/api/tasks/${tasks.running}/cancel`, { token: owner.token })).status).toBe(200);
    expect(await statuses(holder.token, tasks.running!)).toEqual([200, 200, 200]);
    expect(await statuses((await t.volunteer()).token, tasks.running!)).toEqual([404, 404, 404]);
  });

  it("lets the owner and admins read every task, and no other creator any", async () => {
    for (const token of [owner.token, admin.token]) {
      for (const id of Object.values(tasks)) expect(await statuses(token, id)).toEqual([200, 200, 200]);
    }
    const key = (await t.call("POST", "/api/keys", { token: stranger.token, body: { name: "script" } })).json.key as string;
    for (const token of [stranger.token, invited.token, key]) {
      for (const id of [...Object.values(tasks), missingId]) {
        expect(await statuses(token, id)).toEqual([404, 404, 404]);
        const refused = await t.call("GET", `/api/tasks/${id}/code`, { token });
        // The same answer as for a missing id: nothing tells that the task exists.
        expect(refused.json).toEqual((await t.call("GET", `/api/tasks/${missingId}/code`, { token })).json);
        expect(refused.text).not.toContain(code);
      }
    }
  });
});
