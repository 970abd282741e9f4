// Home Assistant's own JavaScript WebSocket client (home-assistant-js-websocket, the library the
// HA frontend uses) against the hub agent's /api/websocket, as a kiosk in Home mode would use it.
//   node ha_js_client.mjs <hub base URL, e.g. http://127.0.0.1:8099> <hub token>
// Prints exactly one JSON line on stdout:
//   {"ok":true,"haVersion":...,"entityCount":N,"entityId":...,"serviceResult":{...}}   exit 0
//   {"ok":false,"error":"ERR_INVALID_AUTH"|"ERR_CANNOT_CONNECT"|...,"stage":...}      exit 1
// Every step has a deadline so a hung agent fails the test instead of stalling it.
import WebSocket from "ws";

import {
  callService,
  createConnection,
  createLongLivedTokenAuth,
  ERR_CANNOT_CONNECT,
  ERR_CONNECTION_LOST,
  ERR_HASS_HOST_REQUIRED,
  ERR_INVALID_AUTH,
  subscribeEntities,
} from "home-assistant-js-websocket";

// Node 20 has no global WebSocket; the library expects the browser's.
globalThis.WebSocket = WebSocket;

const STEP_TIMEOUT_MS = 10000;
const ERROR_NAMES = new Map([
  [ERR_CANNOT_CONNECT, "ERR_CANNOT_CONNECT"],
  [ERR_INVALID_AUTH, "ERR_INVALID_AUTH"],
  [ERR_CONNECTION_LOST, "ERR_CONNECTION_LOST"],
  [ERR_HASS_HOST_REQUIRED, "ERR_HASS_HOST_REQUIRED"],
]);

let stage = "start";

function finish(result, code) {
  process.stdout.write(JSON.stringify(result) + "\n");
  process.exit(code);
}

function describe(err) {
  if (typeof err === "number") return ERROR_NAMES.get(err) ?? `error code ${err}`;
  if (err && typeof err === "object" && "code" in err) return `${err.code}: ${err.message}`;
  return String(err);
}

function withTimeout(promise, what) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(`timeout: ${what}`), STEP_TIMEOUT_MS);
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (err) => {
        clearTimeout(timer);
        reject(err);
      },
    );
  });
}

async function main() {
  const [hubUrl, hubToken] = process.argv.slice(2);
  if (!hubUrl || !hubToken) {
    finish({ ok: false, error: "usage: node ha_js_client.mjs <hub URL> <hub token>" }, 2);
  }
  stage = "connect";
  const auth = createLongLivedTokenAuth(hubUrl, hubToken);
  const connection = await withTimeout(createConnection({ auth, setupRetry: 0 }), "connect");

  stage = "subscribeEntities";
  let unsubscribe;
  const entities = await withTimeout(
    new Promise((resolve) => {
      unsubscribe = subscribeEntities(connection, (states) => resolve(states));
    }),
    "first entity state map",
  );
  const entityIds = Object.keys(entities).sort();
  if (entityIds.length === 0) throw "the first state map is empty";
  const entityId = entityIds[0];

  stage = "callService";
  const serviceResult = await withTimeout(
    callService(connection, "homeassistant", "update_entity", undefined, {
      entity_id: entityId,
    }),
    "call_service result",
  );

  unsubscribe();
  connection.close();
  finish(
    {
      ok: true,
      haVersion: connection.haVersion,
      entityCount: entityIds.length,
      entityId,
      state: entities[entityId].state,
      serviceResult: serviceResult ?? null,
    },
    0,
  );
}

// The library's entity collection rejects a promise nobody can await when a subscription fails.
process.on("unhandledRejection", (err) => finish({ ok: false, error: describe(err), stage }, 1));
main().catch((err) => finish({ ok: false, error: describe(err), stage }, 1));
