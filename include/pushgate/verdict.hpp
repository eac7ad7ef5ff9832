#pragma once
/// The verdict (SPEC section 5, osstest-compatible): every non-pass step
/// classified against the baseline, and the flight's outcome. classify() is
/// a pure function of the flight and the evidence; gather() reads the
/// evidence from the store.

#include <map>
#include <optional>
#include <string>
#include <vector>

#include <pushgate/ids.hpp>
#include <pushgate/status.hpp>
#include <pushgate/store.hpp>

namespace pushgate::verdict {

/// A flight as the verdict sees it.
struct FlightData {
  FlightId id;
  std::string branch;
  std::string blessing = "real";
  struct Step {
    int stepno = 0;
    std::string testid;
    std::string status;
  };
  struct Job {
    std::string name;
    std::string status;
    bool build = false;
    std::vector<Step> steps;
  };
  std::vector<Job> jobs;
  std::map<std::string, std::string> revisions;  ///< tree -> built (else input) revision

  const Job* job(const std::string& name) const;
};

/// What the verdict compares against.
struct Evidence {
  /// Flights of the branch whose revisions equal the baseline's, newest first.
  std::vector<FlightData> baselines;
  /// Other flights of the branch that tested the same revisions as this one.
  std::vector<FlightData> same_revisions;
  /// job + '\n' + testid for every step that ever passed on this branch.
  std::vector<std::string> ever_passed;
  bool passed_before(const std::string& job, const std::string& testid) const;
};

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

/// One non-pass step and what it means.
struct Classified {
  FlightId flight;  ///< ours, or a heisenbug flight whose failures are judged too
  std::string job;
  int stepno = 0;
  std::string testid;
  std::string status;
  std::string summary;  ///< "REGR. vs. 12", "like 10", "never pass", "pass in 14", "n/a", ...
  Blocker blocker = Blocker::none;
  bool allowable = false;   ///< a blocker excused by the allow list
  bool heisenbug = false;   ///< excused by a pass in another flight of the same revisions
  int priority = 0;         ///< of the baseline comparison that won (rule 5)
  std::string category() const;  ///< blocking, intermittent, allowable, not blocking
};

enum class Outcome { perfect, tolerable, regressions, problems };
const char* to_string(Outcome o);
bool tolerable(Outcome o);

struct Verdict {
  FlightId flight;
  std::string branch;
  std::vector<Classified> steps;
  Outcome outcome = Outcome::perfect;
  std::string job_word;  ///< all pass, ALL FAIL, FAIL, trouble: a/b/c
  std::vector<FlightId> baselines;  ///< the baseline flights compared against

  /// `[<branch> test] <flight>: [regressions - |tolerable ]<word>[ - PUSHED]`
  std::string subject(bool pushed) const;
};

/// Apply SPEC section 5 rules 1-7 and the outcome rules.
Verdict classify(const FlightData& ours, const Evidence& evidence, const AllowList& allow);

/// The job-status word for a set of job statuses.
std::string job_word(const std::vector<std::string>& statuses);

/// Everything a flight report shows; filled by push::report().
struct Report {
  Verdict verdict;
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
  std::map<std::string, std::string> logs;  ///< "job\nstepno" -> log path
};

/// Text made safe for HTML (reports here, pages in web/).
std::string html_escape(const std::string& text);

std::string render_text(const Report& report);
std::string render_html(const Report& report);
/// JSON following schemas/verdict.schema.json.
std::string render_json(const Report& report);
/// The JSON Schema of render_json's output.
const std::string& report_schema();

/// Read a flight (steps, statuses, revisions following build-job references).
Result<FlightData> load_flight(const store::Store& store, FlightId id);
/// Gather the evidence for a flight: baseline flights by built revisions
/// (the tree under test at `basis`, the others as tested), same-revision
/// flights, steps that ever passed. Only real blessings count.
Result<Evidence> gather(const store::Store& store, const FlightData& flight, const std::string& tree_under_test,
                        const std::string& basis);

}  // namespace pushgate::verdict
