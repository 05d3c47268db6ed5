import { testBackends } from "@crowdcompute/db/testing";
import { describeApiSuite } from "./api-suite.ts";
import { openTestApp } from "./harness.ts";

for (const backend of testBackends()) describeApiSuite(`API on ${backend}`, () => openTestApp(backend));
