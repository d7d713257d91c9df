// parallel.h — plain work on the pool of OS threads that runs kernel blocks (launch.cpp).
#pragma once

#include <cstdint>
#include <functional>
#include <string>

namespace vqh {

// OS threads in the pool, the calling thread included.
int worker_count();

// Runs task(0) .. task(count - 1) on the pool (the caller works too), one launch at a time like a
// kernel; returns false with the first exception's message in `error`.
bool parallel_for(uint64_t count, const std::function<void(uint64_t)>& task, std::string& error);

}  // namespace vqh
