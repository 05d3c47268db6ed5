// The published package: built to dist (scripts/build-dist.ts), installed where the monorepo
// is out of reach, it imports, bundles work, and its declarations typecheck a consumer's code.
import { execFileSync } from "node:child_process";
import { cpSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";

const root = fileURLToPath(new URL("..", import.meta.url));
const repo = join(root, "../..");
const require = createRequire(import.meta.url);
const made: string[] = [];

afterAll(() => {
  for (const dir of made) rmSync(dir, { recursive: true, force: true });
});

describe("the publishable SDK", () => {
  it("builds to dist, installs outside the monorepo, runs, and typechecks a consumer against its declarations", () => {
    execFileSync(process.execPath, ["scripts/build-dist.ts"], { cwd: root, stdio: "pipe" });
    const dist = join(root, "dist");
    const manifest = JSON.parse(readFileSync(join(dist, "package.json"), "utf8"));
    expect(manifest).toMatchObject({ name: "@crowdcompute/sdk", type: "module", license: expect.any(String), engines: { node: ">=20" } });
    expect(manifest.private).toBeUndefined();
    expect(Object.keys(manifest.dependencies).sort()).toEqual(["esbuild", "zod"]);
    // The browser entry and what it imports never load esbuild or Node's modules.
    const browserEntry = readFileSync(join(dist, "index.js"), "utf8");
    const shared = [...browserEntry.matchAll(/from "\.\/(shared\/[^"]+)"/g)].map((m) => readFileSync(join(dist, m[1]!), "utf8"));
    for (const text of [browserEntry, ...shared]) expect(text).not.toMatch(/from "(esbuild|node:[^"]+)"/);

    // An install: the package as npm would unpack it, its dependencies beside it.
    const app = mkdtempSync(join(tmpdir(), "cc-sdk-consumer-"));
    made.push(app);
    cpSync(dist, join(app, "node_modules/@crowdcompute/sdk"), { recursive: true });
    const link = (name: string, from: string) => {
      mkdirSync(dirname(join(app, "node_modules", name)), { recursive: true });
      symlinkSync(realpathSync(from), join(app, "node_modules", name));
    };
    link("esbuild", dirname(require.resolve("esbuild/package.json")));
    link("zod", join(repo, "node_modules/zod"));

    writeFileSync(
      join(app, "check.mjs"),
      `import { createClient, bundleWorkFunction, cursorOfLine } from "@crowdcompute/sdk/node";
       import * as core from "@crowdcompute/sdk";
       const { code, exports } = await bundleWorkFunction((n) => n * 2);
       console.log(JSON.stringify({ code, exports, compute: typeof createClient({ baseUrl: "http://localhost:1" }).compute,
         core: typeof core.createClient, upload: typeof core.uploadInputParts, cursor: cursorOfLine('{"index":1,"cursor":"5-1"}', "ndjson") }));`,
    );
    const out = JSON.parse(execFileSync(process.execPath, ["check.mjs"], { cwd: app, encoding: "utf8" }));
    expect(out).toMatchObject({ exports: ["default"], compute: "function", core: "function", upload: "function", cursor: "5-1" });
    expect(out.code).toMatch(/export \{[\s\S]*as default/);

    writeFileSync(
      join(app, "use.ts"),
      `import { createClient, type Job, type ResultLine, type Task } from "@crowdcompute/sdk/node";
       const cc = createClient({ baseUrl: "http://localhost:8787", token: "cc_key" });
       export async function run(): Promise<[number, Task]> {
         const job: Job = await cc.compute([1, 2, 3], (n: number) => n + 1, { name: "typed", replication: 2, quorum: 2, timeoutMs: 1000 });
         job.on("progress", (task) => void task.counts.done);
         let done = 0;
         for await (const line of job.results()) {
           const typed: ResultLine = line;
           if (typed.status === "done") done += 1;
           else void typed.error.message;
         }
         return [done, await job.done()];
       }
       // @ts-expect-error: a range needs a size
       void cc.compute({ start: 0, end: 10 }, "work.js");
      `,
    );
    writeFileSync(
      join(app, "tsconfig.json"),
      JSON.stringify({
        compilerOptions: { target: "ES2023", lib: ["ES2023", "DOM"], module: "NodeNext", moduleResolution: "NodeNext", strict: true, noEmit: true, skipLibCheck: false, types: [] },
        files: ["use.ts"],
      }),
    );
    execFileSync(process.execPath, [require.resolve("typescript/bin/tsc"), "-p", join(app, "tsconfig.json")], { cwd: app, encoding: "utf8" });
  });
});
