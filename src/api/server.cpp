// The HTTP server: Boost.Beast on the daemon's io_context, one coroutine per
// connection, limits on header size, body size and request time. Handlers
// run on a thread pool, each worker with its own SQLite connection; the
// connection coroutine resumes on the loop to write the response.

#include <pushgate/api.hpp>

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <boost/asio/thread_pool.hpp>

#include <chrono>
#include <atomic>
#include <mutex>
#include <vector>

namespace pushgate::api {

struct Server::State {
  Context ctx;
  Limits limits;
  boost::asio::thread_pool pool;
  std::mutex stores_mutex;
  /// What one worker uses for a request: its database connection and its
  /// open mirrors (libgit2 repositories, opened once, not per request).
  struct Worker {
    std::unique_ptr<store::Store> store;
    std::unique_ptr<revisions::Mirrors> mirrors;
  };
  std::vector<Worker> idle;  ///< one per worker, opened at start
  std::mutex changes;                               ///< state-changing requests run one at a time
  std::unique_ptr<boost::asio::ip::tcp::acceptor> acceptor;
  std::atomic<int> connections{0};  ///< open sessions (on the loop; atomic for /metrics readers)

  explicit State(int workers) : pool(static_cast<std::size_t>(workers)) {}

  /// On a worker thread: borrow a connection, route, give it back.
  Response run(const Request& r) {
    Worker conn;
    {
      std::lock_guard<std::mutex> g(stores_mutex);
      if (idle.empty()) return {503, "application/json", R"({"error": "no database connection free"})" "\n"};
      conn = std::move(idle.back());
      idle.pop_back();
    }
    Context c = ctx;
    c.store = conn.store.get();
    c.mirrors = conn.mirrors.get();
    Response out;
    if (r.method == "GET" || r.method == "HEAD") {
      out = handle(c, r);
    } else {
      std::lock_guard<std::mutex> g(changes);
      out = handle(c, r);
    }
    std::lock_guard<std::mutex> g(stores_mutex);
    idle.push_back(std::move(conn));
    return out;
  }
};

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

http::response<http::string_body> to_beast(const Response& r, unsigned version, bool keep_alive) {
  http::response<http::string_body> res{static_cast<http::status>(r.status), version};
  res.set(http::field::server, "pushgate");
  res.set(http::field::content_type, r.content_type);
  // 503 is always temporary here (a busy database, a full worker pool, the
  // connection cap): say when to come back.
  if (r.status == 503) res.set(http::field::retry_after, "5");
  res.keep_alive(keep_alive);
  res.body() = r.body;
  res.prepare_payload();
  return res;
}

Response limit_error(int status, const std::string& what) {
  return {status, "application/json", nlohmann::json{{"error", what}}.dump() + "\n"};
}

// A plain function, not a lambda: GCC 12 mis-handles captures of lambda coroutines.
asio::awaitable<Response> on_worker(std::shared_ptr<Server::State> server, Request r) { co_return server->run(r); }

asio::awaitable<void> session(tcp::socket socket, std::shared_ptr<Server::State> server) {
  struct Count {
    std::atomic<int>& n;
    ~Count() { --n; }
  } count{server->connections};
  const Limits& limits = server->limits;
  beast::tcp_stream stream(std::move(socket));
  beast::flat_buffer buffer;
  for (;;) {
    http::request_parser<http::string_body> parser;
    parser.body_limit(limits.body_bytes);
    parser.header_limit(static_cast<std::uint32_t>(limits.header_bytes));
    stream.expires_after(std::chrono::seconds(limits.request_seconds));
    boost::system::error_code ec;
    co_await http::async_read(stream, buffer, parser, asio::redirect_error(asio::use_awaitable, ec));
    if (ec == http::error::end_of_stream || ec == beast::error::timeout || ec == asio::error::connection_reset) break;
    if (ec) {
      Response r = ec == http::error::body_limit     ? limit_error(413, "request body larger than " + std::to_string(limits.body_bytes) + " bytes")
                   : ec == http::error::header_limit ? limit_error(431, "request header too large")
                                                      : limit_error(400, "malformed HTTP request: " + ec.message());
      auto res = to_beast(r, 11, false);
      co_await http::async_write(stream, res, asio::redirect_error(asio::use_awaitable, ec));
      break;
    }
    auto& req = parser.get();
    Request r{std::string(req.method_string()), std::string(req.target()), req.body(),
              std::string(req[http::field::authorization])};
    // The handler runs on a worker; this coroutine resumes on the loop.
    Response out = co_await asio::co_spawn(server->pool, on_worker(server, std::move(r)), asio::use_awaitable);
    bool keep = req.keep_alive();
    auto res = to_beast(out, req.version(), keep);
    co_await http::async_write(stream, res, asio::redirect_error(asio::use_awaitable, ec));
    if (ec || !keep) break;
  }
  boost::system::error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
}

/// Over the connection cap: a short 503, then close.
asio::awaitable<void> refuse(tcp::socket socket, int limit) {
  beast::tcp_stream stream(std::move(socket));
  stream.expires_after(std::chrono::seconds(2));
  Response r = limit_error(503, "too many open connections (" + std::to_string(limit) + "); try again");
  auto res = to_beast(r, 11, false);
  res.set(http::field::retry_after, "1");
  boost::system::error_code ec;
  co_await http::async_write(stream, res, asio::redirect_error(asio::use_awaitable, ec));
  stream.socket().shutdown(tcp::socket::shutdown_send, ec);
}

asio::awaitable<void> listener(std::shared_ptr<Server::State> server) {
  tcp::acceptor& acceptor = *server->acceptor;
  for (;;) {
    boost::system::error_code ec;
    tcp::socket socket = co_await acceptor.async_accept(asio::redirect_error(asio::use_awaitable, ec));
    if (ec == asio::error::operation_aborted || !acceptor.is_open()) co_return;
    if (ec) {
      // EMFILE/ENFILE and the like: the pending connection stays queued;
      // retrying at once would spin. Wait for descriptors to be given back.
      asio::steady_timer pause(acceptor.get_executor(), std::chrono::milliseconds(100));
      co_await pause.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      continue;
    }
    if (server->connections.load() >= server->limits.max_connections) {
      asio::co_spawn(acceptor.get_executor(), refuse(std::move(socket), server->limits.max_connections), asio::detached);
      continue;
    }
    ++server->connections;
    asio::co_spawn(acceptor.get_executor(), session(std::move(socket), server), asio::detached);
  }
}

}  // namespace

