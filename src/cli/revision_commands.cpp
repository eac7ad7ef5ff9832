// `pushgate revisions` and `pushgate frozen ...` (issue 3).
#include "context.hpp"
namespace pushgate::cli {
void add_revision_commands(CLI::App&, Context&) {}
}  // namespace pushgate::cli
