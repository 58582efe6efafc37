// DPI-C functions through which hwsim's MAC array harness moves its memories in bulk
// (hwsim.cosim.harness; the file layout is hwsim.cosim.memfile's): a memory file is a sequence of
// 32-bit little-endian words, each element of a W-bit memory taking ceil(W / 32) words, least
// significant word first. The harness copies words into and out of its memories in a Verilog loop of
// DPI calls, a few nanoseconds per word, where $readmemh parses text a character at a time and $fread
// and $fwrite go through a C stdio call per byte or per element.
//
//   hwsim_mem_load(path)   read a whole file into the load buffer; returns its word count, or -1
//   hwsim_mem_word(k)      word k of the load buffer (0 past its end)
//   hwsim_mem_clear(n)     make the save buffer n zero words
//   hwsim_mem_put(k, v)    set word k of the save buffer (ignored past its end)
//   hwsim_mem_save(path)   write the save buffer to path; returns its word count, or -1

#include <cstdint>
#include <cstdio>
#include <vector>

#include "svdpi.h"

namespace {
std::vector<uint32_t> load_buf, save_buf;
}

extern "C" int hwsim_mem_load(const char *path) {
    FILE *f = std::fopen(path, "rb");
    if (!f) return -1;
    std::fseek(f, 0, SEEK_END);
    const long bytes = std::ftell(f);
    std::fseek(f, 0, SEEK_SET);
    load_buf.assign(bytes > 0 ? static_cast<size_t>(bytes) / 4 : 0, 0u);
    const size_t got = load_buf.empty() ? 0 : std::fread(load_buf.data(), 4, load_buf.size(), f);
    std::fclose(f);
    if (got != load_buf.size()) return -1;
    return static_cast<int>(load_buf.size());
}

extern "C" unsigned int hwsim_mem_word(int k) {
    return k >= 0 && static_cast<size_t>(k) < load_buf.size() ? load_buf[k] : 0u;
}

extern "C" void hwsim_mem_clear(int n) { save_buf.assign(n > 0 ? static_cast<size_t>(n) : 0, 0u); }

extern "C" void hwsim_mem_put(int k, unsigned int v) {
    if (k >= 0 && static_cast<size_t>(k) < save_buf.size()) save_buf[k] = v;
}

extern "C" int hwsim_mem_save(const char *path) {
    FILE *f = std::fopen(path, "wb");
    if (!f) return -1;
    const size_t put = save_buf.empty() ? 0 : std::fwrite(save_buf.data(), 4, save_buf.size(), f);
    std::fclose(f);
    return put == save_buf.size() ? static_cast<int>(put) : -1;
}
