#pragma once
/// The pushgate command line: parses argv, runs one command, returns the
/// exit status (0 success, 1 failure, 2 usage or configuration error,
/// 3 flight not tolerable).

namespace pushgate::cli {

int run(int argc, char** argv);

}  // namespace pushgate::cli
