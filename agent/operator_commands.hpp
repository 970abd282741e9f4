#pragma once
// Operator subcommands of the binary:
//   dinodia-hub-agent status   pairing, versions, hash count, origins, recent sync history from
//                              the state database; no network, never a secret.
//   dinodia-hub-agent doctor   validates the options, then the doctor's checks (agent/doctor.hpp)
//                              plus a real pairing attempt: one line per check with its verdict
//                              (ok / WARN / FAIL) and the action. Exit 0 unless a check failed.
#include "agent/environment.hpp"

namespace dinodia::agent {

int run_status_command(const Environment& env);
int run_doctor_command(const Environment& env);

}  // namespace dinodia::agent
