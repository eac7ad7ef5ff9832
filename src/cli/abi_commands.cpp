// `pushgate abi list|show|accept|history` (issue 18, docs/abi.md): the ABI
// records a flight's steps wrote, and a release manager's acceptance of a
// changed one, audited.

#include <iomanip>
#include <iostream>

#include <pushgate/flight.hpp>
#include <pushgate/push.hpp>
#include <pushgate/verdict.hpp>

#include "context.hpp"

namespace pushgate::cli {


namespace {

struct AbiArgs {
  std::int64_t flight = 0;
  std::int64_t against = 0;
  std::string branch, job, key, reason;
  bool json = false;
};

/// How the stored verdict compared each record; empty while not judged.
std::map<std::string, verdict::AbiCompared> compared(Context& ctx, FlightId flight) {
  std::map<std::string, verdict::AbiCompared> out;
  auto gate = must(push::stored_gate(ctx.config(), ctx.store(), flight));
  if (!gate) return out;
  for (const auto& a : gate->verdict.abi) out[a.job + "\n" + a.key] = a;
  return out;
}

nlohmann::json record_json(const store::Store::Artifact& r, const std::map<std::string, verdict::AbiCompared>& cmp) {
  nlohmann::json j{{"flight", r.flight.value}, {"job", r.job},        {"stepno", r.stepno}, {"key", r.key},
                   {"digest", r.digest},       {"path", r.path},      {"created", r.created},
                   {"state", nullptr},         {"reference", nullptr}};
  if (auto c = cmp.find(r.job + "\n" + r.key); c != cmp.end()) {
    j["state"] = c->second.state;
    if (c->second.reference) j["reference"] = c->second.reference->value;
  }
  return j;
}

void list(Context& ctx, const AbiArgs& a) {
  FlightId f{a.flight};
  must(ctx.store().get_flight(f), kUsage);
  auto records = must(ctx.store().list_artifacts(f, a.job));
  auto cmp = compared(ctx, f);
  if (a.json) {
    nlohmann::json j = nlohmann::json::array();
    for (const auto& r : records) j.push_back(record_json(r, cmp));
    print_json(j);
    return;
  }
  if (records.empty()) {
    std::cout << "flight " << f.str() << " has no ABI records" << (a.job.empty() ? "" : " of " + a.job)
              << " (a step writes them to $PUSHGATE_ARTIFACTS/KEY.json; docs/abi.md)\n";
    return;
  }
  std::size_t jw = 4, kw = 3;
  for (const auto& r : records) {
    jw = std::max(jw, r.job.size() + 1);
    kw = std::max(kw, r.key.size() + 1);
  }
  std::cout << std::left << std::setw(static_cast<int>(jw)) << "job" << std::setw(static_cast<int>(kw)) << "key"
            << "step digest       state\n";
  for (const auto& r : records) {
    std::string state = "(not judged yet)";
    if (auto c = cmp.find(r.job + "\n" + r.key); c != cmp.end()) {
      state = c->second.state;
      if (c->second.reference) state += (c->second.state == "changed" ? " vs. " : " as ") + c->second.reference->str();
    }
    std::cout << std::setw(static_cast<int>(jw)) << r.job << std::setw(static_cast<int>(kw)) << r.key << std::right
              << std::setw(4) << r.stepno << std::left << " " << r.digest.substr(0, 12) << " " << state << "\n";
  }
}

/// The record of `job` and `key` in flight `f`, else exit 2.
const store::Store::Artifact& must_find_record(const std::vector<store::Store::Artifact>& records, FlightId f,
                                               const std::string& job, const std::string& key) {
  if (const auto* r = flight::find_record(records, job, key)) return *r;
  fail(Status::not_found("flight " + f.str() + " has no ABI record " + key + " of " + job,
                         "`pushgate abi list " + f.str() + "` lists them"),
       kUsage);
}

void show(Context& ctx, const AbiArgs& a) {
  FlightId f{a.flight};
  must(ctx.store().get_flight(f), kUsage);
  const auto records = must(ctx.store().list_artifacts(f, a.job));
  const auto& r = must_find_record(records, f, a.job, a.key);
  std::string text = must(flight::read_record(r));
  if (!a.against) {
    std::cout << text;  // the record itself, canonical JSON (its shape is the recorder's)
    return;
  }
  FlightId other{a.against};
  must(ctx.store().get_flight(other), kUsage);
  const auto others = must(ctx.store().list_artifacts(other, a.job));
  const auto& o = must_find_record(others, other, a.job, a.key);
  auto changes = verdict::abi_diff(a.job, a.key, must(flight::read_record(o)), text);
  if (a.json) {
    nlohmann::json j = nlohmann::json::array();
    for (const auto& c : changes) j.push_back(verdict::to_json(c));
    print_json(j);
    return;
  }
  if (changes.empty()) std::cout << a.key << " of " << a.job << ": the same in flights " << other.str() << " and " << f.str() << "\n";
  for (const auto& c : changes) std::cout << verdict::change_text(c) << "\n";
}

/// The newest judged flight of the branch in which `key` changed.
std::optional<FlightId> newest_change(Context& ctx, const std::string& branch, const std::string& key) {
  store::FlightFilter filter;
  filter.branch = branch;
  filter.limit = 200;
  for (const auto& fl : must(ctx.store().list_flights(filter))) {  // newest first
    if (fl.outcome.empty()) continue;
    for (const auto& [k, c] : compared(ctx, fl.id)) {
      if (c.key == key && c.state == "changed") return fl.id;
    }
  }
  return std::nullopt;
}

void accept(Context& ctx, const AbiArgs& a) {
  branch_of(ctx, a.branch);
  if (a.reason.empty()) fail(Status::invalid_argument("--reason is required: acceptances are audited"), kUsage);
  if (!flight::valid_record_key(a.key)) fail(Status::invalid_argument("\"" + a.key + "\" is not a record key"), kUsage);
  std::optional<FlightId> f = a.flight ? std::optional<FlightId>(FlightId{a.flight}) : newest_change(ctx, a.branch, a.key);
  if (!f) {
    fail(Status::not_found("no judged flight of " + a.branch + " has a changed ABI record " + a.key,
                           "give the flight whose record to accept with --flight"),
         kUsage);
  }
  auto fl = must(ctx.store().get_flight(*f), kUsage);
  if (fl.branch != a.branch) {
    fail(Status::invalid_argument("flight " + f->str() + " is of branch " + fl.branch + ", not " + a.branch), kUsage);
  }
  auto cmp = compared(ctx, *f);
  std::vector<store::Store::AbiAcceptance> rows;
  for (const auto& r : must(ctx.store().list_artifacts(*f))) {
    if (r.key != a.key || (!a.job.empty() && r.job != a.job)) continue;
    store::Store::AbiAcceptance row;
    row.branch = a.branch;
    row.key = a.key;
    row.job = r.job;
    row.flight = *f;
    row.digest = r.digest;
    if (auto c = cmp.find(r.job + "\n" + r.key); c != cmp.end()) {
      row.old_flight = c->second.reference;
      row.old_digest = c->second.reference_digest;
    }
    row.who = ctx.who;
    row.reason = a.reason;
    rows.push_back(row);
  }
  if (rows.empty()) {
    fail(Status::not_found("flight " + f->str() + " has no ABI record " + a.key + (a.job.empty() ? "" : " of " + a.job),
                         "`pushgate abi list " + f->str() + "` lists them"),
         kUsage);
  }
  must(ctx.store().accept_abi(rows));
  for (const auto& r : rows) {
    std::cout << "accepted " << a.key << " of " << r.job << " as recorded in flight " << f->str() << " ("
              << r.digest.substr(0, 12) << (r.old_digest.empty() ? "" : ", was " + r.old_digest.substr(0, 12)) << ") by "
              << r.who << "\n";
  }
  std::cout << "the next flights of " << a.branch << " compare " << a.key
            << " with it; `pushgate flight rejudge " << f->str() << "` judges that flight again\n";
}

void history(Context& ctx, const AbiArgs& a) {
  branch_of(ctx, a.branch);
  auto rows = must(ctx.store().abi_acceptances(a.branch, a.key));
  if (a.json) {
    nlohmann::json j = nlohmann::json::array();
    for (const auto& r : rows) {
      j.push_back({{"id", r.id}, {"branch", r.branch}, {"key", r.key}, {"job", r.job}, {"flight", r.flight.value},
                   {"digest", r.digest},
                   {"old_flight", r.old_flight ? nlohmann::json(r.old_flight->value) : nlohmann::json(nullptr)},
                   {"old_digest", r.old_digest}, {"who", r.who}, {"reason", r.reason}, {"at", r.at}});
    }
    print_json(j);
    return;
  }
  if (rows.empty()) std::cout << "no ABI change of " << a.branch << " was accepted" << (a.key.empty() ? "" : " for " + a.key) << "\n";
  for (const auto& r : rows) {
    std::cout << human_time(r.at) << "  " << r.who << " accepted " << r.key << " of " << r.job << " from flight "
              << r.flight.str() << " (" << r.digest.substr(0, 12)
              << (r.old_digest.empty() ? "" : ", was " + r.old_digest.substr(0, 12)) << "): " << r.reason << "\n";
  }
}

}  // namespace

void add_abi_commands(CLI::App& app, Context& ctx) {
  static AbiArgs a;
  auto* abi = app.add_subcommand("abi", "ABI records steps write, compared with the baseline's (docs/abi.md)");
  abi->require_subcommand(1);

  auto* l = abi->add_subcommand("list", "A flight's ABI records and how the verdict compared each");
  l->add_option("flight", a.flight, "flight number")->required()->check(CLI::PositiveNumber);
  l->add_option("--job", a.job, "only this job's");
  l->add_flag("--json", a.json, "machine-readable output (schemas/cli/abi-list.schema.json)");
  l->callback([&ctx] { list(ctx, a); });

  auto* s = abi->add_subcommand("show", "Print one record (canonical JSON), or what changed against another flight's");
  s->add_option("flight", a.flight, "flight number")->required()->check(CLI::PositiveNumber);
  s->add_option("job", a.job, "job")->required();
  s->add_option("key", a.key, "record key, e.g. machine/pc-i440fx-7.2")->required();
  s->add_option("--against", a.against, "show the fields that differ from this flight's record")
      ->check(CLI::PositiveNumber);
  s->add_flag("--json", a.json, "with --against: the changes as JSON (schemas/cli/abi-diff.schema.json)");
  s->callback([&ctx] { show(ctx, a); });

  auto* acc = abi->add_subcommand("accept", "Accept a changed record: it becomes the reference (audited)");
  acc->add_option("branch", a.branch, "branch")->required();
  acc->add_option("key", a.key, "record key")->required();
  acc->add_option("--reason", a.reason, "why the change is meant (recorded)")->required();
  acc->add_option("--flight", a.flight, "whose record (default: the branch's newest flight where KEY changed)")
      ->check(CLI::PositiveNumber);
  acc->add_option("--job", a.job, "only this job's record (default: every job of that flight recording KEY)");
  acc->callback([&ctx] { accept(ctx, a); });

  auto* h = abi->add_subcommand("history", "Every accepted ABI change of a branch, oldest first");
  h->add_option("branch", a.branch, "branch")->required();
  h->add_option("key", a.key, "only this key");
  h->add_flag("--json", a.json, "machine-readable output (schemas/cli/abi-history.schema.json)");
  h->callback([&ctx] { history(ctx, a); });
}

}  // namespace pushgate::cli
