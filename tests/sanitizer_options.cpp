// Default options of the sanitizers in the instrumented test binaries (tests/sanitizers.cmake).
// The runtime reads these before ASAN_OPTIONS / UBSAN_OPTIONS, which can override each one.
//   detect_leaks: LeakSanitizer at exit (it works in this project's containers and CI).
//   print_stacktrace, halt_on_error: a UB report shows where and fails the test.
extern "C" const char* __asan_default_options() { return "detect_leaks=1:check_initialization_order=1"; }
extern "C" const char* __ubsan_default_options() { return "print_stacktrace=1:halt_on_error=1"; }
