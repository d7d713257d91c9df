// memory.cpp — device memory of the CPU target, with an optional checked mode.
//
// A checked allocation is laid out as [canary: 256 B][user bytes][canary: 256 B] with the user
// region 256-byte aligned like cudaMalloc's. The canary after the buffer starts at exactly
// user+bytes, so writing even one float past the end damages it. Fresh user bytes are 0xFF, which
// reads as NaN as a float and -1 as an int: a kernel that reads memory nobody wrote shows it.
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <unordered_map>

#include "host_api.h"

namespace {

constexpr size_t kAlign = 256;
constexpr size_t kCanaryBytes = 256;
constexpr unsigned char kCanary = 0xA5;

struct Allocation {
    char* base;
    size_t bytes;
    bool checked;
    unsigned long long serial;
};

std::mutex g_mutex;
std::unordered_map<void*, Allocation>& live() {
    static std::unordered_map<void*, Allocation> map;
    return map;
}
unsigned long long g_serial = 0;

void write_error(char* err, int cap, const std::string& message) {
    if (err == nullptr || cap <= 0) return;
    const size_t n = message.size() < static_cast<size_t>(cap - 1) ? message.size() : static_cast<size_t>(cap - 1);
    std::memcpy(err, message.data(), n);
    err[n] = '\0';
}

// Empty string when both canaries are intact; otherwise where the first damaged byte is.
std::string inspect(void* user, const Allocation& a) {
    const auto* u = static_cast<const unsigned char*>(user);
    for (size_t i = 0; i < kCanaryBytes; ++i) {
        if (u[a.bytes + i] != kCanary)
            return "allocation #" + std::to_string(a.serial) + " (" + std::to_string(a.bytes) + " bytes at 0x" +
                   [&] { char b[32]; snprintf(b, sizeof b, "%llx", (unsigned long long)(uintptr_t)user); return std::string(b); }() +
                   ") was written " + std::to_string(i) + " bytes past its end (byte offset " + std::to_string(a.bytes + i) + ")";
    }
    for (size_t i = 1; i <= kCanaryBytes; ++i) {
        if (u[-static_cast<ptrdiff_t>(i)] != kCanary)
            return "allocation #" + std::to_string(a.serial) + " (" + std::to_string(a.bytes) +
                   " bytes) was written " + std::to_string(i) + " bytes before its start";
    }
    return {};
}

}  // namespace

extern "C" {

void* vqh_alloc(size_t bytes, int checked, char* err, int err_cap) {
    const size_t user_rounded = (bytes + kAlign - 1) / kAlign * kAlign;
    const size_t total = checked ? kCanaryBytes + user_rounded + kCanaryBytes : (user_rounded ? user_rounded : kAlign);
    char* base = static_cast<char*>(std::aligned_alloc(kAlign, total));
    if (base == nullptr) {
        write_error(err, err_cap, "out of host memory allocating " + std::to_string(bytes) + " bytes");
        return nullptr;
    }
    char* user = base;
    if (checked) {
        user = base + kCanaryBytes;
        std::memset(base, kCanary, kCanaryBytes);
        std::memset(user, 0xFF, bytes);
        std::memset(user + bytes, kCanary, total - kCanaryBytes - bytes);
    }
    std::lock_guard<std::mutex> lock(g_mutex);
    live()[user] = Allocation{base, bytes, checked != 0, ++g_serial};
    return user;
}

int vqh_free(void* ptr, char* err, int err_cap) {
    if (ptr == nullptr) return 0;
    std::lock_guard<std::mutex> lock(g_mutex);
    auto it = live().find(ptr);
    if (it == live().end()) {
        write_error(err, err_cap, "free of a pointer that is not a live allocation");
        return 1;
    }
    const Allocation a = it->second;
    std::string damage = a.checked ? inspect(ptr, a) : std::string();
    live().erase(it);
    std::free(a.base);
    if (!damage.empty()) {
        write_error(err, err_cap, damage + " (found when it was freed)");
        return 1;
    }
    return 0;
}

int vqh_check_allocations(char* err, int err_cap) {
    std::lock_guard<std::mutex> lock(g_mutex);
    for (auto& [user, a] : live()) {
        if (!a.checked) continue;
        std::string damage = inspect(user, a);
        if (!damage.empty()) {
            // Repair the canary so that one overrun is reported once, not after every later launch.
            auto* u = static_cast<unsigned char*>(user);
            std::memset(u + a.bytes, kCanary, kCanaryBytes);
            std::memset(u - kCanaryBytes, kCanary, kCanaryBytes);
            write_error(err, err_cap, damage);
            return 1;
        }
    }
    return 0;
}

long long vqh_live_allocation_count() {
    std::lock_guard<std::mutex> lock(g_mutex);
    return static_cast<long long>(live().size());
}

}  // extern "C"
