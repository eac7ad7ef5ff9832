// A verdict as JSON, so it is stored once when given and read back exactly
// (SPEC section 5: reports show the stored verdict, never a new judgement).

#include <pushgate/verdict.hpp>

#include <nlohmann/json.hpp>

namespace pushgate::verdict {

using nlohmann::json;

namespace {

json ids(const std::vector<FlightId>& v) {
  json a = json::array();
  for (FlightId f : v) a.push_back(f.value);
  return a;
}

std::vector<FlightId> ids_from(const json& a) {
  std::vector<FlightId> out;
  for (const json& x : a) out.push_back(FlightId{x.get<std::int64_t>()});
  return out;
}

}  // namespace

json to_json(const Verdict& v) {
  json items = json::array();
  for (const Classified& c : v.steps) {
    items.push_back({{"flight", c.flight.value}, {"job", c.job}, {"stepno", c.stepno}, {"testid", c.testid},
                     {"status", c.status}, {"summary", c.summary},
                     {"cited", c.cited ? json(c.cited->value) : json(nullptr)}, {"blocker", to_string(c.blocker)},
                     {"allowable", c.allowable}, {"heisenbug", c.heisenbug}, {"priority", c.priority}});
  }
  json abi = json::array();
  for (const AbiCompared& a : v.abi) {
    abi.push_back({{"job", a.job}, {"key", a.key}, {"stepno", a.stepno}, {"digest", a.digest}, {"state", a.state},
                   {"reference", a.reference ? json(a.reference->value) : json(nullptr)},
                   {"reference_digest", a.reference_digest}});
  }
  return {{"flight", v.flight.value},       {"branch", v.branch}, {"abi", abi},
          {"outcome", to_string(v.outcome)}, {"job_word", v.job_word},
          {"baselines", ids(v.baselines)},   {"same_revisions", ids(v.same_revisions)},
          {"baseline_flight", v.baseline_flight}, {"items", items}};
}

Result<Verdict> verdict_from_json(const json& j) {
  try {
    Verdict v;
    v.flight = FlightId{j.at("flight").get<std::int64_t>()};
    v.branch = j.at("branch").get<std::string>();
    auto o = parse_outcome(j.at("outcome").get<std::string>());
    if (!o) return o.error();
    v.outcome = *o;
    v.job_word = j.at("job_word").get<std::string>();
    v.baselines = ids_from(j.at("baselines"));
    v.same_revisions = ids_from(j.at("same_revisions"));
    v.baseline_flight = j.at("baseline_flight").get<bool>();
    for (const json& i : j.at("items")) {
      Classified c;
      c.flight = FlightId{i.at("flight").get<std::int64_t>()};
      c.job = i.at("job").get<std::string>();
      c.stepno = i.at("stepno").get<int>();
      c.testid = i.at("testid").get<std::string>();
      c.status = i.at("status").get<std::string>();
      c.summary = i.at("summary").get<std::string>();
      if (!i.at("cited").is_null()) c.cited = FlightId{i.at("cited").get<std::int64_t>()};
      auto b = parse_blocker(i.at("blocker").get<std::string>());
      if (!b) return b.error();
      c.blocker = *b;
      c.allowable = i.at("allowable").get<bool>();
      c.heisenbug = i.at("heisenbug").get<bool>();
      c.priority = i.at("priority").get<int>();
      v.steps.push_back(std::move(c));
    }
    // Verdicts stored before issue 18 have no "abi".
    for (const json& a : j.value("abi", json::array())) {
      AbiCompared c;
      c.job = a.at("job").get<std::string>();
      c.key = a.at("key").get<std::string>();
      c.stepno = a.at("stepno").get<int>();
      c.digest = a.at("digest").get<std::string>();
      c.state = a.at("state").get<std::string>();
      if (!a.at("reference").is_null()) c.reference = FlightId{a.at("reference").get<std::int64_t>()};
      c.reference_digest = a.at("reference_digest").get<std::string>();
      v.abi.push_back(std::move(c));
    }
    return v;
  } catch (const json::exception& e) {
    return Status::corruption(std::string("stored verdict: ") + e.what());
  }
}

}  // namespace pushgate::verdict
