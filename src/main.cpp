// The pushgate executable: everything happens in cli/.
#include <pushgate/cli.hpp>

int main(int argc, char** argv) { return pushgate::cli::run(argc, argv); }
