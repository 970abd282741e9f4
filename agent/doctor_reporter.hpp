#pragma once
// The running agent's doctor (agent/doctor.hpp), for installers who only see the Home Assistant
// UI (addon/DOCS.md#installer-diagnostics): the report goes to the add-on log once at start-up,
// after the bridge listens and the first sync attempt has finished (so it delays neither), and
// again after a failed sync cycle, at most once per `failure_interval` (30 minutes in a home, see
// agent.cpp for why); GET /_dinodia/doctor asks for a fresh one.
//
// One thread of its own runs the checks (they take seconds), one report at a time: requests that
// arrive while a report is being made get the next one.
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "agent/doctor.hpp"

namespace dinodia::agent {

class DoctorReporter {
 public:
  using Runner = std::function<DoctorReport()>;
  using Done = std::function<void(const DoctorReport&)>;

  DoctorReporter(Runner runner, std::chrono::milliseconds failure_interval);
  ~DoctorReporter();
  DoctorReporter(const DoctorReporter&) = delete;
  DoctorReporter& operator=(const DoctorReporter&) = delete;

  void start();
  // The start-up report is logged once both have happened.
  void bridge_listening();
  void first_sync_finished();
  // A sync cycle failed: log a report unless one was logged less than failure_interval ago (or
  // the start-up report is still to come).
  void sync_failed();
  // A fresh report for the endpoint; `done` runs on the reporter's thread.
  void request(Done done);
  // Wakes the thread and joins it; false if a report still runs after `timeout` (the thread is
  // then detached, and the caller must exit the process: the checks use the caller's objects).
  bool stop(std::chrono::milliseconds timeout);

 private:
  void run();
  void log_report(const DoctorReport& report, const std::string& reason);

  Runner runner_;
  const std::chrono::milliseconds failure_interval_;
  std::thread thread_;
  std::mutex mutex_;
  std::condition_variable cv_;
  bool stopping_ = false;
  bool finished_ = false;
  bool listening_ = false;
  bool first_sync_done_ = false;
  bool startup_logged_ = false;  // the start-up report was asked for
  std::string log_reason_;       // a report to log, and why; empty: none
  std::optional<std::chrono::steady_clock::time_point> last_logged_;
  std::vector<Done> waiting_;
};

}  // namespace dinodia::agent
