#pragma once
/// The HTTP JSON API under /api/v1/ and /metrics (Boost.Beast, on the
/// daemon's io_context), and the JSON views it shares with the CLI.

#include <utility>  // before Asio: Boost 1.74 Asio needs std::exchange under GCC 12

#include <boost/asio/io_context.hpp>

#include <functional>
#include <map>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include <pushgate/config.hpp>
#include <pushgate/push.hpp>
#include <pushgate/revisions.hpp>
#include <pushgate/status.hpp>
#include <pushgate/store.hpp>

namespace pushgate::api {

/// JSON views (also used by `pushgate ... --json`).
Result<nlohmann::json> flight_json(const store::Store& store, FlightId id);
/// One row of a flight list (schemas/api/flights.schema.json items), for the API and the CLI.
nlohmann::json flight_summary_json(const store::Flight& flight);
nlohmann::json host_json(const store::Host& host);
nlohmann::json host_event_json(const store::Store::HostEvent& event);
/// The last `limit` flights of `branch` that ran `job`, newest first: job
/// status, host, (built) revisions; with `testid`, only those that ran that
/// step, with its status (step history).
Result<nlohmann::json> job_history_json(const store::Store& store, const std::string& branch, const std::string& job,
                                        const std::string& testid, int limit);
/// A branch's status (push::branch_status) with the age of its tested revision.
nlohmann::json branch_json(const push::BranchStatus& status);
/// One frozen ref (schemas/api/frozen.schema.json items).
nlohmann::json frozen_json(const config::Config& config, const revisions::Frozen& frozen);
/// One recorded frozen-ref change (schemas/api/frozen-change.schema.json).
nlohmann::json frozen_change_json(const store::FrozenChange& change);

/// The documents served under /api/v1/: "openapi.json" and the JSON
/// schemas it refers to ("flight.schema.json", ...), built in.
const std::map<std::string, nlohmann::json>& api_documents();

/// Names a query filters on; empty ones are not checked.
struct Names {
  std::string branch, job, testid, host;
};
/// invalid_argument ("unknown job \"x\"", with a did-you-mean hint) for a
/// name the configuration does not have; a testid must be a step of the
/// job's recipe (of any recipe without a job). The CLI exits 2 on it, the
/// API answers 400: an unknown filter is a mistake, not an empty result.
Result<void> check_names(const config::Config& config, const Names& names);

/// Every time in Unix seconds also in ISO 8601 UTC: beside each integer
/// field named created, started, finished, at, date, tested_commit_time or
/// last_flight_created or cutoff, at any depth, a field NAME_utc
/// ("2026-12-02T18:00:00Z"; null beside null). Every JSON document the API
/// and the CLI print goes through it.
nlohmann::json with_utc_times(nlohmann::json j);
/// "2026-12-02T18:00:00Z".
std::string iso_utc(std::int64_t unix_seconds);

/// What the API needs from the daemon.
struct Context {
  const config::Config* config = nullptr;
  /// The connection a request uses; the server sets it per request (each
  /// worker thread has its own), tests of handle() set it directly.
  store::Store* store = nullptr;
  /// The worker's open mirrors (set like store); null: opened per request.
  revisions::Mirrors* mirrors = nullptr;
  std::string token;  ///< required for changes (and reads when read_requires_token)
  bool read_requires_token = false;
  /// Ask for a flight of a branch now (manual trigger). Called on a worker
  /// thread: it must hand the request to the daemon's loop, not act on it.
  std::function<Status(const std::string& branch)> trigger;
  /// Poll a branch now (a webhook said a ref changed): fetch and resolve, and
  /// start a flight only when there is something new. Same threading as trigger.
  std::function<Status(const std::string& branch, const std::string& why)> poll;
};

struct Limits {
  std::size_t body_bytes = 64 * 1024;
  std::size_t header_bytes = 8 * 1024;
  int request_seconds = 10;
  int workers = 4;  ///< threads (each with its own SQLite connection) that run the handlers
  int max_connections = 256;  ///< open HTTP connections; more are answered 503 and closed
};

/// Read the API token named by the config (file or environment); empty when none.
Result<std::string> load_token(const config::Config& config);

/// A plain request/response, independent of Beast, for the router.
struct Request {
  std::string method, target, body, authorization;
};
struct Response {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
};
/// Route one request (pure of sockets: tested directly and through the server).
Response handle(const Context& ctx, const Request& request);

/// Opens one database connection per worker.
using StoreOpener = std::function<Result<std::unique_ptr<store::Store>>()>;

/// The HTTP server. Sockets live on the caller's io_context; handlers (SQLite
/// reads and writes, libgit2 work for frozen refs, report rendering) run on
/// a pool of worker threads and the response is written back on the loop,
/// so a slow request never stalls the daemon or other clients. Requests that
/// change state run one at a time.
class Server {
 public:
  /// Listen on `address` ("host:port"; port 0 picks one) until the
  /// io_context stops or the Server is destroyed.
  static Result<std::unique_ptr<Server>> start(boost::asio::io_context& io, const std::string& address,
                                               const Context& ctx, const StoreOpener& open_store,
                                               const Limits& limits = {});
  ~Server();  ///< stops accepting; waits for handlers already running
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;
  int port() const { return port_; }

  struct State;

 private:
  Server() = default;
  std::shared_ptr<State> state_;
  int port_ = 0;
};

}  // namespace pushgate::api
