# mmphate_core_asan: the sources of every torch-free layer (MMPHATE_CORE_LAYERS, the targets
# mmphate_core links; plugin/CMakeLists.txt) built as one library with AddressSanitizer +
# UndefinedBehaviorSanitizer, for the asan test copies and the fuzz harnesses;
# mmphate_testing_asan the same for the generated test data.
# -O1 keeps the tests fast enough; -g1 (line tables) is all a report's stack needs and halves
# the compile time of the Eigen-heavy sources against -g. The UB checks abort (no recovery)
# so that a report fails its test. float-cast-overflow is not part of
# GCC's "undefined" but a double -> integer conversion out of range is UB all the same.
mmphate_sources_of(_core_sources ${MMPHATE_CORE_LAYERS})
get_target_property(_core_dir mmphate_base SOURCE_DIR)
add_library(mmphate_core_asan STATIC ${_core_sources})
set(MMPHATE_SANITIZE_FLAGS -fsanitize=address,undefined,float-cast-overflow -fno-sanitize-recover=all)
# -Wno-uninitialized: with the sanitizers GCC 12 flags its own AVX-512 intrinsics header
# (`__m512d __Y = __Y;`) hundreds of times; the plain build keeps the warning.
target_compile_options(mmphate_core_asan PUBLIC ${MMPHATE_SANITIZE_FLAGS} -O1 -g1 -fno-omit-frame-pointer
                       -Wno-uninitialized PRIVATE -Wall -Wextra -Wno-maybe-uninitialized)
target_link_options(mmphate_core_asan PUBLIC ${MMPHATE_SANITIZE_FLAGS})
target_compile_definitions(mmphate_core_asan PUBLIC MMPHATE_SANITIZED=1)
target_include_directories(mmphate_core_asan PUBLIC ${_core_dir}/include PRIVATE ${_core_dir}/src)
target_link_libraries(mmphate_core_asan
  PUBLIC Eigen3::Eigen spdlog::spdlog nlohmann_json::nlohmann_json OpenMP::OpenMP_CXX
  PRIVATE PkgConfig::LAPACKE ${LAPACK_LIBRARIES})
if(MMPHATE_NATIVE)
  target_compile_options(mmphate_core_asan PUBLIC -march=native)  # the same code paths as mmphate_core
endif()

mmphate_sources_of(_testing_sources mmphate_testing)
add_library(mmphate_testing_asan STATIC ${_testing_sources})
target_include_directories(mmphate_testing_asan PUBLIC ${_core_dir})
target_link_libraries(mmphate_testing_asan PUBLIC mmphate_core_asan)

# The CLI's viewing parts (tools/, mmphate_view) for the tests of those parts.
find_package(ZLIB REQUIRED)
find_package(Threads REQUIRED)
mmphate_sources_of(_view_sources mmphate_view)
add_library(mmphate_view_asan STATIC ${_view_sources})
get_target_property(_view_defs mmphate_view COMPILE_DEFINITIONS)
target_compile_definitions(mmphate_view_asan PRIVATE ${_view_defs})
target_include_directories(mmphate_view_asan PUBLIC ${PROJECT_SOURCE_DIR}/tools)
target_link_libraries(mmphate_view_asan PUBLIC mmphate_core_asan mmphate_internal nlohmann_json::nlohmann_json
                      ZLIB::ZLIB Threads::Threads)

# The sanitizers' default options, compiled into every instrumented test binary so that a
# binary run by hand behaves like its ctest run (ASAN_OPTIONS / UBSAN_OPTIONS add to them).
add_library(mmphate_sanitizer_options OBJECT ${CMAKE_CURRENT_LIST_DIR}/sanitizer_options.cpp)
