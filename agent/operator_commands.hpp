#pragma once
// Operator subcommands of the binary:
//   dinodia-hub-agent status   pairing, versions, hash count, origins, recent sync history from
//                              the state database; no network, never a secret.
//   dinodia-hub-agent doctor   validates options, checks the Supervisor, each origin's DNS/TLS
//                              and /api/health, the clock offset, and tries a pairing; one
//                              actionable line per problem. Exit 0 only if all is well.
#include "agent/environment.hpp"

namespace dinodia::agent {

int run_status_command(const Environment& env);
int run_doctor_command(const Environment& env);

}  // namespace dinodia::agent
