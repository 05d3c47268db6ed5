import { buildBootstrap } from "../build.ts";

export default async function setup(): Promise<void> {
  await buildBootstrap();
}
