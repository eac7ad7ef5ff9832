#pragma once
/// The verdict (SPEC section 5, osstest-compatible): every non-pass step
/// classified against the baseline, and the flight's outcome. classify() is
/// a pure function of the flight and the evidence; gather() reads the
/// evidence from the store.

#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include <pushgate/ids.hpp>
#include <pushgate/status.hpp>
#include <pushgate/store.hpp>

namespace pushgate::verdict {

/// A flight as the verdict sees it.
struct FlightData {
  FlightId id;
  std::string branch;
  std::string blessing = "real";
  bool finished = true;               ///< its run has ended: only then is it evidence
  std::optional<FlightId> retest_of;  ///< a real-retest flight: the flight whose regressions it reran
  struct Step {
    int stepno = 0;
    std::string testid;
    std::string status;
  };
  /// An ABI record a job's step wrote (issue 18): its key's content digest.
  struct Record {
    std::string digest;
    int stepno = 0;
  };
  struct Job {
    std::string name;
    std::string status;
    bool build = false;
    std::vector<Step> steps;
    std::map<std::string, Record> abi;  ///< key -> record
  };
  std::vector<Job> jobs;
  std::map<std::string, std::string> revisions;  ///< tree -> input revision (what the flight was made to test)
  /// tree -> every built revision recorded in the flight's jobs and,
  /// transitively, their build jobs (possibly in other flights), leaving out
  /// previous-release (`-prev`) jobs. SPEC section 5 matches on these.
  std::map<std::string, std::set<std::string>> built;

  const Job* job(const std::string& name) const;
  /// True when every built revision of `tree` equals `revision` and there is at least one.
  bool built_only(const std::string& tree, const std::string& revision) const;
  /// The revision of `tree` this flight tested: its single built revision,
  /// else (nothing built yet, or several) its input revision.
  std::string tested(const std::string& tree) const;
};

/// A job of an earlier release (`test-...-prev`, `build-...-prev`): its
/// revisions are not the ones under test and never decide a baseline.
bool is_prev_job(const std::string& job);

/// Runvars of several flights: flight -> job -> name -> value.
using FlightRunvars = std::map<std::int64_t, std::map<std::string, std::map<std::string, std::string>>>;

/// The build jobs a job's runvars name: `buildjob`, `*buildjob` (osstest's
/// xenbuildjob, kernbuildjob...) and the comma-separated `buildjobs`; "JOB"
/// in flight `here`, "FLIGHT.JOB" in another.
std::vector<std::pair<FlightId, std::string>> build_refs(FlightId here, const std::map<std::string, std::string>& vars);

/// tree -> every `built_revision_<tree>` of flight `f`'s jobs and,
/// transitively, their build jobs (looked up in `all`, which must hold every
/// flight build_refs() reaches), leaving out `-prev` jobs. Pure.
std::map<std::string, std::set<std::string>> built_revisions(FlightId f, const FlightRunvars& all);

/// True when `f` may be evidence for judging flight `judged` (SPEC section 5):
/// finished, real blessing (real, real-retest, real-bisect), not `judged`
/// itself, created before it.
bool is_evidence_for(const FlightData& f, FlightId judged);

/// What the verdict compares against.
struct Evidence {
  /// Evidence flights whose built revisions of the tree under test all equal
  /// the baseline revision, newest first.
  std::vector<FlightData> baselines;
  /// Evidence flights whose built revision of the tree under test equals
  /// ours, newest first; the flight's own real-retest flights count too.
  std::vector<FlightData> same_revisions;
  /// job + '\n' + testid -> the oldest finished real flight of the branch in
  /// which that step passed; absent: it never passed.
  std::map<std::string, FlightId> first_pass;
  /// job + '\n' + key -> the newest ABI acceptance of the branch for it
  /// (`pushgate abi accept`): the accepted record is the reference until a
  /// baseline newer than its flight records the key.
  struct Accepted {
    FlightId flight;
    std::string digest;
  };
  std::map<std::string, Accepted> abi_accepted;
  /// Did the step pass in an evidence flight created before `before`?
  bool passed_before(const std::string& job, const std::string& testid, FlightId before) const;
};

/// Choose the evidence for `ours` among `candidates` (flights of the same
/// branch, in any order), by the built revision of `tree` only: baselines at
/// `basis`, same-revision flights at ours. Pure.
Evidence select_evidence(const FlightData& ours, const std::vector<FlightData>& candidates, const std::string& tree,
                         const std::string& basis, std::map<std::string, FlightId> first_pass = {});

/// Allow-list patterns, in order: global entries, then the branch's.
/// "@@" matches any run of non-space characters, "@" any run without space,
/// '-' or '/'; "!PATTERN" removes an earlier identical entry.
class AllowList {
 public:
  explicit AllowList(const std::vector<std::string>& entries);
  bool allows(const std::string& job, const std::string& testid) const;
  const std::vector<std::string>& patterns() const { return patterns_; }

