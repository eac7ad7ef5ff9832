// What durable commits cost (issue 11 item 6): the writes of a flight —
// steps, runvars, job statuses, a push intent and its outcome, each its own
// transaction as the runner makes them — with the default (push intents,
// outcomes and verdicts synchronous = FULL, the rest NORMAL) and with FULL
// throughout, side by side on the same disk, in one run.
//
//   build/bench/store_sync_bench [flights] [directory]

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include <pushgate/store.hpp>

using namespace pushgate;

namespace {

double run(const std::string& path, bool full, int flights) {
  std::filesystem::remove(path);
  auto st = store::Store::open({.path = path, .synchronous_full = full}).value();
  auto t0 = std::chrono::steady_clock::now();
  for (int f = 0; f < flights; ++f) {
    store::NewFlight nf;
    nf.branch = "xen-unstable";
    for (int j = 0; j < 12; ++j) nf.jobs.push_back({{}, "job-" + std::to_string(j), "r"});
    FlightId id = st->create_flight(nf).value();
    for (int j = 0; j < 12; ++j) {
      std::string job = "job-" + std::to_string(j);
      (void)st->set_job_status(id, job, "running", "");
      (void)st->set_runvar(id, {job, "host", "h" + std::to_string(j), true});
      for (int s = 1; s <= 8; ++s) {
        (void)st->put_step({id, job, s, "step-" + std::to_string(s), "running", 1, std::nullopt, ""});
        (void)st->put_step({id, job, s, "step-" + std::to_string(s), "pass", 1, 2, ""});
      }
      (void)st->set_job_status(id, job, "pass", "");
    }
    store::Store::Push p;
    p.flight = id;
    p.branch = "xen-unstable";
    p.url = "/x";
    p.ref = "refs/heads/master";
    p.old_rev = std::string(40, 'a');
    p.new_rev = std::string(40, 'b');
    auto intent = st->record_push_intent(p).value();
    (void)st->finish_push(intent, "done", "pushed");
    (void)st->set_flight_outcome(id, "perfect");
  }
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

int main(int argc, char** argv) {
  int flights = argc > 1 ? std::atoi(argv[1]) : 20;
  std::string dir = argc > 2 ? argv[2] : std::filesystem::temp_directory_path().string();
  std::string path = dir + "/pushgate-sync-bench.db";
  int commits = flights * (1 + 12 * (2 + 2 + 16) + 3);
  run(path, false, 1);  // warm the file system
  double normal = run(path, false, flights), full = run(path, true, flights);
  std::printf("%d flights, %d commits, on %s\n", flights, commits, dir.c_str());
  std::printf("pushes FULL, the rest NORMAL (default)  %8.3f s  %8.1f us/commit\n", normal, 1e6 * normal / commits);
  std::printf("FULL throughout (synchronous_full)     %8.3f s  %8.1f us/commit\n", full, 1e6 * full / commits);
  std::printf("throughout / default                   %8.2f x\n", full / normal);
  std::filesystem::remove(path);
  std::filesystem::remove(path + "-wal");
  std::filesystem::remove(path + "-shm");
  return 0;
}
