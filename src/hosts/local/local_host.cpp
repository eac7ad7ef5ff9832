// The controller itself as a test host: steps are child processes here.

#include <pushgate/hosts.hpp>

#include <boost/asio/use_awaitable.hpp>

namespace pushgate::hosts {
namespace {

class LocalHost final : public Host {
 public:
  using Host::Host;
  std::string address() const override { return "localhost"; }

  asio::awaitable<StepOutcome> run_command(const std::string& command, const std::string& fail_status,
                                           StepContext& ctx) override {
    co_return co_await run_on_controller(command, fail_status, ctx);
  }

  asio::awaitable<StepOutcome> run_op(const std::string& op, StepContext& ctx) override {
    if (op == "host:boot-check") co_return StepOutcome::pass("the controller is up");
    if (op == "host:logs-capture") {
      append_log(ctx.log_path, "local host " + name() + ": logs are the step logs in " + ctx.workdir);
      co_return StepOutcome::pass();
    }
    co_return StepOutcome::broken("operation " + op + " is not supported on local host " + name());
  }
};

}  // namespace

std::unique_ptr<Host> make_local(const config::Host& cfg) { return std::make_unique<LocalHost>(cfg); }

}  // namespace pushgate::hosts
