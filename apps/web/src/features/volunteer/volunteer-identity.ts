import type { Client } from "@crowdcompute/sdk";
import { defaultVolunteerName } from "./volunteer-name.ts";

/** Where this browser keeps its volunteer token; the page reads it too, to show and rename the volunteer. */
export const volunteerTokenKey = "crowdcompute.volunteer.token";

/**
 * The volunteer this page computes as: its token, kept in storage (minted the first time), and
 * a client that speaks with it.
 */
export class VolunteerIdentity {
  private readonly storage: Storage;
  private readonly client: Client;
  /** The volunteer token the page's client speaks with; null until `connect`. */
  private token: string | null = null;

  constructor(storage: Storage, client: Client) {
    this.storage = storage;
    this.client = client;
  }

  /** The volunteer's id (its token's subject); null before `connect`. */
  get volunteerId(): string | null {
    return this.token ? subjectOf(this.token) : null;
  }

  /** A client that speaks as the stored volunteer, minting a new one when this browser has none. */
  async connect(): Promise<Client> {
    let token = this.storage.getItem(volunteerTokenKey);
    if (!token) {
      token = (await this.client.createVolunteer(defaultVolunteerName())).token;
      this.storage.setItem(volunteerTokenKey, token);
    }
    this.token = token;
    return this.client.withToken(token);
  }

  /**
   * The page may store a newer token for the same volunteer (linked to the account that
   * signed in, which lets it lease that account's private tasks): a client that speaks with
   * it from now on, or null when there is none.
   */
  adoptStored(): Client | null {
    const stored = this.storage.getItem(volunteerTokenKey);
    if (!this.token || !stored || stored === this.token || subjectOf(stored) !== subjectOf(this.token)) return null;
    this.token = stored;
    return this.client.withToken(stored);
  }

  /** The server no longer knows this volunteer (a reset server): the next `connect` mints a new one. */
  forget(): void {
    this.storage.removeItem(volunteerTokenKey);
  }
}

function subjectOf(token: string): string | null {
  try {
    const payload = JSON.parse(atob(token.split(".")[1]!.replaceAll("-", "+").replaceAll("_", "/"))) as { sub?: string };
    return payload.sub ?? null;
  } catch {
    return null;
  }
}
