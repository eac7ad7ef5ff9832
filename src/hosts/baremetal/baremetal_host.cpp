// Bare-metal hosts: commands over OpenSSH (BatchMode, host keys checked
// against the configured known_hosts), power through a configured command
// (e.g. ipmitool), install through a PXE config written from a template,
// then a power cycle and a wait for ssh.

#include <pushgate/hosts.hpp>

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace pushgate::hosts {
namespace {

std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

std::string substitute(std::string text, const std::map<std::string, std::string>& vars) {
  for (const auto& [k, v] : vars) {
    std::string key = "{" + k + "}";
    for (auto pos = text.find(key); pos != std::string::npos; pos = text.find(key, pos + v.size())) {
      text.replace(pos, key.size(), v);
    }
  }
  return text;
}

class BaremetalHost final : public Host {
 public:
  using Host::Host;
  std::string address() const override { return cfg_.address; }

  std::vector<std::string> ssh(const std::string& remote, int connect_timeout = 10) const {
    std::vector<std::string> argv{"ssh", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes",
                                  "-o", "UserKnownHostsFile=" + cfg_.known_hosts, "-o", "GlobalKnownHostsFile=/dev/null",
                                  "-o", "ConnectTimeout=" + std::to_string(connect_timeout), "-p",
                                  std::to_string(cfg_.ssh_port)};
    if (!cfg_.ssh_key.empty()) {
      argv.insert(argv.end(), {"-i", cfg_.ssh_key, "-o", "IdentitiesOnly=yes"});
    }
    argv.push_back(cfg_.ssh_user + "@" + cfg_.address);
    argv.push_back(remote);
    return argv;
  }

  asio::awaitable<StepOutcome> run_command(const std::string& command, const std::string& fail_status,
                                           StepContext& ctx) override {
    // The step's variables travel in the remote command line, not ssh's SendEnv.
    std::string remote;
    for (const auto& [k, v] : ctx.env) remote += k + "=" + shell_quote(v) + " ";
    remote += "sh -c " + shell_quote(command);
    ProcessSpec spec{ssh(remote), {}, ctx.workdir, ctx.log_path, ctx.timeout_seconds, ctx.inherit, ctx.place,
                     ctx.log_max_bytes};
    ProcessResult r = co_await run_process(std::move(spec), *ctx.cancel);
    if (r.ok()) co_return StepOutcome::pass();
    if (!r.error.empty() || r.cancelled) co_return StepOutcome::broken(r.describe());
    if (r.exit_code == 255) co_return StepOutcome::broken("host " + name() + " unreachable over ssh");
    if (r.timed_out) co_return StepOutcome{fail_status, "timed out after " + std::to_string(ctx.timeout_seconds) + "s"};
    co_return StepOutcome{fail_status, r.describe()};
  }

  asio::awaitable<StepOutcome> local_command(const std::string& what, const std::string& command,
                                             std::map<std::string, std::string> env, StepContext& ctx,
                                             int timeout) {
    env["PUSHGATE_HOST"] = name();
    env["PUSHGATE_HOST_ADDRESS"] = cfg_.address;
    if (!cfg_.password_file.empty()) env["PUSHGATE_PASSWORD_FILE"] = cfg_.password_file;
    // The host's own power/install commands, not code under test: they get its password variable.
    std::vector<std::string> inherit = ctx.inherit;
    if (!cfg_.password_env.empty()) inherit.push_back(cfg_.password_env);
    ProcessSpec spec{{"/bin/sh", "-c", command}, env, ctx.workdir, ctx.log_path, timeout, inherit, ctx.place,
                     ctx.log_max_bytes};
    ProcessResult r = co_await run_process(std::move(spec), *ctx.cancel);
    if (r.ok()) co_return StepOutcome::pass();
    co_return StepOutcome::broken(what + " of host " + name() + " failed: " + r.describe());
  }

  asio::awaitable<StepOutcome> power(const std::string& action, StepContext& ctx) {
    if (cfg_.power_command.empty()) co_return StepOutcome::broken("host " + name() + " has no power_command");
    std::map<std::string, std::string> env{{"PUSHGATE_POWER_ACTION", action}};
    std::string what = "power " + action;
    co_return co_await local_command(what, cfg_.power_command, env, ctx, 120);
  }

  /// Wait until `ssh true` works, or the step's timeout passes.
  asio::awaitable<StepOutcome> wait_for_ssh(StepContext& ctx) {
    auto ex = co_await asio::this_coro::executor;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(ctx.timeout_seconds);
    asio::steady_timer pause(ex);
    while (std::chrono::steady_clock::now() < deadline && !ctx.cancel->cancelled()) {
      ProcessSpec spec{ssh("true", 5), {}, ctx.workdir, ctx.log_path, 15, {}, ctx.place, ctx.log_max_bytes};
      ProcessResult r = co_await run_process(std::move(spec), *ctx.cancel);
      if (r.ok()) co_return StepOutcome::pass();
      pause.expires_after(std::chrono::seconds(1));
      co_await pause.async_wait(asio::use_awaitable);
    }
    co_return StepOutcome::broken("host " + name() + " did not answer on ssh within " +
                                  std::to_string(ctx.timeout_seconds) + "s");
  }

  asio::awaitable<StepOutcome> run_op(const std::string& op, StepContext& ctx) override {
    if (op == "host:power-cycle" || op == "baremetal:power-cycle") co_return co_await power("cycle", ctx);
    if (op == "host:power-off" || op == "baremetal:power-off") co_return co_await power("off", ctx);
    if (op == "host:boot-check" || op == "baremetal:boot-check") {
      ProcessSpec spec{ssh("true"), {}, ctx.workdir, ctx.log_path, std::min(ctx.timeout_seconds, 60), {}, ctx.place,
                       ctx.log_max_bytes};
      ProcessResult r = co_await run_process(std::move(spec), *ctx.cancel);
      co_return r.ok() ? StepOutcome::pass() : StepOutcome::broken("host " + name() + " unreachable over ssh: " + r.describe());
    }
    if (op == "host:install" || op == "baremetal:install") {
      if (cfg_.pxe_template.empty() || cfg_.pxe_dir.empty()) {
        co_return StepOutcome::broken("host " + name() + " has no pxe_template/pxe_dir to install with");
      }
      std::ifstream in(cfg_.pxe_template);
      if (!in) co_return StepOutcome::broken("cannot read PXE template " + cfg_.pxe_template);
      std::stringstream ss;
      ss << in.rdbuf();
      std::map<std::string, std::string> vars{{"host", name()}, {"address", cfg_.address},
                                              {"flight", ctx.flight.str()}, {"job", ctx.job}};
      for (const auto& [k, v] : ctx.env) vars[k] = v;
      std::error_code ec;
      std::filesystem::create_directories(cfg_.pxe_dir, ec);
      std::string out_path = cfg_.pxe_dir + "/" + name();
      std::ofstream out(out_path);
      out << substitute(ss.str(), vars);
      if (!out) co_return StepOutcome::broken("cannot write PXE config " + out_path);
      out.close();
      append_log(ctx.log_path, "wrote PXE config " + out_path);
      StepOutcome cycled = co_await power("cycle", ctx);
      if (cycled.status != "pass") co_return cycled;
      co_return co_await wait_for_ssh(ctx);
    }
    if (op == "host:logs-capture" || op == "baremetal:logs-capture") {
      if (cfg_.console_command.empty()) co_return StepOutcome::pass("no console_command configured");
      std::map<std::string, std::string> no_env;
      std::string what = "console capture";
      StepOutcome r = co_await local_command(what, cfg_.console_command, no_env, ctx, 120);
      if (r.status != "pass") append_log(ctx.log_path, r.message);
      co_return StepOutcome::pass(r.message);  // missing logs never fail a job
    }
    co_return StepOutcome::broken("operation " + op + " is not supported on bare-metal host " + name());
  }
};

}  // namespace

std::unique_ptr<Host> make_baremetal(const config::Host& cfg) { return std::make_unique<BaremetalHost>(cfg); }

}  // namespace pushgate::hosts