 private:
  std::vector<std::string> patterns_;
};

enum class Blocker { none, broken, unfinished, regression };
const char* to_string(Blocker b);
Result<Blocker> parse_blocker(const std::string& s);

/// The testid of the pseudo-item for a job's own status.
inline constexpr const char* kJobStatusItem = "<job status>";
/// ABI items are "abi KEY": they take part in heisenbug, allow-list and
/// bisection rules as steps do ("abi machine/pc-i440fx-7.2").
inline constexpr const char* kAbiItemPrefix = "abi ";
bool is_abi_item(const std::string& testid);
std::string abi_key(const std::string& testid);  ///< "" unless is_abi_item

/// How one of the judged flight's ABI records compares with its reference.
struct AbiCompared {
  std::string job, key;
  int stepno = 0;
  std::string digest;
  std::string state;                  ///< same, changed, new, accepted
  std::optional<FlightId> reference;  ///< the baseline (or accepted) flight whose record it was compared with
  std::string reference_digest;
};

/// The reference of job's record `key` for judging flight `f`: the newest
/// baseline created before `f` that recorded it, unless an acceptance of a
/// newer flight replaced it; nullopt: first time recorded.
std::optional<AbiCompared> abi_reference(const FlightData& f, const Evidence& ev, const std::string& job,
                                         const std::string& key);

/// One non-pass step and what it means.
struct Classified {
  FlightId flight;  ///< ours, or a heisenbug flight whose failures are judged too
  std::string job;
  int stepno = 0;
  std::string testid;
  std::string status;
  std::string summary;  ///< "REGR. vs. 12", "like 10", "never pass", "pass in 14", "n/a", ...
  std::optional<FlightId> cited;  ///< the flight the summary names, if any
  Blocker blocker = Blocker::none;
  bool allowable = false;   ///< a blocker excused by the allow list
  bool heisenbug = false;   ///< excused by a pass in another flight of the same revisions
  int priority = 0;         ///< of the baseline comparison that won (rule 5)
  std::string category() const;  ///< blocking, intermittent, allowable, not blocking
};

enum class Outcome { perfect, tolerable, regressions, problems };
const char* to_string(Outcome o);
Result<Outcome> parse_outcome(const std::string& s);
bool tolerable(Outcome o);
/// osstest's headline: "Perfect :-)", "Regressions :-(", ...
const char* headline(Outcome o);

struct Verdict {
  FlightId flight;
  std::string branch;
  std::vector<Classified> steps;
  Outcome outcome = Outcome::perfect;
  std::string job_word;  ///< all pass, ALL FAIL, FAIL, trouble: a/b/c
  std::vector<FlightId> baselines;  ///< the baseline flights compared against, newest first
  std::vector<FlightId> same_revisions;  ///< evidence flights of the same built revision
  bool baseline_flight = false;     ///< it tested the tested ref itself
  std::vector<AbiCompared> abi;     ///< every ABI record of the flight and how it compared

