# Install rules and the CMake package (docs/ARCHITECTURE.md, "Packaging"), included by the root
# CMakeLists.txt when MMPHATE_INSTALL is on (the default at top level).
#
#   <prefix>/include/mmphate/...          public headers (torch/ only with the torch layer)
#   <prefix>/lib/libmmphate_{base,engine,store,monitor}.a   the layers mmphate::core links
#                                         (+ libmmphate_torch.a)
#   <prefix>/lib/cmake/mmphate/           mmphateConfig.cmake, mmphateConfigVersion.cmake,
#                                         mmphateCoreTargets.cmake (+ mmphateTorchTargets.cmake)
#   <prefix>/bin/mmphate                  the CLI
#   <prefix>/share/mmphate/viewer/        the web viewer `mmphate serve` hands out
#   <prefix>/share/mmphate/configs/       monitor configs and engine presets (configs/README.md)
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(MMPHATE_INSTALL_CMAKEDIR "${CMAKE_INSTALL_LIBDIR}/cmake/mmphate" CACHE STRING
    "Where mmphateConfig.cmake is installed, relative to the prefix")

# One export set per component, so that a consumer asking only for `core` never needs LibTorch.
# mmphate::core is an INTERFACE target over the torch-free layers, which are exported with it
# (mmphate::base, ::engine, ::store, ::monitor). mmphate_internal and mmphate_testing (private
# headers, generated test data) are build-tree only.
install(TARGETS ${MMPHATE_CORE_LAYERS} mmphate_core EXPORT mmphateCoreTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
        RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
        INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(EXPORT mmphateCoreTargets NAMESPACE mmphate:: FILE mmphateCoreTargets.cmake
        DESTINATION ${MMPHATE_INSTALL_CMAKEDIR})
set(_mmphate_header_excludes)
if(NOT MMPHATE_HAVE_TORCH)
  set(_mmphate_header_excludes PATTERN torch EXCLUDE PATTERN torch.hpp EXCLUDE)
endif()
install(DIRECTORY ${PROJECT_SOURCE_DIR}/plugin/include/mmphate DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
        FILES_MATCHING PATTERN "*.hpp" ${_mmphate_header_excludes})
if(MMPHATE_HAVE_TORCH)
  install(TARGETS mmphate_torch EXPORT mmphateTorchTargets
          ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
          LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
          RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
          INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
  install(EXPORT mmphateTorchTargets NAMESPACE mmphate:: FILE mmphateTorchTargets.cmake
          DESTINATION ${MMPHATE_INSTALL_CMAKEDIR})
endif()

# A static library carries its PRIVATE dependencies into the consumer's link line
# ($<LINK_ONLY:...> in the targets file), so the config must find them as well.
get_target_property(_mmphate_core_type mmphate_base TYPE)
if(_mmphate_core_type STREQUAL "STATIC_LIBRARY")
  set(MMPHATE_STATIC_LIBS ON)
else()
  set(MMPHATE_STATIC_LIBS OFF)
endif()
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/mmphateConfig.cmake.in
                              ${PROJECT_BINARY_DIR}/mmphateConfig.cmake
                              INSTALL_DESTINATION ${MMPHATE_INSTALL_CMAKEDIR})
# 0.x: a new minor version may change the API.
write_basic_package_version_file(${PROJECT_BINARY_DIR}/mmphateConfigVersion.cmake
                                 VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/mmphateConfig.cmake ${PROJECT_BINARY_DIR}/mmphateConfigVersion.cmake
        DESTINATION ${MMPHATE_INSTALL_CMAKEDIR})

# The CLI, and what it reads at run time: `mmphate serve` looks for the viewer in
# <bin>/../share/mmphate/viewer before the source tree's (tools/CMakeLists.txt).
install(TARGETS mmphate RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/viewer/ DESTINATION ${CMAKE_INSTALL_DATADIR}/mmphate/viewer)
# The configs are part of the package: mmphate::Monitor and `mmphate --config` take them by path.
install(DIRECTORY ${PROJECT_SOURCE_DIR}/configs/ DESTINATION ${CMAKE_INSTALL_DATADIR}/mmphate/configs)