Result<std::unique_ptr<Server>> Server::start(asio::io_context& io, const std::string& address, const Context& ctx,
                                              const StoreOpener& open_store, const Limits& limits) {
  auto colon = address.rfind(':');
  if (colon == std::string::npos) return Status::invalid_argument("listen address \"" + address + "\" is not HOST:PORT");
  boost::system::error_code ec;
  auto ip = asio::ip::make_address(address.substr(0, colon), ec);
  if (ec) return Status::invalid_argument("listen address \"" + address + "\": " + ec.message());
  tcp::endpoint ep(ip, static_cast<unsigned short>(std::stoi(address.substr(colon + 1))));
  const int workers = std::max(1, limits.workers);
  auto state = std::make_shared<State>(workers);
  state->ctx = ctx;
  state->limits = limits;
  for (int i = 0; i < workers; ++i) {
    auto conn = open_store();
    if (!conn) return conn.error().with_context("API worker database connection");
    state->idle.push_back({std::move(*conn), std::make_unique<revisions::Mirrors>(*ctx.config)});
  }
  state->acceptor = std::make_unique<tcp::acceptor>(io);
  tcp::acceptor& acceptor = *state->acceptor;
  acceptor.open(ep.protocol(), ec);
  if (!ec) acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor.bind(ep, ec);
  if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return Status::unavailable("cannot listen on " + address + ": " + ec.message(), "is another daemon running?");
  std::unique_ptr<Server> server(new Server());
  server->port_ = acceptor.local_endpoint().port();
  server->state_ = state;
  asio::co_spawn(io, listener(state), asio::detached);
  return server;
}

Server::~Server() {
  if (!state_) return;
  // Close the listener on its own thread's terms: the loop has stopped when
  // the daemon destroys the server, so closing here races with nothing.
  boost::system::error_code ignored;
  state_->acceptor->close(ignored);
  state_->pool.stop();  // queued handlers are dropped; running ones finish
  state_->pool.join();
}

}  // namespace pushgate::api
