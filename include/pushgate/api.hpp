#pragma once
/// The HTTP JSON API under /api/v1/ and /metrics (Boost.Beast, on the
/// daemon's io_context), and the JSON views it shares with the CLI.

#include <utility>  // before Asio: Boost 1.74 Asio needs std::exchange under GCC 12

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>

#include <functional>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include <pushgate/config.hpp>
#include <pushgate/status.hpp>
#include <pushgate/store.hpp>

namespace pushgate::api {

/// JSON views (also used by `pushgate ... --json`).
Result<nlohmann::json> flight_json(const store::Store& store, FlightId id);
nlohmann::json host_json(const store::Host& host);

/// What the API needs from the daemon.
struct Context {
  const config::Config* config = nullptr;
  store::Store* store = nullptr;
  std::string token;  ///< required for changes (and reads when read_requires_token)
  bool read_requires_token = false;
  /// Ask for a flight of a branch now (manual trigger).
  std::function<Status(const std::string& branch)> trigger;
};

struct Limits {
  std::size_t body_bytes = 64 * 1024;
  std::size_t header_bytes = 8 * 1024;
  int request_seconds = 10;
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

/// Listen on `address` ("host:port"; port 0 picks one) and serve until the
/// io_context stops. Returns the bound port.
Result<int> serve(boost::asio::io_context& io, const std::string& address, const Context& ctx, const Limits& limits = {});

}  // namespace pushgate::api
