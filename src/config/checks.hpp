#pragma once
// Private to src/config: checks of meaning after the schema passed.

#include <string>
#include <vector>

#include <pushgate/config.hpp>

namespace pushgate::config {

/// Errors and warnings of a schema-valid config, with pointers into the
/// merged document (/branches/3/tree).
std::vector<Diagnostic> check(const Config& config);

}  // namespace pushgate::config
