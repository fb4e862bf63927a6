// imatrix_llama_dump.cpp - llama-quantize's own imatrix loader, dumped as text (not part of the
// build; used by tools/imatrix_agree.sh to check formats/imatrix.c against llama.cpp).
//
// It #includes llama.cpp v0.5.0's tools/quantize/quantize.cpp (no main() in it), so the static
// load_imatrix() called here is llama-quantize's code itself: common_imatrix_load() from
// libllama-common, then the normalisation into the vectors llama_model_quantize receives.
// Output, one line per entry in name order: "<name> <n> <f32 bits as %08x>..." and a last line
// "# dataset=<datasets[0] cut to 127 bytes> entries=<n> chunks=<m_last_call, or 0 when <= 0>",
// i.e. what llama-quantize writes as quantize.imatrix.{dataset,entries_count,chunks_count}.
//
//   g++ -O2 -std=c++17 -I$LLCPP_DIR/src/include -I$LLCPP_DIR/src/common -I$LLCPP_DIR/src/ggml/include \
//       -I$LLCPP_DIR/src/vendor -I$LLCPP_DIR/src tools/imatrix_llama_dump.cpp -o imatrix_llama_dump \
//       -L$LLCPP_DIR/lib -lllama-common -lllama -lggml -lggml-base -Wl,-rpath,$LLCPP_DIR/lib -lpthread
//   imatrix_llama_dump FILE OUT.txt      (llama-quantize's log goes to stdout/stderr)
#include "tools/quantize/quantize.cpp"

#include <algorithm>
#include <cstdio>

int main(int argc, char ** argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s IMATRIX OUT.txt\n", argv[0]);
        return 2;
    }
    std::vector<std::string> datasets;
    std::unordered_map<std::string, std::vector<float>> data;
    const int chunks = load_imatrix(argv[1], datasets, data); // exits on a load failure, as llama-quantize does
    std::vector<std::string> names;
    for (const auto & kv : data) names.push_back(kv.first);
    std::sort(names.begin(), names.end());
    FILE * f = fopen(argv[2], "w");
    if (!f) { perror(argv[2]); return 1; }
    for (const auto & n : names) {
        const auto & v = data.at(n);
        fprintf(f, "%s %zu", n.c_str(), v.size());
        for (float x : v) { uint32_t u; memcpy(&u, &x, 4); fprintf(f, " %08x", u); }
        fprintf(f, "\n");
    }
    std::string ds = datasets.empty() ? "" : datasets[0].substr(0, 127);
    fprintf(f, "# dataset=%s entries=%zu chunks=%d\n", ds.c_str(), data.size(), chunks > 0 ? chunks : 0);
    return fclose(f) == 0 ? 0 : 1;
}