  /// `[<branch> test] <flight>: [regressions - |tolerable ]<word>[ - PUSHED]`,
  /// `[<branch> baseline test] ...` for a baseline flight.
  std::string subject(bool pushed) const;
};

/// A verdict as stored when given, and read back unchanged.
nlohmann::json to_json(const Verdict& v);
Result<Verdict> verdict_from_json(const nlohmann::json& j);

/// Apply SPEC section 5 rules 1-7 and the outcome rules.
Verdict classify(const FlightData& ours, const Evidence& evidence, const AllowList& allow);

/// The job-status word for a set of job statuses.
std::string job_word(const std::vector<std::string>& statuses);

/// Everything a flight report shows; filled by push::report().
struct Report {
  Verdict verdict;      ///< the stored verdict (meaningless while !judged)
  bool judged = true;   ///< false: the flight has not finished; reports show its progress instead
  std::int64_t now = 0; ///< when the report was made: ages are counted to here
  std::vector<std::string> earlier_verdicts;  ///< verdicts replaced by a rejudge, oldest first
  FlightData flight;
  std::string intended;
  struct Version {
    std::string tree, tested, baseline, tested_describe, baseline_describe;
  };
  std::vector<Version> versions;
  std::optional<FlightId> basis_flight;  ///< newest baseline flight ("Last test of basis")
  std::int64_t basis_time = 0;
  std::optional<FlightId> failing_since; ///< first real flight after the basis, when not tolerable
  std::int64_t failing_since_time = 0;
  int failing_attempts = 0;              ///< real flights from failing_since to this one
  std::optional<FlightId> same_since;    ///< oldest flight of the same revisions
  std::int64_t same_since_time = 0;
  int same_attempts = 1;
  std::optional<FlightId> retest_flight;  ///< the real-retest flight of this flight's regressions
  std::string retest_outcome;
  std::vector<std::string> people;       ///< authors of baseline..tested
  struct Commit {
    std::string tree, id, author, subject;
  };
  std::vector<Commit> commits;
  bool pushed = false;
  std::string push_text;                 ///< "pushed ..." or why not
  std::map<std::string, std::string> logs;  ///< "job\nstepno" -> the log's URL (log_url)
  std::string logs_url;                     ///< the flight's page (public base URL + /flights/N)
  std::string trigger;                      ///< why it ran ("cron 0 3 * * *", "manual by alice"); '' unknown
  /// The ABI records' changes (verdict.abi with state changed or accepted):
  /// which fields differ, old -> new, from the record files.
  struct AbiChange {
    std::string job, key;
    std::string path;  ///< JSON pointer of the field
    std::string op;    ///< add, remove, replace
    std::string old_value, new_value;  ///< JSON text; '' when absent
  };
  std::vector<AbiChange> abi_changes;
};

/// The fields that differ between two records (JSON texts), as JSON
/// pointers with old and new values. Pure.
std::vector<Report::AbiChange> abi_diff(const std::string& job, const std::string& key, const std::string& old_json,
                                        const std::string& new_json);
/// One change for people: "+ PATH: NEW", "- PATH: OLD", "PATH: OLD -> NEW".
std::string change_text(const Report::AbiChange& change);
/// One change as JSON (schemas/verdict.schema.json, abi[].changes[]).
nlohmann::json to_json(const Report::AbiChange& change);

/// A path segment or query value made safe for a URL (RFC 3986 unreserved kept).
std::string url_encode(const std::string& text);
/// Where the web serves a step's log: BASE/flights/N/JOB/STEPNO/log.
std::string log_url(const std::string& base, FlightId flight, const std::string& job, int stepno);
/// "cron 0 3 * * *", "retest of flight 12": a flight's trigger for people.
std::string trigger_text(const std::string& kind, const std::string& detail);

/// Text made safe for HTML (reports here, pages in web/).
std::string html_escape(const std::string& text);

std::string render_text(const Report& report);
std::string render_html(const Report& report);
/// JSON following schemas/verdict.schema.json.
std::string render_json(const Report& report);
/// The JSON Schema of render_json's output.
const std::string& report_schema();

/// Read a flight: steps, statuses, input revisions, and built revisions
/// following build-job references (`buildjob`, `*buildjob`, `buildjobs`;
/// `JOB` or `FLIGHT.JOB`) transitively.
Result<FlightData> load_flight(const store::Store& store, FlightId id);
/// Gather the evidence for a flight from the store (candidates by the
/// runvars index on built_revision_<tree>, never a scan) and select_evidence().
Result<Evidence> gather(const store::Store& store, const FlightData& flight, const std::string& tree_under_test,
                        const std::string& basis);

}  // namespace pushgate::verdict
