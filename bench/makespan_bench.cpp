// Claim (issue 13 item 5): critical-path-first allocation brings one real
// xen-unstable-shaped flight within 1.2x of the lower bound on its makespan,
// max(critical path, work / hosts per host pool); builds first then by name
// (the order before) is printed beside it.
//
// The matrix is generated like a real osstest flight: 120 jobs, of them 18
// builds (12 x86, 6 ARM) of about 15 min, tests of 20-60 min depending on a
// hypervisor build and a kernel build, 6 two-host migration jobs on an
// equiv-* pair, 24 x86 and 12 ARM hosts. Durations vary +-10% from run to
// run: five earlier runs are recorded in a real store as duration history,
// the flight itself runs a sixth sample.
//
// The real allocator (scheduler::try_allocate, scheduler::order, the store's
// host_waits and host rows in a real SQLite file) decides every allocation,
// on a simulated clock: a job "runs" until the clock reaches its end, so a
// flight of three hours takes a fraction of a second. Each job asks for
// hosts as the flight runner does: in allocation order, waiting (and so
// claiming hosts) when none is free. The runner's max_parallel_jobs is taken
// as large enough for the hosts (a lab of 36 hosts sets it so).
//
//   build/bench/makespan_bench [matrices=5] [seed=1]

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include <pushgate/scheduler.hpp>
#include <pushgate/store.hpp>

using namespace pushgate;

