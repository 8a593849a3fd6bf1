# mmphate_core_asan: the core's sources (the same list as mmphate_core) built with
# AddressSanitizer + UndefinedBehaviorSanitizer, for the asan test copies and the fuzz harnesses.
# -O1 keeps the tests fast enough; -g1 (line tables) is all a report's stack needs and halves
# the compile time of the Eigen-heavy sources against -g. The UB checks abort (no recovery)
# so that a report fails its test. float-cast-overflow is not part of
# GCC's "undefined" but a double -> integer conversion out of range is UB all the same.
get_target_property(_core_sources mmphate_core SOURCES)
get_target_property(_core_dir mmphate_core SOURCE_DIR)
list(TRANSFORM _core_sources PREPEND "${_core_dir}/")
add_library(mmphate_core_asan STATIC ${_core_sources})
set(MMPHATE_SANITIZE_FLAGS -fsanitize=address,undefined,float-cast-overflow -fno-sanitize-recover=all)
# -Wno-uninitialized: with the sanitizers GCC 12 flags its own AVX-512 intrinsics header
# (`__m512d __Y = __Y;`) hundreds of times; the plain build keeps the warning.
target_compile_options(mmphate_core_asan PUBLIC ${MMPHATE_SANITIZE_FLAGS} -O1 -g1 -fno-omit-frame-pointer
                       -Wno-uninitialized PRIVATE -Wall -Wextra -Wno-maybe-uninitialized)
target_link_options(mmphate_core_asan PUBLIC ${MMPHATE_SANITIZE_FLAGS})
target_compile_definitions(mmphate_core_asan PUBLIC MMPHATE_SANITIZED=1)
target_include_directories(mmphate_core_asan PUBLIC ${_core_dir}/include)
target_link_libraries(mmphate_core_asan
  PUBLIC Eigen3::Eigen spdlog::spdlog nlohmann_json::nlohmann_json OpenMP::OpenMP_CXX
  PRIVATE PkgConfig::LAPACKE ${LAPACK_LIBRARIES})
if(MMPHATE_NATIVE)
  target_compile_options(mmphate_core_asan PUBLIC -march=native)  # the same code paths as mmphate_core
endif()

# The sanitizers' default options, compiled into every instrumented test binary so that a
# binary run by hand behaves like its ctest run (ASAN_OPTIONS / UBSAN_OPTIONS add to them).
add_library(mmphate_sanitizer_options OBJECT ${CMAKE_CURRENT_LIST_DIR}/sanitizer_options.cpp)
