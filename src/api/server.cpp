// The HTTP server: Boost.Beast on the daemon's io_context, one coroutine per
// connection, limits on header size, body size and request time.

#include <pushgate/api.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <chrono>

namespace pushgate::api {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

http::response<http::string_body> to_beast(const Response& r, unsigned version, bool keep_alive) {
  http::response<http::string_body> res{static_cast<http::status>(r.status), version};
  res.set(http::field::server, "pushgate");
  res.set(http::field::content_type, r.content_type);
  res.keep_alive(keep_alive);
  res.body() = r.body;
  res.prepare_payload();
  return res;
}

Response limit_error(int status, const std::string& what) {
  return {status, "application/json", nlohmann::json{{"error", what}}.dump() + "\n"};
}

asio::awaitable<void> session(tcp::socket socket, std::shared_ptr<const Context> ctx, Limits limits) {
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
    Response out = handle(*ctx, r);
    bool keep = req.keep_alive();
    auto res = to_beast(out, req.version(), keep);
    co_await http::async_write(stream, res, asio::redirect_error(asio::use_awaitable, ec));
    if (ec || !keep) break;
  }
  boost::system::error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
}

asio::awaitable<void> listener(tcp::acceptor acceptor, std::shared_ptr<const Context> ctx, Limits limits) {
  for (;;) {
    boost::system::error_code ec;
    tcp::socket socket = co_await acceptor.async_accept(asio::redirect_error(asio::use_awaitable, ec));
    if (ec == asio::error::operation_aborted) co_return;
    if (ec) continue;
    asio::co_spawn(acceptor.get_executor(), session(std::move(socket), ctx, limits), asio::detached);
  }
}

}  // namespace

Result<int> serve(asio::io_context& io, const std::string& address, const Context& ctx, const Limits& limits) {
  auto colon = address.rfind(':');
  if (colon == std::string::npos) return Status::invalid_argument("listen address \"" + address + "\" is not HOST:PORT");
  boost::system::error_code ec;
  auto ip = asio::ip::make_address(address.substr(0, colon), ec);
  if (ec) return Status::invalid_argument("listen address \"" + address + "\": " + ec.message());
  tcp::endpoint ep(ip, static_cast<unsigned short>(std::stoi(address.substr(colon + 1))));
  tcp::acceptor acceptor(io);
  acceptor.open(ep.protocol(), ec);
  if (!ec) acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor.bind(ep, ec);
  if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return Status::unavailable("cannot listen on " + address + ": " + ec.message(), "is another daemon running?");
  int port = acceptor.local_endpoint().port();
  asio::co_spawn(io, listener(std::move(acceptor), std::make_shared<const Context>(ctx), limits), asio::detached);
  return port;
}

}  // namespace pushgate::api