namespace {

struct Job {
  std::string name;
  bool build = false;
  std::string arch;  // amd64 or arm64: the host pool
  bool pair = false;  // two hosts (src_host, dst_host) of one equiv-* group
  std::vector<std::string> depends;
  double minutes = 0;  // this job's mean duration
};

struct Matrix {
  std::vector<Job> jobs;
  std::map<std::string, int> hosts;  // arch -> count
};

Matrix generate(std::mt19937& rng) {
  Matrix m;
  m.hosts = {{"amd64", 24}, {"arm64", 12}};
  std::uniform_real_distribution<double> build_min(13, 17), test_min(20, 60), pair_min(40, 60);
  const std::vector<std::string> x86_builds{"amd64", "amd64-xsm", "amd64-prev", "amd64-libvirt", "amd64-xtf",
                                            "i386", "i386-xsm", "i386-prev", "i386-libvirt", "amd64-pvops",
                                            "i386-pvops", "amd64-qemuu-freebsd"};
  const std::vector<std::string> arm_builds{"arm64", "arm64-xsm", "arm64-libvirt", "armhf", "arm64-pvops",
                                            "armhf-pvops"};
  for (const auto& b : x86_builds) m.jobs.push_back({"build-" + b, true, "amd64", false, {}, build_min(rng)});
  for (const auto& b : arm_builds) m.jobs.push_back({"build-" + b, true, "arm64", false, {}, build_min(rng)});
  const std::vector<std::string> variants{"xl",          "xl-credit1",   "xl-credit2",  "xl-multivcpu", "xl-pvshim",
                                          "xl-shadow",   "xl-rtds",      "xl-vhd",      "xl-qcow2",     "xl-raw",
                                          "pygrub",      "libvirt",      "libvirt-xsm", "libvirt-vhd",  "xl-xsm",
                                          "xl-qemuu-debianhvm-amd64",    "xl-qemut-debianhvm-amd64",
                                          "xl-qemuu-win7-amd64",         "xl-qemuu-ws16-amd64",
                                          "xl-qemuu-ovmf-amd64",         "qemuu-nested-intel",
                                          "qemuu-nested-amd",            "xl-qemuu-dmrestrict-amd64-dmrestrict",
                                          "xl-pvhv2-intel",              "xl-pvhv2-amd",  "xl-intel",  "xl-amd",
                                          "examine",     "dom0pvh-xl-intel", "dom0pvh-xl-amd", "coresched-amd64-xl",
                                          "xl-qemuu-debianhvm-i386-xsm", "xtf-amd64-amd64-1",
                                          "xtf-amd64-amd64-2",           "xtf-amd64-amd64-3",
                                          "xl-qemuu-freebsd11-amd64",    "xl-qemuu-freebsd12-amd64",
                                          "xl-qemut-win7-amd64",         "xl-qemut-ws16-amd64"};
  const std::vector<std::string> hv{"amd64", "amd64-xsm", "amd64-libvirt", "i386", "i386-xsm", "i386-libvirt",
                                    "amd64-xtf", "amd64-qemuu-freebsd"};
  int x86_tests = 0;
  for (const char* guest : {"amd64-amd64-", "amd64-i386-"}) {
    for (const auto& v : variants) {
      if (x86_tests == 72) break;
      std::string build = hv[(x86_tests * 7 + 3) % hv.size()];
      std::string kernel = build.starts_with("i386") ? "i386-pvops" : "amd64-pvops";
      m.jobs.push_back({std::string("test-") + guest + v, false, "amd64", false,
                        {"build-" + build, "build-" + kernel}, test_min(rng)});
      ++x86_tests;
    }
  }
  for (const char* pair : {"amd64-amd64-pair", "amd64-i386-pair", "amd64-amd64-migrupgrade",
                           "amd64-i386-migrupgrade", "amd64-amd64-libvirt-pair", "amd64-i386-libvirt-pair"}) {
    std::string p = pair;
    std::string build = p.find("libvirt") != std::string::npos ? "amd64-libvirt" : "amd64";
    std::vector<std::string> deps{"build-" + build, "build-amd64-pvops"};
    if (p.find("migrupgrade") != std::string::npos) deps.push_back("build-amd64-prev");
    m.jobs.push_back({"test-" + p, false, "amd64", true, deps, pair_min(rng)});
  }
  const std::vector<std::string> arm_variants{"xl", "xl-credit1", "xl-credit2", "xl-xsm", "xl-vhd", "xl-thunderx",
                                              "libvirt", "libvirt-raw", "libvirt-xsm", "xl-seattle", "xl-multivcpu",
                                              "xl-rtds"};
  for (const char* arch : {"arm64-arm64-", "armhf-armhf-"}) {
    for (const auto& v : arm_variants) {
      std::string a = std::string(arch).substr(0, 5);
      std::string build = v.find("libvirt") != std::string::npos ? "arm64-libvirt"
                          : v.find("xsm") != std::string::npos   ? "arm64-xsm"
                                                                 : a;
      if (a == "armhf" && build != "armhf") build = "armhf";
      m.jobs.push_back({std::string("test-") + arch + v, false, "arm64", false,
                        {"build-" + build, "build-" + a + "-pvops"}, test_min(rng)});
    }
  }
  return m;
}

std::int64_t sample(std::mt19937& rng, double minutes) {
  std::uniform_real_distribution<double> noise(0.9, 1.1);
  return static_cast<std::int64_t>(minutes * 60 * noise(rng));
}

void must(const Result<void>& r, const char* what) {
  if (!r) {
    std::fprintf(stderr, "makespan_bench: %s: %s\n", what, r.error().to_string().c_str());
    std::exit(1);
  }
}

scheduler::RoleFlags roles_of(const Job& j) {
  std::string flag = "arch-" + j.arch;
  if (j.pair) return {{"src_host", {flag, "equiv-*"}}, {"dst_host", {flag, "equiv-*"}}};
  return {{"host", {flag}}};
}

/// One flight through the real allocator; returns its makespan in seconds.
std::int64_t simulate(store::Store& st, const Matrix& m, const std::map<std::string, std::int64_t>& actual,
                      const std::map<std::string, std::int64_t>& remaining) {
  store::NewFlight nf;
  nf.branch = "xen-unstable";
  for (const auto& j : m.jobs) nf.jobs.push_back({{}, j.name, "r"});
  FlightId flight = st.create_flight(nf).value();
  std::map<std::string, const Job*> by_name;
  for (const auto& j : m.jobs) by_name[j.name] = &j;
  std::set<std::string> done, started, waiting;
  std::multimap<std::int64_t, std::string> running;  // end time -> job
  std::int64_t now = 0;
  while (done.size() < m.jobs.size()) {
    std::vector<scheduler::Candidate> ready;
    for (const auto& j : m.jobs) {
      if (started.count(j.name)) continue;
      bool deps = std::all_of(j.depends.begin(), j.depends.end(), [&](const auto& d) { return done.count(d) > 0; });
      if (deps) ready.push_back({flight, j.name, j.build, 0, remaining.at(j.name)});
    }
    scheduler::order(ready);
    for (const auto& c : ready) {
      const Job& j = *by_name[c.job];
      auto r = scheduler::try_allocate(st, c, roles_of(j));
      if (!r) {
        std::fprintf(stderr, "makespan_bench: allocate %s: %s\n", c.job.c_str(), r.error().to_string().c_str());
        std::exit(1);
      }
      if (r->has_value()) {
        if (waiting.erase(c.job)) must(st.clear_waiting(flight, c.job), "clear_waiting");
        started.insert(c.job);
        running.emplace(now + actual.at(c.job), c.job);
      } else if (waiting.insert(c.job).second) {
        must(st.set_waiting({flight, c.job, 0, c.build, scheduler::encode_roles(roles_of(j)), c.remaining}),
             "set_waiting");
      }
    }
    if (running.empty()) {
      std::fprintf(stderr, "makespan_bench: nothing runs and %zu jobs wait\n", m.jobs.size() - done.size());
      std::exit(1);
    }
    now = running.begin()->first;
    while (!running.empty() && running.begin()->first == now) {
      must(st.release_hosts(flight, running.begin()->second), "release_hosts");
      done.insert(running.begin()->second);
      running.erase(running.begin());
    }
  }
  return now;
}

struct Bound {
  std::int64_t critical = 0;
  std::map<std::string, double> per_pool;  // arch -> work / hosts
  double value() const {
    double b = static_cast<double>(critical);
    for (const auto& [arch, v] : per_pool) b = std::max(b, v);
    return b;
  }
};

Bound lower_bound(const Matrix& m, const std::map<std::string, std::int64_t>& actual) {
  std::map<std::string, scheduler::JobShape> shapes;
  for (const auto& j : m.jobs) shapes[j.name] = {actual.at(j.name), j.depends};
  Bound b;
  for (const auto& [job, path] : scheduler::remaining_paths(shapes)) b.critical = std::max(b.critical, path);
  std::map<std::string, double> work;
  for (const auto& j : m.jobs) work[j.arch] += static_cast<double>(actual.at(j.name)) * (j.pair ? 2 : 1);
  for (const auto& [arch, w] : work) b.per_pool[arch] = w / m.hosts.at(arch);
  return b;
}

}  // namespace

