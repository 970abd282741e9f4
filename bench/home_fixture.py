#!/usr/bin/env python3
"""A home's Home Assistant for the memory benchmark (bench/home.sh) and the code-layout profile
(scripts/update-symbol-order.sh), played by tests/fakes/fake_ha with 300 entities.

  home_fixture.py registries OUT          the registries and states to POST to /_fake/set:
      labels Light, Boiler, Radiator; every entity of the stand-in in the entity registry (the
      shape Core returns), Light on every fifth (20 of them are lights or switches), Boiler on
      climate.device_3, Radiator on climate.device_9/15/21/27, whose states get the climate
      attributes heating reads
  home_fixture.py events PORT RATE STOP   state_changed events for the tracked entities at RATE
      per second until the file STOP exists: lights and switches toggle, radiators and the
      boiler change temperature and target (so heating turns on and off); prints how many
"""
import http.client
import json
import os
import sys
import time
from datetime import datetime, timezone

DOMAINS = ["light", "switch", "sensor", "climate", "cover", "camera"]
HEATING = {"climate.device_3": "lbl_boiler", "climate.device_9": "lbl_radiator",
           "climate.device_15": "lbl_radiator", "climate.device_21": "lbl_radiator",
           "climate.device_27": "lbl_radiator"}


def registries(out):
    entities, states = [], []
    for i in range(300):
        n = i + 1
        eid = f"{DOMAINS[i % 6]}.device_{i}"
        labels = ["light"] if n % 5 == 0 else []
        if eid in HEATING:
            labels = [HEATING[eid]]
        entities.append({"area_id": "kitchen" if n % 3 == 0 else None, "categories": {},
                         "config_entry_id": f"cfg{n % 7}", "device_id": f"dev{n}",
                         "disabled_by": None, "entity_category": None, "entity_id": eid,
                         "has_entity_name": True, "hidden_by": None, "icon": None,
                         "id": f"reg{n}", "labels": labels, "name": None, "options": {},
                         "original_name": eid, "platform": "demo", "translation_key": None,
                         "unique_id": f"uid-{n}", "created_at": 1700000000.0,
                         "modified_at": 1700000000.0})
    for eid in HEATING:
        states.append({"entity_id": eid, "state": "heat",
                       "attributes": {"hvac_mode": "heat", "current_temperature": 19.5,
                                      "temperature": 21, "friendly_name": eid},
                       "last_changed": "2026-11-24T10:00:00.000000+00:00",
                       "last_updated": "2026-11-24T10:00:00.000000+00:00"})
    json.dump({"label_registry": [{"label_id": "light", "name": "Light"},
                                  {"label_id": "lbl_boiler", "name": "Boiler"},
                                  {"label_id": "lbl_radiator", "name": "Radiator"}],
               "entity_registry": entities, "states": states}, open(out, "w"))


def events(port, rate, stop):
    electric = [f"{DOMAINS[i % 6]}.device_{i}" for i in range(300)
                if (i + 1) % 5 == 0 and DOMAINS[i % 6] in ("light", "switch")]
    heating = list(HEATING)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    n = sent = 0
    next_at = time.monotonic()
    while not os.path.exists(stop):
        now = datetime.now(timezone.utc).isoformat(timespec="microseconds")
        if n % 2 == 0:
            eid = electric[(n // 2) % len(electric)]
            state = {"entity_id": eid,
                     "state": "on" if (n // 2 // len(electric)) % 2 == 0 else "off",
                     "attributes": {"friendly_name": eid}}
        else:
            k = n // 2
            eid = heating[k % len(heating)]
            state = {"entity_id": eid, "state": "heat",
                     "attributes": {"hvac_mode": "heat", "current_temperature": 19 + (k % 7) * 0.5,
                                    "temperature": 21 if (k // len(heating)) % 2 == 0 else 18,
                                    "friendly_name": eid}}
        state.update({"last_changed": now, "last_updated": now, "context": {"id": f"home{n}"}})
        event = {"event_type": "state_changed", "origin": "LOCAL", "time_fired": now,
                 "data": {"entity_id": eid, "old_state": None, "new_state": state}}
        try:
            conn.request("POST", "/_fake/event", json.dumps(event),
                         {"content-type": "application/json"})
            if conn.getresponse().read() is not None:
                sent += 1
        except Exception:
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        n += 1
        next_at += 1 / rate
        time.sleep(max(0.0, next_at - time.monotonic()))
    print(sent)


if __name__ == "__main__":
    if sys.argv[1:2] == ["registries"] and len(sys.argv) == 3:
        registries(sys.argv[2])
    elif sys.argv[1:2] == ["events"] and len(sys.argv) == 5:
        events(int(sys.argv[2]), float(sys.argv[3]), sys.argv[4])
    else:
        sys.exit(__doc__)
