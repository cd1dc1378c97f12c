# Cross-building gort for arm64 (AArch64) Linux on another machine, with
# Debian's cross compiler (gcc-aarch64-linux-gnu) and its libraries in
# /usr/aarch64-linux-gnu; ctest runs the tests under qemu-user
# (qemu-aarch64). `make test-arm64` uses it:
#   cmake -S . -B build-arm64 -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64-linux-gnu.cmake
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)

set(GORT_CROSS_TRIPLE aarch64-linux-gnu CACHE STRING "The cross toolchain's prefix")
set(CMAKE_C_COMPILER ${GORT_CROSS_TRIPLE}-gcc)
set(CMAKE_ASM_COMPILER ${GORT_CROSS_TRIPLE}-gcc)
set(GORT_CROSS_SYSROOT /usr/${GORT_CROSS_TRIPLE} CACHE PATH "The target's libraries (qemu -L)")

set(CMAKE_FIND_ROOT_PATH ${GORT_CROSS_SYSROOT})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

# ctest (and add_custom_command) run target programs through this. The
# tests learn that they are emulated from GORT_TEST_EMULATED (CMakeLists.txt
# sets it for every test when CMAKE_CROSSCOMPILING_EMULATOR is set) and
# scale themselves down (tests/harness.c).
# The sysroot's libraries come first: with Debian's multiarch arm64 packages
# installed (libssl-dev:arm64 brings libc6:arm64 into /lib/<triple>), the
# sysroot's ld.so would otherwise load that other build of libc.so.6, and a
# dynamic loader and a C library of two builds do not mix (the first
# pthread_create hangs).
set(CMAKE_CROSSCOMPILING_EMULATOR qemu-aarch64 -L ${GORT_CROSS_SYSROOT}
    -E LD_LIBRARY_PATH=${GORT_CROSS_SYSROOT}/lib:/usr/lib/${GORT_CROSS_TRIPLE})

# OpenSSL (tests/test_tls.c) from Debian's multiarch package libssl-dev:arm64
# (scripts/deps.sh arm64), which lives outside the cross sysroot: the
# libraries in /usr/lib/<triple>, the headers in /usr/include/openssl and
# /usr/include/<triple>/openssl. /usr/include itself must not reach the
# cross compiler (the host's C library is there), so the shared headers come
# through a link of their own in the build tree.
set(GORT_CROSS_MULTIARCH_LIB /usr/lib/${GORT_CROSS_TRIPLE})
if(EXISTS ${GORT_CROSS_MULTIARCH_LIB}/libssl.so AND EXISTS /usr/include/${GORT_CROSS_TRIPLE}/openssl)
  set(gort_cross_inc ${CMAKE_BINARY_DIR}/cross-include)
  file(MAKE_DIRECTORY ${gort_cross_inc})
  if(NOT EXISTS ${gort_cross_inc}/openssl)
    file(CREATE_LINK /usr/include/openssl ${gort_cross_inc}/openssl SYMBOLIC)
  endif()
  set(OPENSSL_INCLUDE_DIR "${gort_cross_inc};/usr/include/${GORT_CROSS_TRIPLE}" CACHE PATH "")
  set(OPENSSL_SSL_LIBRARY ${GORT_CROSS_MULTIARCH_LIB}/libssl.so CACHE FILEPATH "")
  set(OPENSSL_CRYPTO_LIBRARY ${GORT_CROSS_MULTIARCH_LIB}/libcrypto.so CACHE FILEPATH "")
endif()
