#include "agent/doctor_reporter.hpp"

#include <exception>
#include <utility>

#include "common/log.hpp"
#include "common/stop_thread.hpp"

namespace dinodia::agent {

DoctorReporter::DoctorReporter(Runner runner, std::chrono::milliseconds failure_interval)
    : runner_(std::move(runner)), failure_interval_(failure_interval) {}

DoctorReporter::~DoctorReporter() {
  stop(std::chrono::hours(1));
}

void DoctorReporter::start() {
  thread_ = std::thread([this] { run(); });
}

void DoctorReporter::bridge_listening() {
  std::lock_guard lock(mutex_);
  listening_ = true;
  if (first_sync_done_ && !startup_logged_) {
    startup_logged_ = true;
    log_reason_ = "start-up";
    last_logged_ = std::chrono::steady_clock::now();
    cv_.notify_all();
  }
}

void DoctorReporter::first_sync_finished() {
  std::lock_guard lock(mutex_);
  first_sync_done_ = true;
  if (listening_ && !startup_logged_) {
    startup_logged_ = true;
    log_reason_ = "start-up";
    last_logged_ = std::chrono::steady_clock::now();
    cv_.notify_all();
  }
}

void DoctorReporter::sync_failed() {
  std::lock_guard lock(mutex_);
  // Before the start-up report there is nothing to repeat; it covers this failure.
  if (!startup_logged_ || !log_reason_.empty()) return;
  const auto now = std::chrono::steady_clock::now();
  if (last_logged_ && now - *last_logged_ < failure_interval_) return;
  log_reason_ = "after a failed sync";
  last_logged_ = now;
  cv_.notify_all();
}

void DoctorReporter::request(Done done) {
  std::lock_guard lock(mutex_);
  waiting_.push_back(std::move(done));
  cv_.notify_all();
}

void DoctorReporter::run() {
  for (;;) {
    std::string reason;
    std::vector<Done> waiting;
    {
      std::unique_lock lock(mutex_);
      cv_.wait(lock, [this] { return stopping_ || !log_reason_.empty() || !waiting_.empty(); });
      if (stopping_) break;
      reason = std::exchange(log_reason_, std::string());
      waiting.swap(waiting_);
    }
    DoctorReport report;
    try {
      report = runner_();
    } catch (const std::exception& e) {
      log::warn("Doctor report failed", log::Fields().add("error", e.what()));
      continue;  // the waiting requests are dropped with their connections at worst
    }
    if (!reason.empty()) log_report(report, reason);
    for (auto& done : waiting) done(report);
  }
  std::lock_guard lock(mutex_);
  finished_ = true;
  cv_.notify_all();
}

void DoctorReporter::log_report(const DoctorReport& report, const std::string& reason) {
  // Fails are WARN lines, not ERROR: the agent itself is fine and keeps running; the verdict
  // word in each line says which check needs the installer.
  log::info("Doctor report (" + reason + "): " + doctor_summary(report));
  const auto lines = doctor_report_lines(report);
  for (std::size_t i = 0; i < lines.size(); ++i) {
    if (report.checks[i].verdict == Verdict::ok) {
      log::info("Doctor " + lines[i]);
    } else {
      log::warn("Doctor " + lines[i]);
    }
  }
}

bool DoctorReporter::stop(std::chrono::milliseconds timeout) {
  return threads::stop_thread(thread_, mutex_, cv_, stopping_, finished_, timeout);
}

}  // namespace dinodia::agent
