/* Callgrind collects while `dlpack_bench_measured` runs the loop it is given, and only then
 * (valgrind --tool=callgrind --collect-atstart=no): a client request switches collection on
 * before the loop and off after it, and a dump named after the path follows. instructions.py
 * calls each measured loop through it with ctypes, so a dump holds that loop and nothing else.
 * Client requests rather than --toggle-collect=<function>: they need no symbol table, which
 * valgrind does not always read for a library loaded with dlopen. Outside valgrind they are
 * a few no-op instructions. */
#include <valgrind/callgrind.h>

typedef void (*dlpack_bench_loop)(void);

void dlpack_bench_measured(dlpack_bench_loop loop, const char *name) {
    CALLGRIND_ZERO_STATS;
    CALLGRIND_TOGGLE_COLLECT;
    loop();
    CALLGRIND_TOGGLE_COLLECT;
    CALLGRIND_DUMP_STATS_AT(name);
}