int main(int argc, char** argv) {
  int matrices = argc > 1 ? std::atoi(argv[1]) : 5;
  unsigned seed = argc > 2 ? static_cast<unsigned>(std::atoi(argv[2])) : 1;
  char tmpl[] = "/tmp/makespan_bench.XXXXXX";
  if (!mkdtemp(tmpl)) return 1;
  std::filesystem::path dir = tmpl;
  double worst_cpf = 0, worst_name = 0;
  std::printf("makespan_bench: %d generated xen-unstable-shaped flights through the real allocator (simulated clock)\n",
              matrices);
  for (int i = 0; i < matrices; ++i) {
    std::mt19937 rng(seed + static_cast<unsigned>(i));
    Matrix m = generate(rng);
    auto st = store::Store::open({(dir / ("m" + std::to_string(i) + ".db")).string()}).value();
    std::vector<store::Host> hosts;
    for (const auto& [arch, n] : m.hosts) {
      for (int h = 0; h < n; ++h) {
        // x86 hosts come in equiv groups of 6 alike machines (pairs need two of one group).
        std::vector<std::string> flags{"arch-" + arch, "equiv-" + arch + "-" + std::to_string(h / 6)};
        hosts.push_back({arch + "-" + std::to_string(h), "local", "enabled", "", 0, {}, "", flags});
      }
    }
    must(st->sync_hosts(hosts), "sync_hosts");
    // Five earlier runs of every job: the duration history.
    for (int run = 0; run < 5; ++run) {
      store::NewFlight nf;
      nf.branch = "xen-unstable";
      for (const auto& j : m.jobs) nf.jobs.push_back({{}, j.name, "r"});
      FlightId f = st->create_flight(nf).value();
      for (const auto& j : m.jobs) {
        must(st->put_step({f, j.name, 1, "run", "pass", 1000, 1000 + sample(rng, j.minutes), ""}), "put_step");
        must(st->set_job_status(f, j.name, "pass", ""), "set_job_status");
      }
      must(st->set_flight_times(f, 1000, 2000), "set_flight_times");
    }
    std::map<std::string, std::int64_t> actual;
    std::size_t builds = 0, pairs = 0;
    for (const auto& j : m.jobs) {
      actual[j.name] = sample(rng, j.minutes);
      builds += j.build;
      pairs += j.pair;
    }
    if (i == 0) {
      std::printf("  each: %zu jobs (%zu builds, %zu two-host), hosts:", m.jobs.size(), builds, pairs);
      for (const auto& [arch, n] : m.hosts) std::printf(" %d %s", n, arch.c_str());
      std::printf("\n");
    }
    // Critical path first: what the flight runner computes from history.
    std::map<std::string, bool> kinds;
    std::map<std::string, scheduler::JobShape> shapes;
    for (const auto& j : m.jobs) kinds[j.name] = j.build;
    auto expected = scheduler::expected_durations(*st, kinds).value();
    for (const auto& j : m.jobs) shapes[j.name] = {expected.at(j.name), j.depends};
    auto cpf = scheduler::remaining_paths(shapes);
    std::map<std::string, std::int64_t> none;  // builds first, then by name
    for (const auto& j : m.jobs) none[j.name] = 0;
    std::int64_t span_cpf = simulate(*st, m, actual, cpf);
    std::int64_t span_name = simulate(*st, m, actual, none);
    Bound b = lower_bound(m, actual);
    double r_cpf = static_cast<double>(span_cpf) / b.value(), r_name = static_cast<double>(span_name) / b.value();
    worst_cpf = std::max(worst_cpf, r_cpf);
    worst_name = std::max(worst_name, r_name);
    std::printf("  flight %d: lower bound %.0f min (critical path %.0f, work/hosts", i + 1, b.value() / 60,
                static_cast<double>(b.critical) / 60);
    for (const auto& [arch, v] : b.per_pool) std::printf(" %s %.0f", arch.c_str(), v / 60);
    std::printf(")\n    critical path first:   makespan %4.0f min  ratio %.2f\n", static_cast<double>(span_cpf) / 60,
                r_cpf);
    std::printf("    builds first, by name: makespan %4.0f min  ratio %.2f\n", static_cast<double>(span_name) / 60,
                r_name);
  }
  std::filesystem::remove_all(dir);
  std::printf("worst ratio: critical path first %.2f (goal <= 1.20), builds first by name %.2f\n", worst_cpf,
              worst_name);
  std::printf("%s\n", worst_cpf <= 1.2 ? "PASS" : "FAIL");
  return worst_cpf <= 1.2 ? 0 : 1;
}
