import { uuidv7 } from "uuidv7";

/** A new UUIDv7: made in the app because PG 15 has no uuidv7(), and ids should sort by time. */
export const newId = (): string => uuidv7();
