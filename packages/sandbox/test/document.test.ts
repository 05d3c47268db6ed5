import { createHash } from "node:crypto";
import { describe, expect, test } from "vitest";
import { bootstrapScript, bootstrapSha256 } from "../dist/bootstrap.js";
import { sandboxDocument, sandboxOriginFor } from "../src/document.ts";

describe("sandboxDocument", () => {
  test("inlines the bootstrap as its only script, hashed in the CSP", () => {
    const { html, headers } = sandboxDocument({ frameAncestors: ["http://localhost:8787"] });
    expect(createHash("sha256").update(bootstrapScript).digest("base64")).toBe(bootstrapSha256);
    expect(html.match(/<script/g)).toHaveLength(1);
    expect(html).toContain(`<script>${bootstrapScript}</script>`);
    expect(headers["Content-Security-Policy"]).toContain(`script-src 'sha256-${bootstrapSha256}' blob:`);
  });

  test("allows every given frame ancestor and nothing from 'self'", () => {
    const { headers } = sandboxDocument({ frameAncestors: ["http://localhost:8787", "https://app.example.com"] });
    expect(headers["Content-Security-Policy"]).toMatch(/; frame-ancestors http:\/\/localhost:8787 https:\/\/app\.example\.com$/);
    expect(headers["Content-Security-Policy"]).not.toContain("'self'");
  });

  test("refuses ancestors that are not origins (they would inject CSP directives)", () => {
    expect(() => sandboxDocument({ frameAncestors: [] })).toThrow(/at least one/);
    for (const bad of ["http://a.com; script-src *", "*", "http://a.com/path", "'self'"]) {
      expect(() => sandboxDocument({ frameAncestors: [bad] })).toThrow(/not an origin/);
    }
  });
});

test("sandboxOriginFor picks the other loopback name, so the frame is another site", () => {
  expect(sandboxOriginFor(new URL("http://localhost:8787/"), 8788)).toBe("http://127.0.0.1:8788");
  expect(sandboxOriginFor(new URL("http://127.0.0.1:8787/volunteer"), 8788)).toBe("http://localhost:8788");
});
