#pragma once
/// Which revision of every tree a branch's next flight tests, and why
/// (SPEC section 3); frozen refs and their audit.

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <pushgate/config.hpp>
#include <pushgate/git.hpp>
#include <pushgate/status.hpp>
#include <pushgate/store.hpp>

namespace pushgate::revisions {

/// The bare mirrors of the configured trees, opened (or created) on demand.
class Mirrors {
 public:
  explicit Mirrors(const config::Config& config) : config_(config) {}
  /// The mirror of `tree`, created empty if missing.
  Result<git::Repository*> repo(const std::string& tree);
  /// Fetch `tree`'s upstream into its mirror.
  Result<void> fetch(const std::string& tree, const git::Progress& progress = {});

 private:
  const config::Config& config_;
  std::map<std::string, std::unique_ptr<git::Repository>> repos_;
};

/// One tree's revision for a flight, and where it came from.
struct Resolved {
  std::string tree;
  std::string url;       ///< the tree's upstream (runvar tree_<T>)
  std::string revision;  ///< full commit id
  std::string source;    ///< input, override, frozen, tested-of:<branch>, ref:<name>
  std::string ref;       ///< the ref it was read from (empty for override)
  std::string describe;  ///< `git describe --tags`, or a short id; filled by describe()
};

struct Resolution {
  std::string branch;
  std::vector<Resolved> trees;  ///< the tree under test first
  std::string tested_revision;  ///< the branch's tested ref now (baseline); empty when absent
  bool up_to_date = false;      ///< input head == tested ref: nothing new to test
  bool baseline_flight = false; ///< no flight ever tested the tested ref: test it, never push

  const Resolved* find(const std::string& tree) const;
};

/// Resolve every tree `branch` needs. `overrides` maps tree -> revision
/// (anything git can resolve in that tree's mirror). `store` may be null
/// (then baseline_flight is false).
Result<Resolution> resolve(const config::Config& config, Mirrors& mirrors, const store::Store* store,
                           const std::string& branch, const std::map<std::string, std::string>& overrides = {});

/// Fill in Resolved::describe for display (nearest tag per revision).
void describe(Resolution& resolution, Mirrors& mirrors);

/// The runvars a flight records for a resolution: tree_<T>, revision_<T>, revsrc_<T>.
std::vector<std::pair<std::string, std::string>> runvars(const Resolution& resolution);

/// Trees `branch` needs, the tree under test first.
std::vector<std::string> trees_of(const config::Config& config, const config::Branch& branch);

/// One frozen ref as it is now.
struct Frozen {
  std::string tree, branch, ref, revision, describe;
};

/// Every frozen ref present in the mirrors (after any fetch the caller did).
Result<std::vector<Frozen>> list_frozen(const config::Config& config, Mirrors& mirrors);

enum class FrozenAction { add, move, remove };

struct FrozenRequest {
  FrozenAction action = FrozenAction::add;
  std::string tree, branch;
  std::string revision;             ///< add/move: what to pin (resolved in the tree's mirror)
  bool from_last_tolerable = false; ///< add/move: take the revision from the newest tolerable flight
  bool force = false;               ///< move: allow a non-fast-forward
  std::string who, reason;
};

/// Change a frozen ref: recorded as an intent (durable), pushed to the
/// tree's push URL (compare-and-swap against the value just fetched, atomic
/// at the target), mirrored, then the intent finished. Changers take turns
/// on STATE_DIR/locks/frozen.lock, held to the end, and first finish the
/// intents of changers that died. Nothing changes when a check fails. When
/// the push errors its outcome is read back from the push URL (done, failed
/// or refused); unreachable: the intent stays pending and the error says so.
Result<store::FrozenChange> change_frozen(const config::Config& config, Mirrors& mirrors, store::Store& store,
                                          const FrozenRequest& request);

/// Finish the frozen-ref intents of changers that died (SPEC section 6, as
/// for push intents): upstream at the new value -> done (the mirror follows);
/// at the old value -> failed (never pushed later: an operator's change is
/// not applied behind their back); elsewhere -> refused. An unreachable
/// upstream leaves the intent pending. Does nothing while a live changer
/// holds the lock. Returns the changes it finished.
Result<std::vector<store::FrozenChange>> reconcile_frozen(const config::Config& config, Mirrors& mirrors,
                                                          store::Store& store,
                                                          const std::function<void(const std::string&)>& progress = {});

}  // namespace pushgate::revisions
