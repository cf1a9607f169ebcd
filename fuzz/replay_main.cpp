// A plain main for fuzz targets: feeds every file of the given directories (or the given files)
// to LLVMFuzzerTestOneInput, so a committed corpus runs as a unit test with any compiler.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace {

std::string read_file(const std::filesystem::path& p) {
    std::ifstream in(p, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

}  // namespace

int main(int argc, char** argv) {
    namespace fs = std::filesystem;
    std::vector<fs::path> files;
    for (int i = 1; i < argc; ++i) {
        fs::path p(argv[i]);
        if (fs::is_directory(p)) {
            for (const auto& e : fs::directory_iterator(p))
                if (e.is_regular_file())
                    files.push_back(e.path());
        } else if (fs::is_regular_file(p)) {
            files.push_back(p);
        } else {
            std::fprintf(stderr, "replay: no such file or directory: %s\n", argv[i]);
            return 1;
        }
    }
    // An empty corpus would pass while testing nothing: a missing directory is a broken build.
    if (files.empty()) {
        std::fprintf(stderr, "replay: no inputs given\n");
        return 1;
    }
    std::sort(files.begin(), files.end());  // a stable order makes failures reproducible
    for (const auto& f : files) {
        std::string bytes = read_file(f);
        // Feed from a heap copy of exactly the right size, so ASan catches reads past the end.
        std::vector<std::uint8_t> exact(bytes.begin(), bytes.end());
        std::fprintf(stderr, "replay: %s (%zu bytes)\n", f.string().c_str(), exact.size());
        LLVMFuzzerTestOneInput(exact.data(), exact.size());
    }
    std::fprintf(stderr, "replay: %zu inputs, no failure\n", files.size());
    return 0;
}
